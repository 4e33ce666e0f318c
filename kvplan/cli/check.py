"""``kvplan check``: the CI gate."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from kvplan.cli.app import Command, app, debug_mode, fail, print_json
from kvplan.cli.options import DebugOpt, Format, FormatOpt, serving_options
from kvplan.errors import InputError, KvplanError

MinTokensOpt = Annotated[
    int | None, typer.Option("--min-kv-tokens", help="budget: at least this many KV cache tokens")
]
MinConcOpt = Annotated[
    float | None,
    typer.Option("--min-concurrency", help="budget: at least this many requests of max_model_len at once"),
]
MustFitOpt = Annotated[
    bool | None,
    typer.Option(
        "--max-model-len-must-fit/--max-model-len-may-not-fit",
        help="budget: one request of max_model_len must fit",
    ),
]
MinBlocksOpt = Annotated[
    int | None, typer.Option("--min-num-blocks", help="budget: at least this many blocks")
]
MaxMemOpt = Annotated[
    str | None,
    typer.Option("--max-kv-cache-memory", help="budget: KV cache per worker at most this size, e.g. 40GiB"),
]


def _write_summary(text: str) -> None:
    """Append Markdown to the GitHub Actions step summary when one is set."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")
    except OSError as exc:
        raise InputError(f"cannot append to the step summary ({exc.strerror})", source=path) from None


@app.command(cls=Command, short_help="CI gate: exit 1 when a budget fails.")
@serving_options()
def check(
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="one or more models: preset, model YAML, config.json, directory, hub id "
            "(none: the model of --vllm-args)",
            metavar="MODEL...",
            show_default=False,
        ),
    ] = None,
    *,
    serving: dict[str, Any],
    min_kv_tokens: MinTokensOpt = None,
    min_concurrency: MinConcOpt = None,
    max_model_len_must_fit: MustFitOpt = None,
    min_num_blocks: MinBlocksOpt = None,
    max_kv_cache_memory: MaxMemOpt = None,
    junit: Annotated[str | None, typer.Option("--junit", help="write JUnit XML to this path")] = None,
    format: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """CI gate: one verdict per budget and model; exit 0 when all hold, 1 when any fails."""
    debug_mode(debug)
    from kvplan.api import plan_with, resolve
    from kvplan.render import check as render_check
    from kvplan.workflows import check as check_mod

    verdicts: list[check_mod.Verdict] = []
    try:
        flag_budget = check_mod.parse_budget(
            {
                "min_kv_tokens": min_kv_tokens,
                "min_concurrency": min_concurrency,
                "max_model_len_must_fit": max_model_len_must_fit,
                "min_num_blocks": min_num_blocks,
                "max_kv_cache_memory": max_kv_cache_memory,
            },
            None,
            prefix="--",
        )
        names: list[str | None] = list(models) if models else [None]
        for name in names:
            model, options, _ = resolve(name, serving)
            budget = check_mod.merge(check_mod.parse_budget(model.budget, model.source), flag_budget)
            if budget.is_empty():
                raise InputError(
                    "no budget to check",
                    source=model.source,
                    field="budget",
                    hint="add a budget: section or give --min-kv-tokens, --min-concurrency, ...",
                )
            verdicts += check_mod.evaluate(model.label, plan_with(model, options), budget)
        if junit:
            try:
                with open(junit, "w", encoding="utf-8") as fh:
                    fh.write(render_check.junit_xml(verdicts))
            except OSError as exc:
                raise InputError(f"cannot write JUnit XML ({exc.strerror})", source=junit) from None
        md = render_check.markdown(verdicts)
        _write_summary(md)
    except KvplanError as err:
        fail(err)
        return
    if format is Format.json:
        failed = sum(not v.passed for v in verdicts)
        out = {
            "schema": 1,
            "passed": not failed,
            "failures": failed,
            "verdicts": [v.as_dict() for v in verdicts],
        }
        print_json(out)
    elif format is Format.markdown:
        sys.stdout.write(md)
    else:
        for v in verdicts:
            sys.stdout.write(v.line() + "\n")
    if any(not v.passed for v in verdicts):
        raise typer.Exit(1)
