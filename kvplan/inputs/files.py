"""Reading a file the user names, safely: bounded size, UTF-8, YAML or JSON.

Every mistake becomes an ``InputError`` naming the file (and the line, for a
parse error); parsed data is checked for absurd nesting or size before any
code walks it.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from kvplan.errors import InputError

MAX_FILE_BYTES = 16 << 20  # configs are kilobytes; refuse anything absurd


def read_text(path: Path) -> str:
    """The file's text; refuses directories, pipes, huge or non-UTF-8 files."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise InputError("is a directory, expected a file", source=str(path))
        if not stat.S_ISREG(info.st_mode):
            # A pipe or a device would block or never end.
            raise InputError("is not a regular file", source=str(path))
        if info.st_size > MAX_FILE_BYTES:
            raise InputError("file is too large to be a model config", source=str(path))
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise InputError("file is too large to be a model config", source=str(path))
    except PermissionError:
        raise InputError("cannot read the file (permission denied)", source=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", source=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror})", source=str(path)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text (bad byte at offset {exc.start})", source=str(path)) from None


# Limits on a parsed file's shape: real configs are a few levels deep and hold
# at most thousands of values; anything past these is refused before code walks it.
MAX_DEPTH = 32
MAX_VALUES = 1_000_000
# libyaml's composer recurses in C: only hand it text that cannot nest deeper than
# this (each nesting level needs one of "[{-?:"), the pure-Python loader otherwise.
_C_LOADER_MAX_MARKS = 5000


def check_shape(data: Any, source: str) -> None:
    """Refuse data nested deeper than ``MAX_DEPTH`` or holding over ``MAX_VALUES`` values.

    YAML aliases can make a structure refer to itself or expand exponentially;
    this walk counts every visit, so both are caught without expanding anything.
    """
    stack: list[tuple[Any, int]] = [(data, 0)]
    visits = 0
    while stack:
        value, depth = stack.pop()
        visits += 1
        if visits > MAX_VALUES:
            raise InputError(
                f"holds more than {MAX_VALUES:,} values (YAML aliases expanding?)", source=source
            )
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth >= MAX_DEPTH:
            raise InputError(
                f"is nested more than {MAX_DEPTH} levels deep (or a YAML alias refers to itself)",
                source=source,
            )
        stack.extend((child, depth + 1) for child in children)


def load_yaml_text(text: str, source: str) -> Any:
    """Parse YAML safely (no Python objects); errors name the line.

    libyaml's safe loader is used where PyYAML has it (several times faster,
    same results) unless the text could nest deep enough to exhaust its stack.
    """
    import yaml

    loader: Any = yaml.SafeLoader
    if hasattr(yaml, "CSafeLoader") and sum(text.count(c) for c in "[{-?:") <= _C_LOADER_MAX_MARKS:
        loader = yaml.CSafeLoader
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise InputError(f"malformed YAML{where}: {problem}", source=source) from None
    except RecursionError:
        raise InputError("YAML is nested too deeply", source=source) from None
    except ValueError as exc:  # a scalar its resolver accepts but cannot convert (huge int, bad date)
        raise InputError(f"malformed YAML: {exc}", source=source) from None
    check_shape(data, source)
    return data


def load_json_text(text: str, source: str) -> Any:
    """Parse JSON; errors name the line."""
    import json

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", source=source
        ) from None
    except RecursionError:
        raise InputError("JSON is nested too deeply", source=source) from None
    except ValueError as exc:  # e.g. an integer over Python's 4300-digit conversion limit
        raise InputError(f"malformed JSON: {exc}", source=source) from None
    check_shape(data, source)
    return data
