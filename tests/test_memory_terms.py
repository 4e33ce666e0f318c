"""The memory budget's terms, release by release and runner by runner (kvplan.memory.runtime).

Expected values are hand arithmetic on the formulas of docs/memory.md, whose
release boundaries come from vLLM's wheels (cited per test).
"""

from __future__ import annotations

import pytest

from kvplan import api
from kvplan.errors import PlannerRefusal
from kvplan.inputs.models import resolve_model
from kvplan.inputs.serving import Serving
from kvplan.memory import runtime
from kvplan.model.describe import describe
from kvplan.releases import resolve_release

GiB = 1 << 30


def _model(name: str, version: str = "0.33"):
    return describe(resolve_model(name), resolve_release(version))


def _runner(name: str, version: str) -> runtime.Runner:
    return runtime.model_runner(_model(name, version), Serving(), resolve_release(version))


@pytest.mark.parametrize(
    ("version", "requests", "vendor", "path", "per"),
    [
        ("0.10.2", 256, "nvidia", "PyTorch sort", 38.2),  # FlashInfer is a pip extra: sort without it
        (
            "0.15.1",
            256,
            "nvidia",
            "PyTorch sort",
            38.2,
        ),  # opt-in FlashInfer (VLLM_USE_FLASHINFER_SAMPLER unset)
        ("0.17.0", 256, "nvidia", "Triton top-k/top-p", 14.0),  # apply_top_k_top_p: Triton from 8 rows
        ("0.17.0", 4, "nvidia", "PyTorch sort", 38.2),  # ... sort below
        ("0.21.0", 256, "nvidia", "FlashInfer top-k/top-p", 14.0),  # on by default (envs.py)
        ("0.21.0", 256, "amd", "PyTorch sort", 38.2),  # not CUDA: forward_native
    ],
)
def test_v1_sampler_path_by_release(version: str, requests: int, vendor: str, path: str, per: float) -> None:
    got = runtime.sampler_path(runtime.Runner("V1", ""), resolve_release(version), requests, vendor)
    assert (got.name, got.bytes_per_element) == (path, per)


def test_v2_sampler_is_logits_only_until_0_33() -> None:
    # 0.26 V2 _dummy_sampler_run: the dummy batch has no top-k/top-p, only model-dtype logits.
    assert (
        runtime.sampler_path(
            runtime.Runner("V2", ""), resolve_release("0.26"), 256, "nvidia"
        ).bytes_per_element
        == 2
    )
    # 0.33 adds a pass with SamplingParams.for_sampler_warmup(): fp32 copy + FlashInfer's two fp32 tensors.
    assert (
        runtime.sampler_path(
            runtime.Runner("V2", ""), resolve_release("0.33"), 256, "nvidia"
        ).bytes_per_element
        == 14
    )


def test_activation_is_the_fitted_sort_formula_on_0_15() -> None:
    # llama-3.1-8b, 8192 tokens, 1024 requests, vocab 128256, hidden 4096 (the llm-d fit).
    model = _model("llama-3.1-8b", "0.15")
    got = runtime.activation_bytes(
        model, Serving(), resolve_release("0.15"), _runner("llama-3.1-8b", "0.15"), 8192, 1024, last=True
    )
    assert got.bytes == int(38.2 * 1024 * 128256 + 2.71 * 8192 * 4096)


def test_forward_peak_wins_when_the_sampler_is_small() -> None:
    # qwen2.5-7b on 0.26 runs on V2 (not MoE): logits only, 2 B x 256 x 152064 = 78 MB, while the
    # forward over 32768 tokens holds 3 x hidden 3584 + 3 x intermediate 18944 bf16 values per token.
    release = resolve_release("0.26")
    runner = _runner("qwen2.5-7b", "0.26")
    assert runner.v2
    got = runtime.activation_bytes(
        _model("qwen2.5-7b", "0.26"), Serving(), release, runner, 32768, 256, last=True
    )
    assert got.bytes == 32768 * (3 * 3584 + 3 * 18944) * 2
    assert got.source.startswith("forward peak")


def test_non_last_stage_runs_no_sampler() -> None:
    release = resolve_release("0.33")
    got = runtime.activation_bytes(
        _model("llama-3.1-8b"), Serving(pp=2), release, runtime.Runner("V2", ""), 8192, 1024, last=False
    )
    assert got.bytes == 8192 * (3 * 4096 + 3 * 14336) * 2


@pytest.mark.parametrize(
    ("version", "runner", "vendor", "eager", "expected"),
    [
        ("0.19.1", "V1", "nvidia", False, 0),  # estimate logged, VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0
        ("0.20.0", "V1", "nvidia", False, runtime.CUDA_GRAPH_ESTIMATE),  # env default flipped to 1
        ("0.20.0", "V1", "nvidia", True, 0),  # enforce_eager: no graphs
        ("0.20.0", "V1", "amd", False, 0),  # 0.19/0.20 gate: CUDA only
        ("0.26.0", "V1", "amd", False, runtime.CUDA_GRAPH_ESTIMATE),  # is_cuda_alike() from 0.26
        ("0.26.0", "V2", "nvidia", False, 0),  # V2 profile_cudagraph_memory() returns 0
        ("0.29.0", "V2", "nvidia", False, runtime.CUDA_GRAPH_ESTIMATE),  # V2 measures it from 0.29
    ],
)
def test_cuda_graph_term(version: str, runner: str, vendor: str, eager: bool, expected: int) -> None:
    got = runtime.cuda_graph_bytes(
        Serving(enforce_eager=eager), resolve_release(version), runtime.Runner(runner, ""), vendor
    )
    assert got.bytes == expected


def test_requested_memory_is_ceiled_from_0_14() -> None:
    # v1/worker/utils.py request_memory: math.ceil(total * util) from 0.14.0; a plain product before.
    assert runtime.requested_bytes(12345, 0.9, resolve_release("0.14"))[0] == 11111
    assert runtime.requested_bytes(12345, 0.9, resolve_release("0.13"))[0] == 11110


@pytest.mark.parametrize(
    ("version", "total_gib", "name", "context", "mode", "expected"),
    [
        ("0.15", 79.19, "H100-80GB", "serve", None, (8192, 1024)),
        ("0.15", 79.19, "H100-80GB", "llm", None, (16384, 1024)),
        ("0.15", 79.15, "A100-80GB", "serve", None, (2048, 256)),  # "a100" in the device name
        ("0.15", 121.0, "GB10", "serve", None, (2048, 256)),  # GB10: the small tier
        ("0.15", 44.4, "L40S", "llm", None, (8192, 256)),
        ("0.27", 178.4, "B200", "serve", None, (8192, 1024)),
        ("0.28", 178.4, "B200", "serve", None, (16384, 1024)),  # the 160 GiB tier
        ("0.15", 79.19, "H100-80GB", "engine", None, (2048, 128)),  # SchedulerConfig defaults
        ("0.16", 79.19, "H100-80GB", "serve", "throughput", (8192, 1024)),
        ("0.17", 79.19, "H100-80GB", "serve", "throughput", (16384, 2048)),  # doubled from 0.17
    ],
)
def test_batch_defaults(version, total_gib, name, context, mode, expected) -> None:
    serving = Serving(usage_context=context, performance_mode=mode)
    got = runtime.batch_defaults(int(total_gib * GiB), name, resolve_release(version), serving, 131072)
    assert (got.max_num_batched_tokens, got.max_num_seqs) == expected


def test_batch_default_caps() -> None:
    # From 0.11.1: a defaulted max_num_batched_tokens <= max_num_seqs x max_model_len; then
    # max_num_seqs <= max_num_batched_tokens.  A user's value is never capped.
    h100 = int(79.19 * GiB)
    got = runtime.batch_defaults(h100, "H100-80GB", resolve_release("0.15"), Serving(max_num_seqs=2), 1024)
    assert (got.max_num_batched_tokens, got.max_num_seqs) == (2048, 2)
    old = runtime.batch_defaults(h100, "H100-80GB", resolve_release("0.11.0"), Serving(max_num_seqs=2), 1024)
    assert old.max_num_batched_tokens == 8192
    given = runtime.batch_defaults(
        h100, "H100-80GB", resolve_release("0.15"), Serving(max_num_batched_tokens=100), 1024
    )
    assert (given.max_num_batched_tokens, given.max_num_seqs) == (100, 100)


def test_gpu_memory_matching_a_preset_is_that_gpu() -> None:
    # 85,020,000,000-ish bytes of an A100-80GB preset: the A100 rule applies, and the plan says so.
    from kvplan.inputs.presets import find_gpu

    a100 = find_gpu("A100-80GB")
    plan = api.plan("llama-3.1-8b", gpu_memory=str(a100.total_bytes), vllm_version="0.15")
    assert (plan.max_num_batched_tokens, plan.max_num_seqs) == (2048, 256)
    assert any("A100-80GB" in n for n in plan.all_notes)
    unknown = api.plan("llama-3.1-8b", gpu_memory="80GiB", vllm_version="0.15")
    assert (unknown.max_num_batched_tokens, unknown.max_num_seqs) == (8192, 1024)
    assert any("names no GPU" in n for n in unknown.all_notes)


def test_gemma_3_counts_its_vocabulary_and_vision_tower() -> None:
    # text_config has no vocab_size: Gemma3TextConfig's default 262,208 (padded to 64: 262,208),
    # x hidden 5376 = 1,409,630,208 embedding parameters, tied to the head.
    plan = api.plan("gemma-3-27b", gpu="H100-80GB")
    weights = next(t for t in plan.memory.stages[0].terms if t.name == "weights")
    assert "vision tower" in weights.source
    activation = next(t for t in plan.memory.stages[0].terms if t.name == "activation peak")
    assert "vocab 262208" in activation.source
    # vLLM 0.33.0 builds 55,166,837,426 bytes on one rank (tests/oracle/fixtures, gemma-3-27b-tp1).
    assert -weights.bytes == pytest.approx(55_166_837_426, rel=0.005)


def test_release_not_given_is_said() -> None:
    plan = api.plan("llama-3.1-8b", gpu="H100-80GB")
    assert any(n.startswith("vLLM release not given: planned as 0.33.0") for n in plan.all_notes)
    given = api.plan("llama-3.1-8b", gpu="H100-80GB", vllm_version="0.19")
    assert not any(n.startswith("vLLM release not given") for n in given.all_notes)


@pytest.mark.parametrize(
    ("version", "derived"), [("0.11.0", "131072"), ("0.12.0", "131072.0"), ("0.33.0", "131072.0")]
)
def test_max_model_len_beyond_the_model_is_refused(version: str, derived: str) -> None:
    # _get_and_verify_max_len: llama3 RoPE is not scaled; from 0.12 the length is multiplied by 1.0
    # (a float) whenever the config has RoPE parameters.
    with pytest.raises(PlannerRefusal) as err:
        api.plan("llama-3.1-8b", max_model_len=1_000_000, kv_cache_memory="20GiB", vllm_version=version)
    assert err.value.vllm_message.startswith(
        "User-specified max_model_len (1000000) is greater than the derived max_model_len "
        f"(max_position_embeddings={derived} or model_max_length=None in model's config.json). "
        "To allow overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1."
    )


def test_yarn_scales_the_derived_length_only_before_0_30() -> None:
    from kvplan.model import config

    cfg = {
        "max_position_embeddings": 40960,
        "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768},
    }
    assert config.derived_max_model_len(cfg, yarn_scaled=True) == (131072.0, "max_position_embeddings")
    assert config.derived_max_model_len(cfg, yarn_scaled=False) == (40960.0, "max_position_embeddings")


def test_a_quantized_name_without_quantization_config_is_warned() -> None:
    model = resolve_model("qwen3-8b")
    from dataclasses import replace

    named = replace(model, label="Qwen/Qwen3-8B-FP8")
    plan = api.plan(named, gpu="H100-80GB")
    assert any("name says FP8" in n for n in plan.all_notes)
    assert not any("name says" in n for n in api.plan(named, gpu="H100-80GB", quantization="fp8").all_notes)


def test_no_memory_left_is_a_refusal_without_capacity_lines(kvplan) -> None:
    # Llama-3.3-70B in bf16 on one H100: 131 GiB of weights on a 79 GiB GPU.
    out = kvplan("plan", "llama-3.3-70b", "--gpu", "H100-80GB", "--format", "json")
    doc = out.json()
    assert doc["vllm_starts"] is False
    assert doc["refusal"].startswith("No available memory for the cache blocks.")
    assert doc["log_lines"] == []
    assert any("runs out of memory while loading the model" in n for n in doc["notes"])
    table = kvplan("plan", "llama-3.3-70b", "--gpu", "H100-80GB").stdout
    assert "vLLM refuses to start (no memory left for the KV cache)" in table
    assert "GPU KV cache size" not in table and "0.00x" not in table and "-61" not in table
    assert "none (61.01 GiB short)" in table


def test_an_override_beyond_the_memory_is_said() -> None:
    # 20 GiB / (32 layers x 16 tokens x 8 heads x 128 x 2 x 2 B = 2 MiB per block) = 10,240 blocks.
    plan = api.plan("llama-3.1-8b", kv_cache_memory="20GiB", num_gpu_blocks_override=20000)
    assert any("stage 0 holds 10,240 blocks" in n for n in plan.all_notes)
    assert not any("override" in n for n in api.plan("llama-3.1-8b", kv_cache_memory="20GiB").all_notes)


def test_flashinfer_sampler_flag_picks_the_fused_path() -> None:
    # 0.10.x takes FlashInfer's top-k/top-p only when the package is installed (a pip extra):
    # --flashinfer-sampler says it is, as a log's "Using FlashInfer for top-p & top-k sampling" does.
    runner = runtime.Runner("V1", "")
    release = resolve_release("0.10.1.1")
    assert runtime.sampler_path(runner, release, 256, "nvidia", True).bytes_per_element == 14
    assert runtime.sampler_path(runner, release, 256, "nvidia", None).bytes_per_element == 38.2
    # 0.21+: on by default; --no-flashinfer-sampler (VLLM_USE_FLASHINFER_SAMPLER=0) gives Triton from 8 rows.
    late = resolve_release("0.21")
    assert runtime.sampler_path(runner, late, 256, "nvidia", False).name == "Triton top-k/top-p"
