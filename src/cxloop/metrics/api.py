"""The Python API of the metrics layer: plain functions returning pandas DataFrames."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pandas as pd

from cxloop.metrics.compute import compute_query, make_query
from cxloop.metrics.grains import Grain
from cxloop.metrics.kpi import Kpi
from cxloop.metrics.query import Options
from cxloop.metrics.registry import Registry
from cxloop.metrics.source import Source, store_source
from cxloop.metrics.summary import HEADLINE, headline  # at import: see the note below
from cxloop.store.store import Store


@contextmanager
def as_source(data: Store | Source) -> Iterator[Source]:
    """Use a :class:`Source` as it is, or open one over a :class:`Store`."""
    if isinstance(data, Source):
        yield data
    else:
        with store_source(data) as source:
            yield source


def kpis(custom_file: str | Path | None = None) -> Registry:
    """The KPI registry: the built-in KPIs, plus those in ``custom_file`` (TOML; default: the
    ``CXLOOP_KPIS_FILE`` setting, if set)."""
    from cxloop.config import load_settings

    return Registry.load(custom_file or load_settings().kpis_file)


def compute(
    data: Store | Source,
    kpi: str | Kpi,
    *,
    grain: str | Grain = Grain.MONTH,
    by: Iterable[str] = (),
    where: Mapping[str, str | Iterable[str]] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    as_of: datetime | None = None,
    change: bool = False,
    options: Options | None = None,
    custom_file: str | Path | None = None,
) -> pd.DataFrame:
    """One KPI as a tidy table: period, the ``by`` dimensions, value, n, ci_low, ci_high, warning
    (and previous, change, p_value, significant with ``change``).

    ``start`` is inclusive and ``end`` exclusive (default: ``as_of``, default now, UTC); data after
    ``as_of`` is ignored. ``where`` keeps rows whose dimension is one of the given values.
    """
    definition = kpi if isinstance(kpi, Kpi) else kpis(custom_file).get(kpi)
    query = make_query(grain=grain, by=by, where=where, start=start, end=end, as_of=as_of, options=options)
    with as_source(data) as source:
        return compute_query(source, definition, query, change=change)


def summary(
    data: Store | Source,
    *,
    as_of: datetime | None = None,
    grain: str | Grain = Grain.MONTH,
    kpi_ids: Iterable[str] | None = None,
    options: Options | None = None,
    custom_file: str | Path | None = None,
) -> pd.DataFrame:
    """The headline KPIs for the last complete period against the one before (see
    :func:`cxloop.metrics.summary.headline`)."""
    # ``headline`` is imported with the module, not here: a first import of the submodule
    # ``cxloop.metrics.summary`` after the package is set up would replace the package's
    # ``summary`` (this function) with the submodule.
    from cxloop.metrics.compute import now_utc

    with as_source(data) as source:
        return headline(
            source,
            kpis(custom_file),
            as_of=as_of or now_utc(),
            grain=grain,
            kpi_ids=tuple(kpi_ids or HEADLINE),
            options=options,
        )
