"""Integrity of the vLLM oracle fixtures (tests/oracle/fixtures/vllm-*.json).

The fixtures are vLLM's own answers (tools/vllm_oracle/README.md); these tests
check that they are complete and self-consistent, plus a few numbers anyone can
recompute by hand from a config.json.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FIXTURES = sorted((HERE / "fixtures").glob("vllm-*.json"))
# The planner eras' fixtures hold every case of cases.json; the others (a release first
# serving some architectures) hold only those architectures' cases.
ERAS = ("0.10.2", "0.11.0", "0.15.1", "0.19.1", "0.23.0", "0.28.0", "0.32.0", "0.33.0")
ERA_FIXTURES = [HERE / "fixtures" / f"vllm-{v}.json" for v in ERAS]
CASES = {c["id"]: c for c in json.loads((HERE / "cases.json").read_text())["cases"]}
GIB = 1024**3


@functools.cache
def _load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_fixture_is_complete_and_references_resolve(path: Path) -> None:
    fx = _load(path)
    assert path.stat().st_size < 5 * 1024 * 1024
    assert fx["vllm_version"] == path.stem.removeprefix("vllm-")
    assert fx["environment"]["versions"]["torch"].startswith("2.13.0")
    for cid, res in fx["results"].items():
        assert cid in CASES, cid
        assert res["inputs"]["config"] == CASES[cid]["config"]
        assert res["status"] in {
            "ok",
            "config_error",
            "build_error",
            "planner_error",
            "timeout_error",
            "crash_error",
            "harness_gap",
        }, (cid, res["status"])
        if res["status"] in {"config_error", "build_error", "harness_gap"}:
            assert res["error"]["type"] and res["error"]["message"]
        for stage in res.get("stages", []):
            spec = stage["kv_cache_spec"]
            assert len(spec["layers"]) == len(spec["spec"])
            assert all(key in fx["specs"] for key in spec["spec"])
        planner = res.get("planner") or {}
        for worker in planner.get("workers", []):
            assert all(g["spec"] in fx["specs"] for g in worker["kv_cache_groups"])
        if res["status"] == "ok":
            assert planner["scheduler"]["num_blocks"] > 0


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_llama_8b_blocks_by_hand(path: Path) -> None:
    """Llama-3.1-8B (tests/oracle/configs/llama-3.1-8b): 32 layers, 8 KV heads,
    head_dim 4096/32 = 128, bf16. One 16-token block of one layer holds K and V:
    16 * 8 * 128 * 2 * 2 = 65536 bytes; 20 GiB over 32 layers: 10240 blocks; TP 2
    halves the heads per GPU: 20480."""
    fx = _load(path)
    for cid, tp, expected in (("llama-3.1-8b-tp1", 1, 10240), ("llama-3.1-8b-tp2", 2, 20480)):
        r = fx["results"].get(cid)
        if r is None or r["status"] != "ok":
            continue
        assert r["planner"]["scheduler"]["num_blocks"] == expected
        pages = {fx["specs"][k]["page_size_bytes"] for k in r["stages"][0]["kv_cache_spec"]["spec"]}
        assert pages == {65536 // tp}


@pytest.mark.parametrize("path", ERA_FIXTURES, ids=[p.stem for p in ERA_FIXTURES])
def test_long_context_on_little_memory_is_refused(path: Path) -> None:
    """131072 tokens of Llama-3.1-8B need 131072 * 32 * 8 * 128 * 2 * 2 bytes =
    16 GiB; 4 GiB cannot hold one request, and every release says so."""
    r = _load(path)["results"]["llama-3.1-8b-tp1-mem4g"]
    assert r["status"] == "planner_error"
    assert "16.0" in r["planner"]["error"]["message"]
