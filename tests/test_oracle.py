"""kvplan against vLLM's own code: the model built on the meta device, its resolved
config and its planner, release by release.

``tests/oracle/fixtures/vllm-<ver>.json`` hold what vLLM did for each case of
``tests/oracle/cases.json`` (written by tools/vllm_oracle/run.py, which runs
the released wheel's EngineArgs, model code and KV cache planner on CPU): every
layer's KV cache spec per pipeline stage, the resolved engine settings, the
planner's groups, blocks, tensors and capacity lines at the case's memory per
worker, or vLLM's own error.  Here kvplan plans the same config with the same
arguments and must agree, field by field.  A missing fixture fails.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from kvplan import api
from kvplan.errors import InputError, KvplanError, PlannerRefusal
from kvplan.workflows.verify import kvplan_layer as kvplan_spec
from kvplan.workflows.verify import vllm_layer as vllm_spec
from tools.oracle_oldest import extra_runs

ORACLE = Path(__file__).parent / "oracle"
EVERY_CASE = ("0.33.0", "0.32.0", "0.28.0", "0.23.0", "0.19.1", "0.15.1", "0.11.0", "0.10.2")
# and the oldest releases serving the cases' architectures, whose fixtures hold those cases
# (tools/oracle_oldest.py; tests/test_oldest.py checks they are all there)
RELEASES = EVERY_CASE + tuple(sorted({v for v, _ in extra_runs("oracle", EVERY_CASE)}))
GPU_BY_CAPABILITY = {"8.0": "A100-80GB", "8.9": "L40S", "9.0": "H100-80GB", "10.0": "B200"}
# Engine arguments a case may set, as kvplan's serving options.
ARGS = {
    "max_model_len",
    "kv_cache_dtype",
    "block_size",
    "max_num_seqs",
    "max_num_batched_tokens",
    "enforce_eager",
    "gpu_memory_utilization",
    "num_gpu_blocks_override",
    "disable_hybrid_kv_cache_manager",
}
# Arguments only the harness needs (a multi-node world for large TP x PP).
HARNESS_ARGS = {"nnodes"}
# Differences known and explained, each still compared (strict xfail: a fix makes it fail loudly).
_NO_FLASHINFER = (
    "the oracle's CPU environment cannot import FlashInfer, so vLLM skips the Blackwell MLA "
    "backends a B200 would pick (block 128 instead of FlashInfer MLA's)"
)
_SM100 = ("deepseek-r1-tp1-sm100", "deepseek-v2-lite-tp1-sm100", "deepseek-v3-tp1-sm100", "kimi-k2-tp1-sm100")
_NO_FLASHINFER_ATTENTION = (
    "the oracle's CPU environment cannot import FlashInfer, so vLLM runs a B200's full attention on "
    "FLASH_ATTN (FA4: 128-token kernel blocks for head size 256) instead of FLASHINFER (16): the hybrid "
    "block is 384 instead of 320; the delta nets' checkpoint block (FlashInfer's GDN prefill) is there"
)
_GDN_SM100 = "qwen3-next-80b-a3b-tp4-sm100"
_NO_REMOTE_CODE = (
    "transformers 4.57 has no nemotron_h config and the case carries no remote code, so vLLM 0.19.1 "
    "refuses the config; a checkpoint with its configuration_nemotron_h.py is served"
)
_ALIGNED_LATER = tuple(
    f"{m}-{t}"
    for m in ("jamba-v0.1", "qwen3-next-80b-a3b", "qwen3.5-397b-a17b")
    for t in ("tp1", "tp2", "tp4", "tp8", "tp1-pp2")
)
# Differences known and explained, per comparison; each is still run (strict xfail: a fix makes it fail
# loudly, so the entry must go).
KNOWN_GAPS: dict[str, dict[str, str]] = {
    "layers": {
        **{f"0.33.0-{c}": _NO_FLASHINFER for c in _SM100},
        **{f"0.19.1-nemotron-h-8b-{t}": _NO_REMOTE_CODE for t in ("tp1", "tp2", "tp1-pp2")},
        **{f"0.19.1-{c}": _NO_FLASHINFER for c in _SM100},
        **{f"0.32.0-{c}": _NO_FLASHINFER for c in _SM100},
        **{f"{v}-{c}": _NO_FLASHINFER for c in _SM100 for v in ("0.28.0", "0.23.0")},
        **{f"{v}-{_GDN_SM100}": _NO_FLASHINFER_ATTENTION for v in ("0.33.0", "0.32.0")},
    },
    "resolved": {},
    "plan": {
        **{
            f"{v}-{c}": _NO_FLASHINFER
            for c in _SM100
            for v in ("0.33.0", "0.32.0", "0.28.0", "0.23.0", "0.19.1")
        },
        **{f"{v}-{_GDN_SM100}": _NO_FLASHINFER_ATTENTION for v in ("0.33.0", "0.32.0")},
    },
}


# Config refusals that come from the CPU environment the fixtures were made in, not from vLLM's
# decision about the model: a checkpoint's remote code (a folder with only config.json lacks it),
# a transformers release without the model type, and the multi-node arguments of older releases.
ENVIRONMENT_REFUSALS = (
    "trust_remote_code=True",
    "Transformers does not recognize this architecture",
    "unexpected keyword argument 'nnodes'",
    "Unable to load Ray",
)
# Releases whose engine choice sends a model with recurrent state (Mamba layers: vLLM's
# ``is_hybrid`` / ``is_attention_free`` models) to the V0 engine unless VLLM_USE_V1=1 is set
# (vllm/engine/arg_utils.py, ``_is_v1_supported_oracle``: "Falling back to V0 Engine"); kvplan plans
# V1 and refuses them there.  The harness builds the V1 runner whatever the engine choice, so
# these results are what V1's code does in a V0 process (no Mamba layer registers), not what vLLM serves.
V0_FOR_RECURRENT = ("0.10.0", "0.10.1")


def _served_by_v0(version: str, result: dict[str, Any]) -> bool:
    config = result.get("config") or {}
    return version in V0_FOR_RECURRENT and bool(
        config.get("model_config.is_hybrid") or config.get("model_config.is_attention_free")
    )


# Statuses that are vLLM's own answer: a plan, a planner refusal, a config refusal.
VLLM_ANSWERS = ("ok", "planner_error", "config_error")
# Cases the CPU harness could not build, with why; vLLM's answer for them is unknown.
_NO_FLASHINFER_015 = "0.15.1 picks FLASHINFER_MLA on a B200, which the CPU environment cannot import"
HARNESS_FAILURES: dict[str, str] = {
    f"0.15.1-{c}-tp1-sm100": _NO_FLASHINFER_015 for c in ("deepseek-r1", "deepseek-v2-lite", "deepseek-v3")
}
# Cases whose model vLLM's own code fails to build on any machine (the harness records them as
# build errors): kvplan must refuse them with vLLM's exception.
_GEMMA3N_TEXT = (
    "up to 0.11.0 gemma3n.py names the KV-sharing target under language_model., which the "
    "text-only Gemma3nForCausalLM does not have"
)
MODEL_REFUSALS: dict[str, str] = {
    f"{v}-gemma-3n-e4b-text-defaults-{t}": _GEMMA3N_TEXT for v in ("0.11.0", "0.10.2") for t in ("tp1", "tp2")
}


@cache
def fixture(version: str) -> dict[str, Any]:
    return json.loads((ORACLE / "fixtures" / f"vllm-{version}.json").read_text())


def cases(comparison: str) -> list[Any]:
    gaps = KNOWN_GAPS[comparison]
    out = []
    for version in RELEASES:
        if not (ORACLE / "fixtures" / f"vllm-{version}.json").exists():
            out.append(pytest.param(version, "missing-fixture", id=f"{version}-missing-fixture"))
            continue  # fails in the test: the fixture cannot be read
        data = fixture(version)
        for cid, result in data["results"].items():
            if result["status"] == "config_error" and "World size" in result["error"]["message"]:
                continue  # the harness's one-node world, not vLLM's decision about the model
            if result["status"] == "config_error" and any(
                text in result["error"]["message"] for text in ENVIRONMENT_REFUSALS
            ):
                continue  # counted in test_environment_refusals_are_known
            if result["status"] not in VLLM_ANSWERS:
                continue  # the harness could not run vLLM's code (test_harness_failures_are_known)
            if result["status"] == "config_error" and comparison != "layers":
                continue  # vLLM refused the config: test_layers_equal_vllms checks kvplan refuses it too
            key = f"{version}-{cid}"
            if _served_by_v0(version, result):
                continue  # test_v0_served_models_are_refused
            marks = [pytest.mark.xfail(reason=gaps[key], strict=True)] if key in gaps else []
            out.append(pytest.param(version, cid, id=key, marks=marks))
    return out


def flags_for(version: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The kvplan serving options of one oracle case."""
    unknown = set(inputs["args"]) - ARGS - HARNESS_ARGS
    assert not unknown, f"oracle case arguments kvplan cannot express: {sorted(unknown)}"
    flags: dict[str, Any] = {k: v for k, v in inputs["args"].items() if k in ARGS}
    flags.update(
        tp=inputs["tp"],
        pp=inputs["pp"],
        vllm_version=version,
        gpu=GPU_BY_CAPABILITY[inputs["capability"]],
        kv_cache_memory=str(inputs["memory_per_worker_bytes"]),
    )
    return flags


@cache
def _plan(version: str, cid: str) -> tuple[dict[str, Any], dict[str, Any], Any]:
    data = fixture(version)
    result = data["results"][cid]
    config = ORACLE / "configs" / result["inputs"]["config"] / "config.json"
    try:
        got: Any = api.plan(str(config), **flags_for(version, result["inputs"]))
    except KvplanError as err:
        got = err
    return data, result, got


@pytest.mark.parametrize(("version", "cid"), cases("layers"))
def test_layers_equal_vllms(version: str, cid: str) -> None:
    """Every KV cache layer on every stage, named and specified as vLLM's model builds it."""
    data, result, got = _plan(version, cid)
    if result["status"] == "config_error":
        assert isinstance(got, KvplanError), f"vLLM refused the config: {result['error']['message']}"
        return
    assert not isinstance(got, KvplanError), got
    assert len(got.stages) == len(result["stages"])
    for stage in result["stages"]:
        names = stage["kv_cache_spec"]["layers"]
        want = {
            n: vllm_spec(data["specs"][h]) for n, h in zip(names, stage["kv_cache_spec"]["spec"], strict=True)
        }
        mine = {n: kvplan_spec(s) for n, s in got.layout.stage_specs[stage["pp_rank"]].items()}
        assert list(mine) == list(want), f"stage {stage['pp_rank']}: layer names"
        for name in want:
            assert mine[name] == want[name], name
        if stage.get("layers"):  # the decoder layers the stage holds (not recorded before 0.11)
            start, end = stage["layers"]
            assert got.layout.ranges[stage["pp_rank"]] == (start, end)


@pytest.mark.parametrize(("version", "cid"), cases("resolved"))
def test_resolved_values_equal_vllms(version: str, cid: str) -> None:
    """What vLLM resolved before planning: length, runner, scheduling, batch sizes, dtypes."""
    _, result, got = _plan(version, cid)
    cfg = result["config"]
    assert got.max_model_len == cfg["model_config.max_model_len"] or result["status"] == "planner_error"
    # Releases before the V2 runner and the in-flight reservation have no such settings.
    assert got.engine.v2_model_runner == cfg.get("use_v2_model_runner", False)
    if "max_concurrent_batches" in cfg:
        assert got.engine.max_concurrent_batches == cfg["max_concurrent_batches"]
    if "max_in_flight_tokens" in cfg:
        assert got.engine.max_in_flight_tokens(got.max_num_batched_tokens) == cfg["max_in_flight_tokens"]
    assert got.engine.async_scheduling == cfg["scheduler_config.async_scheduling"]
    assert got.max_num_batched_tokens == cfg["scheduler_config.max_num_batched_tokens"]
    assert got.max_num_seqs == cfg["scheduler_config.max_num_seqs"]
    assert got.description.dtype == cfg["model_config.dtype"]
    # Before the Mamba cache modes (0.15) there is one state per request: mode "none".
    assert got.layout.mamba_cache_mode == cfg.get("cache_config.mamba_cache_mode", "none")


@pytest.mark.parametrize(("version", "cid"), cases("plan"))
def test_plan_equals_vllms(version: str, cid: str) -> None:
    """vLLM's planner on its own specs and config: groups, blocks, tensors, capacity, or its refusal."""
    _, result, got = _plan(version, cid)
    planner = result["planner"]
    if planner.get("error"):
        err = planner["error"]
        if isinstance(got, PlannerRefusal):
            assert (got.vllm_type, got.vllm_message) == (err["type"], err["message"])
            return
        assert not got.fit.fits, f"vLLM refused: {err['message']}"
        assert got.fit.error == err["message"]
        return
    assert got.fit.fits
    for stage, worker in zip(got.stages, planner["workers"], strict=True):
        assert stage.num_blocks == worker["num_blocks"]
        assert [t.size for t in stage.tensors] == [t["size"] for t in worker["kv_cache_tensors"]]
        assert [list(t.shared_by) for t in stage.tensors] == [
            t.get("layers", t.get("shared_by")) for t in worker["kv_cache_tensors"]
        ]
        if any("layer_stride" in t for t in worker["kv_cache_tensors"]):
            # 0.29+: one backing allocation, each (group, spec) region at its offset and strides
            assert [(t.offset, t.layer_stride, t.block_stride) for t in stage.tensors] == [
                (t["offset"], t["layer_stride"], t["block_stride"]) for t in worker["kv_cache_tensors"]
            ]
    lines = [line.split(" ", 1)[1] for line in result["log"]]
    # Where every worker logs its own report (0.10 - 0.11.0), kvplan gives the first one, whole.
    first = next(i for i, line in enumerate(lines) if "Maximum concurrency" in line)
    assert list(got.log_lines) == lines[: first + 1]
    capacity = planner["capacity"]
    # Releases before 0.24 compute no token figure outside the log line.
    tokens = capacity.get("kv_cache_size_tokens") or int(
        re.search(r"size: ([\d,]+)", lines[0])[1].replace(",", "")
    )
    assert got.kv_cache_tokens == tokens
    assert got.max_concurrency == pytest.approx(capacity["max_concurrency"], rel=1e-12)


def _v0_cases() -> list[Any]:
    return [
        pytest.param(version, cid, id=f"{version}-{cid}")
        for version in RELEASES
        if version in V0_FOR_RECURRENT
        for cid, result in fixture(version)["results"].items()
        if _served_by_v0(version, result)
    ]


@pytest.mark.parametrize(("version", "cid"), _v0_cases())
def test_v0_served_models_are_refused(version: str, cid: str) -> None:
    _, _, got = _plan(version, cid)
    assert isinstance(got, InputError), got
    assert "V0 engine" in str(got), got


def test_harness_failures_are_known() -> None:
    """Every case the harness could not run is listed with its cause, and no listed one now runs."""
    failed = {
        f"{version}-{cid}"
        for version in RELEASES
        for cid, result in fixture(version)["results"].items()
        if result["status"] not in VLLM_ANSWERS
    }
    assert failed == set(HARNESS_FAILURES) | set(MODEL_REFUSALS)


@pytest.mark.parametrize("key", sorted(MODEL_REFUSALS))
def test_models_vllm_cannot_build_are_refused_with_its_error(key: str) -> None:
    version, cid = next((v, key[len(v) + 1 :]) for v in RELEASES if key.startswith(f"{v}-"))
    _, result, got = _plan(version, cid)
    assert result["status"] == "build_error"
    assert isinstance(got, PlannerRefusal), got
    assert (got.vllm_type, got.vllm_message) == (result["error"]["type"], result["error"]["message"])


def test_every_release_fixture_is_there() -> None:
    # The planner eras the fixtures must cover; a missing file fails here and in every case list.
    for version in RELEASES:
        assert fixture(version)["vllm_version"] == version


def test_environment_refusals_are_known() -> None:
    """The config refusals the fixtures' environment caused, per release and case: a new one fails here."""
    found = {
        f"{version}-{cid}"
        for version in RELEASES
        for cid, result in fixture(version)["results"].items()
        if result["status"] == "config_error"
        and any(text in result["error"]["message"] for text in ENVIRONMENT_REFUSALS)
    }
    want = {
        *(
            f"{v}-kimi-k2-{c}"
            for v in ("0.10.0", "0.10.2", "0.11.0", "0.15.1")
            for c in ("tp1", "tp8", "tp1-sm80", "tp1-sm100")
        ),
        # transformers 4.53.3 (0.10.0's) has no deepseek_v2 config class
        *(f"0.10.0-deepseek-v2-lite-{c}" for c in ("tp1", "tp2", "tp1-pp2", "tp1-sm80", "tp1-sm100")),
        *(
            f"{v}-nemotron-h-8b-{c}"
            for v in ("0.10.0", "0.10.2", "0.11.0", "0.15.1", "0.19.1")
            for c in ("tp1", "tp2", "tp1-pp2")
        ),
        *(f"{v}-qwen3.5-397b-a17b-{c}" for v in ("0.10.2", "0.11.0", "0.15.1") for c in ("tp1", "tp8")),
        # 0.10 and 0.11 take more than 8 GPUs on one node through Ray, which the environment lacks,
        # and have no --nnodes argument
        *(
            f"{v}-llama-3.1-8b-{c}{n}"
            for v in ("0.10.0", "0.10.2", "0.11.0")
            for c, n in (("tp4-pp4", "-nnodes2"), ("tp8-pp2", "-nnodes2"), ("tp8-pp4", "-nnodes4"))
            for n in ("", n)
        ),
    }
    assert found == want
