"""``kvplan plan``: the main job."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from kvplan.cli.app import Command, ModelArg, app, console, debug_mode, fail, pasted_command, print_json
from kvplan.cli.options import DebugOpt, Format, FormatOpt, serving_options
from kvplan.errors import KvplanError

ExplainOpt = Annotated[
    bool, typer.Option("--explain", help="walk through the arithmetic with the real numbers")
]


@app.command(
    cls=Command, context_settings={"allow_extra_args": True}, short_help="Plan the KV cache of one model."
)
@serving_options()
def plan(
    ctx: typer.Context,
    model: ModelArg = None,
    *,
    serving: dict[str, Any],
    format: FormatOpt = Format.table,
    explain: ExplainOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Plan the KV cache: blocks per PP stage, tensors, per-layer bytes, capacity.

    `kvplan plan -- vllm serve org/model --tensor-parallel-size 4 ...` plans a
    pasted vLLM command: every flag kvplan models is used, every other one is
    named as ignored.
    """
    debug_mode(debug)
    from kvplan.api import plan as make_plan

    try:
        model, serving = pasted_command(model, list(ctx.args), serving)
        result = make_plan(model, **serving)
    except KvplanError as err:
        fail(err)
        return
    explanation = None
    if explain:
        from kvplan.render.explain import explain as explain_text

        explanation = explain_text(result)
    if format is Format.json:
        from kvplan.render.document import document

        doc = document(result)
        if explanation is not None:
            doc["explain"] = explanation
        print_json(doc)
    elif format is Format.markdown:
        from kvplan.render.markdown import plan_markdown

        sys.stdout.write(plan_markdown(result))
    else:
        from kvplan.render.table import print_plan

        print_plan(result, console())
    if explanation is not None and format is not Format.json:
        sys.stdout.write(explanation)
    if result.memory.probed is not None:
        _warn_probe(result.memory.probed, result.memory.gpu_memory_utilization)


def _warn_probe(device: Any, utilization: float) -> None:
    """Warn, as vLLM refuses to start, when the probed device's free memory is below total x utilization."""
    needed = int(device.total_bytes * utilization)
    if device.free_bytes < needed:
        sys.stderr.write(
            f"kvplan: warning: free memory on {device.name} ({device.free_bytes / (1 << 30):.2f} GiB) "
            f"is below total x gpu_memory_utilization ({needed / (1 << 30):.2f} GiB); vLLM would refuse to start\n"
        )
