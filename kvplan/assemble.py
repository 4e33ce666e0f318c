"""The whole pipeline for one configuration: input -> description -> layout -> plan.

``run()`` is what ``plan``, ``check``, ``sweep`` and ``log`` call; it returns
finished data (``Result``) that renderers only format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kvplan import families, memory
from kvplan import serving as serving_mod
from kvplan.errors import InputError
from kvplan.inputs import ModelInput, resolve_model
from kvplan.layouts import Layout, build_layout
from kvplan.model import ChunkedLocalLayer, ModelDescription
from kvplan.planner import Plan, PlanRequest, plan
from kvplan.releases import Release, resolve_release
from kvplan.serving import Serving

# vLLM's V1 defaults for the OpenAI server on a large GPU.
DEFAULT_MAX_NUM_BATCHED_TOKENS = 8192
DEFAULT_MAX_NUM_SEQS = 256


@dataclass(eq=False)
class Result:
    """A finished plan and everything that produced it."""

    model: ModelInput
    description: ModelDescription
    serving: Serving
    release: Release
    layout: Layout
    budget: memory.Budget
    plan: Plan
    max_num_batched_tokens: int
    max_num_seqs: int


def stage_memory(serving: Serving, pp: int) -> tuple[int, ...] | None:
    """``--kv-cache-memory``: one value for all stages, or one per stage."""
    values = serving.kv_cache_memory
    if values is None:
        return None
    if len(values) == 1:
        return values * pp
    if len(values) != pp:
        raise InputError(
            f"gives {len(values)} sizes but pp is {pp}",
            field="kv_cache_memory",
            hint="give one size for every stage, or one per stage",
        )
    return tuple(values)


def run(model: ModelInput | str, flags: dict[str, Any] | None = None) -> Result:
    """Plan one model under one serving setup (flags beat the YAML's ``serving:``)."""
    if isinstance(model, str):
        model = resolve_model(model)
    options = serving_mod.merge(model.serving, model.source, flags or {})
    return run_resolved(model, options)


def run_resolved(model: ModelInput, options: Serving, description: ModelDescription | None = None) -> Result:
    """Plan with already-merged options (``sweep`` reuses one description)."""
    release = resolve_release(options.vllm_version)
    if description is None:
        description = families.describe(model, release)
    layout = build_layout(description, options, release)
    max_len = options.max_model_len
    if max_len is None:
        max_len = description.max_position_embeddings
        if max_len is None:
            raise InputError(
                "the config has no max_position_embeddings",
                source=model.source,
                hint="give --max-model-len",
            )
    disable_hybrid = options.disable_hybrid_kv_cache_manager
    if disable_hybrid is None:
        # vLLM turns the hybrid manager off by default for chunked local attention (Llama 4).
        disable_hybrid = any(isinstance(layer, ChunkedLocalLayer) for layer in description.layers)
    # The GPU's total memory matters only when the KV cache memory is not given.
    gpu = memory.gpu_total(options) if options.kv_cache_memory is None else None
    gpu_mnbt, gpu_mns = memory.batch_defaults(gpu, release)
    mnbt = options.max_num_batched_tokens or gpu_mnbt or DEFAULT_MAX_NUM_BATCHED_TOKENS
    mns = options.max_num_seqs or gpu_mns or DEFAULT_MAX_NUM_SEQS
    budget = memory.budget(
        description,
        options,
        release,
        layout,
        stage_memory(options, options.pp),
        mnbt,
        mns,
        model.directory,
        gpu,
    )
    request = PlanRequest(
        stage_specs=layout.stage_specs,
        available=budget.available,
        release=release,
        max_model_len=max_len,
        max_num_batched_tokens=mnbt,
        max_num_seqs=mns,
        num_gpu_blocks_override=options.num_gpu_blocks_override,
        disable_hybrid_kv_cache_manager=disable_hybrid,
        dcp=options.dcp,
        fallback_max_model_len=description.max_position_embeddings,
        mamba_cache_mode=layout.mamba_cache_mode,
    )
    return Result(model, description, options, release, layout, budget, plan(request), mnbt, mns)
