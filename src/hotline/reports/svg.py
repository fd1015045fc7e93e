"""Tiny server-side SVG charts (bars and a line) for the printable report: no JavaScript, no CDN, all text
escaped. Each function returns one ``<svg>`` element as a string, sized by ``viewBox`` so it scales with the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart", "line_chart"]

_W, _H = 640, 240
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 44, 12, 24, 40
_COLORS = ("#2f6db5", "#d9822b", "#3a9b5c", "#b53a3a")


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _frame(title: str, body: list[str], *, label_id: str) -> str:
    t = escape(title)
    return (
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" aria-labelledby="{label_id}" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="{label_id}">{t}</title>'
        f'<text x="{_PAD_L}" y="16" class="chart-title" font-size="13" font-weight="bold">{t}</text>'
        + "".join(body)
        + "</svg>"
    )


def _axis(top: float, unit: str) -> list[str]:
    inner_h = _H - _PAD_T - _PAD_B
    out = []
    for frac in (0, 0.5, 1):
        y = _PAD_T + inner_h * (1 - frac)
        out.append(
            f'<line x1="{_PAD_L}" x2="{_W - _PAD_R}" y1="{_num(y)}" y2="{_num(y)}" stroke="#ddd" stroke-width="1"/>'
            f'<text x="{_PAD_L - 4}" y="{_num(y + 4)}" text-anchor="end" font-size="10">'
            f"{escape(_num(top * frac))}{escape(unit)}</text>"
        )
    return out


def _labels(labels: Sequence[str], xs: Sequence[float]) -> list[str]:
    step = max(1, len(labels) // 24)
    return [
        f'<text x="{_num(x)}" y="{_H - _PAD_B + 14}" text-anchor="middle" font-size="10">{escape(str(label))}</text>'
        for i, (label, x) in enumerate(zip(labels, xs, strict=True))
        if i % step == 0
    ]


def _legend(names: Sequence[str]) -> list[str]:
    out = []
    x = _PAD_L
    for i, name in enumerate(names):
        color = _COLORS[i % len(_COLORS)]
        out.append(
            f'<rect x="{x}" y="{_H - 14}" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14}" y="{_H - 5}" font-size="10">{escape(name)}</text>'
        )
        x += 14 + 7 * len(name) + 16
    return out


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    unit: str = "",
    chart_id: str = "chart",
) -> str:
    """Grouped bars: one group per label, one bar per series (name, values)."""
    values = [v for _, vs in series for v in vs]
    top = max(values, default=0) or 1
    inner_w = _W - _PAD_L - _PAD_R
    inner_h = _H - _PAD_T - _PAD_B
    n = max(len(labels), 1)
    group_w = inner_w / n
    bar_w = group_w * 0.8 / max(len(series), 1)
    body = _axis(top, unit)
    centers = []
    for i, label in enumerate(labels):
        x0 = _PAD_L + i * group_w + group_w * 0.1
        centers.append(_PAD_L + (i + 0.5) * group_w)
        for j, (name, vs) in enumerate(series):
            v = vs[i] if i < len(vs) else 0
            h = inner_h * v / top
            body.append(
                f'<rect x="{_num(x0 + j * bar_w)}" y="{_num(_PAD_T + inner_h - h)}" width="{_num(bar_w)}" '
                f'height="{_num(h)}" fill="{_COLORS[j % len(_COLORS)]}">'
                f"<title>{escape(f'{name} {label}: {_num(v)}{unit}')}</title></rect>"
            )
    body += _labels(labels, centers)
    if len(series) > 1:
        body += _legend([name for name, _ in series])
    return _frame(title, body, label_id=escape(chart_id, quote=True))


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    unit: str = "",
    top: float | None = None,
    chart_id: str = "chart",
) -> str:
    """Lines with points; a ``None`` value breaks the line (no data in that slot)."""
    values = [v for _, vs in series for v in vs if v is not None]
    top = top or max(values, default=0) or 1
    inner_w = _W - _PAD_L - _PAD_R
    inner_h = _H - _PAD_T - _PAD_B
    n = max(len(labels), 1)
    step = inner_w / n
    xs = [_PAD_L + (i + 0.5) * step for i in range(len(labels))]
    body = _axis(top, unit)
    for j, (_name, vs) in enumerate(series):
        color = _COLORS[j % len(_COLORS)]
        segment: list[str] = []
        segments: list[list[str]] = []
        for x, v in zip(xs, vs, strict=False):
            if v is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            y = _PAD_T + inner_h * (1 - min(v, top) / top)
            segment.append(f"{_num(x)},{_num(y)}")
        if segment:
            segments.append(segment)
        for seg in segments:
            body.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(seg)}"/>')
    body += _labels(labels, xs)
    if len(series) > 1:
        body += _legend([name for name, _ in series])
    return _frame(title, body, label_id=escape(chart_id, quote=True))
