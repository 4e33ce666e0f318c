"""Sliding-window hybrids: Gemma 2/3, Cohere2, gpt-oss, and the text models that mark
their sliding layers with ``layer_types`` (Exaone 4, Afmoe, Laguna, ...) or a pattern
of their own (MiMo-V2)."""

from __future__ import annotations

from kvplan.errors import InputError
from kvplan.model.config import Config, attention_heads, head_size, layer_types, value
from kvplan.model.families.dense import attention, dense, global_window
from kvplan.model.layers import AttentionLayer, Layer, SlidingWindowLayer
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


def gpt_oss(
    cfg: Config,
    source: str,
    release: Release,
    *,
    prefix: str = "model.layers",
    before: dict[str, str] | None = None,
) -> list[Layer]:
    """gpt-oss: even layers slide (window 128), odd layers are full; path ``.attn.attn``.
    ``before[r]``: the layers' path on releases before ``r``."""
    for until, older in (before or {}).items():
        if release.serves(None, until):
            prefix = older
    n = value(cfg, "num_hidden_layers", source)
    heads, kv, hidden = attention_heads(cfg, source)
    head = head_size(cfg, source, heads, hidden)
    window = value(cfg, "sliding_window", source)
    return [
        attention(f"{prefix}.{i}.attn.attn", i, heads, kv, head, window if i % 2 == 0 else None)
        for i in range(n)
    ]


# ---------------------------------------------------------------------------
# Text models that mark their sliding layers with ``layer_types`` (which the
# transformers config class fills in when the file has none, each class with
# its own pattern) and pass the window per layer.


def _pattern(cfg: Config, source: str, key: str, default: int) -> int:
    p = cfg.get(key, default)
    if isinstance(p, bool) or not isinstance(p, int) or p <= 0:
        raise InputError(
            "must be a positive whole number when layer_types is not given",
            source=source,
            field=key,
            value=p,
            hint="give the config's layer_types",
        )
    return p


def _layer_types_for(cfg: Config, source: str, n: int, rule: str | None) -> list[str] | None:
    """``layer_types`` as the config class leaves it: the file's, else the class's pattern."""
    given = layer_types(cfg, source, n)
    if given is not None or rule is None:
        return given
    sliding, full = "sliding_attention", "full_attention"
    if rule == "afmoe":
        # AfmoeConfig: global every global_attn_every_n_layers (4).
        p = _pattern(cfg, source, "global_attn_every_n_layers", 4)
        return [sliding if (i + 1) % p else full for i in range(n)]
    if rule == "exaone4":
        # Exaone4Config / ExaoneMoeConfig: 3 local : 1 global by sliding_window_pattern (4);
        # no window at all makes every layer global.
        if not cfg.get("sliding_window"):
            return [full] * n
        p = _pattern(cfg, source, "sliding_window_pattern", 4)
        return [sliding if (i + 1) % p else full for i in range(n)]
    if rule == "cohere2_moe":
        # Cohere2MoeConfig: the first first_k_dense_replace layers by
        # prefix_dense_sliding_window_pattern (1: all global), the rest by sliding_window_pattern (4).
        k = cfg.get("first_k_dense_replace") or 0
        p0 = _pattern(cfg, source, "prefix_dense_sliding_window_pattern", 1)
        p = _pattern(cfg, source, "sliding_window_pattern", 4)
        head = [sliding if (i + 1) % p0 else full for i in range(min(k, n))]
        return head + [sliding if (i + 1) % p else full for i in range(n - len(head))]
    if rule == "granite_swa":
        # GraniteSwaConfig / GraniteMoeSwaConfig: layer 0 and every 4th after it global.
        return [full if i % 4 == 0 else sliding for i in range(n)]
    if rule == "muse_glimmer":
        # MuseGlimmerTextConfig: every 4th layer counted back from the last is global.
        return [full if (n - 1 - i) % 4 == 0 else sliding for i in range(n)]
    if rule == "all_full":
        # LagunaConfig, vLLM's FlintConfig: every layer global unless layer_types says otherwise.
        return [full] * n
    if rule == "all_sliding":
        # vLLM's BeamConfig: every layer sliding unless layer_types says otherwise.
        return [sliding] * n
    raise ValueError(f"unknown layer_types rule {rule}")


def typed(
    cfg: Config,
    source: str,
    release: Release,
    *,
    rule: str | None = None,
    head_key: bool = True,
    plus_one: str | None = None,
    own_window: bool = False,
    per_layer_heads: str | None = None,
    windows_key: str | None = None,
    prefix: str = "model.layers",
) -> list[Layer]:
    """Decoders whose layer i slides over ``sliding_window`` when ``layer_types[i]``
    is ``sliding_attention`` (Afmoe, Exaone 4, ExaoneMoe, Cohere2Moe, Laguna,
    Granite SWA, MuseGlimmer, ...).

    Other layers get vLLM's model-wide window (``global_window``) unless the
    model clears it (``own_window``: Laguna).  ``plus_one`` names the release
    behaviour under which sliding layers see ``window + 1`` tokens;
    ``per_layer_heads`` a list key of per-layer query heads (the head size
    falls back to hidden / that layer's heads); ``windows_key`` a list of
    per-layer windows that beats ``sliding_window`` (ExaoneMoe).
    """
    n = value(cfg, "num_hidden_layers", source)
    heads, kv, hidden = attention_heads(cfg, source)
    types = _layer_types_for(cfg, source, n, rule)
    window = None if cfg.get("use_sliding_window") is False else cfg.get("sliding_window")
    windows = cfg.get(windows_key) if windows_key else None
    if windows is not None and (not isinstance(windows, list) or len(windows) != n):
        raise InputError(f"must list one window per layer ({n})", source=source, field=windows_key)
    layer_heads = cfg.get(per_layer_heads) if per_layer_heads else None
    if layer_heads is not None and (not isinstance(layer_heads, list) or len(layer_heads) != n):
        raise InputError(f"must list one head count per layer ({n})", source=source, field=per_layer_heads)
    everywhere = None if own_window else global_window(cfg, types, release)
    extra = 1 if plus_one and getattr(release.behaviour, plus_one) else 0
    layers = []
    for i in range(n):
        h = int(layer_heads[i]) if layer_heads is not None else heads
        head = head_size(cfg, source, h, hidden, use_key=head_key)
        w = everywhere
        if types is not None and types[i] == "sliding_attention":
            own = windows[i] if windows is not None else window
            if own:
                w = int(own) + extra
        layers.append(attention(f"{prefix}.{i}.self_attn.attn", i, h, kv, head, w))
    return layers


def mimo_v2(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """MiMo-V2-Flash: ``hybrid_layer_pattern[i] == 1`` marks a sliding layer with its own
    heads, K and V head sizes (``swa_*``) and ``sliding_window_size``; the others are
    full attention with ``head_dim`` / ``v_head_dim``.  The model clears vLLM's
    model-wide window, and V rows may be narrower than K rows (mimo_v2.py)."""
    n = value(cfg, "num_hidden_layers", source)
    pattern = cfg.get("hybrid_layer_pattern")
    if not isinstance(pattern, list) or len(pattern) != n:
        raise InputError(
            f"must list 0 (full) or 1 (sliding) for each of the {n} layers",
            source=source,
            field="hybrid_layer_pattern",
        )
    layers: list[Layer] = []
    for i in range(n):
        swa = pattern[i] == 1
        pre = "swa_" if swa else ""
        heads = value(cfg, f"{pre}num_attention_heads", source)
        kv = value(cfg, f"{pre}num_key_value_heads", source)
        head = value(cfg, f"{pre}head_dim", source)
        head_v = value(cfg, f"{pre}v_head_dim", source, default=head)
        window = cfg.get("sliding_window_size") if swa else None
        name = f"{prefix}.{i}.self_attn.attn"
        if isinstance(window, int) and not isinstance(window, bool) and window > -1:
            layers.append(
                SlidingWindowLayer(
                    name,
                    i,
                    num_kv_heads=kv,
                    head_size=head,
                    head_size_v=head_v,
                    num_attention_heads=heads,
                    sliding_window=window,
                )
            )
        else:
            layers.append(
                AttentionLayer(
                    name, i, num_kv_heads=kv, head_size=head, head_size_v=head_v, num_attention_heads=heads
                )
            )
    return layers
