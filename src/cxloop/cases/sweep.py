"""Cases open by themselves: a background sweep that runs :func:`cxloop.cases.open_cases`.

The web server keeps one :class:`CaseSweep` (``CXLOOP_CASES_CHECK_SECONDS``, default 30 s; 0 turns
it off) and runs it in a thread of its own, so nobody has to run ``cxloop cases open``: an unhappy
answer given on the answer page, sent to the API or imported gets its case within the interval
(at once after an import through the server, which wakes the sweep).

* **Nothing on the answer path.** Answers are written as before; the sweep looks at the store
  afterwards, so the answer POST costs what it cost.
* **Nothing missed.** Each sweep looks back over the last ``lookback`` (30 days, as ``cxloop
  cases open``) and relies on :func:`~cxloop.cases.open_cases` being idempotent (a response's case
  id is derived from it): an answer edited later (a comment added the next day), an API answer
  dated earlier and an import of recent answers are all seen, which a high-water mark on the
  answer time would miss. Answers older than ``lookback`` when they arrive (an import of history)
  open no case, as with the command.
* **Cheap when idle.** A sweep first reads the store's data fingerprint
  (:func:`cxloop.metrics.cache.store_fingerprint`, one small query: imports, survey writes); when
  it has not changed since the last sweep, nothing else is read. It runs anyway at least every
  ``idle_seconds`` (an hour).
* **One process.** With several workers on PostgreSQL, the process holding a session-level
  advisory lock (per schema) sweeps; the others try to take it at each interval, so another takes
  over when it stops. :func:`~cxloop.cases.open_cases` also serialises its own runs with a
  transaction-level lock, so the sweep, ``cxloop cases open`` and the API never race.

Every time comes from ``clock`` (naive UTC); nothing here reads the system clock but the interval.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Hashable

import sqlalchemy as sa

from cxloop.cases.detect import CommentJudge, keyword_judge
from cxloop.cases.work import DEFAULT_LOOKBACK, advisory_key, open_cases
from cxloop.metrics.cache import store_fingerprint
from cxloop.store.store import Store

log = logging.getLogger("cxloop.cases.sweep")

SWEEP_LOCK = 0x63785357  # "cxSW": the sweeping process's lock, with the schema's hash
"""The first key of the session-level advisory lock held by the process that sweeps."""


class CaseSweep:
    """Opens cases for new unhappy answers every ``seconds`` (see the module's notes).

    :meth:`run_once` sweeps now (tests call it); :meth:`start` runs it in a daemon thread until
    :meth:`stop`; :meth:`wake` asks for a sweep at once (after an import)."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], dt.datetime],
        seconds: float = 30.0,
        lookback: dt.timedelta = DEFAULT_LOOKBACK,
        fingerprint: Callable[[], Hashable] | None = None,
        judge: CommentJudge = keyword_judge,
        idle_seconds: float = 3600.0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.clock = clock
        self.seconds = seconds
        self.lookback = lookback
        self.judge = judge
        self.idle_seconds = idle_seconds
        self._fingerprint = fingerprint or (lambda: store_fingerprint(store))
        self._timer = timer
        self._seen: Hashable | None = None
        self._last: float | None = None
        self._leader: sa.Connection | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._run_lock = threading.Lock()
        self.opened = 0  # cases opened by this sweep since it was made
        self.runs = 0  # sweeps that looked at the answers

    # -- one sweep ---------------------------------------------------------------------------------

    def run_once(self) -> list[str] | None:
        """Sweep now: the new case ids (oldest answer first); ``[]`` when nothing changed or
        nothing called for a case; ``None`` when another process is the one sweeping."""
        with self._run_lock:
            if not self._lead():
                return None
            stamp = self._fingerprint()  # read first: a change made during the sweep is seen next time
            fresh = self._last is not None and self._timer() - self._last < self.idle_seconds
            if stamp == self._seen and fresh:
                return []
            now = self.clock()
            opened = open_cases(self.store, now=now, since=now - self.lookback, judge=self.judge)
            self._seen, self._last = stamp, self._timer()
            self.runs += 1
            self.opened += len(opened)
            if opened:
                log.info("opened %d follow-up case(s): %s", len(opened), ", ".join(opened))
            return opened

    def _lead(self) -> bool:
        """Whether this process sweeps: always on DuckDB (one process); on PostgreSQL, the one
        holding the sweep's advisory lock (taken here if free; kept on a connection of its own)."""
        if self.store.dialect != "postgresql":
            return True
        if self._leader is not None:
            try:
                self._leader.execute(sa.text("SELECT 1"))
                self._leader.commit()
                return True
            except sa.exc.DBAPIError:  # the connection (and so the lock) was lost: try again
                self._let_go()
        conn = self.store.engine.connect()
        try:
            got = bool(
                conn.execute(sa.select(sa.func.pg_try_advisory_lock(*advisory_key(SWEEP_LOCK)))).scalar()
            )
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._leader = conn
        return True

    def _let_go(self) -> None:
        leader, self._leader = self._leader, None
        if leader is None:
            return
        try:
            leader.execute(sa.select(sa.func.pg_advisory_unlock(*advisory_key(SWEEP_LOCK))))
            leader.commit()
        except sa.exc.DBAPIError:
            pass  # gone with its connection
        finally:
            leader.close()

    # -- in the background ---------------------------------------------------------------------------

    def start(self) -> None:
        """Sweep every ``seconds`` in a daemon thread (the first one after ``seconds``)."""
        if self._thread is not None or self.seconds <= 0:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="cxloop-case-sweep", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Sweep at once (the data changed: an import finished)."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """End the thread (after the sweep under way) and release the lock of the sweeping process."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        # A sweep still running past the timeout keeps its lock; it goes with its connection when
        # the process ends, and shutting down must not wait longer than it was told to.
        if self._run_lock.acquire(timeout=timeout):
            try:
                self._let_go()
            finally:
                self._run_lock.release()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.seconds)
            self._wake.clear()
            if self._stopping:
                return
            try:
                self.run_once()
            except Exception:  # the database was unreachable, say: try again next time
                log.exception("the case sweep failed; it runs again in %g s", self.seconds)
