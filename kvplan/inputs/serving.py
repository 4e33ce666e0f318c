"""Serving options: the ``serving:`` section of a model YAML merged with flags.

A flag beats the YAML; every value is validated here, once, with the field
named in the error.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from kvplan.dtypes import KV_CACHE_DTYPES
from kvplan.errors import InputError
from kvplan.inputs import speculative
from kvplan.sizes import parse_size


@dataclass(frozen=True, eq=False)
class Serving:
    """vLLM engine options that shape the KV cache (None: not given)."""

    tp: int = 1
    pp: int = 1
    dcp: int = 1
    pp_layer_partition: tuple[int, ...] | None = None
    gpu: str | None = None
    gpu_memory: int | None = None
    gpu_memory_utilization: float | None = None
    kv_cache_memory: tuple[int, ...] | None = None
    max_model_len: int | None = None
    block_size: int | None = None
    kv_cache_dtype: str = "auto"
    num_gpu_blocks_override: int | None = None
    disable_hybrid_kv_cache_manager: bool | None = None
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    vllm_version: str | None = None
    enforce_eager: bool = False
    probe: bool = False
    speculative_config: speculative.SpeculativeConfig | None = None


FIELD_NAMES = tuple(f.name for f in fields(Serving))
_YAML_ONLY_EXCLUDED = ("probe",)


def _int(value: Any, name: str, source: str | None, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        else:
            raise InputError("must be a whole number", source=source, field=name, value=value)
    if not low <= value <= high:
        raise InputError(f"must be between {low} and {high}", source=source, field=name, value=value)
    return value


def _max_model_len(value: Any, source: str | None) -> int:
    if isinstance(value, str) and value.strip().lower() in ("auto", "-1"):
        return -1
    if value == -1:
        return -1
    if isinstance(value, str):
        value = value.strip().lower().replace("_", "")
        scale = 1
        if value.endswith("k"):
            value, scale = value[:-1], 1024
        if value.isdigit():
            return _int(int(value) * scale, "max_model_len", source, low=1, high=1 << 30)
    return _int(value, "max_model_len", source, low=1, high=1 << 30)


def _bool(value: Any, name: str, source: str | None) -> bool:
    if isinstance(value, bool):
        return value
    raise InputError("must be true or false", source=source, field=name, value=value)


def _sizes(value: Any, name: str, source: str | None) -> tuple[int, ...]:
    items = (
        value
        if isinstance(value, list | tuple)
        else str(value).split(",")
        if isinstance(value, str)
        else [value]
    )
    if not items:
        raise InputError("needs at least one size", source=source, field=name, value=value)
    return tuple(parse_size(v.strip() if isinstance(v, str) else v, field=name, source=source) for v in items)


def _partition(value: Any, source: str | None) -> tuple[int, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise InputError(
            "must be a list of layer counts per stage, e.g. 7,8,8,7",
            source=source,
            field="pp_layer_partition",
            value=value,
        )
    return tuple(
        _int(v.strip() if isinstance(v, str) else v, "pp_layer_partition", source, low=1, high=100_000)
        for v in items
    )


def validate(raw: dict[str, Any], source: str | None) -> dict[str, Any]:
    """Check and normalise serving values; unknown keys are errors."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in FIELD_NAMES or (key in _YAML_ONLY_EXCLUDED and source):  # probe is a flag only
            raise InputError(
                "unknown serving option",
                source=source,
                field=f"serving.{key}" if source else key,
                value=None,
                hint="known: " + ", ".join(n for n in FIELD_NAMES if n not in _YAML_ONLY_EXCLUDED),
            )
        if value is None:
            continue
        if key in ("tp", "pp", "dcp"):
            out[key] = _int(value, key, source, low=1, high=4096)
        elif key == "pp_layer_partition":
            out[key] = _partition(value, source)
        elif key in ("gpu", "vllm_version"):
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise InputError("must be a string", source=source, field=key, value=value)
            out[key] = str(value)
        elif key == "gpu_memory":
            out[key] = parse_size(value, field=key, source=source)
        elif key == "kv_cache_memory":
            out[key] = _sizes(value, key, source)
        elif key == "gpu_memory_utilization":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError("must be a number in (0, 1]", source=source, field=key, value=value)
            if not 0 < float(value) <= 1:
                raise InputError("must be in (0, 1]", source=source, field=key, value=value)
            out[key] = float(value)
        elif key == "max_model_len":
            out[key] = _max_model_len(value, source)
        elif key == "block_size":
            block = _int(value, key, source, low=1, high=1 << 20)
            out[key] = block
        elif key == "kv_cache_dtype":
            if value not in KV_CACHE_DTYPES:
                raise InputError(
                    "unknown KV cache dtype",
                    source=source,
                    field=key,
                    value=value,
                    hint="one of " + ", ".join(KV_CACHE_DTYPES),
                )
            out[key] = value
        elif key == "num_gpu_blocks_override":
            out[key] = _int(value, key, source, low=1, high=1 << 40)
        elif key in ("max_num_batched_tokens", "max_num_seqs"):
            out[key] = _int(value, key, source, low=1, high=1 << 30)
        elif key in ("disable_hybrid_kv_cache_manager", "enforce_eager", "probe"):
            out[key] = _bool(value, key, source)
        elif key == "speculative_config":
            out[key] = (
                value
                if isinstance(value, speculative.SpeculativeConfig)
                else speculative.parse(value, source)
            )
    return out


def merge(yaml_serving: dict[str, Any], yaml_source: str | None, flags: dict[str, Any]) -> Serving:
    """The options in force: YAML values, each replaced by a flag when given."""
    values = validate(yaml_serving, yaml_source or "serving")
    values.update(validate({k: v for k, v in flags.items() if v is not None}, None))
    return replace(Serving(), **values)
