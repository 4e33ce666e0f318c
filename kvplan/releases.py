"""What each vLLM release's KV cache planner does differently, as data.

One ``Behaviour`` row per range of releases; the planner reads these fields
and never branches on a version number itself.  The ranges come from reading
the planner (``vllm/v1/core/kv_cache_utils.py``, from 0.33
``kv_cache_planning.py``) in every released wheel from 0.10.2 to 0.33.0.
"""

from __future__ import annotations

from functools import cache

from kvplan.errors import InputError
from kvplan.records import record

Version = tuple[int, int, int]

# Every release kvplan reproduces, oldest first (PyPI's vllm release list).
KNOWN_RELEASES: tuple[str, ...] = (
    "0.10.0", "0.10.1", "0.10.1.1", "0.10.2",
    "0.11.0", "0.11.1", "0.11.2", "0.12.0", "0.13.0",
    "0.14.0", "0.14.1", "0.15.0", "0.15.1", "0.16.0",
    "0.17.0", "0.17.1", "0.18.0", "0.18.1", "0.19.0", "0.19.1",
    "0.20.0", "0.20.1", "0.20.2", "0.21.0", "0.22.0", "0.22.1", "0.23.0",
    "0.24.0", "0.25.0", "0.25.1", "0.26.0", "0.27.0", "0.27.1", "0.28.0",
    "0.29.0", "0.30.0", "0.31.0", "0.32.0", "0.33.0",
)  # fmt: skip
NEWEST = KNOWN_RELEASES[-1]


class Behaviour:
    """The planner semantics of one vLLM release (see ``_CHANGES`` for the sources).

    sizing: ``per_worker`` (<= 0.10: each worker sizes its own layers),
        ``two_branch`` (0.11 - 0.28: uniform-type or shared-pool branch),
        ``unified`` (0.29+: one bytes-per-block formula).
    uniform_type: ``UniformTypeKVCacheSpecs`` exists (0.11+).
    project_uniform_type: a PP stage's uniform-type group keeps only its own
        layers (0.17+) instead of the whole model's spec.
    check: ``worker_specs`` (each worker, raw specs), ``global_min`` (once,
        whole-model groups vs the smallest memory), ``worker_groups``.
    needed_first_group: the padded need counts only the first group (0.14 - 0.18).
    group_size_rule: ``min``, ``1.25`` or ``1.5``: when the largest bucket is
        under that multiple of the smallest, it sets the group size.
    contiguous_groups: buckets cut into contiguous runs (0.10) instead of b[i::n].
    unify_pages: differing pages are unified by growing block sizes (0.12+).
    page_padding: what unification may pad instead: ``none``, ``mamba``
        (0.26+) or ``mamba_attention`` (0.29+: also non-MLA attention); the
        refusal text changed at 0.24 (``unify_error``: ``v0_12``, ``v0_24``, ``v0_29``).
    shrink_tensors: tensors shrink to the cross-worker minimum (0.11.1+).
    override_memory: num_gpu_blocks_override replaces the checked memory (0.20.1+).
    reserve_null_block: the check subtracts one block (0.29+).
    auto_fit: max_model_len -1 is fitted (0.14+).
    report_before_min: the capacity log uses a worker's count before the min (<= 0.11.0).
    tokens: ``v0_10``, ``blocks`` or ``concurrency`` (0.20.1+).
    concurrency: ``first_page`` (<= 0.26) or ``sum_groups`` (0.27+).
    cp_tokens: CP factor in the ``blocks`` token figure: ``dcp`` or ``pcp_dcp``.
    log_style: ``two_lines`` or ``one_line`` (0.28+).
    async_in_flight: sliding/chunked needs count 2 x max_num_batched_tokens
        in flight (async scheduling, 0.26+).
    mamba_usage: ``page`` (<= 0.11.0), ``blocks`` (0.11.1 - 0.14), ``mode`` (0.15+).
    mamba_all_spec_blocks: in Mamba cache mode ``all`` a request also holds its
        speculative blocks, ``cdiv(max_model_len, block) + num_speculative_blocks``
        pages (0.22 - 0.31, while the mode exists; before, only the first term).
    hybrid_prefix_caching: prefix caching on by default for hybrid models, so
        Mamba runs in ``align`` mode (0.28+; 0.26 and 0.27 keep it opt-in for
        hybrid models, vllm/engine/arg_utils.py
        ``_set_default_chunked_prefill_and_prefix_caching_args``).
    mla_block_size: the MLA backend's block size on Hopper with a 16-bit cache.
    mla_block_size_blackwell: the default MLA backend's block size on
        Blackwell (16 in 0.10.0, whose default is not CUTLASS MLA; CUTLASS MLA
        128 from 0.10.1 up to 0.17, FlashInfer MLA 32 from 0.18);
        ``..._nope128`` for a model with a 128-wide nope head (FlashInfer MLA
        takes it from 0.15, with 64-token blocks, until 0.18).
    error_style: which wording of the max_model_len error.
    gpu_memory_utilization: the default fraction.
    global_window_all_sliding: the model-wide ``sliding_window`` is kept only
        when every ``layer_types`` entry slides (0.33+); before, whenever the
        types do not mix.
    cohere2_window_plus_one: Cohere2's sliding layers see ``window + 1``
        tokens, and its head size comes from ``head_dim`` (0.29+).
    nemotron_h_ssm_dtype: the SSM state dtype Nemotron-H's config defaults to
        when it names none (None: the model dtype; float16 from 0.13, float32
        from 0.20).
    cuda_graphs_in_budget: the CUDA graph memory estimate is subtracted from
        the KV cache budget (0.20+).
    batch_tier_160gib: GPUs of 160 GiB and more get the largest batch
        defaults (0.28+).
    v2_runner: which models run on the V2 model runner by default:
        ``never`` (< 0.22), ``listed_dense_unquantized`` (0.22 - 0.23: a
        listed architecture, no experts, unquantized), ``listed`` (0.24),
        ``listed_or_dense`` (0.25 - 0.26: listed, or no experts; never a
        Mamba model), ``listed_or_dense_hybrid_listed`` (0.27 - 0.28: a
        hybrid only when listed), ``all`` (0.29+).
    v2_architectures: the release's DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES.
    async_scheduling_default: async scheduling is on unless disabled (0.14+).
    v1_async_without_pp: the V1 runner turns async scheduling off under
        pipeline parallelism (0.33+).
    gdn_mamba_type: the name a gated delta net's (and Kimi delta attention's)
        state reports as its Mamba type (``linear_attention`` before 0.12,
        ``gdn_attention`` from 0.12).
    attention_layers_first: the model runner collects every attention layer's
        spec first and the Mamba layers' after them (<= 0.11.0; model order
        from 0.11.1), which orders the groups and tensors.
    gemma3n_text_targets_wrapper: Gemma 3n's decoder names its KV-sharing
        targets ``language_model.model.layers.N`` whatever model holds it, so
        the text-only ``Gemma3nForCausalLM`` (layers ``model.layers.N``) fails
        vLLM's target check when any layer shares (<= 0.11.0; from 0.11.1 the
        target takes the decoder's own prefix).
    gemma3n_target_root: the layer path those targets are named under
        (``model.language_model.layers`` in 0.10.0, whose Gemma 3n is gemma3n.py's
        own class with its layers there; ``language_model.model.layers`` after).
    mamba2_needs_heads: vLLM's config conversion asks a Mamba2 config for
        ``num_attention_heads`` and fails (0.14 - 0.17: the KV head fallback
        reads it and ``mamba2`` has no converter of its own).
    chunked_disables_hybrid: a model with chunked local attention turns the
        hybrid KV cache manager off by default (up to 0.13, while
        VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE defaulted to 0).

    The memory budget (``kvplan.memory``; vllm/v1/worker/gpu_worker.py and
    vllm/utils/mem_utils.py of each release, see docs/memory.md):

    memory_accounting: ``profiling`` (weights + torch peak + non-torch growth,
        <= 0.26) or ``consumed`` (drop in free memory + transient peak, 0.27+).
    requested_ceil: the requested memory is ceil(total x utilization) (0.14+).
    snapshot_before_distributed: the init snapshot precedes the distributed
        init, so NCCL's setup counts as non-torch growth (<= 0.10.x).
    sampler: the top-k/top-p path of the V1 runner's sampler warm-up:
        ``flashinfer_if_installed`` (<= 0.11.0: FlashInfer when the package is
        there, a pip extra), ``sort`` (0.11.1 - 0.16: PyTorch sort),
        ``triton_from_8`` (0.17 - 0.20: Triton from 8 requests, sort below),
        ``flashinfer`` (0.21+: on by default).
    v2_graph_estimate: the V2 runner measures CUDA graph memory before sizing
        the KV cache (0.29+; 0 before).
    v2_sampler_warmup: the V2 warm-up also runs the fp32 sampling pipeline
        (0.33).
    batch_caps: ``v0_10`` (<= 0.11.0: defaults set directly, only
        max_num_seqs capped) or ``capped`` (0.11.1+: max_num_batched_tokens
        <= max_num_seqs x max_model_len, then max_num_seqs <= it).
    throughput_doubles: ``--performance-mode throughput`` doubles the defaulted
        batch sizes (0.17+).
    rocm_graph_estimate: the CUDA graph estimate is taken on ROCm too (0.26+).
    rope_yarn_scaled: YaRN scales ``original_max_position_embeddings`` by its
        factor for the derived max_model_len (< 0.30).
    rope_loop: the derived max_model_len is multiplied by a factor (1.0 when
        none applies) for every RoPE config, so it is a float (0.12+).
    mxfp4_hopper_triton: MXFP4 MoE on Hopper runs the Triton kernels vLLM
        vendors from 0.12 (before, Marlin unless triton_kernels was installed).

    Engine arguments (``vllm/engine/arg_utils.py``, ``vllm/config/*.py``):

    dcp_flag: ``--decode-context-parallel-size`` exists (0.10.2+).
    dcp_tp_check: how ParallelConfig refuses ``tp % dcp != 0``: ``none``
        (before 0.16: no check; the DCP groups are cut from the TP group and
        startup fails), ``v0_16`` (its text lacks a space: "divisible
        bydcp_size"), ``v0_26``.
    dcp_gqa_check: ModelConfig's DCP checks for GQA/MQA models (0.27+).
    mamba_dtypes: the values ``--mamba-cache-dtype`` / ``--mamba-ssm-cache-dtype``
        take (vLLM's ``MambaDType``; empty before 0.10.1: no such flags).
    mamba_block_size_flag: ``--mamba-block-size`` exists (0.11.1+).
    model_window_unless_pattern: the model-wide sliding window stays set unless
        the text config has ``sliding_window_pattern`` (or a list of windows):
        layer types do not clear it, so a layer passing no window of its own
        slides with it (0.10.0, vllm/config.py ModelConfig.__post_init__).
    v1_recurrent: the V1 engine serves models with recurrent state by default
        (0.10.2+; before, ``EngineArgs._is_v1_supported_oracle`` sends a model
        with inner state to the V0 engine unless VLLM_USE_V1=1 is set).
    mamba_cache_modes: the values ``--mamba-cache-mode`` takes (0.15+; empty before).
    mamba_cache_mode_ignored: the flag is deprecated and has no effect: the
        mode follows prefix caching (0.33).
    mamba_prefix_caching: what prefix caching does to a Mamba model: ``off``
        (<= 0.11.0: vLLM turns it off), ``supported`` (0.11.1 - 0.14: on, with
        states every block, only for ``mamba_all_archs``; off otherwise),
        ``modes`` (0.15 - 0.27: mode ``all`` for ``mamba_all_archs``, else
        ``align``), ``align`` (0.28+: mode ``align``).
    mamba_all_archs: the architectures that implement SupportsMambaPrefixCaching.
    mamba2_spec_rows: a Mamba2 conv state has a row per speculative token (0.17+;
        gated delta nets always have, Mamba (v1) never).
    kda_split_conv: a KDA layer keeps separate q, k and v conv states (before 0.23).
    kda_spec_rows: a KDA conv state has a row per speculative token (0.27+).
    short_conv_spec_rows: a short-conv state has a row per speculative token (0.29+).
    mamba2_checkpoint_alignment: every Mamba2 mixer's spec keeps one prefill
        checkpoint block (``num_prefill_checkpoint_blocks`` 1) with this
        ``prefill_checkpoint_alignment``, whatever the Mamba cache mode (1 from
        0.32: mamba_mixer2.py ``get_kv_cache_spec``; None: no block).  In
        ``align`` mode a request then holds 3 state pages instead of 2.
    qwen_gdn_checkpoint_alignment: the token multiple at which Qwen's gated
        delta nets export prefill checkpoints, in ``align`` mode on the
        FlashInfer prefill kernel (Hopper; Blackwell with 128-wide key heads)
        (64 from 0.33: gdn/qwen_gdn_linear_attn.py; None before).  The platform
        then keeps the attention block a multiple of it, and when every state
        layer exports, each delta net's spec keeps one checkpoint block aligned
        to the Mamba block size (``get_mamba_prefill_checkpoint_grid``).
    lfm2_conv_name: the module LFM2's short-conv state registers under
        (``conv``, ``short_conv`` from 0.28).
    kimi_mla_name: the suffix of Kimi-Linear's MLA cache layer after the
        decoder layer (``self_attn.attn``; ``self_attn`` from 0.27, whose MLA
        module is its own attention layer).
    mla_hybrid_block: the multiple an MLA + Mamba model's attention block size
        is raised in (64 up to 0.19; None from 0.20: the MLA backend's own block).
    mla_hybrid_min_block: the least such multiple (128 from 0.27, for the
        TRTLLM / FlashInfer MLA decode kernels).
    hybrid_block_reset: a hybrid (attention + Mamba) model's attention layers
        build their specs with the default block size, 16, unless --block-size
        is given: the workers' ``update_block_size_for_backend`` resets the
        aligned block size after the model is built, while the Mamba page stays
        padded to the aligned attention page (0.18 - 0.19; the planner's page
        unification then grows the attention blocks again).

    dsa_skip_topk: DeepSeek Sparse Attention layers may skip the indexer
        (``index_topk_freq`` / ``index_topk_pattern``, 0.21+).
    dsa_index_roles: MLA specs carry ``cache_role`` and
        ``is_index_group_leader`` (0.30+).
    dsa_topk_buffer_width: sparse MLA specs carry ``topk_buffer_width`` (0.33+).
    dsa_fp8_blackwell: the format of an fp8 DSA cache on Blackwell:
        ``fp8_ds_mla`` (FlashMLA sparse, up to 0.18) or ``fp8`` (FlashInfer
        sparse MLA keeps plain fp8 rows, 0.19+).
    glm_dsa_blackwell_fp8: GLM-5 (``GlmMoeDsaForCausalLM``) defaults to an
        fp8_e4m3 KV cache on SM10x when ``--kv-cache-dtype`` is auto (0.32+).
    longcat_num_layers: LongCat-Flash builds ``num_layers`` decoder layers
        (0.32+) instead of ``num_hidden_layers``.
    draft_kv_cache_dtype: ``speculative_config.kv_cache_dtype`` exists (0.26+).
    draft_with_pp: a drafter runs with pipeline parallelism (0.30+: the draft's
        parallel config has PP 1; before, it copied the target's PP and vLLM
        refused the draft model, which does not support PP).
    sliding_extra_retained: sliding-window specs keep
        ``num_speculative_tokens - 1`` extra tokens for multi-module MTP (0.28+).

    awq_machete: AWQ linears pick their kernel with choose_mp_linear_kernel, so
        Hopper runs them on Machete, whose zero points are 16-bit (0.19+;
        Marlin before).
    gptq_act_order_refused: a GPTQ checkpoint with ``desc_act`` and groups is
        refused (gptq_utils.normalize_and_validate_gptq_desc_act, 0.30+).
    mxfp4_frees_scales: the Triton MXFP4 MoE path frees the loaded expert
        scales once swizzled (0.25+).
    mxfp4_swizzle_prepad64: the vendored triton_kernels' Hopper value swizzle
        first pads both matrix dimensions to multiples of 64 (0.17 - 0.21).
    mxfp4_scale_groups_mod4: Hopper pads the MXFP4 scale groups to a multiple
        of 4 before swizzling (0.26+).
    mxfp4_trtllm_inter_128: the TRT-LLM MXFP4 MoE backends pad the per-rank
        intermediate size to 128, not 256 (0.27+).

    Engine arguments (``vllm/engine/arg_utils.py``, ``vllm/config/*.py``):
    per_layer_kv_dtype: an attention layer's spec takes the layer's own cache
        dtype (0.11.1+, Attention.get_kv_cache_spec), so a layer built without
        the cache config keeps the model dtype; before, the model runner gave
        every layer the engine's --kv-cache-dtype.
    backend_module_names: the Transformers backend names each attention
        layer after the module it serves (``model.layers.{i}.self_attn.attn``,
        0.32+) instead of ``{i}.attn``.

    sink_attention_builds: openPangu's static sink attention layer loads
        (0.30+).  From 0.14 to 0.29 the layer runs CustomOp's initialiser after
        Attention's, which resets the module and drops the KV scale buffers, so
        loading weights fails (``'StaticSinkAttention' object has no attribute
        '_k_scale'``, vllm/model_executor/layers/attention/static_sink_attention.py).

    wrapper_causal_lm_fallback: a wrapper whose text config names no
        architectures builds transformers' causal-LM class for its model_type
        (0.20+, ``VllmConfig.with_hf_config``); before, vLLM fails on it.

    """

    sizing: str = "per_worker"
    uniform_type: bool = False
    project_uniform_type: bool = False
    check: str = "worker_specs"
    needed_first_group: bool = False
    group_size_rule: str = "min"
    contiguous_groups: bool = True
    unify_pages: bool = False
    page_padding: str = "none"
    unify_error: str = "v0_12"
    shrink_tensors: bool = False
    override_memory: bool = False
    reserve_null_block: bool = False
    auto_fit: bool = False
    report_before_min: bool = True
    tokens: str = "v0_10"
    concurrency: str = "first_page"
    cp_tokens: str = "dcp"
    log_style: str = "two_lines"
    async_in_flight: bool = False
    mamba_usage: str = "page"
    mamba_all_spec_blocks: bool = False
    hybrid_prefix_caching: bool = False
    mla_block_size: int = 64
    mla_block_size_blackwell: int = 128
    mla_block_size_blackwell_nope128: int = 128
    error_style: str = "v0_10"
    gpu_memory_utilization: float = 0.9
    global_window_all_sliding: bool = False
    cohere2_window_plus_one: bool = False
    nemotron_h_ssm_dtype: str | None = None
    cuda_graphs_in_budget: bool = False
    batch_tier_160gib: bool = False
    v2_runner: str = "never"
    v2_architectures: frozenset[str] = frozenset()
    async_scheduling_default: bool = False
    v1_async_without_pp: bool = False
    chunked_disables_hybrid: bool = True
    attention_layers_first: bool = True
    mamba2_needs_heads: bool = False
    gemma3n_text_targets_wrapper: bool = True
    gemma3n_target_root: str = "language_model.model.layers"
    gdn_mamba_type: str = "linear_attention"
    memory_accounting: str = "profiling"
    requested_ceil: bool = False
    snapshot_before_distributed: bool = True
    sampler: str = "flashinfer_if_installed"
    v2_graph_estimate: bool = False
    v2_sampler_warmup: bool = False
    batch_caps: str = "v0_10"
    throughput_doubles: bool = False
    rocm_graph_estimate: bool = False
    rope_yarn_scaled: bool = True
    rope_loop: bool = False
    mxfp4_hopper_triton: bool = False
    dcp_flag: bool = False
    dcp_tp_check: str = "none"
    dcp_gqa_check: bool = False
    mamba_dtypes: tuple[str, ...] = ()
    mamba_block_size_flag: bool = False
    mamba_cache_modes: tuple[str, ...] = ()
    mamba_cache_mode_ignored: bool = False
    mamba_prefix_caching: str = "off"
    mamba_all_archs: frozenset[str] = frozenset()
    mamba2_spec_rows: bool = False
    v1_recurrent: bool = False
    model_window_unless_pattern: bool = False
    kda_split_conv: bool = True
    kda_spec_rows: bool = False
    short_conv_spec_rows: bool = False
    mamba2_checkpoint_alignment: int | None = None
    qwen_gdn_checkpoint_alignment: int | None = None
    lfm2_conv_name: str = "conv"
    kimi_mla_name: str = "self_attn.attn"
    mla_hybrid_block: int | None = 64
    mla_hybrid_min_block: int = 0
    hybrid_block_reset: bool = False
    dsa_skip_topk: bool = False
    dsa_index_roles: bool = False
    dsa_topk_buffer_width: bool = False
    dsa_fp8_blackwell: str = "fp8_ds_mla"
    glm_dsa_blackwell_fp8: bool = False
    longcat_num_layers: bool = False
    draft_kv_cache_dtype: bool = False
    draft_with_pp: bool = False
    sliding_extra_retained: bool = False
    awq_machete: bool = False
    gptq_act_order_refused: bool = False
    mxfp4_frees_scales: bool = False
    mxfp4_swizzle_prepad64: bool = False
    mxfp4_scale_groups_mod4: bool = False
    mxfp4_trtllm_inter_128: bool = False
    per_layer_kv_dtype: bool = False
    backend_module_names: bool = False
    wrapper_causal_lm_fallback: bool = False
    sink_attention_builds: bool = False

    # A plain read-only class rather than a dataclass: its defaults live on the
    # class, and kvplan builds one per plan, so nothing is generated at import.
    def __init__(self, **changes: object) -> None:
        for name, value in changes.items():
            if name not in _BEHAVIOUR_FIELDS:
                raise TypeError(f"Behaviour has no field {name!r}")
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Behaviour is read-only (setting {name!r})")

    def __repr__(self) -> str:
        changed = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"Behaviour({changed})"


_BEHAVIOUR_FIELDS = frozenset(Behaviour.__annotations__)

# The model classes that implement SupportsMambaPrefixCaching (vllm/model_executor/models/*.py),
# by their registry names; FalconMamba is served by MambaForCausalLM.  Bamba left in 0.24.
_MAMBA_ALL = frozenset(
    {
        "FalconH1ForCausalLM",
        "GraniteMoeHybridForCausalLM",
        "JambaForCausalLM",
        "Mamba2ForCausalLM",
        "MambaForCausalLM",
        "FalconMambaForCausalLM",
        "NemotronHForCausalLM",
        "Zamba2ForCausalLM",
    }
)


# What changed in each release, read from its planner (kv_cache_utils.py /
# kv_cache_planning.py), kv_cache_interface.py and config code.  Each row
# applies from that release on, on top of the rows before it.
_CHANGES: tuple[tuple[str, dict[str, object]], ...] = (
    # 0.10.0's CUDA platform picks CUTLASS MLA on Blackwell only when VLLM_ATTENTION_BACKEND
    # asks for it, so the default MLA backend there keeps 16-token blocks; 0.10.1 forces it
    (
        "0.10.0",
        {
            "mla_block_size_blackwell": 16,
            "mla_block_size_blackwell_nope128": 16,
            "model_window_unless_pattern": True,
            "gemma3n_target_root": "model.language_model.layers",
        },
    ),
    (
        "0.10.1",
        {
            "mla_block_size_blackwell": 128,
            "mla_block_size_blackwell_nope128": 128,
            "model_window_unless_pattern": False,
            "gemma3n_target_root": "language_model.model.layers",
        },
    ),
    (
        "0.11.0",
        {
            "snapshot_before_distributed": False,
            "sizing": "two_branch",
            "uniform_type": True,
            "contiguous_groups": False,
            "tokens": "blocks",
        },
    ),
    (
        "0.11.1",
        {
            "attention_layers_first": False,
            "gemma3n_text_targets_wrapper": False,
            "sampler": "sort",
            "batch_caps": "capped",
            "shrink_tensors": True,
            "report_before_min": False,
            "mamba_usage": "blocks",
            "per_layer_kv_dtype": True,
        },
    ),
    (
        "0.12.0",
        {
            "gdn_mamba_type": "gdn_attention",
            "mxfp4_hopper_triton": True,
            "rope_loop": True,
            "cp_tokens": "pcp_dcp",
            "unify_pages": True,
            "group_size_rule": "1.25",
        },
    ),
    (
        "0.13.0",
        {
            "error_style": "v0_13",
            "nemotron_h_ssm_dtype": "float16",
        },
    ),
    (
        "0.14.0",
        {
            "requested_ceil": True,
            "mamba2_needs_heads": True,
            "check": "global_min",
            "needed_first_group": True,
            "auto_fit": True,
            "error_style": "v0_14",
            "async_scheduling_default": True,
            "chunked_disables_hybrid": False,
        },
    ),
    (
        "0.15.0",
        {
            "mamba_usage": "mode",
            "mla_block_size_blackwell_nope128": 64,
        },
    ),
    (
        "0.17.0",
        {
            "sampler": "triton_from_8",
            "throughput_doubles": True,
            "check": "worker_groups",
            "project_uniform_type": True,
            "mamba2_spec_rows": True,
            "mxfp4_swizzle_prepad64": True,
        },
    ),
    (
        "0.18.0",
        {
            "mamba2_needs_heads": False,
            "group_size_rule": "1.5",
            "mla_block_size": 16,
            "mla_block_size_blackwell": 32,
            "mla_block_size_blackwell_nope128": 32,
            "hybrid_block_reset": True,
        },
    ),
    (
        "0.19.0",
        {
            "needed_first_group": False,
            "dsa_fp8_blackwell": "fp8",
            "awq_machete": True,
        },
    ),
    (
        "0.20.0",
        {
            "gpu_memory_utilization": 0.92,
            "nemotron_h_ssm_dtype": "float32",
            "cuda_graphs_in_budget": True,
            "hybrid_block_reset": False,
            "mla_hybrid_block": None,
            "wrapper_causal_lm_fallback": True,
        },
    ),
    (
        "0.20.1",
        {
            "override_memory": True,
            "tokens": "concurrency",
        },
    ),
    (
        "0.21.0",
        {
            "sampler": "flashinfer",
            "dsa_skip_topk": True,
        },
    ),
    (
        "0.22.0",
        {
            "v2_runner": "listed_dense_unquantized",
            "v2_architectures": frozenset({"Qwen3ForCausalLM"}),
            "mxfp4_swizzle_prepad64": False,
            "mamba_all_spec_blocks": True,
        },
    ),
    (
        "0.23.0",
        {
            "error_style": "v0_23",
            "v2_architectures": frozenset({"LlamaForCausalLM", "MistralForCausalLM", "Qwen3ForCausalLM"}),
            "kda_split_conv": False,
        },
    ),
    (
        "0.24.0",
        {
            "unify_error": "v0_24",
            "v2_runner": "listed",
            "v2_architectures": frozenset(
                {
                    "DeepseekV2ForCausalLM",
                    "GraniteMoeForCausalLM",
                    "LlamaForCausalLM",
                    "MistralForCausalLM",
                    "Qwen2MoeForCausalLM",
                    "Qwen3ForCausalLM",
                }
            ),
        },
    ),
    (
        "0.25.0",
        {
            "v2_runner": "listed_or_dense",
            "v2_architectures": frozenset(
                {"DeepseekV2ForCausalLM", "GraniteMoeForCausalLM", "Qwen2MoeForCausalLM"}
            ),
            "mxfp4_frees_scales": True,
        },
    ),
    (
        "0.26.0",
        {
            "rocm_graph_estimate": True,
            "async_in_flight": True,
            "page_padding": "mamba",
            "v2_architectures": frozenset(
                {
                    "DeepseekV2ForCausalLM",
                    "GraniteMoeForCausalLM",
                    "InklingForCausalLM",
                    "InklingForConditionalGeneration",
                    "LongcatFlashNgramForCausalLM",
                    "Qwen2MoeForCausalLM",
                }
            ),
            "draft_kv_cache_dtype": True,
            "mxfp4_scale_groups_mod4": True,
        },
    ),
    (
        "0.27.0",
        {
            "memory_accounting": "consumed",
            "concurrency": "sum_groups",
            "v2_runner": "listed_or_dense_hybrid_listed",
            "v2_architectures": frozenset(
                {
                    "DeepseekV2ForCausalLM",
                    "GraniteMoeForCausalLM",
                    "InklingForCausalLM",
                    "InklingForConditionalGeneration",
                    "KimiK3ForConditionalGeneration",
                    "LongcatFlashNgramForCausalLM",
                    "Qwen2MoeForCausalLM",
                }
            ),
            "kda_spec_rows": True,
            "kimi_mla_name": "self_attn",
            "mla_hybrid_min_block": 128,
            "mxfp4_trtllm_inter_128": True,
            "global_window_all_sliding": True,
        },
    ),
    (
        "0.28.0",
        {
            "log_style": "one_line",
            "batch_tier_160gib": True,
            "v2_architectures": frozenset(
                {
                    "DeepseekV2ForCausalLM",
                    "DeepseekV4ForCausalLM",
                    "GraniteMoeForCausalLM",
                    "InklingForCausalLM",
                    "InklingForConditionalGeneration",
                    "KimiK3ForConditionalGeneration",
                    "LongcatFlashNgramForCausalLM",
                    "Qwen2MoeForCausalLM",
                }
            ),
            "lfm2_conv_name": "short_conv",
            "sliding_extra_retained": True,
        },
    ),
    (
        "0.29.0",
        {
            "v2_graph_estimate": True,
            "sizing": "unified",
            "reserve_null_block": True,
            "page_padding": "mamba_attention",
            "unify_error": "v0_29",
            "cohere2_window_plus_one": True,
            "v2_runner": "all",
            "short_conv_spec_rows": True,
        },
    ),
    (
        "0.30.0",
        {
            "rope_yarn_scaled": False,
            "dsa_index_roles": True,
            "draft_with_pp": True,
            "gptq_act_order_refused": True,
            "sink_attention_builds": True,
        },
    ),
    (
        "0.32.0",
        {
            "glm_dsa_blackwell_fp8": True,
            "longcat_num_layers": True,
            "backend_module_names": True,
            "mamba2_checkpoint_alignment": 1,
        },
    ),
    (
        "0.33.0",
        {
            "v2_sampler_warmup": True,
            "v1_async_without_pp": True,
            "dsa_topk_buffer_width": True,
            "global_window_all_sliding": True,
            "qwen_gdn_checkpoint_alignment": 64,
        },
    ),
)


# Which engine arguments each release has and what they do (vllm/engine/arg_utils.py,
# vllm/config/{parallel,model,cache,vllm}.py, vllm/model_executor/models/config.py);
# applied like _CHANGES, on fields of their own.
_ENGINE_ARG_CHANGES: tuple[tuple[str, dict[str, object]], ...] = (
    ("0.10.1", {"mamba_dtypes": ("auto", "float32")}),
    ("0.10.2", {"dcp_flag": True, "v1_recurrent": True}),
    (
        "0.11.1",
        {
            "mamba_block_size_flag": True,
            "mamba_prefix_caching": "supported",
            "mamba_all_archs": _MAMBA_ALL | {"BambaForCausalLM"},
        },
    ),
    ("0.13.0", {"mamba_dtypes": ("auto", "float32", "float16")}),
    ("0.15.0", {"mamba_cache_modes": ("all", "align", "none"), "mamba_prefix_caching": "modes"}),
    ("0.16.0", {"dcp_tp_check": "v0_16"}),
    ("0.22.0", {"mamba_dtypes": ("auto", "float32", "float16", "bfloat16")}),
    ("0.24.0", {"mamba_all_archs": _MAMBA_ALL}),
    ("0.26.0", {"dcp_tp_check": "v0_26"}),
    ("0.27.0", {"dcp_gqa_check": True}),
    ("0.28.0", {"mamba_prefix_caching": "align", "hybrid_prefix_caching": True}),
    ("0.32.0", {"mamba_cache_modes": ("align", "none")}),
    ("0.33.0", {"mamba_cache_mode_ignored": True}),
)


@cache
def parse_version(text: str) -> Version:
    """``0.19`` / ``0.19.1`` / ``v0.19.1`` to a (major, minor, patch) tuple."""
    parts = text.strip().lstrip("v").split(".")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if not 2 <= len(nums) <= 4:
        raise InputError(
            "not a vLLM version",
            field="vllm_version",
            value=text,
            hint="write X.Y or X.Y.Z, e.g. 0.19 or 0.19.1",
        )
    nums += [0] * (3 - len(nums))
    return nums[0], nums[1], nums[2]


@record(frozen=True, eq=False)
class Release:
    """A resolved vLLM release and its planner behaviour."""

    version: str
    behaviour: Behaviour

    @property
    def key(self) -> Version:
        """The version as a comparable tuple."""
        return parse_version(self.version)

    def serves(self, since: str | None, until: str | None = None) -> bool:
        """Whether this release has a thing vLLM added in ``since`` and removed in ``until``
        (None: always had it / never removed it)."""
        if since is not None and self.key < parse_version(since):
            return False
        return until is None or self.key < parse_version(until)


@cache
def resolve_release(text: str | None) -> Release:
    """The release a ``--vllm-version`` names; ``X.Y`` means the newest ``X.Y.*``.

    Raises ``InputError`` for versions outside 0.10.0 - the newest known.
    Cached: a sweep resolves one release for every combination.
    """
    if text is None:
        text = NEWEST
    text = str(text)
    wanted = parse_version(text)
    exact = len(text.strip().lstrip("v").split(".")) >= 3
    candidates = [
        r
        for r in KNOWN_RELEASES
        if (parse_version(r) == wanted if exact else parse_version(r)[:2] == wanted[:2])
    ]
    if not candidates:
        raise InputError(
            f"vLLM {text} is not a release kvplan reproduces",
            field="vllm_version",
            value=text,
            hint=f"releases {KNOWN_RELEASES[0]} to {NEWEST}",
        )
    version = candidates[-1]
    key = parse_version(version)
    changes: dict[str, object] = {}
    for first, row in (*_CHANGES, *_ENGINE_ARG_CHANGES):
        if parse_version(first) <= key:
            changes.update(row)
    return Release(version=version, behaviour=Behaviour(**changes))


def release_for_log(version: str | None) -> tuple[str | None, str | None]:
    """(the release to plan a logged version with, a note when it is not that release).

    Releases before the oldest known are planned with its semantics, newer ones
    with the newest's; development builds (``0.11.1rc2.dev..``) as their X.Y.Z;
    an unknown patch as the newest X.Y kvplan knows.
    """
    import re

    if version is None:
        return None, f"the log does not print the vLLM release; planned with {NEWEST} (give --vllm-version)"
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if not m:
        return None, f"cannot read the vLLM release '{version}'; planned with {NEWEST}"
    key = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
    oldest = KNOWN_RELEASES[0]
    if key < parse_version(oldest):
        return oldest, f"vLLM {version} is older than {oldest}; planned with {oldest} semantics"
    if key > parse_version(NEWEST):
        return NEWEST, f"vLLM {version} is newer than {NEWEST}; planned with {NEWEST} semantics"
    exact = f"{key[0]}.{key[1]}.{key[2]}"
    if exact in KNOWN_RELEASES:
        return exact, None if exact == version else f"vLLM {version} planned as {exact}"
    return (
        f"{key[0]}.{key[1]}",
        f"vLLM {version} planned as the newest {key[0]}.{key[1]} release kvplan knows",
    )
