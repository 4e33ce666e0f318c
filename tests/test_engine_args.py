"""vLLM's engine arguments as kvplan models them: each flag changes only what vLLM lets it change,
and what vLLM refuses, kvplan refuses with vLLM's text.

Sources (vLLM 0.33.0 unless a release is named): ``vllm/config/parallel.py``
(DCP divisibility), ``vllm/config/model.py`` (DCP for GQA, expert
parallelism), ``vllm/config/vllm.py`` (``--mamba-block-size``, in-flight
batches), ``vllm/model_executor/models/config.py`` (Mamba cache mode from
prefix caching), ``vllm/platforms/interface.py`` (the hybrid block-size
alignment), ``vllm/model_executor/layers/mamba/mamba_utils.py`` (Mamba state
dtypes), ``vllm/engine/arg_utils.py`` (which flags exist).
"""

from __future__ import annotations

import pytest

from kvplan import api
from kvplan.errors import InputError, PlannerRefusal

MEM = {"kv_cache_memory": "20GiB"}


def _refusal(**serving: object) -> str:
    with pytest.raises(PlannerRefusal) as info:
        api.plan(serving.pop("model", "llama-3.1-8b"), **{**MEM, **serving})
    return info.value.message


# --- decode context parallelism ------------------------------------------------------


def test_dcp_must_divide_tp_with_vllms_text(kvplan):
    # ParallelConfig (0.26+): "tp_size={tp} must be divisible by dcp_size={dcp}."
    out = kvplan("plan", "llama-3.1-8b", "--tp", "1", "--dcp", "8", "--kv-cache-memory", "20GiB")
    assert out.code == 2 and out.stdout == ""
    assert "tp_size=1 must be divisible by dcp_size=8." in out.stderr
    # 0.16 - 0.25 print it without the space: "must be divisible by" "dcp_size=..." joined.
    assert _refusal(tp=2, dcp=4, vllm_version="0.19") == "tp_size=2 must be divisible bydcp_size=4."
    # 0.10.0 / 0.10.1 have no --decode-context-parallel-size at all.
    assert "has no --decode-context-parallel-size" in _refusal(tp=2, dcp=2, vllm_version="0.10.1")


def test_dcp_for_gqa_needs_more_tp_than_kv_heads():
    # Llama-3.1-8B: 32 query heads, 8 KV heads.  ModelConfig (0.27+) wants tp > 8 KV heads,
    # dcp <= tp // 8, and (32 // 8) % dcp == 0.
    text = _refusal(tp=8, dcp=2)
    assert text.startswith("Decode context parallelism for GQA/MQA requires `--tensor-parallel-size` (8)")
    assert "total number of KV heads (8)" in text
    assert _refusal(tp=16, dcp=4).startswith(
        "`--decode-context-parallel-size` (4) exceeds the maximum supported value (2)"
    )
    assert api.plan("llama-3.1-8b", **MEM, tp=16, dcp=2).serving.dcp == 2
    # 0.26 had no GQA checks: tp 8 with dcp 2 plans.
    assert api.plan("llama-3.1-8b", **MEM, tp=8, dcp=2, vllm_version="0.26").serving.dcp == 2


def test_dcp_is_not_checked_against_kv_heads_for_mla():
    # DeepSeek-V2-Lite is MLA: the GQA checks do not apply (ModelConfig skips them for use_mla).
    plan = api.plan("deepseek-v2-lite", **MEM, tp=2, dcp=2)
    assert plan.serving.dcp == 2


# --- data and expert parallelism -------------------------------------------------------


def test_expert_parallel_needs_experts():
    # ModelConfig._verify_with_expert_parallelism.
    assert _refusal(enable_expert_parallel=True) == (
        "Number of experts in the model must be greater than 0 when expert parallelism is enabled."
    )
    # Qwen3-30B-A3B has 128 routed experts (config num_experts); EP over TP 2 x DP 4 = 8 ranks.
    plan = api.plan("qwen3-30b-a3b", **MEM, tp=2, dp=4, enable_expert_parallel=True)
    assert plan.serving.expert_parallel_size == 8 and plan.serving.gpus == 8


def test_data_parallel_keeps_each_workers_kv_cache():
    # DP replicates the engine; one worker's specs (sharded by TP alone) do not change.
    one = api.plan("llama-3.1-8b", **MEM, tp=2)
    four = api.plan("llama-3.1-8b", **MEM, tp=2, dp=4, vllm_args="vllm serve x -dp 4")
    assert four.serving.dp == 4 and four.serving.gpus == 8
    assert four.num_blocks == one.num_blocks == 20480  # 20 GiB / (32 x 16 x 2 x 4 x 128 x 2 B)


# --- prefix caching and the Mamba cache mode -------------------------------------------


def _groups(plan: api.Plan) -> dict[str, object]:
    return {row.type: row for row in plan.layers}


def test_qwen3_next_block_size_follows_prefix_caching():
    # Qwen3-Next-80B at TP 8: gated delta net state (3, 1024) bf16 + (4, 128, 128) bf16
    # = 6,144 + 131,072 = 137,216 B; attention 1 KV head x 256 x 2 x 2 B = 1,024 B/token.
    # Prefix caching on (0.26+ default): align mode, k = lcm(16, 64) = 64 ->
    # 64 x cdiv(137,216, 64 x 1,024) = 192.  Off: k = 16 -> 16 x cdiv(137,216, 16,384) = 144.
    on = api.plan("qwen3-next-80b-a3b", **MEM, tp=8)
    off = api.plan("qwen3-next-80b-a3b", **MEM, tp=8, enable_prefix_caching=False)
    assert (on.block_size, on.layout.mamba_cache_mode, on.prefix_caching) == (192, "align", True)
    assert (off.block_size, off.layout.mamba_cache_mode, off.prefix_caching) == (144, "none", False)
    # Off, each Mamba layer's block is max_model_len (262,144, the config's maximum).
    assert _groups(off)["mamba"].block_size == 262144
    assert _groups(on)["mamba"].block_size == 192


def test_mamba_block_is_the_models_maximum_under_auto_fit():
    # --max-model-len auto: the specs are built with the model's maximum, never -1.
    plan = api.plan("qwen3-next-80b-a3b", **MEM, tp=8, enable_prefix_caching=False, max_model_len="auto")
    assert _groups(plan)["mamba"].block_size == 262144


def test_nemotron_h_prefix_caching_mode_all_in_026():
    # Nemotron-H-8B at TP 1: Mamba2 conv (3, 8192 + 2 x 8 x 128) bf16 = 61,440 B, SSM
    # (128, 64, 128) float32 (vLLM's default from 0.20) = 4,194,304 B: 4,255,744 B, which is
    # exactly 1,039 tokens of attention (8 KV heads x 128 x 2 x 2 B = 4,096 B/token).
    # 0.26 - 0.27 keep prefix caching opt-in for hybrid models (vllm/engine/arg_utils.py,
    # _set_default_chunked_prefill_and_prefix_caching_args: `... and not is_hybrid`);
    # turned on, they run it in mode 'all' for models with Mamba prefix caching:
    # block = lcm(chunk_size 128, 16) x cdiv(1,039, 128) = 1,152, the Mamba block too.
    assert api.plan("nemotron-h-8b", **MEM, vllm_version="0.26").prefix_caching is False
    v26 = api.plan("nemotron-h-8b", **MEM, vllm_version="0.26", enable_prefix_caching=True)
    assert (v26.block_size, v26.layout.mamba_cache_mode) == (1152, "all")
    assert _groups(v26)["mamba"].block_size == 1152
    # 0.28+ default to 'align': 16 x cdiv(4,255,744, 65,536) = 1,040.
    v28 = api.plan("nemotron-h-8b", **MEM, vllm_version="0.28")
    assert (v28.block_size, v28.layout.mamba_cache_mode) == (1040, "align")
    # --mamba-cache-mode align on 0.26 gives the same; prefix caching off: mode none,
    # the Mamba block is max_model_len (8,192).
    aligned = api.plan(
        "nemotron-h-8b", **MEM, vllm_version="0.26", enable_prefix_caching=True, mamba_cache_mode="align"
    )
    assert aligned.block_size == 1040
    off = api.plan("nemotron-h-8b", **MEM, vllm_version="0.26", enable_prefix_caching=False)
    assert (off.block_size, _groups(off)["mamba"].block_size) == (1040, 8192)
    # 'all' keeps a state every block: cdiv(8,192, 1,152) = 8 pages per Mamba layer per request.
    assert v26.capacity is not None and v28.capacity is not None
    assert v26.capacity.blocks_per_request > v28.capacity.blocks_per_request


def test_prefix_caching_off_by_default_for_hybrids_before_026():
    # ModelConfig.is_prefix_caching_supported: hybrid models say no before 0.26.
    assert api.plan("nemotron-h-8b", **MEM, vllm_version="0.25").prefix_caching is False
    # Asked for on 0.25: mode 'all' for Nemotron-H (it implements SupportsMambaPrefixCaching).
    on = api.plan("nemotron-h-8b", **MEM, vllm_version="0.25", enable_prefix_caching=True)
    assert (on.block_size, on.layout.mamba_cache_mode) == (1152, "all")


def test_mamba_cache_mode_flag_by_release():
    assert "has no --mamba-cache-mode" in _refusal(model="nemotron-h-8b", mamba_cache_mode="align",
                                                   vllm_version="0.14")  # fmt: skip
    # 0.32 dropped 'all' from the choices (MambaCacheMode = Literal["align", "none"]).
    assert "invalid choice: 'all'" in _refusal(model="nemotron-h-8b", mamba_cache_mode="all",
                                              vllm_version="0.32")  # fmt: skip
    # 0.33: deprecated, no effect ("Mamba prefix caching follows --enable-prefix-caching").
    plan = api.plan("nemotron-h-8b", **MEM, mamba_cache_mode="none")
    assert plan.layout.mamba_cache_mode == "align"
    assert any("no effect" in note for note in plan.all_notes)


def test_mamba_block_size_needs_prefix_caching():
    text = _refusal(model="nemotron-h-8b", mamba_block_size=256, enable_prefix_caching=False)
    assert text == "--mamba-block-size can only be set with --enable-prefix-caching"
    assert "has no --mamba-block-size" in _refusal(model="nemotron-h-8b", mamba_block_size=256,
                                                   vllm_version="0.11.0")  # fmt: skip
    # In mode 'all' it replaces the chunk size: lcm(256, 16) x cdiv(1,039, 256) = 1,280.
    plan = api.plan(
        "nemotron-h-8b", **MEM, vllm_version="0.26", enable_prefix_caching=True, mamba_block_size=256
    )
    assert plan.block_size == 1280


# --- Mamba state dtypes ------------------------------------------------------------------


def _mamba_spec(plan: api.Plan) -> object:
    return next(g.spec for g in plan.groups if g.spec.kind == "mamba")


def test_mamba_ssm_cache_dtype_sets_the_temporal_state():
    # Qwen3-Next at TP 8, --mamba-ssm-cache-dtype float32: (4, 128, 128) x 4 B = 262,144 B
    # + conv 6,144 B = 268,288 B; align k = 64: 64 x cdiv(268,288, 65,536) = 320.
    plan = api.plan("qwen3-next-80b-a3b", **MEM, tp=8, mamba_ssm_cache_dtype="float32")
    spec = _mamba_spec(plan)
    assert spec.dtypes == ("bfloat16", "float32") and spec.real_page_size_bytes == 268288
    assert plan.block_size == 320


def test_mamba_cache_dtype_sets_both_states_unless_the_model_sets_the_ssm_one():
    # MambaStateDtypeCalculator: conv = mamba_cache_dtype; temporal = mamba_ssm_cache_dtype,
    # or the conv dtype when that is auto.  Qwen3-Next sets no SSM dtype: both float32,
    # 12,288 + 262,144 = 274,432 B.
    plan = api.plan("qwen3-next-80b-a3b", **MEM, tp=8, mamba_cache_dtype="float32")
    assert _mamba_spec(plan).dtypes == ("float32", "float32")
    assert _mamba_spec(plan).real_page_size_bytes == 274432
    # Nemotron-H's SSM dtype is its own (float32 from 0.20, NemotronHForCausalLMConfig) and
    # only applies under auto: --mamba-cache-dtype float16 changes the conv state alone.
    nem = api.plan("nemotron-h-8b", **MEM, mamba_cache_dtype="float16")
    assert _mamba_spec(nem).dtypes == ("float16", "float32")
    # --mamba-ssm-cache-dtype bfloat16 overrides it: 61,440 + 128 x 64 x 128 x 2 = 2,158,592 B.
    nem = api.plan("nemotron-h-8b", **MEM, mamba_ssm_cache_dtype="bfloat16")
    assert _mamba_spec(nem).real_page_size_bytes == 2158592


def test_mamba_dtype_choices_by_release():
    # MambaDType: auto/float32 from 0.10.1, + float16 in 0.13, + bfloat16 in 0.22.
    assert "invalid choice: 'bfloat16'" in _refusal(model="nemotron-h-8b", mamba_ssm_cache_dtype="bfloat16",
                                                    vllm_version="0.21")  # fmt: skip
    # (0.10.0 parses the flags whatever the model; it runs a Mamba model itself on V0)
    assert "has no --mamba-cache-dtype" in _refusal(mamba_cache_dtype="float32", vllm_version="0.10.0")
    with pytest.raises(InputError, match="must be one of auto, float32, float16, bfloat16"):
        api.plan("nemotron-h-8b", **MEM, mamba_cache_dtype="fp8")


# --- async scheduling --------------------------------------------------------------------


def test_async_scheduling_doubles_the_sliding_window_in_flight(tmp_path):
    # One full and one sliding layer (window 1,024), 8 KV heads x 128, max_model_len 32,768,
    # 8,192 batched tokens.  0.33: a sliding layer needs cdiv(1,023 + in flight, 16) + 1
    # blocks, in flight = 2 x 8,192 with async scheduling (VllmConfig.max_concurrent_batches),
    # 8,192 without.  Per request: 2,048 (full) + 1,089 or + 577 blocks.
    model = tmp_path / "m.yaml"
    model.write_text(
        "architectures: [LlamaForCausalLM]\nmax_position_embeddings: 32768\ntorch_dtype: bfloat16\n"
        "layers:\n  - {type: full, num_kv_heads: 8, head_size: 128}\n"
        "  - {type: sliding_window, num_kv_heads: 8, head_size: 128, sliding_window: 1024}\n"
    )
    on = api.plan(str(model), **MEM)
    off = api.plan(str(model), **MEM, async_scheduling=False)
    assert on.capacity is not None and off.capacity is not None
    assert on.capacity.blocks_per_request == 2048 + 1089
    assert off.capacity.blocks_per_request == 2048 + 577


# --- CPU offload ---------------------------------------------------------------------------


def test_cpu_offload_adds_back_to_the_estimated_budget():
    # --cpu-offload-gb 4: 4 GiB of weights stay in CPU memory, so the KV cache gets 4 GiB more.
    base = api.plan("llama-3.1-8b", gpu="H100-80GB")
    off = api.plan("llama-3.1-8b", gpu="H100-80GB", cpu_offload_gb=4)
    assert off.memory.available[0] - base.memory.available[0] == 4 << 30
    # With --kv-cache-memory the figure is exact: the offload cannot change it.
    assert api.plan("llama-3.1-8b", **MEM, cpu_offload_gb=4).num_blocks == 10240
