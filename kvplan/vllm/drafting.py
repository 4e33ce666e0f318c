"""The drafter's per-rank specs, on the last pipeline stage, and what speculative
decoding changes in the target's specs.

The draft layers (``kvplan.model.draft``) get their specs from the target's
shard context, with the draft's own KV cache dtype where
``speculative_config.kv_cache_dtype`` gives one (vLLM 0.26+,
``SpeculativeConfig.apply_draft_overrides``) and the draft's TP size where
``draft_tensor_parallel_size`` is 1; their specs carry ``is_draft``.  With a
multi-module MTP drafter (``min(num_nextn_predict_layers,
num_speculative_tokens) > 1``) every sliding-window spec retains
``num_speculative_tokens - 1`` extra tokens (vLLM 0.28+,
``get_global_kv_cache_groups``).
"""

from __future__ import annotations

from dataclasses import replace

from kvplan.dtypes import resolve_kv_cache_dtype
from kvplan.errors import InputError
from kvplan.inputs.serving import Serving
from kvplan.model.draft import draft_layers
from kvplan.model.layers import ModelDescription
from kvplan.records import record
from kvplan.releases import Release
from kvplan.vllm.sharding import ShardContext, spec_for
from kvplan.vllm.specs import KVCacheSpec, SlidingWindowSpec


@record(frozen=True, eq=False)
class Drafts:
    """The draft layers added to the last stage, and a sentence about them."""

    names: tuple[str, ...] = ()
    note: str = ""


def _draft_context(
    model: ModelDescription,
    serving: Serving,
    release: Release,
    context: ShardContext,
    method: str,
    defaulted_dtype: bool,
) -> ShardContext:
    spec = serving.speculative_config
    assert spec is not None
    dtype = spec.kv_cache_dtype
    if dtype is not None and not release.behaviour.draft_kv_cache_dtype:
        raise InputError(
            f"vLLM {release.version} has no speculative_config.kv_cache_dtype (it arrived in 0.26.0)",
            field="speculative_config.kv_cache_dtype",
            value=dtype,
        )
    if dtype is None and method != "mtp" and defaulted_dtype:
        # vLLM keeps a separate drafter on the auto cache it was validated with
        # when it chose the target's cache dtype itself (GLM-5 on SM10x).
        dtype = "auto"
    ctx = context
    if dtype is not None:
        ctx = replace(
            ctx,
            kv_dtype=resolve_kv_cache_dtype(dtype, model.dtype),
            kv_cache_dtype=dtype,
            mla_cache_dtype=None,
        )
    draft_tp = spec.draft_tensor_parallel_size
    if draft_tp is not None and draft_tp not in (1, serving.tp):
        raise InputError(
            f"draft_tensor_parallel_size={draft_tp} cannot be other value than 1 or "
            f"target model tensor_parallel_size={serving.tp}",
            field="speculative_config.draft_tensor_parallel_size",
            value=draft_tp,
        )
    if draft_tp is not None and draft_tp != ctx.tp:
        ctx = replace(ctx, tp=draft_tp)
    return ctx


def add_drafts(
    model: ModelDescription,
    serving: Serving,
    release: Release,
    context: ShardContext,
    ranges: list[tuple[int, int]],
    stage_specs: tuple[dict[str, KVCacheSpec], ...],
    defaulted_dtype: bool = False,
) -> Drafts:
    """Add the drafter's specs to the last stage's (in place) and apply its effects on the target's."""
    spec = serving.speculative_config
    if spec is None:
        return Drafts()
    start, end = ranges[-1]
    draft = draft_layers(model, spec, release, end - start)
    if draft.layers and serving.pp > 1 and not release.behaviour.draft_with_pp:
        # vLLM's own refusal: the draft model is checked against the target's PP size.
        raise InputError(
            "Pipeline parallelism is not supported for this model. "
            "Supported models implement the `SupportsPP` interface.",
            field="pp",
            value=serving.pp,
            hint=f"vLLM {release.version} runs a {spec.method} drafter only without PP (0.30+ allows it)",
        )
    ctx = _draft_context(model, serving, release, context, spec.method, defaulted_dtype)
    last = stage_specs[-1]
    for layer in draft.layers:
        layer.check_tp(ctx.tp)
        if layer.name in last or any(layer.name in s for s in stage_specs):
            raise InputError(
                f"the draft layer {layer.name} has the name of a target layer", field="speculative_config"
            )
        last[layer.name] = replace(spec_for(layer, ctx), is_draft=True)
    multi_module = spec.method == "mtp" and min(draft.modules, spec.num_speculative_tokens) > 1
    if multi_module and release.behaviour.sliding_extra_retained:
        extra = spec.num_speculative_tokens - 1
        for specs in stage_specs:
            for name, s in specs.items():
                if isinstance(s, SlidingWindowSpec):
                    specs[name] = replace(s, extra_retained_tokens=extra)
    tokens = spec.num_speculative_tokens
    note = (
        f"speculative decoding ({spec.given_method}, {tokens} token{'s' if tokens > 1 else ''}): {draft.note}"
    )
    if draft.layers:
        count = len(draft.layers)
        note += (
            f"; {count} draft KV layer{'s' if count > 1 else ''} on the last stage "
            "(the drafter's weights are not in kvplan's memory estimate)"
        )
    return Drafts(tuple(layer.name for layer in draft.layers), note)
