"""One worker's view of a layer: the per-TP-rank ``KVCacheSpec`` vLLM builds for it.

``spec_for(layer, ctx)`` dispatches on the layer's kind (each kind registers
its own conversion), so callers never switch on a kind name.
"""

from __future__ import annotations

from functools import singledispatch
from math import prod

from kvplan.dtypes import dtype_size
from kvplan.model.layers import (
    AttentionLayer,
    ChunkedLocalLayer,
    CrossAttentionLayer,
    Layer,
    MambaLayer,
    MLAIndexerLayer,
    MLALayer,
    SinkAttentionLayer,
    SlidingWindowLayer,
    kv_heads_per_rank,
)
from kvplan.records import record
from kvplan.vllm.specs import (
    ChunkedLocalAttentionSpec,
    CrossAttentionSpec,
    FullAttentionSpec,
    KVCacheSpec,
    MambaSpec,
    MLAAttentionSpec,
    SinkFullAttentionSpec,
    SlidingWindowSpec,
)


@record(frozen=True, eq=False)
class ShardContext:
    """How one worker holds a layer: TP size, block sizes and cache dtypes.

    ``kv_dtype`` is the resolved attention cache dtype (``auto`` already
    replaced by the model dtype); ``kv_cache_dtype`` is the flag as given,
    which MLA records as its ``cache_dtype_str``; ``mla_cache_dtype`` replaces
    both for MLA layers when the MLA backend stores another format (the
    sparse FlashMLA backend keeps an fp8 cache as ``fp8_ds_mla``).
    ``num_speculative_tokens`` is the speculative config's (0 without one):
    Mamba states keep that many extra blocks, and recurrent states add conv
    rows for them.  ``mamba_cache_dtype`` and ``mamba_ssm_cache_dtype`` are
    vLLM's flags of those names (``auto``: the model's own choice).
    ``mamba_checkpoint_grid`` is the token grid the exported prefill
    checkpoints lie on when every state layer exports them (``align`` mode,
    vLLM's ``get_mamba_prefill_checkpoint_grid``: the Mamba block size), else None.
    """

    tp: int
    block_size: int
    kv_dtype: str
    kv_cache_dtype: str = "auto"
    mla_block_size: int | None = None
    num_speculative_tokens: int = 0
    mamba_block_size: int | None = None
    mamba_page_size_padded: int | None = None
    attention_page_size_padded: int | None = None
    mamba_cache_dtype: str = "auto"
    mamba_ssm_cache_dtype: str = "auto"
    mla_cache_dtype: str | None = None
    mamba_checkpoint_grid: int | None = None


# Each kind is registered by name: inferring it from the annotation would evaluate
# every registered function's annotations (typing.get_type_hints) on every start.
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


@spec_for.register(AttentionLayer)
def _full(layer: AttentionLayer, ctx: ShardContext) -> KVCacheSpec:
    head_v = None if layer.head_size_v in (None, layer.head_size) else layer.head_size_v
    return FullAttentionSpec(**_attention_fields(layer, ctx), head_size_v=head_v)  # type: ignore[arg-type]


@spec_for.register(SlidingWindowLayer)
def _sliding(layer: SlidingWindowLayer, ctx: ShardContext) -> KVCacheSpec:
    head_v = None if layer.head_size_v in (None, layer.head_size) else layer.head_size_v
    return SlidingWindowSpec(
        **_attention_fields(layer, ctx),  # type: ignore[arg-type]
        sliding_window=layer.sliding_window,
        head_size_v=head_v,
    )


@spec_for.register(SinkAttentionLayer)
def _sink(layer: SinkAttentionLayer, ctx: ShardContext) -> KVCacheSpec:
    head_v = None if layer.head_size_v in (None, layer.head_size) else layer.head_size_v
    return SinkFullAttentionSpec(
        **_attention_fields(layer, ctx),  # type: ignore[arg-type]
        head_size_v=head_v,
        sink_len=layer.sink_len,
    )


@spec_for.register(CrossAttentionLayer)
def _cross(layer: CrossAttentionLayer, ctx: ShardContext) -> KVCacheSpec:
    return CrossAttentionSpec(**_attention_fields(layer, ctx))  # type: ignore[arg-type]


@spec_for.register(ChunkedLocalLayer)
def _chunked(layer: ChunkedLocalLayer, ctx: ShardContext) -> KVCacheSpec:
    return ChunkedLocalAttentionSpec(
        **_attention_fields(layer, ctx),  # type: ignore[arg-type]
        attention_chunk_size=layer.attention_chunk_size,
    )


@spec_for.register(MLALayer)
def _mla(layer: MLALayer, ctx: ShardContext) -> KVCacheSpec:
    # One latent row per token, the same on every TP rank: vLLM does not shard it.
    return MLAAttentionSpec(
        block_size=layer.block_size or ctx.mla_block_size or ctx.block_size,
        num_kv_heads=1,
        head_size=layer.kv_lora_rank + layer.qk_rope_head_dim,
        dtype=layer.dtype or ctx.mla_cache_dtype or ctx.kv_dtype,
        page_size_padded=layer.page_size_padded,
        cache_dtype_str=ctx.mla_cache_dtype or ctx.kv_cache_dtype,
        topk_buffer_width=layer.topk_buffer_width,
        index_group_leader=layer.index_group_leader,
    )


@spec_for.register(MLAIndexerLayer)
def _mla_indexer(layer: MLAIndexerLayer, ctx: ShardContext) -> KVCacheSpec:
    # The indexer's key cache: uint8 rows whatever the KV cache dtype, one head on every rank.
    return MLAAttentionSpec(
        block_size=ctx.mla_block_size or ctx.block_size,
        num_kv_heads=1,
        head_size=layer.head_size,
        dtype="uint8",
        cache_role="indexer",
    )


def mamba_state(layer: MambaLayer, ctx: ShardContext) -> tuple[tuple[tuple[int, ...], ...], tuple[str, ...]]:
    """A Mamba layer's per-rank state shapes and dtypes under ``--mamba-cache-dtype`` and
    ``--mamba-ssm-cache-dtype``, as vLLM's ``MambaStateDtypeCalculator`` resolves them.

    The first state (the convolution state) takes ``--mamba-cache-dtype``; the
    second (the temporal / SSM state) takes ``--mamba-ssm-cache-dtype``, and
    otherwise follows the first unless the model sets its own SSM dtype
    (Nemotron-H's and Qwen3.5's defaults apply only when the flag is ``auto``).
    An explicit ``layers:`` entry gives vLLM's resolved dtypes, which the flags
    do not change.
    """
    shapes, dtypes = layer.state(ctx.tp, ctx.num_speculative_tokens)
    if type(layer) is MambaLayer or (ctx.mamba_cache_dtype == "auto" and ctx.mamba_ssm_cache_dtype == "auto"):
        return shapes, dtypes
    out = list(dtypes)
    own_ssm = len(out) > 1 and out[1] != out[0]  # the model set the SSM state's dtype itself
    if ctx.mamba_cache_dtype != "auto":
        out[0] = ctx.mamba_cache_dtype
        if len(out) > 1 and not own_ssm:
            out[1] = ctx.mamba_cache_dtype
    if len(out) > 1 and ctx.mamba_ssm_cache_dtype != "auto":
        out[1] = ctx.mamba_ssm_cache_dtype
    return shapes, tuple(out)


def mamba_state_bytes(layer: MambaLayer, ctx: ShardContext) -> int:
    """Unpadded bytes of one request's state of ``layer`` on one rank, in the dtypes in force."""
    shapes, dtypes = mamba_state(layer, ctx)
    return sum(prod(s) * dtype_size(d) for s, d in zip(shapes, dtypes, strict=True))


def prefill_checkpoint(layer: MambaLayer, ctx: ShardContext) -> tuple[int, int | None]:
    """(num_prefill_checkpoint_blocks, prefill_checkpoint_alignment) of the layer's spec.

    A fixed block (vLLM's Mamba2 mixer, 0.32+) is always there; an exported one
    only when every state layer exports checkpoints (Qwen's gated delta nets in
    ``align`` mode on FlashInfer, 0.33), aligned to the checkpoint grid.
    """
    if layer.fixed_checkpoint_alignment is not None:
        return 1, layer.fixed_checkpoint_alignment
    if layer.prefill_checkpoint_alignment is not None and ctx.mamba_checkpoint_grid is not None:
        return 1, ctx.mamba_checkpoint_grid
    return 0, None


@spec_for.register(MambaLayer)
def _mamba(layer: MambaLayer, ctx: ShardContext) -> KVCacheSpec:
    shapes, dtypes = mamba_state(layer, ctx)
    checkpoint_blocks, checkpoint_alignment = prefill_checkpoint(layer, ctx)
    return MambaSpec(
        block_size=layer.block_size or ctx.mamba_block_size or ctx.block_size,
        shapes=shapes,
        dtypes=dtypes,
        page_size_padded=layer.page_size_padded or ctx.mamba_page_size_padded,
        mamba_type=layer.mamba_type,
        num_speculative_blocks=ctx.num_speculative_tokens,
        num_prefill_checkpoint_blocks=checkpoint_blocks,
        prefill_checkpoint_alignment=checkpoint_alignment,
    )
