"""``kvplan presets`` and ``kvplan gpus``: the built-in presets."""

from __future__ import annotations

from typing import Any

from kvplan.cli.app import app, console, print_json
from kvplan.cli.options import Format, FormatOpt


@app.command()
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
    from rich.table import Table

    table = Table(title="Model presets")
    for col in ("name", "hf_id", "architecture"):
        table.add_column(col)
    for row in rows:
        table.add_row(row["name"], str(row["hf_id"]), row["architecture"])
    console().print(table)


@app.command()
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
    from rich.table import Table

    table = Table(title="GPU presets")
    for col in ("name", "total bytes", "GiB", "vendor", "arch"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            row["name"], f"{row['total_bytes']:,}", f"{row['total_gib']:.2f}", row["vendor"], row["arch"]
        )
    console().print(table)
