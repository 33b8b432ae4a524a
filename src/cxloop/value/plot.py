"""The holdout plot as a small standalone SVG: actual against predicted mean repeat purchases by
calibration frequency (two series of bars), written by hand so that docs need no plotting
library. Deterministic: the same table gives the same bytes."""

from __future__ import annotations

from html import escape

import pandas as pd

WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 40, 48
ACTUAL, PREDICTED = "#4c72b0", "#dd8452"


def _nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^k at or above ``value`` (the top of the axis)."""
    if value <= 0:
        return 1.0
    step = 10.0 ** (len(str(int(value))) - 1) if value >= 1 else 0.1
    while True:
        for mult in (1, 2, 5, 10):
            if mult * step >= value:
                return mult * step
        step *= 10


def holdout_svg(table: pd.DataFrame, *, title: str = "Holdout: repeat purchases per customer") -> str:
    """Bars of ``actual`` and ``predicted`` for every row of a holdout table but "all"."""
    rows = table[table["frequency"] != "all"]
    top = _nice_max(float(max(rows["actual"].max(), rows["predicted"].max())))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(rows)
    bar = slot * 0.35

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2:.1f}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    for i in range(6):
        value = top * i / 5
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:g}</text>')
    for i, row in enumerate(rows.itertuples(index=False)):
        x0 = LEFT + i * slot + slot / 2
        for offset, value, colour in ((-bar, row.actual, ACTUAL), (0.0, row.predicted, PREDICTED)):
            out.append(
                f'<rect x="{x0 + offset:.1f}" y="{y(float(value)):.1f}" width="{bar:.1f}" '
                f'height="{y(0) - y(float(value)):.1f}" fill="{colour}"/>'
            )
        label = escape(str(row.frequency))
        out.append(f'<text x="{x0:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{label}</text>')
    out += [
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#333"/>',
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 10}" text-anchor="middle">'
        "repeat purchases in the calibration period</text>",
        f'<text x="14" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2:.1f})">mean repeat purchases in the holdout</text>',
        f'<rect x="{LEFT + 10}" y="{TOP + 4}" width="12" height="12" fill="{ACTUAL}"/>',
        f'<text x="{LEFT + 28}" y="{TOP + 14}">actual</text>',
        f'<rect x="{LEFT + 90}" y="{TOP + 4}" width="12" height="12" fill="{PREDICTED}"/>',
        f'<text x="{LEFT + 108}" y="{TOP + 14}">predicted</text>',
        "</svg>",
    ]
    return "\n".join(out) + "\n"
