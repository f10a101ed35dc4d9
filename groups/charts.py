"""Member-count charts drawn on the server as inline SVG: no charting library, no JavaScript, no build step."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

# Colours of the stock admin theme, so the charts look at home in both light and dark mode.
LINE = "var(--link-fg, #417690)"
FILL = "var(--selected-row, #ffc)"
GRID = "var(--hairline-color, #e8e8e8)"
TEXT = "var(--body-quiet-color, #666)"


def _scale(values: Sequence[float], low: float, high: float) -> list[float]:
    lowest, highest = min(values), max(values)
    if highest == lowest:
        # A flat line sits in the middle rather than on the floor, so "no change" does not read as "zero".
        return [(low + high) / 2 for _ in values]
    return [high - (v - lowest) / (highest - lowest) * (high - low) for v in values]


def sparkline(counts: Sequence[int], *, width: int = 100, height: int = 24) -> SafeString:
    """A tiny trend line for the group list; an empty string when there is nothing to draw."""
    if not counts:
        return mark_safe("")
    if len(counts) == 1:
        counts = [counts[0], counts[0]]
    pad = 2
    ys = _scale(counts, pad, height - pad)
    step = (width - 2 * pad) / (len(counts) - 1)
    points = " ".join(f"{pad + i * step:.1f},{y:.1f}" for i, y in enumerate(ys))
    change = counts[-1] - counts[0]
    title = f"{counts[0]} → {counts[-1]} ({change:+d})"
    return format_html(
        '<svg class="sparkline" width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        "<title>{}</title>"
        '<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/></svg>',
        width,
        height,
        width,
        height,
        title,
        title,
        mark_safe(LINE),
        points,
    )


def trend_chart(
    points: Sequence[tuple[datetime, int]], *, width: int = 760, height: int = 220, date_format: str = "%d %b"
) -> SafeString:
    """A line chart of (moment, member count) with axes, for the Members tab."""
    if not points:
        return format_html('<p class="help">{}</p>', "No size history yet: the chart fills in after refreshes.")
    if len(points) == 1:
        points = [points[0], points[0]]
    left, right, top, bottom = 48, 12, 12, 28
    times = [p[0].timestamp() for p in points]
    counts = [p[1] for p in points]
    first, last = min(times), max(times)
    span = (last - first) or 1.0
    highest = max(counts) or 1
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(t: float) -> float:
        return left + (t - first) / span * plot_w

    def y(count: int) -> float:
        return top + plot_h - count / highest * plot_h

    parts = [
        f'<svg class="trend-chart" width="100%" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Member count over time" style="max-width:{width}px">'
    ]
    for fraction in (0, 0.5, 1):  # gridlines at zero, half and the highest count
        value = round(highest * fraction)
        gy = y(value)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{gy:.1f}" y2="{gy:.1f}" stroke="{GRID}"/>')
        parts.append(
            f'<text x="{left - 6}" y="{gy + 4:.1f}" text-anchor="end" font-size="11" fill="{TEXT}">{value}</text>'
        )
    for t, anchor in ((first, "start"), (last, "end")):
        label = escape(points[times.index(t)][0].strftime(date_format))
        parts.append(
            f'<text x="{x(t):.1f}" y="{height - 8}" text-anchor="{anchor}" font-size="11" fill="{TEXT}">{label}</text>'
        )
    line = " ".join(f"{x(t):.1f},{y(c):.1f}" for t, c in zip(times, counts, strict=True))
    area = f"{x(first):.1f},{y(0):.1f} {line} {x(last):.1f},{y(0):.1f}"
    parts.append(f'<polygon fill="{FILL}" opacity="0.6" points="{area}"/>')
    parts.append(f'<polyline fill="none" stroke="{LINE}" stroke-width="2" points="{line}"/>')
    # Dots mark each snapshot where there is room for them; a long range is read from the line.
    dotted = zip(points, times, strict=True) if len(points) <= 40 else []
    for (moment, count), t in dotted:
        label = escape(f"{moment.strftime(date_format + ' %H:%M %Z')}: {count}")
        parts.append(
            f'<circle cx="{x(t):.1f}" cy="{y(count):.1f}" r="2.5" fill="{LINE}"><title>{label}</title></circle>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))
