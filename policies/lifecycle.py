"""One alert's lifecycle: what is true, and what subscribers have been told.

Two things are tracked per fingerprint, as plain data so the worker can keep them in a
Faust table and tests in a dict:

* the **true state**: inactive, *pending* (breaching, inside its ``for``) or *firing* at a
  severity, with the time the breach began;
* the **announced state**: what the last notification said (nothing, or firing at a
  severity), and when it was sent.

Notifications reconcile the two. ``firing`` is sent only when nothing is announced and
``resolved`` only when something is, so they strictly alternate per fingerprint;
``escalated``/``deescalated``/``repeat`` update an announced alert. Suppression (silences,
maintenance, inhibition) holds back everything but ``resolved``. An alert is *flapping* while
its firing<->inactive changes inside the flap window reach ``flap_changes`` (default 3:
opened, closed, opened again). While flapping nothing new is announced and an announced
alert is not resolved; once it calms down the announced state catches up with the truth. So
a flapping link pages at most once per flap window.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from policies.model import SEVERITY_RANK, Notify, Threshold, from_json_float, json_float

# The true state of an alert that is not inactive (inactive is ``None``).
Phase = Literal["pending", "firing"]

# The layout of state the worker stores (``HostState``, ``GroupState`` and the alert states in
# them), written into every stored document as ``"v"``. Version 0 is everything written before
# the field existed: its layouts grew by appending, so only those are read by their length.
STATE_VERSION = 1


class StateVersionError(ValueError):
    """Stored state of a layout this code does not know (written by a newer version)."""


def stored_version(body: dict[str, Any]) -> int:
    """The layout version of a stored document (0: written before versions were stored)."""
    version = body.get("v", 0)
    if not isinstance(version, int) or not 0 <= version <= STATE_VERSION:
        raise StateVersionError(
            f"stored state has layout version {version!r}; this worker reads up to {STATE_VERSION}"
            " (was it written by a newer FleetPulse? upgrade this worker)"
        )
    return version


@dataclass
class AlertState:
    """Where one fingerprint stands. ``phase`` None = inactive."""

    phase: Phase | None = None
    severity: str = ""
    since: float = 0.0  # when the breach began (the alert's started_at)
    value: float = 0.0
    threshold: float = 0.0
    announced: str = ""  # "" = nothing open; else the severity last announced as firing
    announced_since: float = 0.0  # started_at of the announced alert
    notified_at: float = 0.0
    changes: list[float] = field(default_factory=list)  # firing<->inactive times, in flap window
    seen_at: float = -math.inf  # the last evaluation that touched this state (-inf: none yet)

    @property
    def idle(self) -> bool:
        """Nothing to remember: inactive, nothing announced, no recent changes."""
        return self.phase is None and not self.announced and not self.changes

    @property
    def active_rank(self) -> int:
        """Severity rank whose hysteresis applies (only while pending or firing)."""
        return SEVERITY_RANK.get(self.severity, 0) if self.phase else 0

    def to_list(self) -> list[object]:
        return [
            self.phase,
            self.severity,
            json_float(self.since),
            json_float(self.value),
            json_float(self.threshold),
            self.announced,
            json_float(self.announced_since),
            json_float(self.notified_at),
            [json_float(t) for t in self.changes],
            json_float(self.seen_at),
        ]

    @classmethod
    def from_list(cls, raw: list[Any], version: int = STATE_VERSION) -> AlertState:
        """Inverse of :meth:`to_list` (non-finite numbers as :func:`~policies.model.json_float` writes them);
        ``version`` is the enclosing document's :func:`stored_version`."""
        phase, severity, since, value, threshold, announced, announced_since, notified_at, changes = raw[:9]
        # version 0 also holds states stored before seen_at was kept: never skip those
        seen_at = raw[9] if version >= 1 or len(raw) > 9 else -math.inf
        num = from_json_float
        return cls(
            phase,
            severity,
            num(since),
            num(value),
            num(threshold),
            announced,
            num(announced_since),
            num(notified_at),
            [num(t) for t in changes],
            num(seen_at),
        )


@dataclass(frozen=True)
class Announced:
    """What the alert topic last said about a fingerprint (the worker reads it from there)."""

    severity: str  # "" when the last word was "resolved"
    started_at: float
    at: float


def sync(st: AlertState, told: Announced | None) -> None:
    """Take the announced part of ``st`` from what was really published.

    State kept elsewhere may be ahead of the alert topic after a crash (written, but the
    alert it decided never went out) or behind it; the published record is the truth.
    """
    if told is None or not told.severity:
        st.announced = ""
    else:
        st.announced, st.announced_since, st.notified_at = told.severity, told.started_at, told.at


AnnouncedLookup = Callable[[str], Announced | None]


def close_retired(st: AlertState, fp: str, now: float, announced: AnnouncedLookup | None = None) -> Notice | None:
    """A rule left the policy (or its scope): the resolution of what ``st`` announced, if anything.

    Nothing judges the alert again, so it is closed now; the topic (``announced``) decides
    whether anything is open. The value is the last one judged, never NaN: the alert topic's
    records carry finite numbers.
    """
    if announced is not None:
        sync(st, announced(fp))
    if not st.announced:
        return None
    notice = Notice("resolved", st.announced, st.announced_since, now, st.value, st.threshold)
    st.announced, st.notified_at = "", now
    return notice


@dataclass(frozen=True)
class Notice:
    """A notification to publish: ``transition`` is one of the contract's TRANSITIONS."""

    transition: str
    severity: str
    started_at: float
    at: float
    value: float
    threshold: float

    @property
    def state(self) -> str:
        return "resolved" if self.transition == "resolved" else "firing"


def advance(
    st: AlertState,
    crossed: Threshold | None,
    value: float,
    now: float,
    for_s: float,
    notify: Notify,
    suppressed: bool = False,
    max_gap_s: float = math.inf,
) -> Notice | None:
    """Move ``st`` (in place) to what the newest evaluation at ``now`` says; the notice to send.

    ``crossed`` is the most severe bound the value is beyond (hysteresis already applied),
    None when the value is back in bounds or could not be judged. A breach is sustained
    only if watched without a gap: more than ``max_gap_s`` since the previous evaluation
    restarts a pending breach's ``for`` clock (a host that was silent proved nothing).
    """
    was_firing = st.phase == "firing"
    gap = now - st.seen_at > max_gap_s
    st.seen_at = now
    if crossed is None:
        st.phase = None
        st.severity = ""
    else:
        if st.phase is None or (st.phase == "pending" and gap):
            st.phase, st.since = "pending", now
        st.severity, st.value, st.threshold = crossed.severity, value, crossed.value
        if st.phase == "pending" and now - st.since >= for_s:
            st.phase = "firing"
    if (st.phase == "firing") != was_firing:
        st.changes.append(now)
    if st.changes:
        horizon = now - notify.flap_window_s
        st.changes = [t for t in st.changes if t > horizon]
    flapping = len(st.changes) >= notify.flap_changes > 0
    return _reconcile(st, value, now, notify, suppressed, flapping)


def _reconcile(
    st: AlertState, value: float, now: float, notify: Notify, suppressed: bool, flapping: bool
) -> Notice | None:
    firing = st.phase == "firing"
    if not st.announced:
        if not firing or suppressed or flapping:
            return None  # a flapping alert re-opens only once it has calmed down
        st.announced, st.announced_since, st.notified_at = st.severity, st.since, now
        return Notice("firing", st.severity, st.since, now, value, st.threshold)
    if not firing:
        if flapping:
            return None  # stay open until the flapping calms down
        if st.phase == "pending":
            # Still in breach, only the sustain clock is young: state behind the alert topic
            # (lost with a crash, replayed from older offsets) must not close what is open.
            return None
        # a value that could not be judged (NaN) is no number to publish: say the last one judged
        shown = st.value if math.isnan(value) else value
        notice = Notice("resolved", st.announced, st.announced_since, now, shown, st.threshold)
        st.announced, st.notified_at = "", now
        return notice
    if suppressed:
        return None
    if st.severity != st.announced:
        up = SEVERITY_RANK[st.severity] > SEVERITY_RANK[st.announced]
        st.announced, st.notified_at = st.severity, now
        return Notice("escalated" if up else "deescalated", st.severity, st.announced_since, now, value, st.threshold)
    if notify.renotify_s > 0 and now - st.notified_at >= notify.renotify_s:
        st.notified_at = now
        return Notice("repeat", st.severity, st.announced_since, now, value, st.threshold)
    return None
