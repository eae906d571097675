"""The console's server-drawn SVG: charts and the activation QR code.

Each SVG is parsed as XML (what a browser would refuse is refused here), its accessible
name and description are checked, and the geometry is read back: the points drawn are the
values given. The QR code is rasterised from its own path and decoded by zxing-cpp.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from console import charts
from console.qr import qr_svg
from tests.qr_decode import decode

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def _days(n: int, start: date = date(2026, 3, 1)) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


def _symptoms(days: list[date]) -> charts.Chart:
    return charts.symptom_chart(
        title="Symptoms of BJ301-001",
        desc="Scores 0-4 per day",
        days=days,
        scores={
            "Distension": [0, 1, None, 3, 4],
            "Appetite": [1, 1, None, 1, 1],
            "Debilitation": [2, 2, None, 2, 2],
            "Leg oedema": [0, 0, None, 0, 0],
        },
        grade_label="Discomfort <grade>",
        grades=[0, 2, None, 4, 1],
        infusion_days=[(days[1], "Infusion 1"), (date(2030, 1, 1), "outside")],
        day_header="Day",
        mark_header="Event",
    )


def test_symptom_chart_is_titled_svg_with_one_line_per_score_and_the_infusion_marked() -> None:
    days = _days(5)
    chart = _symptoms(days)
    root = _parse(chart.svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    title_id, desc_id = root.get("aria-labelledby").split()
    assert root.find(f"{SVG}title").text == "Symptoms of BJ301-001"
    assert root.find(f"{SVG}title").get("id") == title_id
    assert root.find(f"{SVG}desc").get("id") == desc_id
    labels = [g.get("data-label") for g in root.iter(f"{SVG}g") if g.get("class") == "series"]
    assert labels == ["Distension", "Appetite", "Debilitation", "Leg oedema", "Discomfort <grade>"]
    marks = [g for g in root.iter(f"{SVG}g") if g.get("class") == "mark"]
    assert len(marks) == 1  # the mark outside the days is not drawn
    assert marks[0].find(f"{SVG}text").text == "Infusion 1"
    # The escaped label survives as text in the legend.
    legend_texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Discomfort <grade>" in legend_texts


def test_a_missing_day_breaks_the_line_and_points_sit_where_the_values_say() -> None:
    days = _days(5)
    root = _parse(_symptoms(days).svg)
    distension = next(g for g in root.iter(f"{SVG}g") if g.get("data-label") == "Distension")
    lines = distension.findall(f"{SVG}polyline")
    assert len(lines) == 2  # days 0-1, then 3-4: day 2 has no entry
    first = [tuple(map(float, p.split(","))) for p in lines[0].get("points").split()]
    second = [tuple(map(float, p.split(","))) for p in lines[1].get("points").split()]
    plot_bottom = charts.HEIGHT - charts.MARGIN_BOTTOM
    assert first[0][1] == plot_bottom  # score 0 on the baseline
    assert second[1][1] == charts.MARGIN_TOP  # score 4 at the top
    assert first[0][0] < first[1][0] < second[0][0] < second[1][0]


def test_the_symptom_table_carries_every_value_and_the_mark() -> None:
    days = _days(5)
    chart = _symptoms(days)
    assert chart.headers == [
        "Day",
        "Distension",
        "Appetite",
        "Debilitation",
        "Leg oedema",
        "Discomfort <grade>",
        "Event",
    ]
    assert [row[0] for row in chart.rows] == [d.isoformat() for d in days if d != days[2]]
    assert chart.rows[1] == ["2026-03-02", "1", "1", "2", "0", "2", "Infusion 1"]
    assert chart.rows[2][5] == "4"


def test_rate_chart_draws_percent_and_the_threshold() -> None:
    days = _days(3)
    chart = charts.rate_chart(
        title="On time",
        desc="Daily",
        days=days,
        rates=[0.5, None, 1.0],
        rate_label="On-time rate",
        day_header="Day",
        threshold=0.8,
    )
    root = _parse(chart.svg)
    assert [t.text for t in root.iter(f"{SVG}text") if t.text and t.text.endswith("%")][:2] == [
        "0 %",
        "25 %",
    ]
    threshold = [e for e in root.iter(f"{SVG}line") if e.get("class") == "threshold"]
    assert len(threshold) == 1
    assert chart.rows == [["2026-03-01", "50 %"], ["2026-03-03", "100 %"]]
    # A lone value between gaps is a dot, not a line of one point.
    assert len(root.findall(f".//{SVG}circle")) == 2


def test_funnel_bars_shrink_with_the_counts_and_show_their_share() -> None:
    chart = charts.funnel_chart(
        title="Reminder funnel",
        desc="Diary reminders",
        stages=[("Sent", 200), ("Delivered", 150), ("Opened", 50), ("Filled in 3 h", 0)],
        stage_header="Stage",
        count_header="Count",
        share_header="Share of sent",
    )
    root = _parse(chart.svg)
    widths = [float(r.get("width")) for r in root.iter(f"{SVG}rect")]
    assert widths[0] > widths[1] > widths[2] > widths[3] == 0
    assert widths[1] / widths[0] == pytest.approx(0.75, abs=0.01)
    assert chart.rows[1] == ["Delivered", "150", "75 %"]
    assert "150 (75 %)" in [t.text for t in root.iter(f"{SVG}text")]


def test_funnel_of_nothing_sent_draws_without_dividing_by_zero() -> None:
    chart = charts.funnel_chart(
        title="t",
        desc="d",
        stages=[("Sent", 0), ("Delivered", 0)],
        stage_header="s",
        count_header="c",
        share_header="p",
    )
    _parse(chart.svg)
    NO = charts.NO_VALUE
    assert chart.rows == [["Sent", "0", NO], ["Delivered", "0", NO]]


def test_qr_code_decodes_to_the_activation_code_and_is_labelled() -> None:
    svg = qr_svg("K7QX-M2PA-9TRD", title="Activation code <K7QX>")
    root = _parse(svg)
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Activation code <K7QX>"
    assert root.find("title").text == "Activation code <K7QX>"
    assert decode(svg) == ["K7QX-M2PA-9TRD"]
    assert decode(qr_svg("ANOTHER-CODE", title="t")) == ["ANOTHER-CODE"]
