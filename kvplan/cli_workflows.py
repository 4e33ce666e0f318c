"""Operator workflow commands (check, sweep, log), registered on the main app.

Kept apart from ``cli.py`` so the ``plan`` path imports nothing it does not use:
command bodies import their modules lazily.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from kvplan.cli import (
    _DEBUG,
    BlockOpt,
    DebugOpt,
    DtypeOpt,
    Format,
    FormatOpt,
    GpuMemOpt,
    GpuOpt,
    KvMemOpt,
    LenOpt,
    MnbtOpt,
    MnsOpt,
    NoHybridOpt,
    OverrideOpt,
    PpOpt,
    ProbeOpt,
    TpOpt,
    UtilOpt,
    VersionOpt,
    _console,
    _fail,
    _print_json,
    app,
    plan_flags,
)
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


@app.command()
def check(
    models: Annotated[
        list[str],
        typer.Argument(help="one or more models: preset, model YAML, config.json, directory, hub id"),
    ],
    min_kv_tokens: MinTokensOpt = None,
    min_concurrency: MinConcOpt = None,
    max_model_len_must_fit: MustFitOpt = None,
    min_num_blocks: MinBlocksOpt = None,
    max_kv_cache_memory: MaxMemOpt = None,
    tp: TpOpt = None,
    pp: PpOpt = None,
    gpu: GpuOpt = None,
    gpu_memory: GpuMemOpt = None,
    probe: ProbeOpt = False,
    gpu_memory_utilization: UtilOpt = None,
    kv_cache_memory: KvMemOpt = None,
    max_model_len: LenOpt = None,
    block_size: BlockOpt = None,
    kv_cache_dtype: DtypeOpt = None,
    num_gpu_blocks_override: OverrideOpt = None,
    disable_hybrid_kv_cache_manager: NoHybridOpt = None,
    max_num_batched_tokens: MnbtOpt = None,
    max_num_seqs: MnsOpt = None,
    vllm_version: VersionOpt = None,
    junit: Annotated[str | None, typer.Option("--junit", help="write JUnit XML to this path")] = None,
    format: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """CI gate: one verdict per budget and model; exit 0 when all hold, 1 when any fails."""
    _DEBUG["on"] = debug
    from kvplan import assemble, report
    from kvplan import check as check_mod
    from kvplan.inputs import resolve_model

    flags = plan_flags(
        tp=tp,
        pp=pp,
        gpu=gpu,
        gpu_memory=gpu_memory,
        probe=probe,
        gpu_memory_utilization=gpu_memory_utilization,
        kv_cache_memory=kv_cache_memory,
        max_model_len=max_model_len,
        block_size=block_size,
        kv_cache_dtype=kv_cache_dtype,
        num_gpu_blocks_override=num_gpu_blocks_override,
        disable_hybrid_kv_cache_manager=disable_hybrid_kv_cache_manager,
        max_num_batched_tokens=max_num_batched_tokens,
        max_num_seqs=max_num_seqs,
        vllm_version=vllm_version,
    )
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
        for name in models:
            model = resolve_model(name)
            budget = check_mod.merge(check_mod.parse_budget(model.budget, model.source), flag_budget)
            if budget.is_empty():
                raise InputError(
                    "no budget to check",
                    source=model.source,
                    field="budget",
                    hint="add a budget: section or give --min-kv-tokens, --min-concurrency, ...",
                )
            doc = report.document(assemble.run(model, flags))
            verdicts += check_mod.evaluate(model.label, doc, budget)
        if junit:
            try:
                with open(junit, "w", encoding="utf-8") as fh:
                    fh.write(check_mod.junit_xml(verdicts))
            except OSError as exc:
                raise InputError(f"cannot write JUnit XML ({exc.strerror})", source=junit) from None
        md = check_mod.markdown(verdicts)
        _write_summary(md)
    except KvplanError as err:
        _fail(err)
        return
    if format is Format.json:
        failed = sum(not v.passed for v in verdicts)
        out = {
            "schema": 1,
            "passed": not failed,
            "failures": failed,
            "verdicts": [v.as_dict() for v in verdicts],
        }
        _print_json(out)
    elif format is Format.markdown:
        sys.stdout.write(md)
    else:
        for v in verdicts:
            sys.stdout.write(v.line() + "\n")
    if any(not v.passed for v in verdicts):
        raise typer.Exit(1)


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
def sweep(
    model: Annotated[
        str, typer.Argument(help="preset name, model YAML, config.json, model directory or hub id")
    ],
    tp: Annotated[str | None, typer.Option("--tp", help="TP sizes, e.g. 1,2,4,8")] = None,
    pp: Annotated[str | None, typer.Option("--pp", help="PP sizes, e.g. 1,2")] = None,
    gpu: Annotated[str | None, typer.Option("--gpu", help="GPU presets, e.g. H100-80GB,H200")] = None,
    kv_cache_dtype: Annotated[str | None, typer.Option("--kv-cache-dtype", help="e.g. auto,fp8")] = None,
    block_size: Annotated[str | None, typer.Option("--block-size", help="e.g. 16,32")] = None,
    max_model_len: Annotated[str | None, typer.Option("--max-model-len", help="e.g. 8192,32768")] = None,
    min_concurrency: Annotated[
        float | None, typer.Option("--min-concurrency", help="target: requests of max_model_len at once")
    ] = None,
    min_kv_tokens: Annotated[
        int | None, typer.Option("--min-kv-tokens", help="target: KV cache tokens")
    ] = None,
    sort: Annotated[SortKey, typer.Option("--sort", help="tokens, concurrency or gpus")] = SortKey.tokens,
    gpu_memory: GpuMemOpt = None,
    gpu_memory_utilization: UtilOpt = None,
    kv_cache_memory: KvMemOpt = None,
    max_num_batched_tokens: MnbtOpt = None,
    max_num_seqs: MnsOpt = None,
    vllm_version: VersionOpt = None,
    format: Annotated[
        SweepFormat, typer.Option("--format", help="table, json, markdown or csv")
    ] = SweepFormat.table,
    debug: DebugOpt = False,
) -> None:
    """A grid of TP x PP x GPU x KV dtype x block size x max_model_len; the cheapest fit highlighted."""
    _DEBUG["on"] = debug
    from kvplan import serving as serving_mod
    from kvplan import sweep as sweep_mod
    from kvplan.inputs import resolve_model

    try:
        resolved = resolve_model(model)
        base = serving_mod.merge(
            resolved.serving,
            resolved.source,
            {
                "gpu_memory": gpu_memory,
                "gpu_memory_utilization": gpu_memory_utilization,
                "kv_cache_memory": kv_cache_memory,
                "max_num_batched_tokens": max_num_batched_tokens,
                "max_num_seqs": max_num_seqs,
                "vllm_version": vllm_version,
            },
        )
        axes = sweep_mod.axis_values(
            {
                "tp": tp,
                "pp": pp,
                "gpu": gpu,
                "kv_cache_dtype": kv_cache_dtype,
                "block_size": block_size,
                "max_model_len": max_model_len,
            },
            base,
        )
        if axes["gpu"] == [None] and base.gpu_memory is None and base.kv_cache_memory is None:
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
        _fail(err)
        return
    if format is SweepFormat.json:
        _print_json(sweep_mod.document(result))
    elif format is SweepFormat.csv:
        sys.stdout.write(sweep_mod.csv_text(result))
    elif format is SweepFormat.markdown:
        sys.stdout.write(sweep_mod.markdown(result))
    else:
        sweep_mod.print_table(result, _console())


@app.command()
def log(
    file: Annotated[str, typer.Argument(help="a vLLM startup log, or - for stdin")],
    model: Annotated[
        str | None, typer.Option("--model", help="the model, when the log names none or one kvplan lacks")
    ] = None,
    tp: TpOpt = None,
    pp: PpOpt = None,
    kv_cache_memory: KvMemOpt = None,
    gpu: GpuOpt = None,
    gpu_memory: GpuMemOpt = None,
    max_model_len: LenOpt = None,
    block_size: BlockOpt = None,
    kv_cache_dtype: DtypeOpt = None,
    num_gpu_blocks_override: OverrideOpt = None,
    disable_hybrid_kv_cache_manager: NoHybridOpt = None,
    vllm_version: VersionOpt = None,
    format: FormatOpt = Format.table,
    debug: DebugOpt = False,
) -> None:
    """Re-plan a vLLM startup log and show, side by side, what it says and what kvplan computes.

    Exits 1 when the log's KV cache size or concurrency lies outside kvplan's range.
    """
    _DEBUG["on"] = debug
    from kvplan import logparse

    overrides: dict[str, Any] = {
        "tp": tp,
        "pp": pp,
        "kv_cache_memory": kv_cache_memory,
        "gpu": gpu,
        "gpu_memory": gpu_memory,
        "max_model_len": max_model_len,
        "block_size": block_size,
        "kv_cache_dtype": kv_cache_dtype,
        "num_gpu_blocks_override": num_gpu_blocks_override,
        "disable_hybrid_kv_cache_manager": disable_hybrid_kv_cache_manager,
        "vllm_version": vllm_version,
    }
    try:
        facts = logparse.parse(logparse.read_log(file))
        if not facts.available and not facts.kv_cache_tokens and not facts.concurrency:
            raise InputError(
                "no KV cache lines found (GPU KV cache size, Available KV cache memory)",
                source=file,
                hint="pass a vLLM V1 engine startup log",
            )
        cmp = logparse.compare(facts, overrides, model)
    except KvplanError as err:
        _fail(err)
        return
    if format is Format.json:
        _print_json(logparse.document(cmp))
    elif format is Format.markdown:
        sys.stdout.write(logparse.markdown(cmp))
    else:
        logparse.print_table(cmp, _console())
    if cmp.differs:
        raise typer.Exit(1)
