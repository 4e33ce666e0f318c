"""The ``layers:`` section of a model YAML: an explicit, ordered layer list."""

from __future__ import annotations

import re
from typing import Any

from kvplan.dtypes import canonical_dtype
from kvplan.errors import InputError
from kvplan.model.layers import (
    AttentionLayer,
    ChunkedLocalLayer,
    Layer,
    MambaLayer,
    MLALayer,
    SlidingWindowLayer,
)

_KEYS: dict[str, set[str]] = {
    "full": {"num_kv_heads", "head_size", "head_size_v", "dtype", "num_attention_heads"},
    "sliding_window": {"num_kv_heads", "head_size", "dtype", "sliding_window", "num_attention_heads"},
    "chunked_local": {"num_kv_heads", "head_size", "dtype", "attention_chunk_size", "num_attention_heads"},
    # MLA as the model has it (kv_lora_rank + qk_rope_head_dim), or as vLLM's
    # MLAAttentionSpec has it: one KV head of head_size = their sum.
    "mla": {"kv_lora_rank", "qk_rope_head_dim", "dtype", "num_kv_heads", "head_size"},
    "mamba": {"shapes", "dtypes", "mamba_type"},
}
_COMMON = {"name", "type", "block_size", "page_size_padded", "index"}
_INDEX = re.compile(r"\.(\d+)\.")


def _pos_int(entry: dict[str, Any], key: str, where: str, source: str, required: bool = True) -> int | None:
    value = entry.get(key)
    if value is None:
        if required:
            raise InputError("required key is missing", source=source, field=f"{where}.{key}")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value > 1 << 40:
        raise InputError(
            "must be a positive whole number", source=source, field=f"{where}.{key}", value=value
        )
    return value


def _mla(
    entry: dict[str, Any],
    where: str,
    source: str,
    name: str,
    index: int,
    dtype: str | None,
    block: int | None,
    padded: int | None,
) -> MLALayer:
    """An MLA layer from either spelling; when both are given they must agree."""
    heads = _pos_int(entry, "num_kv_heads", where, source, required=False)
    if heads is not None and heads != 1:
        raise InputError(
            "must be 1: an MLA layer caches one latent row per token (vLLM's MLAAttentionSpec)",
            source=source,
            field=f"{where}.num_kv_heads",
            value=heads,
        )
    head = _pos_int(entry, "head_size", where, source, required=False)
    has_parts = "kv_lora_rank" in entry or "qk_rope_head_dim" in entry
    if head is not None and not has_parts:
        # vLLM's spelling: only the row width is known, which is all the cache needs.
        return MLALayer(name, index, kv_lora_rank=head, qk_rope_head_dim=0, dtype=dtype, block_size=block,
                        page_size_padded=padded)  # fmt: skip
    rank = _pos_int(entry, "kv_lora_rank", where, source) or 0
    rope = _pos_int(entry, "qk_rope_head_dim", where, source) or 0
    if head is not None and head != rank + rope:
        raise InputError(
            f"must be kv_lora_rank + qk_rope_head_dim = {rank} + {rope} = {rank + rope}",
            source=source,
            field=f"{where}.head_size",
            value=head,
        )
    return MLALayer(name, index, kv_lora_rank=rank, qk_rope_head_dim=rope, dtype=dtype, block_size=block,
                    page_size_padded=padded)  # fmt: skip


def parse_layers(entries: list[Any], source: str) -> list[Layer]:
    """Validate every entry and build the layers; errors name ``layers[i].key``."""
    if not entries:
        raise InputError("must list at least one layer", source=source, field="layers")
    layers: list[Layer] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"layers[{i}]"
        if not isinstance(entry, dict):
            raise InputError("must be a mapping", source=source, field=where, value=entry)
        kind = entry.get("type")
        if not isinstance(kind, str) or kind not in _KEYS:
            raise InputError(
                "unknown layer type",
                source=source,
                field=f"{where}.type",
                value=kind,
                hint="one of " + ", ".join(_KEYS),
            )
        unknown = set(entry) - _KEYS[kind] - _COMMON
        if unknown:
            raise InputError(
                f"unknown key for a {kind} layer",
                source=source,
                field=f"{where}.{sorted(map(str, unknown))[0]}",
                hint="allowed: " + ", ".join(sorted(_KEYS[kind] | _COMMON)),
            )
        name = entry.get("name", f"model.layers.{i}.self_attn.attn")
        if not isinstance(name, str) or not name:
            raise InputError("must be a module path string", source=source, field=f"{where}.name", value=name)
        if name in seen:
            raise InputError("duplicate layer name", source=source, field=f"{where}.name", value=name)
        seen.add(name)
        index = entry.get("index")
        if index is None:
            match = _INDEX.search(f".{name}.")
            index = int(match.group(1)) if match else i
        elif isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise InputError("must be a layer index >= 0", source=source, field=f"{where}.index", value=index)
        block = _pos_int(entry, "block_size", where, source, required=False)
        padded = _pos_int(entry, "page_size_padded", where, source, required=False)
        dtype = (
            canonical_dtype(entry["dtype"], field=f"{where}.dtype", source=source)
            if entry.get("dtype") is not None
            else None
        )
        layer: Layer
        if kind == "mla":
            layer = _mla(entry, where, source, name, index, dtype, block, padded)
        elif kind == "mamba":
            shapes = entry.get("shapes")
            dtypes = entry.get("dtypes")
            if (
                not isinstance(shapes, list)
                or not shapes
                or not all(
                    isinstance(s, list)
                    and s
                    and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in s)
                    for s in shapes
                )
            ):
                raise InputError(
                    "must be a list of shapes (lists of positive ints)",
                    source=source,
                    field=f"{where}.shapes",
                    value=shapes,
                )
            if not isinstance(dtypes, list) or len(dtypes) != len(shapes):
                raise InputError(
                    "must list one dtype per shape", source=source, field=f"{where}.dtypes", value=dtypes
                )
            layer = MambaLayer(
                name,
                index,
                shapes=tuple(tuple(s) for s in shapes),
                dtypes=tuple(canonical_dtype(d, field=f"{where}.dtypes", source=source) for d in dtypes),
                mamba_type=str(entry.get("mamba_type", "mamba2")),
                block_size=block,
                page_size_padded=padded,
            )
        else:
            common: dict[str, Any] = dict(
                num_kv_heads=_pos_int(entry, "num_kv_heads", where, source) or 0,
                head_size=_pos_int(entry, "head_size", where, source) or 0,
                num_attention_heads=_pos_int(entry, "num_attention_heads", where, source, required=False),
                dtype=dtype,
                block_size=block,
                page_size_padded=padded,
            )
            if kind == "sliding_window":
                layer = SlidingWindowLayer(
                    name,
                    index,
                    **common,
                    sliding_window=_pos_int(entry, "sliding_window", where, source) or 0,
                )
            elif kind == "chunked_local":
                layer = ChunkedLocalLayer(
                    name,
                    index,
                    **common,
                    attention_chunk_size=_pos_int(entry, "attention_chunk_size", where, source) or 0,
                )
            else:
                layer = AttentionLayer(
                    name,
                    index,
                    **common,
                    head_size_v=_pos_int(entry, "head_size_v", where, source, required=False),
                )
        layers.append(layer)
    return layers
