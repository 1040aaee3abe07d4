"""Aggregation groups: alerts batched into notifications on Alertmanager's timers, on an injected clock.

Feed alert transitions with :meth:`Groups.ingest` (it routes them) or :meth:`Groups.add` (an
already routed one); ask :meth:`Groups.due` at any time for the notifications due by then, and
:meth:`Groups.next_due` for when to ask next. Nothing here reads a clock or sleeps.

The timers, per group (as Alertmanager's dispatcher and notification log):

* a new group first ticks ``group_wait`` after its first alert arrived (at once if that alert
  started more than ``group_wait`` ago), then every ``group_interval``;
* at a tick a notification is sent when a firing alert is new since the last one, when every
  alert has resolved since it, when an alert resolved (receivers that ``send_resolved``), or when
  ``repeat_interval`` has passed since the last one; otherwise nothing;
* resolved alerts are sent once and then dropped; a group left with no alerts is deleted;
* while a mute interval holds (or no active interval does) the tick is skipped, not queued.

Each :class:`Flush` has a ``notification_id``: a hash of the group key, the group's creation,
every alert's state and the group's flush count, the idempotency key of its delivery.
:meth:`Groups.to_dict` / :meth:`Groups.from_dict` carry the whole state (versioned) so a
restarted notifier resumes every group where it was.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from collector.contract import Alert, DecodeError, decode_as, encode
from policies.alerts import alert_event_id, labels_of
from policies.model import short_hash
from sinks.notify.config import NotifyConfig
from sinks.notify.intervals import TimeInterval
from sinks.notify.routes import Match, Route, Timers, build_tree, route_alert

STATE_VERSION = 1


class StateError(ValueError):
    """A saved groups state that cannot be read back; the message says why."""


@dataclass(frozen=True)
class Flush:
    """One notification due: the group's alerts as the receiver is to see them."""

    notification_id: str
    group_key: str
    route_id: str
    receiver: str
    group_labels: tuple[tuple[str, str], ...]
    alerts: tuple[Alert, ...]  # sorted by fingerprint; resolved ones only for send_resolved receivers
    at: float
    seq: int

    @property
    def status(self) -> str:
        """``firing`` while any alert of the notification fires, else ``resolved``."""
        return "firing" if self.firing else "resolved"

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.state == "firing")

    @property
    def resolved(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.state == "resolved")


@dataclass
class Group:
    """One aggregation group and its notification log entry (what was last sent, when)."""

    match: Match
    send_resolved: bool
    created_at: float
    next_at: float
    alerts: dict[str, Alert] = field(default_factory=dict)
    has_flushed: bool = False
    sent_firing: frozenset[str] = frozenset()
    sent_resolved: frozenset[str] = frozenset()
    sent_at: float | None = None
    seq: int = 0

    @property
    def key(self) -> str:
        return self.match.group_key

    def needs_update(self, firing: frozenset[str], resolved: frozenset[str], now: float) -> bool:
        """Alertmanager's dedup decision against the last notification of this group."""
        if self.sent_at is None:
            return bool(firing)  # never notified: only firing alerts are news
        if not firing <= self.sent_firing:
            return True
        if not firing:
            return bool(self.sent_firing)  # everything the receiver knows as firing has ended
        if self.send_resolved and not resolved <= self.sent_resolved:
            return True
        return self.sent_at < now - self.match.timers.repeat_interval_s


def _muted(match: Match, intervals: Mapping[str, TimeInterval], now: float) -> bool:
    """Does a mute interval hold, or no active interval (when the route names some) at ``now``?
    Names the config no longer defines are ignored."""
    if any(intervals[n].contains(now) for n in match.mute_time_intervals if n in intervals):
        return True
    active = [intervals[n] for n in match.active_time_intervals if n in intervals]
    return bool(active) and not any(interval.contains(now) for interval in active)


def notification_id(group: Group, alerts: Iterable[Alert], seq: int) -> str:
    """The idempotency key of a notification: same group, alert states and flush count, same id."""
    states = sorted(f"{a.fingerprint}\x01{a.state}\x01{a.event_id}" for a in alerts)
    return short_hash(group.key, repr(float(group.created_at)), str(seq), *states, size=16)


def resolved_copy(alert: Alert, at: float) -> Alert:
    """``alert`` as resolved at ``at`` (when its route changed under it, e.g. on escalation)."""
    return dataclasses.replace(
        alert,
        state="resolved",
        transition="resolved",
        at=at,
        event_id=alert_event_id(alert.fingerprint, "resolved", alert.severity, alert.started_at, at),
    )


class Groups:
    """Every aggregation group of a notifier, keyed by group key.

    ``send_resolved(receiver)`` says whether a receiver is told of resolutions; ``intervals``
    are the named time intervals routes refer to.
    """

    def __init__(
        self,
        tree: Route,
        send_resolved: Callable[[str], bool],
        intervals: Mapping[str, TimeInterval] | None = None,
    ) -> None:
        self.tree = tree
        self.send_resolved = send_resolved
        self.intervals: Mapping[str, TimeInterval] = intervals or {}
        self.groups: dict[str, Group] = {}
        self._holding: dict[str, set[str]] = {}  # fingerprint -> keys of the groups holding it

    @classmethod
    def for_config(cls, config: NotifyConfig) -> Groups:
        """Empty groups for a loaded config: its tree, receivers' ``send_resolved``, intervals."""
        receivers = config.receivers

        def send_resolved(name: str) -> bool:
            return receivers[name].send_resolved if name in receivers else True

        return cls(build_tree(config.route), send_resolved, config.time_intervals)

    # --- feeding ---------------------------------------------------------------------------

    def ingest(self, alert: Alert, now: float) -> list[str]:
        """Route one transition and apply it; the keys of the groups it changed.

        A firing alert goes to every group its labels route it to, and resolves (as of its
        ``at``) in groups it no longer routes to; a resolution reaches every group holding it.
        """
        if alert.state == "resolved":
            keys = sorted(self._holding.get(alert.fingerprint, ()))
            return [key for key in keys if self._apply(self.groups[key], alert)]
        matches = route_alert(self.tree, labels_of(alert))
        changed = [m.group_key for m in matches if self.add(m, alert, now)]
        routed = {m.group_key for m in matches}
        for key in sorted(self._holding.get(alert.fingerprint, set()) - routed):
            held = self.groups[key].alerts[alert.fingerprint]
            if held.state == "firing" and self._apply(self.groups[key], resolved_copy(held, alert.at)):
                changed.append(key)
        return changed

    def add(self, match: Match, alert: Alert, now: float) -> bool:
        """Put a transition in the group of ``match`` (made if need be); was the group changed?

        A resolution of an alert the group does not hold changes nothing (no group is made for
        it); a transition older than the one held (by ``at``) is a replay and ignored.
        """
        group = self.groups.get(match.group_key)
        if group is None:
            if alert.state != "firing":
                return False
            first_tick = now + match.timers.group_wait_s
            group = Group(match, self.send_resolved(match.receiver), created_at=now, next_at=first_tick)
            self.groups[match.group_key] = group
        if not group.has_flushed and alert.started_at + match.timers.group_wait_s < now:
            group.next_at = min(group.next_at, now)  # an old alert need not wait (as Alertmanager)
        return self._apply(group, alert)

    def _apply(self, group: Group, alert: Alert) -> bool:
        held = group.alerts.get(alert.fingerprint)
        if held is None and alert.state != "firing":
            return False
        if held is not None and held.at > alert.at:
            return False
        group.alerts[alert.fingerprint] = alert
        self._holding.setdefault(alert.fingerprint, set()).add(group.key)
        return True

    # --- flushing --------------------------------------------------------------------------

    def next_due(self) -> float | None:
        """When the earliest group ticks (``None``: no groups)."""
        return min((g.next_at for g in self.groups.values()), default=None)

    def due(self, now: float) -> list[Flush]:
        """The notifications due by ``now``, in tick order; each ticked group is rescheduled."""
        ticking = sorted((g for g in self.groups.values() if g.next_at <= now), key=lambda g: (g.next_at, g.key))
        flushes = []
        for group in ticking:
            group.next_at = now + group.match.timers.group_interval_s
            group.has_flushed = True
            flush = self._tick(group, now)
            if flush is not None:
                flushes.append(flush)
            if not group.alerts:
                self._delete(group)
        return flushes

    def _tick(self, group: Group, now: float) -> Flush | None:
        firing = frozenset(fp for fp, a in group.alerts.items() if a.state == "firing")
        resolved = frozenset(group.alerts) - firing
        if not group.needs_update(firing, resolved, now):
            self._drop(group, resolved)
            return None
        if _muted(group.match, self.intervals, now):
            # Skipped, not queued. A resolution the receiver has yet to hear of (it knows the
            # alert as firing) is kept for the next unmuted tick; other resolved alerts go.
            self._drop(group, resolved - group.sent_firing)
            return None
        alerts = tuple(group.alerts[fp] for fp in sorted(group.alerts))
        sent = alerts if group.send_resolved else tuple(a for a in alerts if a.state == "firing")
        group.sent_firing, group.sent_resolved, group.sent_at = firing, resolved, now
        self._drop(group, resolved)
        if not sent:  # all resolved, to a receiver not told of resolutions: logged, not sent
            return None
        group.seq += 1
        return Flush(
            notification_id=notification_id(group, sent, group.seq),
            group_key=group.key,
            route_id=group.match.route_id,
            receiver=group.match.receiver,
            group_labels=group.match.group_labels,
            alerts=sent,
            at=now,
            seq=group.seq,
        )

    def _drop(self, group: Group, fingerprints: Iterable[str]) -> None:
        for fp in fingerprints:
            del group.alerts[fp]
            holding = self._holding.get(fp)
            if holding is not None:
                holding.discard(group.key)
                if not holding:
                    del self._holding[fp]

    def _delete(self, group: Group) -> None:
        self._drop(group, list(group.alerts))
        del self.groups[group.key]

    # --- state -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The whole state as JSON-ready data (``version`` first), groups sorted by key."""
        return {"version": STATE_VERSION, "groups": [_group_dict(self.groups[k]) for k in sorted(self.groups)]}

    @classmethod
    def from_dict(
        cls,
        data: Any,
        tree: Route,
        send_resolved: Callable[[str], bool],
        intervals: Mapping[str, TimeInterval] | None = None,
    ) -> Groups:
        """The state saved by :meth:`to_dict`; :class:`StateError` when it cannot be read.

        Restored groups keep the route settings they were made with (a reloaded config
        applies to the groups made after it)."""
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            version = data.get("version") if isinstance(data, dict) else None
            raise StateError(f"unsupported groups state version {version!r} (expected {STATE_VERSION})")
        groups = cls(tree, send_resolved, intervals)
        try:
            for raw in data["groups"]:
                group = _group_from(raw)
                groups.groups[group.key] = group
                for fp in group.alerts:
                    groups._holding.setdefault(fp, set()).add(group.key)
        except (KeyError, TypeError, ValueError, DecodeError, orjson.JSONDecodeError) as exc:
            raise StateError(f"unreadable groups state: {exc}") from None
        return groups


def _group_dict(g: Group) -> dict[str, Any]:
    m = g.match
    return {
        "key": m.group_key,
        "route_id": m.route_id,
        "receiver": m.receiver,
        "group_by": list(m.group_by),
        "timers": [m.timers.group_wait_s, m.timers.group_interval_s, m.timers.repeat_interval_s],
        "mute_time_intervals": list(m.mute_time_intervals),
        "active_time_intervals": list(m.active_time_intervals),
        "group_labels": [list(pair) for pair in m.group_labels],
        "send_resolved": g.send_resolved,
        "created_at": g.created_at,
        "next_at": g.next_at,
        "has_flushed": g.has_flushed,
        "sent_firing": sorted(g.sent_firing),
        "sent_resolved": sorted(g.sent_resolved),
        "sent_at": g.sent_at,
        "seq": g.seq,
        "alerts": [orjson.loads(encode(g.alerts[fp])) for fp in sorted(g.alerts)],
    }


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of strings")
    return tuple(value)


def _group_from(raw: dict[str, Any]) -> Group:
    timers = Timers(*(_number(t, "timers") for t in raw["timers"]))
    if timers.group_wait_s < 0 or timers.group_interval_s <= 0 or timers.repeat_interval_s <= 0:
        raise ValueError(f"timers must be a wait >= 0 and intervals > 0, got {raw['timers']!r}")
    labels = tuple((str(k), str(v)) for k, v in raw["group_labels"])
    match = Match(
        route_id=str(raw["route_id"]),
        receiver=str(raw["receiver"]),
        group_by=_strings(raw["group_by"], "group_by"),
        timers=timers,
        mute_time_intervals=_strings(raw["mute_time_intervals"], "mute_time_intervals"),
        active_time_intervals=_strings(raw["active_time_intervals"], "active_time_intervals"),
        group_labels=labels,
        group_key=str(raw["key"]),
    )
    alerts: dict[str, Alert] = {}
    for body in raw["alerts"]:
        alert = decode_as(orjson.dumps(body), Alert)
        alerts[alert.fingerprint] = alert
    sent_at = raw["sent_at"]
    return Group(
        match=match,
        send_resolved=bool(raw["send_resolved"]),
        created_at=_number(raw["created_at"], "created_at"),
        next_at=_number(raw["next_at"], "next_at"),
        alerts=alerts,
        has_flushed=bool(raw["has_flushed"]),
        sent_firing=frozenset(_strings(raw["sent_firing"], "sent_firing")),
        sent_resolved=frozenset(_strings(raw["sent_resolved"], "sent_resolved")),
        sent_at=None if sent_at is None else _number(sent_at, "sent_at"),
        seq=int(_number(raw["seq"], "seq")),
    )
