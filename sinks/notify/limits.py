"""How hard the notifier pushes a receiver: retry backoff, a concurrency cap and a rate limit.

* :func:`retry_delay_s` — exponential backoff with *full jitter* (a uniformly random wait between
  0 and ``min(cap, base * 2**(attempt-1))``), so notifiers retrying after one receiver outage do
  not come back in lockstep; ``None`` once the attempts or the elapsed time are spent.
* :class:`TokenBucket` — a rate limit with a burst, on an injected clock: :meth:`TokenBucket.reserve`
  takes a token and says how long to wait for it (reservations queue, so waiters are served in
  order and the long-run rate never exceeds ``rate_per_s``).
* :class:`ReceiverLimiter` — per receiver: at most ``concurrency`` requests in flight
  (an ``asyncio.Semaphore``) and at most ``rate_per_s`` started per second.

Nothing here reads a clock or draws a random number itself: both are injected, so tests drive
time and jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a delivery again: ``max_attempts`` in all (the first included), within
    ``max_elapsed_s`` of the first; waits grow from ``base_s`` doubling up to ``cap_s``."""

    max_attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 30.0
    max_elapsed_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not (0 < self.base_s <= self.cap_s) or self.max_elapsed_s < 0:
            raise ValueError("backoff needs 0 < base_s <= cap_s and max_elapsed_s >= 0")


def backoff_ceiling_s(policy: RetryPolicy, attempt: int) -> float:
    """The longest wait after failed attempt number ``attempt`` (1-based): ``base * 2**(attempt-1)``, capped."""
    exponent = min(max(attempt - 1, 0), 62)  # 2**62 is already past any cap; no float overflow
    return min(policy.cap_s, policy.base_s * 2.0**exponent)


def retry_delay_s(
    policy: RetryPolicy, attempt: int, elapsed_s: float, random: Callable[[], float]
) -> float | None:
    """How long to wait before attempt ``attempt + 1`` after ``attempt`` failed ``elapsed_s``
    after the first began; ``None`` when no attempt is left or the wait would end past
    ``max_elapsed_s``. ``random()`` is uniform in [0, 1) (``random.random``)."""
    if attempt >= policy.max_attempts:
        return None
    delay = random() * backoff_ceiling_s(policy, attempt)
    if elapsed_s + delay > policy.max_elapsed_s:
        return None
    return delay


class TokenBucket:
    """``rate_per_s`` tokens a second, at most ``burst`` saved up; ``clock()`` in seconds (monotonic)."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if not (rate_per_s > 0 and math.isfinite(rate_per_s)) or burst < 1:
            raise ValueError("a token bucket needs rate_per_s > 0 and burst >= 1")
        self.rate_per_s, self.burst, self.clock = rate_per_s, burst, clock
        self.tokens = float(burst)
        self.updated = clock()

    def reserve(self) -> float:
        """Take one token; the seconds to wait before using it (0: now). A reservation is never
        given back, so a waiter that is cancelled still counts against the rate (conservative)."""
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate_per_s


@dataclass(frozen=True)
class Limits:
    """A receiver's limits: requests in flight, and requests started per second (with a burst)."""

    concurrency: int = 8
    rate_per_s: float = 50.0
    burst: int = 50


class ReceiverLimiter:
    """The concurrency and rate limit of one receiver; ``async with limiter.slot():`` around a request."""

    def __init__(
        self,
        limits: Limits,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if limits.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.limits = limits
        self.semaphore = asyncio.Semaphore(limits.concurrency)
        self.bucket = TokenBucket(limits.rate_per_s, limits.burst, clock)
        self.sleep = sleep
        self.in_flight = 0
        self.most_in_flight = 0  # the high-water mark, for tests and metrics

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a free slot, then for the rate limit's token; hold the slot while the body runs."""
        async with self.semaphore:
            wait_s = self.bucket.reserve()
            if wait_s > 0:
                await self.sleep(wait_s)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1
