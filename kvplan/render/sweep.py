"""``kvplan sweep`` results as JSON, CSV, Markdown and a rich table."""

from __future__ import annotations

from typing import Any

from kvplan.workflows.sweep import Combo, Row, SweepResult, Target


def document(result: SweepResult) -> dict[str, Any]:
    """The sweep as JSON: rows in the requested order, the best row, invalid combinations."""
    return {
        "schema": 1,
        "model": result.model,
        "vllm_version": result.vllm_version,
        "sort": result.sort,
        "target": {
            "min_concurrency": result.target.min_concurrency,
            "min_kv_tokens": result.target.min_kv_tokens,
        },
        "rows": [r.as_dict() for r in result.rows],
        "best": result.best.as_dict() if result.best else None,
        "invalid": [{**_combo_dict(i.combo), "reason": i.reason} for i in result.invalid],
    }


def _combo_dict(combo: Combo) -> dict[str, Any]:
    return {
        "tp": combo.tp,
        "pp": combo.pp,
        "gpu": combo.gpu,
        "kv_cache_dtype": combo.kv_cache_dtype,
        "block_size": combo.block_size,
        "max_model_len": combo.max_model_len,
    }


CSV_COLUMNS: tuple[str, ...] = (
    "tp",
    "pp",
    "gpus",
    "gpu",
    "kv_cache_dtype",
    "block_size",
    "max_model_len",
    "num_blocks",
    "kv_cache_tokens",
    "max_concurrency",
    "fits",
    "available_kv_bytes",
    "memory_estimated",
    "meets_target",
    "best",
    "invalid_reason",
)


def csv_text(result: SweepResult) -> str:
    """Valid rows, then invalid combinations (figures empty, reason given), as CSV."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in result.rows:
        writer.writerow({**row.as_dict(), "best": row is result.best, "invalid_reason": ""})
    for bad in result.invalid:
        writer.writerow({**_combo_dict(bad.combo), "invalid_reason": bad.reason})
    return buf.getvalue()


def _target_text(target: Target) -> str:
    parts = []
    if target.min_concurrency is not None:
        parts.append(f"concurrency >= {target.min_concurrency:g}x")
    if target.min_kv_tokens is not None:
        parts.append(f"KV tokens >= {target.min_kv_tokens:,}")
    return " and ".join(parts + ["max_model_len fits"])


def best_text(result: SweepResult) -> str:
    """One sentence naming the cheapest configuration that meets the target."""
    if result.best is None:
        return f"no configuration meets the target ({_target_text(result.target)})"
    b = result.best
    where = f"tp={b.combo.tp} pp={b.combo.pp} gpu={b.combo.gpu or '-'} kv={b.combo.kv_cache_dtype} "
    where += f"block={b.block_size} len={b.max_model_len}"
    return (
        f"cheapest meeting {_target_text(result.target)}: {where} "
        f"({b.gpus} GPUs, {b.kv_cache_tokens:,} tokens, {b.max_concurrency:.2f}x)"
    )


def row_cells(r: Row) -> list[str]:
    """One row's printed cells, in the column order of the table and the Markdown."""
    return [
        str(r.combo.tp),
        str(r.combo.pp),
        str(r.gpus),
        r.combo.gpu or "-",
        r.combo.kv_cache_dtype,
        str(r.block_size),
        f"{r.max_model_len:,}",
        f"{r.num_blocks:,}",
        f"{r.kv_cache_tokens:,}",
        f"{r.max_concurrency:.2f}x",
        "yes" if r.fits else "no",
    ]


def markdown(result: SweepResult) -> str:
    """The sweep as a Markdown table; the best row in bold."""
    lines = [
        f"### kvplan sweep: `{result.model}` on vLLM {result.vllm_version}",
        "",
        f"{best_text(result)}",
        "",
        "| TP | PP | GPUs | GPU | KV dtype | block | max_model_len | blocks | KV tokens | concurrency | fits |",
        "|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in result.rows:
        cells = row_cells(r)
        if r is result.best:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    if result.invalid:
        lines += ["", "Invalid combinations:", ""]
        lines += [f"- `{i.combo.label()}`: {i.reason}" for i in result.invalid]
    return "\n".join(lines) + "\n"


def print_table(result: SweepResult, console: Any) -> None:
    """The sweep as a rich table; the best row highlighted."""
    from rich.table import Table

    table = Table(
        title=f"kvplan sweep: {result.model} on vLLM {result.vllm_version} (sorted by {result.sort})"
    )
    for col in (
        "TP",
        "PP",
        "GPUs",
        "GPU",
        "KV dtype",
        "block",
        "max_model_len",
        "blocks",
        "KV tokens",
        "conc.",
        "fits",
    ):
        table.add_column(col, justify="right" if col not in ("GPU", "KV dtype", "fits") else "left")
    for r in result.rows:
        table.add_row(*row_cells(r), style="bold green" if r is result.best else None)
    console.print(table)
    console.print(("★ " if result.best else "") + best_text(result))
    if any(r.estimated for r in result.rows):
        console.print(
            "KV memory per worker is estimated from the GPU preset; give --kv-cache-memory for exact figures"
        )
    if result.invalid:
        console.print(f"{len(result.invalid)} invalid combinations:")
        for i in result.invalid:
            console.print(f"  {i.combo.label()}: {i.reason}", markup=False, highlight=False)
