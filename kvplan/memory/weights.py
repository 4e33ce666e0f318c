"""The weights on one GPU: parameters per TP rank and PP stage, and how they are stored.

Weights are counted from the config, per TP rank and PP stage, as vLLM shards
them: column/row-parallel linears divide by TP, KV heads are replicated when TP
exceeds them, MLA's down-projections and MoE routers are replicated, the
vocabulary is padded to 64 (``VocabParallelEmbedding``) and split by TP, a
vision tower sits on the first stage.  Bytes per parameter follow the
quantization method as vLLM lays it out after ``process_weights_after_loading``
(Marlin repacking, the MXFP4 MoE backends' padding, ignored layers).  See
docs/memory.md; the runtime terms are in ``kvplan.memory.runtime``.
"""

from __future__ import annotations

import re
from dataclasses import field
from functools import lru_cache
from pathlib import Path
from typing import Any

from kvplan.inputs.serving import Serving
from kvplan.memory.sharding import MoeShards, moe_shards
from kvplan.model.config import tied_word_embeddings
from kvplan.model.layers import ModelDescription
from kvplan.records import record
from kvplan.releases import Release

GiB = 1 << 30
VOCAB_PADDING = 64  # vLLM's DEFAULT_VOCAB_PADDING_SIZE


@record(eq=False)
class Estimate:
    """Bytes, whether they are an estimate, and the formula or file behind them."""

    bytes: int
    estimated: bool
    source: str


@record(eq=False)
class Params:
    """Parameter counts on one rank, by how they are stored.

    The linear kinds a quantization method quantizes (unless its config
    ignores them): ``attention`` (attention and MLA projections), ``mixer``
    (Mamba / gated-delta-net projections), ``mlp`` (dense MLPs and shared
    experts), ``experts`` (routed MoE experts; gpt-oss's mxfp4 quantizes only
    these).  Kept in the model dtype: ``plain`` (norms, routers, biases,
    recurrent vectors), ``embed`` (embeddings and LM head), ``vision`` (the
    vision tower and its projector).  ``mla_kv_b``: elements of the MLA
    ``kv_b_proj``, which vLLM dequantizes into W_UK/W_UV when it is quantized.
    ``fp32``: kept in float32 whatever the model dtype (gpt-oss's expert biases,
    which the MXFP4 MoE methods convert).
    """

    attention: int = 0
    mixer: int = 0
    mlp: int = 0
    experts: int = 0
    plain: int = 0
    embed: int = 0
    vision: int = 0
    mla_kv_b: int = 0
    fp32: int = 0

    def __add__(self, other: Params) -> Params:
        return Params(
            self.attention + other.attention,
            self.mixer + other.mixer,
            self.mlp + other.mlp,
            self.experts + other.experts,
            self.plain + other.plain,
            self.embed + other.embed,
            self.vision + other.vision,
            self.mla_kv_b + other.mla_kv_b,
            self.fp32 + other.fp32,
        )

    @property
    def linear(self) -> int:
        """The dense linears: attention, mixer and MLP projections."""
        return self.attention + self.mixer + self.mlp

    @property
    def total(self) -> int:
        """All parameters (``mla_kv_b`` is already in ``attention``)."""
        return self.linear + self.experts + self.plain + self.embed + self.vision + self.fp32


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
    return Params(attention=linear, plain=plain)


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
    kv_b = kv_lora * heads * (nope + v) // tp  # kv_b_proj
    linear += kv_b + heads * v * hidden // tp  # and o_proj
    return Params(attention=linear, plain=plain, mla_kv_b=kv_b)


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
    return Params(mixer=linear, plain=plain)


def _mamba1(cfg: dict[str, Any], tp: int) -> Params:
    hidden = _int(cfg, "hidden_size")
    inner = _first(cfg, "mamba_expand", default=2) * hidden
    state = _first(cfg, "mamba_d_state", default=16)
    kernel = _first(cfg, "mamba_d_conv", default=4)
    dt_rank = _first(cfg, "mamba_dt_rank", default=_cdiv(hidden, 16))
    linear = (2 * inner * hidden + inner * (dt_rank + 2 * state) + dt_rank * inner + inner * hidden) // tp
    plain = (inner * (kernel + 1) + inner + inner * state + inner) // tp + dt_rank + 2 * state
    return Params(mixer=linear, plain=plain)


def _gated_delta_net(cfg: dict[str, Any], tp: int) -> Params:
    hidden = _int(cfg, "hidden_size")
    nk, dk = _int(cfg, "linear_num_key_heads"), _int(cfg, "linear_key_head_dim")
    nv, dv = _int(cfg, "linear_num_value_heads"), _int(cfg, "linear_value_head_dim")
    kernel = _first(cfg, "linear_conv_kernel_dim", default=4)
    key_dim, value_dim = nk * dk, nv * dv
    linear = hidden * (2 * key_dim + 2 * value_dim + 2 * nv) // tp + value_dim * hidden // tp
    plain = (2 * key_dim + value_dim) * kernel // tp + 2 * nv // tp + dv
    return Params(mixer=linear, plain=plain)


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


def _ungated(cfg: dict[str, Any]) -> bool:
    """An MLP of up and down projections only (Nemotron's squared ReLU), no gate."""
    act = cfg.get("mlp_hidden_act", cfg.get("hidden_act"))
    return act == "relu2" or cfg.get("model_type") in ("nemotron", "nemotron_h")


def _mlp(cfg: dict[str, Any], index: int, tp: int, moe: MoeShards | None = None) -> Params:
    hidden = _int(cfg, "hidden_size")
    inter = _int(cfg, "intermediate_size")
    model_type = cfg.get("model_type")
    if not _moe_layer(cfg, index):
        dense = _first(cfg, "intermediate_size_mlp", default=inter) if model_type == "llama4_text" else inter
        plain = (hidden + 2 * dense // tp) if cfg.get("mlp_bias") else 0
        matrices = 2 if _ungated(cfg) else 3  # up + down without a gate (relu^2 MLPs)
        return Params(mlp=matrices * hidden * dense // tp, plain=plain)
    experts = _first(cfg, "num_experts", "n_routed_experts", "num_local_experts")
    moe_inter = _first(cfg, "moe_intermediate_size", default=inter)
    moe = moe or MoeShards(tp=tp)
    local, expert_inter = moe.local_experts(experts), moe_inter // moe.tp
    routed = local * 3 * hidden * expert_inter
    router = hidden * experts
    shared = _int(cfg, "n_shared_experts") * moe_inter + _int(cfg, "shared_expert_intermediate_size")
    if model_type == "llama4_text":
        shared = inter
    if _int(cfg, "shared_expert_intermediate_size"):
        router += hidden  # shared_expert_gate
    plain, fp32 = router, 0
    if model_type == "gpt_oss":
        plain += experts  # router bias
        fp32 = local * (2 * expert_inter + hidden)  # expert biases, float32 once loaded
    if cfg.get("topk_method") == "noaux_tc":
        plain += experts  # e_score_correction_bias
    return Params(mlp=3 * hidden * shared // tp, experts=routed, plain=plain, fp32=fp32)


def _norms_per_layer(cfg: dict[str, Any]) -> int:
    return 4 if str(cfg.get("model_type", "")).startswith(("gemma2", "gemma3")) else 2


def _pattern(cfg: dict[str, Any]) -> str | None:
    pattern = cfg.get("hybrid_override_pattern")
    return pattern if isinstance(pattern, str) else None


def layer_params(
    cfg: dict[str, Any], index: int, kind: str | None, tp: int, moe: MoeShards | None = None
) -> Params:
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
        return norm + _mlp(cfg, index, tp, moe)
    if kind == "mla":
        mixer = _mla(cfg, tp)
    elif kind == "mamba":
        mixer = _mixer(cfg, tp)
    elif kind is None:
        mixer = Params()
    else:
        mixer = _attention(cfg, tp)
    mlp = (
        _mlp(cfg, index, tp, moe)
        if _int(cfg, "intermediate_size") or _first(cfg, "moe_intermediate_size")
        else Params()
    )
    if cfg.get("model_type") in ("mamba", "mamba2"):
        mlp = Params()  # attention-free Mamba models have a mixer and one norm per layer
        return mixer + Params(plain=hidden)
    return mixer + mlp + Params(plain=_norms_per_layer(cfg) * hidden)


def _layer_kinds(model: ModelDescription) -> dict[int, str]:
    return {layer.index: layer.kind for layer in model.layers}


# Decoders whose vLLM model file builds the embedding and the LM head on every PP rank
# (no PPMissingLayer; vllm/model_executor/models/{qwen3_moe,qwen2_moe,mixtral,gemma2,gemma3,
# gpt_oss,nemotron_h,jamba,mamba,mamba2,qwen3_next,granitemoe,granitemoehybrid}.py in 0.33).
_EMBED_ON_EVERY_STAGE = frozenset(
    {
        "Qwen3MoeForCausalLM",
        "Qwen2MoeForCausalLM",
        "MixtralForCausalLM",
        "Gemma2ForCausalLM",
        "Gemma3ForCausalLM",
        "Gemma3ForConditionalGeneration",
        "GptOssForCausalLM",
        "NemotronHForCausalLM",
        "JambaForCausalLM",
        "MambaForCausalLM",
        "Mamba2ForCausalLM",
        "Qwen3NextForCausalLM",
        "GraniteMoeForCausalLM",
        "GraniteMoeHybridForCausalLM",
    }
)


@lru_cache(maxsize=1024)  # a sweep asks for the same stages under many GPUs, dtypes and block sizes
def stage_params(
    model: ModelDescription,
    tp: int,
    start: int,
    end: int,
    *,
    first: bool,
    last: bool,
    padded: bool = True,
    moe: MoeShards | None = None,
) -> Params:
    """Parameters on one TP rank of the PP stage holding decoder layers ``[start, end)``.

    The first stage holds the embeddings, the last the final norm and the LM
    head; with tied embeddings the LM head is the embedding itself (one copy at
    PP=1, a second copy on the last stage at PP>1, as vLLM builds it).  Some
    vLLM model files build the embedding and the LM head on every stage
    (``_EMBED_ON_EVERY_STAGE``).  A multimodal model's vision tower and
    projector are on the first stage.  ``moe``: how the routed experts are
    split (default: by ``tp``, as without data or expert parallelism).
    """
    cfg = model.config
    kinds = _layer_kinds(model)
    total = Params()
    for index in range(start, end):
        total = total + layer_params(cfg, index, kinds.get(index), tp, moe)
    hidden = _int(cfg, "hidden_size")
    vocab = _int(cfg, "vocab_size")
    vocab = padded_vocab(vocab) if padded else vocab
    embed = _cdiv(vocab, tp) * hidden
    tied = tied_word_embeddings(cfg)
    everywhere = model.architecture in _EMBED_ON_EVERY_STAGE
    if first or everywhere:
        total = total + Params(embed=embed)
    if last:
        total = total + Params(plain=hidden)
    if (last or everywhere) and not (tied and (first or everywhere)):
        total = total + Params(embed=embed)
    if first:
        total = total + Params(vision=vision_params(cfg, tp))
    return total


def parameter_count(model: ModelDescription) -> int:
    """The model's parameters at TP=1, PP=1, vocabulary unpadded (as model cards count them)."""
    return stage_params(model, 1, 0, model.num_hidden_layers, first=True, last=True, padded=False).total


def vision_params(cfg: dict[str, Any], tp: int = 1) -> int:
    """Parameters of a multimodal config's vision tower and projector on one TP rank (0 without one).

    A ViT: per layer the qkv/out projections and the two MLP matrices with
    their biases (tensor-parallel, divided by TP) and two layer norms; the
    patch embedding (a convolution over channels x temporal patch x patch x
    patch), the position table and the final norm (replicated).  The
    projector maps the tower's output to the text hidden size: Gemma 3's
    single replicated matrix and norm, Qwen's patch merger (spatial_merge_size^2
    patches into two tensor-parallel matrices), otherwise one matrix.
    """
    vc = cfg.get("vision_config")
    if not isinstance(vc, dict):
        return 0
    h = _int(vc, "hidden_size")
    inter = _int(vc, "intermediate_size") or 4 * h
    layers = _first(vc, "num_hidden_layers", "depth")
    if not h or not layers:
        return 0
    text_hidden = _int(cfg, "hidden_size")
    per_layer = (4 * h * h + 3 * h + 2 * h * inter + inter) // tp + h + h + 4 * h
    channels = _first(vc, "num_channels", "in_channels", "in_chans", default=3)
    patch = _int(vc, "patch_size", 14) or 14
    temporal = _first(vc, "temporal_patch_size", default=1)
    image = _int(vc, "image_size")
    positions = _first(vc, "num_position_embeddings") or ((image // patch) ** 2 if image else 0)
    tower = layers * per_layer + channels * temporal * patch * patch * h + h + positions * h + 2 * h
    out = _first(vc, "out_hidden_size", "vision_output_dim", "projector_output_dim", default=text_hidden)
    merge = _first(vc, "spatial_merge_size", default=0)
    if merge:
        wide = h * merge * merge
        projector = h + (wide * wide + wide + wide * out) // tp + out
    elif str(vc.get("model_type", "")).startswith("siglip") and str(cfg.get("model_type", "")).startswith(
        "gemma3"
    ):
        projector = h * text_hidden + h  # mm_input_projection_weight, mm_soft_emb_norm
    else:
        projector = h * (out or text_hidden) // tp
    return tower + projector


# ---- bytes ------------------------------------------------------------------------------------

QUANTIZABLE = ("attention", "mixer", "mlp", "experts")


@record(eq=False)
class Storage:
    """Bytes per parameter for each kind of parameter, and how that was decided.

    ``linear`` applies to attention, mixer and MLP projections, ``experts`` to
    routed experts; ``kept`` is the fraction of each quantizable kind the
    checkpoint leaves unquantized (its ignore list), stored like ``plain``.
    ``mla_dequant``: the MLA ``kv_b_proj`` is quantized, so vLLM keeps a
    model-dtype copy of it (W_UK/W_UV) next to it.
    """

    linear: float
    experts: float
    plain: float
    embed: float
    how: str
    kept: dict[str, float] = field(default_factory=dict)
    mla_dequant: bool = False

    def bytes(self, p: Params) -> int:
        """Bytes of ``p`` stored this way."""
        total = p.plain * self.plain + (p.embed + p.vision) * self.embed + 4 * p.fp32
        for kind in QUANTIZABLE:
            count = getattr(p, kind)
            kept = self.kept.get(kind, 0.0)
            per = self.experts if kind == "experts" else self.linear
            total += count * (1 - kept) * per + count * kept * self.plain
        if self.mla_dequant and self.kept.get("attention", 0.0) < 1:
            total += p.mla_kv_b * self.plain
        return int(total)


def _group_size(value: Any, default: int = 128) -> int:
    return value if isinstance(value, int) and value > 0 else default


def _round_up(value: int, multiple: int) -> int:
    return _cdiv(value, multiple) * multiple


def marlin_arch(arch: str) -> bool:
    """GPUs without FP8 tensor cores (compute capability < 8.9): vLLM runs FP8 through Marlin."""
    return arch in ("ampere", "turing", "volta")


def _fp8(block: Any, arch: str, method: str) -> tuple[float, str]:
    if isinstance(block, list) and len(block) == 2 and all(isinstance(b, int) and b for b in block):
        if marlin_arch(arch):
            # Fp8LinearMethod.use_marlin: the block scales become bf16 scales per group of 128 inputs.
            return 1.0 + 2 / 128, f"{method} fp8 weights repacked for Marlin, bf16 scale per 128 inputs"
        return 1.0 + 4 / (
            block[0] * block[1]
        ), f"{method} fp8 weights, fp32 scale per {block[0]}x{block[1]} block"
    return 1.0, f"{method} fp8 weights (per-tensor/per-channel scales)"


def _int4(bits: int, group: int, zp_bytes: float, how: str) -> tuple[float, str]:
    """Packed ``bits``-bit weights, a 16-bit scale per ``group`` inputs (0: one per output
    channel) and ``zp_bytes`` of zero point per group and output."""
    per = bits / 8 + ((2 + zp_bytes) / group if group else 0)
    zp = f", {int(zp_bytes * 8)}-bit zero points" if zp_bytes else ""
    return per, f"{how} {bits}-bit weights (group {group or 'per channel'}, 16-bit scales{zp})"


def _machete(arch: str, bits: int, group: int) -> bool:
    """vLLM's mixed-precision kernel choice on one GPU: Machete (compute capability 9.0 only,
    4/8-bit, groups of 64 or 128 or per channel; kernels/linear/mixed_precision/machete.py),
    else Marlin."""
    return arch == "hopper" and bits in (4, 8) and group in (0, 64, 128)


def _wna16(
    quant: dict[str, Any], method: str, arch: str, awq_machete: bool
) -> tuple[tuple[float, str], tuple[float, str]]:
    """(linears, routed experts) bytes per parameter of an AWQ / GPTQ checkpoint as vLLM lays it out.

    Linears go through choose_mp_linear_kernel: on Hopper Machete keeps zero
    points as 16-bit values (scale x zero point, MacheteLinearKernel's
    transform_w_zp) and a symmetric GPTQ checkpoint's unused packed ``qzeros``
    as loaded; Marlin packs zero points like the checkpoint and drops a
    symmetric GPTQ's.  AWQ linears used Marlin directly before 0.19
    (``awq_machete``).  Routed experts always take the Marlin MoE layout.
    Turing and Volta have no Marlin: the checkpoint's layout stays.
    """
    bits = _first(quant, "bits", "w_bit", default=4)
    raw = quant.get("group_size", quant.get("q_group_size"))
    group = 0 if raw == -1 else _group_size(raw)
    awq = "awq" in method or str(quant.get("quant_method", "")).startswith("awq")
    zero_points = awq or quant.get("sym", True) is False
    packed = bits / 8
    if arch in ("turing", "volta"):
        return _int4(bits, group, packed, method), _int4(bits, group, packed, method)
    marlin_zp = packed if zero_points else 0.0
    if _machete(arch, bits, group) and (awq_machete or not awq):
        linear = _int4(bits, group, 2.0 if zero_points else packed, f"{method} (Machete)")
    else:
        linear = _int4(bits, group, marlin_zp, f"{method} (Marlin)")
    return linear, _int4(bits, group, marlin_zp, f"{method} experts (Marlin MoE)")


def _compressed_tensors(quant: dict[str, Any], arch: str) -> tuple[float, str] | None:
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
        if bits == 8 and kind == "float":
            block = weights.get("block_structure") if strategy == "block" else None
            per, how = _fp8(block, arch, "compressed-tensors")
            return per, f"{how} ({strategy} scales)"
        if bits == 8:
            return 1.0, f"compressed-tensors int8 ({strategy} scales)"
        if bits == 4 and kind == "float":
            g = _group_size(weights.get("group_size"), 16)
            return 0.5 + 1 / g, f"compressed-tensors fp4 (fp8 scale per {g})"
        if bits == 4:
            g = 0 if strategy == "channel" else _group_size(weights.get("group_size"))
            asym = weights.get("symmetric") is False
            zp = (2.0 if _machete(arch, 4, g) else 0.5) if asym else 0.0
            return _int4(4, g, zp, "compressed-tensors")
    return None


def _ignored(quant: dict[str, Any], num_layers: int) -> dict[str, float]:
    """The fraction of each quantizable kind the quantization config leaves unquantized."""
    names: list[str] = []
    for key in ("ignore", "modules_to_not_convert", "ignored_layers", "exclude_modules"):
        value = quant.get(key)
        if isinstance(value, list):
            names.extend(str(v).removeprefix("re:") for v in value)
    patterns = {
        "attention": re.compile(r"self_attn|\.attn\b|attention(?!_norm)"),
        "mixer": re.compile(r"linear_attn|mixer|mamba"),
        "experts": re.compile(r"\.experts\b"),
        "mlp": re.compile(r"shared_expert(?!_gate)|\.mlp\.(gate_up|down|up|gate)_proj|\.mlp$"),
    }
    out: dict[str, float] = {}
    for kind, pattern in patterns.items():
        layers: set[int] = set()
        whole = False
        for name in names:
            if "norm" in name or "visual" in name or "vision" in name or not pattern.search(name):
                continue
            m = re.search(r"layers\.(\d+)\.", name)
            if m:
                layers.add(int(m.group(1)))
            else:
                whole = True
        if whole:
            out[kind] = 1.0
        elif layers and num_layers:
            out[kind] = min(len(layers) / num_layers, 1.0)
    return out


# Checkpoint methods a --quantization of the other spelling accepts (vLLM's overrides).
_COMPATIBLE = {
    frozenset({"awq", "awq_marlin", "auto_awq"}),
    frozenset({"gptq", "gptq_marlin", "auto_gptq"}),
    frozenset({"modelopt", "modelopt_fp4", "modelopt_mixed"}),
    frozenset({"mxfp4", "gpt_oss_mxfp4"}),
}


def quantization_method(
    cfg: dict[str, Any], flag: str | None, release: Release | None = None
) -> tuple[str | None, dict[str, Any]]:
    """(the method vLLM runs, the checkpoint's quantization config or {}).

    Raises ``PlannerRefusal`` with vLLM's text when ``--quantization`` names
    another method than the checkpoint's ``quantization_config``, or one
    ``release`` does not know (ModelConfig._verify_quantization).
    """
    from kvplan.errors import PlannerRefusal

    if flag is not None and release is not None:
        from kvplan.memory.quant_methods import accepted

        names = accepted(release.version)
        if flag not in names:
            text = f"Unknown quantization method: {flag}. Must be one of {list(names)}."
            raise PlannerRefusal(
                f"vLLM {release.version} refuses to start (ValueError from ModelConfig): {text}",
                vllm_message=text,
            )
    quant = cfg.get("quantization_config")
    if not isinstance(quant, dict):
        return flag, {}
    method = str(quant.get("quant_method", "")).lower() or None
    if flag is None or method is None or flag == method:
        return method or flag, quant
    if any(flag in group and method in group for group in _COMPATIBLE):
        return flag, quant
    if method in ("fp8", "fbgemm_fp8") and flag in ("fp8", "fbgemm_fp8"):
        return flag, quant
    text = (
        "Quantization method specified in the model config "
        f"({method}) does not match the quantization method specified in the "
        f"`quantization` argument ({flag})."
    )
    raise PlannerRefusal(f"vLLM refuses to start (ValueError from ModelConfig): {text}", vllm_message=text)


def vllm_method_name(
    cfg: dict[str, Any], flag: str | None, release: Release, arch: str = "hopper"
) -> str | None:
    """The quantization method name vLLM resolves (``model_config.quantization``).

    AWQ and GPTQ checkpoints are overridden to their Marlin methods where
    Marlin runs (awq_marlin / gptq_marlin; Turing and Volta keep awq / gptq),
    renamed auto_gptq in 0.22 and auto_awq in 0.24 (their configs'
    override_quantization_method); a ModelOpt NVFP4 checkpoint resolves to
    modelopt_fp4.
    """
    method, quant = quantization_method(cfg, flag, release)
    if method is None:
        return None
    _refuse_gptq_act_order(quant, method, release)
    base = str(quant.get("quant_method", method)).lower() if quant else method
    algo = str(quant.get("quant_algo", "")).upper()
    if base in ("awq", "gptq") and method in (base, f"{base}_marlin", f"auto_{base}"):
        renamed = "0.24.0" if base == "awq" else "0.22.0"
        if release.serves(renamed):
            return f"auto_{base}"
        return base if arch in ("turing", "volta") else f"{base}_marlin"
    if base == "modelopt" and "FP4" in algo:
        return "modelopt_fp4"
    return method


def _triton_hopper_expert_bytes(hidden: int, inter: int, behaviour: Any) -> int:
    """Bytes of one MXFP4 expert on one rank after the Hopper Triton swizzle (``inter``: the
    rank's intermediate size, already padded).

    Values (two 4-bit values a byte): HopperMXValueLayout pads the rows to 16 and each row's
    bytes to 32, after padding both to 64 in the triton_kernels vLLM 0.17 - 0.21 vendor.
    Scales (a byte per 32 values): the number of groups is padded to 4 (0.26+,
    mxfp4_utils._swizzle_mxfp4) and then to 2, the rows to 256 (HopperMXScaleLayout with 8
    warps).  Before 0.25 the loaded scale parameters stay next to the swizzled copies.
    Checked byte for byte against vLLM 0.15.1, 0.19.1, 0.23.0, 0.28.0, 0.32.0 and 0.33.0 on the
    oracle (gpt-oss-20b TP 1/2, PP 2; gpt-oss-120b TP 1/4).
    """
    pre = 64 if behaviour.mxfp4_swizzle_prepad64 else 1

    def matrix(rows: int, row_bytes: int) -> int:
        return _round_up(_round_up(rows, pre), 16) * _round_up(_round_up(row_bytes, pre), 32)

    values = matrix(2 * inter, hidden // 2) + matrix(hidden, inter // 2)
    g13, g2 = hidden // 32, inter // 32
    if behaviour.mxfp4_scale_groups_mod4:
        g13, g2 = _round_up(g13, 4), _round_up(g2, 4)
    scales = _round_up(2 * inter, 256) * _round_up(g13, 2) + _round_up(hidden, 256) * _round_up(g2, 2)
    loaded = 0 if behaviour.mxfp4_frees_scales else 2 * inter * (hidden // 32) + hidden * (inter // 32)
    return values + scales + loaded


def _mxfp4_experts(
    cfg: dict[str, Any], tp: int, arch: str, hopper_triton: bool = True, release: Release | None = None
) -> tuple[float, str]:
    """Bytes per expert parameter of MXFP4 (4 bits + an 8-bit scale per 32) with the backend's padding.

    vLLM's MXFP4 MoE backends round the hidden and per-rank intermediate sizes
    up (mxfp4_round_up_hidden_size_and_intermediate_size, fused_moe/oracle/mxfp4.py):
    Marlin (no FP8/FP4 tensor-core path: Ampere, Ada and consumer Blackwell)
    256 / 128, FlashInfer TRT-LLM (datacenter Blackwell) 256 / 256 (intermediate
    128 from 0.27), Triton (Hopper from 0.12, which vendors triton_kernels;
    Marlin before) the intermediate to 64 and then the swizzled layout
    (``_triton_hopper_expert_bytes``).
    """
    from kvplan.releases import resolve_release

    behaviour = (release or resolve_release(None)).behaviour
    hidden = _int(cfg, "hidden_size") or 256
    full = _first(cfg, "moe_intermediate_size", "intermediate_size") or 256
    inter = full // tp
    if arch == "hopper" and hopper_triton:
        padded = _round_up(inter, 64)
        per = _triton_hopper_expert_bytes(hidden, padded, behaviour) / (3 * hidden * inter)
        return per, f"mxfp4 experts (Triton swizzled layout, intermediate {inter} to {padded})"
    if arch == "blackwell":
        hp, ip, backend = 256, (128 if behaviour.mxfp4_trtllm_inter_128 else 256), "FlashInfer TRT-LLM"
    else:
        hp, ip, backend = 256, 128, "Marlin"
    pad = _round_up(hidden, hp) * _round_up(inter, ip) / (hidden * inter)
    return 4.25 / 8 * pad, f"mxfp4 experts ({backend} layout: hidden to {hp}, intermediate to {ip})"


def _refuse_gptq_act_order(quant: dict[str, Any], method: str, release: Release | None) -> None:
    """vLLM 0.30+ refuses a GPTQ checkpoint with grouped activation ordering."""
    from kvplan.errors import PlannerRefusal

    if "gptq" not in method and str(quant.get("quant_method", "")) != "gptq":
        return
    if not quant.get("desc_act") or quant.get("group_size") == -1:
        return
    if release is not None and not release.behaviour.gptq_act_order_refused:
        return
    text = (
        "GPTQ group activation ordering (desc_act=True) is no longer supported. Use a checkpoint "
        "with static activation ordering or desc_act=False."
    )
    version = release.version if release is not None else "0.30+"
    raise PlannerRefusal(
        f"vLLM {version} refuses to start (ValueError from the GPTQ config): {text}", vllm_message=text
    )


def storage(
    cfg: dict[str, Any],
    dtype_bytes: int,
    quantization: str | None = None,
    *,
    arch: str = "hopper",
    tp: int = 1,
    num_layers: int = 0,
    hopper_triton: bool = True,
    release: Release | None = None,
) -> Storage:
    """How vLLM stores each kind of parameter for the checkpoint's quantization (or ``--quantization``).

    ``tp``: the ranks each routed expert is divided over (the MXFP4 layouts pad
    its per-rank intermediate size).  ``release``: the vLLM release, for the
    choices that changed (None: the newest behaviour, with ``hopper_triton``).
    """
    plain = float(dtype_bytes)
    method, quant = quantization_method(cfg, quantization, release)
    if release is not None:
        hopper_triton = release.behaviour.mxfp4_hopper_triton
    unquantized = Storage(plain, plain, plain, plain, f"{dtype_bytes}-byte weights")
    if method is None:
        return unquantized
    algo = str(quant.get("quant_algo", "")).lower()
    kept = _ignored(quant, num_layers) if quant else {}
    found: tuple[float, str] | None = None
    experts_only = False
    if method in ("mxfp4", "gpt_oss_mxfp4") and (quant or _first(cfg, "num_local_experts", "num_experts")):
        per, how = _mxfp4_experts(cfg, tp, arch, hopper_triton, release)
        if not quant:
            how += " (--quantization; no quantization_config)"
        return Storage(plain, per, plain, plain, how + ", rest unquantized", kept)
    if method == "compressed-tensors" and quant:
        found = _compressed_tensors(quant, arch)
    elif method in ("fp8", "fbgemm_fp8", "ptpc_fp8", "fp8_per_tensor", "fp8_per_channel") or (
        method == "modelopt" and "fp4" not in algo
    ):
        found = _fp8(quant.get("weight_block_size"), arch, method)
    elif method == "fp8_per_block":
        found = _fp8([128, 128], arch, method)
    elif method in ("modelopt_fp4", "nvfp4", "petit_nvfp4") or (method == "modelopt" and "fp4" in algo):
        found = 0.5 + 1 / 16, f"{method} nvfp4 weights (fp8 scale per 16)"
    elif method in ("awq", "awq_marlin", "auto_awq", "gptq", "gptq_marlin", "auto_gptq", "moe_wna16"):
        _refuse_gptq_act_order(quant, method, release)
        awq_machete = release.behaviour.awq_machete if release is not None else True
        (per, how), (expert_per, expert_how) = _wna16(quant, method, arch, awq_machete)
        if not quant:
            how += " (assumed: no quantization_config in the config)"
        if expert_per != per and _first(cfg, "num_experts", "n_routed_experts", "num_local_experts"):
            how += "; routed " + expert_how.split(" ", 1)[1]
        return Storage(per, expert_per, plain, plain, how, kept, mla_dequant=True)
    elif method == "bitsandbytes":
        found = 0.5 + 4 / 64, "bitsandbytes 4-bit NF4 (fp32 absmax per 64)"
    elif method in ("experts_int8", "int8_per_channel_weight_only"):
        found, experts_only = (1.0, f"{method}: int8 experts, per-channel scales"), True
    elif method == "nvfp4_per_token":
        found, experts_only = (0.5 + 1 / 16, f"{method}: nvfp4 experts"), True
    if found is None:
        return Storage(plain, plain, plain, plain, f"{dtype_bytes}-byte weights ({method} not modelled)")
    per, how = found
    if not quant:
        how += " (--quantization)"
    if experts_only:
        return Storage(plain, per, plain, plain, how, kept)
    return Storage(per, per, plain, plain, how, kept, mla_dequant=True)


def dtype_bytes(model: ModelDescription, serving: Serving | None = None) -> int:
    """Bytes per unquantized weight: 4 with ``--dtype float32``, else 2 (vLLM serves float32
    checkpoints in 16 bits unless told otherwise)."""
    if serving is not None and serving.dtype in ("float", "float32"):
        return 4
    return 2


def rotary_cache_bytes(model: ModelDescription) -> int:
    """RoPE's cos/sin cache, which vLLM counts as model memory (bytes).

    ``max_position_embeddings x rotary width`` in 16 bits; linear scaling
    caches ``factor`` times the positions (LinearScalingRotaryEmbedding);
    Gemma 3 keeps a second, unscaled cache for its sliding layers; gpt-oss
    builds its cache in float32 (gpt_oss.py's get_rope(dtype=torch.float32)).
    """
    cfg = model.config
    hidden, heads = _int(cfg, "hidden_size"), _int(cfg, "num_attention_heads", 1) or 1
    width = _int(cfg, "qk_rope_head_dim") or _int(cfg, "head_dim") or hidden // heads
    positions = _int(cfg, "max_position_embeddings") or (model.max_position_embeddings or 0)
    rope = cfg.get("rope_scaling")
    factor = 1
    if isinstance(rope, dict) and rope.get("rope_type", rope.get("type")) == "linear":
        value = rope.get("factor")
        factor = int(value) if isinstance(value, int | float) and value >= 1 else 1
    element = 4 if cfg.get("model_type") == "gpt_oss" else 2
    cache = positions * factor * width * element
    if str(cfg.get("model_type", "")).startswith("gemma3") and factor > 1:
        cache += positions * width * 2
    return cache


def stage_weight_bytes(
    model: ModelDescription,
    serving: Serving,
    rank: int,
    start: int,
    end: int,
    directory: Path | None = None,
    *,
    arch: str = "hopper",
    hopper_triton: bool = True,
    release: Release | None = None,
) -> Estimate:
    """Weight bytes on one TP rank of PP stage ``rank`` (decoder layers ``start..end``).

    Exact (read from the ``*.safetensors`` headers) when ``directory`` holds
    an unquantized checkpoint; otherwise counted from the config, as for a
    quantized one: vLLM's layout after loading is not the checkpoint's (Marlin
    and Machete repacking, dropped or widened zero points, online
    quantization), and the count follows it.  ``arch``: the GPU's
    architecture, which picks the quantization kernels' layout;
    ``hopper_triton``: the release runs MXFP4 MoE on Hopper through Triton;
    ``release``: the vLLM release (its quantization rules; overrides
    ``hopper_triton``).
    """
    moe = moe_shards(serving)
    how = storage(
        model.config,
        dtype_bytes(model, serving),
        serving.quantization,
        arch=arch,
        tp=moe.tp,
        num_layers=model.num_hidden_layers,
        hopper_triton=hopper_triton,
        release=release,
    )
    quantized = quantization_method(model.config, serving.quantization, release)[0] is not None
    modelled = quantized and "not modelled" not in how.how
    index = None
    if directory is not None and not modelled:
        from kvplan.memory import checkpoint

        index = checkpoint.read_index(directory)
        if index is None or not index.missing:
            exact = checkpoint.stage_bytes(
                model, serving, directory, start, end, first=rank == 0, last=rank == serving.pp - 1
            )
            if exact is not None:
                return Estimate(
                    exact.bytes, False, f"safetensors headers ({exact.files} files in {directory})"
                )
    first, last = rank == 0, rank == serving.pp - 1
    params = stage_params(model, serving.tp, start, end, first=first, last=last, moe=moe)
    rope = rotary_cache_bytes(model)
    parts = [f"{end - start} layers"]
    if first:
        parts.append("embeddings")
    if last:
        parts.append("LM head")
    if params.vision:
        parts.append(f"vision tower {params.vision / 1e9:.2f}B")
    if moe.ep > 1:
        parts.append(f"experts split over EP={moe.ep}")
    elif moe.tp != serving.tp:
        parts.append(f"experts sharded over TP x DP={moe.tp}")
    kept = ", ".join(f"{k} {v:.0%} unquantized" for k, v in how.kept.items() if v)
    runs_as = ""
    if quantized and release is not None:
        runs_as = f" (vLLM {release.version} runs it as {vllm_method_name(model.config, serving.quantization, release, arch)})"
    if index is not None and index.missing:
        # Some shards are absent: the index's total_size is the checkpoint's, split as the config splits.
        whole = how.bytes(stage_params(model, 1, 0, model.num_hidden_layers, first=True, last=True))
        scaled = int(index.total_size * how.bytes(params) / whole) if whole else 0
        return Estimate(
            scaled + rope,
            True,
            f"{len(index.missing)} of {index.shards} shards missing in {directory}: the index's total_size "
            f"{index.total_size / GiB:.2f} GiB split as the config splits it ({', '.join(parts)}; TP={serving.tp})",
        )
    return Estimate(
        how.bytes(params) + rope,
        True,
        f"{params.total / 1e9:.2f}B params on this rank ({', '.join(parts)}; TP={serving.tp}) from the config, "
        f"{how.how}{'; ' + kept if kept else ''}{runs_as} + RoPE cache {rope / 2**20:.0f} MiB",
    )
