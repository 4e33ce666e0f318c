"""The tables of ``kvplan plan``, built from a finished ``Plan`` and laid out for a width."""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.text import Text

from kvplan.api import Plan
from kvplan.render.fit import Cell, Col, Line, fits, show, table, wrap
from kvplan.sizes import human
from kvplan.vllm.planner import Branch, Tensor

_NUM = r"\.(\d+)\."


def compact_names(names: list[str], sep: str = ",") -> str:
    """``model.layers.{0..31}.self_attn.attn`` for runs of consecutive indices.

    ``sep`` joins the indices of a list (``{0,7,14}``); tables use ``", "`` so a
    long list wraps between indices, never inside one.
    """
    if len(names) <= 2:
        return ", ".join(names)
    patterns: dict[str, list[int]] = {}
    order: list[str] = []
    for name in names:
        m = re.search(_NUM, name)
        if not m:
            return ", ".join(names[:3]) + (f", ... ({len(names)} layers)" if len(names) > 3 else "")
        key = name[: m.start(1)] + "{}" + name[m.end(1) :]
        if key not in patterns:
            patterns[key] = []
            order.append(key)
        patterns[key].append(int(m.group(1)))
    parts = []
    for key in order:
        idx = patterns[key]
        parts.append(key.replace("{}", "{" + _ranges(idx, sep) + "}"))
    return "; ".join(parts)


def _ranges(idx: list[int], sep: str = ",") -> str:
    if len(idx) > 2:
        step = idx[1] - idx[0]
        if step > 0 and all(b - a == step for a, b in zip(idx, idx[1:], strict=False)):
            if step == 1:
                return f"{idx[0]}..{idx[-1]}"
            return f"{idx[0]}..{idx[-1]} step {step}"
    # Runs of three or more consecutive indices as a..b.
    runs: list[list[int]] = []
    for i in idx:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    parts = [f"{r[0]}..{r[-1]}" if len(r) > 2 else sep.join(map(str, r)) for r in runs]
    return sep.join(parts)


def _summary(plan: Plan, width: int, styled: bool = False) -> list[Line]:
    d = plan.description
    rows: list[list[Any]] = []
    s = plan.serving
    fit = plan.fit
    rows.append(["model", f"{d.architecture} ({d.family}), {d.num_hidden_layers} layers, {d.dtype}"])
    parallel = f"TP={s.tp} PP={s.pp} DCP={s.dcp}"
    if s.dp > 1:
        parallel += f" DP={s.dp} ({s.dp} engines, each as below; {s.gpus} GPUs)"
    if s.enable_expert_parallel:
        parallel += f", experts over {s.expert_parallel_size} ranks (EP)"
    rows.append(["parallelism", parallel])
    rows.append(
        [
            "KV cache dtype / block",
            f"{plan.kv_cache_dtype} / {plan.block_size} tokens ({plan.layout.block_size_note})",
        ]
    )
    rows.append(["KV cache groups", str(len(plan.groups))])
    rows.append(
        [
            "num_blocks (every worker)",
            f"{plan.num_blocks:,} ({plan.usable_blocks:,} usable: block 0 is the null block)",
        ]
    )
    if plan.memory_exhausted:
        rows.append(
            [
                "KV cache tokens",
                Text("none: vLLM refuses to start (no memory left for the KV cache)", style="bold red"),
            ]
        )
    else:
        refused = "" if fit.fits else " (vLLM logs none: it refuses to start)"
        rows.append(["KV cache tokens", f"{plan.kv_cache_tokens:,}{refused}"])
    if plan.max_concurrency is not None and not plan.memory_exhausted:
        rows.append(
            [
                "max concurrency",
                f"{plan.max_concurrency:.2f}x at {plan.tokens_per_request:,} tokens per request",
            ]
        )
    verdict = Text("fits", style="green") if fit.fits else Text("does NOT fit", style="bold red")
    if plan.memory_exhausted:
        verdict = Text("vLLM refuses to start: no memory left for the KV cache", style="bold red")
    line = Text(f"max_model_len {plan.max_model_len:,}: ")
    line.append_text(verdict)
    if fit.estimated_max_model_len:
        line.append(f" (estimated maximum {fit.estimated_max_model_len:,})")
    over = plan.override_excess_bytes
    if over and fit.fits:
        line.append(f" in the overridden memory, {human(over)} more than available", style="yellow")
    rows.append(["fit check", line])
    mem = plan.memory
    rows.append(
        ["memory", "exact (--kv-cache-memory)" if mem.exact else f"estimated from {mem.total_source}"]
    )
    title = f"kvplan: {plan.model.label} on vLLM {plan.release.version}"
    return table(
        title,
        [Col("what", style="bold"), Col("value", wrap=True)],
        rows,
        width,
        show_header=False,
        styled=styled,
    )


_BRANCH_TITLES = (
    ("uniform_type", "uniform-type"),
    ("shared_pool", "shared-pool"),
    ("unified", "unified (0.29+)"),
)


def _branch_cell(branch: Branch | None, taken: bool) -> Text:
    if branch is None or not branch.applicable:
        return Text("n/a", style="dim")
    text = Text(f"{branch.num_blocks:,}\n{branch.bytes_per_block:,} B/block")
    if taken:
        text.stylize("bold")
    return text


def _kv_memory(num_bytes: int) -> str:
    """A stage's KV cache memory; none (and how much is missing) when the budget is gone."""
    return human(num_bytes) if num_bytes >= 0 else f"none ({human(-num_bytes)} short)"


def _unused(st: Any) -> str:
    # No memory at all: none, and how short; an override above the memory: over by that much.
    if st.available_bytes < 0:
        return _kv_memory(st.unused_bytes)
    return human(st.unused_bytes) if st.unused_bytes >= 0 else f"over {human(-st.unused_bytes)}"


def _stages(plan: Plan, width: int, styled: bool = False) -> list[list[Line]]:
    several = len(plan.stages) > 1
    title = "Pipeline stages, both branches side by side (per worker; blocks are per layer)"
    wide_cols = [
        Col("stage", "right"),
        Col("decoder layers", "right"),
        Col("KV memory", "right"),
        *(Col(t, "right") for _, t in _BRANCH_TITLES),
        Col("taken"),
        Col("num_blocks", "right"),
        Col("unused", "right"),
    ]
    wide_rows: list[list[Cell]] = []
    for st, (a, b) in zip(plan.stages, plan.layout.ranges, strict=True):
        wide_rows.append(
            [
                str(st.pp_rank),
                f"{a}..{b - 1}\n{len(st.layer_names)} with KV",
                _kv_memory(st.available_bytes),
                *(_branch_cell(st.branches.get(key), st.branch_taken == key) for key, _ in _BRANCH_TITLES),
                st.branch_taken.replace("_", "-"),
                f"{st.num_blocks:,}\nmin of stages" if several else f"{st.num_blocks:,}",
                _unused(st),
            ]
        )
    if fits(wide_cols, wide_rows, width):
        return [table(title, wide_cols, wide_rows, width, styled=styled)]
    # Narrow: one table of stages, one of the branches (a row each), both whole figures.
    stage_cols = [
        Col("stage", "right"),
        Col("layers", "right", wrap=True),
        Col("KV memory", "right"),
        Col("taken"),
        Col("num_blocks", "right"),
        Col("unused", "right"),
    ]
    stage_rows = [
        [
            str(st.pp_rank),
            f"{a}..{b - 1}\n{len(st.layer_names)} with KV",
            _kv_memory(st.available_bytes),
            st.branch_taken.replace("_", "-"),
            f"{st.num_blocks:,}\nmin of stages" if several else f"{st.num_blocks:,}",
            _unused(st),
        ]
        for st, (a, b) in zip(plan.stages, plan.layout.ranges, strict=True)
    ]
    branch_cols = [
        Col("stage", "right"),
        Col("branch"),
        Col("num_blocks", "right"),
        Col("B per block", "right"),
    ]
    branch_rows = []
    for st in plan.stages:
        for key, name in _BRANCH_TITLES:
            branch = st.branches.get(key)
            if branch is None:
                continue
            mark = " (taken)" if st.branch_taken == key else ""
            if branch.applicable:
                figures = [f"{branch.num_blocks:,}", f"{branch.bytes_per_block:,}"]
            else:
                figures = ["n/a", ""]
            branch_rows.append([str(st.pp_rank), name + mark, *figures])
    return [
        table(
            "Pipeline stages (per worker; blocks are per layer)", stage_cols, stage_rows, width, styled=styled
        ),
        table("Both sizing branches, side by side", branch_cols, branch_rows, width, styled=styled),
    ]


def _sharers(tensor: Tensor) -> str:
    names = compact_names(list(tensor.shared_by), ", ")
    if tensor.aliased_by:
        names += "; read by shared layers " + compact_names(list(tensor.aliased_by), ", ")
    return names


def _tensors(plan: Plan, width: int, styled: bool = False, limit: int = 12) -> list[Line]:
    cols = [Col("stage"), Col("tensor"), Col("size", "right"), Col("shared_by", wrap=True)]
    rows: list[list[str]] = []
    for st in plan.stages:
        tensors = st.tensors
        sizes = {x.size for x in tensors}
        if len(tensors) > 2 and len(sizes) == 1 and all(len(x.shared_by) == 1 for x in tensors):
            # One tensor per layer, all alike: one row says it.
            names = [x.shared_by[0] for x in tensors]
            rows.append(
                [
                    str(st.pp_rank),
                    f"0..{len(tensors) - 1}",
                    f"{human(tensors[0].size)} each",
                    "one layer each: " + compact_names(names, ", "),
                ]
            )
            continue
        for i, tensor in enumerate(tensors[:limit]):
            off = f" @+{human(tensor.offset)}" if tensor.offset is not None else ""
            rows.append(
                [
                    str(st.pp_rank),
                    f"{i}{off}",
                    human(tensor.size),
                    _sharers(tensor),
                ]
            )
        if len(tensors) > limit:
            rows.append(
                [str(st.pp_rank), "...", "", f"{len(tensors) - limit} more tensors (see --format json)"]
            )
    return table("KV cache tensors and the layers sharing them", cols, rows, width, styled=styled)


def _layers(plan: Plan, width: int, styled: bool = False) -> list[Line]:
    # Layers alike (same stage and spec) share a row, wherever they sit in the model.
    groups: dict[tuple[Any, ...], list[str]] = {}
    for layer in plan.layers:
        key = (
            layer.stage,
            layer.type,
            layer.num_kv_heads,
            layer.head_size,
            layer.dtype,
            layer.block_size,
            layer.bytes_per_token,
            layer.page_size_bytes,
        )
        groups.setdefault(key, []).append(layer.name)
    blocks = plan.num_blocks
    title = "Per-layer byte budget (one TP rank)"
    cols = [
        Col("layers", wrap=True),
        Col("stage", "right"),
        Col("type"),
        Col("KV heads", "right"),
        Col("head size", "right"),
        Col("dtype"),
        Col("block", "right"),
        Col("bytes/token", "right"),
        Col("page bytes", "right"),
        Col("bytes per layer", "right"),
    ]
    rows = []
    for key, names in groups.items():
        stage, kind, heads, head, dtype, block, bpt, page = key
        rows.append(
            [
                compact_names(names, ", "),
                str(stage),
                kind,
                "-" if heads is None else str(heads),
                "-" if head is None else str(head),
                str(dtype),
                str(block),
                "-" if bpt is None else f"{bpt:g}",
                f"{page:,}",
                human(page * blocks),
            ]
        )
    if fits(cols, rows, width):
        return table(title, cols, rows, width, styled=styled)
    # Narrow: the names in one column, the spec as lines beside them.
    narrow = []
    for (stage, kind, heads, head, dtype, block, bpt, page), names in groups.items():
        shape = f"{heads} KV heads x {head}, " if heads is not None else ""
        per_token = f"{bpt:g} B/token, " if bpt is not None else ""
        narrow.append(
            [
                compact_names(names, ", "),
                f"{kind}, stage {stage}\n{shape}{dtype}\nblock {block}: {per_token}{page:,} B/page\n"
                f"{human(page * blocks)} per layer",
            ]
        )
    return table(title, [Col("layers", wrap=True), Col("spec")], narrow, width, styled=styled)


_BAR_PARTS = (
    ("weights", "W", "blue"),
    ("activation", "A", "magenta"),
    ("non_torch", "N", "white"),
    ("cuda_graphs", "G", "cyan"),
    ("kv_cache", "K", "green"),
    ("unused_kv", "u", "yellow"),
    ("outside_utilization", ".", "dim"),
)
_BAR_WIDTH = 60


def _bar(picture: dict[str, int]) -> Text:
    whole = sum(max(v, 0) for v in picture.values()) or 1
    bar = Text()
    for key, char, style in _BAR_PARTS:
        width = round(_BAR_WIDTH * max(picture.get(key, 0), 0) / whole)
        bar.append(char * width, style=style)
    return bar


def _memory(plan: Plan, width: int, styled: bool = False) -> list[list[Line]]:
    mem = plan.memory
    title = "Memory budget per stage (estimated terms marked ~)"
    cols = [Col("stage"), Col("term", wrap=True), Col("bytes", "right"), Col("source", wrap=True)]
    rows: list[list[Any]] = []
    for st in mem.stages:
        for term in st.terms:
            mark = "~ " if term.estimated else ""
            rows.append([str(st.pp_rank), term.name, mark + human(term.bytes), term.source])
        left = human(st.available) if st.available > 0 else _kv_memory(st.available)
        rows.append([str(st.pp_rank), Text("KV cache memory", style="bold"), left, ""])
    if width < 100:
        # Narrow: the source under its term, so the prose gets the width.
        cols = [Col("stage"), Col("term and source", wrap=True), Col("bytes", "right")]
        narrow: list[list[Any]] = []
        for stage, term, size, source in rows:
            cell = Text(term) if isinstance(term, str) else term.copy()
            if source:
                cell.append("\n" + source, style="dim")
            narrow.append([stage, cell, size])
        rows = narrow
    t = table(title, cols, rows, width, styled=styled)
    if mem.exact:
        return [t]
    pictures = Text("Memory picture per stage (one GPU):\n")
    for st in mem.stages:
        pictures.append(f"  stage {st.pp_rank} ")
        pictures.append_text(_bar(plan.memory_picture(st)))
        pictures.append("\n")
    legend = ", ".join(f"{c} {k.replace('_', ' ')}" for k, c, _ in _BAR_PARTS)
    pictures.append(f"  {legend}", style="dim")
    return [t, wrap(pictures, width, styled)]


def renderable(plan: Plan, width: int = 80, styled: bool = False) -> list[Line]:
    """Every table of a plan, in reading order, laid out for ``width`` columns, as lines
    (styled ``Text`` for a terminal, plain strings otherwise)."""
    tables: list[list[Line]] = [
        _summary(plan, width, styled),
        *_stages(plan, width, styled),
        _tensors(plan, width, styled),
        _layers(plan, width, styled),
        *_memory(plan, width, styled),
    ]
    prose: list[Text] = []
    fit = plan.fit
    if plan.memory_exhausted and fit.error:
        prose.append(
            Text("vLLM refuses to start (no memory left for the KV cache): " + fit.error, style="red")
        )
    elif not fit.fits and fit.error:
        prose.append(Text("vLLM would refuse to start: " + fit.error, style="red"))
    if plan.log_lines:
        prose.append(Text("vLLM logs:\n" + "\n".join("  " + line for line in plan.log_lines), style="dim"))
    for note in plan.all_notes:
        prose.append(Text("note: " + note, style="yellow"))
    lines = [line for lines_of in tables for line in lines_of]
    return lines + [line for text in prose for line in wrap(text, width, styled)]


def print_plan(plan: Plan, console: Console) -> None:
    """Print the plan's tables, laid out for the console's width."""
    show(console, renderable(plan, console.width, console.is_terminal))
