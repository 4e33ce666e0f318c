"""``kvplan log``: a vLLM startup log re-planned, side by side."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from kvplan.cli.app import Command, app, console, debug_mode, fail, print_json
from kvplan.cli.options import DebugOpt, Format, FormatOpt, serving_options
from kvplan.errors import InputError, KvplanError


@app.command(cls=Command, short_help="Re-plan a vLLM startup log, side by side.")
@serving_options()
def log(
    file: Annotated[str, typer.Argument(help="a vLLM startup log, or - for stdin")],
    serving: dict[str, Any],
    model: Annotated[
        str | None, typer.Option("--model", help="the model, when the log names none or one kvplan lacks")
    ] = None,
    format: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """Re-plan a vLLM startup log and show, side by side, what it says and what kvplan computes.

    Exits 1 when the log's KV cache size or concurrency lies outside kvplan's range.
    """
    debug_mode(debug)
    from kvplan.render import log as render_log
    from kvplan.workflows import logs

    try:
        facts = logs.parse(logs.read_log(file))
        if not facts.available and not facts.kv_cache_tokens and not facts.concurrency:
            raise InputError(
                "no KV cache lines found (GPU KV cache size, Available KV cache memory)",
                source=file,
                hint="pass a vLLM V1 engine startup log",
            )
        cmp = logs.compare(facts, serving, model)
    except KvplanError as err:
        fail(err)
        return
    if format is Format.json:
        print_json(render_log.document(cmp))
    elif format is Format.markdown:
        sys.stdout.write(render_log.markdown(cmp))
    else:
        render_log.print_table(cmp, console())
    if cmp.differs:
        raise typer.Exit(1)
