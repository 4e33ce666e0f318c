"""The whole pipeline for one configuration: input -> model description ->
per-layer specs per stage -> memory -> the planner -> ``Plan``.

``plan()`` is the public entry point (``kvplan.plan``) and what every command
calls; ``Plan`` is the finished, typed result that every renderer, ``check``,
``log`` and ``--explain`` read.  Nothing here prints.
"""

from __future__ import annotations

from dataclasses import field, replace
from functools import cached_property
from typing import Any

from kvplan.dtypes import canonical_dtype
from kvplan.errors import InputError, PlannerRefusal
from kvplan.inputs import serving as serving_mod
from kvplan.inputs.models import ModelInput, resolve_model
from kvplan.inputs.serving import Serving
from kvplan.memory import budget as memory_budget
from kvplan.memory.budget import MemoryBudget, StageBudget
from kvplan.model import config as model_config
from kvplan.model.describe import describe
from kvplan.model.layers import ChunkedLocalLayer, ModelDescription
from kvplan.records import record
from kvplan.releases import Release, resolve_release
from kvplan.vllm import engine_args
from kvplan.vllm.engine import Engine
from kvplan.vllm.engine import resolve as resolve_engine
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


@record(frozen=True, eq=False)
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


@record(eq=False)
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
    engine: Engine
    prefix_caching: bool = True
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
    def memory_exhausted(self) -> bool:
        """True when some stage has no memory left for the KV cache: vLLM refuses to start
        ("No available memory for the cache blocks") and logs no capacity."""
        return any(stage.available <= 0 for stage in self.memory.stages)

    @property
    def refusal(self) -> str | None:
        """vLLM's error when it would not start with this setup, else None."""
        if self.memory_exhausted or not self.fit.fits:
            return self.fit.error
        return None

    @property
    def log_lines(self) -> tuple[str, ...]:
        """The release's capacity log lines, verbatim; none when vLLM refuses to start (no
        memory left, or its fit check raises before it logs the capacity)."""
        if self.memory_exhausted or not self.fit.fits:
            return ()
        return self.capacity.log_lines if self.capacity else ()

    @property
    def override_excess_bytes(self) -> int:
        """Bytes per worker that ``num_gpu_blocks_override`` allocates beyond the available
        KV cache memory, on the stage where it is most (0 when it fits)."""
        if self.kv.num_gpu_blocks_override is None:
            return 0
        return max((-st.unused_bytes for st in self.stages), default=0) if self.stages else 0

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


def resolve(
    model: ModelInput | str | dict[str, Any] | None, serving: dict[str, Any]
) -> tuple[ModelInput, Serving, tuple[str, ...]]:
    """The model and the options in force, and notes on how they were read.

    ``serving`` may hold ``vllm_args``: a pasted ``vllm serve ...`` line or
    ``LLM(...)`` keywords, whose modelled flags become options (a flag giving
    one a different value is an error) and whose model is used when
    ``model`` is None.
    """
    serving = dict(serving)
    text = serving.pop("vllm_args", None)
    notes: list[str] = []
    pasted = None
    if text is not None:
        from kvplan.inputs import vllm_args

        pasted = vllm_args.parse(text)
        notes += vllm_args.describe(pasted)
        if model is None:
            model = pasted.model
        elif pasted.model is not None and pasted.model != model:
            notes.append(f"planned the MODEL given ({model}), not the pasted one ({pasted.model})")
    if model is None:
        raise InputError(
            "no MODEL given",
            hint="name one (a preset, a YAML, a config.json, a directory or a hub id), "
            'or paste a "vllm serve MODEL ..." line with --vllm-args',
        )
    source = _model_input(model)
    options = serving_mod.merge(source.serving, source.source, serving, pasted.serving if pasted else None)
    return source, options, tuple(notes) + source.notes


def plan(model: ModelInput | str | dict[str, Any] | None, **serving: Any) -> Plan:
    """Plan one model's KV cache as vLLM would.

    ``model``: a preset name, a model YAML, a config.json, a model directory or
    a cached hub id (as on the command line), a config dict, or a
    ``ModelInput``.  ``serving``: the options of ``kvplan plan`` spelled with
    underscores (``tp=2``, ``kv_cache_memory="20GiB"``, ``gpu="H100-80GB"``,
    ``vllm_version="0.19"``, ...) or as vLLM's engine arguments
    (``tensor_parallel_size=2``), and ``vllm_args`` (a pasted ``vllm serve``
    line); None means "not given", and a given option beats the model YAML's
    ``serving:`` section.  Raises ``InputError`` on bad input and
    ``PlannerRefusal`` where the release would refuse.
    """
    source, options, notes = resolve(model, serving)
    result = plan_with(source, options)
    result.notes = notes + result.notes
    return result


def plan_with(model: ModelInput, options: Serving, description: ModelDescription | None = None) -> Plan:
    """Plan with already-merged options (``sweep`` describes the model once and reuses it)."""
    release = resolve_release(options.vllm_version)
    if description is None:
        description = describe(model, release)
    if options.dtype not in (None, "auto"):
        description = replace(description, dtype=canonical_dtype(options.dtype, field="dtype"))
    mamba = engine_args.mamba_cache(description, options, release)
    engine_args.check(description, options, release, mamba)
    layout = build_layout(description, options, release, mamba)
    max_len = _max_model_len(description, options, release)
    disable_hybrid = options.disable_hybrid_kv_cache_manager
    if disable_hybrid is None:
        # Up to 0.13 vLLM turned the hybrid manager off by default for chunked local attention.
        disable_hybrid = release.behaviour.chunked_disables_hybrid and any(
            isinstance(layer, ChunkedLocalLayer) for layer in description.layers
        )
    # A named GPU sets vLLM's batch defaults even when the KV cache memory is given.
    named = options.gpu is not None or options.gpu_memory is not None
    gpu = memory_budget.gpu_total(options) if options.kv_cache_memory is None or named else None
    gpu_mnbt, gpu_mns, _ = memory_budget.batch_defaults(gpu, release, options, max_len)
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
        label=" ".join(str(x) for x in (model.label, model.source, model.config.get("_name_or_path")) if x),
    )
    engine = resolve_engine(description, options, release)
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
        max_concurrent_batches=engine.max_concurrent_batches,
        cache_block_size=layout.context.block_size,
        kv_sharing=layout.kv_sharing,
    )
    kv = plan_kv_cache(request)
    notes = budget.notes + _override_notes(kv, options.num_gpu_blocks_override)
    if options.vllm_version is None:
        notes = (
            f"vLLM release not given: planned as {release.version}, the newest kvplan knows "
            "(--vllm-version picks another)",
            *notes,
        )
    return Plan(
        model=model,
        description=description,
        serving=options,
        release=release,
        layout=layout,
        memory=budget,
        kv=kv,
        max_num_batched_tokens=mnbt,
        max_num_seqs=mns,
        disable_hybrid_kv_cache_manager=disable_hybrid,
        engine=engine,
        prefix_caching=mamba.prefix_caching,
        notes=((mamba.note,) if mamba.note else ()) + notes,
    )


def _override_notes(kv: KVCachePlan, override: int | None) -> tuple[str, ...]:
    """Say so when num_gpu_blocks_override asks for more blocks than a stage's memory holds."""
    if override is None:
        return ()
    short = [
        f"stage {st.pp_rank} holds {st.available_bytes // st.bytes_per_block:,}"
        for st in kv.stages
        if st.bytes_per_block and override * st.bytes_per_block > st.available_bytes
    ]
    if not short:
        return ()
    return (
        f"num_gpu_blocks_override {override:,} is beyond the KV cache memory ({'; '.join(short)} blocks): "
        "vLLM allocates the blocks anyway and may run out of memory at start-up",
    )


def _max_model_len(description: ModelDescription, options: Serving, release: Release) -> int:
    """The max_model_len vLLM settles on: the user's (checked against the model's), else derived.

    Raises ``PlannerRefusal`` with vLLM's text when the user's exceeds the
    length vLLM derives from the config (``_get_and_verify_max_len``).
    """
    cfg = description.config
    if not any(k in cfg for k in model_config.LENGTH_KEYS) and description.max_position_embeddings:
        cfg = {**cfg, "max_position_embeddings": description.max_position_embeddings}
    derived, key = model_config.derived_max_model_len(
        cfg,
        yarn_scaled=release.behaviour.rope_yarn_scaled,
        rope_loop=release.behaviour.rope_loop,
        source=description.source,
    )
    requested = options.max_model_len
    if requested is None or requested == -1:
        if derived is None:
            if requested == -1:
                return -1
            raise InputError(
                "the config has no max_position_embeddings",
                source=description.source,
                hint="give --max-model-len",
            )
        return int(derived) if requested is None else -1
    if derived is not None:
        refusal = model_config.max_model_len_refusal(cfg, requested, derived, key)
        if refusal is not None:
            raise PlannerRefusal(
                f"vLLM {release.version} refuses to start (ValueError from _get_and_verify_max_len): {refusal}",
                hint="lower --max-model-len to the model's length, or plan as vLLM would run it with "
                "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 by raising max_position_embeddings in a model YAML",
                vllm_message=refusal,
            )
    return requested
