"""Reading a Hugging Face config's values: typed, bounded, and named in every error."""

from __future__ import annotations

from typing import Any

from kvplan.errors import InputError

Config = dict[str, Any]


def value(
    cfg: Config, key: str, source: str, *, kind: type | tuple[type, ...] = int, default: Any = ...
) -> Any:
    """A config value of the expected type, or an error naming the key."""
    if key not in cfg or cfg[key] is None:
        if default is ...:
            raise InputError("required key is missing", source=source, field=key)
        return default
    value = cfg[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise InputError("has the wrong type", source=source, field=key, value=value)
    if not isinstance(value, kinds):
        raise InputError(
            f"must be {' or '.join(k.__name__ for k in kinds)}", source=source, field=key, value=value
        )
    if isinstance(value, int) and not isinstance(value, bool) and kinds == (int,):
        if value <= 0:
            raise InputError("must be positive", source=source, field=key, value=value)
        if value > 10_000_000:
            raise InputError("is absurdly large", source=source, field=key, value=value)
    return value


def read_as(cfg: Config, keys: dict[str, str], defaults: dict[str, Any]) -> Config:
    """``cfg`` as a config class reads it: each of ``keys`` (kvplan's name -> the
    config's own, dotted for a nested key) taken from the config's own key when that
    is given, then ``defaults`` for the keys still absent."""
    out = dict(cfg)
    for name, alias in keys.items():
        found: Any = cfg
        for part in alias.split("."):
            found = found.get(part) if isinstance(found, dict) else None
        if found is not None:
            out[name] = found
    for name, default in defaults.items():
        out.setdefault(name, default)
    return out


def tokens(cfg: Config, key: str, source: str) -> int | None:
    """A window or chunk size in tokens; absent, null or 0 mean none."""
    value = cfg.get(key)
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 10_000_000:
        raise InputError("must be a whole number of tokens", source=source, field=key, value=value)
    return value


def layer_types(cfg: Config, source: str, n: int) -> list[str] | None:
    types = cfg.get("layer_types")
    if types is None:
        return None
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise InputError("must be a list of strings", source=source, field="layer_types", value=types)
    if len(types) != n:
        raise InputError(
            f"has {len(types)} entries but num_hidden_layers is {n}",
            source=source,
            field="layer_types",
        )
    return types


def attention_heads(cfg: Config, source: str) -> tuple[int, int, int]:
    """(num_attention_heads, num_kv_heads, hidden_size)."""
    heads = value(cfg, "num_attention_heads", source)
    kv = value(cfg, "num_key_value_heads", source, default=heads)
    hidden = value(cfg, "hidden_size", source)
    if kv > heads or heads % kv:
        raise InputError(
            f"num_key_value_heads ({kv}) must divide num_attention_heads ({heads})",
            source=source,
            field="num_key_value_heads",
            value=kv,
        )
    return heads, kv, hidden


def head_size(cfg: Config, source: str, heads: int, hidden: int, *, use_key: bool = True) -> int:
    if use_key and cfg.get("head_dim"):
        return int(value(cfg, "head_dim", source))
    if hidden % heads:
        raise InputError(
            f"hidden_size ({hidden}) is not divisible by num_attention_heads ({heads})",
            source=source,
            field="hidden_size",
        )
    return hidden // heads


def tied_word_embeddings(cfg: dict[str, Any]) -> bool:
    """Whether the LM head is the embedding; Gemma's config classes default to tied."""
    default = str(cfg.get("model_type", "")).startswith("gemma")
    return bool(cfg.get("tie_word_embeddings", default))
