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
# FlashMLA (Hopper) and an fp8 MLA cache need 64-token blocks.
MLA_BLOCK_SIZE = 64


def gpu_arch(serving: Serving) -> tuple[str, str]:
    """(architecture, why): the GPU preset's, else Hopper (an H100), kvplan's assumption."""
    if serving.gpu is not None:
        from kvplan.presets import find_gpu

        gpu = find_gpu(serving.gpu)
        return gpu.arch, gpu.name
    return "hopper", "an H100 assumed; --gpu names another"


def mla_block_size(arch: str, release: Release, kv_dtype: str, qk_nope_head_dim: int | None) -> int:
    """The default MLA backend's block size on ``arch`` in ``release`` (from vLLM's CUDA platform code).

    Hopper: FlashMLA (64) up to 0.17, then FlashAttention MLA (16) for a 16-bit
    cache.  Blackwell: CUTLASS MLA (128) up to 0.14, FlashInfer MLA (64, with
    DeepSeek's 128-wide nope head) in 0.15 - 0.17, FlashInfer MLA (32) from 0.18.
    Other GPUs run the Triton MLA backend with 16-token blocks.
    """
    v = release.key
    sixteen_bit = kv_dtype in ("bfloat16", "float16")
    if arch == "hopper":
        return release.behaviour.mla_block_size if sixteen_bit else MLA_BLOCK_SIZE
    if arch == "blackwell":
        if v < (0, 15, 0):
            return 128
        if v < (0, 18, 0):
            return 64 if qk_nope_head_dim == 128 else 128
        return 32
    return DEFAULT_BLOCK_SIZE


def shard_context(
    model: ModelDescription, serving: Serving, release: Release, kv_dtype: str
) -> tuple[ShardContext, str]:
    """The shard context of one worker, and a sentence saying where the block size came from."""
    has_mla = any(isinstance(layer, MLALayer) for layer in model.layers)
    has_mamba = any(isinstance(layer, MambaLayer) for layer in model.layers)
    if serving.block_size is not None:
        block, note = serving.block_size, f"block size {serving.block_size} (--block-size)"
    elif has_mla:
        arch, why = gpu_arch(serving)
        nope = model.config.get("qk_nope_head_dim")
        block = mla_block_size(arch, release, kv_dtype, nope if isinstance(nope, int) else None)
        note = f"block size {block}: the default MLA backend's on {arch} ({why}) in vLLM {release.version}"
    else:
        block, note = DEFAULT_BLOCK_SIZE, f"block size {DEFAULT_BLOCK_SIZE}: vLLM's CUDA default"
    context = ShardContext(
        tp=serving.tp, block_size=block, kv_dtype=kv_dtype, kv_cache_dtype=serving.kv_cache_dtype
    )
    if has_mamba:
        from kvplan import mamba

        context, note = mamba.align(model, serving, release, context)
    return context, note
