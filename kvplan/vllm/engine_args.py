"""How vLLM resolves and checks the engine arguments kvplan models.

Two things vLLM does before any KV cache is planned, each as the selected
release does it:

* ``check``: the refusals of its argument parser and config classes for the
  parallel sizes and the Mamba options (``vllm/engine/arg_utils.py``,
  ``vllm/config/parallel.py``, ``vllm/config/model.py``,
  ``vllm/config/vllm.py``), raised as ``PlannerRefusal`` with vLLM's text;
* ``mamba_cache``: whether prefix caching is on and which Mamba cache mode
  follows from it (``MambaModelConfig`` in
  ``vllm/model_executor/models/config.py``).

Async scheduling and the model runner are resolved in ``kvplan.vllm.engine``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from kvplan.errors import PlannerRefusal
from kvplan.inputs.serving import Serving
from kvplan.model.layers import AttentionLayer, MambaLayer, MLALayer, ModelDescription
from kvplan.releases import Release
from kvplan.vllm.engine import is_moe


class MambaCache(NamedTuple):
    """Prefix caching as vLLM runs it, and the Mamba cache mode it implies.

    ``mode``: ``none`` (one state per request, Mamba block = max_model_len),
    ``align`` (states at block boundaries, the last two kept) or ``all`` (a
    state every block).  ``note`` says why, when it is not what was asked.
    """

    prefix_caching: bool
    mode: str
    note: str = ""


def _has_mamba(model: ModelDescription) -> bool:
    return any(isinstance(layer, MambaLayer) for layer in model.layers)


def _has_attention(model: ModelDescription) -> bool:
    return any(isinstance(layer, AttentionLayer | MLALayer) for layer in model.layers)


def default_prefix_caching(model: ModelDescription, release: Release) -> bool:
    """vLLM's default for ``--enable-prefix-caching`` (``ModelConfig.is_prefix_caching_supported``):
    on for attention models, on for hybrid models from 0.28, off for attention-free ones."""
    if not _has_mamba(model):
        return True
    if not _has_attention(model):
        return False
    return release.behaviour.hybrid_prefix_caching


def mamba_cache(model: ModelDescription, serving: Serving, release: Release) -> MambaCache:
    """Prefix caching in force and the Mamba cache mode vLLM derives from it.

    Mode ``all`` is what 0.11.1 - 0.14 run whenever prefix caching is on, and
    0.15 - 0.27 for the models with Mamba prefix caching support.
    """
    b = release.behaviour
    asked = serving.enable_prefix_caching
    on = default_prefix_caching(model, release) if asked is None else asked
    if not _has_mamba(model):
        return MambaCache(on, "none")
    if not on:
        return MambaCache(False, "none")
    arch = model.architecture
    if b.mamba_prefix_caching == "off":
        return MambaCache(False, "none", f"vLLM {release.version} turns prefix caching off for Mamba models")
    if b.mamba_prefix_caching == "supported":
        if arch not in b.mamba_all_archs:
            return MambaCache(
                False,
                "none",
                f"vLLM {release.version} turns prefix caching off for {arch} (no Mamba prefix caching)",
            )
        return MambaCache(True, "all")
    mode = serving.mamba_cache_mode if not b.mamba_cache_mode_ignored else None
    if mode in (None, "none"):
        mode = "all" if b.mamba_prefix_caching == "modes" and arch in b.mamba_all_archs else "align"
    elif mode == "all" and arch not in b.mamba_all_archs:
        return MambaCache(True, "align", f"vLLM {release.version} falls back to mode 'align' for {arch}")
    note = "--mamba-cache-mode has no effect in this release" if serving.mamba_cache_mode else ""
    return MambaCache(True, mode, note if b.mamba_cache_mode_ignored else "")


def has_experts(config: dict[str, Any]) -> bool:
    """Whether the model has routed experts, read from its text config as vLLM reads it."""
    text = config.get("text_config")
    return is_moe(text if isinstance(text, dict) else config)


def _missing(flag: str, release: Release, since: str) -> PlannerRefusal:
    return PlannerRefusal(
        f"vLLM {release.version} has no {flag} (it arrived in {since})",
        hint="choose a newer --vllm-version, or leave the option out",
    )


def _choice(flag: str, value: str, choices: tuple[str, ...], release: Release) -> None:
    if value not in choices:
        raise PlannerRefusal(
            f"vLLM {release.version}: argument {flag}: invalid choice: '{value}' "
            f"(choose from {', '.join(choices)})"
        )


def _check_flags(serving: Serving, release: Release) -> None:
    """The flags the release's argument parser knows, and the values it accepts."""
    b = release.behaviour
    if serving.dcp > 1 and not b.dcp_flag:
        raise _missing("--decode-context-parallel-size", release, "0.10.2")
    for flag, value in (
        ("--mamba-cache-dtype", serving.mamba_cache_dtype),
        ("--mamba-ssm-cache-dtype", serving.mamba_ssm_cache_dtype),
    ):
        if value != "auto":
            if not b.mamba_dtypes:
                raise _missing(flag, release, "0.10.1")
            _choice(flag, value, b.mamba_dtypes, release)
    if serving.mamba_block_size is not None and not b.mamba_block_size_flag:
        raise _missing("--mamba-block-size", release, "0.11.1")
    if serving.mamba_cache_mode is not None:
        if not b.mamba_cache_modes:
            raise _missing("--mamba-cache-mode", release, "0.15")
        _choice("--mamba-cache-mode", serving.mamba_cache_mode, b.mamba_cache_modes, release)


def _check_dcp(model: ModelDescription, serving: Serving, release: Release) -> None:
    """ParallelConfig's and ModelConfig's decode-context-parallel checks."""
    tp, dcp, b = serving.tp, serving.dcp, release.behaviour
    if dcp == 1:
        return
    if tp % dcp:
        if b.dcp_tp_check == "v0_16":
            text = f"tp_size={tp} must be divisible bydcp_size={dcp}."
        elif b.dcp_tp_check == "v0_26":
            text = f"tp_size={tp} must be divisible by dcp_size={dcp}."
        else:
            text = (
                f"vLLM {release.version} cuts the DCP groups out of each TP group, so tp_size={tp} "
                f"must be divisible by dcp_size={dcp} (it does not check, and fails at startup)"
            )
        raise PlannerRefusal(text, hint="choose --dcp dividing --tp")
    attention = next((layer for layer in model.layers if isinstance(layer, AttentionLayer)), None)
    uses_mla = any(isinstance(layer, MLALayer) for layer in model.layers)
    if not b.dcp_gqa_check or uses_mla or attention is None:
        return
    kv = attention.num_kv_heads
    if tp <= kv:
        raise PlannerRefusal(
            "Decode context parallelism for GQA/MQA requires "
            f"`--tensor-parallel-size` ({tp}) to be greater than the model's total number of "
            f"KV heads ({kv}). Increase `--tensor-parallel-size` or set "
            "`--decode-context-parallel-size 1`."
        )
    if dcp > tp // kv:
        raise PlannerRefusal(
            f"`--decode-context-parallel-size` ({dcp}) exceeds the maximum supported value "
            f"({tp // kv}) for `--tensor-parallel-size` ({tp}) and {kv} model KV heads."
        )
    heads = attention.num_attention_heads
    if heads is not None and (heads // kv) % dcp:
        raise PlannerRefusal(
            f"The model's number of query heads per KV head ({heads // kv}) must be divisible by "
            f"`--decode-context-parallel-size` ({dcp}) for GQA/MQA."
        )


def check(model: ModelDescription, serving: Serving, release: Release, mamba: MambaCache) -> None:
    """Refuse, with vLLM's text, what the release refuses before planning the KV cache."""
    _check_flags(serving, release)
    _check_dcp(model, serving, release)
    if serving.enable_expert_parallel and not has_experts(model.config) and model.family != "explicit layers":
        raise PlannerRefusal(
            "Number of experts in the model must be greater than 0 when expert parallelism is enabled.",
            hint="--enable-expert-parallel applies to MoE models only",
        )
    if serving.mamba_block_size is not None and not mamba.prefix_caching:
        raise PlannerRefusal("--mamba-block-size can only be set with --enable-prefix-caching")
