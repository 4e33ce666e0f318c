"""Dense decoders (Llama, Mistral, Phi-3/4, Qwen, Granite, ...): one attention layer
per decoder layer, full or, where the config says so, sliding."""

from __future__ import annotations

from kvplan.errors import InputError
from kvplan.model.config import Config, attention_heads, head_size, layer_types, tokens, value
from kvplan.model.layers import (
    AttentionLayer,
    ChunkedLocalLayer,
    Layer,
    SlidingWindowLayer,
)
from kvplan.releases import Release


def attention(
    name: str, i: int, heads: int, kv: int, head: int, window: int | None = None, chunk: int | None = None
) -> Layer:
    """One attention layer: sliding with a ``window``, chunked with a ``chunk``, else full."""
    if window:
        return SlidingWindowLayer(
            name, i, num_kv_heads=kv, head_size=head, num_attention_heads=heads, sliding_window=window
        )
    if chunk:
        return ChunkedLocalLayer(
            name, i, num_kv_heads=kv, head_size=head, num_attention_heads=heads, attention_chunk_size=chunk
        )
    return AttentionLayer(name, i, num_kv_heads=kv, head_size=head, num_attention_heads=heads)


def global_window(cfg: Config, types: list[str] | None, release: Release) -> int | None:
    """vLLM's model-wide ``cache_config.sliding_window``: set unless layer types mix.

    From 0.33 it is kept only when every layer type is sliding (or none are given).
    """
    window = cfg.get("sliding_window")
    if not window or (cfg.get("use_sliding_window") is False):
        return None
    if types is not None:
        kinds = set(types)
        if release.behaviour.global_window_all_sliding:
            if kinds != {"sliding_attention"}:
                return None
        elif len(kinds) > 1:
            return None
    return int(window)


def dense(
    cfg: Config, source: str, release: Release, *, head_key: bool = True, prefix: str = "model.layers"
) -> list[Layer]:
    """Llama-style decoders (Llama, Mistral, Phi-3/4, Qwen3, Granite, ...).

    A layer slides when ``layer_types[i]`` says so; without ``layer_types`` the
    config's ``sliding_window`` applies to every layer (Mistral v0.1, Phi-3).
    """
    n = value(cfg, "num_hidden_layers", source)
    heads, kv, hidden = attention_heads(cfg, source)
    head = head_size(cfg, source, heads, hidden, use_key=head_key)
    types = layer_types(cfg, source, n)
    window = tokens(cfg, "sliding_window", source)
    everywhere = global_window(cfg, types, release)
    layers = []
    for i in range(n):
        w = everywhere
        if types is not None and types[i] == "sliding_attention" and window:
            w = int(window)
        layers.append(attention(f"{prefix}.{i}.self_attn.attn", i, heads, kv, head, w))
    return layers


def qwen2(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """Qwen2/2.5: head size is always hidden/heads; ``use_sliding_window`` with
    ``max_window_layers`` below the layer count is refused, as vLLM refuses it."""
    n = value(cfg, "num_hidden_layers", source)
    if cfg.get("use_sliding_window") and cfg.get("sliding_window"):
        mwl = cfg.get("max_window_layers", n)
        if isinstance(mwl, int) and mwl < n:
            raise InputError(
                "sliding window on only some layers (max_window_layers < num_hidden_layers) "
                "is not supported by vLLM",
                source=source,
                field="max_window_layers",
                value=mwl,
            )
    return dense({**cfg, "layer_types": None}, source, release, head_key=False, prefix=prefix)
