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
from kvplan.model.layers import AttentionLayer, MambaLayer, MLALayer, ModelDescription, kv_heads_per_rank
from kvplan.releases import Release
from kvplan.vllm import sparse_mla
from kvplan.vllm.sharding import ShardContext, mamba_state_bytes, spec_for
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
    cache.  Blackwell: 16 in 0.10.0, CUTLASS MLA (128) from 0.10.1 up to 0.14, FlashInfer MLA (64, with
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
    model: ModelDescription, serving: Serving, release: Release, kv_dtype: str, mode: str = "none"
) -> tuple[ShardContext, str]:
    """The shard context of one worker, and a sentence saying where the block size came from.

    ``mode``: the Mamba cache mode in force (``kvplan.vllm.engine_args.mamba_cache``).
    """
    speculative = serving.speculative_config
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
        mamba_cache_dtype=serving.mamba_cache_dtype,
        mamba_ssm_cache_dtype=serving.mamba_ssm_cache_dtype,
        num_speculative_tokens=speculative.num_speculative_tokens if speculative is not None else 0,
        mla_cache_dtype=mla_format,
    )
    if has_mamba:
        context, note = align(model, serving, release, context, mode)
    return context, note


def mamba_chunk_size(config: dict[str, object]) -> int:
    """The Mamba2 kernel's chunk size, as vLLM's ``get_mamba_chunk_size`` reads it:
    ``mamba_chunk_size``, else ``chunk_size``, else 2048 (Mamba1 has no chunks)."""
    text = config.get("text_config")
    cfg = text if isinstance(text, dict) else config
    for key in ("mamba_chunk_size", "chunk_size"):
        value = cfg.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 2048


def _model_max_len(model: ModelDescription, serving: Serving) -> int | None:
    # max_model_len when given; under auto-fit (-1) vLLM builds the specs with the model's maximum.
    given = serving.max_model_len
    return given if given not in (None, -1) else model.max_position_embeddings


def checkpoint_alignment(mambas: list[MambaLayer], serving: Serving, mode: str) -> int | None:
    """The lcm of the state layers' prefill checkpoint alignments when every one of them
    exports checkpoints (``align`` mode, on the GPU's prefill kernels), else None: vLLM's
    ``get_mamba_prefill_checkpoint_alignment`` (model_executor/layers/mamba/abstract.py, 0.33)."""
    if mode != "align" or not mambas:
        return None
    arch = gpu_arch(serving)[0]
    alignments = [layer.prefill_checkpoint_alignment for layer in mambas if layer.checkpoints_on(arch)]
    if len(alignments) < len(mambas):
        return None
    return lcm(*(a for a in alignments if a is not None))


def align(
    model: ModelDescription, serving: Serving, release: Release, context: ShardContext, mode: str = "none"
) -> tuple[ShardContext, str]:
    """Raise the attention block size until one attention page holds a state, and pad states.

    ``block = k x cdiv(state, k x attention bytes per token)`` with k = 16 (for
    MLA 64 up to 0.19, then the MLA backend's block size, at least 128 from
    0.27), lcm'd with the layers' prefill checkpoint alignment in ``align``
    mode (prefix caching on) when every state layer exports checkpoints (Qwen's
    gated delta nets on FlashInfer in 0.33: 64); in mode ``all`` the block is a
    multiple of ``lcm(chunk, k)`` holding a state, where chunk is
    ``--mamba-block-size`` or the model's Mamba chunk size.  The state page is
    then padded to ``block x attention bytes per token``.  Mamba's own block
    size is the attention block in ``align`` mode, the ``all`` block in mode
    ``all``, else max_model_len.
    """
    mambas = [layer for layer in model.layers if isinstance(layer, MambaLayer)]
    attn = next((layer for layer in model.layers if isinstance(layer, AttentionLayer | MLALayer)), None)
    state = max(mamba_state_bytes(layer, context) for layer in mambas)
    exported = checkpoint_alignment(mambas, serving, mode)
    if attn is None:
        if mode == "none":
            # Attention-free: no alignment; one state per request.
            return replace(context, mamba_block_size=_model_max_len(model, serving)), (
                "attention-free: one state page per request"
            )
        mamba_block = serving.mamba_block_size or context.block_size
        grid = mamba_block if exported else None
        return replace(context, mamba_block_size=mamba_block, mamba_checkpoint_grid=grid), (
            f"attention-free, prefix caching on: a state every {mamba_block} tokens (mamba cache mode {mode})"
        )
    probe = spec_for(attn, replace(context, block_size=1, mla_block_size=1))
    per_token = probe.page_size_bytes
    if isinstance(attn, MLALayer):
        behaviour = release.behaviour
        k = max(behaviour.mla_hybrid_block or context.block_size, behaviour.mla_hybrid_min_block)
    else:
        k = 16
    if exported:
        # Checkpoints exported inside a prefill land on block boundaries.
        k = lcm(k, exported)
    if mode == "all":
        chunk = lcm(serving.mamba_block_size or mamba_chunk_size(model.config), k)
        block = chunk * cdiv(cdiv(state, per_token), chunk)
        k = chunk
    else:
        block = k * cdiv(state, k * per_token)
    all_block = block
    if isinstance(attn, AttentionLayer):
        kv_heads_per_rank(attn.num_kv_heads, context.tp, layer=attn.name)
    block = max(block, serving.block_size or 0)
    page = block * per_token
    if mode == "align":
        mamba_block = block
    elif mode == "all":
        mamba_block = all_block
    else:
        mamba_block = _model_max_len(model, serving) or block
    ctx = replace(
        context,
        block_size=block,
        mla_block_size=block if isinstance(attn, MLALayer) else context.mla_block_size,
        mamba_block_size=mamba_block,
        mamba_page_size_padded=page if page > state else None,
        mamba_checkpoint_grid=mamba_block if exported else None,
    )
    note = (
        f"block size {block}: raised so one attention page ({page:,} B) holds a {state:,} B state "
        f"(k={k}, mamba cache mode {mode})"
    )
    if release.behaviour.hybrid_block_reset and serving.block_size is None:
        # The workers put the attention block size back to 16 after building the model;
        # the Mamba page stays padded, so the planner grows the attention blocks again.
        reset = DEFAULT_BLOCK_SIZE
        ctx = replace(ctx, block_size=reset, mla_block_size=reset if isinstance(attn, MLALayer) else None)
        note += f"; the layers' specs keep {reset}-token blocks until the planner unifies the pages"
    return ctx, note
