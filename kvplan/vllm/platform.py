"""vLLM's platform step: the block sizes every layer ends up with.

On CUDA, vLLM leaves ``block_size`` at 16 for ordinary attention backends;
MLA backends need larger blocks; hybrid Mamba models raise the attention
block size until one attention page holds at least one Mamba state, and pad
the Mamba page to match.  A ``--block-size`` given by the user wins for
attention, as in vLLM.
"""

from __future__ import annotations

from dataclasses import replace
from math import lcm

from kvplan.inputs.serving import Serving
from kvplan.inputs.speculative import num_speculative_tokens
from kvplan.model.layers import AttentionLayer, MambaLayer, MLALayer, ModelDescription, kv_heads_per_rank
from kvplan.releases import Release
from kvplan.vllm import sparse_mla
from kvplan.vllm.sharding import ShardContext, spec_for
from kvplan.vllm.specs import cdiv

DEFAULT_BLOCK_SIZE = 16
# FlashMLA (Hopper) and an fp8 MLA cache need 64-token blocks.
MLA_BLOCK_SIZE = 64


def gpu_arch(serving: Serving) -> tuple[str, str]:
    """(architecture, why): the GPU preset's, else Hopper (an H100), kvplan's assumption."""
    if serving.gpu is not None:
        from kvplan.inputs.presets import find_gpu

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
    behaviour = release.behaviour
    sixteen_bit = kv_dtype in ("bfloat16", "float16")
    if arch == "hopper":
        return behaviour.mla_block_size if sixteen_bit else MLA_BLOCK_SIZE
    if arch == "blackwell":
        if qk_nope_head_dim == 128:
            return behaviour.mla_block_size_blackwell_nope128
        return behaviour.mla_block_size_blackwell
    return DEFAULT_BLOCK_SIZE


def shard_context(
    model: ModelDescription, serving: Serving, release: Release, kv_dtype: str
) -> tuple[ShardContext, str]:
    """The shard context of one worker, and a sentence saying where the block size came from."""
    has_mla = any(isinstance(layer, MLALayer) for layer in model.layers)
    has_mamba = any(isinstance(layer, MambaLayer) for layer in model.layers)
    mla_format = None
    if sparse_mla.is_sparse(model):
        arch, why = gpu_arch(serving)
        sparse_mla.check_gpu(arch, why)
        block = sparse_mla.block_size(serving.block_size)
        mla_format = sparse_mla.latent_format(serving.kv_cache_dtype, arch, release)
        note = (
            f"block size {block}: DeepSeek Sparse Attention's indexer backend takes "
            f"{block}-token blocks only ({arch}: {why})"
        )
    elif serving.block_size is not None:
        block, note = serving.block_size, f"block size {serving.block_size} (--block-size)"
    elif has_mla:
        arch, why = gpu_arch(serving)
        nope = model.config.get("qk_nope_head_dim")
        block = mla_block_size(arch, release, kv_dtype, nope if isinstance(nope, int) else None)
        note = f"block size {block}: the default MLA backend's on {arch} ({why}) in vLLM {release.version}"
    else:
        block, note = DEFAULT_BLOCK_SIZE, f"block size {DEFAULT_BLOCK_SIZE}: vLLM's CUDA default"
    context = ShardContext(
        tp=serving.tp,
        block_size=block,
        kv_dtype=kv_dtype,
        kv_cache_dtype=serving.kv_cache_dtype,
        num_speculative_tokens=num_speculative_tokens(serving.speculative_config),
        mla_cache_dtype=mla_format,
    )
    if has_mamba:
        context, note = align(model, serving, release, context)
    return context, note


def align(
    model: ModelDescription, serving: Serving, release: Release, context: ShardContext
) -> tuple[ShardContext, str]:
    """Raise the attention block size until one attention page holds a state, and pad states.

    ``block = k x cdiv(state, k x attention bytes per token)`` with k = 16 (64
    for MLA), lcm'd with 64 for gated delta nets in 0.26+'s ``align`` mode
    (prefix caching on, FlashInfer's prefill checkpoints); the state page is
    then padded to ``block x attention bytes per token``.  Mamba's own block
    size is the attention block in ``align`` mode, else max_model_len.
    """
    mambas = [layer for layer in model.layers if isinstance(layer, MambaLayer)]
    attn = next((layer for layer in model.layers if isinstance(layer, AttentionLayer | MLALayer)), None)
    state = max(layer.state_bytes(context.tp) for layer in mambas)
    mode = "align" if release.behaviour.hybrid_prefix_caching else "none"
    if attn is None:
        # Attention-free: no alignment; one state per request.
        return replace(context, mamba_block_size=serving.max_model_len or model.max_position_embeddings), (
            "attention-free: one state page per request"
        )
    probe = spec_for(attn, replace(context, block_size=1, mla_block_size=1))
    per_token = probe.page_size_bytes
    k = context.block_size if isinstance(attn, MLALayer) else 16
    if mode == "align" and all(layer.mamba_type == "gdn_attention" for layer in mambas):
        k = lcm(k, 64)
    block = k * cdiv(state, k * per_token)
    if isinstance(attn, AttentionLayer):
        kv_heads_per_rank(attn.num_kv_heads, context.tp, layer=attn.name)
    block = max(block, serving.block_size or 0)
    page = block * per_token
    mamba_block = (
        block if mode == "align" else (serving.max_model_len or model.max_position_embeddings or block)
    )
    ctx = replace(
        context,
        block_size=block,
        mla_block_size=block if isinstance(attn, MLALayer) else context.mla_block_size,
        mamba_block_size=mamba_block,
        mamba_page_size_padded=page if page > state else None,
    )
    note = (
        f"block size {block}: raised so one attention page ({page:,} B) holds a {state:,} B state "
        f"(k={k}, mamba cache mode {mode})"
    )
    return ctx, note
