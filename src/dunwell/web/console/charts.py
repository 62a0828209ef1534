"""Line and bar charts drawn on the server as inline SVG.

The dashboard's content security policy allows no inline script, and a
chart library would be one more thing to load; a series of a few hundred
points is simple enough to draw here. Each chart is an ``<svg role="img">``
with a ``<title>`` and a ``<desc>`` naming the range and the largest value,
so a screen reader says what the chart shows, and every point or bar holds
its own ``<title>`` (its label and value) as a hover tooltip. Colours come
from classes in ``console.css``; no ``style`` attribute is written, which
the policy would refuse.

Values below zero are drawn at zero: the figures charted here (amounts,
counts, rates) are never negative.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from markupsafe import Markup

WIDTH = 640
HEIGHT = 220
#: Room for the y-axis labels on the left and the x-axis labels below.
MARGIN_LEFT = 64
MARGIN_RIGHT = 12
MARGIN_TOP = 30
MARGIN_BOTTOM = 28
#: At most this many x-axis labels, so they never overlap.
MAX_X_LABELS = 7
Y_TICKS = 4

Formatter = Callable[[float], str]


@dataclass(frozen=True)
class Point:
    label: str
    value: float


@dataclass(frozen=True)
class Box:
    """The plot area inside the SVG, in SVG units."""

    left: float = MARGIN_LEFT
    top: float = MARGIN_TOP
    right: float = WIDTH - MARGIN_RIGHT
    bottom: float = HEIGHT - MARGIN_BOTTOM

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


BOX = Box()


def plain(value: float) -> str:
    """The default value format: whole numbers without decimals."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times 10^k at or above ``value`` (1 for nothing to show)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-12):
            return float(step * power)
    return float(10 * power)


def y_of(value: float, top_value: float, box: Box = BOX) -> float:
    """Where ``value`` sits vertically: 0 on the bottom edge, ``top_value`` on the top."""
    share = max(0.0, value) / top_value
    return round(box.bottom - share * box.height, 2)


def line_x(index: int, count: int, box: Box = BOX) -> float:
    """Points spread from edge to edge; a single point sits in the middle."""
    if count <= 1:
        return round(box.left + box.width / 2, 2)
    return round(box.left + index * box.width / (count - 1), 2)


def bar_slot(index: int, count: int, box: Box = BOX) -> tuple[float, float]:
    """The left edge and width of bar ``index``, with a gap of a fifth of a slot."""
    slot = box.width / count
    gap = slot / 5
    return round(box.left + index * slot + gap / 2, 2), round(slot - gap, 2)


def line_chart(
    points: Sequence[Point], title: str, chart_id: str, fmt: Formatter = plain
) -> Markup:
    """A line through the points in order, with a dot on each."""
    top_value = _top(points, fmt)
    marks: list[str] = []
    if points:
        xy = [(line_x(i, len(points)), y_of(p.value, top_value)) for i, p in enumerate(points)]
        path = " ".join(f"{x},{y}" for x, y in xy)
        marks.append(f'<polyline class="line" fill="none" points="{path}"/>')
        for (x, y), point in zip(xy, points, strict=True):
            marks.append(
                f'<circle class="dot" cx="{x}" cy="{y}" r="3">'
                f"<title>{escape(point.label)}: {escape(fmt(point.value))}</title></circle>"
            )
    x_positions = [line_x(i, len(points)) for i in range(len(points))]
    return _svg(points, title, chart_id, fmt, top_value, marks, x_positions, "line")


def bar_chart(points: Sequence[Point], title: str, chart_id: str, fmt: Formatter = plain) -> Markup:
    """One bar per point, from zero up to its value."""
    top_value = _top(points, fmt)
    marks: list[str] = []
    x_positions: list[float] = []
    for i, point in enumerate(points):
        left, width = bar_slot(i, len(points))
        y = y_of(point.value, top_value)
        x_positions.append(round(left + width / 2, 2))
        marks.append(
            f'<rect class="bar" x="{left}" y="{y}" width="{width}" '
            f'height="{round(BOX.bottom - y, 2)}">'
            f"<title>{escape(point.label)}: {escape(fmt(point.value))}</title></rect>"
        )
    return _svg(points, title, chart_id, fmt, top_value, marks, x_positions, "bar")


def _svg(
    points: Sequence[Point],
    title: str,
    chart_id: str,
    fmt: Formatter,
    top_value: float,
    marks: list[str],
    x_positions: list[float],
    kind: str,
) -> Markup:
    ident = _ident(chart_id)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'class="{kind}-chart" role="img" aria-labelledby="{ident}-title {ident}-desc">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(_describe(points, fmt))}</desc>',
        # The same title, visible: a chart without a heading is a puzzle.
        f'<text class="chart-title" x="{BOX.left}" y="16" aria-hidden="true">'
        f"{escape(title)}</text>",
        *_y_axis(top_value, fmt),
        *_x_axis(points, x_positions),
        *marks,
    ]
    if not points:
        parts.append(
            f'<text class="empty" x="{BOX.left + BOX.width / 2}" '
            f'y="{BOX.top + BOX.height / 2}" text-anchor="middle">No data for this period</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _y_axis(top_value: float, fmt: Formatter) -> list[str]:
    lines = [
        f'<line class="axis" x1="{BOX.left}" y1="{BOX.top}" x2="{BOX.left}" y2="{BOX.bottom}" '
        'stroke="currentColor"/>',
        f'<line class="axis" x1="{BOX.left}" y1="{BOX.bottom}" x2="{BOX.right}" '
        f'y2="{BOX.bottom}" stroke="currentColor"/>',
    ]
    for tick in range(Y_TICKS + 1):
        value = top_value * tick / Y_TICKS
        y = y_of(value, top_value)
        if tick:
            lines.append(f'<line class="grid" x1="{BOX.left}" y1="{y}" x2="{BOX.right}" y2="{y}"/>')
        lines.append(
            f'<text class="y-label" x="{BOX.left - 6}" y="{y + 4}" '
            f'text-anchor="end">{escape(fmt(value))}</text>'
        )
    return lines


def _x_axis(points: Sequence[Point], x_positions: list[float]) -> list[str]:
    if not points:
        return []
    every = max(1, math.ceil(len(points) / MAX_X_LABELS))
    shown = list(range(0, len(points), every))
    last = len(points) - 1
    if shown[-1] != last:
        # The last label is always shown; the one before it makes room when too close.
        if last - shown[-1] < every / 2 and len(shown) > 1:
            shown.pop()
        shown.append(last)
    return [
        f'<text class="x-label" x="{x_positions[i]}" y="{BOX.bottom + 18}" '
        f'text-anchor="{_anchor(i, last)}">{escape(points[i].label)}</text>'
        for i in shown
    ]


def _top(points: Sequence[Point], fmt: Formatter) -> float:
    highest = max((p.value for p in points), default=0)
    whole = fmt is plain and all(float(p.value).is_integer() for p in points)
    return counts_ceiling(highest) if whole and highest > 0 else nice_ceiling(highest)


def _anchor(index: int, last: int) -> str:
    """The first and last labels hang inward so the edges of the chart never cut them."""
    if last > 0 and index == 0:
        return "start"
    if last > 0 and index == last:
        return "end"
    return "middle"


def counts_ceiling(value: float) -> float:
    """A top for whole counts: every one of the Y_TICKS gridlines falls on a whole number."""
    nice = nice_ceiling(value)
    if float(nice / Y_TICKS).is_integer():
        return nice
    return float(max(1, math.ceil(value / Y_TICKS)) * Y_TICKS)


def _describe(points: Sequence[Point], fmt: Formatter) -> str:
    if not points:
        return "No data for this period."
    highest = max(points, key=lambda p: p.value)
    return (
        f"{len(points)} values from {points[0].label} to {points[-1].label}; "
        f"highest {fmt(highest.value)} on {highest.label}; last {fmt(points[-1].value)}."
    )


def _ident(chart_id: str) -> str:
    """An id safe in an XML attribute and unique as long as ``chart_id`` is."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", chart_id) or "chart"
    return cleaned if cleaned[0].isalpha() else f"c-{cleaned}"
