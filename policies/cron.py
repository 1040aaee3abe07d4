"""Cron windows: "from each time ``expr`` matches, for ``length_s`` seconds", in a time zone.

Matching is done by cronsim (the five-field syntax of cron and of most schedulers). Results
are cached per minute, since the evaluator asks the same question for many hosts at once.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError


def check(expr: str, timezone: str = "UTC") -> None:
    """Raise ValueError with the reason when ``expr`` or ``timezone`` is not usable."""
    try:
        CronSim(expr, datetime.now(UTC))
    except CronSimError as exc:
        raise ValueError(f"bad cron expression {expr!r}: {exc}") from None
    try:
        ZoneInfo(timezone)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc


@functools.lru_cache(maxsize=4096)
def _last_start_minute(expr: str, timezone: str, minute: int) -> float:
    start = datetime.fromtimestamp(minute * 60 + 60, ZoneInfo(timezone))  # exclusive bound
    return next(CronSim(expr, start, reverse=True)).timestamp()


def last_start(expr: str, timezone: str, t: float) -> float:
    """The latest time <= ``t`` at which ``expr`` matches (cron has minute resolution)."""
    return _last_start_minute(expr, timezone, int(t // 60))


def in_window(expr: str, timezone: str, length_s: float, t: float) -> bool:
    """Is ``t`` inside a window that began at a match of ``expr`` and lasts ``length_s``?"""
    return t - last_start(expr, timezone, t) < length_s
