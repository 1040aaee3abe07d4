"""Time intervals: when a route's notifications are muted (``mute_time_intervals``) or allowed
(``active_time_intervals``).

A named interval is a list of windows and holds when any of them does. A window is either the
policy files' maintenance shape (``cron`` + ``duration`` in a ``timezone``, evaluated by
:mod:`policies.cron`) or Alertmanager's calendar shape (``times``, ``weekdays``,
``days_of_month``, ``months``, ``years`` in a ``location``; every field given must hold, an
absent one always does). Parsing raises ``ValueError`` with the reason; the config loader
adds ``file:line``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from policies import cron

WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
MIN_YEAR, MAX_YEAR = 1970, 9999

Span = tuple[int, int]  # an inclusive range of values


@dataclass(frozen=True)
class CronWindow:
    """From each match of ``cron`` (five fields) for ``duration_s``, in ``timezone``."""

    cron: str
    duration_s: float
    timezone: str = "UTC"

    def contains(self, t: float) -> bool:
        return cron.in_window(self.cron, self.timezone, self.duration_s, t)


@dataclass(frozen=True)
class CalendarWindow:
    """Alertmanager's ``time_interval``: every given field holds at ``t`` in ``timezone``.

    ``times`` are ``[start, end)`` minutes of the day; the other fields are inclusive spans
    (weekdays 0 = Sunday; days of month may count back from the end, -1 being the last day).
    """

    times: tuple[Span, ...] = ()
    weekdays: tuple[Span, ...] = ()
    days_of_month: tuple[Span, ...] = ()
    months: tuple[Span, ...] = ()
    years: tuple[Span, ...] = ()
    timezone: str = "UTC"

    def contains(self, t: float) -> bool:
        local = datetime.fromtimestamp(t, ZoneInfo(self.timezone))
        minute = local.hour * 60 + local.minute
        if self.times and not any(start <= minute < end for start, end in self.times):
            return False
        weekday = (local.weekday() + 1) % 7  # Python's Monday = 0; Alertmanager's Sunday = 0
        if self.weekdays and not _in_spans(weekday, self.weekdays):
            return False
        if self.days_of_month and not _day_matches(local, self.days_of_month):
            return False
        if self.months and not _in_spans(local.month, self.months):
            return False
        return not self.years or _in_spans(local.year, self.years)


Window = CronWindow | CalendarWindow


@dataclass(frozen=True)
class TimeInterval:
    """A named set of windows; it holds at ``t`` when any window does."""

    name: str
    windows: tuple[Window, ...]
    source: str = ""

    def contains(self, t: float) -> bool:
        return any(window.contains(t) for window in self.windows)


def _in_spans(value: int, spans: Iterable[Span]) -> bool:
    return any(lo <= value <= hi for lo, hi in spans)


def _day_matches(local: datetime, spans: Iterable[Span]) -> bool:
    days = calendar.monthrange(local.year, local.month)[1]
    for lo, hi in spans:
        start = lo if lo > 0 else days + lo + 1
        end = hi if hi > 0 else days + hi + 1
        if start <= local.day <= min(end, days):
            return True
    return False


# --- parsing (ValueError says why) -----------------------------------------------------------


def parse_clock(text: str) -> int:
    """``"HH:MM"`` (00:00 .. 24:00) -> minutes of the day."""
    match = _CLOCK.match(text)
    if not match or (match[1] == "24" and match[2] != "00"):
        raise ValueError(f"{text!r} is not a time of day HH:MM between 00:00 and 24:00")
    return int(match[1]) * 60 + int(match[2])


def parse_time_range(start: str, end: str) -> Span:
    """``start_time``/``end_time`` -> ``(start, end)`` minutes, ``start`` < ``end``."""
    lo, hi = parse_clock(start), parse_clock(end)
    if lo >= hi:
        raise ValueError(f"start_time {start!r} must be before end_time {end!r}")
    return lo, hi


def _value(text: str, names: tuple[str, ...], base: int) -> int:
    word = text.strip().lower()
    if word in names:
        return names.index(word) + base
    try:
        return int(word)
    except ValueError:
        raise ValueError(f"{text!r} is not {'a name or ' if names else ''}a number") from None


def parse_span(text: str | int, what: str) -> Span:
    """One ``weekdays``/``days_of_month``/``months``/``years`` entry: ``"monday:friday"``, ``"1:5"``, ``7``."""
    names, base, lo, hi = {
        "weekdays": (WEEKDAYS, 0, 0, 6),
        "days_of_month": ((), 0, -31, 31),
        "months": (MONTHS, 1, 1, 12),
        "years": ((), 0, MIN_YEAR, MAX_YEAR),
    }[what]
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"each of {what} is a value or a range 'a:b'")
    first, _, last = str(text).partition(":")
    start = _value(first, names, base)
    end = _value(last, names, base) if last else start
    for value in (start, end):
        if not lo <= value <= hi or (what == "days_of_month" and value == 0):
            raise ValueError(f"{text!r}: {what} runs from {lo} to {hi}" + (" (not 0)" if lo < 0 else ""))
    if what == "days_of_month" and (start < 0) != (end < 0):
        raise ValueError(f"{text!r}: a range of days counts from the start or from the end, not both")
    if start > end:
        raise ValueError(f"{text!r}: the range ends before it starts")
    return start, end


def check_timezone(name: str) -> None:
    """``ValueError`` unless ``name`` is an IANA time zone (``UTC``, ``Europe/Berlin``)."""
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def check_cron(expr: str, timezone: str) -> None:
    """``ValueError`` unless ``expr`` is a five-field cron expression and ``timezone`` known."""
    check_timezone(timezone)
    cron.check(expr, timezone)
