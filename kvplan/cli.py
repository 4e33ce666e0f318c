"""The command line: a thin skin over ``kvplan.assemble`` and the renderers.

Every user mistake surfaces as one message on stderr with exit code 2 (3 for
a missing CUDA device); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import re
import sys
from enum import Enum, StrEnum
from typing import Annotated, Any

import typer
import typer.main

from kvplan.errors import KvplanError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Plan vLLM's KV cache from a model config, without a GPU.",
    pretty_exceptions_enable=False,
)

_DEBUG = {"on": False}


class Format(StrEnum):
    """Output formats."""

    table = "table"
    json = "json"
    markdown = "markdown"


def _fail(err: KvplanError) -> None:
    if _DEBUG["on"]:
        raise err
    sys.stderr.write(f"kvplan: error: {err.render()}\n")
    raise typer.Exit(err.exit_code)


def _print_json(document: Any) -> None:
    """Write one JSON document to stdout (json loads only for JSON output)."""
    import json

    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def _console() -> Any:
    from rich.console import Console

    # Piped output gets a fixed, wide layout instead of rich's 80-column fallback.
    # Cells are plain text: no markup, highlighting or emoji codes to parse (and
    # a model name in brackets is never taken for markup).
    width = None if sys.stdout.isatty() else 140
    return Console(width=width, markup=False, highlight=False, emoji=False)


ModelArg = Annotated[
    str,
    typer.Argument(help="preset name, model YAML, config.json, model directory or cached hub id (org/name)"),
]
TpOpt = Annotated[int | None, typer.Option("--tp", help="tensor parallel size")]
PpOpt = Annotated[int | None, typer.Option("--pp", help="pipeline parallel size")]
DcpOpt = Annotated[int | None, typer.Option("--dcp", help="decode context parallel size")]
PartOpt = Annotated[
    str | None,
    typer.Option("--pp-layer-partition", help="layers per stage, e.g. 7,8,8,7 (VLLM_PP_LAYER_PARTITION)"),
]
GpuOpt = Annotated[str | None, typer.Option("--gpu", help="GPU preset name (see `kvplan gpus`)")]
GpuMemOpt = Annotated[str | None, typer.Option("--gpu-memory", help="total GPU memory, e.g. 80GiB")]
ProbeOpt = Annotated[bool, typer.Option("--probe", help="read total memory from the local CUDA device")]
UtilOpt = Annotated[
    float | None, typer.Option("--gpu-memory-utilization", help="vLLM's fraction (default: the release's)")
]
KvMemOpt = Annotated[
    str | None,
    typer.Option(
        "--kv-cache-memory", help="KV cache memory per worker (one size, or one per PP stage: 20GiB,18GiB)"
    ),
]
LenOpt = Annotated[
    str | None, typer.Option("--max-model-len", help="tokens per request; -1 or auto to fit memory")
]
BlockOpt = Annotated[int | None, typer.Option("--block-size", help="tokens per block")]
DtypeOpt = Annotated[
    str | None, typer.Option("--kv-cache-dtype", help="auto, bfloat16, float16, fp8, fp8_e4m3, fp8_e5m2, ...")
]
OverrideOpt = Annotated[
    int | None, typer.Option("--num-gpu-blocks-override", help="as vLLM's num_gpu_blocks_override")
]
NoHybridOpt = Annotated[
    bool | None,
    typer.Option("--disable-hybrid-kv-cache-manager/--hybrid-kv-cache-manager", help="as vLLM's flag"),
]
MnbtOpt = Annotated[int | None, typer.Option("--max-num-batched-tokens", help="as in vLLM")]
MnsOpt = Annotated[int | None, typer.Option("--max-num-seqs", help="as in vLLM")]
EagerOpt = Annotated[bool | None, typer.Option("--enforce-eager", help="no CUDA graphs (memory estimate)")]
VersionOpt = Annotated[
    str | None,
    typer.Option("--vllm-version", help="vLLM release whose planner to reproduce (default: newest known)"),
]
FormatOpt = Annotated[Format, typer.Option("--format", help="table, json or markdown")]
ExplainOpt = Annotated[
    bool, typer.Option("--explain", help="walk through the arithmetic with the real numbers")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="show tracebacks")]


def plan_flags(**kw: Any) -> dict[str, Any]:
    """CLI flags to serving-option names; None means "not given"."""
    flags = dict(kw)
    if flags.get("probe") is False:
        flags["probe"] = None
    return flags


@app.command()
def plan(
    model: ModelArg,
    tp: TpOpt = None,
    pp: PpOpt = None,
    dcp: DcpOpt = None,
    pp_layer_partition: PartOpt = None,
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
    enforce_eager: EagerOpt = None,
    vllm_version: VersionOpt = None,
    format: FormatOpt = Format.table,
    explain: ExplainOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Plan the KV cache: blocks per PP stage, tensors, per-layer bytes, capacity."""
    _DEBUG["on"] = debug
    from kvplan import assemble, report

    try:
        result = assemble.run(
            model,
            plan_flags(
                tp=tp,
                pp=pp,
                dcp=dcp,
                pp_layer_partition=pp_layer_partition,
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
                enforce_eager=enforce_eager,
                vllm_version=vllm_version,
            ),
        )
        doc = report.document(result)
    except KvplanError as err:
        _fail(err)
        return
    explanation = None
    if explain:
        from kvplan import explain as explain_mod

        explanation = explain_mod.explain(result, doc)
    if format is Format.json:
        if explanation is not None:
            doc["explain"] = explanation
        _print_json(doc)
    elif format is Format.markdown:
        from kvplan import render_markdown

        sys.stdout.write(render_markdown.plan_markdown(doc))
    else:
        from kvplan import render_table

        render_table.print_plan(doc, _console())
    if explanation is not None and format is not Format.json:
        sys.stdout.write(explanation)
    if result.budget.probed is not None:
        _warn_probe(result.budget.probed, result.budget.gpu_memory_utilization)


def _warn_probe(device: Any, utilization: float) -> None:
    """Warn, as vLLM refuses to start, when the probed device's free memory is below total x utilization."""
    needed = int(device.total_bytes * utilization)
    if device.free_bytes < needed:
        sys.stderr.write(
            f"kvplan: warning: free memory on {device.name} ({device.free_bytes / (1 << 30):.2f} GiB) "
            f"is below total x gpu_memory_utilization ({needed / (1 << 30):.2f} GiB); vLLM would refuse to start\n"
        )


@app.command()
def presets(format: FormatOpt = Format.table) -> None:
    """List the built-in model presets."""
    from kvplan import presets as presets_mod

    rows: list[dict[str, Any]] = []
    for name in presets_mod.model_names():
        info = presets_mod.model_info(name)
        cfg = info["config"]
        arch = (cfg.get("architectures") or ["?"])[0]
        rows.append(
            {"name": name, "hf_id": info.get("hf_id"), "architecture": arch, "source": info.get("source")}
        )
    if format is Format.json:
        _print_json(rows)
        return
    from rich.table import Table

    table = Table(title="Model presets")
    for col in ("name", "hf_id", "architecture"):
        table.add_column(col)
    for row in rows:
        table.add_row(row["name"], str(row["hf_id"]), row["architecture"])
    _console().print(table)


@app.command()
def gpus(format: FormatOpt = Format.table) -> None:
    """List the built-in GPU memory presets (total memory as torch reports it)."""
    from kvplan import presets as presets_mod

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
        _print_json(rows)
        return
    from rich.table import Table

    table = Table(title="GPU presets")
    for col in ("name", "total bytes", "GiB", "vendor", "arch"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            row["name"], f"{row['total_bytes']:,}", f"{row['total_gib']:.2f}", row["vendor"], row["arch"]
        )
    _console().print(table)


@app.command()
def probe(format: FormatOpt = Format.table, debug: DebugOpt = False) -> None:
    """Every visible CUDA device: name, total, free and used memory."""
    _DEBUG["on"] = debug
    from kvplan import gpu_probe

    try:
        devices = gpu_probe.devices()
    except KvplanError as err:
        _fail(err)
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
        _print_json(rows)
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
    _console().print(table)


_INT = re.compile(r"-?[0-9]{1,18}")
_FLOAT = re.compile(r"-?[0-9]{1,18}(\.[0-9]{0,18})?")
_SLOW = object()


def _plain_value(value: Any, annotation: Any, ctx: Any) -> Any:
    """``value`` converted as typer would, or ``_SLOW`` when typer must decide."""
    if value is None:
        return None
    if annotation is str and isinstance(value, str):
        return value
    if annotation is bool and isinstance(value, bool):
        return value
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INT.fullmatch(value):
            return int(value)
    if annotation is float:
        if isinstance(value, float):
            return value
        if isinstance(value, str) and _FLOAT.fullmatch(value):
            return float(value)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        if isinstance(value, annotation):
            return value
        if isinstance(value, str) and getattr(ctx, "token_normalize_func", None) is None:
            for member in annotation:
                if member.value == value:
                    return member
    return _SLOW


class _PlainCoercion:
    """Typer's per-parameter coercion for plain str/int/float/enum values.

    Recent typer validates every parameter through a pydantic ``TypeAdapter``;
    importing pydantic and building the adapters costs more than the whole
    plan.  Values this class recognises convert exactly as pydantic would;
    anything else (bad numbers included) goes to typer's own coercion, so
    messages and results are unchanged.
    """

    def __init__(self, param: Any) -> None:
        self.param = param
        self.annotation = param.type_descriptor.annotation

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        """Convert one command-line value (typer's ``RuntimeParam.coerce``)."""
        converted = _plain_value(value, self.annotation, ctx)
        if converted is not _SLOW:
            return converted
        from typer._coercion import build_runtime_param

        return build_runtime_param(self.param.type_descriptor).coerce(value, param=param, ctx=ctx)


def _use_plain_coercion(command: Any) -> None:
    """Give every simple parameter of ``command`` (and its subcommands) ``_PlainCoercion``."""
    for sub in getattr(command, "commands", {}).values():
        _use_plain_coercion(sub)
    params = list(command.params)
    if hasattr(command, "get_help_option"):
        from typer._click import Context

        params.append(command.get_help_option(Context(command)))
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", False) is not None:
            continue  # not typer's pydantic-based coercion, or already built
        info = descriptor.parameter_info
        simple = (
            descriptor.file_annotation is None
            and info.parser is None
            and getattr(info, "click_type", None) is None
            and info.min is None
            and info.max is None
            and not param.multiple
            and param.nargs == 1
        )
        if simple:
            param._runtime_param = _PlainCoercion(param)


def _registered(name: str) -> Any:
    """The registered command called ``name`` (as typed on the command line), or None."""
    for info in app.registered_commands:
        callback_name = info.callback.__name__ if info.callback else ""
        if (info.name or callback_name.replace("_", "-")) == name:
            return info
    return None


def main() -> None:
    """Entry point of the ``kvplan`` console script."""
    try:
        argv = sys.argv[1:]
        chosen = _registered(argv[0]) if argv else None
        if chosen is not None:
            # Build only the command being run: typer otherwise inspects every
            # command's signature on each start. Usage lines keep "kvplan NAME".
            single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
            single.registered_commands = [chosen]
            command = typer.main.get_command(single)
            _use_plain_coercion(command)
            command(args=argv[1:], prog_name=f"kvplan {argv[0]}")
            return
        command = typer.main.get_command(app)
        _use_plain_coercion(command)
        command()
    except KvplanError as err:  # raised outside a command's own handler
        if _DEBUG["on"]:
            raise
        sys.stderr.write(f"kvplan: error: {err.render()}\n")
        sys.exit(err.exit_code)


from kvplan import cli_workflows  # noqa: E402,F401  (registers check, sweep, log)
