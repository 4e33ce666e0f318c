"""``kvplan sweep``: a grid of serving setups, one plan each."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from kvplan.cli.app import app, console, debug_mode, fail, print_json
from kvplan.cli.options import DebugOpt, serving_options
from kvplan.errors import InputError, KvplanError

# The serving options a sweep varies; each takes a comma list.
AXES = ("tp", "pp", "gpu", "kv_cache_dtype", "block_size", "max_model_len")


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


@app.command()
@serving_options(lists=AXES)
def sweep(
    model: Annotated[
        str, typer.Argument(help="preset name, model YAML, config.json, model directory or hub id")
    ],
    serving: dict[str, Any],
    min_concurrency: Annotated[
        float | None, typer.Option("--min-concurrency", help="target: requests of max_model_len at once")
    ] = None,
    min_kv_tokens: Annotated[
        int | None, typer.Option("--min-kv-tokens", help="target: KV cache tokens")
    ] = None,
    sort: Annotated[SortKey, typer.Option("--sort", help="tokens, concurrency or gpus")] = SortKey.tokens,
    format: Annotated[
        SweepFormat, typer.Option("--format", help="table, json, markdown or csv")
    ] = SweepFormat.table,
    debug: DebugOpt = False,
) -> None:
    """A grid of TP x PP x GPU x KV dtype x block size x max_model_len; the cheapest fit highlighted."""
    debug_mode(debug)
    from kvplan.inputs import serving as serving_mod
    from kvplan.inputs.models import resolve_model
    from kvplan.render import sweep as render_sweep
    from kvplan.workflows import sweep as sweep_mod

    try:
        resolved = resolve_model(model)
        base = serving_mod.merge(
            resolved.serving, resolved.source, {k: v for k, v in serving.items() if k not in AXES}
        )
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
        target = sweep_mod.Target(min_concurrency=min_concurrency, min_kv_tokens=min_kv_tokens)
        result = sweep_mod.sweep(resolved, base, axes, target, sort.value)
    except KvplanError as err:
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
