"""Reading a Hugging Face config's values: typed, bounded, and named in every error."""

from __future__ import annotations

import math
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


# Keys vLLM reads the model's maximum length from, the smallest winning
# (derive_max_model_len_and_key in vllm/transformers_utils/model_arch_config_convertor.py;
# _get_and_verify_max_len in vllm/config/model.py before 0.14).
LENGTH_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "model_max_length",
    "max_target_positions",
    "max_sequence_length",
    "max_seq_length",
    "seq_len",
)
# RoPE types whose max_position_embeddings already covers the scaled context.
_UNSCALED_ROPE = ("su", "longrope", "llama3")
_UNSCALED_ROPE_0_30 = (*_UNSCALED_ROPE, "yarn", "deepseek_yarn", "deepseek_llama_scaling")


def _rope_entries(cfg: Config) -> list[dict[str, Any]]:
    rope = cfg.get("rope_parameters", cfg.get("rope_scaling"))
    if not isinstance(rope, dict) or not rope:
        return []
    entries = rope.values() if all(isinstance(v, dict) for v in rope.values()) else [rope]
    return [e for e in entries if isinstance(e, dict)]


def _finite(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def derived_max_model_len(
    cfg: Config, *, yarn_scaled: bool, rope_loop: bool = True, source: str = "config"
) -> tuple[float | None, str | None]:
    """vLLM's derived maximum model length (tokens) and the config key it came from.

    The smallest of the length keys (``model_max_length`` wins when set), times
    the RoPE scaling factor unless the RoPE type already covers it (Gemma 3's
    configs are never scaled).  ``yarn_scaled``: YaRN scales
    ``original_max_position_embeddings`` by its factor (releases before 0.30);
    from 0.30 YaRN leaves the length as it is.  A float when scaled, as vLLM
    keeps it.  (None, None) when the config names no length.  ``rope_loop``:
    the release multiplies by the factor (1.0 when none applies) whenever the
    config has RoPE parameters, which transformers 5 always sets, so the
    length prints as a float (0.12+); before 0.12 only a scaling type does.
    """
    derived: float | None = None
    key: str | None = None
    for name in LENGTH_KEYS:
        length: Any = cfg.get(name)
        if _finite(length) and (derived is None or length < derived):
            derived, key = length, name
    explicit = cfg.get("model_max_length")
    if _finite(explicit):
        derived, key = explicit, "model_max_length"
    if derived is None:
        return None, None
    entries = _rope_entries(cfg)
    if rope_loop and not entries and cfg.get("rope_theta") is not None:
        entries = [{"rope_type": "default"}]  # transformers 5 fills rope_parameters in
    if entries and "gemma3" not in str(cfg.get("model_type", "")):
        unscaled = _UNSCALED_ROPE if yarn_scaled else _UNSCALED_ROPE_0_30
        factor: float | None = None
        for entry in entries:
            rope_type = entry.get("rope_type", entry.get("type"))
            if rope_type in unscaled:
                continue
            value = entry.get("factor", 1.0)
            if value is not None and not _finite(value):
                raise InputError(
                    "must be a positive number", source=source, field="rope_scaling.factor", value=value
                )
            factor = value if value is not None else 1.0
            original = entry.get("original_max_position_embeddings")
            if rope_type == "yarn" and isinstance(original, int):
                derived = original
        if rope_loop:
            derived = derived * (factor if factor is not None else 1.0)
        elif factor is not None:
            derived = derived * factor
    if derived > 1 << 40:
        raise InputError(
            "scales the model's length beyond any sane size",
            source=source,
            field="rope_scaling",
            value=derived,
        )
    return derived, key


def max_model_len_refusal(cfg: Config, requested: int, derived: float, key: str | None) -> str | None:
    """vLLM's error text when ``requested`` exceeds the derived length, else None.

    The text of ``_get_and_verify_max_len`` (vllm/config/model.py; the same
    words in every release 0.10.0 - 0.33.0); vLLM accepts the longer length
    only under ``VLLM_ALLOW_LONG_MAX_MODEL_LEN=1``.
    """
    if requested <= derived:
        return None
    model_max_length = cfg.get("model_max_length")
    if isinstance(model_max_length, int) and requested <= model_max_length:
        return None
    return (
        f"User-specified max_model_len ({requested}) is greater than the derived max_model_len "
        f"({key}={derived} or model_max_length={model_max_length} in model's config.json). "
        "To allow overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. "
        "VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used with extreme caution. If the model uses "
        "relative position encoding (RoPE), positions exceeding derived_max_model_len lead to nan. "
        "If the model uses absolute position encoding, positions exceeding derived_max_model_len "
        "will cause a CUDA array out-of-bounds error."
    )
