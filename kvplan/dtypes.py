"""Data types: element sizes and how vLLM resolves ``--kv-cache-dtype``."""

from __future__ import annotations

from kvplan.errors import InputError

# Bytes per element of every dtype name kvplan accepts, in vLLM's spelling.
DTYPE_BYTES: dict[str, int] = {
    "float32": 4,
    "bfloat16": 2,
    "float16": 2,
    "fp8": 1,
    "fp8_e4m3": 1,
    "fp8_e5m2": 1,
    "fp8_inc": 1,
    "fp8_ds_mla": 1,
    "int8": 1,
    "uint8": 1,
}

# Aliases found in HF configs and torch names, mapped to the names above.
_ALIASES = {
    "float": "float32",
    "fp32": "float32",
    "torch.float32": "float32",
    "bf16": "bfloat16",
    "torch.bfloat16": "bfloat16",
    "half": "float16",
    "fp16": "float16",
    "torch.float16": "float16",
    "float8_e4m3fn": "fp8",
    "torch.float8_e4m3fn": "fp8",
    "float8_e5m2": "fp8_e5m2",
}

KV_CACHE_DTYPES = (
    "auto",
    "bfloat16",
    "float16",
    "float32",
    "fp8",
    "fp8_e4m3",
    "fp8_e5m2",
    "fp8_inc",
    "fp8_ds_mla",
)


def canonical_dtype(name: object, *, field: str = "dtype", source: str | None = None) -> str:
    """Return the canonical dtype name, or raise ``InputError`` naming the field."""
    if not isinstance(name, str):
        raise InputError("expected a dtype name", source=source, field=field, value=name)
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DTYPE_BYTES:
        raise InputError(
            "unknown dtype",
            source=source,
            field=field,
            value=name,
            hint="one of " + ", ".join(sorted(DTYPE_BYTES)),
        )
    return key


def dtype_size(name: str) -> int:
    """Bytes per element of a canonical dtype name."""
    return DTYPE_BYTES[name]


def model_dtype(config_dtype: object) -> str:
    """The dtype vLLM's ``--dtype auto`` picks for a config's ``torch_dtype``.

    float16 and bfloat16 are kept; float32 (and a missing value) becomes
    bfloat16, as vLLM serves float32 checkpoints in half precision.
    """
    if config_dtype is None:
        return "bfloat16"
    name = canonical_dtype(config_dtype, field="torch_dtype")
    if name in ("bfloat16", "float16"):
        return name
    return "bfloat16"


def resolve_kv_cache_dtype(kv_cache_dtype: str, model_dtype_name: str) -> str:
    """The dtype KV cache pages are stored in: ``auto`` follows the model dtype."""
    if kv_cache_dtype not in KV_CACHE_DTYPES:
        raise InputError(
            "unknown KV cache dtype",
            field="kv_cache_dtype",
            value=kv_cache_dtype,
            hint="one of " + ", ".join(KV_CACHE_DTYPES),
        )
    if kv_cache_dtype == "auto":
        return model_dtype_name
    return kv_cache_dtype
