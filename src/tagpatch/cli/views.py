"""Pure formatting of what the CLI read: tables, CSV, JSON and the self-contained HTML report."""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tagpatch.models import display

Cell = str | int | float | Decimal | None

CHART_WIDTH = 760
CHART_HEIGHT = 280
CHART_MARGIN = 40
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def text(value: Cell) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float | Decimal):
        return f"{float(value):.1f}"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """Aligned columns, a rule under the header; no trailing spaces. A cell that could be misread
    (a line break, a control or bidi character, edge blanks: group names are tag values) is
    quoted and escaped (:func:`tagpatch.models.display.cell`)."""
    cells = [list(header), *[[display.cell(text(cell)) for cell in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for index, row in enumerate(cells):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines) + "\n"


def to_csv(header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if cell is None else cell for cell in row])
    return out.getvalue()


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=_plain) + "\n"


# --------------------------------------------------------------------------------------------
# Compliance report
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Point:
    snapshot_id: str
    instances: int
    compliant_instances: int
    compliance_percent: Decimal | None


@dataclass(frozen=True)
class GroupTrend:
    group: str
    points: list[Point] = field(default_factory=list)

    @property
    def latest(self) -> Point | None:
        return self.points[-1] if self.points else None

    @property
    def change(self) -> Decimal | None:
        known = [p.compliance_percent for p in self.points if p.compliance_percent is not None]
        return known[-1] - known[-2] if len(known) >= 2 else None


REPORT_HEADER = ("GROUP", "SNAPSHOT", "INSTANCES", "COMPLIANT", "COMPLIANCE %", "CHANGE", "SNAPSHOTS")
TREND_HEADER = ("group", "snapshot_id", "instances", "compliant_instances", "compliance_percent")


def report_rows(trends: Sequence[GroupTrend]) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for trend in trends:
        latest = trend.latest
        if latest is None:
            rows.append([trend.group, None, None, None, None, None, 0])
            continue
        change = trend.change
        rows.append(
            [
                trend.group,
                latest.snapshot_id,
                latest.instances,
                latest.compliant_instances,
                latest.compliance_percent,
                None if change is None else f"{float(change):+.1f}",
                len(trend.points),
            ]
        )
    return rows


def report_table(trends: Sequence[GroupTrend]) -> str:
    return table(REPORT_HEADER, report_rows(trends))


def report_csv(trends: Sequence[GroupTrend]) -> str:
    rows: list[list[Cell]] = [
        [t.group, p.snapshot_id, p.instances, p.compliant_instances, p.compliance_percent]
        for t in trends
        for p in t.points
    ]
    return to_csv(TREND_HEADER, rows)


def report_json(trends: Sequence[GroupTrend]) -> str:
    def point(p: Point) -> dict[str, Any]:
        return {
            "snapshotId": p.snapshot_id,
            "instances": p.instances,
            "compliantInstances": p.compliant_instances,
            "compliancePercent": p.compliance_percent,
        }

    return to_json(
        {
            "groups": [
                {
                    "group": t.group,
                    "latest": None if t.latest is None else point(t.latest),
                    "change": t.change,
                    "trend": [point(p) for p in t.points],
                }
                for t in trends
            ]
        }
    )


def _moment(snapshot_id: str) -> float | None:
    try:
        moment = datetime.fromisoformat(snapshot_id.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


LEGEND_STEP = 130  # px per legend entry; entries wrap onto further rows under the chart
LEGEND_ROW = 16


def compliance_chart(trends: Sequence[GroupTrend], *, series: str = "group") -> str:
    """An inline SVG: one line (``path.series``, ``data-<series>`` its name) per trend of compliance %
    over time (a snapshot id or a day, ISO 8601); the legend wraps onto as many rows as it needs."""
    moments = sorted(
        {
            moment
            for trend in trends
            for p in trend.points
            if p.compliance_percent is not None and (moment := _moment(p.snapshot_id)) is not None
        }
    )
    low, high = (moments[0], moments[-1]) if moments else (0.0, 0.0)
    span = (high - low) or 1.0
    inner_w, inner_h = CHART_WIDTH - 2 * CHART_MARGIN, CHART_HEIGHT - 2 * CHART_MARGIN

    def x(moment: float) -> float:
        if high == low:
            return CHART_MARGIN + inner_w / 2
        return CHART_MARGIN + (moment - low) / span * inner_w

    def y(percent: Decimal) -> float:
        return CHART_MARGIN + (1 - float(percent) / 100) * inner_h

    per_row = max(1, (CHART_WIDTH - CHART_MARGIN) // LEGEND_STEP)
    drawn = sum(1 for trend in trends if any(p.compliance_percent is not None for p in trend.points))
    height = CHART_HEIGHT + LEGEND_ROW * max(0, (drawn - 1) // per_row)
    parts = [
        f'<svg id="compliance-chart" xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" '
        f'height="{height}" viewBox="0 0 {CHART_WIDTH} {height}" role="img" '
        f'aria-label="Compliance % over time per {html.escape(series, quote=True)}">'
    ]
    for percent in (0, 25, 50, 75, 100):
        level = y(Decimal(percent))
        parts.append(
            f'<line class="grid" x1="{CHART_MARGIN}" y1="{level:.1f}" x2="{CHART_WIDTH - CHART_MARGIN}" '
            f'y2="{level:.1f}"/><text class="axis" x="{CHART_MARGIN - 6}" y="{level + 4:.1f}" '
            f'text-anchor="end">{percent}%</text>'
        )
    attribute = "data-" + "".join(c for c in series.lower() if c.isalnum() or c == "-")
    index = 0
    for trend in trends:
        points = [
            (x(m), y(p.compliance_percent))
            for p in trend.points
            if p.compliance_percent is not None and (m := _moment(p.snapshot_id)) is not None
        ]
        if not points:
            continue
        colour = COLOURS[index % len(COLOURS)]
        steps = " ".join(f"{'M' if i == 0 else 'L'}{px:.1f},{py:.1f}" for i, (px, py) in enumerate(points))
        name = html.escape(trend.group, quote=True)
        parts.append(
            f'<path class="series" {attribute}="{name}" d="{steps}" fill="none" stroke="{colour}" '
            'stroke-width="2"/>'
        )
        parts.extend(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"><title>{name}</title></circle>'
            for px, py in points
        )
        row, column = divmod(index, per_row)
        parts.append(
            f'<text class="legend" x="{CHART_MARGIN + 8 + LEGEND_STEP * column}" '
            f'y="{CHART_HEIGHT - 10 + LEGEND_ROW * row}" fill="{colour}">&#9632; {name}</text>'
        )
        index += 1
    if moments:
        for moment, anchor in ((low, "start"), (high, "end")):
            label = datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%d %H:%M")
            parts.append(
                f'<text class="axis" x="{x(moment):.1f}" y="{CHART_HEIGHT - CHART_MARGIN + 16}" '
                f'text-anchor="{anchor}">{label}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.4rem; }
table { border-collapse: collapse; margin-top: 1rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; }
th { background: #f3f3f3; }
td.num { text-align: right; }
svg .grid { stroke: #ddd; }
svg .axis { font-size: 11px; fill: #555; }
svg .legend { font-size: 12px; font-weight: bold; }
"""


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{html.escape(text(cell))}</td>'
            if isinstance(cell, int | float | Decimal)
            else f"<td>{html.escape(text(cell))}</td>"
            for cell in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_page(
    title: str,
    *,
    generated_at: str,
    trends: Sequence[GroupTrend],
    series: str,
    table_title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    notes: Sequence[str] = (),
) -> str:
    """One self-contained page: inline CSS, the inline SVG chart of ``trends`` and a table."""
    title = html.escape(title)
    lines = "".join(f"<p>{html.escape(note)}</p>" for note in notes)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{title}</h1><p>Generated {html.escape(generated_at)}.</p>{lines}"
        f"<h2>Compliance % over time</h2>{compliance_chart(trends, series=series)}"
        f"<h2>{html.escape(table_title)}</h2>{_html_table(header, rows)}"
        "</body></html>\n"
    )


def report_html(trends: Sequence[GroupTrend], *, stack: str, generated_at: str) -> str:
    """One self-contained page: inline CSS, the inline SVG chart and the latest snapshot table."""
    return html_page(
        f"TagPatch compliance - {stack}",
        generated_at=generated_at,
        trends=trends,
        series="group",
        table_title="Latest snapshot",
        header=REPORT_HEADER,
        rows=report_rows(trends),
    )
