"""Hybrids of lightning (linear) attention and MLA.

Bailing MoE V2.5 (bailing_moe_linear.py) runs vLLM's linear attention layer
on every layer but the last of each ``layer_group_size`` group and MLA on
those.  A linear attention layer keeps one state per request: a
``head_dim x head_dim`` matrix per head, in the KV cache's dtype (the model's
unless ``--mamba-cache-dtype`` says otherwise), with Mamba type
``linear_attention``.
"""

from __future__ import annotations

from typing import Any

from kvplan.errors import InputError, PlannerRefusal
from kvplan.model.families.mamba import Shapes, _div, _dtype, _int
from kvplan.model.layers import Layer, MambaLayer, MLALayer
from kvplan.records import record
from kvplan.releases import Release


@record(frozen=True)
class LinearAttentionLayer(MambaLayer):
    """Lightning attention's state: ``num_heads / tp`` matrices of ``head_dim x head_dim``."""

    mamba_type: str = "linear_attention"
    num_heads: int = 0
    head_dim: int = 0
    state_dtype: str = "bfloat16"
    group_norm_size: int = 1

    def check_tp(self, tp: int) -> None:
        # the layer's output norm runs over groups local to a rank (bailing_linear_attn.py)
        if tp > self.group_norm_size:
            message = "tp_size must be <= group_norm_size for local rms norm"
        elif self.group_norm_size % tp:
            message = "group_norm_size must be divisible by tp_size"
        else:
            return
        raise PlannerRefusal(
            message,
            f"group_norm_size is {self.group_norm_size}",
            vllm_type="AssertionError",
            vllm_message=message,
        )

    def state(self, tp: int, num_spec: int = 0) -> tuple[Shapes, tuple[str, ...]]:
        heads = _div(self.num_heads, tp, "linear attention heads")
        return ((heads, self.head_dim, self.head_dim),), (self.state_dtype,)


def bailing_moe_v2_5(
    cfg: dict[str, Any], source: str, release: Release, *, prefix: str = "model.layers"
) -> list[Layer]:
    """Bailing MoE V2.5: layer ``i`` is linear attention when ``layer_group_size`` > 0
    and ``(i + 1) % layer_group_size`` != 0 (``layer_group_size`` 1 when the config
    names none: every layer MLA), registered as ``{i}.self_attn`` with
    ``num_attention_heads`` heads of ``head_dim`` (else hidden / heads); the other
    layers keep MLA (``kv_lora_rank + qk_rope_head_dim``, vLLM's fallbacks 512 and
    64) as ``{i}.self_attn.attn``.  TP may not exceed ``group_norm_size`` (1 when the
    config names none) and must divide it.

    vLLM sizes the blocks of a hybrid with MLA only when it sees an MLA model, which
    it decides by ``model_type`` (``bailing_hybrid``, the checkpoints' own); with
    another model type its planner fails on the MLA pages, so kvplan refuses it.
    """
    if cfg.get("model_type") != "bailing_hybrid":
        raise InputError(
            "must be bailing_hybrid: vLLM treats the model as MLA by its model_type, and "
            "with another one its planner cannot unify the MLA and linear-attention pages",
            source=source,
            field="model_type",
            value=cfg.get("model_type"),
        )
    n = _int(cfg, "num_hidden_layers", source)
    group = cfg.get("layer_group_size", 1)
    if isinstance(group, bool) or not isinstance(group, int):
        raise InputError("must be a whole number", source=source, field="layer_group_size", value=group)
    heads = _int(cfg, "num_attention_heads", source)
    hidden = _int(cfg, "hidden_size", source)
    head = _int(cfg, "head_dim", source) if "head_dim" in cfg else hidden // heads
    rank = _int(cfg, "kv_lora_rank", source, 512)
    rope = _int(cfg, "qk_rope_head_dim", source, 64)
    norm_groups = _int(cfg, "group_norm_size", source, 1)
    dtype = _dtype(cfg)
    out: list[Layer] = []
    for i in range(n):
        if group > 0 and (i + 1) % group:
            out.append(
                LinearAttentionLayer(
                    f"{prefix}.{i}.self_attn",
                    i,
                    num_heads=heads,
                    head_dim=head,
                    state_dtype=dtype,
                    group_norm_size=norm_groups,
                )
            )
        else:
            out.append(MLALayer(f"{prefix}.{i}.self_attn.attn", i, kv_lora_rank=rank, qk_rope_head_dim=rope))
    return out
