"""vLLM's platform step: the block sizes every layer ends up with.

On CUDA, vLLM leaves ``block_size`` at 16 for ordinary attention backends;
MLA backends need larger blocks; hybrid Mamba models raise the attention
block size until one attention page holds at least one Mamba state, and pad
the Mamba page to match.  A ``--block-size`` given by the user wins for
attention, as in vLLM.
"""

from __future__ import annotations

from kvplan.model import MambaLayer, MLALayer, ModelDescription, ShardContext
from kvplan.releases import Release
from kvplan.serving import Serving

DEFAULT_BLOCK_SIZE = 16
# FlashMLA, the default MLA backend on Hopper, needs 64-token blocks.
MLA_BLOCK_SIZE = 64


def shard_context(
    model: ModelDescription, serving: Serving, release: Release, kv_dtype: str
) -> tuple[ShardContext, str]:
    """The shard context of one worker, and a sentence saying where the block size came from."""
    has_mla = any(isinstance(layer, MLALayer) for layer in model.layers)
    has_mamba = any(isinstance(layer, MambaLayer) for layer in model.layers)
    if serving.block_size is not None:
        block, note = serving.block_size, f"block size {serving.block_size} (--block-size)"
    elif has_mla:
        # FlashMLA (64) up to 0.17; from 0.18 a 16-bit cache gets 16-token blocks, fp8 keeps 64.
        block = release.behaviour.mla_block_size if kv_dtype in ("bfloat16", "float16") else MLA_BLOCK_SIZE
        note = f"block size {block}: the default MLA backend's on Hopper in vLLM {release.version}"
    else:
        block, note = DEFAULT_BLOCK_SIZE, f"block size {DEFAULT_BLOCK_SIZE}: vLLM's CUDA default"
    context = ShardContext(
        tp=serving.tp, block_size=block, kv_dtype=kv_dtype, kv_cache_dtype=serving.kv_cache_dtype
    )
    if has_mamba:
        from kvplan import mamba

        context, note = mamba.align(model, serving, release, context)
    return context, note
