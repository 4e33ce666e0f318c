"""Rich tables for ``kvplan plan``, built from a finished ``Plan``."""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from kvplan.api import Plan
from kvplan.sizes import human
from kvplan.vllm.planner import Branch

_NUM = re.compile(r"\.(\d+)\.")


def compact_names(names: list[str]) -> str:
    """``model.layers.{0..31}.self_attn.attn`` for runs of consecutive indices."""
    if len(names) <= 2:
        return ", ".join(names)
    patterns: dict[str, list[int]] = {}
    order: list[str] = []
    for name in names:
        m = _NUM.search(name)
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
        parts.append(key.replace("{}", "{" + _ranges(idx) + "}"))
    return "; ".join(parts)


def _ranges(idx: list[int]) -> str:
    if len(idx) > 2:
        step = idx[1] - idx[0]
        if step > 0 and all(b - a == step for a, b in zip(idx, idx[1:], strict=False)):
            if step == 1:
                return f"{idx[0]}..{idx[-1]}"
            return f"{idx[0]}..{idx[-1]} step {step}"
    return ",".join(map(str, idx))


def _summary(plan: Plan) -> Table:
    d = plan.description
    t = Table(title=f"kvplan: {plan.model.label} on vLLM {plan.release.version}", show_header=False)
    t.add_column("what", style="bold")
    t.add_column("value")
    s = plan.serving
    fit = plan.fit
    t.add_row("model", f"{d.architecture} ({d.family}), {d.num_hidden_layers} layers, {d.dtype}")
    t.add_row("parallelism", f"TP={s.tp} PP={s.pp} DCP={s.dcp}")
    t.add_row(
        "KV cache dtype / block",
        f"{plan.kv_cache_dtype} / {plan.block_size} tokens ({plan.layout.block_size_note})",
    )
    t.add_row("KV cache groups", str(len(plan.groups)))
    t.add_row(
        "num_blocks (every worker)",
        f"{plan.num_blocks:,} ({plan.usable_blocks:,} usable: block 0 is the null block)",
    )
    if plan.memory_exhausted:
        t.add_row(
            "KV cache tokens",
            Text("none: vLLM refuses to start (no memory left for the KV cache)", style="bold red"),
        )
    else:
        t.add_row("KV cache tokens", f"{plan.kv_cache_tokens:,}")
    if plan.max_concurrency is not None and not plan.memory_exhausted:
        t.add_row(
            "max concurrency",
            f"{plan.max_concurrency:.2f}x at {plan.tokens_per_request:,} tokens per request",
        )
    verdict = Text("fits", style="green") if fit.fits else Text("does NOT fit", style="bold red")
    if plan.memory_exhausted:
        verdict = Text("vLLM refuses to start: no memory left for the KV cache", style="bold red")
    line = Text(f"max_model_len {plan.max_model_len:,}: ")
    line.append_text(verdict)
    if fit.estimated_max_model_len:
        line.append(f" (estimated maximum {fit.estimated_max_model_len:,})")
    t.add_row("fit check", line)
    mem = plan.memory
    t.add_row("memory", "exact (--kv-cache-memory)" if mem.exact else f"estimated from {mem.total_source}")
    return t


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


def _stages(plan: Plan) -> Table:
    t = Table(title="Pipeline stages, both branches side by side (per worker; blocks are per layer)")
    for col in ("stage", "decoder layers", "KV memory"):
        t.add_column(col, justify="right")
    for _, title in _BRANCH_TITLES:
        t.add_column(title, justify="right")
    t.add_column("taken")
    for col in ("num_blocks", "unused"):
        t.add_column(col, justify="right")
    several = len(plan.stages) > 1
    for st, (a, b) in zip(plan.stages, plan.layout.ranges, strict=True):
        t.add_row(
            str(st.pp_rank),
            f"{a}..{b - 1}\n{len(st.layer_names)} with KV",
            _kv_memory(st.available_bytes),
            *(_branch_cell(st.branches.get(key), st.branch_taken == key) for key, _ in _BRANCH_TITLES),
            st.branch_taken.replace("_", "-"),
            f"{st.num_blocks:,}\nmin of stages" if several else f"{st.num_blocks:,}",
            _kv_memory(st.unused_bytes),
        )
    return t


def _kv_memory(num_bytes: int) -> str:
    """A stage's KV cache memory; none (and how much is missing) when the budget is gone."""
    return human(num_bytes) if num_bytes >= 0 else f"none ({human(-num_bytes)} short)"


def _tensors(plan: Plan, limit: int = 12) -> Table:
    t = Table(title="KV cache tensors and the layers sharing them")
    for col in ("stage", "tensor", "size", "shared_by"):
        t.add_column(col)
    for st in plan.stages:
        tensors = st.tensors
        sizes = {x.size for x in tensors}
        if len(tensors) > 2 and len(sizes) == 1 and all(len(x.shared_by) == 1 for x in tensors):
            # One tensor per layer, all alike: one row says it.
            names = [x.shared_by[0] for x in tensors]
            t.add_row(
                str(st.pp_rank),
                f"0..{len(tensors) - 1}",
                f"{human(tensors[0].size)} each",
                "one layer each: " + compact_names(names),
            )
            continue
        for i, tensor in enumerate(tensors[:limit]):
            off = f" @+{human(tensor.offset)}" if tensor.offset is not None else ""
            t.add_row(str(st.pp_rank), f"{i}{off}", human(tensor.size), compact_names(list(tensor.shared_by)))
        if len(tensors) > limit:
            t.add_row(str(st.pp_rank), "...", "", f"{len(tensors) - limit} more tensors (see --format json)")
    return t


def _layers(plan: Plan) -> Table:
    t = Table(title="Per-layer byte budget (one TP rank)")
    for col in (
        "layers",
        "stage",
        "type",
        "KV heads",
        "head size",
        "dtype",
        "block",
        "bytes/token",
        "page bytes",
        "bytes per layer",
    ):
        t.add_column(col)
    rows: list[tuple[tuple[Any, ...], list[str]]] = []
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
        if rows and rows[-1][0] == key:
            rows[-1][1].append(layer.name)
        else:
            rows.append((key, [layer.name]))
    blocks = plan.num_blocks
    for key, names in rows:
        stage, kind, heads, head, dtype, block, bpt, page = key
        t.add_row(
            compact_names(names),
            str(stage),
            kind,
            "-" if heads is None else str(heads),
            "-" if head is None else str(head),
            str(dtype),
            str(block),
            "-" if bpt is None else f"{bpt:g}",
            f"{page:,}",
            human(page * blocks),
        )
    return t


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


def _memory(plan: Plan) -> Group:
    mem = plan.memory
    t = Table(title="Memory budget per stage (estimated terms marked ~)")
    for col in ("stage", "term", "bytes", "source"):
        t.add_column(col)
    for st in mem.stages:
        for term in st.terms:
            mark = "~ " if term.estimated else ""
            t.add_row(str(st.pp_rank), term.name, mark + human(term.bytes), term.source)
        left = human(st.available) if st.available > 0 else _kv_memory(st.available)
        t.add_row(str(st.pp_rank), Text("KV cache memory", style="bold"), left, "")
    if mem.exact:
        return Group(t)
    pictures = Text("Memory picture per stage (one GPU):\n")
    for st in mem.stages:
        pictures.append(f"  stage {st.pp_rank} ")
        pictures.append_text(_bar(plan.memory_picture(st)))
        pictures.append("\n")
    legend = ", ".join(f"{c} {k.replace('_', ' ')}" for k, c, _ in _BAR_PARTS)
    pictures.append(f"  {legend}", style="dim")
    return Group(t, pictures)


def renderable(plan: Plan) -> Group:
    """Every table of a plan, in reading order."""
    parts: list[Any] = [_summary(plan), _stages(plan), _tensors(plan), _layers(plan), _memory(plan)]
    fit = plan.fit
    if plan.memory_exhausted and fit.error:
        parts.append(
            Text("vLLM refuses to start (no memory left for the KV cache): " + fit.error, style="red")
        )
    elif not fit.fits and fit.error:
        parts.append(Text("vLLM would refuse to start: " + fit.error, style="red"))
    if plan.log_lines:
        parts.append(Text("vLLM logs:\n" + "\n".join("  " + line for line in plan.log_lines), style="dim"))
    for note in plan.all_notes:
        parts.append(Text("note: " + note, style="yellow"))
    return Group(*parts)


def print_plan(plan: Plan, console: Console) -> None:
    """Print the plan's tables."""
    console.print(renderable(plan))
