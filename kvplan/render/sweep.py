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
        "dp": combo.dp,
        "gpu": combo.gpu,
        "kv_cache_dtype": combo.kv_cache_dtype,
        "block_size": combo.block_size,
        "max_model_len": combo.max_model_len,
    }


CSV_COLUMNS: tuple[str, ...] = (
    "tp",
    "pp",
    "dp",
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
    where = f"tp={b.combo.tp} pp={b.combo.pp} " + (f"dp={b.combo.dp} " if b.combo.dp > 1 else "")
    where += (
        f"gpu={b.combo.gpu or '-'} kv={b.combo.kv_cache_dtype} block={b.block_size} len={b.max_model_len}"
    )
    return (
        f"cheapest meeting {_target_text(result.target)}: {where} "
        f"({b.gpus} GPUs, {b.kv_cache_tokens:,} tokens, {b.max_concurrency:.2f}x)"
    )


_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (header, Markdown header, justify)
    ("TP", "TP", "right"),
    ("PP", "PP", "right"),
    ("DP", "DP", "right"),
    ("GPUs", "GPUs", "right"),
    ("GPU", "GPU", "left"),
    ("KV dtype", "KV dtype", "left"),
    ("block", "block", "right"),
    ("max_model_len", "max_model_len", "right"),
    ("blocks", "blocks", "right"),
    ("KV tokens", "KV tokens", "right"),
    ("conc.", "concurrency", "right"),
    ("fits", "fits", "left"),
)
# Columns that describe the configuration (the rest are its results).
_SETTINGS = ("TP", "PP", "DP", "GPU", "KV dtype", "block", "max_model_len")


def row_cells(r: Row) -> list[str]:
    """One row's printed cells, in the column order of ``_COLUMNS``."""
    return [
        str(r.combo.tp),
        str(r.combo.pp),
        str(r.combo.dp),
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


def _label(r: Row) -> str:
    """``tp=2 pp=1 gpu=H200 kv=fp8 block=16 len=32768`` with the values in force."""
    dp = f"dp={r.combo.dp} " if r.combo.dp > 1 else ""
    return (
        f"tp={r.combo.tp} pp={r.combo.pp} {dp}gpu={r.combo.gpu or '-'} kv={r.combo.kv_cache_dtype} "
        f"block={r.block_size} len={r.max_model_len}"
    )


def _shown_columns(result: SweepResult) -> list[int]:
    """Column indices worth a column: results always, a setting only where rows differ.

    A setting every row shares is stated once, above the table.
    """
    cells = [row_cells(r) for r in result.rows]
    shown = []
    for i, (header, _, _) in enumerate(_COLUMNS):
        if header in _SETTINGS and len({c[i] for c in cells}) <= 1:
            continue
        shown.append(i)
    return shown


def shared_settings(result: SweepResult) -> str:
    """``GPU H100-80GB, block 16, max_model_len 32,768``: the settings every row shares."""
    if not result.rows:
        return ""
    first = row_cells(result.rows[0])
    shown = set(_shown_columns(result))
    parts = [
        f"{header} {first[i]}"
        for i, (header, _, _) in enumerate(_COLUMNS)
        if header in _SETTINGS and i not in shown and not (header == "DP" and first[i] == "1")
    ]
    return ", ".join(parts)


def markdown(result: SweepResult) -> str:
    """The sweep as a Markdown table (every column; DP only when a row has it); the best row in bold."""
    dp = _COLUMNS.index(("DP", "DP", "right"))
    shown = [i for i in range(len(_COLUMNS)) if i != dp or any(r.combo.dp > 1 for r in result.rows)]
    lines = [
        f"### kvplan sweep: `{result.model}` on vLLM {result.vllm_version}",
        "",
        f"{best_text(result)}",
        "",
    ]
    lines += [
        "| " + " | ".join(_COLUMNS[i][1] for i in shown) + " |",
        "|" + "|".join("---:" if _COLUMNS[i][2] == "right" else "---" for i in shown) + "|",
    ]
    for r in result.rows:
        every = row_cells(r)
        cells = [every[i] for i in shown]
        if r is result.best:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    if result.invalid:
        lines += ["", "Invalid combinations:", ""]
        lines += [f"- `{i.combo.label()}`: {i.reason}" for i in result.invalid]
    return "\n".join(lines) + "\n"


def print_table(result: SweepResult, console: Any) -> None:
    """The sweep as a table laid out for the console's width; the best row highlighted.

    Settings every row shares go above the table; when the rest still does not
    fit, each row becomes one line of text.
    """
    from rich.text import Text

    from kvplan.render.fit import Col, Line, fits, show, table, wrap

    width = console.width
    styled = console.is_terminal
    shown = _shown_columns(result)
    cols = [Col(_COLUMNS[i][0], _COLUMNS[i][2]) for i in shown]
    every = [row_cells(r) for r in result.rows]
    rows = [[cells[i] for i in shown] for cells in every]
    title = f"kvplan sweep: {result.model} on vLLM {result.vllm_version} (sorted by {result.sort})"
    out: list[Text] = []
    drawn: list[Line] = []
    shared = shared_settings(result)
    if shared:
        out.append(Text(f"every row: {shared}"))
    if fits(cols, rows, width, compact=True):
        styles = ["bold green" if r is result.best else "" for r in result.rows]
        drawn = table(title, cols, rows, width, compact=True, row_styles=styles, styled=styled)
    else:
        out.append(Text(title))
        for r, c in zip(result.rows, every, strict=True):
            line = f"{_label(r)}: {c[3]} GPUs, {c[8]} blocks, {c[9]} tokens, {c[10]}"
            line += "" if r.fits else ", does not fit"
            best = r is result.best
            out.append(Text(("★ " if best else "  ") + line, style="bold green" if best else ""))
    after: list[Text] = []
    after.append(Text(("★ " if result.best else "") + best_text(result)))
    if any(r.estimated for r in result.rows):
        after.append(
            Text(
                "KV memory per worker is estimated from the GPU preset; give --kv-cache-memory for exact figures"
            )
        )
    if result.invalid:
        after.append(Text(f"{len(result.invalid)} invalid combinations:"))
        after += [Text(f"  {i.combo.label()}: {i.reason}") for i in result.invalid]
    lines = [line for part in out for line in wrap(part, width, styled)] + drawn
    show(console, lines + [line for part in after for line in wrap(part, width, styled)])
