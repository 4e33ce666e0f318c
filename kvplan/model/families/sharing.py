"""Cross-layer KV sharing: Gemma 3n and Gemma 4.

The last ``num_kv_shared_layers`` decoder layers compute no K and V of their
own: each reads the cache of an earlier layer (vLLM's
``kv_sharing_target_layer_name``), so it holds no spec and no pages; the
workers put it in its target's KV cache group and alias the target's tensor.
The other layers slide (``sliding_attention``, window ``sliding_window``) or
attend to every token (``full_attention``).
"""

from __future__ import annotations

from kvplan.errors import InputError, PlannerRefusal
from kvplan.model.config import Config, tokens, value
from kvplan.model.families.dense import attention
from kvplan.model.layers import Layer, SharedKVLayer
from kvplan.releases import Release

SLIDING, FULL = "sliding_attention", "full_attention"


def _types(cfg: Config, source: str, n: int, default: list[str]) -> list[str]:
    types = cfg.get("layer_types")
    if types is None:
        return default
    if not isinstance(types, list) or len(types) != n or not all(t in (SLIDING, FULL) for t in types):
        raise InputError(
            f"must list {n} layer types, each {SLIDING} or {FULL}", source=source, field="layer_types"
        )
    return list(types)


def _shared_count(cfg: Config, source: str, n: int, default: int) -> int:
    count = cfg.get("num_kv_shared_layers", default)
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count < n:
        raise InputError(
            f"must be a whole number of layers below {n}",
            source=source,
            field="num_kv_shared_layers",
            value=count,
        )
    return count


def gemma3n(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """Gemma 3n: 4 sliding layers to one full (``layer_types``, else every 5th full);
    a shared layer reads layer ``first_shared - 2`` when it slides and
    ``first_shared - 1`` when it is full (vLLM's gemma3n.py), where
    ``first_shared = num_hidden_layers - num_kv_shared_layers`` (15 by default).
    Head size ``head_dim`` (256 by default), window ``sliding_window`` (512).
    Where the release keeps the model-wide window (``model_window_unless_pattern``:
    Gemma 3n's config has no ``sliding_window_pattern``) the full layers slide too.
    """
    n = value(cfg, "num_hidden_layers", source)
    heads = value(cfg, "num_attention_heads", source)
    kv = value(cfg, "num_key_value_heads", source, default=heads)
    head = value(cfg, "head_dim", source, default=256)
    window = tokens(cfg, "sliding_window", source) or 512
    types = _types(cfg, source, n, [FULL if (i + 1) % 5 == 0 else SLIDING for i in range(n)])
    first_shared = n - _shared_count(cfg, source, n, 15)
    everywhere = release.behaviour.model_window_unless_pattern and cfg.get("sliding_window_pattern") is None
    out: list[Layer] = []
    for i, kind in enumerate(types):
        name = f"{prefix}.{i}.self_attn.attn"
        target = first_shared - (2 if kind == SLIDING else 1)
        if i >= first_shared and target >= 0:
            root = release.behaviour.gemma3n_target_root
            wrapped = f"{root}.{target}.self_attn.attn"
            if release.behaviour.gemma3n_text_targets_wrapper and prefix != root:
                # vllm/model_executor/models/gemma3n.py names the target under the
                # multimodal wrapper's prefix; the text-only model has no such layer.
                message = (
                    f"Specified KV sharing target layer for {name} is not valid: target layer "
                    f"{wrapped} is not a valid Attention layer in the model."
                )
                raise PlannerRefusal(
                    f"vLLM {release.version} cannot build the text-only Gemma 3n: {message}",
                    "vLLM 0.11.1 and later build it; Gemma3nForConditionalGeneration is served here",
                    vllm_type="ValueError",
                    vllm_message=message,
                )
            out.append(SharedKVLayer(name, i, target=f"{prefix}.{target}.self_attn.attn"))
        else:
            out.append(attention(name, i, heads, kv, head, window if kind == SLIDING or everywhere else None))
    return out


def gemma4(cfg: Config, source: str, release: Release, *, prefix: str = "model.layers") -> list[Layer]:
    """Gemma 4: 5 sliding layers to one full (``layer_types``, else every 6th full; the
    last layer is always full).  Full layers take ``global_head_dim`` (512 by
    default) and, with ``attention_k_eq_v``, ``num_global_key_value_heads`` KV
    heads (transformers' per-layer config; ``per_layer_config`` where a saved config
    spells it out).  A shared layer reads the last earlier
    unshared layer of its own type (vLLM's gemma4.py).  A config with
    ``use_bidirectional_attention: all`` sees ``sliding_window // 2 + 1`` tokens.
    """
    n = value(cfg, "num_hidden_layers", source)
    heads = value(cfg, "num_attention_heads", source)
    kv = value(cfg, "num_key_value_heads", source, default=4)
    head = value(cfg, "head_dim", source, default=256)
    global_head = value(cfg, "global_head_dim", source, default=512)
    global_kv = kv
    if cfg.get("attention_k_eq_v") and cfg.get("num_global_key_value_heads") is not None:
        global_kv = value(cfg, "num_global_key_value_heads", source)
    window = tokens(cfg, "sliding_window", source) or 512
    if cfg.get("use_bidirectional_attention") == "all":
        window = window // 2 + 1
    types = _types(cfg, source, n, [SLIDING if (i + 1) % 6 else FULL for i in range(n)])
    types[-1] = FULL
    overrides = _per_layer(cfg, source, n)
    first_shared = n - _shared_count(cfg, source, n, 0)
    unshared = types[:first_shared]
    out: list[Layer] = []
    for i, kind in enumerate(types):
        name = f"{prefix}.{i}.self_attn.attn"
        if i >= first_shared:
            if kind not in unshared:
                raise InputError(
                    f"layer {i} shares the KV cache of an earlier {kind} layer, and there is none",
                    source=source,
                    field="num_kv_shared_layers",
                )
            target = len(unshared) - 1 - unshared[::-1].index(kind)
            out.append(SharedKVLayer(name, i, target=f"{prefix}.{target}.self_attn.attn"))
        elif i in overrides:
            # A config saved by transformers 5 spells the full layers out in per_layer_config.
            layer = overrides[i]
            layer_kv = value(layer, "num_key_value_heads", source, default=kv)
            layer_head = value(layer, "head_dim", source, default=head)
            out.append(attention(name, i, heads, layer_kv, layer_head, window if kind == SLIDING else None))
        elif kind == SLIDING or overrides:
            out.append(attention(name, i, heads, kv, head, window if kind == SLIDING else None))
        else:
            out.append(attention(name, i, heads, global_kv, global_head))
    return out


def _per_layer(cfg: Config, source: str, n: int) -> dict[int, Config]:
    """``per_layer_config`` (layer index -> head_dim / num_key_value_heads), as transformers
    5 writes Gemma 4's full layers into a saved config; empty when absent."""
    raw = cfg.get("per_layer_config")
    if raw is None:
        return {}
    items = raw.items() if isinstance(raw, dict) else enumerate(raw) if isinstance(raw, list) else None
    out: dict[int, Config] = {}
    for key, layer in items or ():
        index = int(key) if isinstance(key, int | str) and str(key).isdigit() else -1
        if not 0 <= index < n or not isinstance(layer, dict):
            raise InputError(
                "must map layer indices to layer settings", source=source, field="per_layer_config"
            )
        if layer:
            out[index] = layer
    if items is None:
        raise InputError("must map layer indices to layer settings", source=source, field="per_layer_config")
    return out
