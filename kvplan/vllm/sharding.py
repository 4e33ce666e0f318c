"""One worker's view of a layer: the per-TP-rank ``KVCacheSpec`` vLLM builds for it.

``spec_for(layer, ctx)`` dispatches on the layer's kind (each kind registers
its own conversion), so callers never switch on a kind name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import singledispatch

from kvplan.model.layers import (
    AttentionLayer,
    ChunkedLocalLayer,
    Layer,
    MambaLayer,
    MLALayer,
    SlidingWindowLayer,
    kv_heads_per_rank,
)
from kvplan.vllm.specs import (
    ChunkedLocalAttentionSpec,
    FullAttentionSpec,
    KVCacheSpec,
    MambaSpec,
    MLAAttentionSpec,
    SlidingWindowSpec,
)


@dataclass(frozen=True, eq=False)
class ShardContext:
    """How one worker holds a layer: TP size, block sizes and cache dtypes.

    ``kv_dtype`` is the resolved attention cache dtype (``auto`` already
    replaced by the model dtype); ``kv_cache_dtype`` is the flag as given,
    which MLA records as its ``cache_dtype_str``.
    """

    tp: int
    block_size: int
    kv_dtype: str
    kv_cache_dtype: str = "auto"
    mla_block_size: int | None = None
    mamba_block_size: int | None = None
    mamba_page_size_padded: int | None = None
    attention_page_size_padded: int | None = None


@singledispatch
def spec_for(layer: Layer, ctx: ShardContext) -> KVCacheSpec:
    """``layer``'s KV cache spec on one TP rank."""
    raise TypeError(f"no KV cache spec for a {type(layer).__name__}")


def _attention_fields(layer: AttentionLayer, ctx: ShardContext) -> dict[str, object]:
    return {
        "block_size": layer.block_size or ctx.block_size,
        "num_kv_heads": kv_heads_per_rank(layer.num_kv_heads, ctx.tp, layer=layer.name),
        "head_size": layer.head_size,
        "dtype": layer.dtype or ctx.kv_dtype,
        "page_size_padded": layer.page_size_padded or ctx.attention_page_size_padded,
    }


@spec_for.register
def _full(layer: AttentionLayer, ctx: ShardContext) -> KVCacheSpec:
    head_v = None if layer.head_size_v in (None, layer.head_size) else layer.head_size_v
    return FullAttentionSpec(**_attention_fields(layer, ctx), head_size_v=head_v)  # type: ignore[arg-type]


@spec_for.register
def _sliding(layer: SlidingWindowLayer, ctx: ShardContext) -> KVCacheSpec:
    head_v = None if layer.head_size_v in (None, layer.head_size) else layer.head_size_v
    return SlidingWindowSpec(
        **_attention_fields(layer, ctx),  # type: ignore[arg-type]
        sliding_window=layer.sliding_window,
        head_size_v=head_v,
    )


@spec_for.register
def _chunked(layer: ChunkedLocalLayer, ctx: ShardContext) -> KVCacheSpec:
    return ChunkedLocalAttentionSpec(
        **_attention_fields(layer, ctx),  # type: ignore[arg-type]
        attention_chunk_size=layer.attention_chunk_size,
    )


@spec_for.register
def _mla(layer: MLALayer, ctx: ShardContext) -> KVCacheSpec:
    # One latent row per token, the same on every TP rank: vLLM does not shard it.
    return MLAAttentionSpec(
        block_size=layer.block_size or ctx.mla_block_size or ctx.block_size,
        num_kv_heads=1,
        head_size=layer.kv_lora_rank + layer.qk_rope_head_dim,
        dtype=layer.dtype or ctx.kv_dtype,
        page_size_padded=layer.page_size_padded,
        cache_dtype_str=ctx.kv_cache_dtype,
    )


@spec_for.register
def _mamba(layer: MambaLayer, ctx: ShardContext) -> KVCacheSpec:
    shapes, dtypes = layer.state(ctx.tp)
    return MambaSpec(
        block_size=layer.block_size or ctx.mamba_block_size or ctx.block_size,
        shapes=shapes,
        dtypes=dtypes,
        page_size_padded=layer.page_size_padded or ctx.mamba_page_size_padded,
        mamba_type=layer.mamba_type,
    )
