"""Estimates of the non-KV memory on one GPU: weights, activations, runtime overheads.

Weights are counted from the config, per TP rank and PP stage, as vLLM shards
them.  The runtime terms are empirical: see docs/memory.md for the formulas and
the measurements they were fitted to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kvplan.model import ModelDescription
from kvplan.serving import Serving

GiB = 1 << 30

# vLLM's profiling run: logits of every scheduled token dominate the activation
# peak; fitted to llm-d's H100 measurements (Llama-3.1-8B, Qwen3-0.6B/32B,
# gpt-oss-20b/120b: 4.80 - 4.87 bytes per token per vocabulary entry).
ACTIVATION_BYTES_PER_TOKEN_VOCAB = 4.83
NON_TORCH_TP1 = int(0.13 * GiB)  # CUDA context and allocator state (llm-d, TP=1)
NON_TORCH_TP_N = int(0.55 * GiB)  # plus NCCL buffers (llm-d, TP=2)
CUDA_GRAPHS = 0  # measured between -0.88 and +1.03 GiB; net zero is the median


@dataclass(frozen=True)
class Estimate:
    """Bytes, whether they are an estimate, and the formula or file behind them."""

    bytes: int
    estimated: bool
    source: str


def _int(cfg: dict[str, Any], key: str, default: int = 0) -> int:
    value = cfg.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _weight_bytes_per_param(cfg: dict[str, Any], dtype_bytes: int) -> tuple[float, str]:
    quant = cfg.get("quantization_config")
    if isinstance(quant, dict):
        method = str(quant.get("quant_method", "")).lower()
        bits = quant.get("bits") or quant.get("w_bit")
        if method in ("fp8", "fbgemm_fp8", "modelopt") or "fp8" in str(quant.get("quant_algo", "")).lower():
            return 1.0, f"{method} weights, 1 byte per parameter"
        if method in ("awq", "gptq", "awq_marlin", "gptq_marlin") or bits == 4:
            # 4-bit weights with one fp16 scale and zero per group of 128.
            return 0.5 + 4 / 128, f"{method} 4-bit weights"
        if method == "mxfp4":
            return 4.25 / 8, "mxfp4 experts (4 bits + shared 8-bit scale per 32)"
        if method in ("nvfp4", "modelopt_fp4"):
            return 4.5 / 8, "nvfp4 weights"
    return float(dtype_bytes), f"{dtype_bytes}-byte weights"


def layer_params(cfg: dict[str, Any], tp: int) -> tuple[int, int]:
    """(params per decoder layer on one rank that are quantizable, that are not)."""
    hidden = _int(cfg, "hidden_size")
    heads = _int(cfg, "num_attention_heads", 1)
    kv = _int(cfg, "num_key_value_heads", heads)
    head = _int(cfg, "head_dim") or (hidden // heads if heads else 0)
    if cfg.get("kv_lora_rank"):
        q_lora = _int(cfg, "q_lora_rank")
        nope, rope, v = _int(cfg, "qk_nope_head_dim"), _int(cfg, "qk_rope_head_dim"), _int(cfg, "v_head_dim")
        kv_lora = _int(cfg, "kv_lora_rank")
        q = (hidden * q_lora + q_lora * heads * (nope + rope)) if q_lora else hidden * heads * (nope + rope)
        attn = (
            q // tp
            + hidden * (kv_lora + rope)
            + kv_lora * heads * (nope + v) // tp
            + heads * v * hidden // tp
        )
    else:
        kv_rank = max(1, kv // tp) if kv >= tp else 1
        attn = hidden * heads * head // tp * 2 + 2 * hidden * kv_rank * head
    experts = _int(cfg, "num_experts") or _int(cfg, "n_routed_experts") or _int(cfg, "num_local_experts")
    inter = _int(cfg, "intermediate_size")
    if experts:
        moe_inter = _int(cfg, "moe_intermediate_size") or inter
        shared = _int(cfg, "n_shared_experts") * moe_inter + _int(cfg, "shared_expert_intermediate_size")
        mlp = 3 * hidden * (experts * moe_inter + shared) // tp
        router = hidden * experts
    else:
        mlp = 3 * hidden * inter // tp
        router = 0
    return attn + mlp, router + 2 * hidden


def stage_weight_bytes(
    model: ModelDescription, serving: Serving, rank: int, start: int, end: int
) -> Estimate:
    """Weight bytes on one rank of PP stage ``rank`` (decoder layers ``start..end``)."""
    cfg = model.config
    tp, pp = serving.tp, serving.pp
    dtype_bytes = 4 if model.dtype == "float32" else 2
    per_param, how = _weight_bytes_per_param(cfg, dtype_bytes)
    quantizable, plain = layer_params(cfg, tp)
    layers = end - start
    vocab = _int(cfg, "vocab_size")
    hidden = _int(cfg, "hidden_size")
    padded_vocab = -(-vocab // 64) * 64
    embed = padded_vocab * hidden // tp
    total = layers * (quantizable * per_param + plain * dtype_bytes)
    if rank == 0:
        total += embed * dtype_bytes
    tied = bool(cfg.get("tie_word_embeddings", False))
    if rank == pp - 1 and not (tied and pp == 1):
        total += embed * dtype_bytes
    return Estimate(
        int(total),
        True,
        f"{layers} layers counted from the config at TP={tp} ({how}), "
        f"{'embeddings ' if rank == 0 else ''}{'LM head' if rank == pp - 1 else ''}".strip(),
    )


def activation_bytes(
    model: ModelDescription, serving: Serving, max_num_batched_tokens: int, max_num_seqs: int
) -> Estimate:
    """vLLM's profiled activation peak: about 4.83 B x max_num_batched_tokens x vocab."""
    vocab = _int(model.config, "vocab_size")
    value = int(ACTIVATION_BYTES_PER_TOKEN_VOCAB * max_num_batched_tokens * vocab)
    return Estimate(
        value, True, f"{ACTIVATION_BYTES_PER_TOKEN_VOCAB} B x {max_num_batched_tokens} tokens x vocab {vocab}"
    )


def non_torch_bytes(serving: Serving) -> Estimate:
    """CUDA context and, with TP > 1, NCCL buffers."""
    if serving.tp > 1:
        return Estimate(NON_TORCH_TP_N, True, "0.55 GiB measured at TP>1 (CUDA context + NCCL)")
    return Estimate(NON_TORCH_TP1, True, "0.13 GiB measured at TP=1 (CUDA context)")


def cuda_graph_bytes(model: ModelDescription, serving: Serving) -> Estimate:
    """CUDA graph pool; zero under --enforce-eager."""
    if serving.enforce_eager:
        return Estimate(0, False, "eager mode: no CUDA graphs")
    return Estimate(CUDA_GRAPHS, True, "net 0: measured -0.88 to +1.03 GiB on H100")
