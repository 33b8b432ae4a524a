"""Values read at most a few seconds ago: for what every request needs and almost never changes
(the business settings, the data fingerprint, who an API token or session belongs to).

A server process keeps the last answer for ``seconds`` and asks the database again after that, so a
change made by *another* process (a worker, the CLI on PostgreSQL) shows within that time. Changes
this process makes itself show at once: the code making them calls :meth:`Recent.forget`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class Recent(Generic[T]):
    """``load()``'s answer, read again once it is older than ``seconds``."""

    def __init__(
        self, load: Callable[[], T], *, seconds: float, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._load = load
        self.seconds = seconds
        self._timer = timer
        self._lock = threading.Lock()
        self._kept: tuple[float, T] | None = None
        self._generation = 0  # bumped by forget(): a load that started before it is not kept

    def get(self) -> T:
        with self._lock:
            kept, generation = self._kept, self._generation
        if kept is not None and self._timer() - kept[0] <= self.seconds:
            return kept[1]
        read_at = self._timer()
        fresh = self._load()
        with self._lock:
            if generation == self._generation:
                self._kept = (read_at, fresh)
        return fresh

    def forget(self) -> None:
        with self._lock:
            self._kept = None
            self._generation += 1


class RecentMap(Generic[K, T]):
    """Answers per key, each kept for ``seconds`` (at most ``max_keys`` of them, the least recently
    used going first). Only what :meth:`put` is given is kept: callers decide what is worth keeping."""

    def __init__(
        self, *, seconds: float, max_keys: int = 1024, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.max_keys = max_keys
        self._timer = timer
        self._lock = threading.Lock()
        self._kept: OrderedDict[K, tuple[float, T]] = OrderedDict()

    def get(self, key: K) -> T | None:
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                return None
            if self._timer() - kept[0] > self.seconds:
                del self._kept[key]
                return None
            self._kept.move_to_end(key)
            return kept[1]

    def put(self, key: K, value: T) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            self._kept[key] = (self._timer(), value)
            self._kept.move_to_end(key)
            while len(self._kept) > self.max_keys:
                self._kept.popitem(last=False)

    def forget(self) -> None:
        with self._lock:
            self._kept.clear()
