"""How the demo prints: aligned tables whose cells wrap at words, and narration wrapped at words.

Pure formatting (no I/O, no clients), so the layout rules are unit-tested: every line of a table
puts each column at the same offset, a cell longer than its column continues on the next line of
the same row (cut between words, never inside one), and nothing is ever shortened with "...".
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WIDTH = 110
"""Lines are at most this wide, except a single word longer than its column."""
GAP = "  "


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width``, broken between words only (a longer word stays whole)."""
    lines = textwrap.wrap(text, width=max(1, width), break_long_words=False, break_on_hyphens=False)
    return lines or [""]


def paragraph(text: str, first: str, rest: str, width: int = WIDTH) -> str:
    """``text`` wrapped at words: the first line after ``first``, the others after ``rest``."""
    lines = textwrap.wrap(
        text,
        width=width,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return "\n".join(lines) if lines else first.rstrip()


@dataclass(frozen=True)
class Column:
    title: str
    width: int
    right: bool = False


class Table:
    """Fixed columns; the last one takes what is left of ``width`` (at least 12)."""

    def __init__(self, columns: Sequence[Column], indent: int = 2, width: int = WIDTH) -> None:
        fixed = [max(c.width, len(c.title)) for c in columns[:-1]]
        last = max(12, len(columns[-1].title), width - indent - sum(fixed) - len(GAP) * (len(columns) - 1))
        self.columns = list(columns)
        self.widths = [*fixed, last]
        self.indent = " " * indent

    def header(self) -> str:
        return self._line([c.title for c in self.columns])

    def row(self, *cells: object) -> str:
        """One row; a cell wider than its column continues below, in the same column."""
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        wrapped = [wrap(str(cell), w) for cell, w in zip(cells, self.widths, strict=True)]
        lines = itertools.zip_longest(*wrapped, fillvalue="")
        return "\n".join(self._line(list(parts)) for parts in lines)

    def _line(self, cells: Sequence[str]) -> str:
        parts = []
        for cell, width, col in zip(cells, self.widths, self.columns, strict=True):
            parts.append(cell.rjust(width) if col.right else cell.ljust(width))
        return (self.indent + GAP.join(parts)).rstrip()


def seconds(t: float) -> str:
    """Elapsed time for the TIME column: ``12.3s``."""
    return f"{t:.1f}s"


def split(counts: Mapping[str, int]) -> str:
    """Answers by version (``"2"`` -> ``v2 75%``) and errors (``http 503 3``), with the total."""
    total = sum(counts.values())
    if not total:
        return "no answers"
    parts = [f"v{k} {100 * n / total:.0f}%" if k.isdigit() else f"{k} {n}" for k, n in sorted(counts.items()) if n]
    return f"{'  '.join(parts)}  ({total})"


def number(value: Any, digits: int = 3) -> str:
    """A float with ``digits`` significant decimals, or ``-``."""
    if value is None:
        return "-"
    return f"{float(value):.{digits}f}"


def metric_value(kind: str, value: Any) -> str:
    """A measured value in the unit a person reads: error rate in %, latency in ms, PSI as is."""
    if value is None:
        return "-"
    v = float(value)
    if kind == "errorRate":
        return f"{100 * v:.1f}%"
    if kind == "predictionShift":
        return f"{v:.3f}"
    if kind == "latencyP99":
        return f"{v:g} s" if v >= 1 else f"{1000 * v:.0f} ms"
    return f"{v:.3f}"


def metric_limit(metric: Mapping[str, Any]) -> str:
    """The thresholds of an analysis metric, labelled (``max 5%``, ``max 2000 ms``, ``<= 5x stable``)."""
    kind = str(metric.get("kind"))
    parts = []
    if metric.get("max") is not None:
        parts.append(f"max {metric_value(kind, metric['max'])}")
    if metric.get("min") is not None:
        parts.append(f"min {metric_value(kind, metric['min'])}")
    if metric.get("maxRatioToStable") is not None:
        parts.append(f"max {float(metric['maxRatioToStable']):g}x stable")
    return ", ".join(parts) or "-"


METRIC_KINDS = {
    "errorRate": "error rate",
    "latencyP99": "p99 latency",
    "predictionShift": "prediction shift, PSI",
    "promql": "PromQL",
}


def step_label(index: int | None, steps: Sequence[Mapping[str, Any]]) -> str:
    """``2/4 analysis``, ``1/4 weight 25%``, ``promotion`` (past the last step) or ``-``."""
    if index is None:
        return "-"
    if index >= len(steps):
        return "promotion"
    step = steps[index]
    if "setWeight" in step:
        what = f"weight {step['setWeight']}%"
    elif "analysis" in step:
        what = "analysis"
    else:
        what = "pause"
    return f"{index + 1}/{len(steps)} {what}"
