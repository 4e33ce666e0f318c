"""Byte sizes: parsing ``80GiB`` / ``80GB`` / ``512MiB`` and printing GiB."""

from __future__ import annotations

import re

from kvplan.errors import InputError

GiB = 1 << 30
MiB = 1 << 20

_UNITS = {
    "": 1,
    "b": 1,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "tib": 1 << 40,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
}
_SIZE_RE = r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$"


def parse_size(text: object, *, field: str = "size", source: str | None = None) -> int:
    """Parse a size such as ``85899345920``, ``80GiB``, ``20.45GiB`` or ``80GB``.

    Binary units (KiB, MiB, GiB, TiB) are powers of 1024, decimal units (KB, MB,
    GB, TB) powers of 1000.  Returns whole bytes (fractions are floored, as
    vLLM's ``int(x * GiB)`` does).  Raises ``InputError`` on anything else.
    """
    if isinstance(text, bool):
        raise InputError("expected a size such as 80GiB", source=source, field=field, value=text)
    if isinstance(text, int):
        value = text
    else:
        if isinstance(text, float):
            text = repr(text)
        if not isinstance(text, str):
            raise InputError("expected a size such as 80GiB", source=source, field=field, value=text)
        match = re.match(_SIZE_RE, text)
        unit = match.group(2).lower() if match else ""
        if not match or unit not in _UNITS:
            raise InputError(
                "not a size",
                source=source,
                field=field,
                value=text,
                hint="write bytes (85899345920) or a number with a unit: 80GiB, 80GB, 512MiB",
            )
        number = match.group(1)
        if "." in number:
            whole, _, frac = number.partition(".")
            # Exact decimal arithmetic, so 20.45GiB is floor(20.45 * 2**30).
            scale = 10 ** len(frac)
            value = (int(whole or "0") * scale + int(frac or "0")) * _UNITS[unit] // scale
        else:
            value = int(number) * _UNITS[unit]
    if value <= 0:
        raise InputError("must be a positive size", source=source, field=field, value=text)
    if value > 1 << 50:
        raise InputError("is absurdly large (over 1 PiB per GPU)", source=source, field=field, value=text)
    return value


def human(num_bytes: int | float) -> str:
    """A short human size: ``20.00 GiB``, ``64.00 MiB``, ``512 B``."""
    if abs(num_bytes) >= GiB:
        return f"{num_bytes / GiB:.2f} GiB"
    if abs(num_bytes) >= MiB:
        return f"{num_bytes / MiB:.2f} MiB"
    if abs(num_bytes) >= 1024:
        return f"{num_bytes / 1024:.2f} KiB"
    return f"{int(num_bytes)} B"
