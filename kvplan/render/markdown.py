"""Markdown for PR comments and CI step summaries, from a finished ``Plan``."""

from __future__ import annotations

from kvplan.api import Plan
from kvplan.render.table import compact_names
from kvplan.sizes import human


def _kv(num_bytes: int) -> str:
    return human(num_bytes) if num_bytes >= 0 else f"none ({human(-num_bytes)} short)"


def plan_markdown(plan: Plan) -> str:
    """One plan as Markdown: summary, stages, branches, tensors."""
    fit = plan.fit
    s = plan.serving
    lines = [
        f"### kvplan: `{plan.model.label}` on vLLM {plan.release.version}",
        "",
        "| | |",
        "|---|---|",
        f"| parallelism | TP={s.tp} PP={s.pp} DCP={s.dcp} |",
        f"| KV cache dtype / block size | {plan.kv_cache_dtype} / {plan.block_size} |",
        f"| num_blocks | {plan.num_blocks:,} ({plan.usable_blocks:,} usable) |",
        f"| KV cache tokens | {plan.kv_cache_tokens:,} |"
        if not plan.memory_exhausted
        else "| KV cache tokens | none: vLLM refuses to start (no memory left for the KV cache) |",
    ]
    if plan.max_concurrency is not None and not plan.memory_exhausted:
        lines.append(
            f"| max concurrency | {plan.max_concurrency:.2f}x at {plan.tokens_per_request:,} tokens |"
        )
    verdict = "fits" if fit.fits else f"**does not fit** (estimated max {fit.estimated_max_model_len})"
    if plan.memory_exhausted:
        verdict = "**vLLM refuses to start**: no memory left for the KV cache"
    lines.append(f"| max_model_len {plan.max_model_len:,} | {verdict} |")
    lines += [
        "",
        "| stage | layers | KV memory | branch | blocks before min | num_blocks |",
        "|---:|---|---:|---|---:|---:|",
    ]
    for st, (a, b) in zip(plan.stages, plan.layout.ranges, strict=True):
        lines.append(
            f"| {st.pp_rank} | {a}..{b - 1} | {_kv(st.available_bytes)} | {st.branch_taken} "
            f"| {st.num_blocks_before_unify:,} | {st.num_blocks:,} |"
        )
    lines += ["", "| stage | tensor size | shared by |", "|---:|---:|---|"]
    for st in plan.stages:
        for t in st.tensors[:16]:
            names = compact_names(list(t.shared_by))
            if t.aliased_by:
                names += f"; read by shared layers {compact_names(list(t.aliased_by))}"
            lines.append(f"| {st.pp_rank} | {human(t.size)} | {names} |")
    if plan.log_lines:
        lines += ["", "```", *plan.log_lines, "```"]
    return "\n".join(lines) + "\n"
