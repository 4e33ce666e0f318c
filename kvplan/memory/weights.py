"""Estimates of the non-KV memory on one GPU: weights, activations, runtime overheads.

Weights are counted from the config, per TP rank and PP stage, as vLLM shards
them: column/row-parallel linears divide by TP, KV heads are replicated when TP
exceeds them, MLA's down-projections and MoE routers are replicated, the
vocabulary is padded to 64 (``VocabParallelEmbedding``) and split by TP.  The
runtime terms are empirical: see docs/memory.md for the formulas and the
measurements they were fitted to.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from kvplan.inputs.serving import Serving
from kvplan.model.config import tied_word_embeddings
from kvplan.model.layers import ModelDescription
from kvplan.releases import Release

GiB = 1 << 30
VOCAB_PADDING = 64  # vLLM's DEFAULT_VOCAB_PADDING_SIZE

# The profile run's peak is the sampler warm-up over min(max_num_seqs,
# max_num_batched_tokens) dummy requests: float32 logits, their sorted copy and
# int64 indices for top-k/top-p, softmax and the scatter back.  Bytes per
# (request x vocabulary entry), fitted to llm-d's H100 measurements (docs/memory.md).
# vLLM's dummy sampler run (PyTorch top-k/top-p over float32 logits), per request and
# vocabulary entry; fitted on llm-d's H100 measurements (docs/memory.md).
SAMPLER_BYTES = 38.2
# Hidden states of every scheduled token stay alive next to the sampler.
HIDDEN_BYTES_PER_TOKEN_UNIT = 2.71
NON_TORCH_SINGLE = int(0.13 * GiB)  # CUDA context and allocator state (llm-d, TP=1)
NON_TORCH_PARALLEL = int(0.55 * GiB)  # plus NCCL buffers (llm-d, TP=2)
CUDA_GRAPH_ESTIMATE = int(0.40 * GiB)  # "Estimated CUDA graph memory" lines: 0.17 - 0.65 GiB


@dataclass(eq=False)
class Estimate:
    """Bytes, whether they are an estimate, and the formula or file behind them."""

    bytes: int
    estimated: bool
    source: str


@dataclass(eq=False)
class Params:
    """Parameter counts on one rank, by how they are stored.

    ``linear``: dense linears (attention, dense MLP, shared experts), which a
    quantization method quantizes; ``experts``: routed MoE experts (quantized
    too; gpt-oss's mxfp4 quantizes only these); ``plain``: norms, routers,
    biases, Mamba/GDN vectors, kept in the model dtype; ``embed``: embeddings
    and LM head, kept in the model dtype.
    """

    linear: int = 0
    experts: int = 0
    plain: int = 0
    embed: int = 0

    def __add__(self, other: Params) -> Params:
        return Params(
            self.linear + other.linear,
            self.experts + other.experts,
            self.plain + other.plain,
            self.embed + other.embed,
        )

    @property
    def total(self) -> int:
        """All parameters."""
        return self.linear + self.experts + self.plain + self.embed


def _int(cfg: dict[str, Any], key: str, default: int = 0) -> int:
    value = cfg.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _first(cfg: dict[str, Any], *keys: str, default: int = 0) -> int:
    for key in keys:
        value = _int(cfg, key)
        if value:
            return value
    return default


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def padded_vocab(vocab: int) -> int:
    """The vocabulary rounded up to vLLM's padding of 64 entries."""
    return _cdiv(vocab, VOCAB_PADDING) * VOCAB_PADDING


# ---- one decoder layer ---------------------------------------------------------------------


def _attention(cfg: dict[str, Any], tp: int) -> Params:
    hidden = _int(cfg, "hidden_size")
    heads = _int(cfg, "num_attention_heads", 1)
    kv = _int(cfg, "num_key_value_heads", heads) or heads
    head = _int(cfg, "head_dim") or hidden // heads
    kv_rank = kv // tp if kv >= tp else 1
    q_out = heads * head // tp
    if cfg.get("model_type") == "qwen3_next":
        q_out *= 2  # gated attention: the query projection also yields the gate
    linear = hidden * (q_out + 2 * kv_rank * head) + heads * head // tp * hidden
    plain = 2 * head if (cfg.get("model_type") or "").startswith(("qwen3", "gemma3")) else 0  # q/k norm
    bias = bool(cfg.get("attention_bias")) or cfg.get("model_type") in ("qwen2", "qwen2_moe")
    if bias:
        plain += q_out + 2 * kv_rank * head
    if cfg.get("model_type") == "gpt_oss":
        plain += hidden + heads // tp  # o_proj bias, attention sinks
    return Params(linear=linear, plain=plain)


def _mla(cfg: dict[str, Any], tp: int) -> Params:
    hidden = _int(cfg, "hidden_size")
    heads = _int(cfg, "num_attention_heads", 1)
    nope, rope = _int(cfg, "qk_nope_head_dim"), _int(cfg, "qk_rope_head_dim")
    v, kv_lora, q_lora = _int(cfg, "v_head_dim"), _int(cfg, "kv_lora_rank"), _int(cfg, "q_lora_rank")
    qk = nope + rope
    linear = hidden * (kv_lora + rope)  # kv_a_proj_with_mqa, replicated
    plain = kv_lora  # kv_a_layernorm
    if q_lora:
        linear += hidden * q_lora + q_lora * heads * qk // tp  # q_a_proj (replicated), q_b_proj
        plain += q_lora  # q_a_layernorm
    else:
        linear += hidden * heads * qk // tp
    linear += kv_lora * heads * (nope + v) // tp  # kv_b_proj
    linear += heads * v * hidden // tp  # o_proj
    return Params(linear=linear, plain=plain)


def _mamba2(cfg: dict[str, Any], tp: int) -> Params:
    hidden = _int(cfg, "hidden_size")
    expand = _first(cfg, "mamba_expand", "expand", default=2)
    inner = _first(cfg, "mamba_intermediate_size") or (
        _first(cfg, "mamba_n_heads", "mamba_num_heads", "num_heads")
        * _first(cfg, "mamba_d_head", "mamba_head_dim", "head_dim")
    )
    inner = inner or expand * hidden
    groups = _first(cfg, "mamba_n_groups", "n_groups", default=1)
    state = _first(cfg, "mamba_d_state", "ssm_state_size", "state_size", default=128)
    nheads = _first(cfg, "mamba_n_heads", "mamba_num_heads", "num_heads", default=inner // 64)
    kernel = _first(cfg, "mamba_d_conv", "conv_kernel", default=4)
    conv_dim = inner + 2 * groups * state
    linear = hidden * (inner + conv_dim + nheads) // tp + inner * hidden // tp
    plain = conv_dim * (kernel + 1) // tp + 3 * nheads // tp + inner // tp
    return Params(linear=linear, plain=plain)


def _mamba1(cfg: dict[str, Any], tp: int) -> Params:
    hidden = _int(cfg, "hidden_size")
    inner = _first(cfg, "mamba_expand", default=2) * hidden
    state = _first(cfg, "mamba_d_state", default=16)
    kernel = _first(cfg, "mamba_d_conv", default=4)
    dt_rank = _first(cfg, "mamba_dt_rank", default=_cdiv(hidden, 16))
    linear = (2 * inner * hidden + inner * (dt_rank + 2 * state) + dt_rank * inner + inner * hidden) // tp
    plain = (inner * (kernel + 1) + inner + inner * state + inner) // tp + dt_rank + 2 * state
    return Params(linear=linear, plain=plain)


def _gated_delta_net(cfg: dict[str, Any], tp: int) -> Params:
    hidden = _int(cfg, "hidden_size")
    nk, dk = _int(cfg, "linear_num_key_heads"), _int(cfg, "linear_key_head_dim")
    nv, dv = _int(cfg, "linear_num_value_heads"), _int(cfg, "linear_value_head_dim")
    kernel = _first(cfg, "linear_conv_kernel_dim", default=4)
    key_dim, value_dim = nk * dk, nv * dv
    linear = hidden * (2 * key_dim + 2 * value_dim + 2 * nv) // tp + value_dim * hidden // tp
    plain = (2 * key_dim + value_dim) * kernel // tp + 2 * nv // tp + dv
    return Params(linear=linear, plain=plain)


def _mixer(cfg: dict[str, Any], tp: int) -> Params:
    model_type = str(cfg.get("model_type", ""))
    if model_type == "qwen3_next" or cfg.get("linear_num_value_heads"):
        return _gated_delta_net(cfg, tp)
    if model_type == "jamba" or (model_type == "mamba" and not cfg.get("n_groups")):
        return _mamba1(cfg, tp)
    return _mamba2(cfg, tp)


def _moe_layer(cfg: dict[str, Any], index: int) -> bool:
    experts = _first(cfg, "num_experts", "n_routed_experts", "num_local_experts")
    if not experts:
        return False
    if index < _int(cfg, "first_k_dense_replace"):
        return False
    dense_layers = cfg.get("mlp_only_layers")
    if isinstance(dense_layers, list) and index in dense_layers:
        return False
    step = _first(cfg, "interleave_moe_layer_step", "decoder_sparse_step", "moe_layer_freq", default=1)
    if cfg.get("model_type") == "llama4_text":
        return (index + 1) % step == 0
    if cfg.get("model_type") == "jamba":
        period = _first(cfg, "expert_layer_period", default=2)
        return index % period == _int(cfg, "expert_layer_offset", 1)
    return index % step == 0 if "first_k_dense_replace" in cfg else (index + 1) % step == 0


def _mlp(cfg: dict[str, Any], index: int, tp: int) -> Params:
    hidden = _int(cfg, "hidden_size")
    inter = _int(cfg, "intermediate_size")
    model_type = cfg.get("model_type")
    if not _moe_layer(cfg, index):
        dense = _first(cfg, "intermediate_size_mlp", default=inter) if model_type == "llama4_text" else inter
        plain = (hidden + 2 * dense // tp) if cfg.get("mlp_bias") else 0
        return Params(linear=3 * hidden * dense // tp, plain=plain)
    experts = _first(cfg, "num_experts", "n_routed_experts", "num_local_experts")
    moe_inter = _first(cfg, "moe_intermediate_size", default=inter)
    routed = experts * 3 * hidden * moe_inter // tp
    router = hidden * experts
    shared = _int(cfg, "n_shared_experts") * moe_inter + _int(cfg, "shared_expert_intermediate_size")
    if model_type == "llama4_text":
        shared = inter
    if _int(cfg, "shared_expert_intermediate_size"):
        router += hidden  # shared_expert_gate
    plain = router
    if model_type == "gpt_oss":
        plain += experts + experts * (2 * moe_inter // tp + hidden)  # router bias, expert biases
    if cfg.get("topk_method") == "noaux_tc":
        plain += experts  # e_score_correction_bias
    return Params(linear=3 * hidden * shared // tp, experts=routed, plain=plain)


def _norms_per_layer(cfg: dict[str, Any]) -> int:
    return 4 if str(cfg.get("model_type", "")).startswith(("gemma2", "gemma3")) else 2


def _pattern(cfg: dict[str, Any]) -> str | None:
    pattern = cfg.get("hybrid_override_pattern")
    return pattern if isinstance(pattern, str) else None


def layer_params(cfg: dict[str, Any], index: int, kind: str | None, tp: int) -> Params:
    """Parameters of decoder layer ``index`` on one TP rank.

    ``kind`` is the layer's KV cache kind from the model description
    (``full``, ``sliding_window``, ``chunked_local``, ``mla``, ``mamba``) or
    None for a layer without KV cache.
    """
    hidden = _int(cfg, "hidden_size")
    pattern = _pattern(cfg)
    if pattern is not None and index < len(pattern):  # Nemotron-H: one block per layer
        block = pattern[index]
        norm = Params(plain=hidden)
        if block == "M":
            return norm + _mixer(cfg, tp)
        if block == "*":
            return norm + _attention(cfg, tp)
        return norm + _mlp(cfg, index, tp)
    if kind == "mla":
        mixer = _mla(cfg, tp)
    elif kind == "mamba":
        mixer = _mixer(cfg, tp)
    elif kind is None:
        mixer = Params()
    else:
        mixer = _attention(cfg, tp)
    mlp = (
        _mlp(cfg, index, tp)
        if _int(cfg, "intermediate_size") or _first(cfg, "moe_intermediate_size")
        else Params()
    )
    if cfg.get("model_type") in ("mamba", "mamba2"):
        mlp = Params()  # attention-free Mamba models have a mixer and one norm per layer
        return mixer + Params(plain=hidden)
    return mixer + mlp + Params(plain=_norms_per_layer(cfg) * hidden)


def _layer_kinds(model: ModelDescription) -> dict[int, str]:
    return {layer.index: layer.kind for layer in model.layers}


@lru_cache(maxsize=1024)  # a sweep asks for the same stages under many GPUs, dtypes and block sizes
def stage_params(
    model: ModelDescription, tp: int, start: int, end: int, *, first: bool, last: bool, padded: bool = True
) -> Params:
    """Parameters on one TP rank of the PP stage holding decoder layers ``[start, end)``.

    The first stage holds the embeddings, the last the final norm and the LM
    head; with tied embeddings the LM head is the embedding itself (one copy at
    PP=1, a second copy on the last stage at PP>1, as vLLM builds it).
    """
    cfg = model.config
    kinds = _layer_kinds(model)
    total = Params()
    for index in range(start, end):
        total = total + layer_params(cfg, index, kinds.get(index), tp)
    hidden = _int(cfg, "hidden_size")
    vocab = _int(cfg, "vocab_size")
    vocab = padded_vocab(vocab) if padded else vocab
    embed = _cdiv(vocab, tp) * hidden
    tied = tied_word_embeddings(cfg)
    if first:
        total = total + Params(embed=embed)
    if last:
        total = total + Params(plain=hidden)
        if not (tied and first):
            total = total + Params(embed=embed)
    return total


def parameter_count(model: ModelDescription) -> int:
    """The model's parameters at TP=1, PP=1, vocabulary unpadded (as model cards count them)."""
    return stage_params(model, 1, 0, model.num_hidden_layers, first=True, last=True, padded=False).total


# ---- bytes ------------------------------------------------------------------------------------


@dataclass(eq=False)
class Storage:
    """Bytes per parameter for each kind of parameter, and how that was decided."""

    linear: float
    experts: float
    plain: float
    embed: float
    how: str

    def bytes(self, p: Params) -> int:
        """Bytes of ``p`` stored this way."""
        return int(
            p.linear * self.linear + p.experts * self.experts + p.plain * self.plain + p.embed * self.embed
        )


def _group_size(value: Any, default: int = 128) -> int:
    return value if isinstance(value, int) and value > 0 else default


def _compressed_tensors(quant: dict[str, Any]) -> tuple[float, str] | None:
    groups = quant.get("config_groups")
    if not isinstance(groups, dict):
        return None
    for group in groups.values():
        weights = group.get("weights") if isinstance(group, dict) else None
        if not isinstance(weights, dict):
            continue
        bits = _int(weights, "num_bits", 16)
        kind = str(weights.get("type", "int"))
        strategy = str(weights.get("strategy", "tensor"))
        if bits == 8:
            return 1.0, f"compressed-tensors {kind}8 ({strategy} scales)"
        if bits == 4 and kind == "float":
            return 0.5 + 1 / _group_size(weights.get("group_size"), 16), "compressed-tensors nvfp4"
        if bits == 4:
            g = _group_size(weights.get("group_size"))
            return 0.5 + 2.5 / g, f"compressed-tensors int4 (group {g})"
    return None


def storage(cfg: dict[str, Any], dtype_bytes: int) -> Storage:
    """How the checkpoint's ``quantization_config`` stores each kind of parameter."""
    plain = float(dtype_bytes)
    quant = cfg.get("quantization_config")
    if not isinstance(quant, dict):
        return Storage(plain, plain, plain, plain, f"{dtype_bytes}-byte weights")
    method = str(quant.get("quant_method", "")).lower()
    algo = str(quant.get("quant_algo", "")).lower()
    if method == "mxfp4":  # gpt-oss: experts only, 4 bits plus one 8-bit scale per 32
        # The fused-MoE kernels re-lay the experts with the hidden size padded to 256
        # (2880 -> 3072 for gpt-oss; matches the measured 13.47 / 64.38 GiB on H100).
        hidden = _int(cfg, "hidden_size") or 256
        pad = _cdiv(hidden, 256) * 256 / hidden
        return Storage(
            plain, 4.25 / 8 * pad, plain, plain, "mxfp4 experts (hidden padded to 256), rest unquantized"
        )
    found: tuple[float, str] | None = None
    if method == "compressed-tensors":
        found = _compressed_tensors(quant)
    elif method in ("fp8", "fbgemm_fp8", "ptpc_fp8") or (method == "modelopt" and "fp8" in algo):
        block = quant.get("weight_block_size")
        if isinstance(block, list) and len(block) == 2 and all(isinstance(b, int) and b for b in block):
            found = (
                1.0 + 4 / (block[0] * block[1]),
                f"fp8 weights, fp32 scale per {block[0]}x{block[1]} block",
            )
        else:
            found = 1.0, f"{method} fp8 weights (per-tensor/per-channel scales)"
    elif method in ("modelopt_fp4", "nvfp4") or (method == "modelopt" and "fp4" in algo):
        found = 0.5 + 1 / 16, "nvfp4 weights (fp8 scale per 16)"
    elif method in ("awq", "gptq", "awq_marlin", "gptq_marlin", "bitsandbytes") or quant.get("bits") == 4:
        bits = _first(quant, "bits", "w_bit", default=4)
        g = _group_size(quant.get("group_size") or quant.get("q_group_size"))
        found = bits / 8 + 2.5 / g, f"{method} {bits}-bit weights (group {g}, fp16 scales and zeros)"
    if found is None:
        return Storage(
            plain, plain, plain, plain, f"{dtype_bytes}-byte weights ({method or 'unknown'} not modelled)"
        )
    per, how = found
    return Storage(per, per, plain, plain, how)


def dtype_bytes(model: ModelDescription) -> int:
    """Bytes per unquantized weight: vLLM loads float32 checkpoints in 16 bits."""
    return 2


def rotary_cache_bytes(model: ModelDescription) -> int:
    """RoPE's cos/sin cache, max positions x rotary width in 16 bits, which vLLM counts as model memory."""
    cfg = model.config
    hidden, heads = _int(cfg, "hidden_size"), _int(cfg, "num_attention_heads", 1) or 1
    width = _int(cfg, "qk_rope_head_dim") or _int(cfg, "head_dim") or hidden // heads
    return _int(cfg, "max_position_embeddings") * width * 2


def stage_weight_bytes(
    model: ModelDescription,
    serving: Serving,
    rank: int,
    start: int,
    end: int,
    directory: Path | None = None,
) -> Estimate:
    """Weight bytes on one TP rank of PP stage ``rank`` (decoder layers ``start..end``).

    Exact (read from the ``*.safetensors`` headers) when ``directory`` holds
    the checkpoint; otherwise counted from the config.
    """
    if directory is not None:
        from kvplan.memory import checkpoint

        exact = checkpoint.stage_bytes(
            model, serving, directory, start, end, first=rank == 0, last=rank == serving.pp - 1
        )
        if exact is not None:
            return Estimate(exact.bytes, False, f"safetensors headers ({exact.files} files in {directory})")
    first, last = rank == 0, rank == serving.pp - 1
    params = stage_params(model, serving.tp, start, end, first=first, last=last)
    how = storage(model.config, dtype_bytes(model))
    rope = rotary_cache_bytes(model)
    parts = [f"{end - start} layers"]
    if first:
        parts.append("embeddings")
    if last:
        parts.append("LM head")
    return Estimate(
        how.bytes(params) + rope,
        True,
        f"{params.total / 1e9:.2f}B params on this rank ({', '.join(parts)}; TP={serving.tp}) from the config, {how.how}",
    )


# ---- runtime terms ----------------------------------------------------------------------------


def activation_bytes(
    model: ModelDescription,
    serving: Serving,
    release: Release,
    max_num_batched_tokens: int,
    max_num_seqs: int,
    *,
    last: bool = True,
) -> Estimate:
    """vLLM's profiled activation peak (bytes) on one rank of a PP stage.

    Last stage: sampler warm-up over ``min(max_num_seqs, max_num_batched_tokens)``
    requests x the vocabulary, plus the hidden states of every scheduled token.
    Other stages run no sampler: the dummy forward's MLP activations.
    """
    cfg = model.config
    vocab = _int(cfg, "vocab_size")
    hidden = _int(cfg, "hidden_size")
    inter = _first(cfg, "intermediate_size", "moe_intermediate_size", default=4 * hidden)
    hidden_part = HIDDEN_BYTES_PER_TOKEN_UNIT * max_num_batched_tokens * hidden
    if not last:
        value = int(hidden_part + max_num_batched_tokens * 3 * inter // serving.tp * 2)
        return Estimate(
            value,
            True,
            f"no sampler on this stage: {max_num_batched_tokens} tokens x (hidden, MLP) activations",
        )
    reqs = min(max_num_seqs, max_num_batched_tokens)
    per = SAMPLER_BYTES
    value = int(per * reqs * vocab + hidden_part)
    return Estimate(
        value,
        True,
        f"{per} B x {reqs} requests x vocab {vocab} + {HIDDEN_BYTES_PER_TOKEN_UNIT} B x "
        f"{max_num_batched_tokens} tokens x hidden {hidden}",
    )


def non_torch_bytes(serving: Serving) -> Estimate:
    """CUDA context and, with more than one GPU, NCCL buffers."""
    if serving.tp * serving.pp > 1:
        return Estimate(NON_TORCH_PARALLEL, True, "0.55 GiB measured at TP=2 (CUDA context + NCCL)")
    return Estimate(NON_TORCH_SINGLE, True, "0.13 GiB measured at TP=1 (CUDA context)")


def cuda_graph_bytes(model: ModelDescription, serving: Serving, release: Release) -> Estimate:
    """CUDA graph memory subtracted from the KV cache: only from vLLM 0.20, not in eager mode."""
    if serving.enforce_eager:
        return Estimate(0, False, "eager mode: no CUDA graphs")
    if not release.behaviour.cuda_graphs_in_budget:
        return Estimate(0, False, f"vLLM {release.version} captures graphs after sizing the KV cache")
    return Estimate(
        CUDA_GRAPH_ESTIMATE, True, "0.40 GiB (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS, default on)"
    )


def serve_batch_defaults(total_bytes: int, gpu_name: str, release: Release) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) that ``vllm serve`` picks for a GPU.

    vLLM's ``EngineArgs.get_batch_defaults``: 16384/1024 at >= 160 GiB (0.28+),
    8192/1024 at >= 70 GiB except A100, 2048/256 otherwise.
    """
    name = gpu_name.lower()
    if release.behaviour.batch_tier_160gib and total_bytes >= 160 * GiB:
        return 16384, 1024
    if total_bytes >= 70 * GiB and "a100" not in name and "gb10" not in name:
        return 8192, 1024
    return 2048, 256
