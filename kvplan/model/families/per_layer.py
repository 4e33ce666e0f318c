"""Decoders whose config gives each layer its own window or head size.

PLaMo 3, Rnj-1, Domyn Edge and Step 3.5 build one attention per decoder layer
and pass it a per-layer window (vLLM's ``per_layer_sliding_window``) read from
a config key of their own; a layer with no window of its own keeps the
serving config's model-wide one, as every vLLM attention does (Step 3.5 clears
that one first).
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


def step3p5(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """Step 3.5 (step3p5.py): layer ``i`` slides over ``sliding_window`` tokens when
    ``layer_types[i]`` is ``sliding_attention`` (full attention otherwise, and with no
    ``sliding_window`` every layer is full); KV heads are ``num_attention_groups``,
    head size ``head_dim``.  The decoder layer clears the serving config's model-wide
    window, so it never applies.  ``layer_types`` may carry trailing entries for the
    MTP layers; only the first ``num_hidden_layers`` describe the decoder.

    ``layer_types``, ``head_dim`` and ``num_attention_groups`` are required: the config
    classes fill them in differently by release (vLLM's own ``Step3p5Config`` up to
    0.32, transformers' ``Step3p7TextConfig`` in 0.33), and kvplan does not guess.
    """
    n = value(cfg, "num_hidden_layers", source)
    types = cfg.get("layer_types")
    if not isinstance(types, list) or len(types) < n or not all(isinstance(t, str) for t in types):
        raise InputError(
            f"must list at least {n} layer types (Step 3.5 reads each layer's type)",
            source=source,
            field="layer_types",
            value=types,
        )
    kv = value(cfg, "num_attention_groups", source)
    head = value(cfg, "head_dim", source)
    if cfg.get("att_impl_type", "GQA") != "GQA":
        raise InputError(
            "only GQA is built (vLLM raises for any other)",
            source=source,
            field="att_impl_type",
            value=cfg.get("att_impl_type"),
        )
    window = tokens(cfg, "sliding_window", source)
    heads = value(cfg, "num_attention_heads", source)
    sliding_heads = _step3p5_sliding_heads(cfg, source, kv, head) or heads
    return [
        attention(
            f"{prefix}.{i}.self_attn.attn",
            i,
            sliding_heads if kind == "sliding_attention" else heads,
            kv,
            head,
            window if kind == "sliding_attention" else None,
        )
        for i, kind in enumerate(types[:n])
    ]


def _step3p5_sliding_heads(cfg: Config, source: str, kv: int, head: int) -> int | None:
    """The query heads of Step 3.5's sliding layers: ``attention_other_setting``'s
    ``num_attention_heads`` (the checkpoint's own key).  Where that setting also gives
    other KV heads or another head size, releases differ (0.15.1 - 0.32 take them for
    the sliding layers, 0.33 ignores them): refused, as are the keys only 0.33 reads
    (``num_sliding_attention_heads``, ``is_heterogeneous``)."""
    for key in ("num_sliding_attention_heads", "is_heterogeneous"):
        if cfg.get(key):
            raise InputError(
                "is read by vLLM 0.33 only; kvplan does not derive Step 3.5 configs that set it",
                source=source,
                field=key,
                value=cfg.get(key),
            )
    other = cfg.get("attention_other_setting")
    if not isinstance(other, dict) or other.get("attention_type") != "sliding_attention":
        return None
    for key, same in (("num_attention_groups", kv), ("head_dim", head)):
        if other.get(key, same) != same:
            raise InputError(
                f"differs from the model-wide value ({same}); vLLM releases disagree on which one "
                "the sliding layers use, so kvplan does not derive it",
                source=source,
                field=f"attention_other_setting.{key}",
                value=other.get(key),
            )
    return value(other, "num_attention_heads", source)
