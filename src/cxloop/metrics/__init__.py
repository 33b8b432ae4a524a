"""The metrics layer: every KPI defined once as an Ibis expression, computed on DuckDB,
PostgreSQL or Spark, with confidence intervals, breakdowns, cohorts and RFM.

>>> from cxloop import Store
>>> from cxloop.metrics import compute
>>> with Store.open("cxloop.duckdb") as store:                       # doctest: +SKIP
...     frame = compute(store, "nps", grain="month", by=["segment"])
"""

from cxloop.metrics.api import compute, kpis, summary
from cxloop.metrics.cohorts import average_curve, cohorts
from cxloop.metrics.grains import Grain
from cxloop.metrics.kpi import Direction, Kpi
from cxloop.metrics.query import Options
from cxloop.metrics.rfm import rfm, rfm_segments
from cxloop.metrics.source import Source, store_source
from cxloop.metrics.stats import Kind

__all__ = [
    "Direction",
    "Grain",
    "Kind",
    "Kpi",
    "Options",
    "Source",
    "average_curve",
    "cohorts",
    "compute",
    "kpis",
    "rfm",
    "rfm_segments",
    "store_source",
    "summary",
]
