"""The status page's picture of the last 24 hours: bar charts as inline SVG, drawn here.

No JavaScript and nothing loaded from elsewhere (the page's CSP allows neither): the SVG
scales with the page (``viewBox``, ``width: 100%``), so it stays readable at phone width.
Only numbers and fixed words go into it, never anything from a request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup

HOURS = 24
# The store's hourly counters (storage/state.py): calls, and each delivery attempt's outcome.
STEP_STATUSES = (("ok", "#1a7f37"), ("skipped", "#8c959f"), ("parked", "#bf8700"),
                 ("dead", "#cf222e"))
NAMES = ("calls", *(f"step-{status}" for status, _ in STEP_STATUSES))
WIDTH, HEIGHT, AXIS = 480, 160, 30  # viewBox units; AXIS: room for the hour labels below
FONT = 20  # about 13 px when the chart is 320 px wide (a 390 px phone)


def last_hours(hours: list[tuple[float, dict[str, int]]]) -> dict[str, Any]:
    """What the page shows: two SVGs and the totals, from ``StateStore.hourly(NAMES)``."""
    steps = [(f"step-{status}", status, colour) for status, colour in STEP_STATUSES]
    return {
        "calls_svg": bars(hours, [("calls", "calls", "#0b5cad")], "Calls per hour"),
        "steps_svg": bars(hours, steps, "Deliveries per hour by status"),
        "calls": sum(counts["calls"] for _, counts in hours),
        "steps": [(status, colour, sum(counts[name] for _, counts in hours))
                  for name, status, colour in steps],
    }


def bars(hours: list[tuple[float, dict[str, int]]], series: list[tuple[str, str, str]],
         title: str) -> Markup:
    """Stacked bars, one per hour, of ``series`` ((counter name, label, colour), ...)."""
    top = max([sum(counts[name] for name, _, _ in series) for _, counts in hours] + [1])
    slot = WIDTH / max(len(hours), 1)
    plot = HEIGHT - AXIS
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{title}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{title}</title>",
             f'<line x1="0" y1="{plot}" x2="{WIDTH}" y2="{plot}" stroke="#dde2e8"/>',
             f'<text x="{WIDTH - 2}" y="{FONT}" text-anchor="end" font-size="{FONT}" '
             f'fill="#5f6b7a">max {top}</text>']
    for index, (start, counts) in enumerate(hours):
        hour = datetime.fromtimestamp(start, UTC).strftime("%H:00")
        x, y = index * slot + 2, float(plot)
        for name, label, colour in series:
            height = counts[name] / top * (plot - FONT - 6)
            if height:
                y -= height
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot - 4:.1f}" '
                             f'height="{height:.1f}" fill="{colour}">'
                             f"<title>{hour} UTC: {counts[name]} {label}</title></rect>")
        if index % 6 == 0 or index == len(hours) - 1:
            # The first and last labels align with the edges, so neither is cut off.
            anchor, at = (("start", x - 2) if index == 0 else
                          ("end", x + slot - 2) if index == len(hours) - 1 else
                          ("middle", x + (slot - 4) / 2))
            parts.append(f'<text x="{at:.1f}" y="{HEIGHT - 4}" text-anchor="{anchor}" '
                         f'font-size="{FONT}" fill="#5f6b7a">{hour}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
