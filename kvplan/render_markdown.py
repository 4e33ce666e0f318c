"""Markdown for PR comments and CI step summaries, from the finished JSON document."""

from __future__ import annotations

from typing import Any

from kvplan.render_table import compact_names
from kvplan.sizes import human


def plan_markdown(doc: dict[str, Any]) -> str:
    """One plan as Markdown: summary, stages, branches, tensors."""
    mml = doc["max_model_len"]
    conc = doc["max_concurrency"]
    s = doc["serving"]
    lines = [
        f"### kvplan: `{doc['model']['name']}` on vLLM {doc['vllm_version']}",
        "",
        "| | |",
        "|---|---|",
        f"| parallelism | TP={s['tp']} PP={s['pp']} DCP={s['dcp']} |",
        f"| KV cache dtype / block size | {s['kv_cache_dtype']} / {doc['block_size']} |",
        f"| num_blocks | {doc['num_blocks']:,} ({doc['usable_blocks']:,} usable) |",
        f"| KV cache tokens | {doc['kv_cache_tokens']:,} |",
    ]
    if conc["x"] is not None:
        lines.append(f"| max concurrency | {conc['x']:.2f}x at {conc['tokens_per_request']:,} tokens |")
    verdict = "fits" if mml["fits"] else f"**does not fit** (estimated max {mml['estimated_max']})"
    lines.append(f"| max_model_len {mml['value']:,} | {verdict} |")
    lines += [
        "",
        "| stage | layers | KV memory | branch | blocks before min | num_blocks |",
        "|---:|---|---:|---|---:|---:|",
    ]
    for st in doc["stages"]:
        a, b = st["decoder_layers"]
        lines.append(
            f"| {st['pp_rank']} | {a}..{b - 1} | {human(st['available_kv_bytes'])} | {st['branch_taken']} "
            f"| {st['num_blocks_before_unify']:,} | {st['num_blocks']:,} |"
        )
    lines += ["", "| stage | tensor size | shared by |", "|---:|---:|---|"]
    for st in doc["stages"]:
        for t in st["kv_cache_tensors"][:16]:
            lines.append(f"| {st['pp_rank']} | {human(t['size'])} | {compact_names(t['shared_by'])} |")
    if doc["log_lines"]:
        lines += ["", "```", *doc["log_lines"], "```"]
    return "\n".join(lines) + "\n"
