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
from typer.core import TyperCommand

from kvplan.errors import KvplanError


class _Commands(list):  # type: ignore[type-arg]
    """The registered commands: reading them imports every command module first.

    Registering (``append``, as ``@app.command()`` does) imports nothing, so
    ``main`` can import the one command being run and find it with ``own``.
    """

    loaded = False

    def _load(self) -> None:
        if not self.loaded:
            self.loaded = True
            load_commands()

    def __iter__(self) -> Any:
        self._load()
        return super().__iter__()

    def __len__(self) -> int:
        self._load()
        return super().__len__()

    def __getitem__(self, index: Any) -> Any:
        self._load()
        return super().__getitem__(index)

    def own(self) -> list[Any]:
        """The commands registered so far, importing nothing."""
        return list(super().__iter__())


class _App(typer.Typer):
    """The typer application; its commands are a ``_Commands`` list."""

    @property  # type: ignore[override]
    def registered_commands(self) -> _Commands:
        return self._commands

    @registered_commands.setter
    def registered_commands(self, value: list[Any]) -> None:
        self._commands = _Commands(value)


# Help is plain text (no rich panels): click wraps it to the terminal and
# never cuts an option name, at 80 columns as at 200.
app = _App(
    add_completion=False,
    no_args_is_help=True,
    help="Plan vLLM's KV cache from a model config, without a GPU.",
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Command(TyperCommand):
    """A command that refuses an option given twice with different values.

    click keeps the last value silently (``--tp 2 --tp 4``, or a switch and its
    opposite); kvplan reports the conflict and exits 2 instead.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Check ``args`` for conflicting options, then parse them as click does."""
        conflict = find_conflict(self.params, args)
        if conflict:
            sys.stderr.write(f"kvplan: error: {conflict}\n  hint: give each option once\n")
            raise typer.Exit(2)
        return list(super().parse_args(ctx, args))


def find_conflict(params: list[Any], args: list[str]) -> str | None:
    """The first option of ``params`` that ``args`` give two different values, in words, or None."""
    spelled: dict[str, tuple[Any, bool]] = {}
    for param in params:
        for opt in getattr(param, "opts", ()) if getattr(param, "param_type_name", "") == "option" else ():
            spelled[opt] = (param, True)
        for opt in getattr(param, "secondary_opts", ()):
            spelled[opt] = (param, False)
    seen: dict[str, tuple[str, object]] = {}
    i = 0
    while i < len(args):
        word = args[i]
        i += 1
        if word == "--":
            break
        name, eq, inline = word.partition("=")
        if name not in spelled:
            continue
        param, on = spelled[name]
        if getattr(param, "is_flag", False):
            value: object = on
        elif eq:
            value = inline
        elif i < len(args):
            value, i = args[i], i + 1
        else:
            continue  # click reports the missing value
        if getattr(param, "multiple", False):
            continue
        if param.name in seen and seen[param.name][1] != value:
            first, before = seen[param.name]
            if isinstance(value, bool):
                return f"{first} and {name} conflict"
            return f"{first} is given twice, with different values ({before} and {value})"
        seen[param.name] = (name, value)
    return None


_DEBUG = {"on": False}


ModelArg = Annotated[
    str | None,
    typer.Argument(
        help="preset, model YAML, config.json, model directory or cached hub id (org/name); "
        "or, after --, a whole `vllm serve MODEL ...` command",
        show_default=False,
        metavar="MODEL",
    ),
]


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        from kvplan.releases import KNOWN_RELEASES

        try:
            mine = version("kvplan")
        except PackageNotFoundError:  # run from a source tree that was never installed
            mine = "(not installed)"
        sys.stdout.write(f"kvplan {mine} (reproduces vLLM {KNOWN_RELEASES[0]} to {KNOWN_RELEASES[-1]})\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="print kvplan's version and exit", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Plan vLLM's KV cache from a model config, without a GPU."""


def debug_mode(on: bool) -> None:
    """Show tracebacks instead of one-line messages (``--debug``)."""
    _DEBUG["on"] = on


def fail(err: KvplanError) -> None:
    """Report a kvplan error on stderr and exit with its code (re-raise under ``--debug``)."""
    if _DEBUG["on"]:
        raise err
    sys.stderr.write(f"kvplan: error: {err.render()}\n")
    raise typer.Exit(err.exit_code)


def pasted_command(
    model: str | None, extra: list[str], serving: dict[str, Any]
) -> tuple[str | None, dict[str, Any]]:
    """``kvplan plan -- vllm serve MODEL ...``: the words after ``--`` as ``--vllm-args``.

    Without extra words, ``model`` and ``serving`` are returned unchanged.
    """
    if not extra:
        return model, serving
    import shlex

    from kvplan.errors import InputError

    words = ([model] if model is not None else []) + extra
    program = words[0].rsplit("/", 1)[-1]
    if program != "vllm" and not program.startswith("python") and not re.match(r"^[A-Za-z_]\w*=", words[0]):
        raise InputError(
            "unexpected extra arguments: " + " ".join(extra),
            hint="to plan a vLLM command, write: kvplan plan -- vllm serve MODEL --flag value ...",
        )
    if "vllm_args" in serving:
        raise InputError("--vllm-args and a command after -- both give a vLLM command", hint="give one")
    return None, {**serving, "vllm_args": shlex.join(words)}


def print_json(document: Any) -> None:
    """Write one JSON document to stdout (json loads only for JSON output)."""
    import json

    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def output_width() -> int | None:
    """Columns to lay tables out in: the terminal's (None: rich asks it); when stdout is not a
    terminal, ``COLUMNS`` if set, else 80."""
    import os

    if sys.stdout.isatty():
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and 20 <= int(columns) <= 1000 else 80


def console() -> Any:
    """The rich console every table is printed on."""
    from rich.console import Console

    # Cells are plain text: no markup, highlighting or emoji codes to parse (and
    # a model name in brackets is never taken for markup).
    return Console(width=output_width(), markup=False, highlight=False, emoji=False)


_INT = r"-?[0-9]{1,18}"
_FLOAT = r"-?[0-9]{1,18}(\.[0-9]{0,18})?"
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
        if isinstance(value, str) and re.fullmatch(_INT, value):
            return int(value)
    if annotation is float:
        if isinstance(value, float):
            return value
        if isinstance(value, str) and re.fullmatch(_FLOAT, value):
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
    for info in app.registered_commands.own():
        callback_name = info.callback.__name__ if info.callback else ""
        if (info.name or callback_name.replace("_", "-")) == name:
            return info
    return None


# Each command and the module that registers it; only the command being run is imported.
COMMANDS: dict[str, str] = {
    "plan": "kvplan.cli.plan",
    "check": "kvplan.cli.check",
    "sweep": "kvplan.cli.sweep",
    "log": "kvplan.cli.log",
    "probe": "kvplan.cli.probe",
    "presets": "kvplan.cli.lists",
    "gpus": "kvplan.cli.lists",
    "verify": "kvplan.cli.verify",
}


def load_commands(name: str | None = None) -> None:
    """Import the module registering command ``name`` (every command's when None)."""
    import importlib

    for module in [COMMANDS[name]] if name in COMMANDS else dict.fromkeys(COMMANDS.values()):
        importlib.import_module(module)


def main() -> None:
    """Entry point of the ``kvplan`` console script."""
    try:
        argv = sys.argv[1:]
        if argv and argv[0] in COMMANDS:
            load_commands(argv[0])
        chosen = _registered(argv[0]) if argv else None
        if chosen is not None:
            # Build only the command being run: typer otherwise inspects every
            # command's signature on each start. Usage lines keep "kvplan NAME".
            single = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
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
