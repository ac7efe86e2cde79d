"""Tables that fit where they are shown: a terminal's width, or a file.

On a terminal a table keeps the columns that matter most and fits them to the width without wrapping a
word: the lowest-priority columns are left out (and named, so a person knows what to ask for), and one
flexible column (a hypothesis, say) is cut short with an ellipsis. In a file or a pipe every column is
written in full as plain aligned text: nothing is wrapped, whatever the width. Pure functions over
strings; rich is imported only to draw on a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

GAP = 3  # characters between two columns of a terminal table (padding and rule)
SHOWN_NAMES = 5  # columns left out that the note names


@dataclass
class Column:
    key: str  # the name a person can ask for (a --sort or --where field)
    header: str  # what the table shows (a readable abbreviation, perhaps)
    cells: list[str] = field(default_factory=list)
    priority: int = 50  # lower stays longer when the width runs out
    flex: bool = False  # may be cut short with an ellipsis, down to min_width
    min_width: int = 12
    right: bool = False  # numbers line up on the right
    elided: str = ""  # the prefix every cell shared, left out (shown as an ellipsis)


def width_of(text: str) -> int:
    """Terminal cells ``text`` takes: its length for printable ASCII (almost every cell, and a table of 10,000
    rows has 100,000 of them), else as rich counts wide and zero-width characters."""
    if text.isascii() and text.isprintable():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def natural_width(column: Column) -> int:
    return max([width_of(column.header), *map(width_of, column.cells)])


def fit(columns: Sequence[Column], width: int) -> tuple[list[Column], list[Column]]:
    """The columns that fit ``width`` (in their order) and those left out (lowest priority first out).
    Flexible columns count at their least width; the first column is always kept."""

    def needed(cols: Sequence[Column]) -> int:
        widths = [min(natural_width(c), c.min_width) if c.flex else natural_width(c) for c in cols]
        return sum(widths) + GAP * (len(cols) - 1)

    kept, dropped = list(columns), []
    while len(kept) > 1 and needed(kept) > width:
        victim = max(kept[1:], key=lambda c: c.priority)
        kept.remove(victim)
        dropped.append(victim)
    return kept, dropped


def _flex_widths(kept: Sequence[Column], width: int) -> dict[str, int]:
    """Widths of the flexible columns: what the others leave, shared out narrowest need first (a short name
    gets all it needs, a long hypothesis the rest), never below a column's least width."""
    flex = sorted((c for c in kept if c.flex), key=natural_width)
    room = width - sum(natural_width(c) for c in kept if not c.flex) - GAP * (len(kept) - 1)
    widths = {}
    for i, c in enumerate(flex):
        share = room // (len(flex) - i)
        widths[c.key] = max(min(natural_width(c), c.min_width), min(natural_width(c), share))
        room -= widths[c.key]
    return widths


def plain(columns: Sequence[Column]) -> str:
    """Every column in full, aligned with two spaces, the last one unpadded: for files, pipes, grep and awk."""
    texts = [[c.header, *c.cells] for c in columns]
    measured = [[width_of(t) for t in column] for column in texts]  # each text measured once
    widths = [max(column) for column in measured]
    lines = []
    for row, row_widths in zip(zip(*texts, strict=True), zip(*measured, strict=True), strict=True):
        parts = []
        for i, (text, col, w, own) in enumerate(zip(row, columns, widths, row_widths, strict=True)):
            pad = " " * (w - own)
            last = i == len(columns) - 1
            parts.append(pad + text if col.right else text + ("" if last else pad))
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines) + "\n"


def terminal_table(columns: Sequence[Column], width: int, title: str | None = None, notes: Sequence[str] = (),
                   more: str = ""):  # fmt: skip
    """A rich table of the columns that fit ``width``, no cell wrapped; a note under it names the columns left
    out, followed by ``more`` (how to see them)."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    notes = list(notes)
    kept, dropped = fit(columns, width)
    widest = _flex_widths(kept, width)
    elided = [_elide_prefix(c) for c in kept if c.key in widest and widest[c.key] < natural_width(c)]
    if any(elided):  # names cut short all look alike ("replication-v…"): leave out what they share instead
        short = {c.key: c for c in elided if c}
        columns = [short.get(c.key, c) for c in columns]
        kept, dropped = fit(columns, width)
        widest = _flex_widths(kept, width)
        notes += [f"{c.key}: {ELLIPSIS} = {c.elided}" for c in short.values() if c in kept]
    if dropped:
        names = [c.key for c in sorted(dropped, key=lambda c: columns.index(c))]
        listed = ", ".join(names[:SHOWN_NAMES]) + (", ..." if len(names) > SHOWN_NAMES else "")
        notes.append(f"{len(dropped)} more column{'s' if len(dropped) > 1 else ''} ({listed}){more}")
    table = Table(title=escape(title) if title else None, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  caption="\n".join(escape(n) for n in notes) or None, caption_justify="left")  # fmt: skip
    for c in kept:
        w = widest.get(c.key, natural_width(c))
        table.add_column(escape(c.header), justify="right" if c.right else "left", no_wrap=True,
                         overflow="ellipsis", min_width=w, max_width=w)  # fmt: skip
    for row in zip(*(c.cells for c in kept), strict=True):
        table.add_row(
            *(escape(clip(text, widest[c.key]) if c.key in widest else text) for c, text in zip(kept, row, strict=True))
        )
    return table


ELLIPSIS = "…"
SHARED_MIN = 4  # a prefix every cell shares is left out when it is at least this long


def _elide_prefix(column: Column) -> Column | None:
    """The column with the prefix all its (differing) cells share replaced by an ellipsis, or None."""
    import os.path

    cells = [c for c in column.cells if c]
    prefix = os.path.commonprefix(cells) if len(set(cells)) > 1 else ""
    if len(prefix) < SHARED_MIN:
        return None
    cells = [ELLIPSIS + c[len(prefix) :] if c else c for c in column.cells]
    return Column(column.key, column.header, cells, column.priority, column.flex, column.min_width, column.right,
                  elided=prefix)  # fmt: skip


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells, its end marked with an ellipsis when something was cut."""
    from rich.cells import set_cell_size

    return text if width_of(text) <= width else set_cell_size(text, max(0, width - 1)).rstrip() + "…"
