"""``--explain``: the planner's arithmetic in plain words, with the plan's numbers."""

from __future__ import annotations

from kvplan.api import Plan
from kvplan.sizes import human
from kvplan.vllm.planner import StagePlan


def _stage_text(st: StagePlan, span: tuple[int, int], version: str, num_groups: int) -> list[str]:
    mem = st.available_bytes
    out = [f"Stage {st.pp_rank} (decoder layers {span[0]}..{span[1] - 1}, {human(mem)} for KV cache):"]
    ut = st.branches.get("uniform_type")
    sp = st.branches.get("shared_pool")
    un = st.branches.get("unified")
    if ut is not None and ut.applicable:
        out.append(
            f"  uniform-type branch: one tensor per layer. A block id names one page in every layer, so one block "
            f"costs the SUM of the layers' pages = {ut.bytes_per_block:,} B ({ut.divisor}). "
            f"num_blocks = {mem:,} // {ut.bytes_per_block:,} = {ut.num_blocks:,}. The divisor already "
            "counts every layer; dividing by the layer count again would count them twice."
        )
    if sp is not None and sp.applicable:
        out.append(
            f"  shared-pool branch: group_size tensors, each shared by one layer of every group. One page is one "
            f"layer's, so num_blocks = {mem:,} // page // group_size ({sp.divisor}) = {sp.num_blocks:,}. "
            "Dividing by group_size turns bytes into blocks per layer slot."
        )
    elif sp is not None:
        out.append(f"  shared-pool branch: not applicable ({sp.reason}).")
    if ut is not None and ut.applicable and sp is not None and sp.applicable:
        if ut.num_blocks == sp.num_blocks:
            out.append(
                "  Both agree: with one page size p and n layers in one group, sum(pages) = n x p, and "
                "floor(m / (n x p)) = floor(floor(m / p) / n)."
            )
        else:
            group_size = len(sp.tensors)  # one pool tensor per layer slot
            out.append(
                f"  They differ ({ut.num_blocks:,} vs {sp.num_blocks:,}): the model has {num_groups} KV cache "
                f"groups of up to {group_size} layers, each with its own block table. A block id serves one group "
                f"at a time, so it costs {group_size} pages (one per pool tensor), not one page in each of the "
                f"stage's {len(st.layer_names)} layers as the uniform-type formula would charge. vLLM uses the "
                "shared pool for such groups."
            )
    if un is not None and un.applicable:
        out.append(
            f"  0.29+ unified formula: bytes per block = the largest group's summed pages = "
            f"{un.bytes_per_block:,} B, num_blocks = {un.num_blocks:,}; it equals the uniform-type branch "
            "for one uniform-type group and the shared-pool branch for equal groups of one page size."
        )
    out.append(
        f"  vLLM {version} takes: {st.branch_taken} -> {st.num_blocks_before_unify:,} blocks on this stage."
    )
    return out


def explain(plan: Plan) -> str:
    """The explanation text for one plan."""
    version = plan.release.version
    lines = ["", "How vLLM " + version + " sizes this KV cache", "=" * 40]
    lines.append(
        "num_blocks is a count of blocks PER LAYER: block id k is one page of "
        f"{plan.block_size} tokens in every layer of the group that owns it. The memory behind one block id is "
        "therefore a page times the number of layers sharing it, and that product is what the available memory "
        "is divided by."
    )
    for st, span in zip(plan.stages, plan.layout.ranges, strict=True):
        lines.extend(_stage_text(st, span, version, len(plan.groups)))
    if len(plan.stages) > 1:
        before = ", ".join(f"{s.num_blocks_before_unify:,}" for s in plan.stages)
        lines.append(
            f"Pipeline parallelism: every stage holds different layers and its own memory, so each computes its "
            f"own count ({before}); the scheduler is shared, so every worker uses the minimum, {plan.num_blocks:,}. "
            "Memory each stage leaves idle ("
            + ", ".join(human(s.unused_bytes) for s in plan.stages)
            + "): flooring, the minimum, and any page counted for layers the stage does not hold."
        )
        if plan.release.behaviour.uniform_type and not plan.release.behaviour.project_uniform_type:
            lines.append(
                "In this release a uniform-type group keeps the WHOLE model's spec on every stage, so its "
                "summed page counts layers the stage does not hold (fixed in 0.17)."
            )
    lines.append(
        f"Block 0 is the null block, so {plan.usable_blocks:,} blocks serve requests. "
        f"{plan.kv_cache_tokens:,} tokens is what vLLM logs as the KV cache size."
    )
    fit = plan.fit
    if fit.fits:
        lines.append(
            f"One request of {plan.max_model_len:,} tokens needs {human(fit.needed_bytes)}; it fits."
        )
    else:
        lines.append(f"vLLM would refuse to start: {fit.error}")
    return "\n".join(lines) + "\n"
