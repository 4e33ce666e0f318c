"""``kvplan verify``: kvplan's plan next to vLLM's own, built with the vLLM installed here."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from kvplan.cli.app import ModelArg, app, console, debug_mode, fail, print_json
from kvplan.cli.options import DebugOpt, Format, FormatOpt, serving_options
from kvplan.errors import KvplanError

TimeoutOpt = Annotated[float, typer.Option("--timeout", help="seconds vLLM's build may take")]


@app.command()
@serving_options()
def verify(
    model: ModelArg,
    serving: dict[str, Any],
    timeout: TimeoutOpt = 900.0,
    format: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """Hold the plan against vLLM's own code.

    Builds vLLM's own model on the meta device (no GPU needed) with the vLLM
    installed here, runs its planner, and compares every figure.  Exits 0 when every figure agrees, 1 with the differences, 3 when vLLM or torch is not installed.
    """
    debug_mode(debug)
    from kvplan.api import plan as make_plan
    from kvplan.workflows import verify as verify_mod

    try:
        verify_mod.vllm_available()
        result = make_plan(model, **serving)
        check = verify_mod.compare(result, verify_mod.run_vllm(result, timeout))
    except KvplanError as err:
        fail(err)
        return
    if format is Format.json:
        print_json(
            {
                "schema": 1,
                "identical": not check.differences,
                "vllm": check.environment.get("versions", {}),
                "rows": [r.__dict__ for r in check.rows],
            }
        )
    else:
        from kvplan.render.verify import lines

        out = console()
        for line in lines(check, markdown=format is Format.markdown):
            out.print(line)
    if check.differences:
        raise typer.Exit(1)
    sys.stdout.flush()
