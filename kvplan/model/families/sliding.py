"""Sliding-window hybrids: Gemma 2/3, Cohere2, gpt-oss."""

from __future__ import annotations

from kvplan.errors import InputError
from kvplan.model.config import Config, attention_heads, head_size, layer_types, value
from kvplan.model.families.dense import attention, dense
from kvplan.model.layers import Layer
from kvplan.releases import Release


def alternating(
    cfg: Config,
    source: str,
    release: Release,
    *,
    period: int,
    head_key: bool = True,
    prefix: str = "model.layers",
) -> list[Layer]:
    """Models whose HF config marks layer i full when ``(i + 1) % period == 0``
    unless ``layer_types`` is given (Gemma 2: 2, Gemma 3: 6, Cohere2: 4)."""
    n = value(cfg, "num_hidden_layers", source)
    p = cfg.get("sliding_window_pattern") or period
    if not isinstance(p, int) or p <= 0:
        raise InputError("must be a positive integer", source=source, field="sliding_window_pattern", value=p)
    types = layer_types(cfg, source, n) or [
        "sliding_attention" if (i + 1) % p else "full_attention" for i in range(n)
    ]
    return dense({**cfg, "layer_types": types}, source, release, head_key=head_key, prefix=prefix)


def cohere2(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """Cohere2: sliding every layer but each 4th; from 0.29 vLLM widens the window by one
    and reads ``head_dim``."""
    window = value(cfg, "sliding_window", source)
    newer = release.behaviour.cohere2_window_plus_one
    return alternating(
        {**cfg, "sliding_window": window + newer}, source, release, period=4, head_key=newer, prefix=prefix
    )


def gpt_oss(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """gpt-oss: even layers slide (window 128), odd layers are full; path ``.attn.attn``."""
    n = value(cfg, "num_hidden_layers", source)
    heads, kv, hidden = attention_heads(cfg, source)
    head = head_size(cfg, source, heads, hidden)
    window = value(cfg, "sliding_window", source)
    return [
        attention(f"{prefix}.{i}.attn.attn", i, heads, kv, head, window if i % 2 == 0 else None)
        for i in range(n)
    ]
