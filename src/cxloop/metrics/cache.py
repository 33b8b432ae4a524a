"""A cache of metric results for a long-running process (the web server), invalidated by imports.

Each result is kept under what was asked — the function and its parameters — and a
**fingerprint of the store's data**: how many imports the ``imports`` table records and when the
latest finished. Business data is only ever written by :func:`cxloop.ingest.import_file` (the
CLI's ``cxloop import``, ``cxloop demo``, the server's uploads), which records its import in the
same transaction as its rows. So any import, by this process or another (``cxloop import`` against
the PostgreSQL database a server is using), changes the fingerprint and the next request computes
afresh; the fingerprint itself is one aggregate over a table of a few rows, read per request.

Also:

* **Bounded**: at most ``max_entries`` results holding at most ``max_rows`` rows in all (an RFM
  table has a row per customer), the least recently used dropped first; results of an older
  fingerprint are dropped as soon as a newer one is seen.
* **One computation per question**: callers asking what is being computed already wait for it and
  share its result (20 dashboards opening at once cost one summary, not 20). An error is raised
  to every caller waiting for it and nothing is kept.
* **"Now" is a moment**: a question without ``as_of`` (as of now) is answered from a result
  computed at most ``now_seconds`` earlier; a question with ``as_of`` is answered exactly.
* Results are shared: a DataFrame comes back as a shallow copy (pandas' copy-on-write keeps the
  cached one intact); do not mutate other values in place.

The cache holds no globals: the web app keeps one on ``app.state.metrics_cache``
(:func:`cxloop.web.app.create_app`); ``MetricsCache(fingerprint, max_entries=0)`` computes every
time.

>>> cache = MetricsCache(lambda: store_fingerprint(store))             # doctest: +SKIP
>>> cache.summary(store, as_of=datetime(2026, 1, 1))                     # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
import sqlalchemy as sa

from cxloop.metrics.grains import Grain, parse_grain
from cxloop.metrics.kpi import Kpi
from cxloop.metrics.query import Options
from cxloop.metrics.source import Source
from cxloop.store import schema
from cxloop.surveys.distribution import sends_stamp_query
from cxloop.surveys.links import SOURCE

if TYPE_CHECKING:
    from cxloop.store.store import Store

T = TypeVar("T")
Clock = Callable[[], datetime]
log = logging.getLogger("cxloop.metrics.cache")

__all__ = ["CacheStats", "MetricsCache", "store_fingerprint"]


def store_fingerprint(store: Store) -> Hashable:
    """What changes whenever the store's business data does: (imports recorded, latest
    ``finished_at``, survey replies, writes to them, survey mails recorded, latest attempt,
    invitations cxloop recorded). One small query: answers given on cxloop's own survey pages
    change it at once (``survey_replies.revision``, see cxloop.surveys.answers), and so do the
    invitations ``cxloop surveys send`` mails (``survey_deliveries``, see
    :func:`cxloop.surveys.distribution.sends_stamp`) and those ``cxloop surveys links`` records
    (``survey_invitations`` of source ``cxloop``): the response rate's denominator."""
    imports, replies, invitations = schema.imports, schema.survey_replies, schema.survey_invitations
    latest_import = sa.select(sa.func.count(), sa.func.max(imports.c.finished_at)).subquery()
    answers = sa.select(
        sa.func.count().label("replies"), sa.func.coalesce(sa.func.sum(replies.c.revision), 0).label("writes")
    ).subquery()
    sends = sends_stamp_query().subquery()
    invited = sa.select(sa.func.count().label("invited")).where(invitations.c.source == SOURCE).subquery()
    with store.engine.connect() as conn:
        # one row each: one row
        every = latest_import.join(answers, sa.true()).join(sends, sa.true()).join(invited, sa.true())
        count, latest, n_replies, writes, mails, last_mail, n_invited = conn.execute(sa.select(every)).one()
    return int(count), latest, int(n_replies), int(writes), int(mails), last_mail, int(n_invited)


@dataclass
class CacheStats:
    """What the cache did since it was made."""

    hits: int = 0  # answered from a kept result
    shared: int = 0  # waited for the same computation another caller had started
    computed: int = 0  # computed (successfully or not)
    stale: int = 0  # answered from an expired "now" result while it was being recomputed


@dataclass
class _Entry:
    value: Any
    made: float  # timer() when computed


@dataclass
class _Flight:
    """A computation under way; callers asking the same wait on ``done``."""

    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


class MetricsCache:
    """Memoised metric results keyed by their parameters and the store's data fingerprint."""

    def __init__(
        self,
        fingerprint: Callable[[], Hashable],
        *,
        max_entries: int = 128,
        max_rows: int = 5_000_000,
        now_seconds: float = 60.0,
        stale_seconds: float = 0.0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fingerprint = fingerprint
        self.max_entries = max_entries
        self.max_rows = max_rows
        self.now_seconds = now_seconds
        self.stale_seconds = stale_seconds
        self._timer = timer
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._seen: Hashable = None
        self._local = threading.local()  # a fingerprint pinned for this thread's request
        self.stats = CacheStats()

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    # -- the mechanism --------------------------------------------------------------------------

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Read the data fingerprint once for everything this thread asks inside the block (one
        page asks for several results: one small query instead of one per result)."""
        if getattr(self._local, "fingerprint", None) is not None:
            yield
            return
        self._local.fingerprint = (self._fingerprint(),)
        try:
            yield
        finally:
            self._local.fingerprint = None

    def _current(self) -> Hashable:
        pinned = getattr(self._local, "fingerprint", None)
        return pinned[0] if pinned is not None else self._fingerprint()

    def get(self, key: Hashable, compute: Callable[[], T], *, max_age: float | None = None) -> T:
        """``compute()``'s result for ``key`` under the current fingerprint: kept (no older than
        ``max_age`` seconds when given), being computed by another caller (waited for), or
        computed now and kept."""
        if not self.enabled:
            with self._lock:
                self.stats.computed += 1
            return compute()
        full = (self._current(), key)
        with self._lock:
            if full[0] != self._seen:  # the data changed: what was kept answers nothing now
                self._entries.clear()
                self._seen = full[0]
            entry = self._entries.get(full)
            age = None if entry is None else self._timer() - entry.made
            if entry is not None and (max_age is None or age is None or age <= max_age):
                self._entries.move_to_end(full)
                self.stats.hits += 1
                kept: T = _shared(entry.value)
                return kept
            flight = self._flights.get(full)
            if (
                entry is not None
                and max_age is not None
                and age is not None
                and age <= max_age + self.stale_seconds
            ):
                # Expired "now" answer: serve it while one background thread computes the new one,
                # so nobody waits for a recomputation the data did not ask for.
                self.stats.stale += 1
                if flight is None:
                    self.stats.computed += 1
                    flight = self._flights[full] = _Flight()
                    threading.Thread(
                        target=self._refresh, args=(full, flight, compute), name="cxloop-cache", daemon=True
                    ).start()
                stale: T = _shared(entry.value)
                return stale
            leader = flight is None
            if flight is None:
                flight = self._flights[full] = _Flight()
                self.stats.computed += 1
            else:
                self.stats.shared += 1
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            theirs: T = _shared(flight.value)
            return theirs
        try:
            flight.value = compute()
        except BaseException as exc:
            flight.error = exc
            raise
        else:
            with self._lock:
                if full[0] == self._seen:
                    self._entries[full] = _Entry(flight.value, self._timer())
                    self._entries.move_to_end(full)
                    self._evict()
            ours: T = _shared(flight.value)
            return ours
        finally:
            with self._lock:
                self._flights.pop(full, None)
            flight.done.set()

    def _refresh(self, full: tuple[Hashable, Hashable], flight: _Flight, compute: Callable[[], Any]) -> None:
        """Recompute an expired answer in the background; on failure the old one stays."""
        try:
            flight.value = compute()
        except Exception as exc:
            flight.error = exc
            log.warning("refreshing a cached metric failed; the previous answer stays: %s", exc)
        else:
            with self._lock:
                if full[0] == self._seen:
                    self._entries[full] = _Entry(flight.value, self._timer())
                    self._entries.move_to_end(full)
                    self._evict()
        finally:
            with self._lock:
                self._flights.pop(full, None)
            flight.done.set()

    def _evict(self) -> None:
        """Drop the least recently used results until both bounds hold (the newest always stays)."""
        rows = sum(_rows(e.value) for e in self._entries.values())
        while len(self._entries) > 1 and (len(self._entries) > self.max_entries or rows > self.max_rows):
            _, dropped = self._entries.popitem(last=False)
            rows -= _rows(dropped.value)

    # -- the metrics functions, cached ---------------------------------------------------------------

    def summary(
        self,
        data: Store | Source,
        *,
        as_of: datetime | None = None,
        grain: str | Grain = Grain.MONTH,
        kpi_ids: Iterable[str] | None = None,
        options: Options | None = None,
        custom_file: str | Path | None = None,
        clock: Clock | None = None,
    ) -> pd.DataFrame:
        """:func:`cxloop.metrics.summary`, cached. Without ``as_of``: as of ``clock()`` (default
        now, UTC), from a result at most ``now_seconds`` old."""
        from cxloop.metrics.api import summary

        ids = tuple(kpi_ids) if kpi_ids else None
        key = ("summary", parse_grain(grain), ids, options, _file_key(custom_file))

        def run(moment: datetime) -> pd.DataFrame:
            return summary(
                data, as_of=moment, grain=grain, kpi_ids=ids, options=options, custom_file=custom_file
            )

        return self._at(key, as_of, clock, run)

    def compute(
        self,
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
        clock: Clock | None = None,
    ) -> pd.DataFrame:
        """:func:`cxloop.metrics.compute`, cached (a KPI object is known by its id and the
        ``custom_file`` it came from)."""
        from cxloop.metrics.api import compute

        dims = tuple(dict.fromkeys(by))
        key = (
            "compute",
            kpi.id if isinstance(kpi, Kpi) else kpi,
            parse_grain(grain),
            dims,
            _where_key(where),
            start,
            end,
            change,
            options,
            _file_key(custom_file),
        )

        def run(moment: datetime) -> pd.DataFrame:
            return compute(
                data,
                kpi,
                grain=grain,
                by=dims,
                where=where,
                start=start,
                end=end,
                as_of=moment,
                change=change,
                options=options,
                custom_file=custom_file,
            )

        return self._at(key, as_of, clock, run)

    def cohorts(
        self,
        data: Store | Source,
        *,
        grain: str | Grain = Grain.MONTH,
        start: datetime | None = None,
        end: datetime | None = None,
        as_of: datetime | None = None,
        options: Options | None = None,
        by: Iterable[str] = (),
        where: Mapping[str, str | Iterable[str]] | None = None,
        clock: Clock | None = None,
    ) -> pd.DataFrame:
        """:func:`cxloop.metrics.cohorts`, cached."""
        from cxloop.metrics.cohorts import cohorts

        dims = tuple(dict.fromkeys(by))
        key = ("cohorts", parse_grain(grain), start, end, options, dims, _where_key(where))

        def run(moment: datetime) -> pd.DataFrame:
            return cohorts(
                data, grain=grain, start=start, end=end, as_of=moment, options=options, by=dims, where=where
            )

        return self._at(key, as_of, clock, run)

    def rfm(
        self,
        data: Store | Source,
        *,
        as_of: datetime | None = None,
        options: Options | None = None,
        lookback_days: int | None = None,
        clock: Clock | None = None,
    ) -> pd.DataFrame:
        """:func:`cxloop.metrics.rfm` (one row per customer), cached."""
        from cxloop.metrics.rfm import rfm

        key = ("rfm", options, lookback_days)

        def run(moment: datetime) -> pd.DataFrame:
            return rfm(data, as_of=moment, options=options, lookback_days=lookback_days)

        return self._at(key, as_of, clock, run)

    def rfm_segments(
        self,
        data: Store | Source,
        *,
        as_of: datetime | None = None,
        options: Options | None = None,
        lookback_days: int | None = None,
        clock: Clock | None = None,
    ) -> pd.DataFrame:
        """:func:`cxloop.metrics.rfm_segments` of :meth:`rfm`, cached."""
        from cxloop.metrics.rfm import rfm_segments

        key = ("rfm_segments", options, lookback_days)

        def run(moment: datetime) -> pd.DataFrame:
            # The table under its own key (the customers page reads it too); "now" stays "now".
            table = self.rfm(
                data, as_of=as_of, options=options, lookback_days=lookback_days, clock=lambda: moment
            )
            return rfm_segments(table)

        return self._at(key, as_of, clock, run)

    def _at(
        self,
        key: tuple[Any, ...],
        as_of: datetime | None,
        clock: Clock | None,
        run: Callable[[datetime], pd.DataFrame],
    ) -> pd.DataFrame:
        """As of ``as_of`` exactly, or as of now within ``now_seconds``."""
        if as_of is not None:
            return self.get((*key, as_of), lambda: run(as_of))
        from cxloop.metrics.compute import now_utc

        now = clock or now_utc
        return self.get((*key, "now"), lambda: run(now()), max_age=self.now_seconds)


def _rows(value: object) -> int:
    """A result's size against ``max_rows``: a frame's rows, or what the object says it holds
    (``rows_held``: a fitted value model holds a row per customer), else 1."""
    if isinstance(value, pd.DataFrame):
        return len(value)
    held = getattr(value, "rows_held", None)
    return int(held) if isinstance(held, int) else 1


def _shared(value: Any) -> Any:
    return value.copy(deep=False) if isinstance(value, pd.DataFrame) else value


def _where_key(where: Mapping[str, str | Iterable[str]] | None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    items = ((k, (v,) if isinstance(v, str) else tuple(v)) for k, v in (where or {}).items())
    return tuple(sorted(items))


def _file_key(path: str | Path | None) -> tuple[str, int] | None:
    """A custom KPIs file by name and modification time, so that editing it is a new question."""
    if path is None:
        return None
    try:
        return str(path), Path(path).stat().st_mtime_ns
    except OSError:
        return str(path), -1
