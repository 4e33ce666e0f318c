"""The whole pipeline for one configuration: input -> model description ->
per-layer specs per stage -> memory -> the planner -> ``Plan``.

``plan()`` is the public entry point (``kvplan.plan``) and what every command
calls; ``Plan`` is the finished, typed result that every renderer, ``check``,
``log`` and ``--explain`` read.  Nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from kvplan.errors import InputError
from kvplan.inputs import serving as serving_mod
from kvplan.inputs.models import ModelInput, resolve_model
from kvplan.inputs.serving import Serving
from kvplan.memory import budget as memory_budget
from kvplan.memory.budget import MemoryBudget, StageBudget
from kvplan.model.describe import describe
from kvplan.model.layers import ChunkedLocalLayer, ModelDescription
from kvplan.releases import Release, resolve_release
from kvplan.vllm.layout import Layout, build_layout
from kvplan.vllm.planner import (
    Capacity,
    FitCheck,
    Group,
    KVCachePlan,
    PlanRequest,
    StagePlan,
)
from kvplan.vllm.planner import plan as plan_kv_cache
from kvplan.vllm.specs import KVCacheSpec, MambaSpec, layer_spec

# vLLM's V1 defaults for the OpenAI server on a large GPU.
DEFAULT_MAX_NUM_BATCHED_TOKENS = 8192
DEFAULT_MAX_NUM_SEQS = 256


@dataclass(frozen=True, eq=False)
class LayerRow:
    """One KV-cache-holding layer on one TP rank, as its group holds it.

    ``type`` is the group's view of the layer (a sliding layer kept as full
    attention with the hybrid manager off reads ``full``); ``derived_spec``
    is the layer's own spec where the group changed it.  Bytes per token is
    None for per-request state (Mamba).
    """

    name: str
    stage: int
    type: str
    num_kv_heads: int | None
    head_size: int | None
    dtype: str | None
    block_size: int
    bytes_per_token: float | None
    page_size_bytes: int
    derived_spec: KVCacheSpec | None = None


@dataclass(eq=False)
class Plan:
    """A finished plan of one model under one serving setup and vLLM release.

    Units: bytes, tokens, and blocks per layer (block id k is one page in every
    layer of the group that uses it).
    """

    model: ModelInput
    description: ModelDescription
    serving: Serving
    release: Release
    layout: Layout
    memory: MemoryBudget
    kv: KVCachePlan
    max_num_batched_tokens: int
    max_num_seqs: int
    disable_hybrid_kv_cache_manager: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def num_blocks(self) -> int:
        """Blocks per layer on every worker (the cross-stage minimum)."""
        return self.kv.num_blocks

    @property
    def usable_blocks(self) -> int:
        """Blocks that serve requests: block 0 is vLLM's null block."""
        return self.kv.usable_blocks

    @property
    def block_size(self) -> int:
        """Tokens per block, the smallest over groups."""
        return self.kv.block_size

    @property
    def stages(self) -> tuple[StagePlan, ...]:
        """One plan per pipeline stage."""
        return self.kv.stages

    @property
    def groups(self) -> tuple[Group, ...]:
        """The KV cache groups of the whole model."""
        return self.kv.groups

    @property
    def fit(self) -> FitCheck:
        """vLLM's check that one request of ``max_model_len`` fits."""
        return self.kv.fit

    @property
    def capacity(self) -> Capacity | None:
        """vLLM's capacity report; None for a model without any KV cache."""
        return self.kv.capacity

    @property
    def max_model_len(self) -> int:
        """Tokens per request, after any auto-fit."""
        return self.kv.max_model_len

    @property
    def kv_cache_tokens(self) -> int:
        """ "GPU KV cache size" as the release logs it (0 without KV cache)."""
        return self.capacity.tokens if self.capacity else 0

    @property
    def max_concurrency(self) -> float | None:
        """Requests of ``max_model_len`` tokens served at once, as the release logs it."""
        return self.capacity.max_concurrency if self.capacity else None

    @property
    def tokens_per_request(self) -> int:
        """The request length the concurrency figure is for."""
        return self.capacity.tokens_per_request if self.capacity else self.max_model_len

    @property
    def log_lines(self) -> tuple[str, ...]:
        """The release's capacity log lines, verbatim."""
        return self.capacity.log_lines if self.capacity else ()

    @property
    def kv_cache_dtype(self) -> str:
        """The ``--kv-cache-dtype`` in force (``auto`` or the checkpoint's choice)."""
        return self.layout.kv_cache_dtype

    @property
    def kv_cache_bytes(self) -> int:
        """Bytes the KV cache takes on the largest worker: num_blocks x bytes per block."""
        return max((st.num_blocks * st.bytes_per_block for st in self.stages), default=0)

    @property
    def all_notes(self) -> tuple[str, ...]:
        """Remarks from the planner, the model description and the layout."""
        extra: tuple[str, ...] = (self.layout.kv_cache_dtype_note,) if self.layout.kv_cache_dtype_note else ()
        if self.layout.draft_note:
            extra += (self.layout.draft_note,)
        return self.kv.notes + self.description.notes + extra + self.notes

    @cached_property
    def layers(self) -> tuple[LayerRow, ...]:
        """Per-layer facts on one TP rank, in model order, with each layer's stage."""
        spec_of: dict[str, KVCacheSpec] = {}
        for g in self.groups:
            for n in g.layer_names:
                spec_of[n] = layer_spec(g.spec, n)
        rows = []
        for stage, specs in enumerate(self.layout.stage_specs):
            for name, raw in specs.items():
                spec = spec_of.get(name, raw)
                mamba = isinstance(raw, MambaSpec)
                dtype = getattr(spec, "dtype", None)
                if dtype is None and isinstance(raw, MambaSpec):
                    dtype = ",".join(raw.dtypes)
                rows.append(
                    LayerRow(
                        name=name,
                        stage=stage,
                        type=raw.kind if mamba else spec.kind,
                        num_kv_heads=getattr(spec, "num_kv_heads", None),
                        head_size=getattr(spec, "head_size", None),
                        dtype=dtype,
                        block_size=spec.block_size,
                        bytes_per_token=spec.bytes_per_token,
                        page_size_bytes=spec.page_size_bytes,
                        derived_spec=raw if spec != raw else None,
                    )
                )
        return tuple(rows)

    def memory_picture(self, stage: StageBudget) -> dict[str, int]:
        """Where one GPU's memory goes on a stage (bytes): the model's terms, the KV
        cache, KV memory left unused, and what lies outside the utilization."""
        picture = {key: 0 for key in _PICTURE_TERMS.values()}
        for term in stage.terms:
            if term.name in _PICTURE_TERMS:
                picture[_PICTURE_TERMS[term.name]] = -term.bytes
        st = self.stages[stage.pp_rank]
        picture["kv_cache"] = st.num_blocks * st.bytes_per_block
        picture["unused_kv"] = st.unused_bytes
        total = self.memory.total_bytes
        usable = int(total * self.memory.gpu_memory_utilization) if total else None
        picture["outside_utilization"] = total - usable if total and usable else 0
        return picture


_PICTURE_TERMS = {
    "weights": "weights",
    "activation peak": "activation",
    "non-torch memory": "non_torch",
    "CUDA graphs": "cuda_graphs",
}


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


def _model_input(model: ModelInput | str | dict[str, Any]) -> ModelInput:
    if isinstance(model, ModelInput):
        return model
    if isinstance(model, dict):
        return ModelInput(label="config", source="config", config=dict(model))
    return resolve_model(model)


def plan(model: ModelInput | str | dict[str, Any], **serving: Any) -> Plan:
    """Plan one model's KV cache as vLLM would.

    ``model``: a preset name, a model YAML, a config.json, a model directory or
    a cached hub id (as on the command line), a config dict, or a
    ``ModelInput``.  ``serving``: the options of ``kvplan plan`` spelled with
    underscores (``tp=2``, ``kv_cache_memory="20GiB"``, ``gpu="H100-80GB"``,
    ``vllm_version="0.19"``, ...); None means "not given", and a given option
    beats the model YAML's ``serving:`` section.  Raises ``InputError`` on bad
    input and ``PlannerRefusal`` where the release's planner would refuse.
    """
    source = _model_input(model)
    options = serving_mod.merge(source.serving, source.source, serving)
    return plan_with(source, options)


def plan_with(model: ModelInput, options: Serving, description: ModelDescription | None = None) -> Plan:
    """Plan with already-merged options (``sweep`` describes the model once and reuses it)."""
    release = resolve_release(options.vllm_version)
    if description is None:
        description = describe(model, release)
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
    gpu = memory_budget.gpu_total(options) if options.kv_cache_memory is None else None
    gpu_mnbt, gpu_mns = memory_budget.batch_defaults(gpu, release)
    mnbt = options.max_num_batched_tokens or gpu_mnbt or DEFAULT_MAX_NUM_BATCHED_TOKENS
    mns = options.max_num_seqs or gpu_mns or DEFAULT_MAX_NUM_SEQS
    budget = memory_budget.budget(
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
    return Plan(
        model=model,
        description=description,
        serving=options,
        release=release,
        layout=layout,
        memory=budget,
        kv=plan_kv_cache(request),
        max_num_batched_tokens=mnbt,
        max_num_seqs=mns,
        disable_hybrid_kv_cache_manager=disable_hybrid,
    )
