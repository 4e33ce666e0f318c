"""Properties of the planner that hold for every model, memory and release.

Random per-layer specs (full and sliding-window attention, MLA, Mamba) are
drawn with power-of-two pages, so vLLM can always unify them by growing block
sizes; random memory per PP stage; any release kvplan knows.  The properties
are vLLM's own invariants: the KV cache never exceeds the memory, more memory
never gives fewer blocks, bigger pages never give more, tensors add up to the
blocks they hold, and where vLLM's formulas coincide the branches agree.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kvplan import api
from kvplan.errors import KvplanError, PlannerRefusal
from kvplan.inputs.presets import model_names
from kvplan.releases import KNOWN_RELEASES, resolve_release
from kvplan.render.document import document
from kvplan.vllm.planner import (
    Group,
    KVCachePlan,
    PlanRequest,
    branch_shared_pool,
    branch_unified,
    branch_uniform_type,
    plan,
)
from kvplan.vllm.specs import (
    FullAttentionSpec,
    KVCacheSpec,
    MambaSpec,
    MLAAttentionSpec,
    SlidingWindowSpec,
    UniformTypeSpecs,
)

GiB = 1 << 30
SETTINGS = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

powers = st.sampled_from
block_sizes = powers([16, 32, 64])
memory = st.integers(min_value=0, max_value=96 * GiB)


@st.composite
def attention_spec(draw: Any, heads_scale: int = 1) -> KVCacheSpec:
    """Full or sliding-window attention with power-of-two heads, head size and block."""
    common = dict(
        block_size=draw(block_sizes),
        num_kv_heads=draw(powers([1, 2, 4, 8])) * heads_scale,
        head_size=draw(powers([64, 128, 256])),
        dtype=draw(powers(["bfloat16", "float16", "fp8"])),
    )
    if draw(st.booleans()):
        return FullAttentionSpec(**common)
    return SlidingWindowSpec(**common, sliding_window=draw(powers([128, 512, 1024, 4096])))


@st.composite
def model(draw: Any) -> dict[str, Any]:
    """A model's parameters: a palette of layer kinds, the layer order, PP and memory."""
    kind = draw(st.sampled_from(["attention", "attention", "mamba-hybrid", "mla"]))
    palette: list[KVCacheSpec]
    if kind == "mla":
        palette = [
            MLAAttentionSpec(
                block_size=draw(block_sizes),
                num_kv_heads=1,
                head_size=576,
                dtype=draw(powers(["bfloat16", "fp8"])),
            )
        ]
    else:
        palette = draw(st.lists(attention_spec(), min_size=1, max_size=3))
    if kind == "mamba-hybrid":
        # vLLM pads Mamba state to the attention page so one pool serves both.
        page = max(s.page_size_bytes for s in palette)
        palette.append(
            MambaSpec(block_size=palette[0].block_size, shapes=((4, 64), (8, 64, 16)),
                      dtypes=("bfloat16", "bfloat16"), page_size_padded=page)
        )  # fmt: skip
    num_layers = draw(st.integers(min_value=1, max_value=48))
    order = draw(st.lists(st.integers(0, len(palette) - 1), min_size=num_layers, max_size=num_layers))
    pp = draw(st.integers(min_value=1, max_value=min(4, num_layers)))
    cuts = (
        sorted(draw(st.sets(st.integers(1, num_layers - 1), min_size=pp - 1, max_size=pp - 1)))
        if pp > 1
        else []
    )
    return {
        "palette": palette,
        "order": order,
        "cuts": cuts,
        "available": draw(st.lists(memory, min_size=pp, max_size=pp)),
        "release": draw(st.sampled_from(KNOWN_RELEASES)),
        "max_model_len": draw(st.integers(min_value=1, max_value=131072)),
        "disable_hybrid": draw(st.booleans()),
    }  # fmt: skip


def build(params: dict[str, Any], **changes: Any) -> PlanRequest:
    """The PlanRequest of ``model()``'s parameters (``changes`` replace fields)."""
    palette, order = params["palette"], params["order"]
    specs = {f"model.layers.{i}.self_attn.attn": palette[k] for i, k in enumerate(order)}
    names = list(specs)
    bounds = [0, *params["cuts"], len(names)]
    stages = [{n: specs[n] for n in names[a:b]} for a, b in zip(bounds, bounds[1:], strict=False)]
    request = PlanRequest(
        stage_specs=stages,
        available=params["available"],
        release=resolve_release(params["release"]),
        max_model_len=params["max_model_len"],
        max_num_batched_tokens=8192,
        disable_hybrid_kv_cache_manager=params["disable_hybrid"],
    )
    return replace(request, **changes)


def planned(request: PlanRequest) -> KVCachePlan:
    """The plan, or a skipped example where the release itself refuses the model."""
    try:
        return plan(request)
    except PlannerRefusal:
        assume(False)
        raise AssertionError("unreachable") from None


@SETTINGS
@given(model())
def test_blocks_never_exceed_memory(params: dict[str, Any]) -> None:
    """num_blocks x bytes per block <= the stage's memory, in every branch (vLLM floors)."""
    result = planned(build(params))
    for stage in result.stages:
        assert result.num_blocks <= stage.num_blocks_before_unify
        assert stage.num_blocks * stage.bytes_per_block <= stage.available_bytes
        assert stage.used_bytes <= stage.available_bytes
        for branch in stage.branches.values():
            if branch.applicable:
                assert branch.num_blocks * branch.bytes_per_block <= stage.available_bytes


@SETTINGS
@given(model(), st.lists(st.integers(min_value=0, max_value=16 * GiB), min_size=4, max_size=4))
def test_blocks_monotone_in_memory(params: dict[str, Any], extra: list[int]) -> None:
    """More memory on any stage never gives fewer blocks."""
    request = build(params)
    more = [a + e for a, e in zip(request.available, extra, strict=False)]
    assert planned(request).num_blocks <= planned(replace(request, available=more)).num_blocks


@SETTINGS
@given(model(), st.sampled_from([2, 4]))
def test_blocks_antitone_in_page_size(params: dict[str, Any], scale: int) -> None:
    """Pages ``scale`` times larger (more KV heads on every layer) never give more blocks."""
    palette = params["palette"]
    assume(all(isinstance(s, FullAttentionSpec | SlidingWindowSpec) for s in palette))
    assume(not any(isinstance(s, MLAAttentionSpec) for s in palette))
    bigger = [replace(s, num_kv_heads=s.num_kv_heads * scale) for s in palette]
    small = planned(build(params))
    large = planned(build({**params, "palette": bigger}))
    assert large.num_blocks <= small.num_blocks


@SETTINGS
@given(model(), st.integers(min_value=1, max_value=131072))
def test_fit_antitone_in_max_model_len(params: dict[str, Any], other: int) -> None:
    """A longer max_model_len needs at least as many bytes; if it fits, every shorter one fits."""
    lo, hi = sorted((params["max_model_len"], other))
    short = planned(build(params, max_model_len=lo))
    long = planned(build(params, max_model_len=hi))
    if long.fit.stage == short.fit.stage:
        assert short.fit.needed_bytes <= long.fit.needed_bytes
    if long.fit.fits:
        assert short.fit.fits
    assert short.num_blocks == long.num_blocks  # the pool does not depend on max_model_len


@SETTINGS
@given(model())
def test_tensor_sizes_add_up(params: dict[str, Any]) -> None:
    """Every stage layer is in exactly one tensor, and the tensors hold exactly the blocks paid for."""
    result = planned(build(params))
    for stage in result.stages:
        if stage.branch_taken == "none":
            continue
        branch = stage.branches[stage.branch_taken]
        members = [n for t in branch.tensors for n in t.shared_by]
        assert sorted(members) == sorted(stage.layer_names)
        paid = branch.num_blocks * branch.bytes_per_block
        if branch.name == "unified":
            assert all(t.size == paid for t in branch.tensors)
            # vLLM's layer-outer layout: each layer owns page x num_blocks contiguous bytes;
            # a group's regions follow one another and all fit in the aliased backing.
            for group in stage.groups:
                regions = [t for t in branch.tensors if set(t.shared_by) <= set(group.layer_names)]
                for t in regions:
                    page = _page(group, t.shared_by[0])
                    assert (t.layer_stride, t.block_stride) == (page * branch.num_blocks, page)
                ends = [(t.offset or 0) + len(t.shared_by) * (t.layer_stride or 0) for t in regions]
                assert max(ends, default=0) <= paid
        elif branch.name == "shared_pool" or "this stage" in branch.divisor:
            assert sum(t.size for t in branch.tensors) == paid
        else:  # 0.11-0.16 with PP: the divisor sums the whole model's pages
            assert sum(t.size for t in branch.tensors) <= paid


def _page(group: Group, layer: str) -> int:
    spec = group.spec
    if isinstance(spec, UniformTypeSpecs):
        return spec.specs[layer].page_size_bytes
    return spec.page_size_bytes


@SETTINGS
@given(attention_spec(), st.integers(min_value=1, max_value=64), memory)
def test_branches_agree_on_one_group_of_identical_layers(spec: KVCacheSpec, n: int, mem: int) -> None:
    """One group, n identical layers, page p: mem // (n x p) == mem // p // n == unified."""
    names = tuple(f"model.layers.{i}.self_attn.attn" for i in range(n))
    groups = [Group(names, spec)]
    p = spec.page_size_bytes
    uniform = branch_uniform_type(groups, mem, None)
    shared = branch_shared_pool(groups, mem, None)
    unified = branch_unified(groups, mem, None)
    assert uniform.num_blocks == mem // (n * p)
    assert shared.num_blocks == mem // p // n
    assert uniform.num_blocks == shared.num_blocks == unified.num_blocks
    assert uniform.bytes_per_block == shared.bytes_per_block == unified.bytes_per_block == n * p


@SETTINGS
@given(st.lists(attention_spec(), min_size=1, max_size=24), block_sizes, memory)
def test_unified_equals_uniform_type_on_one_uniform_type_group(
    specs: list[KVCacheSpec], block: int, mem: int
) -> None:
    """One uniform-type group (full attention of several sizes): unified == uniform-type."""
    layers = tuple(
        (f"model.layers.{i}.self_attn.attn", FullAttentionSpec(
            block_size=block, num_kv_heads=s.num_kv_heads, head_size=s.head_size, dtype=s.dtype))  # type: ignore[attr-defined]
        for i, s in enumerate(specs)
    )  # fmt: skip
    group = Group(tuple(n for n, _ in layers), UniformTypeSpecs(block, layers))
    uniform = branch_uniform_type([group], mem, None)
    unified = branch_unified([group], mem, None)
    assert uniform.num_blocks == unified.num_blocks == mem // sum(s.page_size_bytes for _, s in layers)
    assert uniform.bytes_per_block == unified.bytes_per_block


PRESETS = model_names()


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    st.sampled_from(PRESETS),
    st.sampled_from([1, 2, 4, 8]),
    st.sampled_from([1, 2, 4]),
    st.sampled_from(["auto", "fp8", "bfloat16"]),
    st.integers(min_value=1, max_value=80 * GiB),
    st.sampled_from([None, "0.10.1", "0.13.0", "0.17.0", "0.27.0"]),
)
def test_json_document_round_trips(
    preset: str, tp: int, pp: int, dtype: str, mem: int, version: str | None
) -> None:
    """The JSON document survives json.dumps/json.loads unchanged and holds no NaN or infinity."""
    flags = {
        "tp": tp,
        "pp": pp,
        "kv_cache_dtype": dtype,
        "kv_cache_memory": str(mem),
        "vllm_version": version,
    }
    try:
        result = api.plan(preset, **flags)
    except KvplanError:
        assume(False)
        return
    doc = document(result)
    text = json.dumps(doc, allow_nan=False)
    assert json.loads(text) == doc


def test_property_settings_are_modest() -> None:
    """Keep the suite quick: at most 200 examples per property."""
    assert SETTINGS.max_examples <= 200


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
