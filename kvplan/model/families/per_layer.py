"""Decoders whose config gives each layer its own window or head size.

PLaMo 3, Rnj-1 and Domyn Edge build one attention per decoder layer and pass
it a per-layer window (vLLM's ``per_layer_sliding_window``) read from a
config key of their own; a layer with no window of its own keeps the
serving config's model-wide one, as every vLLM attention does.
"""

from __future__ import annotations

from typing import Any

from kvplan.errors import InputError
from kvplan.model.config import Config, attention_heads, layer_types, tokens, value
from kvplan.model.families.dense import attention, global_window
from kvplan.model.layers import Layer
from kvplan.releases import Release


def _windows(cfg: Config, source: str, n: int) -> list[int | None]:
    """PLaMo 3's per-layer windows: ``interleaved_sliding_window`` as its configuration
    code stores it, else derived as that code does (every ``sliding_window_pattern``-th
    layer full, the others ``window_size``)."""
    listed = cfg.get("interleaved_sliding_window")
    if listed is not None:
        if not isinstance(listed, list) or len(listed) != n:
            raise InputError(
                f"must list {n} windows (null: full attention)",
                source=source,
                field="interleaved_sliding_window",
                value=listed,
            )
        return [tokens({"w": w}, "w", source) for w in listed]
    window = value(cfg, "window_size", source)
    pattern = value(cfg, "sliding_window_pattern", source)
    return [None if (i + 1) % pattern == 0 else window for i in range(n)]


def plamo3(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers.layers") -> list[Layer]:
    """PLaMo 3 (plamo3.py): ``head_dim`` heads; layer ``i`` slides over
    ``interleaved_sliding_window[i]`` tokens (null: full attention).  Its layers sit
    under ``model.layers.layers.{i}.mixer``."""
    n = value(cfg, "num_hidden_layers", source)
    heads, kv, _ = attention_heads(cfg, source)
    head = value(cfg, "head_dim", source)
    everywhere = global_window(cfg, layer_types(cfg, source, n), release)
    return [
        attention(f"{prefix}.{i}.mixer.attn", i, heads, kv, head, window or everywhere)
        for i, window in enumerate(_windows(cfg, source, n))
    ]


def rnj1(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """Rnj-1 (rnj1.py): ``chunked_attention`` layers slide over ``sliding_window``
    tokens (one chunk of look-back, a kernel detail that keeps an ordinary
    sliding-window cache); the others are full attention.  ``head_dim`` heads.

    vLLM runs the chunked layers only on its Triton attention backend and refuses
    to build them on another (``--attention-backend TRITON_ATTN``); kvplan does
    not model the backend choice.
    """
    n = value(cfg, "num_hidden_layers", source)
    heads, kv, _ = attention_heads(cfg, source)
    head = value(cfg, "head_dim", source)
    types = layer_types(cfg, source, n)
    if types is None:
        raise InputError("is required (Rnj-1 reads each layer's type)", source=source, field="layer_types")
    window = tokens(cfg, "sliding_window", source)
    if "chunked_attention" in types and window is None:
        raise InputError("must be a positive number of tokens", source=source, field="sliding_window")
    everywhere = global_window(cfg, types, release)
    return [
        attention(
            f"{prefix}.{i}.self_attn.attn",
            i,
            heads,
            kv,
            head,
            window if kind == "chunked_attention" else everywhere,
        )
        for i, kind in enumerate(types)
    ]


def _per_layer(cfg: Config, source: str, n: int) -> dict[int, dict[str, Any]]:
    """transformers' heterogeneous ``per_layer_config``: layer index -> overrides."""
    raw = cfg.get("per_layer_config")
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise InputError(
            "must map layer indices to per-layer settings", source=source, field="per_layer_config"
        )
    out: dict[int, dict[str, Any]] = {}
    for key, overrides in raw.items():
        index = int(key) if isinstance(key, int | str) and str(key).isdigit() else -1
        if not 0 <= index < n:
            raise InputError(
                f"keys must be layer indices below {n}", source=source, field="per_layer_config", value=key
            )
        out[index] = overrides
    return out


def domyn_edge(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """Domyn Edge (domyn_edge.py): layer ``i`` has the head size
    ``per_layer_config[i].head_dim`` (transformers' heterogeneous config: the layer's
    override, else the model's ``head_dim``) and slides over ``w + 1`` tokens when its
    ``window_sizes[i]`` is ``(w, 0)`` with ``w > 0`` (full attention otherwise)."""
    n = value(cfg, "num_hidden_layers", source)
    heads, kv, _ = attention_heads(cfg, source)
    overrides = _per_layer(cfg, source, n)
    sizes = cfg.get("window_sizes")
    if not isinstance(sizes, list) or len(sizes) != n or not all(isinstance(w, list) and w for w in sizes):
        raise InputError(f"must list {n} (left, right) windows", source=source, field="window_sizes")
    everywhere = global_window(cfg, None, release)
    out: list[Layer] = []
    for i in range(n):
        head = value({**cfg, **overrides.get(i, {})}, "head_dim", source)
        left = sizes[i][0]
        if isinstance(left, bool) or not isinstance(left, int):
            raise InputError("must be a whole number", source=source, field=f"window_sizes[{i}]", value=left)
        out.append(
            attention(
                f"{prefix}.{i}.attention.attn", i, heads, kv, head, left + 1 if left > 0 else everywhere
            )
        )
    return out
