"""Daily token budgets per feature, against the usage table's ``feature#<feature>`` row (the usage
aggregator counts every InferenceCompleted there).

Reading the row on every request would add a DynamoDB read to each; a container rereads it at
most every ``ttl_seconds``, so a budget can be overshot by what the fleet spends in that window
(the counters themselves trail by the aggregator's delivery, seconds).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

logger = logging.getLogger(__name__)


class Budgets:
    def __init__(self, usage, *, ttl_seconds: float = 10.0, clock: Callable[[], float] = time.time):
        self.usage = usage  # mangaassist.dal.usage.UsageCounters
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def used_today(self, feature: str) -> int:
        now = self.clock()
        day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
        with self._lock:
            seen = self._seen.get((day, feature))
        if seen and now - seen[0] < self.ttl_seconds:
            return seen[1]
        try:
            used = self.usage.tokens(day, feature)
        except Exception as exc:  # a budget must not be the outage: count nothing, say so
            logger.warning("usage table unreadable, budget for %s not enforced this time: %s", feature, exc)
            return seen[1] if seen else 0
        with self._lock:
            self._seen[(day, feature)] = (now, used)
        return used

    def exhausted(self, feature: str, budget: int) -> bool:
        return budget > 0 and self.used_today(feature) >= budget
