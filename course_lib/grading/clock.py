"""A fake clock for timing checks (chapter 12): it only moves when the timed function runs, so
every duration is known exactly.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
import timeit
from collections.abc import Iterator
from typing import Any

CLOCKS = (
    (time, "perf_counter", 1.0),
    (time, "monotonic", 1.0),
    (time, "time", 1.0),
    (time, "process_time", 1.0),
    (time, "thread_time", 1.0),
    (timeit, "default_timer", 1.0),
    (time, "perf_counter_ns", 1e9),
    (time, "monotonic_ns", 1e9),
    (time, "time_ns", 1e9),
    (time, "process_time_ns", 1e9),
)


ACTIVE_CLOCK: contextvars.ContextVar[FakeClock | None] = contextvars.ContextVar(
    "ACTIVE_CLOCK", default=None
)


"""The fake clock being installed, so that a sandboxed student process can read the same time."""


class FakeClock:
    """A clock that only moves when the timed function runs: every duration is known."""

    def __init__(self, durations: list[float]) -> None:
        self.now = 1000.0
        self.durations = durations
        self.calls: list[tuple] = []

    def workload(self, *args: Any) -> int:
        """The function under test: advances the clock by its next duration."""
        i = len(self.calls)
        self.calls.append(args)
        self.now += self.durations[i] if i < len(self.durations) else 1.0
        return i

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in CLOCKS]
        token = ACTIVE_CLOCK.set(self)  # `course grade` runs the student's code elsewhere
        try:
            for owner, attr, factor in CLOCKS:
                if factor == 1.0:
                    setattr(owner, attr, lambda: self.now)
                else:
                    setattr(owner, attr, lambda f=factor: int(round(self.now * f)))
            yield
        finally:
            ACTIVE_CLOCK.reset(token)
            for owner, attr, original in saved:
                setattr(owner, attr, original)
