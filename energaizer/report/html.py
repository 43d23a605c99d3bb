"""A self-contained HTML page of a cost report: inline CSS, figures as base64 PNG."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from energaizer.fileio import write_text_atomically
from energaizer.report.cost import CostReport, assumption_lines, summary_rows

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}"
    "td.number{text-align:right}img{display:block;margin:1em 0;max-width:100%}"
)


def render_html(report: CostReport, figures: dict[str, bytes]) -> str:
    """Return the page as a string; `figures` maps titles to PNG bytes."""
    title = html.escape(f"Cost report: {report.cost.feature.name}")
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(unit)}</td>"
        + "".join(f'<td class="number">{value}</td>' for value in values) + "</tr>"
        for name, unit, values in summary_rows(report)
    )
    items = "".join(f"<li>{html.escape(line)}</li>" for line in assumption_lines(report))
    images = "".join(
        f"<h3>{html.escape(name)}</h3><img alt=\"{html.escape(name)}\" "
        f"src=\"data:image/png;base64,{base64.b64encode(png).decode('ascii')}\">"
        for name, png in figures.items()
    )
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{title}</h1><table><thead><tr><th>quantity</th><th>unit</th>"
        "<th>per request</th><th>per 1M output tokens</th><th>per day</th>"
        f"<th>per month</th></tr></thead><tbody>{rows}</tbody></table>"
        f"<h2>Assumptions</h2><ul>{items}</ul><h2>Figures</h2>{images}</body></html>\n"
    )


def write_html(report: CostReport, path: Path, figures: dict[str, bytes]) -> None:
    write_text_atomically(path, render_html(report, figures))
