"""``kvplan sweep``: a grid of serving setups, one plan each."""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from typing import Annotated, Any

import typer

from kvplan.cli.app import Command, ModelArg, app, console, debug_mode, fail, pasted_command, print_json
from kvplan.cli.options import DebugOpt, serving_options
from kvplan.errors import InputError, KvplanError

# The serving options a sweep varies; each takes a comma list.
AXES = ("tp", "pp", "dp", "gpu", "kv_cache_dtype", "block_size", "max_model_len")


class SweepFormat(StrEnum):
    """Output formats of ``sweep``."""

    table = "table"
    json = "json"
    markdown = "markdown"
    csv = "csv"


class SortKey(StrEnum):
    """Row orders of ``sweep``."""

    tokens = "tokens"
    concurrency = "concurrency"
    gpus = "gpus"


class _Progress:
    """A rich progress bar on stderr, drawn only once a sweep has run for a second."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if done == total or time.monotonic() - self.start < 1.0 or not sys.stderr.isatty():
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self.bar = Progress(
                "sweep",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("sweep", total=total)
        self.bar.update(self.task, completed=done)
        if done == total:
            self.close()

    def close(self) -> None:
        """Take the bar off the screen."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


@app.command(
    cls=Command,
    context_settings={"allow_extra_args": True},
    short_help="One plan per combination of a grid.",
)
@serving_options(lists=AXES)
def sweep(
    ctx: typer.Context,
    model: ModelArg = None,
    *,
    serving: dict[str, Any],
    min_concurrency: Annotated[
        float | None,
        typer.Option("--min-concurrency", help="target: requests of max_model_len at once", metavar="X"),
    ] = None,
    min_kv_tokens: Annotated[
        int | None, typer.Option("--min-kv-tokens", help="target: KV cache tokens", metavar="N")
    ] = None,
    sort: Annotated[SortKey, typer.Option("--sort", help="tokens, concurrency or gpus")] = SortKey.tokens,
    max_configurations: Annotated[
        int,
        typer.Option("--max-configurations", help="refuse grids larger than this", metavar="N"),
    ] = 10_000,
    format: Annotated[
        SweepFormat, typer.Option("--format", help="table, json, markdown or csv")
    ] = SweepFormat.table,
    debug: DebugOpt = False,
) -> None:
    """A grid of TP x PP x DP x GPU x KV dtype x block size x max_model_len; the cheapest fit marked.

    GPUs per configuration: TP x PP x DP.  Give any axis as a comma list.
    """
    debug_mode(debug)
    from kvplan.api import resolve
    from kvplan.render import sweep as render_sweep
    from kvplan.workflows import sweep as sweep_mod

    progress = _Progress()
    try:
        model, serving = pasted_command(model, list(ctx.args), serving)
        resolved, base, _ = resolve(model, {k: v for k, v in serving.items() if k not in AXES})
        axes = sweep_mod.axis_values({axis: serving.get(axis) for axis in AXES}, base)
        if (
            axes["gpu"] == [None]
            and base.gpu_memory is None
            and base.kv_cache_memory is None
            and not base.probe
        ):
            raise InputError(
                "no memory figure for the sweep",
                field="gpu",
                hint="give --gpu H100-80GB,H200 (estimated) or --kv-cache-memory SIZE (exact)",
            )
        if min_concurrency is not None and not min_concurrency >= 0:
            raise InputError("must be >= 0", field="--min-concurrency", value=min_concurrency)
        if min_kv_tokens is not None and min_kv_tokens < 0:
            raise InputError("must be >= 0", field="--min-kv-tokens", value=min_kv_tokens)
        if max_configurations < 1:
            raise InputError("must be >= 1", field="--max-configurations", value=max_configurations)
        target = sweep_mod.Target(min_concurrency=min_concurrency, min_kv_tokens=min_kv_tokens)
        result = sweep_mod.sweep(resolved, base, axes, target, sort.value, progress, max_configurations)
    except KvplanError as err:
        progress.close()
        fail(err)
        return
    if format is SweepFormat.json:
        print_json(render_sweep.document(result))
    elif format is SweepFormat.csv:
        sys.stdout.write(render_sweep.csv_text(result))
    elif format is SweepFormat.markdown:
        sys.stdout.write(render_sweep.markdown(result))
    else:
        render_sweep.print_table(result, console())
