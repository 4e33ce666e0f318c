"""``kvplan log`` comparisons as JSON, Markdown and a rich table."""

from __future__ import annotations

from typing import Any

from kvplan.workflows.logs import Comparison


def document(cmp: Comparison) -> dict[str, Any]:
    """The comparison as JSON."""
    f = cmp.facts
    return {
        "schema": 1,
        "log": {
            "vllm_version": f.vllm_version,
            "model": f.model,
            "tp": f.tp,
            "pp": f.pp,
            "max_model_len": f.max_model_len,
            "block_size": f.block_size,
            "kv_cache_dtype": f.kv_cache_dtype,
            "dtype": f.dtype,
            "available_gib": [a.gib_text for a in f.available],
            "kv_cache_tokens": list(f.kv_cache_tokens),
            "max_concurrency": [{"tokens_per_request": t, "x": x} for t, x in f.concurrency],
            "release_from_line_numbers": f.version_from_lines,
            "gpu_name": f.gpu_name,
            "gpu_total_gib": f.gpu_total_gib,
            "gpu_memory_utilization": f.gpu_memory_utilization,
            "max_num_batched_tokens": f.max_num_batched_tokens,
            "max_num_seqs": f.max_num_seqs,
            "quantization": f.quantization,
            "sampler": f.sampler,
            "model_loading_gib": f.weights_gib,
            "activation_gib": f.activation_gib,
            "non_torch_gib": f.non_torch_gib,
            "cuda_graph_estimate_gib": f.graph_estimate_gib,
            "started": cmp.vllm_refused is None,
            "failure": cmp.vllm_refused,
        },
        "kvplan": {
            "model": cmp.model,
            "vllm_version": cmp.vllm_version,
            "kv_cache_tokens": list(cmp.tokens_range),
            "max_concurrency": list(cmp.concurrency_range),
            "num_blocks": list(cmp.num_blocks_range),
        },
        "fields": [{"name": r.name, "log": r.log, "kvplan": r.kvplan, "status": r.status} for r in cmp.rows],
        "verdict": verdict(cmp),
        "refusal_reproduced": cmp.refusal_reproduced if cmp.vllm_refused else None,
        "differs": cmp.differs,
        "notes": list(cmp.notes),
    }


def verdict(cmp: Comparison) -> str:
    """One sentence: whether kvplan agrees with the log, or reproduces vLLM's refusal."""
    if cmp.vllm_refused:
        if cmp.kvplan_refusal:
            same = cmp.kvplan_refusal.split(".")[0] == cmp.vllm_refused.split(".")[0]
            why = "for the same reason" if same else f"with: {cmp.kvplan_refusal}"
            return f"vLLM refused to start ({cmp.vllm_refused}); kvplan reproduces the refusal {why}"
        return f"vLLM refused to start ({cmp.vllm_refused}); kvplan DIFFERS: it would start this setup"
    return "kvplan DIFFERS from the log" if cmp.differs else "kvplan agrees with the log"


def markdown(cmp: Comparison) -> str:
    """The side-by-side as Markdown."""
    lines = [
        f"### kvplan log: `{cmp.model}` on vLLM {cmp.vllm_version}",
        "",
        "| | log | kvplan | |",
        "|---|---:|---:|---|",
    ]
    for r in cmp.rows:
        mark = "**differs**" if r.status == "differs" else r.status
        lines.append(f"| {r.name} | {r.log} | {r.kvplan} | {mark} |")
    lines += ["", f"**{verdict(cmp)}**"]
    if cmp.notes:
        lines += ["", *[f"- {n}" for n in cmp.notes]]
    return "\n".join(lines) + "\n"


def print_table(cmp: Comparison, console: Any) -> None:
    """The side-by-side as a rich table; differences in red."""
    from rich.table import Table

    table = Table(title=f"kvplan log: {cmp.model} on vLLM {cmp.vllm_version}")
    for col in ("", "log says", "kvplan", ""):
        table.add_column(col)
    for r in cmp.rows:
        style = "bold red" if r.status == "differs" else ("green" if r.status == "same" else None)
        table.add_row(r.name, r.log, r.kvplan, r.status, style=style)
    console.print(table)
    for n in cmp.notes:
        console.print(f"note: {n}", markup=False, highlight=False)
    console.print(
        verdict(cmp), style="bold red" if cmp.differs else "bold green", markup=False, highlight=False
    )
