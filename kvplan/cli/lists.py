"""``kvplan presets`` and ``kvplan gpus``: the built-in presets."""

from __future__ import annotations

import sys
from typing import Any

from kvplan.cli.app import Command, app, console, print_json
from kvplan.cli.options import Format, FormatOpt


def _markdown(title: str, headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(headers) + " |"]
    lines.append("|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|")
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _print(title: str, headers: list[str], rows: list[list[str]], right: set[int], wrap: set[int]) -> None:
    from kvplan.render.fit import Col, show, table

    out = console()
    cols = [Col(h, "right" if i in right else "left", wrap=i in wrap) for i, h in enumerate(headers)]
    show(out, table(title, cols, rows, out.width, styled=out.is_terminal))


@app.command(cls=Command, short_help="The built-in model presets.")
def presets(format: FormatOpt = Format.table) -> None:
    """List the built-in model presets."""
    from kvplan.inputs import presets as presets_mod

    rows: list[dict[str, Any]] = []
    for name in presets_mod.model_names():
        info = presets_mod.model_info(name)
        cfg = info["config"]
        arch = (cfg.get("architectures") or ["?"])[0]
        rows.append(
            {"name": name, "hf_id": info.get("hf_id"), "architecture": arch, "source": info.get("source")}
        )
    if format is Format.json:
        print_json(rows)
        return
    headers = ["name", "hf_id", "architecture"]
    cells = [[r["name"], str(r["hf_id"]), r["architecture"]] for r in rows]
    if format is Format.markdown:
        sys.stdout.write(_markdown("Model presets", headers, cells, set()))
        return
    _print("Model presets", headers, cells, set(), {1, 2})


@app.command(cls=Command, short_help="The built-in GPU memory presets.")
def gpus(format: FormatOpt = Format.table) -> None:
    """List the built-in GPU memory presets (total memory as torch reports it)."""
    from kvplan.inputs import presets as presets_mod

    rows: list[dict[str, Any]] = [
        {
            "name": g.name,
            "aliases": list(g.aliases),
            "total_bytes": g.total_bytes,
            "total_gib": round(g.total_bytes / (1 << 30), 2),
            "vendor": g.vendor,
            "arch": g.arch,
            "source": g.source,
        }
        for g in presets_mod.gpus()
    ]
    if format is Format.json:
        print_json(rows)
        return
    headers = ["name", "total bytes", "GiB", "vendor", "arch"]
    cells = [
        [r["name"], f"{r['total_bytes']:,}", f"{r['total_gib']:.2f}", r["vendor"], r["arch"]] for r in rows
    ]
    if format is Format.markdown:
        sys.stdout.write(_markdown("GPU presets", headers, cells, {1, 2}))
        return
    _print("GPU presets", headers, cells, {1, 2}, {0, 3})
