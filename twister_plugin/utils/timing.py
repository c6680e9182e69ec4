"""Where a job's time goes: named wall-clock totals for its log (e.g. synthesis: plan, speak, write, merge)."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator


class Stopwatch:
    """Seconds spent under each name; a name used again adds up.

    >>> clock = Stopwatch()
    >>> with clock("speak_s"):
    ...     pass
    >>> list(clock.seconds())
    ['speak_s']
    """

    def __init__(self) -> None:
        self.total: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:  # time spent before an error counts too
            self.total[name] = self.total.get(name, 0.0) + time.perf_counter() - t0

    def seconds(self, digits: int = 2) -> dict[str, float]:
        return {k: round(v, digits) for k, v in self.total.items()}
