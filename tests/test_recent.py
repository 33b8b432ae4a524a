"""What a server remembers for a moment: read again once too old, forgotten on demand."""

from __future__ import annotations

import threading

from cxloop.recent import Recent, RecentMap


class Timer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_recent_value_is_read_again_once_older_than_its_seconds() -> None:
    timer, reads = Timer(), []
    recent = Recent(lambda: reads.append(1) or len(reads), seconds=1.0, timer=timer)

    assert [recent.get(), recent.get()] == [1, 1]
    timer.now = 1.5
    assert recent.get() == 2
    recent.forget()
    assert recent.get() == 3 and len(reads) == 3


def test_a_read_that_started_before_forget_is_not_kept() -> None:
    started, release = threading.Event(), threading.Event()
    values = iter(["old", "new"])

    def slow_load() -> str:
        value = next(values)
        if value == "old":
            started.set()
            release.wait(5)
        return value

    recent = Recent(slow_load, seconds=60)
    reader = threading.Thread(target=recent.get)
    reader.start()
    started.wait(5)
    recent.forget()  # the data changed while "old" was being read
    release.set()
    reader.join(5)

    assert recent.get() == "new"


def test_a_recent_map_keeps_only_what_it_is_given_for_its_seconds() -> None:
    timer = Timer()
    known = RecentMap[str, int](seconds=2.0, max_keys=2, timer=timer)

    assert known.get("a") is None
    known.put("a", 1)
    known.put("b", 2)
    assert known.get("a") == 1  # "a" is now the most recently used
    known.put("c", 3)  # one too many: the least recently used ("b") goes
    assert (known.get("a"), known.get("b"), known.get("c")) == (1, None, 3)

    timer.now = 2.5
    assert known.get("a") is None  # too old: looked up again by the caller
    known.put("a", 4)
    known.forget()
    assert known.get("a") is None


def test_zero_seconds_keeps_nothing() -> None:
    known = RecentMap[str, int](seconds=0)
    known.put("a", 1)
    assert known.get("a") is None
