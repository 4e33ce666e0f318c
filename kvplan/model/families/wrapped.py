"""Text models vLLM builds only inside a multimodal wrapper.

``pattern_attention``: Cosmos3 Edge's dense model expressed as Nemotron-H
layers (``hybrid_override_pattern``: ``*`` an attention layer, ``-`` an MLP
layer without a cache), each attention under ``{prefix}.{i}.mixer.attn`` with
``head_dim`` (else hidden / heads) and ``num_key_value_heads``.
"""

from __future__ import annotations

from kvplan.errors import InputError
from kvplan.model.config import Config, head_size, value
from kvplan.model.families.dense import attention
from kvplan.model.layers import Layer
from kvplan.releases import Release


def pattern_attention(
    cfg: Config, source: str, release: Release, *, prefix: str = "model.layers"
) -> list[Layer]:
    """Attention where ``hybrid_override_pattern`` has ``*``; ``-`` layers keep no cache."""
    pattern = cfg.get("hybrid_override_pattern")
    if not isinstance(pattern, str) or set(pattern) - {"*", "-"}:
        raise InputError(
            "must be a pattern of attention ('*') and MLP ('-') layers",
            source=source,
            field="hybrid_override_pattern",
            value=pattern,
        )
    heads = value(cfg, "num_attention_heads", source)
    kv = value(cfg, "num_key_value_heads", source, default=heads)
    size = head_size(cfg, source, heads, value(cfg, "hidden_size", source))
    return [
        attention(f"{prefix}.{i}.mixer.attn", i, heads, kv, size)
        for i, kind in enumerate(pattern)
        if kind == "*"
    ]
