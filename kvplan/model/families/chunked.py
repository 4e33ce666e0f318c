"""Chunked local attention: Llama 4."""

from __future__ import annotations

from kvplan.errors import InputError
from kvplan.model.config import Config, attention_heads, head_size, tokens, value
from kvplan.model.families.dense import attention
from kvplan.model.layers import Layer
from kvplan.releases import Release


def llama4(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """Llama 4: chunked local attention on RoPE layers; every ``interleave``-th layer
    (``no_rope_layers[i] == 0``) is global full attention."""
    n = value(cfg, "num_hidden_layers", source)
    heads, kv, hidden = attention_heads(cfg, source)
    head = head_size(cfg, source, heads, hidden)
    chunk = tokens(cfg, "attention_chunk_size", source)
    no_rope = cfg.get("no_rope_layers")
    if not no_rope:
        interval = value(cfg, "no_rope_layer_interval", source, default=4)
        no_rope = [int((i + 1) % interval != 0) for i in range(n)]
    if not isinstance(no_rope, list) or len(no_rope) != n:
        raise InputError(f"must list {n} entries", source=source, field="no_rope_layers", value=no_rope)
    return [
        attention(
            f"{prefix}.{i}.self_attn.attn",
            i,
            heads,
            kv,
            head,
            chunk=chunk if no_rope[i] and chunk else None,
        )
        for i in range(n)
    ]
