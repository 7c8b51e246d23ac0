"""Plain-text layout shared by the command line and the evaluation reports: tables and field blocks.

Every table and block of text faceprint prints fits in :data:`WIDTH` columns.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

WIDTH = 100  # columns every table and block of text printed by the CLI fits in
ELLIPSIS = "\u2026"
MIN_COLUMN = 4  # a column is never truncated below this many characters


def _fit(cell: str, width: int) -> str:
    """``cell`` cut to ``width`` characters, its last one an ellipsis when anything was cut."""
    return cell if len(cell) <= width else cell[: width - 1] + ELLIPSIS


def table(rows: Sequence[Sequence[object]], header: Sequence[str], width: int = WIDTH) -> str:
    """A plain fixed-width text table no wider than ``width`` characters.

    Columns are separated by two spaces. When the natural table is wider than ``width``, the
    widest column is narrowed one character at a time (never below ``MIN_COLUMN``, so a table of
    very many columns can still exceed ``width``) and cells longer than their column end in an
    ellipsis. Use :func:`fields_block` for values that must be read in full.
    """
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    while sum(widths) + 2 * (len(widths) - 1) > width and max(widths, default=0) > MIN_COLUMN:
        widths[widths.index(max(widths))] -= 1
    lines = ["  ".join(_fit(c, w).ljust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def fields_block(title: str, fields: Sequence[tuple[str, str]], width: int = WIDTH) -> str:
    """A title line, then one indented ``name  value`` line per field, long values wrapped to ``width``.

    For records whose values are too long for a table column (sources, licences): nothing is cut.
    """
    label = max((len(name) for name, _ in fields), default=0)
    lines = [title]
    for name, value in fields:
        first = f"  {name.ljust(label)}  "
        lines.append(textwrap.fill(str(value), width=width, initial_indent=first,
                                   subsequent_indent=" " * len(first), break_on_hyphens=False))
    return "\n".join(lines)
