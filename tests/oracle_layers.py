"""kvplan's per-layer specs next to vLLM's own, from the meta-device oracle fixtures.

``tests/oracle/cases/<family>.json`` lists the cases (a config folder under
``tests/oracle/configs``, engine args, TP, PP); ``tests/oracle/fixtures/
<family>/vllm-<version>.json`` holds what vLLM's model code built for each
(``tools/oracle_family.py`` writes it).  ``compare`` derives the same config
with kvplan for the same release and parallelism and returns every
difference, stage by stage and layer by layer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kvplan.errors import InputError
from kvplan.inputs.models import resolve_model
from kvplan.inputs.serving import Serving
from kvplan.model.describe import describe
from kvplan.releases import resolve_release
from kvplan.vllm.layout import build_layout
from kvplan.vllm.specs import (
    AttentionSpec,
    ChunkedLocalAttentionSpec,
    FullAttentionSpec,
    KVCacheSpec,
    MambaSpec,
    MLAAttentionSpec,
    SlidingWindowSpec,
)

ORACLE = Path(__file__).parent / "oracle"

# Engine arguments the cases use, and kvplan's serving option for each.
_ARGS = {
    "max_model_len": "max_model_len",
    "kv_cache_dtype": "kv_cache_dtype",
    "block_size": "block_size",
    "enforce_eager": "enforce_eager",
}
# Engine arguments that only let vLLM read the config (kvplan reads config.json itself).
_CONFIG_ONLY_ARGS = {"trust_remote_code", "skip_tokenizer_init"}


def cases(family: str) -> list[dict[str, Any]]:
    return json.loads((ORACLE / "cases" / f"{family}.json").read_text())["cases"]


def fixture(family: str, version: str) -> dict[str, Any]:
    """vLLM's answers; a missing file is an error, never a skip."""
    path = ORACLE / "fixtures" / family / f"vllm-{version}.json"
    return json.loads(path.read_text())


def spec_fields(spec: KVCacheSpec) -> dict[str, Any]:
    """A kvplan spec in the oracle's spelling."""
    out: dict[str, Any] = {"class": type(spec).__name__, "block_size": spec.block_size}
    if isinstance(spec, AttentionSpec):
        out.update(num_kv_heads=spec.num_kv_heads, head_size=spec.head_size, dtype=spec.dtype)
        head_v = getattr(spec, "head_size_v", None)
        out["head_size_v"] = spec.head_size if head_v is None else head_v
        if isinstance(spec, MLAAttentionSpec):
            out["head_size_v"] = 0
        out["sliding_window"] = getattr(spec, "sliding_window", None)
        if isinstance(spec, (FullAttentionSpec, ChunkedLocalAttentionSpec)):
            out["attention_chunk_size"] = getattr(spec, "attention_chunk_size", None)
    if isinstance(spec, MambaSpec):
        out.update(shapes=[list(s) for s in spec.shapes], dtypes=list(spec.dtypes))
    out["page_size_bytes"] = spec.page_size_bytes
    return out


def _vllm_fields(spec: dict[str, Any]) -> dict[str, Any]:
    out = {k: spec.get(k) for k in ("class", "block_size", "page_size_bytes")}
    if "num_kv_heads" in spec:
        for k in ("num_kv_heads", "head_size", "dtype", "head_size_v", "sliding_window"):
            out[k] = spec.get(k)
        if "head_size_v" not in spec:
            # Releases whose spec has no separate V head size: V is as wide as K.
            out["head_size_v"] = spec["head_size"]
        if spec["class"] in ("FullAttentionSpec", "ChunkedLocalAttentionSpec", "MLAAttentionSpec"):
            out["attention_chunk_size"] = spec.get("attention_chunk_size")
        if spec["class"] == "MLAAttentionSpec":
            out.pop("attention_chunk_size")
    if "shapes" in spec:
        out.update(shapes=spec["shapes"], dtypes=spec["dtypes"])
    return out


def _kvplan_fields(spec: KVCacheSpec) -> dict[str, Any]:
    out = spec_fields(spec)
    if isinstance(spec, MLAAttentionSpec):
        out.pop("attention_chunk_size", None)
    if isinstance(spec, SlidingWindowSpec):
        out.pop("attention_chunk_size", None)
    return out


def kvplan_stages(case: dict[str, Any], version: str) -> list[dict[str, KVCacheSpec]]:
    """kvplan's per-stage specs for one case."""
    model = resolve_model(str(ORACLE / "configs" / case["config"] / "config.json"))
    release = resolve_release(version)
    options: dict[str, Any] = {"tp": case["tp"], "pp": case["pp"], "vllm_version": version}
    for arg, value in (case.get("args") or {}).items():
        if arg in _CONFIG_ONLY_ARGS:
            continue
        if arg not in _ARGS:
            raise AssertionError(f"case {case['id']}: engine arg {arg} has no kvplan option")
        options[_ARGS[arg]] = value
    serving = Serving(**options)
    layout = build_layout(describe(model, release), serving, release)
    return list(layout.stage_specs)


def compare(case: dict[str, Any], result: dict[str, Any], specs: dict[str, Any], version: str) -> list[str]:
    """Every difference between kvplan's layers and vLLM's for one case."""
    if result["status"] not in ("ok", "planner_error"):
        return [f"vLLM did not build the model: {result.get('error')}"]
    ours = kvplan_stages(case, version)
    theirs = result["stages"]
    diffs: list[str] = []
    if len(ours) != len(theirs):
        return [f"{len(ours)} stages, vLLM has {len(theirs)}"]
    for rank, (mine, stage) in enumerate(zip(ours, theirs, strict=True)):
        names = stage["layers"]
        if list(mine) != names:
            missing = sorted(set(names) - set(mine))[:3]
            extra = sorted(set(mine) - set(names))[:3]
            diffs.append(f"stage {rank}: layer names differ (vLLM only {missing}, kvplan only {extra})")
            continue
        for name, key in zip(names, stage["spec"], strict=True):
            want = _vllm_fields(specs[key])
            got = _kvplan_fields(mine[name])
            if got != want:
                delta = {
                    k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)
                }
                diffs.append(f"stage {rank} {name}: (kvplan, vLLM) {delta}")
    return diffs


def check(family: str, version: str, case: dict[str, Any], gaps: dict[tuple[str, str], str]) -> None:
    """kvplan's layers for ``case`` equal what vLLM ``version`` built.

    Where vLLM did not build the model, kvplan must refuse it too (an architecture
    the release does not serve, a text config it cannot resolve), or the case must
    be a known gap of the oracle's inputs: ``gaps`` by (version or "*", config).
    """
    data = fixture(family, version)
    result = data["results"].get(case["id"])
    assert result is not None, f"no vLLM {version} result for {case['id']}: rerun tools/oracle_family.py"
    if result["status"] not in ("ok", "planner_error"):
        try:
            kvplan_stages(case, version)
        except InputError:
            return
        gap = gaps.get((version, case["config"])) or gaps.get(("*", case["config"]))
        assert gap, (
            f"vLLM {version} could not build {case['id']} but kvplan derives it: {result.get('error')}"
        )
        pytest.xfail(gap)
    assert compare(case, result, data["specs"], version) == []
