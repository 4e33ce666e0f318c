"""The typer application and what every command shares: the error exit,
JSON output, the console, and a fast start.

Every user mistake surfaces as one message on stderr with exit code 2 (3 for
a missing CUDA device); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import re
import sys
from enum import Enum
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


ModelArg = Annotated[
    str,
    typer.Argument(help="preset name, model YAML, config.json, model directory or cached hub id (org/name)"),
]


def debug_mode(on: bool) -> None:
    """Show tracebacks instead of one-line messages (``--debug``)."""
    _DEBUG["on"] = on


def fail(err: KvplanError) -> None:
    """Report a kvplan error on stderr and exit with its code (re-raise under ``--debug``)."""
    if _DEBUG["on"]:
        raise err
    sys.stderr.write(f"kvplan: error: {err.render()}\n")
    raise typer.Exit(err.exit_code)


def print_json(document: Any) -> None:
    """Write one JSON document to stdout (json loads only for JSON output)."""
    import json

    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def console() -> Any:
    """The rich console every table is printed on."""
    from rich.console import Console

    # Piped output gets a fixed, wide layout instead of rich's 80-column fallback.
    # Cells are plain text: no markup, highlighting or emoji codes to parse (and
    # a model name in brackets is never taken for markup).
    width = None if sys.stdout.isatty() else 140
    return Console(width=width, markup=False, highlight=False, emoji=False)


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
    """Give every simple parameter of ``command`` (and its subcommands) ``_PlainCoercion``.

    Only typer 0.26+ coerces through pydantic (``typer._coercion``, a private
    module); with any other typer this does nothing and typer's own coercion
    runs, so no typer version depends on these internals.
    """
    try:
        from typer._click import Context
        from typer._coercion import build_runtime_param  # noqa: F401  (present: the pydantic path)
    except ImportError:
        return
    for sub in getattr(command, "commands", {}).values():
        _use_plain_coercion(sub)
    params = list(command.params)
    if hasattr(command, "get_help_option"):
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
