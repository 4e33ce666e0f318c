"""kvplan against vLLM's own model code on the meta device, case by case.

A family's cases are ``tests/oracle/cases/<family>.json`` (the oracle's case
format; ``config`` names a folder under ``tests/oracle/configs``, ``releases``
the vLLM releases the case is run on) and vLLM's answers are
``tests/oracle/fixtures/<family>/vllm-<version>.json`` (written by
``tools/oracle_mla_spec.py``).  For every case kvplan plans the same config
with the same serving arguments and must give, on every pipeline stage,
vLLM's layers in vLLM's order with vLLM's spec fields, and vLLM's groups,
block count and capacity lines; where vLLM refused, kvplan refuses too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kvplan.api import Plan, plan
from kvplan.errors import InputError, PlannerRefusal
from kvplan.releases import resolve_release
from kvplan.vllm.specs import KVCacheSpec, MambaSpec, MLAAttentionSpec, SlidingWindowSpec, UniformTypeSpecs

ORACLE = Path(__file__).parent / "oracle"
# The GPU each of the oracle's stand-in capabilities is.
GPUS = {"8.0": "A100-80GB", "9.0": "H100-80GB", "10.0": "B200"}
_CLASSES = {"full": "FullAttentionSpec", "mla": "MLAAttentionSpec", "sliding_window": "SlidingWindowSpec"}


def cases(family: str) -> list[dict[str, Any]]:
    return json.loads((ORACLE / "cases" / f"{family}.json").read_text())["cases"]


def fixture(family: str, version: str) -> dict[str, Any]:
    """vLLM's answers for one release; a missing file fails the test that needs it."""
    path = ORACLE / "fixtures" / family / f"vllm-{version}.json"
    assert path.exists(), (
        f"missing oracle fixture {path} (run tools/oracle_mla_spec.py {family} --versions {version})"
    )
    return json.loads(path.read_text())


def params(family: str, releases: tuple[str, ...]) -> list[Any]:
    """(version, case) pairs for every case and every release it lists."""
    return [
        pytest.param(version, case, id=f"{version}-{case['id']}")
        for case in cases(family)
        for version in releases
        if version in case.get("releases", releases)
    ]


def serving(case: dict[str, Any], version: str, result: dict[str, Any]) -> dict[str, Any]:
    """kvplan's options for an oracle case (vLLM's batch defaults read from its resolved config)."""
    args = dict(case["args"])
    out: dict[str, Any] = {
        "tp": case["tp"],
        "pp": case["pp"],
        "gpu": GPUS[case["capability"]],
        "kv_cache_memory": case["memory_per_worker_bytes"],
        "vllm_version": version,
    }
    config = result.get("config") or {}
    if "scheduler_config.max_num_batched_tokens" in config:
        out["max_num_batched_tokens"] = config["scheduler_config.max_num_batched_tokens"]
        out["max_num_seqs"] = config["scheduler_config.max_num_seqs"]
    for key in ("kv_cache_dtype", "max_model_len", "block_size", "disable_hybrid_kv_cache_manager"):
        if key in args:
            out[key] = args[key]
    if "speculative_config" in args:
        spec = dict(args["speculative_config"])
        if isinstance(spec.get("model"), str):
            spec["model"] = str(ORACLE / "configs" / spec["model"])
        out["speculative_config"] = spec
    return out


def run_kvplan(case: dict[str, Any], version: str, result: dict[str, Any]) -> Plan:
    return plan(str(ORACLE / "configs" / case["config"] / "config.json"), **serving(case, version, result))


def _dtype(name: str) -> str:
    # vLLM keeps every 8-bit cache as uint8 (kv_cache_dtype_str_to_dtype).
    return "uint8" if name.startswith("fp8") or name == "uint8" else name


def kvplan_view(spec: KVCacheSpec, release_fields: set[str]) -> dict[str, Any]:
    """A kvplan spec in the fields and spellings of vLLM's spec JSON."""
    out: dict[str, Any] = {"block_size": spec.block_size, "page_size_bytes": spec.page_size_bytes}
    if isinstance(spec, MambaSpec):
        out.update(
            {
                "class": "MambaSpec",
                "shapes": [list(s) for s in spec.shapes],
                "dtypes": [_dtype(d) for d in spec.dtypes],
                "num_speculative_blocks": spec.num_speculative_blocks,
            }
        )
        # The prefill checkpoint block (0.29+) and its alignment (0.30+), where the release has them.
        if "num_prefill_checkpoint_blocks" in release_fields:
            out["num_prefill_checkpoint_blocks"] = spec.num_prefill_checkpoint_blocks
        if "prefill_checkpoint_alignment" in release_fields:
            out["prefill_checkpoint_alignment"] = spec.prefill_checkpoint_alignment
        return out
    out.update(
        {
            "class": _CLASSES[spec.kind],
            "num_kv_heads": getattr(spec, "num_kv_heads", None),
            "head_size": getattr(spec, "head_size", None),
            "dtype": _dtype(getattr(spec, "dtype", "")),
        }
    )
    if isinstance(spec, MLAAttentionSpec) and "use_mla" in release_fields:
        # before MLAAttentionSpec existed (0.10.x) vLLM gave MLA layers a FullAttentionSpec
        # flagged use_mla, without its own cache dtype
        out.update({"class": "FullAttentionSpec", "use_mla": True})
    elif isinstance(spec, MLAAttentionSpec):
        out["cache_dtype_str"] = spec.cache_dtype_str
        if "cache_role" in release_fields:
            out["cache_role"] = spec.cache_role.upper()
            out["is_index_group_leader"] = spec.index_group_leader
        if "topk_buffer_width" in release_fields:
            out["topk_buffer_width"] = spec.topk_buffer_width
    else:
        head_v = getattr(spec, "head_size_v", None)
        out["head_size_v"] = head_v if head_v is not None else spec.head_size  # type: ignore[attr-defined]
    if isinstance(spec, SlidingWindowSpec):
        out["sliding_window"] = spec.sliding_window
        if "extra_retained_tokens" in release_fields:
            out["extra_retained_tokens"] = spec.extra_retained_tokens
    if "is_draft" in release_fields:
        out["is_draft"] = getattr(spec, "is_draft", False)
    return out


def vllm_view(spec: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    out = {k: spec.get(k) for k in keys}
    if "dtype" in out and isinstance(out["dtype"], str):
        out["dtype"] = _dtype(out["dtype"])
    if "dtypes" in out:
        out["dtypes"] = [_dtype(d) for d in out["dtypes"]]
    return out


def compare(family: str, version: str, case: dict[str, Any]) -> None:
    """kvplan's plan of ``case`` equals vLLM's answer in the release's fixture."""
    data = fixture(family, version)
    result = data["results"][case["id"]]
    status = result["status"]
    if status in ("config_error", "build_error"):
        err = result["error"]
        with pytest.raises((InputError, PlannerRefusal)):
            run_kvplan(case, version, result)
        assert err["type"] in ("ValueError", "NotImplementedError", "AssertionError"), err
        return
    got = run_kvplan(case, version, result)
    stages = result["stages"]
    assert len(got.layout.stage_specs) == len(stages)
    for mine, theirs in zip(got.layout.stage_specs, stages, strict=True):
        names = theirs["kv_cache_spec"]["layers"]
        assert list(mine) == names, "the stage's KV layers, in vLLM's order"
        for name, key in zip(names, theirs["kv_cache_spec"]["spec"], strict=True):
            spec = data["specs"][key]
            fields = set(spec)
            view = kvplan_view(mine[name], fields)
            assert view == vllm_view(spec, list(view)), name
        if "draft_layers" in theirs:
            assert sorted(n for n, s in mine.items() if getattr(s, "is_draft", False)) == sorted(
                theirs["draft_layers"]
            )
    planner = result["planner"]
    if "error" in planner:
        assert not got.fit.fits
        assert got.fit.error == planner["error"]["message"]
        return
    worker = planner["workers"][0]
    names = stages[0]["kv_cache_spec"]["layers"]
    want_groups = [g.get("layer_names") or [names[i] for i in g["layers"]] for g in worker["kv_cache_groups"]]
    assert [list(g.layer_names) for g in got.stages[0].groups] == want_groups
    for group, want in zip(got.stages[0].groups, worker["kv_cache_groups"], strict=True):
        spec = data["specs"][want["spec"]]
        assert spec["page_size_bytes"] == group.spec.page_size_bytes
        assert (spec["class"] == "UniformTypeKVCacheSpecs") == isinstance(group.spec, UniformTypeSpecs)
    assert got.num_blocks == planner["scheduler"]["num_blocks"]
    lines = [line.removeprefix("INFO ") for line in result["log"]]
    assert list(got.log_lines) == lines


def release_ok(version: str) -> bool:
    return resolve_release(version).version == version
