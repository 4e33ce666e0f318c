"""Rich tables for ``kvplan plan``: built from the finished JSON document only."""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from kvplan.sizes import human

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


def _summary(doc: dict[str, Any]) -> Table:
    t = Table(title=f"kvplan: {doc['model']['name']} on vLLM {doc['vllm_version']}", show_header=False)
    t.add_column("what", style="bold")
    t.add_column("value")
    s = doc["serving"]
    mml = doc["max_model_len"]
    conc = doc["max_concurrency"]
    t.add_row(
        "model",
        f"{doc['model']['architecture']} ({doc['model']['family']}), {doc['model']['num_hidden_layers']} layers, {doc['model']['dtype']}",
    )
    t.add_row("parallelism", f"TP={s['tp']} PP={s['pp']} DCP={s['dcp']}")
    t.add_row(
        "KV cache dtype / block",
        f"{s['kv_cache_dtype']} / {doc['block_size']} tokens ({doc['block_size_source']})",
    )
    t.add_row("KV cache groups", str(len(doc["kv_cache_groups"])))
    t.add_row(
        "num_blocks (every worker)",
        f"{doc['num_blocks']:,} ({doc['usable_blocks']:,} usable: block 0 is the null block)",
    )
    t.add_row("KV cache tokens", f"{doc['kv_cache_tokens']:,}")
    if conc["x"] is not None:
        t.add_row("max concurrency", f"{conc['x']:.2f}x at {conc['tokens_per_request']:,} tokens per request")
    verdict = Text("fits", style="green") if mml["fits"] else Text("does NOT fit", style="bold red")
    line = Text(f"max_model_len {mml['value']:,}: ")
    line.append_text(verdict)
    if mml["estimated_max"]:
        line.append(f" (estimated maximum {mml['estimated_max']:,})")
    t.add_row("fit check", line)
    mem = doc["memory"]
    t.add_row(
        "memory", "exact (--kv-cache-memory)" if mem["exact"] else f"estimated from {mem['total_source']}"
    )
    return t


_BRANCH_TITLES = (
    ("uniform_type", "uniform-type"),
    ("shared_pool", "shared-pool"),
    ("unified", "unified (0.29+)"),
)


def _branch_cell(branch: dict[str, Any] | None, taken: bool) -> Text:
    if branch is None or not branch["applicable"]:
        return Text("n/a", style="dim")
    text = Text(f"{branch['num_blocks']:,}\n{branch['bytes_per_block']:,} B/block")
    if taken:
        text.stylize("bold")
    return text


def _stages(doc: dict[str, Any]) -> Table:
    t = Table(title="Pipeline stages, both branches side by side (per worker; blocks are per layer)")
    for col in ("stage", "decoder layers", "KV memory"):
        t.add_column(col, justify="right")
    for _, title in _BRANCH_TITLES:
        t.add_column(title, justify="right")
    t.add_column("taken")
    for col in ("num_blocks", "unused"):
        t.add_column(col, justify="right")
    several = len(doc["stages"]) > 1
    for st in doc["stages"]:
        a, b = st["decoder_layers"]
        branches = st["branches"]
        t.add_row(
            str(st["pp_rank"]),
            f"{a}..{b - 1}\n{len(st['layers'])} with KV",
            human(st["available_kv_bytes"]),
            *(_branch_cell(branches.get(key), st["branch_taken"] == key) for key, _ in _BRANCH_TITLES),
            st["branch_taken"].replace("_", "-"),
            f"{st['num_blocks']:,}\nmin of stages" if several else f"{st['num_blocks']:,}",
            human(st["unused_bytes"]),
        )
    return t


def _tensors(doc: dict[str, Any], limit: int = 12) -> Table:
    t = Table(title="KV cache tensors and the layers sharing them")
    for col in ("stage", "tensor", "size", "shared_by"):
        t.add_column(col)
    for st in doc["stages"]:
        tensors = st["kv_cache_tensors"]
        sizes = {x["size"] for x in tensors}
        if len(tensors) > 2 and len(sizes) == 1 and all(len(x["shared_by"]) == 1 for x in tensors):
            # One tensor per layer, all alike: one row says it.
            names = [x["shared_by"][0] for x in tensors]
            t.add_row(
                str(st["pp_rank"]),
                f"0..{len(tensors) - 1}",
                f"{human(tensors[0]['size'])} each",
                "one layer each: " + compact_names(names),
            )
            continue
        for i, tensor in enumerate(tensors[:limit]):
            off = f" @+{human(tensor['offset'])}" if "offset" in tensor else ""
            t.add_row(
                str(st["pp_rank"]), f"{i}{off}", human(tensor["size"]), compact_names(tensor["shared_by"])
            )
        if len(tensors) > limit:
            t.add_row(
                str(st["pp_rank"]), "...", "", f"{len(tensors) - limit} more tensors (see --format json)"
            )
    return t


def _layers(doc: dict[str, Any]) -> Table:
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
    for layer in doc["layers"]:
        key = tuple(
            layer[k]
            for k in (
                "stage",
                "type",
                "num_kv_heads",
                "head_size",
                "dtype",
                "block_size",
                "bytes_per_token",
                "page_size_bytes",
            )
        )
        if rows and rows[-1][0] == key:
            rows[-1][1].append(layer["name"])
        else:
            rows.append((key, [layer["name"]]))
    blocks = doc["num_blocks"]
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


def _memory(doc: dict[str, Any]) -> Group | None:
    mem = doc["memory"]
    t = Table(title="Memory budget per stage (estimated terms marked ~)")
    for col in ("stage", "term", "bytes", "source"):
        t.add_column(col)
    for st in mem["stages"]:
        for term in st["terms"]:
            mark = "~ " if term["estimated"] else ""
            t.add_row(str(st["pp_rank"]), term["name"], mark + human(term["bytes"]), term["source"])
        t.add_row(
            str(st["pp_rank"]), Text("KV cache memory", style="bold"), human(st["available_kv_bytes"]), ""
        )
    if mem["exact"]:
        return Group(t)
    pictures = Text("Memory picture per stage (one GPU):\n")
    for st in mem["stages"]:
        pictures.append(f"  stage {st['pp_rank']} ")
        pictures.append_text(_bar(st["picture"]))
        pictures.append("\n")
    legend = ", ".join(f"{c} {k.replace('_', ' ')}" for k, c, _ in _BAR_PARTS)
    pictures.append(f"  {legend}", style="dim")
    return Group(t, pictures)


def renderable(doc: dict[str, Any]) -> Group:
    """Every table of a plan, in reading order."""
    parts: list[Any] = [_summary(doc), _stages(doc), _tensors(doc), _layers(doc)]
    mem = _memory(doc)
    if mem is not None:
        parts.append(mem)
    mml = doc["max_model_len"]
    if not mml["fits"] and mml["error"]:
        parts.append(Text("vLLM would refuse to start: " + mml["error"], style="red"))
    if doc["log_lines"]:
        parts.append(Text("vLLM logs:\n" + "\n".join("  " + line for line in doc["log_lines"]), style="dim"))
    for note in doc["notes"]:
        parts.append(Text("note: " + note, style="yellow"))
    return Group(*parts)


def print_plan(doc: dict[str, Any], console: Console) -> None:
    """Print the plan's tables."""
    console.print(renderable(doc))
