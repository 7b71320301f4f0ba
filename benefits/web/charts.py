"""Small SVG charts drawn on the server (no JavaScript, no CDN; they print as they show).

Example:
    >>> svg = bar_chart([("低保", 10.0, 8.0), ("高龄", 5.0, None)], title="amount")
    >>> svg.startswith("<svg") and "低保" in svg
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PRIMARY = "#1d4f91"
PREVIOUS = "#b8c7dc"
ACCENT = "#c8102e"


def _fmt(value: float) -> str:
    if abs(value) >= 10000:
        return f"{value / 10000:,.1f}万"
    if abs(value) >= 100 or value == int(value):
        return f"{round(value):,}"
    return f"{value:,.2f}"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bar_chart(
    rows: Sequence[tuple[str, float, float | None]],
    *,
    title: str,
    width: int = 560,
    bar: int = 16,
    label_width: int = 150,
    color: str = PRIMARY,
    max_label: int = 14,
) -> str:
    """Horizontal bars, one per (label, value, previous value or None); previous as a ghost.

    Accessible: the SVG has a title and each bar a <title> with its exact value.
    """
    gap = 8
    height = max(1, len(rows)) * (bar + gap) + 28
    top = max([abs(v) for _, v, _ in rows] + [abs(p) for _, _, p in rows if p] + [1.0])
    plot = width - label_width - 70
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
    ]
    y = 6
    for text, value, prev in rows:
        w = max(1.0, plot * abs(value) / top) if value else 0
        parts.append(
            f'<text x="{label_width - 8}" y="{y + bar - 4}" text-anchor="end" '
            f'class="chart-label">{escape(_short(text, max_label))}</text>'
        )
        if prev:
            pw = max(1.0, plot * abs(prev) / top)
            parts.append(
                f'<rect x="{label_width}" y="{y + bar - 5}" width="{pw:.1f}" height="5" '
                f'fill="{PREVIOUS}"><title>{escape(text)} 上月 / last month: '
                f"{_fmt(prev)}</title></rect>"
            )
        parts.append(
            f'<rect x="{label_width}" y="{y}" width="{w:.1f}" height="{bar - 6}" rx="2" '
            f'fill="{color}"><title>{escape(text)}: {_fmt(value)}</title></rect>'
        )
        parts.append(
            f'<text x="{label_width + w + 6:.1f}" y="{y + bar - 6}" class="chart-value">'
            f"{_fmt(value)}</text>"
        )
        y += bar + gap
    parts.append(
        f'<line x1="{label_width}" y1="2" x2="{label_width}" y2="{y}" stroke="#8795a8" '
        'stroke-width="1"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def column_chart(
    rows: Sequence[tuple[str, float]],
    *,
    title: str,
    width: int = 1100,
    height: int = 220,
    color: str = PRIMARY,
    highlight: Sequence[str] = (),
) -> str:
    """Vertical columns for many categories (e.g. 43 communities), labels rotated."""
    n = max(1, len(rows))
    left, bottom, top_pad = 48, 56, 12
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    top = max([v for _, v in rows] + [1.0])
    step = plot_w / n
    bw = max(2.0, step * 0.7)
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
    ]
    for frac in (0.0, 0.5, 1.0):
        yy = top_pad + plot_h * (1 - frac)
        parts.append(
            f'<line x1="{left}" y1="{yy:.1f}" x2="{width - 10}" y2="{yy:.1f}" stroke="#e1e6ee"/>'
            f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" class="chart-axis">'
            f"{_fmt(top * frac)}</text>"
        )
    for i, (text, value) in enumerate(rows):
        h = plot_h * value / top
        x = left + i * step + (step - bw) / 2
        fill = ACCENT if text in highlight else color
        parts.append(
            f'<rect x="{x:.1f}" y="{top_pad + plot_h - h:.1f}" width="{bw:.1f}" height="{h:.1f}" '
            f'fill="{fill}"><title>{escape(text)}: {_fmt(value)}</title></rect>'
        )
        lx, ly = x + bw / 2, top_pad + plot_h + 8
        parts.append(
            f'<text x="{lx:.1f}" y="{ly:.1f}" transform="rotate(60 {lx:.1f} {ly:.1f})" '
            f'class="chart-axis">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
