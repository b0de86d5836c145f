"""Small SVG charts for the HTML report, drawn in Python so the report opens anywhere with no network and
no script: bars (alert counts), a price strip against its peers, and a drawing of goods going round a ring.

Every text that reaches the SVG is escaped here (entity names and descriptions come from the files tbml
reads, so they are attacker-controlled); each function returns ``markupsafe.Markup`` so that the report
template inserts the finished drawing as it is.
"""

from __future__ import annotations

import math
from html import escape

import numpy as np
from markupsafe import Markup

from tbml.wording import number

_INK, _MUTED, _ALERT, _BOX, _DOT = "#1f2933", "#7b8794", "#c62828", "#bcccdc", "#486581"


def _t(text) -> str:
    return escape(str(text), quote=True)


def _svg(width: int, height: int, label: str, body: list[str]) -> Markup:
    head = (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{_t(label)}"><title>{_t(label)}</title>')
    return Markup(head + "".join(body) + "</svg>")


def bar_chart(rows: list[tuple[str, float]], label: str, width: int = 560, bar: int = 16) -> Markup:
    """Horizontal bars, one per (name, count), in the order given."""
    left, right, gap = 190, 60, 6
    height = max(1, len(rows)) * (bar + gap) + 8
    top = max((value for _, value in rows), default=0) or 1
    body = []
    for i, (name, value) in enumerate(rows):
        y = 4 + i * (bar + gap)
        length = (width - left - right) * value / top
        shown = name if len(name) <= 28 else name[:27] + "…"
        body.append(f'<text x="{left - 8}" y="{y + bar - 4}" text-anchor="end" font-size="12" fill="{_INK}">'
                    f'<title>{_t(name)}</title>{_t(shown)}</text>')
        body.append(f'<rect x="{left}" y="{y}" width="{max(length, 1):.1f}" height="{bar}" fill="{_DOT}"/>')
        body.append(f'<text x="{left + length + 6:.1f}" y="{y + bar - 4}" font-size="12" fill="{_INK}">'
                    f'{value:,.0f}</text>')
    return _svg(width, height, label, body)


def _tick(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 else f"{x:.3g}"


def _log_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round values spread over [low, high] on a log axis (1-2-5 steps where they fit)."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for steps in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7)):
        ticks = [s * 10.0 ** d for d in decades for s in steps if low <= s * 10.0 ** d <= high]
        if len(ticks) >= 3:
            return ticks if len(ticks) <= count + 2 else ticks[:: math.ceil(len(ticks) / count)]
    return list(np.geomspace(low, high, 4))


def price_chart(peer_prices: np.ndarray, price: float, q1: float, median: float, q3: float,
                fence_low: float, fence_high: float, unit_label: str, width: int = 600, height: int = 160) -> Markup:
    """The line's price (red) against its peers on a log axis: the reference box (Q1, median, Q3), the
    fences beyond which a price is an outlier (dashed), and the file's peer lines as dots."""
    values = [v for v in (price, q1, median, q3, fence_low, fence_high) if v is not None and np.isfinite(v) and v > 0]
    peers = np.asarray(peer_prices, dtype=float)
    peers = np.sort(peers[np.isfinite(peers) & (peers > 0)])
    if len(peers) > 400:  # evenly spaced order statistics keep the shape of the distribution
        peers = peers[np.linspace(0, len(peers) - 1, 400).round().astype(int)]
    low, high = min(values + peers.tolist()), max(values + peers.tolist())
    pad = max((math.log(high) - math.log(low)) * 0.06, 0.05)
    lo, hi = math.log(low) - pad, math.log(high) + pad
    left, right = 20, 20

    def x(v: float) -> float:
        return left + (width - left - right) * (math.log(v) - lo) / (hi - lo)

    axis_y, strip_top, strip_h = height - 38, 28, 70
    body = [f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" stroke="{_MUTED}"/>']
    for tick in _log_ticks(math.exp(lo), math.exp(hi)):
        tx = x(tick)
        body.append(f'<line x1="{tx:.1f}" y1="{axis_y}" x2="{tx:.1f}" y2="{axis_y + 4}" stroke="{_MUTED}"/>'
                    f'<text x="{tx:.1f}" y="{axis_y + 16}" font-size="11" text-anchor="middle" fill="{_MUTED}">'
                    f'{_t(_tick(tick))}</text>')
    body.append(f'<text x="{width - right}" y="{height - 6}" font-size="11" text-anchor="end" fill="{_MUTED}">'
                f'{_t(unit_label)} (log scale)</text>')
    if all(np.isfinite(v) for v in (q1, median, q3)):
        body.append(f'<rect x="{x(q1):.1f}" y="{strip_top + 12}" width="{max(x(q3) - x(q1), 1):.1f}" '
                    f'height="{strip_h - 24}" fill="{_BOX}" opacity="0.7"><title>reference Q1 {_t(number(q1))} '
                    f'to Q3 {_t(number(q3))}</title></rect>')
        body.append(f'<line x1="{x(median):.1f}" y1="{strip_top + 8}" x2="{x(median):.1f}" '
                    f'y2="{strip_top + strip_h - 8}" stroke="{_INK}" stroke-width="2"><title>reference median '
                    f'{_t(number(median))}</title></line>')
    for name, fence in (("lower fence", fence_low), ("upper fence", fence_high)):
        if fence is not None and np.isfinite(fence) and fence > 0:
            fx = x(fence)
            body.append(f'<line x1="{fx:.1f}" y1="{strip_top}" x2="{fx:.1f}" y2="{axis_y}" stroke="{_MUTED}" '
                        f'stroke-dasharray="4 3"><title>{name} {_t(number(fence))}</title></line>')
    for i, value in enumerate(peers):  # a fixed jitter: the same report every time
        jitter = ((i * 0.6180339887) % 1.0) * (strip_h - 10)
        body.append(f'<circle cx="{x(value):.1f}" cy="{strip_top + 5 + jitter:.1f}" r="2.2" fill="{_DOT}" '
                    f'opacity="0.55"/>')
    if np.isfinite(price) and price > 0:
        px = x(price)
        anchor = "end" if px > width * 0.7 else "start"
        dx = -6 if anchor == "end" else 6
        body.append(f'<line x1="{px:.1f}" y1="{strip_top - 6}" x2="{px:.1f}" y2="{axis_y}" stroke="{_ALERT}" '
                    f'stroke-width="2"/><circle cx="{px:.1f}" cy="{strip_top + strip_h / 2:.1f}" r="5" '
                    f'fill="{_ALERT}"><title>this line {_t(number(price))}</title></circle>'
                    f'<text x="{px + dx:.1f}" y="{strip_top - 10}" font-size="12" text-anchor="{anchor}" '
                    f'fill="{_ALERT}">this line {_t(number(price))}</text>')
    return _svg(width, height, f"price {number(price)} against its peers", body)


def ring_chart(edges: list[tuple[str, str, str]], chart_id: str, label: str, size: int = 320) -> Markup:
    """Traders on a circle, an arrow from seller to buyer for each (seller, buyer, note) leg: goods that
    go round come back to where they started."""
    nodes: list[str] = []
    for seller, buyer, _ in edges:
        for name in (seller, buyer):
            if name not in nodes:
                nodes.append(name)
    cx = cy = size / 2
    radius = size / 2 - 70
    place = {}
    for i, name in enumerate(nodes):
        angle = -math.pi / 2 + 2 * math.pi * i / max(len(nodes), 1)
        place[name] = (cx + radius * math.cos(angle), cy + radius * math.sin(angle), angle)
    marker = f"arrow-{_t(chart_id)}"
    body = [f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{_ALERT}"/>'
            f'</marker></defs>']
    node_r = 9
    for seller, buyer, note in edges:
        (x1, y1, _), (x2, y2, _) = place[seller], place[buyer]
        dx, dy = x2 - x1, y2 - y1
        dist = math.hypot(dx, dy) or 1.0
        ux, uy = dx / dist, dy / dist
        sx, sy, ex, ey = x1 + ux * node_r, y1 + uy * node_r, x2 - ux * (node_r + 2), y2 - uy * (node_r + 2)
        # bend to the right of travel, so A->B and B->A are two visible arrows
        mx, my = (sx + ex) / 2 - uy * dist * 0.18, (sy + ey) / 2 + ux * dist * 0.18
        body.append(f'<path d="M {sx:.1f} {sy:.1f} Q {mx:.1f} {my:.1f} {ex:.1f} {ey:.1f}" fill="none" '
                    f'stroke="{_ALERT}" stroke-width="1.6" marker-end="url(#{marker})">'
                    f'<title>{_t(seller)} to {_t(buyer)}: {_t(note)}</title></path>')
    for name, (nx, ny, angle) in place.items():
        tx, ty = nx + math.cos(angle) * 16, ny + math.sin(angle) * 16 + 4
        anchor = "middle" if abs(math.cos(angle)) < 0.3 else ("start" if math.cos(angle) > 0 else "end")
        shown = name if len(name) <= 18 else name[:17] + "…"
        body.append(f'<circle cx="{nx:.1f}" cy="{ny:.1f}" r="{node_r}" fill="#fff" stroke="{_INK}" '
                    f'stroke-width="1.5"><title>{_t(name)}</title></circle>'
                    f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="11" text-anchor="{anchor}" fill="{_INK}">'
                    f'{_t(shown)}</text>')
    return _svg(size, size, label, body)
