"""Tables that fit the terminal: figures are never cut or folded, only names and prose wrap.

A renderer declares its columns (``Col``) and rows of finished cells (``str``
or a styled rich ``Text``); ``fits`` says whether a layout fits a width, so
the renderer can switch to a narrower layout (rows stacked, constant columns
moved out) instead of squeezing a number into ``2,097…``; ``table`` draws it.

The tables are drawn here rather than by ``rich.table``: the widths are known
exactly (a figure column is as wide as its widest figure), and drawing box
lines directly is several times faster than rich's general layout, which
dominated a plan's run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from rich.text import Text

# A wrapping column is never squeezed below this many characters.
MIN_WRAP = 14
Cell = str | Text
Line = str | Text  # a finished line: plain, or styled for a terminal


class Col(NamedTuple):
    """One column: its header, alignment, and whether its cells may wrap (names, prose)."""

    header: str
    justify: str = "left"
    wrap: bool = False
    style: str = ""


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _lines(cell: Cell) -> list[str]:
    return _plain(cell).split("\n")


def _longest_word(cell: Cell) -> int:
    return max((len(w) for line in _lines(cell) for w in line.split()), default=0)


def _natural(col: Col, cells: Sequence[Cell], show_header: bool) -> int:
    longest = max((len(line) for c in cells for line in _lines(c)), default=0)
    return max(longest, len(col.header) if show_header else 0)


def _minimum(col: Col, cells: Sequence[Cell], show_header: bool) -> int:
    longest = max((len(line) for c in cells for line in _lines(c)), default=0)
    if not col.wrap:
        # A figure column's header does not wrap either.
        return max(longest, len(col.header) if show_header else 0)
    return max(min(longest, MIN_WRAP), _longest_word(col.header) if show_header else 0)


def _overhead(count: int, compact: bool) -> int:
    # Boxed: "│ " before each column and " │" after the last; compact: two spaces between.
    return 2 * (count - 1) if compact else 3 * count + 1


def needed_width(
    cols: Sequence[Col], rows: Sequence[Sequence[Cell]], compact: bool = False, show_header: bool = True
) -> int:
    """The narrowest width the table renders in without splitting a figure (box and padding included).

    A figure column needs its longest line and its header; a wrapping column
    needs ``MIN_WRAP`` characters (or less, when its cells are shorter), and
    its header may wrap between words.
    """
    widths = [_minimum(c, [r[i] for r in rows], show_header) for i, c in enumerate(cols)]
    return sum(widths) + _overhead(len(cols), compact)


def fits(cols: Sequence[Col], rows: Sequence[Sequence[Cell]], width: int, compact: bool = False) -> bool:
    """Whether the table fits ``width`` columns with every figure whole."""
    return needed_width(cols, rows, compact) <= width


def _widths(
    cols: Sequence[Col], rows: Sequence[Sequence[Cell]], width: int, compact: bool, show_header: bool
) -> list[int]:
    """Column widths: natural ones, the widest wrapping columns narrowed until the table fits."""
    natural = [_natural(c, [r[i] for r in rows], show_header) for i, c in enumerate(cols)]
    floor = [_minimum(c, [r[i] for r in rows], show_header) for i, c in enumerate(cols)]
    widths = list(natural)
    excess = sum(widths) + _overhead(len(cols), compact) - width
    while excess > 0:
        candidates = [i for i, c in enumerate(cols) if c.wrap and widths[i] > floor[i]]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths


def _spans(plain: str, width: int) -> list[tuple[int, int]]:
    """Where a line breaks to fit ``width``: between words, a word longer than the line folded."""
    if len(plain) <= width:
        return [(0, len(plain))]
    spans = []
    start = 0
    while len(plain) - start > width:
        space = plain.rfind(" ", start, start + width + 1) - start
        cut = start + space if space > 0 else start + width
        spans.append((start, cut))
        start = cut + 1 if space > 0 else cut
        while start < len(plain) and plain[start] == " ":
            start += 1
    spans.append((start, len(plain)))
    return spans


def wrap(cell: Cell, width: int, styled: bool = True) -> list[Line]:
    """A cell's lines wrapped to ``width``; styled ``Text`` pieces, or plain strings when not ``styled``."""
    if not styled:
        plain = _plain(cell)
        return [line[a:b] for line in plain.split("\n") for a, b in _spans(line, width)]
    text = cell if isinstance(cell, Text) else Text(str(cell))
    out: list[Line] = []
    for line in text.split("\n", allow_blank=True):
        spans = _spans(line.plain, width)
        if len(spans) == 1:
            out.append(line)
            continue
        cuts = [edge for span in spans for edge in span][1:-1]
        out.extend(piece for n, piece in enumerate(line.divide(cuts)) if n % 2 == 0)
    return out or [Text("")]


def _pad(line: Line, width: int, justify: str) -> Line:
    gap = width - len(line.plain if isinstance(line, Text) else line)
    if gap <= 0:
        return line
    if isinstance(line, str):
        return " " * gap + line if justify == "right" else line + " " * gap
    if justify == "right":
        return Text(" " * gap) + line
    return line + Text(" " * gap)


def table(
    title: str | None,
    cols: Sequence[Col],
    rows: Sequence[Sequence[Cell]],
    width: int,
    *,
    compact: bool = False,
    show_header: bool = True,
    row_styles: Sequence[str] | None = None,
    styled: bool = True,
) -> list[Line]:
    """The table drawn for ``width`` columns, as lines: styled ``Text``, or plain strings
    (faster, for a pipe) when not ``styled``.

    Boxed with light lines, or ``compact``: no box, columns two spaces apart,
    the header underlined.  ``row_styles[i]`` styles row i (the best sweep row).
    """
    widths = _widths(cols, rows, width, compact, show_header)
    sep, left, right = ("  ", "", "") if compact else (" │ ", "│ ", " │")
    lines: list[Line] = []

    def rule(a: str, b: str, c: str) -> str:
        return a + b.join("─" * (w + 2) for w in widths) + c

    def emit(cells: Sequence[Cell], style: str = "") -> None:
        wrapped = [wrap(cell, w, styled) for cell, w in zip(cells, widths, strict=True)]
        for n in range(max(len(w) for w in wrapped)):
            if not styled:
                parts = [
                    _pad(lines_of[n] if n < len(lines_of) else "", w, col.justify)
                    for col, lines_of, w in zip(cols, wrapped, widths, strict=True)
                ]
                line = left + sep.join(parts) + right  # type: ignore[arg-type]
                lines.append(line.rstrip() if compact else line)
                continue
            pieces: list[Text] = []
            for col, lines_of, w in zip(cols, wrapped, widths, strict=True):
                piece = lines_of[n] if n < len(lines_of) else Text("")
                assert isinstance(piece, Text)
                if col.style:
                    piece = piece.copy()
                    piece.stylize(col.style)
                pieces.append(_pad(piece, w, col.justify))  # type: ignore[arg-type]
            styled_line = Text(left) + Text(sep).join(pieces) + Text(right)
            if style:
                styled_line.stylize(style)
            lines.append(styled_line)

    total = sum(widths) + _overhead(len(cols), compact)
    if title:
        for piece in wrap(title, min(total, width), styled):
            indent = " " * max((total - len(_plain(piece))) // 2, 0)
            lines.append(indent + piece if isinstance(piece, str) else Text(indent) + piece)
    if not compact:
        lines.append(rule("┌", "┬", "┐"))
    if show_header:
        emit([c.header for c in cols], "bold underline" if compact else "bold")
        if not compact:
            lines.append(rule("├", "┼", "┤"))
    for i, row in enumerate(rows):
        emit(row, row_styles[i] if row_styles else "")
    if not compact:
        lines.append(rule("└", "┴", "┘"))
    return lines


def show(console: Any, lines: Sequence[Line]) -> None:
    """Print finished lines: as plain text when the console is not a terminal (nothing to
    style), else each styled line as it is (they are laid out for the width already)."""
    if not console.is_terminal:
        console.file.write("".join(_plain(line) + "\n" for line in lines))
        return
    for line in lines:
        console.print(line, soft_wrap=True)
