"""Multi-head latent attention: DeepSeek V2/V3/R1, Kimi K2."""

from __future__ import annotations

from kvplan.model.config import Config, value
from kvplan.model.layers import Layer, MLALayer
from kvplan.releases import Release


def mla(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """DeepSeek V2/V3/R1, Kimi K2: one latent row per token, every decoder layer."""
    n = value(cfg, "num_hidden_layers", source)
    rank = value(cfg, "kv_lora_rank", source)
    rope = value(cfg, "qk_rope_head_dim", source)
    heads = value(cfg, "num_attention_heads", source)
    return (
        [
            MLALayer(f"{prefix}.{i}.self_attn.attn", i, kv_lora_rank=rank, qk_rope_head_dim=rope)
            for i in range(n)
        ]
        if heads
        else []
    )
