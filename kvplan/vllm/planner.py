"""vLLM's KV cache planner, reproduced as pure functions of data.

The shape follows vLLM's own: group the whole model's layers
(``group_layers``), project the groups onto each pipeline stage, size each
stage (``branch_*``), check that one request of ``max_model_len`` fits, take
the minimum block count across stages, and report capacity.  Release
differences come from ``kvplan.releases.Behaviour``; nothing here does I/O.

Units: memory in bytes, ``num_blocks`` in blocks *per layer* (one block id
addresses one page in every layer of the group that uses it), tokens in tokens.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import field, replace
from functools import partial

from kvplan.errors import PlannerRefusal
from kvplan.records import record
from kvplan.releases import Behaviour, Release
from kvplan.vllm.specs import (
    AttentionSpec,
    ChunkedLocalAttentionSpec,
    FullAttentionSpec,
    KVCacheSpec,
    MambaSpec,
    MLAAttentionSpec,
    SlidingWindowSpec,
    SpecMergeError,
    UniformTypeSpecs,
    Usage,
    cdiv,
    layer_spec,
)

GiB = 1 << 30


@record(frozen=True, eq=False)
class Group:
    """A KV cache group: layers that share one block table and one spec.

    ``shared_layers`` read the cache of one of the group's layers (KV sharing):
    the workers add them to the group, and they cost no pages of their own.
    """

    layer_names: tuple[str, ...]
    spec: KVCacheSpec
    shared_layers: tuple[str, ...] = ()


@record(eq=False)
class Tensor:
    """One KV cache tensor: its size in bytes and the layers that share it.

    From 0.29 every tensor aliases one backing allocation of ``size`` bytes; a
    (group, spec) region starts at ``offset``, each of its layers spans
    ``layer_stride`` bytes and each block ``block_stride`` bytes (one page).
    """

    size: int
    shared_by: tuple[str, ...]
    offset: int | None = None
    layer_stride: int | None = None
    block_stride: int | None = None
    # Layers with no cache of their own (KV sharing) whose attention reads this
    # tensor: vLLM's workers point them at their target's tensor after the
    # config is made, so they are not in ``shared_by``.
    aliased_by: tuple[str, ...] = ()


@record(eq=False)
class Branch:
    """What one sizing branch gives for one stage.

    ``bytes_per_block`` is the memory one block id costs across the stage
    (all layers), so ``num_blocks = available // bytes_per_block``;
    ``divisor`` says in words how that figure is made.
    """

    name: str
    applicable: bool
    num_blocks: int = 0
    bytes_per_block: int = 0
    tensors: tuple[Tensor, ...] = ()
    divisor: str = ""
    reason: str = ""


@record(eq=False)
class StagePlan:
    """The plan of one pipeline stage (every TP rank of it is identical)."""

    pp_rank: int
    layer_names: tuple[str, ...]
    available_bytes: int
    groups: tuple[Group, ...]
    branches: dict[str, Branch]
    branch_taken: str
    num_blocks_before_unify: int
    num_blocks: int
    bytes_per_block: int
    tensors: tuple[Tensor, ...]
    held_bytes_per_block: int

    @property
    def used_bytes(self) -> int:
        """Bytes the stage's KV cache tensors hold (an aliased backing counts once)."""
        if any(t.offset is not None for t in self.tensors):
            return max((t.size for t in self.tensors), default=0)
        return sum(t.size for t in self.tensors)

    @property
    def unused_bytes(self) -> int:
        """Memory the stage's KV cache leaves idle: flooring, the cross-stage minimum,
        and (0.11 - 0.16 uniform type under PP) pages counted for other stages' layers."""
        return self.available_bytes - self.num_blocks * self.held_bytes_per_block


@record(eq=False)
class FitCheck:
    """vLLM's startup check that one request of ``max_model_len`` fits."""

    fits: bool
    max_model_len: int
    needed_bytes: int
    available_bytes: int
    stage: int | None
    estimated_max_model_len: int | None
    error: str | None


@record(eq=False)
class Capacity:
    """The capacity report vLLM logs: tokens and maximum concurrency."""

    tokens: int
    max_concurrency: float
    tokens_per_request: int
    blocks_per_request: int
    log_lines: tuple[str, ...]


@record(eq=False)
class PlanRequest:
    """Everything the planner needs: per-stage specs and memory, and vLLM options.

    ``stage_specs[i]`` maps layer name to spec for PP stage i, in model order;
    ``available[i]`` is that stage's KV cache memory per worker in bytes.
    ``max_model_len`` of -1 asks for auto-fit.  ``kv_sharing[i]`` maps stage i's
    layers that read another layer's KV cache to that layer.
    """

    stage_specs: Sequence[dict[str, KVCacheSpec]]
    available: Sequence[int]
    release: Release
    max_model_len: int
    max_num_batched_tokens: int
    max_num_seqs: int = 256
    num_gpu_blocks_override: int | None = None
    disable_hybrid_kv_cache_manager: bool = False
    dcp: int = 1
    pcp: int = 1
    fallback_max_model_len: int | None = None
    mamba_cache_mode: str = "none"
    max_concurrent_batches: int = 1
    cache_block_size: int | None = None
    kv_sharing: Sequence[dict[str, str]] = ()


@record(eq=False)
class KVCachePlan:
    """The planner's result for one model, serving setup and release."""

    release: Release
    groups: tuple[Group, ...]
    stages: tuple[StagePlan, ...]
    num_blocks: int
    max_model_len: int
    requested_max_model_len: int
    fit: FitCheck
    capacity: Capacity | None
    num_gpu_blocks_override: int | None
    notes: tuple[str, ...] = field(default=())

    @property
    def usable_blocks(self) -> int:
        """Blocks left for requests: vLLM's block pool keeps block 0 as the null block."""
        return max(self.num_blocks - 1, 0)

    @property
    def block_size(self) -> int:
        """The smallest block size over groups (tokens per block)."""
        return min((g.spec.block_size for g in self.groups), default=0)


# --------------------------------------------------------------------------
# Grouping (vLLM's get_kv_cache_groups)
# --------------------------------------------------------------------------


def _merge_or_none(specs: list[KVCacheSpec]) -> KVCacheSpec | None:
    try:
        return specs[0].merge(specs[1:])
    except SpecMergeError:
        return None


def is_uniform_spec(specs: dict[str, KVCacheSpec]) -> bool:
    """Whether every layer can share one spec (vLLM's ``is_kv_cache_spec_uniform``)."""
    return not specs or _merge_or_none(list(specs.values())) is not None


def unify_hybrid_specs(specs: dict[str, KVCacheSpec], uniform_type: bool) -> dict[str, KVCacheSpec]:
    """``--disable-hybrid-kv-cache-manager``: keep local layers as full attention.

    Sliding-window and chunked layers become full attention (remembering their
    window) when the model also has full attention; anything else that still
    differs is refused, as vLLM refuses it.
    """
    if is_uniform_spec(specs) or (uniform_type and UniformTypeSpecs.is_uniform_type(specs)):
        return specs
    values = specs.values()
    has_full = any(isinstance(s, FullAttentionSpec) for s in values)
    has_local = any(isinstance(s, SlidingWindowSpec | ChunkedLocalAttentionSpec) for s in values)
    out = dict(specs)
    if has_full and has_local:
        for name, spec in specs.items():
            if isinstance(spec, SlidingWindowSpec | ChunkedLocalAttentionSpec):
                out[name] = spec.as_full_attention()
    if not (is_uniform_spec(out) or (uniform_type and UniformTypeSpecs.is_uniform_type(out))):
        raise PlannerRefusal(
            "Hybrid KV cache manager is disabled but failed to convert the KV cache "
            "specs to one unified type.",
            hint="vLLM refuses this model with --disable-hybrid-kv-cache-manager",
        )
    return out


def unify_page_sizes(specs: dict[str, KVCacheSpec], behaviour: Behaviour) -> dict[str, KVCacheSpec]:
    """Raise smaller pages to the largest: grow the block size when the page
    divides the largest, else pad it where the release allows (Mamba pages from
    0.26, non-MLA attention pages from 0.29), else refuse as vLLM does.
    """
    sizes = {s.page_size_bytes for s in specs.values()}
    if len(sizes) <= 1:
        return specs
    largest = max(sizes)
    out: dict[str, KVCacheSpec] = {}
    for name, spec in specs.items():
        page = spec.page_size_bytes
        if page == largest:
            out[name] = spec
        elif isinstance(spec, MambaSpec) and behaviour.page_padding != "none":
            out[name] = replace(spec, page_size_padded=largest)
        elif largest % page == 0:
            out[name] = spec.with_block_size(spec.block_size * (largest // page))
        elif (
            behaviour.page_padding == "mamba_attention"
            and isinstance(spec, AttentionSpec)
            and not isinstance(spec, MLAAttentionSpec)
        ):
            out[name] = replace(spec, page_size_padded=largest)
        else:
            raise PlannerRefusal(
                _unify_error(name, behaviour),
                hint=f"page {page} B vs largest page {largest} B",
                vllm_type="NotImplementedError",
            )
    return out


def _unify_error(name: str, behaviour: Behaviour) -> str:
    if behaviour.unify_error == "v0_12":
        return (
            "The page size of the layer is not divisible by the maximum page size. "
            "Cannot unify by adjusting block_size."
        )
    prefix = f"Layer {name}: page size is not divisible by the maximum page size and cannot be padded. "
    if behaviour.unify_error == "v0_24":
        return prefix + (
            "Padding is only supported for attention layers whose backend indexes KV pages by "
            "the block stride (indexes_kv_by_block_stride is True)."
        )
    return prefix + "Padding is only supported for non-MLA attention layers."


def hybrid_groups(specs: dict[str, KVCacheSpec], rule: str = "1.5", contiguous: bool = False) -> list[Group]:
    """Groups of equal size for several attention types with one page size.

    Layers are bucketed by spec; the group size is the smallest bucket, or the
    largest when it is under ``rule`` x the smallest (1.25 in 0.12 - 0.17, 1.5
    from 0.18, never before); bucket ``b`` is cut into ``cdiv(len(b), size)``
    groups taking ``b[i::n]`` (0.11+, so every PP stage gets a fair share of
    every group) or contiguous runs (0.10).
    """
    buckets: dict[KVCacheSpec, list[str]] = defaultdict(list)
    for name, spec in specs.items():
        buckets[spec].append(name)
    sizes = [len(names) for names in buckets.values()]
    group_size = min(sizes)
    if rule != "min" and max(sizes) < group_size * float(rule):
        group_size = max(sizes)
    groups: list[Group] = []
    for spec, names in buckets.items():
        n = cdiv(len(names), group_size)
        for i in range(n):
            if contiguous:
                members = tuple(names[i * group_size : (i + 1) * group_size])
            else:
                members = tuple(names[i::n])
            groups.append(Group(members, spec.merge([specs[m] for m in members[1:]])))
    return groups


def group_layers(specs: dict[str, KVCacheSpec], behaviour: Behaviour, disable_hybrid: bool) -> list[Group]:
    """The whole model's KV cache groups, as the release's ``get_kv_cache_groups``."""
    if disable_hybrid:
        specs = unify_hybrid_specs(specs, behaviour.uniform_type)
    if not specs:
        return []
    merged = _merge_or_none(list(specs.values()))
    if merged is not None:
        return [Group(tuple(specs), merged)]
    if behaviour.uniform_type and UniformTypeSpecs.is_uniform_type(specs):
        block_size = next(iter(specs.values())).block_size
        return [Group(tuple(specs), UniformTypeSpecs(block_size, tuple(specs.items())))]
    if behaviour.unify_pages:
        specs = unify_page_sizes(specs, behaviour)
    elif len({s.page_size_bytes for s in specs.values()}) > 1:
        raise PlannerRefusal(
            "vLLM before 0.12 cannot plan layers whose page sizes differ "
            "(NotImplementedError in its planner)",
            hint="pages: " + ", ".join(sorted({str(s.page_size_bytes) for s in specs.values()})),
            vllm_type="NotImplementedError",
            vllm_message="",
        )
    return hybrid_groups(specs, behaviour.group_size_rule, behaviour.contiguous_groups)


def sorted_groups(groups: list[Group]) -> list[Group]:
    """0.10's group order: by spec class name, then the spec's field values."""

    def key(g: Group) -> tuple[str, tuple[str, ...]]:
        values = tuple(str(getattr(g.spec, f)) for f in g.spec.__dataclass_fields__)
        return type(g.spec).__name__, values

    return sorted(groups, key=key)


def project_groups(groups: Sequence[Group], stage_names: Sequence[str], behaviour: Behaviour) -> list[Group]:
    """The groups as one PP stage sees them: only its own layers.

    From 0.17 a uniform-type group's spec is cut to the stage's layers too;
    before, the stage keeps the whole model's spec (and its summed page).
    """
    names = set(stage_names)
    out = []
    for group in groups:
        members = tuple(n for n in group.layer_names if n in names)
        spec = group.spec
        if members and behaviour.project_uniform_type and isinstance(spec, UniformTypeSpecs):
            spec = spec.restricted_to(list(members))
        out.append(Group(members, spec))
    return out


# --------------------------------------------------------------------------
# Sizing: the branches of get_kv_cache_config_from_groups
# --------------------------------------------------------------------------


def _uniform_page(groups: Sequence[Group]) -> int | None:
    pages = {g.spec.page_size_bytes for g in groups}
    return pages.pop() if len(pages) == 1 else None


def branch_uniform_type(groups: Sequence[Group], available: int, override: int | None) -> Branch:
    """One tensor per layer; a block costs the sum of every layer's page.

    ``num_blocks = available // sum(pages)``: the divisor already adds up all
    layers, so there is no separate division by the layer count.
    """
    names = [n for g in groups for n in g.layer_names]
    if not names:
        return Branch("uniform_type", False, reason="no layers on this stage")
    pages = {n: layer_spec(g.spec, n).page_size_bytes for g in groups for n in g.layer_names}
    whole = groups[0].spec if len(groups) == 1 else None
    if isinstance(whole, UniformTypeSpecs) and set(whole.specs) != set(names):
        # The release kept the whole model's spec on this stage: its page sums every layer.
        per_block = whole.page_size_bytes
        divisor = f"sum of the pages of all {len(whole.specs)} layers of the model"
    else:
        per_block = sum(pages.values())
        divisor = f"sum of the pages of this stage's {len(names)} layers"
    blocks = max(available // per_block, 0) if override is None else override
    tensors = tuple(Tensor(pages[n] * blocks, (n,)) for n in names)
    return Branch("uniform_type", True, blocks, per_block, tensors, divisor)


def branch_shared_pool(groups: Sequence[Group], available: int, override: int | None) -> Branch:
    """``group_size`` tensors, each shared by one layer of every group.

    ``num_blocks = available // page // group_size``: one page is one layer's,
    and the pool has ``group_size`` layer slots per block.
    """
    group_size = max((len(g.layer_names) for g in groups), default=0)
    pages = {layer_spec(g.spec, n).page_size_bytes for g in groups for n in g.layer_names}
    if any(isinstance(g.spec, UniformTypeSpecs) for g in groups) and len(pages) > 1:
        return Branch("shared_pool", False, reason="the layers' pages differ in size (uniform-type group)")
    page = pages.pop() if len(pages) == 1 else _uniform_page(groups)
    if page is None:
        return Branch("shared_pool", False, reason="the groups' pages differ in size")
    if group_size == 0:
        return Branch("shared_pool", False, reason="no layers on this stage")
    blocks = max(available // page // group_size, 0) if override is None else override
    tensors = tuple(
        Tensor(page * blocks, tuple(g.layer_names[i] for g in groups if i < len(g.layer_names)))
        for i in range(group_size)
    )
    divisor = f"page {page} B x group_size {group_size}"
    return Branch("shared_pool", True, blocks, page * group_size, tensors, divisor)


def unified_bytes_per_block(groups: Sequence[Group]) -> int:
    """0.29+: the largest group's sum of per-layer pages."""
    return max(sum(layer_spec(g.spec, n).page_size_bytes for n in g.layer_names) for g in groups)


def branch_unified(groups: Sequence[Group], available: int, override: int | None) -> Branch:
    """0.29+: ``num_blocks = available // max over groups of the group's summed pages``.

    One backing allocation of ``bytes_per_block x num_blocks``, aliased by one
    tensor per (group, spec) at its own offset.
    """
    groups = [g for g in groups if g.layer_names]
    if not groups:
        return Branch("unified", False, reason="no layers on this stage")
    per_block = unified_bytes_per_block(groups)
    blocks = max(available // per_block, 0) if override is None else override
    return Branch(
        "unified",
        True,
        blocks,
        per_block,
        _unified_tensors(groups, per_block, blocks),
        "largest group's summed pages",
    )


def _unified_tensors(groups: Sequence[Group], per_block: int, num_blocks: int) -> tuple[Tensor, ...]:
    """One tensor per (group, spec), all aliasing one backing of ``per_block x num_blocks``.

    In vLLM's default layer-outer layout each layer owns ``page x num_blocks``
    contiguous bytes, so a spec's region starts after the previous regions'
    layers (``offset``); groups alias from byte 0.
    """
    tensors = []
    for g in groups:
        by_spec: dict[KVCacheSpec, list[str]] = defaultdict(list)
        for n in g.layer_names:
            by_spec[layer_spec(g.spec, n)].append(n)
        offset = 0
        for spec, names in by_spec.items():
            stride = spec.page_size_bytes * num_blocks
            tensors.append(Tensor(per_block * num_blocks, tuple(names), offset, stride, spec.page_size_bytes))
            offset += len(names) * stride
    return tuple(tensors)


def size_stage(
    groups: Sequence[Group], available: int, behaviour: Behaviour, override: int | None
) -> tuple[dict[str, Branch], str]:
    """Every branch for one stage, and the name of the one the release takes."""
    branches = {
        "uniform_type": branch_uniform_type(groups, available, override),
        "shared_pool": branch_shared_pool(groups, available, override),
        "unified": branch_unified(groups, available, override),
    }
    if behaviour.sizing == "unified":
        taken = "unified"
    elif behaviour.uniform_type and len(groups) == 1 and isinstance(groups[0].spec, UniformTypeSpecs):
        taken = "uniform_type"
    elif behaviour.sizing == "per_worker" and len(groups) == 1:
        # <= 0.10: a uniform model divides by all its layers, one tensor each.
        taken = "uniform_type"
    else:
        taken = "shared_pool"
    if not branches[taken].applicable:
        raise PlannerRefusal(
            f"vLLM's {taken.replace('_', '-')} sizing cannot handle this stage: {branches[taken].reason}"
        )
    return branches, taken


def held_per_block(branch: Branch) -> int:
    """Bytes one block id occupies in the stage's own tensors (an aliased backing counts once).

    Equals ``bytes_per_block`` except where 0.11 - 0.16 size a stage's uniform-type
    tensors with the whole model's summed page.
    """
    if not branch.tensors or branch.num_blocks == 0:
        return branch.bytes_per_block
    if branch.tensors[0].offset is not None:
        return branch.bytes_per_block
    return sum(t.size for t in branch.tensors) // branch.num_blocks


def shrink(
    branch: Branch, num_blocks: int, behaviour: Behaviour, groups: Sequence[Group]
) -> tuple[Tensor, ...]:
    """The stage's tensors once every stage uses the cross-stage minimum.

    Up to 0.28 tensors shrink proportionally (not at all in 0.10 / 0.11.0);
    from 0.29 a stage above the minimum is planned again with the minimum.
    """
    if branch.num_blocks == num_blocks or not behaviour.shrink_tensors:
        return branch.tensors
    if branch.name == "unified":
        return _unified_tensors([g for g in groups if g.layer_names], branch.bytes_per_block, num_blocks)
    return tuple(replace(t, size=t.size // branch.num_blocks * num_blocks) for t in branch.tensors)


# --------------------------------------------------------------------------
# KV sharing: layers without a cache of their own
# --------------------------------------------------------------------------


def _with_shared(group: Group, sharing: dict[str, str]) -> Group:
    names = set(group.layer_names)
    shared = tuple(n for n, target in sharing.items() if target in names)
    return replace(group, shared_layers=shared) if shared else group


def _stage_with_shared(stage: StagePlan, sharing: dict[str, str]) -> StagePlan:
    """The stage as its workers hold it: shared layers in their target's group, reading its tensor."""
    local = {n: t for n, t in sharing.items() if t in set(stage.layer_names)}
    if not local:
        return stage
    tensors = []
    for t in stage.tensors:
        held = set(t.shared_by)
        extra = tuple(n for n, target in local.items() if target in held)
        tensors.append(replace(t, aliased_by=extra) if extra else t)
    return replace(stage, groups=tuple(_with_shared(g, local) for g in stage.groups), tensors=tuple(tensors))


# --------------------------------------------------------------------------
# Memory checks (max_model_len fit, estimate, auto-fit)
# --------------------------------------------------------------------------


def needed_bytes_for_groups(groups: Sequence[Group], usage: Usage, behaviour: Behaviour) -> int:
    """Bytes one request of ``usage.max_model_len`` needs on a stage, padding included."""
    groups = [g for g in groups if g.layer_names] if behaviour.sizing == "unified" else groups
    if not groups:
        return 0
    if behaviour.sizing == "unified":
        blocks = 0
        for g in groups:
            if isinstance(g.spec, UniformTypeSpecs):
                specs = [layer_spec(g.spec, n) for n in g.layer_names]
                blocks += max(cdiv(s.max_memory_usage_bytes(usage), s.page_size_bytes) for s in specs)
            else:
                blocks += cdiv(g.spec.max_memory_usage_bytes(usage), g.spec.page_size_bytes)
        return unified_bytes_per_block(groups) * blocks
    if len(groups) == 1 and isinstance(groups[0].spec, UniformTypeSpecs):
        return sum(s.max_memory_usage_bytes(usage) for _, s in groups[0].spec.layer_specs)
    page = _uniform_page(groups) or 1
    group_size = max(len(g.layer_names) for g in groups)
    counted = groups[:1] if behaviour.needed_first_group else groups
    blocks = sum(cdiv(g.spec.max_memory_usage_bytes(usage), page) for g in counted)
    return group_size * page * blocks


def _need_groups(groups: Sequence[Group], behaviour: Behaviour, usage: Usage) -> int:
    return needed_bytes_for_groups(groups, usage, behaviour)


def needed_bytes_for_specs(specs: dict[str, KVCacheSpec], usage: Usage) -> int:
    """<= 0.13: the sum over a worker's layers of each layer's need."""
    return sum(s.max_memory_usage_bytes(usage) for s in specs.values())


def estimate_max_model_len(need: Callable[[Usage], int], usage: Usage, available: int) -> int:
    """The largest max_model_len whose need fits ``available`` (vLLM's binary search).

    Searches ``1 .. usage.max_model_len``; 0 when even one token does not fit.
    """

    def fits(length: int) -> bool:
        return need(replace(usage, max_model_len=length)) <= available

    lo, hi = 1, usage.max_model_len
    if not fits(lo):
        return 0
    best = 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(mid):
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return best


def format_gib(num_bytes: int, behaviour: Behaviour) -> str:
    """GiB as the release's error messages print them (``%.2f`` before 0.14, ``round(x, 2)`` after)."""
    if behaviour.error_style in ("v0_10", "v0_13"):
        return f"{num_bytes / GiB:.2f}"
    return str(round(num_bytes / GiB, 2))


_SEE = " See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details."


def fit_error_text(
    max_model_len: int, needed: int, available: int, estimated: int, behaviour: Behaviour
) -> str:
    """vLLM's ValueError text when one request of max_model_len does not fit, per release."""
    style = behaviour.error_style
    if available <= 0:
        text = (
            "No available memory for the cache blocks. Try increasing "
            "`gpu_memory_utilization` when initializing the engine"
        )
        if style == "v0_23":
            text += " (this flag also controls CPU memory reservation on the CPU backend, despite its name)"
        return text + "." + ("" if style == "v0_10" else _SEE)
    need, have = format_gib(needed, behaviour), format_gib(available, behaviour)
    est = ""
    if estimated > 0:
        est = f"Based on the available memory, the estimated maximum model length is {estimated}."
    if style in ("v0_10", "v0_13"):
        return (
            f"To serve at least one request with the models's max seq len ({max_model_len}), "
            f"({need} GiB KV cache is needed, which is larger than the available KV cache memory "
            f"({have} GiB). {est} Try increasing `gpu_memory_utilization` or decreasing "
            "`max_model_len` when initializing the engine." + ("" if style == "v0_10" else _SEE)
        )
    who, knob = "models's", "`gpu_memory_utilization`"
    if style == "v0_23":
        who, knob = "model's", "`gpu_memory_utilization` (which also controls CPU memory on the CPU backend)"
    return (
        f"To serve at least one request with the {who} max seq len ({max_model_len}), "
        f"({need} GiB KV cache is needed, which is larger than the available KV cache memory "
        f"({have} GiB). {est + ' ' if est else ''}Try increasing {knob} or decreasing "
        "`max_model_len` when initializing the engine." + _SEE
    )


@record(eq=False)
class _Need:
    """One memory check: a stage's need as a function of the usage, and its memory."""

    stage: int | None
    available: int
    need: Callable[[Usage], int]


def _checks(
    req: PlanRequest,
    groups: Sequence[Group],
    projected: Sequence[Sequence[Group]],
    behaviour: Behaviour,
    per_block: Sequence[int],
) -> list[_Need]:
    """The memory checks the release runs, one per stage (or one global).

    ``per_block[i]``: bytes one block id costs on stage i under the branch the
    release takes; the override's memory and the null block are counted in it.
    """
    if behaviour.check == "global_min":
        if not groups:
            return []
        return [
            _Need(
                None,
                min(req.available),
                lambda u: needed_bytes_for_groups(groups, u, behaviour),
            )
        ]
    out = []
    for i, stage_groups in enumerate(projected):
        if behaviour.check == "worker_specs":
            specs = req.stage_specs[i]
            if not specs:
                continue
            out.append(_Need(i, req.available[i], partial(needed_bytes_for_specs, specs)))
            continue
        if not stage_groups:
            continue
        available = req.available[i]
        if req.num_gpu_blocks_override is not None and behaviour.override_memory:
            available = req.num_gpu_blocks_override * per_block[i]
        if behaviour.reserve_null_block:
            available -= per_block[i]
        out.append(_Need(i, available, partial(_need_groups, stage_groups, behaviour)))
    return out


def check_fit(checks: Sequence[_Need], usage: Usage, behaviour: Behaviour) -> FitCheck:
    """Run the checks in stage order; the first failing stage gives vLLM's error."""
    worst: FitCheck | None = None
    for check in checks:
        needed = check.need(usage)
        if check.available <= 0 or needed > check.available:
            estimated = (
                estimate_max_model_len(check.need, usage, check.available) if check.available > 0 else 0
            )
            text = fit_error_text(usage.max_model_len, needed, check.available, estimated, behaviour)
            return FitCheck(False, usage.max_model_len, needed, check.available, check.stage, estimated, text)
        if worst is None or check.available - needed < worst.available_bytes - worst.needed_bytes:
            worst = FitCheck(True, usage.max_model_len, needed, check.available, check.stage, None, None)
    return worst or FitCheck(True, usage.max_model_len, 0, 0, None, None, None)


def auto_fit_max_model_len(checks: Sequence[_Need], usage: Usage) -> int:
    """``--max-model-len -1``: the longest length every stage can hold (vLLM's auto-fit).

    ``usage.max_model_len`` is the model's own maximum.  Raises
    ``PlannerRefusal`` when not even one token fits.
    """
    if not checks:
        return usage.max_model_len
    best = usage.max_model_len
    for check in checks:
        best = min(best, estimate_max_model_len(check.need, usage, check.available))
    if best <= 0:
        raise PlannerRefusal(
            "Cannot auto-fit max_model_len: not enough GPU memory available to serve "
            "even a single token. Try increasing `gpu_memory_utilization`."
        )
    return best


# --------------------------------------------------------------------------
# Capacity report
# --------------------------------------------------------------------------


def capacity(
    groups: Sequence[Group],
    num_blocks: int,
    usage: Usage,
    behaviour: Behaviour,
    dcp: int,
    pcp: int,
    cache_block_size: int | None = None,
) -> Capacity:
    """Tokens and maximum concurrency as the release logs them.

    ``groups`` are the first stage's groups (vLLM logs the first worker's);
    ``cache_block_size`` is vLLM's ``cache_config.block_size``, which 0.10
    multiplies a one-group model's blocks by (not a Mamba spec's block).
    """
    live = [g for g in groups if g.layer_names] or list(groups)
    if behaviour.concurrency == "sum_groups":
        per_request = sum(cdiv(g.spec.max_memory_usage_bytes(usage), g.spec.page_size_bytes) for g in live)
    else:
        layers_per_group = max(len(g.layer_names) for g in groups)
        per_req_bytes = layers_per_group * sum(g.spec.max_memory_usage_bytes(usage) for g in groups)
        per_block_bytes = groups[0].spec.page_size_bytes * layers_per_group
        per_request = cdiv(per_req_bytes, per_block_bytes)
    concurrency = num_blocks / per_request
    if behaviour.tokens == "concurrency":
        tokens = int(concurrency * usage.max_model_len)
    elif behaviour.tokens == "v0_10" and len(groups) == 1:
        # 0.10: a uniform model logs every block x block size, times DCP.
        tokens = num_blocks * (cache_block_size or groups[0].spec.block_size) * dcp
    elif behaviour.tokens == "v0_10":
        tokens = num_blocks // len(groups) * min(g.spec.block_size for g in groups)
    else:
        tokens = num_blocks // len(groups) * min(g.spec.block_size for g in groups)
        if behaviour.cp_tokens == "dcp":
            tokens *= dcp
        elif behaviour.cp_tokens == "pcp_dcp":
            tokens *= dcp * pcp
    extra: tuple[str, ...] = ()
    if dcp * pcp > 1 and behaviour.tokens != "concurrency":
        if behaviour.cp_tokens == "pcp_dcp":
            extra = (
                f"Multiplying the GPU KV cache size by the cp_world_size {dcp * pcp} "
                f"(pcp_world_size {pcp} * dcp_world_size {dcp}).",
            )
        elif behaviour.tokens == "blocks" or len(groups) == 1:
            extra = (f"Multiplying the GPU KV cache size by the dcp_world_size {dcp}.",)
    size = f"GPU KV cache size: {tokens:,} tokens"
    conc = f"Maximum concurrency for {usage.max_model_len:,} tokens per request: {concurrency:.2f}x"
    lines = extra + ((f"{size}, {conc}",) if behaviour.log_style == "one_line" else (size, conc))
    return Capacity(tokens, concurrency, usage.max_model_len, per_request, lines)


# --------------------------------------------------------------------------
# The whole plan
# --------------------------------------------------------------------------


def _usage(req: PlanRequest, max_model_len: int, behaviour: Behaviour) -> Usage:
    in_flight = req.max_num_batched_tokens
    if behaviour.async_in_flight:
        # 0.26+: local-attention groups reserve every batch that may be in flight.
        in_flight *= req.max_concurrent_batches
    return Usage(
        max_model_len=max_model_len,
        max_num_batched_tokens=in_flight,
        cp_size=req.dcp * req.pcp,
        mamba_cache_mode=req.mamba_cache_mode,
        mamba_usage=behaviour.mamba_usage,
        max_num_encoder_input_tokens=req.max_num_batched_tokens,
        mamba_all_spec_blocks=behaviour.mamba_all_spec_blocks,
    )


def plan(req: PlanRequest) -> KVCachePlan:
    """Plan the KV cache of every PP stage as the selected release does.

    Raises ``PlannerRefusal`` where that release's planner would refuse.
    """
    behaviour = req.release.behaviour
    if len(req.stage_specs) != len(req.available):
        raise ValueError("one available-memory figure per stage is required")
    merged: dict[str, KVCacheSpec] = {}
    for specs in req.stage_specs:
        merged.update(specs)

    if behaviour.sizing == "per_worker":
        # <= 0.10: every worker groups its own layers; unify_kv_cache_configs then
        # sorts each worker's groups by spec class name and fields.
        projected = [group_layers(s, behaviour, req.disable_hybrid_kv_cache_manager) for s in req.stage_specs]
        shown = [sorted_groups(p) for p in projected]
        groups = sorted_groups(group_layers(merged, behaviour, req.disable_hybrid_kv_cache_manager))
    else:
        groups = group_layers(merged, behaviour, req.disable_hybrid_kv_cache_manager)
        projected = [project_groups(groups, list(s), behaviour) for s in req.stage_specs]
        shown = projected

    # Sizing does not depend on max_model_len, so every stage is sized first.
    staged: list[tuple[dict[str, Branch], str]] = []
    for stage_groups, available in zip(projected, req.available, strict=True):
        if not any(g.layer_names for g in stage_groups):
            empty = Branch("none", True, 1, 0, (), "attention-free: one null block")
            staged.append(({"none": empty}, "none"))
            continue
        staged.append(size_stage(stage_groups, available, behaviour, req.num_gpu_blocks_override))

    per_block = [branches[taken].bytes_per_block for branches, taken in staged]

    requested = req.max_model_len
    max_model_len = requested
    notes: list[str] = []
    if requested == -1:
        model_max = req.fallback_max_model_len or 0
        if model_max <= 0:
            raise PlannerRefusal("auto-fit needs the model's maximum length (max_position_embeddings)")
        max_model_len = model_max
        if behaviour.auto_fit:
            checks = _checks(req, groups, projected, behaviour, per_block)
            max_model_len = auto_fit_max_model_len(checks, _usage(req, model_max, behaviour))
            if max_model_len < model_max:
                notes.append(f"auto-fit reduced max_model_len from {model_max} to {max_model_len}")
        else:
            notes.append(
                f"vLLM {req.release.version} has no auto-fit (0.14+): the model's {model_max} is used"
            )
    usage = _usage(req, max_model_len, behaviour)
    fit = check_fit(_checks(req, groups, projected, behaviour, per_block), usage, behaviour)

    num_blocks = min(branches[taken].num_blocks for branches, taken in staged)
    stages = []
    for rank, (branches, taken) in enumerate(staged):
        chosen = branches[taken]
        stages.append(
            StagePlan(
                pp_rank=rank,
                layer_names=tuple(req.stage_specs[rank]),
                available_bytes=req.available[rank],
                groups=tuple(shown[rank]),
                branches=branches,
                branch_taken=taken,
                num_blocks_before_unify=chosen.num_blocks,
                num_blocks=num_blocks,
                bytes_per_block=chosen.bytes_per_block,
                tensors=shrink(chosen, num_blocks, behaviour, projected[rank]),
                held_bytes_per_block=held_per_block(chosen),
            )
        )
    if any(req.kv_sharing):
        # After sizing: shared layers join their target's group and alias its tensor
        # (vLLM's add_kv_sharing_layers_to_kv_cache_groups, on the workers).
        sharing = {n: t for stage in req.kv_sharing for n, t in stage.items()}
        groups = [_with_shared(g, sharing) for g in groups]
        stages = [_stage_with_shared(st, sharing) for st in stages]
    report = None
    if groups and projected[0]:
        # <= 0.11.0 each worker logs its own count before the cross-worker minimum.
        logged = stages[0].num_blocks_before_unify if behaviour.report_before_min else num_blocks
        report = capacity(shown[0], logged, usage, behaviour, req.dcp, req.pcp, req.cache_block_size)
    return KVCachePlan(
        release=req.release,
        groups=tuple(groups),
        stages=tuple(stages),
        num_blocks=num_blocks,
        max_model_len=max_model_len,
        requested_max_model_len=requested,
        fit=fit,
        capacity=report,
        num_gpu_blocks_override=req.num_gpu_blocks_override,
        notes=tuple(notes),
    )
