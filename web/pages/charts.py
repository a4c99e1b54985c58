"""Bar charts drawn on the server as SVG, for the pages' templates (charts.html's `bar_chart`
macro): no script, and geometry in SVG attributes (the pages' policy allows no inline style).
One slot per value, bars a little narrower than their slot, heights against a top value; a
value of None leaves its slot empty (nothing was measured), and a reference line (a limit) is
drawn where one is given."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SLOT, BAR, HEIGHT, HEADROOM = 10, 7, 100, 4


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # what a pointer over it says
    current: bool  # today's, or the latest: drawn darker


def _height(value: float, top: float) -> float:
    return round(value / top * (HEIGHT - HEADROOM), 2) if top else 0


def bar_chart(values: Sequence[float | None], labels: Sequence[str], *, top: float, current: int | None = None,
              line: float | None = None) -> dict:
    """The bars of `values` (labelled by `labels`) scaled so that `top` reaches the box's top
    (less a little headroom), and the height of the reference line `line`, if any."""
    bars = []
    for index, (value, label) in enumerate(zip(values, labels, strict=True)):
        if value is None:
            continue
        height = _height(value, top)
        if value and height < 1:
            height = 1  # anything above nothing is visible
        bars.append(Bar(index * SLOT + (SLOT - BAR) / 2, HEIGHT - height, BAR, height, label, index == current))
    line_y = HEIGHT - _height(line, top) if line and top else None
    return {"bars": bars, "width": len(values) * SLOT, "height": HEIGHT, "line_y": line_y}
