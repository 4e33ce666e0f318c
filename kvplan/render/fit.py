"""Tables that fit the terminal: figures are never cut or folded, only names and prose wrap.

A renderer declares its columns (``Col``) and rows; ``fits`` says whether a
layout fits a width, so a renderer can switch to a narrower layout (rows
stacked, constant columns moved out) instead of letting rich squeeze a
number into ``2,097…``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

# A wrapping column is never squeezed below this many characters.
MIN_WRAP = 14


@dataclass(frozen=True)
class Col:
    """One column: its header, alignment, and whether its cells may wrap (names, prose)."""

    header: str
    justify: str = "left"
    wrap: bool = False


def _lines(cell: Any) -> list[str]:
    text = cell.plain if isinstance(cell, Text) else str(cell)
    return text.split("\n")


def _longest_word(cell: Any) -> int:
    return max((len(w) for line in _lines(cell) for w in line.split()), default=0)


def needed_width(cols: Sequence[Col], rows: Sequence[Sequence[Any]], compact: bool = False) -> int:
    """The narrowest width the table renders in without splitting a figure (box and padding included).

    A figure column needs its longest line; a wrapping column needs
    ``MIN_WRAP`` characters (or less, when its cells are shorter); only a
    wrapping column's header may wrap between words.
    """
    total = 1 if not compact else -2  # compact: no box, one space either side inside
    for i, col in enumerate(cols):
        cells = [r[i] for r in rows]
        longest = max((len(line) for c in cells for line in _lines(c)), default=0)
        # A figure column's header does not wrap either (rich applies no_wrap to it).
        header = _longest_word(col.header) if col.wrap else len(col.header)
        width = min(longest, MIN_WRAP) if col.wrap else longest
        total += max(width, header) + (2 if compact else 3)
    return total


def fits(cols: Sequence[Col], rows: Sequence[Sequence[Any]], width: int, compact: bool = False) -> bool:
    """Whether the table fits ``width`` columns with every figure whole."""
    return needed_width(cols, rows, compact) <= width


def make(
    title: str | None,
    cols: Sequence[Col],
    rows: Sequence[Sequence[Any]],
    compact: bool = False,
    **kwargs: Any,
) -> Table:
    """A rich table of ``rows``: figure columns never wrap, the others fold long names.

    ``compact``: no box, columns one space apart (for wide grids such as a sweep).
    """
    if compact:
        kwargs.update(box=None, pad_edge=False, show_edge=False, header_style="bold underline")
    table = Table(title=title, box=kwargs.pop("box", box.SQUARE), **kwargs)
    for col in cols:
        table.add_column(
            col.header,
            justify=col.justify,  # type: ignore[arg-type]
            no_wrap=not col.wrap,
            overflow="fold",
        )
    for row in rows:
        table.add_row(*(c if isinstance(c, Text) else str(c) for c in row))
    return table
