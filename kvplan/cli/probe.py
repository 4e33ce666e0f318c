"""``kvplan probe``: the local CUDA devices."""

from __future__ import annotations

from typing import Any

from kvplan.cli.app import Command, app, console, debug_mode, fail, print_json
from kvplan.cli.options import DebugOpt, Format, FormatOpt
from kvplan.errors import KvplanError


@app.command(cls=Command, short_help="The local CUDA devices' memory.")
def probe(format: FormatOpt = Format.table, debug: DebugOpt = False) -> None:
    """Every visible CUDA device: name, total, free and used memory."""
    debug_mode(debug)
    from kvplan.memory import probe as probe_mod

    try:
        devices = probe_mod.devices()
    except KvplanError as err:
        fail(err)
        return
    rows: list[dict[str, Any]] = [
        {
            "index": d.index,
            "name": d.name,
            "total_bytes": d.total_bytes,
            "free_bytes": d.free_bytes,
            "used_bytes": d.total_bytes - d.free_bytes,
            "via": d.via,
        }
        for d in devices
    ]
    if format is Format.json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="CUDA devices")
    for col in ("index", "name", "total", "free", "used", "via"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["index"]),
            r["name"],
            f"{r['total_bytes'] / (1 << 30):.2f} GiB",
            f"{r['free_bytes'] / (1 << 30):.2f} GiB",
            f"{r['used_bytes'] / (1 << 30):.2f} GiB",
            r["via"],
        )
    console().print(table)
