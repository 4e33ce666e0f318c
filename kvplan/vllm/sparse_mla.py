"""DeepSeek Sparse Attention on vLLM's CUDA platform: block size, cache format, GPUs.

A DSA model (DeepSeek-V3.2, GLM-5) runs two attention backends: a sparse MLA
backend for the latent cache and the DeepSeek-V3.2 indexer backend for the
indexer's key cache.  The indexer backend takes 64-token blocks only
(``v1/attention/backends/mla/indexer.py``), and vLLM picks the block size
every backend accepts, so both caches use 64-token blocks on Hopper and on
Blackwell alike.

The latent cache keeps the model dtype for ``--kv-cache-dtype auto``.  An fp8
cache is stored the way the sparse backend reads it: FlashMLA's sparse kernels
(Hopper's only fp8 choice) pack a token into the 656-byte ``fp8_ds_mla`` row;
on Blackwell vLLM prefers FlashInfer's sparse MLA for fp8 from 0.19, which keeps
plain fp8 rows (576 bytes).  GLM-5 serves an fp8_e4m3 cache by default on
SM10x from 0.32 (``model_executor/models/config.py``).  GPUs before Hopper
have no sparse MLA backend and vLLM refuses the model.
"""

from __future__ import annotations

from kvplan.errors import InputError
from kvplan.model.layers import MLAIndexerLayer, MLALayer, ModelDescription
from kvplan.releases import Release

DSA_BLOCK_SIZE = 64
_SERVED_ON = ("hopper", "blackwell")


def is_sparse(model: ModelDescription) -> bool:
    """Whether the model's MLA is DeepSeek Sparse Attention."""
    return any(
        isinstance(layer, MLAIndexerLayer) or (isinstance(layer, MLALayer) and layer.sparse)
        for layer in model.layers
    )


def check_gpu(arch: str, why: str) -> None:
    """Refuse a GPU without a sparse MLA backend, as vLLM's backend selection does."""
    if arch not in _SERVED_ON:
        raise InputError(
            f"vLLM has no sparse MLA backend for DeepSeek Sparse Attention on {arch} GPUs ({why}): "
            "its CUDA backends need Hopper (SM90) or Blackwell (SM10x)",
            field="gpu",
            hint="plan on an H100/H200/H20 or a B200/B300/GB200 (--gpu)",
        )


def block_size(user_block_size: int | None) -> int:
    """The block size of every DSA cache (the indexer backend accepts 64 only)."""
    if user_block_size is not None and user_block_size != DSA_BLOCK_SIZE:
        raise InputError(
            f"DeepSeek Sparse Attention's indexer backend supports {DSA_BLOCK_SIZE}-token blocks only",
            field="block_size",
            value=user_block_size,
            hint=f"leave --block-size out, or give {DSA_BLOCK_SIZE}",
        )
    return DSA_BLOCK_SIZE


def default_kv_cache_dtype(model: ModelDescription, arch: str, release: Release) -> str | None:
    """The KV cache dtype vLLM sets in place of ``auto`` for this DSA model, if any."""
    if (
        release.behaviour.glm_dsa_blackwell_fp8
        and arch == "blackwell"
        and model.architecture == "GlmMoeDsaForCausalLM"
    ):
        return "fp8_e4m3"
    return None


def latent_format(kv_cache_dtype: str, arch: str, release: Release) -> str | None:
    """The latent cache's format name when the sparse backend stores another than the flag's."""
    if kv_cache_dtype.startswith("fp8") and kv_cache_dtype != "fp8_ds_mla":
        if arch == "hopper" or release.behaviour.dsa_fp8_blackwell == "fp8_ds_mla":
            return "fp8_ds_mla"
    return None
