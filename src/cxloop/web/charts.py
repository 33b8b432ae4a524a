"""Charts as data: a Plotly figure for the browser, the same numbers as a table, and a CSV.

The server builds each figure as plain JSON (``{"data": [...], "layout": {...}}``) and the page
embeds it in a ``<script type="application/json">`` block, which browsers never execute; the
page's own script (``static/cxloop-charts.js``) hands it to Plotly.js. Plotly.js is not committed
here: it is the copy the ``plotly`` Python package ships, served by :func:`plotly_js`. Without
JavaScript a chart is its table, which every chart carries anyway (and a CSV link), for screen
readers and for people who want the numbers.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from cxloop.ingest.csvsafe import neutralise
from cxloop.metrics.frames import plain

# A palette distinguishable with the common colour-vision deficiencies (Okabe & Ito 2008).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


@dataclass
class Table:
    """A chart's numbers: column headers and rows of plain values."""

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, columns: Sequence[str] | None = None) -> Table:
        """``columns`` of ``frame`` (all by default; missing ones empty), values as plain Python."""
        names = list(columns) if columns is not None else [str(c) for c in frame.columns]
        shaped = frame.reindex(columns=names)
        return cls(names, [[plain(v) for v in row] for row in shaped.itertuples(index=False)])

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow([neutralise(_csv_value(v)) for v in row])
        return out.getvalue()


def _csv_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


@dataclass
class Chart:
    """One chart on a page: its element id, accessible title, Plotly figure, table and CSV link."""

    id: str
    title: str
    figure: dict[str, Any]
    table: Table
    csv_href: str | None = None
    empty: bool = False


def layout(title: str, *, x_title: str = "", y_title: str = "", height: int = 320) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 15}},
        "height": height,
        "margin": {"l": 56, "r": 16, "t": 40, "b": 48},
        "xaxis": {"title": {"text": x_title}, "automargin": True},
        "yaxis": {"title": {"text": y_title}, "automargin": True, "zeroline": False},
        "legend": {"orientation": "h", "y": -0.25},
        "colorway": PALETTE,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "hovermode": "x unified",
    }


def line_chart(
    chart_id: str,
    title: str,
    series: Sequence[tuple[str, Sequence[Any], Sequence[float | None]]],
    *,
    table: Table,
    y_title: str = "",
    bands: Sequence[tuple[Sequence[Any], Sequence[float | None], Sequence[float | None]]] = (),
    csv_href: str | None = None,
) -> Chart:
    """Lines, one per ``(name, x, y)``; ``bands`` shade a confidence interval under each line."""
    data: list[dict[str, Any]] = []
    for i, (x, low, high) in enumerate(bands):
        colour = PALETTE[i % len(PALETTE)]
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": list(x),
                "y": _clean(high),
                "line": {"width": 0},
                "hoverinfo": "skip",
                "showlegend": False,
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": list(x),
                "y": _clean(low),
                "line": {"width": 0},
                "fill": "tonexty",
                "fillcolor": _transparent(colour),
                "hoverinfo": "skip",
                "showlegend": False,
                "name": "95% interval",
            }
        )
    for i, (name, x, y) in enumerate(series):
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": name,
                "x": list(x),
                "y": _clean(y),
                "line": {"color": PALETTE[i % len(PALETTE)]},
            }
        )
    figure = {"data": data, "layout": layout(title, y_title=y_title)}
    return Chart(chart_id, title, figure, table, csv_href, empty=not any(len(s[1]) for s in series))


def heatmap(
    chart_id: str,
    title: str,
    *,
    x: Sequence[Any],
    y: Sequence[Any],
    z: Sequence[Sequence[float | None]],
    table: Table,
    x_title: str = "",
    y_title: str = "",
    colour_title: str = "",
    csv_href: str | None = None,
) -> Chart:
    figure = {
        "data": [
            {
                "type": "heatmap",
                "x": list(x),
                "y": list(y),
                "z": [_clean(r) for r in z],
                "colorscale": "Blues",
                "reversescale": True,
                "hoverongaps": False,
                "colorbar": {"title": {"text": colour_title}},
            }
        ],
        "layout": {
            **layout(title, x_title=x_title, y_title=y_title, height=max(320, 24 * len(y) + 120)),
            "hovermode": "closest",
            "yaxis": {
                "title": {"text": y_title},
                "autorange": "reversed",
                "type": "category",
                "automargin": True,
            },
        },
    }
    return Chart(chart_id, title, figure, table, csv_href, empty=not len(y))


def bar_chart(
    chart_id: str,
    title: str,
    *,
    labels: Sequence[str],
    values: Sequence[float | None],
    table: Table,
    x_title: str = "",
    csv_href: str | None = None,
) -> Chart:
    """Horizontal bars, first label on top."""
    figure = {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": list(labels),
                "x": _clean(values),
                "marker": {"color": PALETTE[0]},
            }
        ],
        "layout": {
            **layout(title, x_title=x_title, height=max(280, 28 * len(labels) + 100)),
            "hovermode": "closest",
            "yaxis": {"autorange": "reversed", "automargin": True},
        },
    }
    return Chart(chart_id, title, figure, table, csv_href, empty=not len(labels))


def _clean(values: Iterable[float | None]) -> list[float | None]:
    """JSON has no NaN: missing points become null, which Plotly draws as gaps."""
    out: list[float | None] = []
    for v in values:
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            out.append(None)
        else:
            out.append(float(v))
    return out


def _transparent(hex_colour: str, alpha: float = 0.18) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def sparkline_points(values: Sequence[float | None], width: int = 120, height: int = 32) -> str:
    """An SVG polyline's ``points`` for a tile's sparkline (drawn server-side: no script needed)."""
    known = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if len(known) < 2:
        return ""
    low = min(v for _, v in known)
    high = max(v for _, v in known)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    return " ".join(f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}" for i, v in known)


def plotly_js() -> Path:
    """The minified Plotly.js that the ``plotly`` package ships (installed from PyPI)."""
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():  # pragma: no cover - a broken install
        raise FileNotFoundError(f"plotly.min.js is missing from the plotly package ({path})")
    return path
