"""Group commit for DuckDB: one thread runs the answer page's write transactions, many per commit.

A DuckDB commit syncs its write-ahead log (about 6 ms here), and commits of one database file take
turns. Under many respondents the answer path spent about half its time committing. The server
therefore hands each answer's transaction (:data:`cxloop.surveys.answers.Transact`) to
:class:`GroupCommit`: its thread takes every transaction waiting, runs them one after the other in
one database transaction, commits once, and only then answers each caller. An answer is
acknowledged only once it is durable, as before.

A transaction refused by the answer rules (:class:`~cxloop.surveys.answers.AnswerError`) raises
before it writes anything, so the others of its group go on. Any other failure (a write conflict)
rolls the group back; each of its transactions then runs again on its own. PostgreSQL needs none
of this (many processes commit in parallel there): the server uses it for DuckDB stores only.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from cxloop.store.store import Store
from cxloop.surveys.answers import AnswerError, in_transaction

__all__ = ["GroupCommit"]


@dataclass
class _Job:
    work: Callable[[sa.Connection], Any]
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


class GroupCommit:
    """Call it with ``work(conn)``: runs it in the next group's transaction; returns after commit."""

    def __init__(self, store: Store, *, max_group: int = 128) -> None:
        self._store = store
        self._max = max_group
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.groups = 0  # transactions committed (for tests and benchmarks)

    def __call__(self, work: Callable[[sa.Connection], Any]) -> Any:
        job = _Job(work)
        self._start()
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.value

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="cxloop-survey-writer", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < self._max:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                group.append(more)
            self._run(group)
            if stop:
                return

    def _run(self, group: list[_Job]) -> None:
        try:
            with self._store.engine.begin() as conn:
                for job in group:
                    try:
                        job.value = job.work(conn)
                    except AnswerError as refused:  # raised before it wrote anything
                        job.error = refused
            self.groups += 1
        except Exception:
            alone = in_transaction(self._store)
            for job in group:
                job.value, job.error = None, None
                try:
                    job.value = alone(job.work)
                except BaseException as failed:  # handed to the caller, whatever it is
                    job.error = failed
        finally:
            for job in group:
                job.done.set()
