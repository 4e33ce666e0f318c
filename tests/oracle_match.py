"""Compare kvplan's per-layer specs with vLLM's own, as recorded by the meta-device oracle.

A fixture ``tests/oracle/fixtures/<family>/vllm-<version>.json`` holds what a
vLLM release itself built for each case of ``tests/oracle/cases/<family>.json``
(vLLM's VllmConfig and model on the meta device, every layer's
``get_kv_cache_spec``, and the planner's groups and block count), produced by
``kvplan/workflows/vllm_meta.py`` inside that release's environment.  The
helpers here turn both sides into the same plain dicts, field by field, so a
test can assert equality and print the first difference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kvplan import api
from kvplan.errors import InputError
from kvplan.workflows.verify import kvplan_layer as kvplan_spec
from kvplan.workflows.verify import vllm_layer as vllm_spec

ORACLE = Path(__file__).parent / "oracle"


def cases(family: str) -> list[dict[str, Any]]:
    return json.loads((ORACLE / "cases" / f"{family}.json").read_text())["cases"]


def fixture(family: str, version: str) -> dict[str, Any]:
    """vLLM's answers for ``family`` in ``version``; a missing file fails the test."""
    path = ORACLE / "fixtures" / family / f"vllm-{version}.json"
    if not path.exists():
        pytest.fail(f"missing oracle fixture {path}")
    return json.loads(path.read_text())


def config(case: dict[str, Any]) -> dict[str, Any]:
    return json.loads((ORACLE / "configs" / case["config"] / "config.json").read_text())


def vllm_stages(fx: dict[str, Any], result: dict[str, Any]) -> list[dict[str, dict[str, Any]]]:
    """Per PP stage (TP rank 0): layer name -> reduced spec, in vLLM's order."""
    out = []
    for stage in sorted(result["stages"], key=lambda s: s["pp_rank"]):
        if stage["tp_rank"] != 0:
            continue
        layers = stage["kv_cache_spec"]["layers"]
        refs = stage["kv_cache_spec"]["spec"]
        out.append({name: vllm_spec(fx["specs"][ref]) for name, ref in zip(layers, refs, strict=True)})
    return out


def serving(case: dict[str, Any], result: dict[str, Any], version: str) -> dict[str, Any]:
    """kvplan's options for one oracle case (batch limits as the oracle's VllmConfig has them)."""
    cfg = result.get("config", {})
    options: dict[str, Any] = {
        "tp": case["tp"],
        "pp": case["pp"],
        "kv_cache_memory": str(case["memory_per_worker_bytes"]),
        "vllm_version": version,
    }
    if cfg.get("scheduler_config.max_num_batched_tokens"):
        options["max_num_batched_tokens"] = cfg["scheduler_config.max_num_batched_tokens"]
    if cfg.get("scheduler_config.max_num_seqs"):
        options["max_num_seqs"] = cfg["scheduler_config.max_num_seqs"]
    args = case.get("args") or {}
    if "max_model_len" in args:
        options["max_model_len"] = args["max_model_len"]
    if "kv_cache_dtype" in args:
        options["kv_cache_dtype"] = args["kv_cache_dtype"]
    return options


def kvplan_plan(case: dict[str, Any], result: dict[str, Any], version: str) -> api.Plan:
    return api.plan(config(case), **serving(case, result, version))


def kvplan_stages(plan: api.Plan) -> list[dict[str, dict[str, Any]]]:
    return [{name: kvplan_spec(s) for name, s in stage.items()} for stage in plan.layout.stage_specs]


def first_difference(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> str:
    """A readable account of where two per-stage layer maps differ first."""
    if len(ours) != len(theirs):
        return f"{len(ours)} stages vs vLLM's {len(theirs)}"
    for rank, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if list(a) != list(b):
            missing = [n for n in b if n not in a][:5]
            extra = [n for n in a if n not in b][:5]
            return f"stage {rank}: layer names differ; vLLM only {missing}, kvplan only {extra}"
        for name in a:
            if a[name] != b[name]:
                return f"stage {rank} {name}: kvplan {a[name]} vs vLLM {b[name]}"
    return "equal"


def vllm_groups(result: dict[str, Any]) -> list[list[tuple[str, ...]]]:
    """Per PP stage (one worker each): its KV cache groups' layer names, sorted.

    A compacted fixture names a group's layers by their positions in the stage's
    layer list (``layers``) instead of by name (``layer_names``)."""
    out = []
    for rank, worker in enumerate(result["planner"]["workers"]):
        names = result["stages"][rank]["kv_cache_spec"]["layers"] if rank < len(result["stages"]) else []
        groups = [
            g.get("layer_names") or [names[i] for i in g.get("layers", [])] for g in worker["kv_cache_groups"]
        ]
        out.append(sorted(tuple(g) for g in groups if g))
    return out


def kvplan_groups(plan: api.Plan) -> list[list[tuple[str, ...]]]:
    return [sorted(g.layer_names for g in stage.groups if g.layer_names) for stage in plan.kv.stages]


def vllm_num_blocks(result: dict[str, Any]) -> int:
    return int(result["planner"]["workers"][0]["num_blocks"])


def refused(case: dict[str, Any], version: str) -> InputError | None:
    """kvplan's refusal of the case's model in ``version`` (None: it plans it)."""
    try:
        api.plan(config(case), tp=case["tp"], pp=case["pp"], kv_cache_memory="20GiB", vllm_version=version)
    except InputError as exc:
        return exc
    return None


# What vLLM's failure for a case means: the release does not register the
# architecture (kvplan must refuse it too).
NOT_SERVED = ("is not supported", "are not supported", "not supported for now", "Model architectures")


def served_result(
    family: str, version: str, case: dict[str, Any], gaps: dict[tuple[str, str], str] | None = None
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The fixture and vLLM's result for ``case``; None when vLLM does not serve the
    model in ``version`` (and kvplan refuses it too).

    ``gaps`` names the (version, case id) pairs the oracle cannot build for reasons
    of its own environment (oracle-requests); they must still fail there, so a
    fixed oracle makes the test notice.
    """
    fx = fixture(family, version)
    result = fx["results"].get(case["id"])
    if result is None:
        pytest.fail(f"case {case['id']} is not in the vLLM {version} fixture")
    gap = (gaps or {}).get((version, case["id"]))
    if gap is not None:
        assert result["status"] != "ok", f"{case['id']} builds in vLLM {version} now: drop the gap ({gap})"
        return None
    if result["status"] == "ok":
        return fx, result
    message = str((result.get("error") or {}).get("message", ""))
    refusal = refused(case, version)
    # Either vLLM says it has no such architecture, or the release predates it (its
    # transformers may then fail first) and kvplan refuses it for that reason.
    arrived_later = refusal is not None and "does not serve" in refusal.message
    assert arrived_later or any(s in message for s in NOT_SERVED), (
        f"vLLM {version} failed on {case['id']}: {message[:300]}"
    )
    assert refusal is not None, f"vLLM {version} does not serve {case['id']}, kvplan plans it"
    return None


def check_layers(family: str, version: str, case: dict[str, Any], gaps: dict | None = None) -> None:
    """kvplan's per-stage layer specs equal vLLM's."""
    got = served_result(family, version, case, gaps)
    if got is None:
        return
    fx, result = got
    plan = kvplan_plan(case, result, version)
    ours, theirs = kvplan_stages(plan), vllm_stages(fx, result)
    assert ours == theirs, first_difference(ours, theirs)


def check_groups(family: str, version: str, case: dict[str, Any], gaps: dict | None = None) -> None:
    """kvplan's KV cache groups (per stage) and block count equal vLLM's planner's."""
    got = served_result(family, version, case, gaps)
    if got is None:
        return
    result = got[1]
    plan = kvplan_plan(case, result, version)
    planner = result.get("planner") or {}
    if "error" in planner:
        # vLLM's planner refused (too little memory for one request): kvplan must say so, in its words.
        assert not plan.fit.fits
        assert plan.fit.error == planner["error"]["message"]
        return
    assert "workers" in planner, f"no planner result recorded for {case['id']} in vLLM {version}"
    assert kvplan_groups(plan) == vllm_groups(result)
    assert plan.num_blocks == vllm_num_blocks(result)
