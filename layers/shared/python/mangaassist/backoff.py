"""Full-jitter exponential backoff, the one schedule every retry loop here uses.

``delay(attempt) = uniform(0, min(cap, base * 2**attempt))`` for the 0-based retry number:
AWS's recommendation (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/),
which spreads retrying clients instead of letting them retry in lockstep.
"""
from __future__ import annotations

import random
from collections.abc import Callable


def full_jitter(attempt: int, base: float, cap: float, rng: Callable[[], float] | None = None) -> float:
    return (rng or random.random)() * min(cap, base * 2 ** attempt)
