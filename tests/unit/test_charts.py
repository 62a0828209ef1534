"""Server-drawn SVG charts: valid, accessible, scaled into their box, and fine with no data."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from dunwell.web.console.charts import BOX, Point, bar_chart, line_chart, nice_ceiling

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def test_a_line_chart_is_valid_svg_with_a_title_and_a_description() -> None:
    root = parse(line_chart([Point("Mon", 1), Point("Tue", 3)], "Rate <by> day", "r1"))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.get("aria-labelledby") == "r1-title r1-desc"
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == "Rate <by> day" and title.get("id") == "r1-title"
    desc = root.find(f"{SVG}desc")
    assert desc is not None and desc.text == "2 values from Mon to Tue; highest 3 on Tue; last 3."


def test_line_points_span_the_box_and_scale_to_a_nice_top() -> None:
    root = parse(line_chart([Point("a", 0), Point("b", 40), Point("c", 80)], "t", "x"))
    polyline = root.find(f"{SVG}polyline")
    assert polyline is not None
    points = [tuple(map(float, p.split(","))) for p in (polyline.get("points") or "").split()]
    # The plot box of a 640 x 220 chart runs from x 64 to 628 and from y 30 to 192
    # (564 wide, 162 high). 80 rounds up to a top of 100: 0 sits on the bottom edge,
    # 40 at 192 - 0.4 * 162 = 127.2 and 80 at 192 - 0.8 * 162 = 62.4, spread evenly
    # across: 64, 64 + 564 / 2 = 346, 628.
    assert points == [(64.0, 192.0), (346.0, 127.2), (628.0, 62.4)]
    dots = root.findall(f"{SVG}circle")
    assert [d.findtext(f"{SVG}title") for d in dots] == ["a: 0", "b: 40", "c: 80"]
    assert "100" in [t.text for t in root.iter(f"{SVG}text")]


def test_bars_stand_on_the_axis_inside_the_box() -> None:
    root = parse(bar_chart([Point("x", 10), Point("y", 20), Point("z", 0)], "Bars", "b"))
    bars = root.findall(f"{SVG}rect")
    assert len(bars) == 3
    for bar in bars:
        x, y = float(bar.get("x") or 0), float(bar.get("y") or 0)
        width, height = float(bar.get("width") or 0), float(bar.get("height") or 0)
        assert BOX.left <= x and x + width <= BOX.right + 0.01
        assert BOX.top <= y and y + height == pytest.approx(BOX.bottom)
    heights = [float(b.get("height") or 0) for b in bars]
    assert heights == [pytest.approx(BOX.height / 2), pytest.approx(BOX.height), 0]


def test_an_empty_series_draws_axes_and_says_there_is_no_data() -> None:
    for chart in (line_chart([], "Nothing", "e1"), bar_chart([], "Nothing", "e2")):
        root = parse(chart)
        assert root.find(f"{SVG}polyline") is None and root.find(f"{SVG}rect") is None
        texts = [t.text for t in root.iter(f"{SVG}text")]
        assert "No data for this period" in texts
        assert root.findtext(f"{SVG}desc") == "No data for this period."


def test_a_single_point_sits_in_the_middle() -> None:
    root = parse(line_chart([Point("only", 2)], "One", "one"))
    circle = root.find(f"{SVG}circle")
    assert circle is not None and float(circle.get("cx") or 0) == BOX.left + BOX.width / 2


def test_negative_values_are_drawn_at_zero() -> None:
    root = parse(bar_chart([Point("a", -5), Point("b", 5)], "t", "n"))
    first = root.findall(f"{SVG}rect")[0]
    assert float(first.get("height") or 1) == 0


def test_labels_are_escaped_and_at_most_seven_are_shown() -> None:
    points = [Point(f"d{n}&<", n) for n in range(30)]
    root = parse(bar_chart(points, "t", "many", fmt=lambda v: f"${v:.0f}"))
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "x-label"]
    assert labels[0] == "d0&<" and labels[-1] == "d29&<" and len(labels) <= 8
    # 30 points over 7 labels: every fifth (30 / 7 rounded up), then the last one,
    # which is 4 points on from d25 and so far enough from it to keep both.
    assert labels == ["d0&<", "d5&<", "d10&<", "d15&<", "d20&<", "d25&<", "d29&<"]
    assert len(labels) <= 7
    assert root.findall(f"{SVG}rect")[3].findtext(f"{SVG}title") == "d3&<: $3"


def test_ids_are_made_safe_for_xml() -> None:
    root = parse(line_chart([Point("a", 1)], "t", "9 bad id!"))
    title = root.find(f"{SVG}title")
    assert title is not None and title.get("id") == "c-9-bad-id--title"


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (-3, 1), (0.3, 0.5), (1, 1), (7, 10), (120, 200), (2400, 2500)]
)
def test_the_top_of_the_scale_is_a_round_number(value: float, top: float) -> None:
    assert nice_ceiling(value) == pytest.approx(top)


def test_whole_counts_get_whole_gridlines() -> None:
    root = parse(bar_chart([Point("a", 3), Point("b", 1)], "Counts", "w"))
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "y-label"]
    assert labels == ["0", "1", "2", "3", "4"]
