"""``kvplan verify``: without vLLM it says so (exit 3); with vLLM's own answer it compares figure by figure.

vLLM's answers here are the oracle fixture's (tests/oracle/fixtures/vllm-0.33.0.json), put back into
the shape the meta-device build prints for one case, which is what ``verify`` reads.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from kvplan import api
from kvplan.workflows import verify

ORACLE = Path(__file__).parent / "oracle"
FIXTURE = json.loads((ORACLE / "fixtures" / "vllm-0.33.0.json").read_text())


def raw(cid: str) -> dict[str, Any]:
    """One fixture case as the meta-device build reports it (full specs per layer)."""
    result = json.loads(json.dumps(FIXTURE["results"][cid]))
    for stage in result["stages"]:
        kv = stage.pop("kv_cache_spec")
        stage["specs"] = {name: FIXTURE["specs"][h] for name, h in zip(kv["layers"], kv["spec"], strict=True)}
    return result


def planned(cid: str, **changes: Any) -> api.Plan:
    inputs = FIXTURE["results"][cid]["inputs"]
    flags = {"tp": inputs["tp"], "pp": inputs["pp"], "vllm_version": "0.33.0", "gpu": "H100-80GB"}
    flags["kv_cache_memory"] = str(inputs["memory_per_worker_bytes"])
    return api.plan(str(ORACLE / "configs" / inputs["config"] / "config.json"), **{**flags, **changes})


def test_without_vllm_it_exits_3_with_one_line(kvplan, monkeypatch):
    monkeypatch.setattr(verify.importlib.util, "find_spec", lambda name: None)
    out = kvplan("verify", "llama-3.1-8b", "--kv-cache-memory", "20GiB")
    assert out.code == 3
    assert out.stderr.strip().count("\n") == 0
    assert "vllm and torch are not installed here: pip install vllm" in out.stderr


@pytest.mark.parametrize(
    "cid", ["llama-3.1-8b-tp2", "gemma-3-27b-tp1-pp2", "qwen3-30b-a3b-tp2", "deepseek-v3-tp8"]
)
def test_agreeing_cases_have_no_difference(cid):
    check = verify.compare(planned(cid), raw(cid))
    assert not check.differences, check.differences
    # Layers, weights, resolved values and the plan were all compared, not skipped.
    whats = {r.what for r in check.rows}
    assert {"num_blocks", "capacity log", "max_model_len", "concurrent batches"} <= whats
    assert any("weights on one rank" in w for w in whats)


def test_a_different_setup_is_reported():
    # vLLM's Gemma-3-27B at PP 2 against kvplan planning it as PP 1: the layers per stage, the
    # block count and the capacity all differ, and verify names them.
    check = verify.compare(planned("gemma-3-27b-tp1-pp2", pp=1), raw("gemma-3-27b-tp1-pp2"))
    whats = {r.what for r in check.differences}
    assert {"pipeline stages", "stage 0: KV cache layers", "num_blocks"} <= whats


def test_a_refusal_is_compared_with_vllms_text():
    # 0.33 refuses Llama-3.1-8B at 4 GiB: 131,072 tokens need 16 GiB (vllm-0.33.0.json, llama-3.1-8b-tp1-mem4g).
    check = verify.compare(planned("llama-3.1-8b-tp1-mem4g"), raw("llama-3.1-8b-tp1-mem4g"))
    assert not check.differences
    assert any(r.what == "vLLM's error" and r.same for r in check.rows)


def test_the_build_it_runs_imports_nothing_from_kvplan():
    """vllm_meta.py runs inside vLLM's environment as a subprocess: it must stand alone."""
    tree = ast.parse(verify.META_BUILD.read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {n for n in names if n.split(".")[0] == "kvplan"}
