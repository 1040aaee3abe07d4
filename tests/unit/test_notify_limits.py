"""Retry backoff with full jitter, the token bucket and the per-receiver limiter, on injected time."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.notify.limits import (
    Limits,
    ReceiverLimiter,
    RetryPolicy,
    TokenBucket,
    backoff_ceiling_s,
    retry_delay_s,
)

POLICY = RetryPolicy(max_attempts=6, base_s=0.5, cap_s=5.0, max_elapsed_s=60.0)


class Clock:
    """Seconds that move only when told (or when the limiter sleeps)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_backoff_ceilings_double_from_the_base_up_to_the_cap() -> None:
    assert [backoff_ceiling_s(POLICY, n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff_ceiling_s(POLICY, 10_000) == 5.0  # no overflow for absurd attempt counts


def test_full_jitter_scales_the_ceiling_by_the_random_draw() -> None:
    assert retry_delay_s(POLICY, 3, 0.0, lambda: 0.0) == 0.0
    assert retry_delay_s(POLICY, 3, 0.0, lambda: 0.25) == 0.5
    assert retry_delay_s(POLICY, 3, 0.0, lambda: 0.999) == pytest.approx(1.998)


def test_no_retry_once_the_attempts_are_spent() -> None:
    assert retry_delay_s(POLICY, 5, 0.0, lambda: 0.5) is not None
    assert retry_delay_s(POLICY, 6, 0.0, lambda: 0.5) is None


def test_no_retry_whose_wait_would_end_past_the_elapsed_budget() -> None:
    assert retry_delay_s(POLICY, 4, 57.0, lambda: 0.5) == 2.0  # ends at 59 s
    assert retry_delay_s(POLICY, 4, 58.5, lambda: 0.5) is None  # would end at 60.5 s


def test_a_policy_that_cannot_work_is_refused() -> None:
    for bad in ({"max_attempts": 0}, {"base_s": 0.0}, {"base_s": 10.0, "cap_s": 1.0}, {"max_elapsed_s": -1.0}):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(
    attempt=st.integers(1, 100),
    draw=st.floats(0.0, 1.0, exclude_max=True),
    elapsed=st.floats(0.0, 100.0),
)
def test_every_delay_is_within_zero_and_the_ceiling_and_inside_the_budget(
    attempt: int, draw: float, elapsed: float
) -> None:
    delay = retry_delay_s(POLICY, attempt, elapsed, lambda: draw)
    if delay is not None:
        assert 0.0 <= delay <= backoff_ceiling_s(POLICY, attempt)
        assert elapsed + delay <= POLICY.max_elapsed_s
        assert attempt < POLICY.max_attempts


def test_the_bucket_gives_its_burst_then_queues_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate_per_s=2.0, burst=3, clock=clock)
    assert [bucket.reserve() for _ in range(5)] == [0.0, 0.0, 0.0, 0.5, 1.0]


def test_the_bucket_refills_with_time_but_never_beyond_its_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate_per_s=1.0, burst=2, clock=clock)
    bucket.reserve(), bucket.reserve()
    clock.now += 1.0
    assert bucket.reserve() == 0.0
    clock.now += 3600.0
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 1.0]


def test_a_bucket_that_cannot_work_is_refused() -> None:
    for rate, burst in ((0.0, 1), (float("inf"), 1), (1.0, 0)):
        with pytest.raises(ValueError):
            TokenBucket(rate, burst)


def test_the_limiter_spaces_requests_at_the_rate_limit() -> None:
    clock = Clock()
    limiter = ReceiverLimiter(Limits(concurrency=4, rate_per_s=10.0, burst=2), clock, clock.sleep)
    started: list[float] = []

    async def one() -> None:
        async with limiter.slot():
            started.append(clock.now)

    async def main() -> None:
        for _ in range(4):
            await one()

    asyncio.run(main())
    assert started == pytest.approx([100.0, 100.0, 100.1, 100.2])


def test_the_limiter_holds_at_most_its_concurrency_in_flight() -> None:
    limiter = ReceiverLimiter(Limits(concurrency=3, rate_per_s=1e6, burst=100))

    async def one() -> None:
        async with limiter.slot():
            await asyncio.sleep(0.01)

    async def main() -> None:
        await asyncio.gather(*(one() for _ in range(10)))

    asyncio.run(main())
    assert limiter.most_in_flight == 3 and limiter.in_flight == 0
