"""Where layers live: vLLM's pipeline split and each stage's per-rank specs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from kvplan.dtypes import resolve_kv_cache_dtype
from kvplan.errors import InputError
from kvplan.inputs.serving import Serving
from kvplan.model.layers import Layer, MambaLayer, ModelDescription
from kvplan.records import record
from kvplan.releases import Release
from kvplan.vllm import engine_args, platform, sparse_mla
from kvplan.vllm.engine_args import MambaCache
from kvplan.vllm.sharding import ShardContext, spec_for
from kvplan.vllm.specs import KVCacheSpec


def pp_partition(num_layers: int, pp: int, partition: Sequence[int] | None = None) -> list[int]:
    """Decoder layers per PP stage, as vLLM's ``get_pp_indices`` splits them.

    Evenly, with the remainder given one each to the stages just before the
    last (the last holds the final norm and LM head); ``partition`` is the
    ``VLLM_PP_LAYER_PARTITION`` override and must list ``pp`` counts summing to
    ``num_layers``.
    """
    if pp > num_layers:
        raise InputError(
            f"pipeline parallel size {pp} is larger than the {num_layers} layers",
            field="pp",
            value=pp,
            hint="every stage needs at least one layer",
        )
    if partition is not None:
        if len(partition) != pp:
            raise InputError(
                f"lists {len(partition)} stages but pp is {pp}",
                field="pp_layer_partition",
                value=",".join(map(str, partition)),
            )
        if sum(partition) != num_layers:
            raise InputError(
                f"sums to {sum(partition)} layers but the model has {num_layers}",
                field="pp_layer_partition",
                value=",".join(map(str, partition)),
            )
        return list(partition)
    parts = [num_layers // pp] * pp
    for i in range(2, num_layers % pp + 2):
        parts[-i] += 1
    return parts


def stage_ranges(parts: Sequence[int]) -> list[tuple[int, int]]:
    """``[start, end)`` decoder-layer ranges from per-stage counts."""
    out, start = [], 0
    for count in parts:
        out.append((start, start + count))
        start += count
    return out


@record(eq=False)
class Layout:
    """Per-stage layer ranges and per-rank specs of one serving setup."""

    ranges: tuple[tuple[int, int], ...]
    stage_specs: tuple[dict[str, KVCacheSpec], ...]
    context: ShardContext
    block_size_note: str
    mamba_cache_mode: str = "none"
    kv_cache_dtype: str = "auto"
    kv_cache_dtype_note: str = ""
    kv_sharing: tuple[dict[str, str], ...] = ()
    draft_layers: tuple[str, ...] = ()
    draft_note: str = ""


def checkpoint_kv_cache_dtype(config: dict[str, Any]) -> str | None:
    """The KV cache dtype a quantized checkpoint asks for, as vLLM reads it.

    llm-compressor checkpoints with a ``kv_cache_scheme`` get an fp8 cache;
    modelopt checkpoints name it in ``kv_cache_quant_algo``.
    """
    quant = config.get("quantization_config")
    if not isinstance(quant, dict):
        return None
    nested = quant.get("quantization")
    inner: dict[str, Any] = nested if isinstance(nested, dict) else quant
    if str(quant.get("quant_method", "")).startswith("modelopt"):
        algo = inner.get("kv_cache_quant_algo") or quant.get("kv_cache_quant_algo")
        return "fp8" if isinstance(algo, str) and algo.upper().startswith("FP8") else None
    return "fp8" if quant.get("kv_cache_scheme") else None


def collection_order(layers: list[Layer], release: Release) -> list[Layer]:
    """The order the model runner collects a stage's layers in: the model's, except that up to
    0.11.0 it takes every attention layer first and the Mamba layers after them."""
    if not release.behaviour.attention_layers_first:
        return layers
    return [x for x in layers if not isinstance(x, MambaLayer)] + [
        x for x in layers if isinstance(x, MambaLayer)
    ]


def build_layout(
    model: ModelDescription, serving: Serving, release: Release, mamba: MambaCache | None = None
) -> Layout:
    """Split the model over PP stages and build every layer's spec on one TP rank.

    ``mamba``: prefix caching and the Mamba cache mode in force (default: as
    ``engine_args.mamba_cache`` resolves them).
    """
    if mamba is None:
        mamba = engine_args.mamba_cache(model, serving, release)
    for layer in model.layers:
        layer.check_tp(serving.tp)
        layer.check_pp(serving.pp)
    dtype_note = ""
    if serving.kv_cache_dtype == "auto" and (wanted := checkpoint_kv_cache_dtype(model.config)):
        # vLLM follows the checkpoint's KV cache quantization when the user leaves `auto`.
        serving = replace(serving, kv_cache_dtype=wanted)
        dtype_note = f"kv cache dtype {wanted}: the checkpoint's quantization_config asks for it"
    defaulted = False
    if (
        serving.kv_cache_dtype == "auto"
        and sparse_mla.is_sparse(model)
        and (wanted := sparse_mla.default_kv_cache_dtype(model, platform.gpu_arch(serving)[0], release))
    ):
        serving = replace(serving, kv_cache_dtype=wanted)
        dtype_note = f"kv cache dtype {wanted}: vLLM's default for {model.architecture} on this GPU"
        defaulted = True
    kv_dtype = resolve_kv_cache_dtype(serving.kv_cache_dtype, model.dtype)
    context, note = platform.shard_context(model, serving, release, kv_dtype, mamba.mode)
    ranges = stage_ranges(pp_partition(model.num_hidden_layers, serving.pp, serving.pp_layer_partition))
    stage_specs = tuple(
        {
            layer.name: spec_for(layer, context)
            for layer in collection_order(model.layers_in(start, end), release)
            if layer.kv_sharing_target is None
        }
        for start, end in ranges
    )
    # Layers that read another layer's cache get no spec (vLLM's model runner skips them).
    kv_sharing = tuple(
        {layer.name: target for layer in model.layers_in(start, end) if (target := layer.kv_sharing_target)}
        for start, end in ranges
    )
    draft_names: tuple[str, ...] = ()
    draft_note = ""
    if serving.speculative_config is not None:
        from kvplan.vllm import drafting  # speculative decoding only

        drafts = drafting.add_drafts(model, serving, release, context, ranges, stage_specs, defaulted)
        draft_names, draft_note = drafts.names, drafts.note
    return Layout(
        tuple(ranges),
        stage_specs,
        context,
        note,
        mamba.mode,
        serving.kv_cache_dtype,
        dtype_note,
        kv_sharing,
        draft_names,
        draft_note,
    )
