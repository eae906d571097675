"""SVG charts drawn on the server: no script, no library, readable without sight.

Each chart is returned with its text alternative: the SVG carries a <title> and a <desc>
(and `role="img"` with `aria-labelledby` on them), and the same numbers come back as a
table the page shows beside it. Labels arrive already translated: this module knows no
language, only geometry. Every text that reaches the SVG is XML-escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import count
from xml.sax.saxutils import escape, quoteattr

from markupsafe import Markup

WIDTH = 720
HEIGHT = 260
MARGIN_LEFT = 44
MARGIN_RIGHT = 16
MARGIN_TOP = 16
MARGIN_BOTTOM = 40
# Colours with at least 3:1 contrast against white, told apart by dash as well as hue.
PALETTE = ("#1f5fa8", "#b34700", "#2e7d32", "#7b1fa2", "#b00020")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "")

_ids = count(1)
NO_VALUE = "\u2013"  # an en dash: no value that day


@dataclass(frozen=True)
class Series:
    """One line: a label and a value per day (None where the day has no value)."""

    label: str
    values: Sequence[float | None]
    strong: bool = False


@dataclass(frozen=True)
class Chart:
    """An SVG and its text alternative (caption, column headers, rows)."""

    svg: Markup
    caption: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)


def _fmt(value: float | None) -> str:
    if value is None:
        return NO_VALUE
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def _svg_open(chart_id: str, title: str, desc: str, height: int = HEIGHT) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
        f'class="chart" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>',
    ]


class _Frame:
    """Maps day index and value to plot coordinates."""

    def __init__(self, n_days: int, y_max: float) -> None:
        self.n = max(n_days, 1)
        self.y_max = y_max or 1
        self.plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
        self.plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def x(self, index: int) -> float:
        if self.n == 1:
            return MARGIN_LEFT + self.plot_w / 2
        return round(MARGIN_LEFT + self.plot_w * index / (self.n - 1), 1)

    def y(self, value: float) -> float:
        return round(MARGIN_TOP + self.plot_h * (1 - value / self.y_max), 1)


def _axes(frame: _Frame, days: Sequence[date], y_ticks: Sequence[float], y_fmt) -> list[str]:
    parts = ['<g class="axes" font-size="11" fill="#333">']
    for tick in y_ticks:
        y = frame.y(tick)
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y}" y2="{y}" '
            'stroke="#ddd" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4}" text-anchor="end">'
            f"{escape(y_fmt(tick))}</text>"
        )
    ticks = _x_tick_indexes(len(days))
    for index in ticks:
        x = frame.x(index)
        # The outermost labels hang inwards, so none runs past the picture's edge.
        anchor = "middle"
        if len(ticks) > 1 and index == ticks[0]:
            anchor = "start"
        elif len(ticks) > 1 and index == ticks[-1]:
            anchor = "end"
        parts.append(
            f'<text x="{x}" y="{HEIGHT - MARGIN_BOTTOM + 16}" text-anchor="{anchor}">'
            f"{days[index].isoformat()}</text>"
        )
    parts.append("</g>")
    return parts


def _x_tick_indexes(n: int, most: int = 6) -> list[int]:
    """Up to `most` evenly spread day labels, always the first and the last."""
    if n <= 0:
        return []
    if n <= most:
        return list(range(n))
    step = (n - 1) / (most - 1)
    return sorted({round(i * step) for i in range(most)})


def _polylines(frame: _Frame, series: Sequence[Series]) -> list[str]:
    """One polyline per unbroken run of values: a missing day breaks the line."""
    parts: list[str] = []
    for number, line in enumerate(series):
        colour = PALETTE[number % len(PALETTE)]
        dash = DASHES[number % len(DASHES)]
        width = 2.5 if line.strong else 1.5
        parts.append(f'<g class="series" data-label={quoteattr(line.label)}>')
        run: list[str] = []
        for index, value in enumerate([*line.values, None]):
            if value is not None:
                run.append(f"{frame.x(index)},{frame.y(value)}")
                continue
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>')
            elif run:
                dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
                parts.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="{width}"'
                    f'{dash_attr} points="{" ".join(run)}"/>'
                )
            run = []
        parts.append("</g>")
    return parts


def _legend(series: Sequence[Series], y: int) -> list[str]:
    parts = [f'<g class="legend" font-size="11" transform="translate({MARGIN_LEFT},{y})">']
    x = 0
    for number, line in enumerate(series):
        colour = PALETTE[number % len(PALETTE)]
        dash = DASHES[number % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<line x1="{x}" x2="{x + 18}" y1="0" y2="0" stroke="{colour}" '
            f'stroke-width="2"{dash_attr}/>'
        )
        parts.append(f'<text x="{x + 22}" y="4" fill="#222">{escape(line.label)}</text>')
        x += 30 + 7 * max(len(line.label), 4)
    parts.append("</g>")
    return parts


def line_chart(
    *,
    title: str,
    desc: str,
    days: Sequence[date],
    series: Sequence[Series],
    y_max: float,
    y_ticks: Sequence[float],
    y_format=_fmt,
    marks: Sequence[tuple[date, str]] = (),
    day_header: str = "Day",
    mark_header: str = "",
) -> Chart:
    """Lines over consecutive `days` with vertical marks (e.g. infusion days).

    The table has one row per day that has a value or a mark, so a reader of the table
    learns everything the picture shows.
    """
    chart_id = f"chart{next(_ids)}"
    frame = _Frame(len(days), y_max)
    index_of = {day: i for i, day in enumerate(days)}
    legend_y = HEIGHT + 8
    parts = _svg_open(chart_id, title, desc, height=HEIGHT + 20)
    parts += _axes(frame, days, y_ticks, y_format)
    mark_labels: dict[date, str] = {}
    for day, label in marks:
        if day not in index_of:
            continue
        mark_labels[day] = label
        x = frame.x(index_of[day])
        parts.append(
            f'<g class="mark"><line x1="{x}" x2="{x}" y1="{MARGIN_TOP}" '
            f'y2="{HEIGHT - MARGIN_BOTTOM}" stroke="#555" stroke-width="1" '
            f'stroke-dasharray="3 3"/><text x="{x + 3}" y="{MARGIN_TOP + 10}" '
            f'font-size="11" fill="#333">{escape(label)}</text></g>'
        )
    parts += _polylines(frame, series)
    parts += _legend(series, legend_y)
    parts.append("</svg>")
    headers = [day_header, *(s.label for s in series)]
    if marks:
        headers.append(mark_header)
    rows = []
    for index, day in enumerate(days):
        values = [s.values[index] if index < len(s.values) else None for s in series]
        if all(v is None for v in values) and day not in mark_labels:
            continue
        row = [day.isoformat(), *(_fmt(v) for v in values)]
        if marks:
            row.append(mark_labels.get(day, ""))
        rows.append(row)
    return Chart(Markup("".join(parts)), title, headers, rows)


def symptom_chart(
    *,
    title: str,
    desc: str,
    days: Sequence[date],
    scores: dict[str, Sequence[int | None]],
    grade_label: str,
    grades: Sequence[int | None],
    infusion_days: Sequence[tuple[date, str]],
    day_header: str,
    mark_header: str,
) -> Chart:
    """The four symptom scores and the discomfort grade (all 0-4), infusions marked."""
    series = [Series(label, values) for label, values in scores.items()]
    series.append(Series(grade_label, grades, strong=True))
    return line_chart(
        title=title,
        desc=desc,
        days=days,
        series=series,
        y_max=4,
        y_ticks=(0, 1, 2, 3, 4),
        marks=infusion_days,
        day_header=day_header,
        mark_header=mark_header,
    )


def _percent(value: float | None) -> str:
    return NO_VALUE if value is None else f"{round(value * 100)} %"


def rate_chart(
    *,
    title: str,
    desc: str,
    days: Sequence[date],
    rates: Sequence[float | None],
    rate_label: str,
    day_header: str,
    threshold: float | None = None,
) -> Chart:
    """The daily on-time rate (0-1) as a line, drawn in percent, with the threshold."""
    chart = line_chart(
        title=title,
        desc=desc,
        days=days,
        series=[Series(rate_label, rates, strong=True)],
        y_max=1,
        y_ticks=(0, 0.25, 0.5, 0.75, 1),
        y_format=lambda v: f"{round(v * 100)} %",
        day_header=day_header,
    )
    svg = str(chart.svg)
    if threshold is not None:
        frame = _Frame(len(days), 1)
        y = frame.y(threshold)
        line = (
            f'<line class="threshold" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" '
            f'y1="{y}" y2="{y}" stroke="#b00020" stroke-width="1" stroke-dasharray="5 4"/>'
        )
        svg = svg.replace('<g class="series"', line + '<g class="series"', 1)
    rows = [
        [day.isoformat(), _percent(rate)]
        for day, rate in zip(days, rates, strict=False)
        if rate is not None
    ]
    return Chart(Markup(svg), chart.caption, chart.headers, rows)


def funnel_chart(
    *,
    title: str,
    desc: str,
    stages: Sequence[tuple[str, int]],
    stage_header: str,
    count_header: str,
    share_header: str,
) -> Chart:
    """Horizontal bars, one per stage, each with its count and its share of the first."""
    chart_id = f"chart{next(_ids)}"
    bar_h, gap, label_w = 26, 10, 190
    height = MARGIN_TOP * 2 + len(stages) * (bar_h + gap)
    top = stages[0][1] if stages else 0
    plot_w = WIDTH - label_w - 110
    parts = _svg_open(chart_id, title, desc, height=height)
    rows = []
    for number, (label, value) in enumerate(stages):
        y = MARGIN_TOP + number * (bar_h + gap)
        share = value / top if top else None
        width = round(plot_w * (share or 0), 1)
        parts.append(
            f'<g class="stage"><text x="{label_w - 8}" y="{y + bar_h / 2 + 4}" '
            f'text-anchor="end" font-size="12" fill="#222">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{width}" height="{bar_h}" '
            f'fill="{PALETTE[0]}"/>'
            f'<text x="{label_w + width + 6}" y="{y + bar_h / 2 + 4}" font-size="12" '
            f'fill="#222">{value} ({_percent(share)})</text></g>'
        )
        rows.append([label, str(value), _percent(share)])
    parts.append("</svg>")
    return Chart(Markup("".join(parts)), title, [stage_header, count_header, share_header], rows)
