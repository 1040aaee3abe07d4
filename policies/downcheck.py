"""The down-checker's pure logic: per-host silence detection and cross-region correlation.

Two stages, both clock-free (every method takes ``now``, the *worker's* clock at arrival, so
tests inject time and agents' clocks never decide anything):

* :class:`HostWatch`, one per host (keyed by host id in the stream): remembers the last
  arrival, sequence number, boot id and interval, and says when the host became *late*
  (an early warning, ``late x interval``) or *silent* (``missed x interval``), and how it came
  back (continuous sequence, lost beats, or a new boot id).
* :class:`Correlator`, the fleet's view (keyed by region inside): knows how many hosts each
  region has and how many are late or silent, and turns silences into at most one page per
  cause: ``host_down`` for an isolated silence in a healthy region, ``region_unreachable``
  when a share of a region stopped together, ``ingest_outage`` when most regions did.

Why "late" exists: a partition stops a whole region at one instant, but hosts' deadlines are
spread over one interval. By the time the first host of a partitioned region is *silent*
(``missed x interval`` after its last beat), every other host of that region is already
*late* (``late x interval``, with ``late < missed - 1``). So the region's health is known at
the first silence, and a real crash can be paged after a short confirmation ``grace`` instead
of waiting for the whole region's deadlines to pass.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SignalKind = Literal["join", "late", "silent", "back"]
BackReason = Literal["continuous", "gap", "stalled", "rebooted", ""]


@dataclass(frozen=True)
class DownCheckSettings:
    """How silence is judged; one set per policy scope (see the policy files' ``downcheck``)."""

    missed: float = 3.0  # silent after this many intervals without an arrival
    late: float = 1.5  # late (not paged, counted for region health) after this many
    grace_s: float = 1.0  # confirmation time between silence and a page
    region_share: float = 0.5  # this share of a region stale together => region unreachable
    min_region_hosts: int = 5  # below this, a region's silence is unknown, not a partition
    ingest_share: float = 0.6  # this share of regions out together => ingest outage
    flap_window_s: float = 300.0  # at most one host_down page per host per window
    witness_max_age_s: float = 60.0  # an unchanged witness state is trusted this long
    # Topology labels whose groups can fail together, broadest first ("region" is the host's
    # region; a label a host lacks puts it in no group of that label). Fleet-wide: read from
    # the default settings, not per scope. Values must name one group across the fleet.
    correlate_by: tuple[str, ...] = ("region", "zone", "rack")
    group_share: float = 0.5  # this share of a label group stopped together => group unreachable
    min_group_hosts: int = 5  # below this, a label group's shared silence is unknown, not a cut

    def problems(self) -> list[str]:
        """What is inconsistent, in words an operator can act on (empty when fine)."""
        out = []
        if self.missed < 2:
            out.append(f"'missed' must be at least 2 intervals, got {self.missed:g}")
        if not 1 <= self.late < self.missed - 1:
            out.append(
                f"'late' must be at least 1 and below missed - 1 ({self.missed - 1:g}) so a partition is seen"
                f" before its first host is silent, got {self.late:g}"
            )
        for name in ("region_share", "ingest_share", "group_share"):
            share = getattr(self, name)
            if not 0 < share <= 1:
                out.append(f"{name!r} must be in (0, 1], got {share:g}")
        for name in ("min_region_hosts", "min_group_hosts"):
            if getattr(self, name) < 2:
                out.append(f"{name!r} must be at least 2, got {getattr(self, name)}")
        if not self.correlate_by or len(set(self.correlate_by)) != len(self.correlate_by):
            out.append(f"'correlate_by' must list distinct label names, got {list(self.correlate_by)}")
        elif not all(isinstance(label, str) and label for label in self.correlate_by):
            out.append(f"'correlate_by' must list label names, got {list(self.correlate_by)}")
        if self.grace_s < 0 or self.flap_window_s < 0:
            out.append("'grace' and 'flap_window' cannot be negative")
        return out


@dataclass(frozen=True)
class Signal:
    """What the per-host stage tells the correlator (repartitioned; only on changes)."""

    kind: SignalKind
    host_id: str
    region: str
    at: float
    reason: BackReason = ""
    downtime_s: float = 0.0  # estimated, for ``rebooted`` and ``stalled``
    boot_id: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)  # on ``join``: for scoped settings and groups
    interval_s: float = 0.0  # the host's heartbeat interval (0: unknown)
    last_at: float = 0.0  # on ``late``/``silent``: the last arrival (worker clock) the deadline counts from


@dataclass
class HostWatch:
    """One host's heartbeat bookkeeping; ``told`` is what the correlator last heard."""

    host_id: str
    region: str
    boot_id: str
    seq: int
    sent_at: float  # the agent's clock: compared only with the same host's clock
    interval_s: float
    arrived: float  # the worker's clock
    told: Literal["up", "late", "silent"] = "up"

    @classmethod
    def first(
        cls,
        host_id: str,
        region: str,
        boot_id: str,
        seq: int,
        sent_at: float,
        interval_s: float,
        now: float,
        labels: Mapping[str, str] | None = None,
    ) -> tuple[HostWatch, Signal]:
        """A host never seen before: watch it and tell the correlator it joined."""
        watch = cls(host_id, region, boot_id, seq, sent_at, interval_s, now)
        return watch, Signal(
            "join", host_id, region, now, boot_id=boot_id, labels=dict(labels or {}), interval_s=interval_s, last_at=now
        )

    def observe(self, boot_id: str, seq: int, sent_at: float, interval_s: float, now: float) -> list[Signal]:
        """A heartbeat arrived at ``now``; returns what changed (often nothing)."""
        if boot_id == self.boot_id and seq <= self.seq:
            return []  # a duplicate or an older replayed beat: arrival says nothing new
        signals: list[Signal] = []
        if boot_id != self.boot_id:
            # Both times are this host's clock, so its skew cancels out.
            downtime = max(0.0, sent_at - self.sent_at - self.interval_s)
            signals.append(
                Signal("back", self.host_id, self.region, now, "rebooted", downtime, boot_id, interval_s=interval_s)
            )
        elif self.told != "up":
            # The next sequence number proves nothing was lost, but only a beat made on schedule
            # (a spooled one, replayed) proves the host was running meanwhile: one made long after
            # the last means the host or its agent stood still (paused VM, stopped agent, hang).
            made_after = sent_at - self.sent_at
            reason: BackReason = "gap"
            stalled_s = 0.0
            if seq == self.seq + 1:
                on_schedule = made_after < 2 * max(self.interval_s, interval_s)
                reason = "continuous" if on_schedule else "stalled"
                stalled_s = 0.0 if on_schedule else max(0.0, made_after - self.interval_s)
            signals.append(
                Signal("back", self.host_id, self.region, now, reason, stalled_s, boot_id, interval_s=interval_s)
            )
        self.boot_id, self.seq, self.sent_at, self.interval_s, self.arrived = boot_id, seq, sent_at, interval_s, now
        self.told = "up"
        return signals

    def deadline(self, settings: DownCheckSettings) -> float:
        """When the next signal is due if nothing arrives."""
        k = settings.late if self.told == "up" else settings.missed
        return self.arrived + k * self.interval_s

    def due(self, now: float, settings: DownCheckSettings) -> Signal | None:
        """The late/silent signal owed at ``now``, if any (each is given once).

        It is dated at the deadline it marks, not when it was noticed (the next tick, on a
        clock that moves in steps): the grace before a page counts from the silence itself.
        """
        deadline = self.deadline(settings)
        if self.told == "silent" or now < deadline:
            return None
        self.told = "late" if self.told == "up" else "silent"
        silent_at = self.arrived + settings.missed * self.interval_s
        if self.told == "late" and now >= silent_at:
            self.told, deadline = "silent", silent_at  # the worker was away for both: say the stronger
        return Signal(self.told, self.host_id, self.region, deadline, interval_s=self.interval_s, last_at=self.arrived)


HostStatus = Literal["up", "late", "silent", "down", "unreachable", "ingest", "path_broken", "unknown"]
NoticeKind = Literal[
    "host_down",
    "host_rebooted",
    "host_flapping",
    "region_unreachable",
    "region_unknown",
    "group_unreachable",
    "group_unknown",
    "ingest_outage",
]
NOTICE_KINDS: tuple[str, ...] = NoticeKind.__args__  # type: ignore[attr-defined]
BLANKET_KINDS = frozenset({"region_unreachable", "region_unknown", "group_unreachable", "group_unknown"})
INGEST = "ingest_outage:fleet"
FLEET = "fleet"  # the group of every host: an ingest outage is the whole fleet stopping together
# Statuses a blanket (or the wait for one) holds a silent host in; released when it lifts.
_HELD: frozenset[str] = frozenset({"late", "silent", "unreachable", "unknown", "ingest"})


@dataclass(frozen=True)
class DownNotice:
    """An alert transition the correlator decided (``page`` is false for warnings)."""

    kind: NoticeKind
    state: Literal["firing", "resolved"]
    region: str
    host_id: str
    at: float
    reason: str
    page: bool = True
    value: float = 0.0  # silent hosts for region/group/ingest alerts, downtime for reboots
    group: str = ""  # ``label=value`` of a group alert (``zone=us-east-1a``)

    @property
    def fingerprint(self) -> str:
        if self.group:
            return f"{self.kind}:{self.group}"
        return f"{self.kind}:{self.host_id or self.region or 'fleet'}"

    @property
    def blanket_group(self) -> str:
        """The group key (``region=eu``, ``zone=eu-1a``) a region or group alert covers, else ``""``."""
        if self.kind in ("region_unreachable", "region_unknown"):
            return f"region={self.region}"
        return self.group if self.kind in BLANKET_KINDS else ""


@dataclass(frozen=True)
class Decision:
    """Why a host got the status it has (for people and the ``down_checks`` table)."""

    at: float
    region: str
    host_id: str
    decision: str
    detail: str


@dataclass
class _Host:
    region: str
    labels: Mapping[str, str] = field(default_factory=dict)
    status: HostStatus = "up"
    since: float = 0.0  # when the current status began; for pending hosts, when judging may start
    last_page: float | None = None
    interval_s: float = 0.0
    last_at: float = 0.0  # the last arrival the correlator knows of (the worker's clock)
    release_until: float = 0.0  # released from a blanket: its fresh deadline
    under: str = ""  # the blanket alert it was judged covered by
    # Its last silence past its late window, [gone_from, gone_to): it was not reporting then, so
    # a cut at an instant inside it is judged against the hosts still reporting without it.
    gone_from: float = 0.0
    gone_to: float = 0.0
    released_at: float = 0.0  # when a blanket last released it (its fresh deadline's start)
    # Its first arrival (0: unknown). A host first heard later than its phase allows after the
    # fleet's first arrival is a newcomer: before it, it was not reporting, and a group's share
    # at an earlier instant is of the hosts that had joined by then (see ``Correlator._place``).
    joined_at: float = 0.0


@dataclass
class _Probe:
    ok: bool
    at: float  # last report


@dataclass(frozen=True)
class Clique:
    """The set of a group's stale hosts that can have stopped at one instant.

    A healthy host's arrivals are at most ``late x interval`` apart (that is what ``late``
    means), so a host last heard at ``a`` stopped somewhere in ``[a, a + late x interval]``.
    Hosts cut off together share a point of those windows; a host that went quiet on its own
    earlier does not. ``end`` is the latest end of its hosts' windows: whatever instant they
    stopped at (a cut broader than this group may have reached it at any shared instant, not
    only at ``point``), it was by then.
    With a quorum (enough hosts at one point to cut the group off), every host whose window
    holds such a point stopped with the group, not just those of the largest set; ``quorate``
    says one was met, ``gone`` how many of the group (one part) had stopped before ``point``.
    """

    hosts: frozenset[str]
    point: float
    end: float
    quorate: bool = False
    gone: int = 0


@dataclass(frozen=True)
class Quorum:
    """How many stale hosts at one instant cut a group off: ``share[part]`` of the part's hosts
    still reporting then (at least ``least``), in each of ``parts`` parts (one part for a label
    group; for the fleet, a part per region). Hosts that had stopped before the instant, on their
    own, no longer count: the rest of a region going silent at once is still its cut; nor do
    hosts that first joined after it (``past`` silences from the start of time)."""

    share: Mapping[str, float]
    size: Mapping[str, int]
    least: int
    parts: int

    def need(self, part: str, gone: int = 0) -> int:
        """Hosts of ``part`` that must stop at one instant when ``gone`` had stopped before it."""
        if part not in self.size:
            return 0
        return max(self.least, math.ceil(self.share[part] * (self.size[part] - gone) - 1e-9))


def clique(windows: Iterable[tuple[str, float, float]], quorum: Quorum | None = None,
           part: Callable[[str], str] = lambda _: "",
           past: Iterable[tuple[str, float, float]] = (),
           returns: Iterable[tuple[str, float]] = ()) -> Clique:  # fmt: skip
    """The ``(host, start, end)`` windows that share a point meeting ``quorum`` (the latest
    such point), or without one the largest set sharing a point. ``past``: ``(host, from, to)``
    silences of hosts reporting again; at an instant inside one that host was not reporting.
    ``returns``: ``(host, at)``, a window's host reporting again from ``at`` (past its window's
    end it had stopped, until then)."""
    items = list(windows)
    events = sorted(
        [(s, 0, h) for h, s, _ in items]
        + [(e, 1, h) for h, _, e in items]
        + [e for h, s, t in past for e in ((s, 2, h), (t, -1, h))]  # back at ``t``: not gone at it
        + [(t, -1, h) for h, t in returns]
    )
    count = best = 0
    point = 0.0
    counts: dict[str, int] = {}
    gone: dict[str, int] = {}  # windows over: stopped before the instant swept
    ok: dict[str, bool] = {}
    met = 0
    quorate: list[float] = []
    gone_at = 0
    for t, kind, h in events:  # starts sort before ends at one instant: closed windows
        step = (1 if kind == 0 else -1) if kind in (0, 1) else 0
        count += step
        if quorum is not None:
            p = part(h)
            counts[p] = counts.get(p, 0) + step
            if kind != 0:
                gone[p] = gone.get(p, 0) + (-1 if kind == -1 else 1)
            need = quorum.need(p, gone.get(p, 0))
            now_ok = need > 0 and counts[p] >= need
            met += now_ok - ok.get(p, False)
            ok[p] = now_ok
            if kind == 0 and met >= quorum.parts:
                quorate.append(t)
                gone_at = gone.get(p, 0)
        if kind == 0 and count >= best:
            best, point = count, t
    if quorate:
        point = quorate[-1]
        hosts = frozenset(h for h, s, e in items if _holds(quorate, s, e))
    else:
        hosts = frozenset(h for h, s, e in items if s <= point <= e)
    end = max((e for h, s, e in items if h in hosts), default=point)
    return Clique(hosts, point, end, bool(quorate), gone_at)


def _holds(points: list[float], start: float, end: float) -> bool:
    """Some of the sorted ``points`` lies in ``[start, end]``."""
    i = bisect.bisect_left(points, start)
    return i < len(points) and points[i] <= end


def group_keys(region: str, labels: Mapping[str, str], correlate_by: Iterable[str]) -> list[str]:
    """The groups a host belongs to, as ``label=value`` keys, broadest first."""
    out = []
    for label in correlate_by:
        value = region if label == "region" else labels.get(label, "")
        if value:
            out.append(f"{label}={value}")
    return out


@dataclass
class Correlator:
    """The fleet's down-check state; feed it signals and ticks, collect notices and decisions.

    The rules (README "The down-checker"):

    * **Groups.** Every value of every ``correlate_by`` label (region, zone, rack, ...) is a
      group. A group's stale hosts whose silence windows share an instant (:class:`Clique`)
      *stopped together*; when they are at least ``region_share`` / ``group_share`` of the group
      (and two or more), the group is cut off. Of the groups cut off, the one explaining the
      most silent hosts wins, the smallest on a tie (a rack rather than its zone for the same
      hosts), and raises one alert; its hosts page nobody. Groups below ``min_region_hosts`` /
      ``min_group_hosts`` raise a warning instead and their hosts are ``unknown`` (witnesses
      decide). Most regions cut off at once is one ``ingest_outage``.
    * **When.** Nothing is judged before the picture is complete: a host that stopped with a
      silent one is late at the latest ``late x (its interval + the longest interval of the
      region)`` after the silent one's last arrival, so a silent host is judged (and a group
      raised) no earlier than that, and no earlier than ``grace`` after the silence.
    * **Release.** A blanket alert resolves once the hosts still stopped together are below its
      share, saying how many are still silent. Each host it held gets a fresh deadline,
      ``late x interval`` from the release (its next beat is due by then whatever its phase),
      and is judged after ``grace`` more: a host that died under the blanket is paged within
      ``late x interval + grace`` of the release. No blanket fires on released hosts alone
      before their fresh deadlines pass.
    """

    settings: DownCheckSettings = field(default_factory=DownCheckSettings)
    # (host id, region, labels) -> the settings of its policy scope; region-wide questions
    # ask with an empty host id and labels. Unset: ``settings`` everywhere.
    scoped: Callable[[str, str, Mapping[str, str]], DownCheckSettings] | None = None
    hosts: dict[str, _Host] = field(default_factory=dict)
    regions: dict[str, set[str]] = field(default_factory=dict)
    open: dict[str, DownNotice] = field(default_factory=dict)  # fingerprint -> firing notice
    probes: dict[str, dict[str, _Probe]] = field(default_factory=dict)  # target -> witness -> last
    pending: set[str] = field(default_factory=set)  # silent hosts awaiting a decision
    flapping: set[str] = field(default_factory=set)
    stale: dict[str, int] = field(default_factory=dict)  # region -> hosts not up (kept, never counted)
    decisions: list[Decision] = field(default_factory=list)
    dirty: set[str] = field(default_factory=set)  # hosts changed since the caller last saved them
    groups: dict[str, set[str]] = field(default_factory=dict)  # "label=value" -> member host ids
    stale_in: dict[str, set[str]] = field(default_factory=dict)  # group -> its members not up
    # group -> the longest member interval seen (only grows: a shrinking one just waits longer)
    longest: dict[str, float] = field(default_factory=dict)
    cover: dict[str, str] = field(default_factory=dict)  # host -> fingerprint of the blanket over it
    _cliques: dict[str, Clique] = field(default_factory=dict)  # cache, dropped when a group changes
    # The topology labels in force: the fleet-wide (unscoped) settings' ``correlate_by``,
    # re-read every tick so a policy applied live regroups the fleet.
    correlate_by: tuple[str, ...] = ()
    _last_cut: dict[str, Clique] = field(default_factory=dict)  # the groups cut off at the last tick
    # Hosts of a group cut off inside a broader chosen one, held by the broader one's alert.
    _absorbed: dict[str, set[str]] = field(default_factory=dict)
    _cfg_seen: DownCheckSettings | None = None
    _fleet_held: frozenset[str] = frozenset()  # the hosts an open ingest outage stopped
    # Hosts a settling ingest outage still held when the fleet was cut off again: still its own.
    _carried: frozenset[str] = frozenset()
    # Open blankets below their own share but still settling (see _settled): fingerprint ->
    # (when their own cut ended, the hosts they held then, the hosts of the groups still cut).
    _settling: dict[str, tuple[float, frozenset[str], frozenset[str]]] = field(default_factory=dict)
    _waiting: dict[str, float] = field(default_factory=dict)  # host -> when its cut group's picture is complete
    _past: dict[str, set[str]] = field(default_factory=dict)  # group -> members back with a past silence
    _joined: dict[str, dict[str, float]] = field(default_factory=dict)  # group -> recent joiners -> first arrival
    _born: float = 0.0  # the first arrival of any host (0: none yet)
    _now: float = 0.0  # the latest tick's time (0 until the first tick after a start)

    def __post_init__(self) -> None:
        self.correlate_by = self.correlate_by or self.settings.correlate_by

    # -- persistence -----------------------------------------------------------------------

    def saved(self, host_id: str) -> dict[str, Any] | None:
        """What must survive a restart of one host's view (``None``: forget the host)."""
        host = self.hosts.get(host_id)
        if host is None:
            return None
        body = asdict(host)
        body["labels"] = dict(host.labels)
        body["flapping"] = host_id in self.flapping
        return body

    def restore(self, hosts: Iterable[tuple[str, Mapping[str, Any]]], open_notices: Iterable[DownNotice]) -> None:
        """Rebuild from saved hosts and the alerts still open (counts are derived, not stored)."""
        hosts = list(hosts)
        joined = [float(body.get("joined_at", 0.0)) for _, body in hosts]
        self._born = min((t for t in joined if t > 0.0), default=self._born)
        for host_id, body in hosts:
            host = _Host(
                str(body["region"]),
                dict(body.get("labels") or {}),
                body.get("status", "up"),
                float(body.get("since", 0.0)),
                body.get("last_page"),
                float(body.get("interval_s", 0.0)),
                float(body.get("last_at", 0.0)),
                float(body.get("release_until", 0.0)),
                str(body.get("under", "")),
                float(body.get("gone_from", 0.0)),
                float(body.get("gone_to", 0.0)),
                float(body.get("released_at", 0.0)),
                float(body.get("joined_at", 0.0)),
            )
            self.hosts[host_id] = host
            self._place(host_id, host)
            if host.status == "silent":
                self.pending.add(host_id)
            if body.get("flapping"):
                self.flapping.add(host_id)
        for notice in open_notices:
            self.open[notice.fingerprint] = notice

    def _cfg(self, host_id: str = "", region: str = "", labels: Mapping[str, str] | None = None) -> DownCheckSettings:
        if self.scoped is None:
            return self.settings
        host = self.hosts.get(host_id)
        if host is not None:
            return self.scoped(host_id, host.region, host.labels)
        return self.scoped("", region, labels or {})

    def _keys(self, host: _Host) -> list[str]:
        return [*group_keys(host.region, host.labels, self.correlate_by), FLEET]

    def _place(self, host_id: str, host: _Host) -> None:
        """Count ``host`` in its region and groups (as it is now)."""
        self.regions.setdefault(host.region, set()).add(host_id)
        if host.status != "up":
            self.stale[host.region] = self.stale.get(host.region, 0) + 1
        for key in self._keys(host):
            self.groups.setdefault(key, set()).add(host_id)
            self.longest[key] = max(self.longest.get(key, 0.0), host.interval_s)
            if host.status != "up":
                self.stale_in.setdefault(key, set()).add(host_id)
            if host.gone_to > host.gone_from:
                self._past.setdefault(key, set()).add(host_id)
            if self._newcomer(host_id, host):
                self._joined.setdefault(key, {})[host_id] = host.joined_at
            self._cliques.pop(key, None)

    def _newcomer(self, host_id: str, host: _Host) -> bool:
        """``host`` first beat later than its phase allows after the fleet's first arrival
        (``late x`` its interval): it was not running yet, rather than late in its interval.
        Hosts heard within that first window count from the start: at fleet start (or a
        worker's first read) the groups are whole, not the few whose phases came first."""
        if host.joined_at <= 0.0 or self._born <= 0.0:
            return False
        return host.joined_at > self._born + self._cfg(host_id).late * host.interval_s

    def _unplace(self, host_id: str, host: _Host) -> None:
        self.regions.get(host.region, set()).discard(host_id)
        if host.status != "up":
            self.stale[host.region] = self.stale.get(host.region, 0) - 1
        for key in self._keys(host):
            self.groups.get(key, set()).discard(host_id)
            self.stale_in.get(key, set()).discard(host_id)
            self._past.get(key, set()).discard(host_id)
            self._joined.get(key, {}).pop(host_id, None)
            self._cliques.pop(key, None)

    def _set(self, host_id: str, host: _Host, status: HostStatus, now: float) -> None:
        if (host.status == "up") != (status == "up"):
            stale = status != "up"
            self.stale[host.region] = self.stale.get(host.region, 0) + (1 if stale else -1)
            for key in self._keys(host):
                members = self.stale_in.setdefault(key, set())
                if stale:
                    members.add(host_id)
                else:
                    members.discard(host_id)
                    if not members:
                        del self.stale_in[key]
                self._cliques.pop(key, None)
        host.status, host.since = status, now
        if status != "unreachable" and status != "unknown" and status != "ingest":
            host.under = ""
        self.dirty.add(host_id)

    def _heard(self, host_id: str, host: _Host, last_at: float) -> None:
        """The last arrival moved (a window of the host's groups changed)."""
        if last_at != host.last_at:
            host.last_at = last_at
            for key in self._keys(host):
                self._cliques.pop(key, None)

    # -- inputs ----------------------------------------------------------------------------

    def signal(self, sig: Signal) -> list[DownNotice]:
        """Apply one per-host signal; returns the notices it settles at once (recoveries)."""
        host = self.hosts.get(sig.host_id)
        if host is None or host.region != sig.region:
            if host is not None:  # moved region: leave the old one as up
                self._set(sig.host_id, host, "up", sig.at)
                self._unplace(sig.host_id, host)
            # Its first arrival, when this is it (a restored worker may first hear of a host late).
            joined = (sig.last_at or sig.at) if sig.kind == "join" else 0.0
            if joined and (not self._born or joined < self._born):
                self._born = joined
            host = self.hosts[sig.host_id] = _Host(
                sig.region, dict(sig.labels), since=sig.at, interval_s=sig.interval_s, last_at=sig.at, joined_at=joined
            )
            self._place(sig.host_id, host)
            self.dirty.add(sig.host_id)
        if sig.interval_s > 0 and sig.interval_s != host.interval_s:
            host.interval_s = sig.interval_s
            for key in self._keys(host):
                self.longest[key] = max(self.longest.get(key, 0.0), sig.interval_s)
                self._cliques.pop(key, None)
            self.dirty.add(sig.host_id)
        if sig.kind == "join":
            if sig.labels and sig.labels != host.labels:
                self._unplace(sig.host_id, host)
                host.labels = dict(sig.labels)
                self._place(sig.host_id, host)
                self.dirty.add(sig.host_id)
            if host.status == "up":
                self._heard(sig.host_id, host, sig.last_at or sig.at)
            return []
        if sig.kind == "late":
            if host.status == "up":
                self._heard(sig.host_id, host, sig.last_at or sig.at - self._cfg(sig.host_id).late * host.interval_s)
                self._set(sig.host_id, host, "late", sig.at)
            return []
        if sig.kind == "silent":
            if host.status in ("up", "late"):
                self._heard(sig.host_id, host, sig.last_at or sig.at - self._cfg(sig.host_id).missed * host.interval_s)
                self._set(sig.host_id, host, "silent", max(sig.at, host.release_until))
                self.pending.add(sig.host_id)
            return []
        return self._back(sig, host)

    def probe(self, witness: str, target: str, ok: bool, now: float) -> None:
        """A witness's TCP probe result for ``target`` (only changes need to be sent, plus refreshes)."""
        self.probes.setdefault(target, {})[witness] = _Probe(ok, now)
        host = self.hosts.get(target)
        if not ok and host is not None and host.status in ("unreachable", "unknown", "path_broken"):
            # Covered by a blanket status until now; a witness that fails to reach it says more.
            self._set(target, host, "silent", now)
            self.pending.add(target)

    def tick(self, now: float) -> list[DownNotice]:
        """Take the decisions that are due at ``now`` (called about every half second)."""
        self._now = max(self._now, now)
        cfg = self._cfg()
        if cfg.correlate_by != self.correlate_by:
            self._regroup(cfg.correlate_by)
        if cfg != self._cfg_seen:  # new settings: new shares, new quorums
            self._cfg_seen, self._cliques = cfg, {}
        notices = self._blankets(now)
        for host_id in sorted(self.pending):
            host = self.hosts[host_id]
            if now >= max(self._judge_at(host_id, host), self._waiting.get(host_id, 0.0)):
                notices += self._judge(host_id, host, now)
        notices += self._unflap(now)
        return notices

    # -- groups and blankets ---------------------------------------------------------------

    def _regroup(self, correlate_by: tuple[str, ...]) -> None:
        for host_id, host in self.hosts.items():
            self._unplace(host_id, host)
        self.correlate_by = correlate_by
        self.groups, self.stale_in, self.longest, self._cliques, self._past = {}, {}, {}, {}, {}
        self._joined = {}
        for host_id, host in self.hosts.items():
            self._place(host_id, host)

    def _clique(self, key: str) -> Clique:
        found = self._cliques.get(key)
        if found is None:
            windows = []
            stale = self.stale_in.get(key, set())
            for host_id in stale:
                host = self.hosts[host_id]
                windows.append((host_id, host.last_at, host.last_at + self._cfg(host_id).late * host.interval_s))
            # No window can start before the earliest stale one, nor (for hosts late in future)
            # before ``late x`` the group's longest interval ago.
            first = min(min((s for _, s, _ in windows), default=math.inf), self._now - 2 * self._late_span(key))
            past = []
            back = self._past.get(key, set())
            for host_id in list(back):
                host = self.hosts[host_id]
                if host.gone_to <= first:  # over before any stale window began: it can matter no more
                    back.discard(host_id)
                else:  # (a host stale again: its new window starts after this silence ended)
                    past.append((host_id, host.gone_from, host.gone_to))
            # A host that joined after an instant was not reporting at it (fleet start, a new
            # host): the share there is of those that had joined, as for a past silence.
            joiners = self._joined.get(key, {})
            for host_id, at in list(joiners.items()):
                if at <= first:
                    del joiners[host_id]
                else:
                    past.append((host_id, -math.inf, at))
            found = self._cliques[key] = clique(windows, self._quorum(key), self._part(key), past)
        return found

    def _part(self, key: str) -> Callable[[str], str]:
        return (lambda h: self.hosts[h].region) if key == FLEET else (lambda _: "")

    def _quorum(self, key: str) -> Quorum | None:
        """What cuts ``key`` off: its share of hosts at one instant (two or more); for the
        fleet, ``region_share`` of each of ``ingest_share`` of the regions."""
        if key == FLEET:
            regions = [r for r in self.regions if self.regions[r]]
            if len(regions) < 2:
                return None
            shares = {r: self._cfg(region=r).region_share for r in regions}
            sizes = {r: len(self.regions[r]) for r in regions}
            return Quorum(shares, sizes, 1, max(1, math.ceil(self.settings.ingest_share * len(regions))))
        _, share, _ = self._group_cfg(key)
        return Quorum({"": share}, {"": len(self.groups.get(key, ()))}, 2, 1)

    def _group_cfg(self, key: str) -> tuple[DownCheckSettings, float, int]:
        """The settings a group is judged by, its share and its minimum size."""
        label, _, value = key.partition("=")
        if label == "region":
            cfg = self._cfg(region=value)
            return cfg, cfg.region_share, cfg.min_region_hosts
        members = self.groups.get(key, set())
        regions = {self.hosts[h].region for h in members}
        cfg = self._cfg(region=next(iter(regions)) if len(regions) == 1 else "", labels={label: value})
        return cfg, cfg.group_share, cfg.min_group_hosts

    def _cut_off(self) -> dict[str, Clique]:
        """Every group whose hosts stopped together in a large enough share of it."""
        out = {}
        for key in self.stale_in:
            if key == FLEET:
                continue
            found = self._clique(key)
            if found.quorate:
                out[key] = found
        return out

    def _late_span(self, key: str) -> float:
        """How long after its last arrival a member of ``key`` may become late at the latest."""
        return self._cfg().late * self.longest.get(key, 0.0)

    def _span(self, hosts: Iterable[str]) -> float:
        """The longest interval of the regions of ``hosts`` (how long co-stoppers take to be late)."""
        regions = {self.hosts[h].region for h in hosts}
        return max((self.longest.get(f"region={r}", 0.0) for r in regions), default=0.0)

    def _reach(self, hosts: Iterable[str]) -> float:
        """The longest interval a co-stopper of ``hosts`` can have: the fleet's, when the fleet
        (two regions or more) can stop together; else their regions'."""
        if sum(1 for members in self.regions.values() if members) >= 2:
            return max(self._span(hosts), self.longest.get(FLEET, 0.0))
        return self._span(hosts)

    def _complete_at(self, found: Clique, late: float) -> float:
        """When every host that could have stopped with ``found`` is known to be late.

        A host cut at an instant the group's windows share is late ``late x`` its interval after
        that instant, so the picture is complete ``late x`` the fleet's longest interval after
        ``end`` (the last such instant): not only the group's own hosts, since a region's cut
        reaches its zones' hosts at an instant later than the zone's own first quorum, and an
        ingest outage reaches a 5 s region before a 10 s one: the broader silence must be named
        before a narrower one fires. (The correlator hears
        transitions, not every beat, so it cannot tell which slow hosts were heard since.)
        """
        return found.end + late * self._reach(found.hosts)

    def _wait(self, hosts: Iterable[str], complete: float, now: float) -> None:
        """Hosts of a cut group are not judged before its picture is complete, nor while a
        released one's fresh deadline runs (the group's alert waits for it: see
        :meth:`_fresh_silence`), or they would be paged just before it covers them."""
        hosts = list(hosts)
        until = max(complete, max((self._fresh_until(h) for h in hosts), default=0.0))
        if until > now:
            for host_id in hosts:
                self._waiting[host_id] = max(self._waiting.get(host_id, 0.0), until)

    def _settled(self, fp: str, held: frozenset[str], cut: Mapping[str, Clique], now: float) -> float | None:
        """When the open blanket ``fp``, whose own share of silent hosts fell below its
        threshold, releases its hosts from (their fresh deadlines run from then), or None while
        it still waits: a group inside it stays cut off by hosts it held (an ingest outage over,
        a region still silent; a region's share back, its zone not).

        The release must not come while their path may still be cut: such a group's hosts are
        slow to show because their next beats are not due yet, or because their own cut
        outlives the blanket. Once the group is no longer cut off (a return), the release is
        now. It waits ``late x`` the longest interval of those hosts at most: each live one
        has beaten by then if its path was clear when the wait began, so the hosts still silent
        (dead, or cut on: their group may raise its own alert) are released from that start,
        and a host that died under the blanket is paged as soon as without the wait.
        """
        start, held = self._settling[fp][:2] if fp in self._settling else (now, held)
        inner = [c.hosts for k, c in cut.items() if k != FLEET and c.hosts <= held]
        if not inner:
            self._settling.pop(fp, None)
            return now
        hosts = frozenset().union(*inner)
        if now >= start + self._cfg().late * max(self.hosts[h].interval_s for h in hosts):
            self._settling.pop(fp, None)
            return start
        self._settling[fp] = (start, held, hosts)
        return None

    def _fresh_until(self, host_id: str) -> float:
        """When a released host's fresh deadline and its grace are over (0.0: never released):
        before then it is not known silent, so neither judged nor covered by a new blanket."""
        host = self.hosts[host_id]
        return host.release_until + self._cfg(host_id).grace_s if host.release_until else 0.0

    def _fresh_silence(self, hosts: Iterable[str], now: float) -> bool:
        """A blanket is raised by a silence, not by lateness alone, nor while a released host's
        fresh deadline is still running (its next beat may simply not be due yet). A broader
        blanket that lifted hands the hosts it still leaves cut off to the group that still
        explains them: that group's alert may follow (an ingest outage's, a region's)."""
        hosts = list(hosts)
        if any(self._fresh_until(h) > now for h in hosts):
            return False  # a released host's next beat may not be due yet: not known silent
        return any(self.hosts[h].status not in ("late", "down") for h in hosts)

    def _blankets(self, now: float) -> list[DownNotice]:
        cut = self._cut_off()
        before, self._last_cut = self._last_cut, dict(cut)
        self._waiting = {}
        notices = self._ingest(cut, now)
        # The fleet stopping together explains its hosts first (an ingest outage, fired or not).
        fleet = self._last_cut.get(FLEET)
        explained: set[str] = set(fleet.hosts) | self._carried if fleet is not None else set()
        open_groups = {n.blanket_group: fp for fp, n in self.open.items() if n.blanket_group}
        # Lift first: the hosts a lifted blanket releases must not raise a smaller one at once.
        notices += self._lift_settled(open_groups, before, cut, now)
        for _, _, settling in self._settling.values():
            explained |= settling  # still their settling blanket's, not a new cause
        # Then release what the open ones no longer explain, before a narrower group can fire
        # for it: it was named already (its fresh deadline runs first, see _fresh_silence).
        self._cover(cut)
        self._uncovered(now)
        chosen, absorbed = self._choose(self._ranked(cut, open_groups), cut, open_groups, explained, fleet)
        self._absorbed = absorbed
        if fleet is not None and FLEET in absorbed:
            self._wait(absorbed[FLEET], self._complete_at(fleet, self.settings.late), now)
        for key in chosen:  # (an ingest outage's hosts explained none of these: judged here too)
            if key in open_groups:
                self._wait(absorbed.get(key, ()), self._complete_at(cut[key], self._group_cfg(key)[0].late), now)
                continue
            cfg, _, _ = self._group_cfg(key)
            complete = self._complete_at(cut[key], cfg.late)
            self._wait(cut[key].hosts | absorbed.get(key, set()), complete, now)
            if now >= complete and self._fresh_silence(cut[key].hosts, now):
                notices.append(self._fire(self._blanket_notice(key, cut[key], now)))
        self._cover(cut)
        return notices

    def _lift_settled(
        self, open_groups: dict[str, str], before: Mapping[str, Clique], cut: Mapping[str, Clique], now: float
    ) -> list[DownNotice]:
        """Resolve the open blankets whose cut ended and whose hosts settled (removing them
        from ``open_groups``); one cut off again while it settled is in force again."""
        notices = []
        for key, fp in list(open_groups.items()):
            if key in cut:
                self._settling.pop(fp, None)
                continue
            found, prior = before.get(key), self._settling.get(fp)
            since = self._settled(fp, found.hosts if found is not None else frozenset(), cut, now)
            if since is None:
                continue
            if found is None and prior is not None:
                found = Clique(prior[1], 0.0, 0.0)  # what it held when its own cut ended
            notices.append(self._lift(fp, key, now, found, since))
            del open_groups[key]
        return notices

    def _ranked(self, cut: Mapping[str, Clique], open_groups: Mapping[str, str]) -> list[str]:
        """Open blankets keep their hosts; then the group explaining most hosts, smallest on a tie.
        Between groups of the very same hosts, the broadest label names it (a region, not its only rack)."""
        rank = {label: i for i, label in enumerate(self.correlate_by)}
        return sorted(
            cut,
            key=lambda k: (
                k not in open_groups,
                -len(cut[k].hosts),
                len(self.groups[k]),
                rank.get(k.partition("=")[0], len(rank)),
                k,
            ),
        )

    def _choose(
        self,
        ranked: list[str],
        cut: Mapping[str, Clique],
        open_groups: Mapping[str, str],
        explained: set[str],
        fleet: Clique | None,
    ) -> tuple[list[str], dict[str, set[str]]]:
        """The groups that are causes of their own, in ``ranked`` order, and the hosts each
        chosen group (or the fleet) absorbs from groups that are not (``explained`` grows)."""
        chosen: list[str] = []
        absorbed: dict[str, set[str]] = {}
        claimed: dict[str, frozenset[str]] = {}  # chosen group -> the hosts it explains
        for key in ranked:
            # A group is its own cause only if the hosts no broader choice explains still cut it
            # off: a zone inside a cut region, plus one host that stopped on its own, is not.
            # That host stopped with the zone, though: the region's alert holds it too.
            # A narrower group's alert raised before a broader cut began does not take hosts
            # from it: a zone still cut off when its whole region is cut later (see _earlier_cause).
            quorum = self._quorum(key)
            need = quorum.need("", cut[key].gone) if quorum is not None else 2
            rest = cut[key].hosts - explained
            held = [claimed[k] for k in chosen if not self._earlier_cause(k, key, cut, open_groups)]
            rest -= frozenset().union(*held)
            if key in open_groups or len(rest) >= need:
                chosen.append(key)
                claimed[key] = cut[key].hosts
                continue
            inside = (k for k in chosen if cut[k].hosts & cut[key].hosts and self.groups[key] <= self.groups[k])
            owner = next(inside, "")
            if not owner and fleet is not None and fleet.hosts & cut[key].hosts:
                # The same for the fleet, which holds every group: a region cut at one instant,
                # its other hosts caught up in a later fleet-wide silence, is the outage's too.
                owner = FLEET
            if owner and rest:
                absorbed.setdefault(owner, set()).update(rest)
                explained |= rest
        return chosen, absorbed

    def _earlier_cause(self, inner: str, key: str, cut: Mapping[str, Clique], open_groups: Mapping[str, str]) -> bool:
        """``inner``'s open alert names an earlier cause than ``key``'s cut: ``inner`` lies
        inside ``key`` and was raised before ``key``'s hosts stopped together. Its hosts that
        stopped with ``key`` then are ``key``'s too (two cuts, two alerts); one raised for the
        same silence (at one instant with ``key``'s) keeps them, or one cut would be two alerts."""
        fp = open_groups.get(inner)
        if fp is None or not self.groups[inner] < self.groups[key]:
            return False
        return cut[key].point > self.open[fp].at

    def _cover(self, cut: Mapping[str, Clique]) -> None:
        """Which open blanket explains each host now: the ingest outage its fleet's silence,
        each open group's alert the hosts of its cut."""
        self.cover = {}
        if INGEST in self.open and FLEET in self.stale_in and INGEST not in self._settling:
            for host_id in self._clique(FLEET).hosts:  # only the hosts that stopped with the fleet
                self.cover[host_id] = INGEST
            for host_id in self._absorbed.get(FLEET, set()) | self._carried:  # and those of a group cut with them
                self.cover[host_id] = INGEST
        for fp, (_, _, settling) in self._settling.items():  # the rest is released (_uncovered)
            for host_id in settling:
                self.cover.setdefault(host_id, fp)
        for fp, notice in self.open.items():
            key = notice.blanket_group
            if key and key in cut:
                for host_id in cut[key].hosts | self._absorbed.get(key, set()):
                    self.cover.setdefault(host_id, fp)

    def _uncovered(self, now: float) -> None:
        """A held host its open blanket no longer explains is released as by a lift: its
        co-stoppers are back, and the group (or the fleet, for an ingest outage) stays cut off
        only by another silence it had no part in (no instant its window holds still meets the
        quorum: :func:`clique` keeps every host of every quorate instant)."""
        dropped = [
            host_id
            for notice in self.open.values()
            if notice.blanket_group
            for host_id in self.stale_in.get(notice.blanket_group, ())
            if host_id not in self.cover
            and self.hosts[host_id].under == notice.fingerprint
            and self.hosts[host_id].status in ("unreachable", "unknown")
        ]
        if dropped:
            self._release(dropped, now)
        if INGEST in self.open:  # the same for the outage: it names no group (see _fresh_silence)
            held = [h for h in self.stale_in.get(FLEET, ()) if h not in self.cover and self.hosts[h].status == "ingest"]
            if held:
                self._release(held, now)

    def _blanket_notice(self, key: str, found: Clique, now: float) -> DownNotice:
        label, _, value = key.partition("=")
        members = self.groups[key]
        _, _, minimum = self._group_cfg(key)
        small = len(members) < minimum
        together = f"{len(found.hosts)} of {len(members)} hosts stopped together"
        if small:
            reason = (
                f"{key}: {together}; too few hosts to tell a partition from failures"
                " (witnesses decide where configured)"
            )
        elif label == "region":
            reason = f"{together} while other regions are healthy"
        else:
            reason = f"{key}: {together}"
        if label == "region":
            kind: NoticeKind = "region_unknown" if small else "region_unreachable"
            return DownNotice(kind, "firing", value, "", now, reason, page=not small, value=len(found.hosts))
        regions = {self.hosts[h].region for h in members}
        region = next(iter(regions)) if len(regions) == 1 else ""
        kind = "group_unknown" if small else "group_unreachable"
        return DownNotice(kind, "firing", region, "", now, reason, page=not small, value=len(found.hosts), group=key)

    def _ingest(self, cut: Mapping[str, Clique], now: float) -> list[DownNotice]:
        """Most regions' hosts stopped at one instant (a region counts when its share of the
        fleet's largest simultaneous silence reaches ``region_share``): the problem is ours."""
        regions = [r for r in self.regions if self.regions[r]]
        fleet = self._clique(FLEET) if FLEET in self.stale_in else Clique(frozenset(), 0.0, 0.0)
        by_region: dict[str, int] = {}
        for host_id in fleet.hosts:
            by_region[self.hosts[host_id].region] = by_region.get(self.hosts[host_id].region, 0) + 1
        quorum = self._quorum(FLEET)
        out = [r for r in regions if quorum is not None and by_region.get(r, 0) >= quorum.need(r)]
        in_force = fleet.quorate and self._still_out(fleet, now)
        if len(regions) >= 2 and len(fleet.hosts) >= 2 and in_force:
            self._last_cut[FLEET] = fleet  # a short outage healing releases the hosts it stopped
            settling = self._settling.pop(INGEST, None)  # cut off again while it settled: in force again
            # The hosts it waited for stay held: still silent from its first cut, they are not
            # in the new instant's silence (they had stopped before it), but no other cause is theirs.
            if settling is not None and INGEST in self.open:
                self._carried |= settling[2]
            self._carried = frozenset(h for h in self._carried if self.hosts[h].status in _HELD)
            self._fleet_held = fleet.hosts | self._carried
            if INGEST not in self.open:
                hosts = fleet.hosts
                complete = self._complete_at(fleet, self.settings.late)
                self._wait(hosts, complete, now)
                if now >= complete and self._fresh_silence(hosts, now):
                    reason = (
                        f"{len(out)} of {len(regions)} regions stopped reporting together:"
                        " the problem is on our side"
                    )
                    return [self._fire(DownNotice("ingest_outage", "firing", "", "", now, reason, value=len(hosts)))]
            return []
        if INGEST in self.open:
            held_by = self._fleet_held or frozenset(h for h, fp in self.cover.items() if fp == INGEST)
            since = self._settled(INGEST, held_by, cut, now)
            if since is None:
                return []
            # The hosts the outage held (after a restart, not known: every held host), not a
            # host that stopped on its own meanwhile: its own deadline stands.
            held = [
                h
                for h, host in self.hosts.items()
                if host.status in _HELD and (not self._fleet_held or h in self._fleet_held or host.status == "ingest")
            ]
            self._fleet_held = self._carried = frozenset()
            self._release(held, now, since)
            still = sum(1 for h in held if self.hosts[h].status != "up")
            reason = (
                f"heartbeats arrive again from most regions; {still} hosts still silent,"
                " each watched on a fresh deadline"
            )
            return [self._resolve(INGEST, now, reason)]
        return []

    def _still_out(self, fleet: Clique, now: float) -> bool:
        """The open outage's silence still holds most regions as they are now: in each,
        ``region_share`` of its hosts other than those silent on their own (and newcomers
        since its instant). Its instant's
        quorum alone is not enough: hosts that died together and stay dead keep that instant
        quorate for ever while every other host reports again (their pipeline is fine: they
        are released and judged, or a region still cut names them)."""
        quorum = self._quorum(FLEET)
        if quorum is None:
            return False
        silent: dict[str, int] = {}
        for host_id in fleet.hosts:
            region = self.hosts[host_id].region
            silent[region] = silent.get(region, 0) + 1
        newcomers: dict[str, int] = {}  # joined after its instant: they do not dilute it (see _joined)
        for host_id, at in self._joined.get(FLEET, {}).items():
            if at > fleet.point:
                region = self.hosts[host_id].region
                newcomers[region] = newcomers.get(region, 0) + 1
        out = 0
        for region, count in silent.items():
            # Silent on their own (or later), as known now: not one a blanket released whose
            # fresh deadline still runs (a 10 s host whose first beat since an outage is not due
            # yet is not gone: counted so, it kept a crash wave's instant quorate and its dead
            # hosts held past their release bound).
            others_silent = sum(
                1
                for h in self.regions.get(region, ())
                if self.hosts[h].status != "up" and h not in fleet.hosts and self._fresh_until(h) <= now
            )
            out += count >= quorum.need(region, others_silent + newcomers.get(region, 0))
        return out >= quorum.parts

    def _lift(self, fp: str, key: str, now: float, found: Clique | None, since: float | None = None) -> DownNotice:
        """A blanket's group no longer stopped together: resolve it and release the hosts it
        held (``found``: its cut at the last tick it was cut off). A member silent on its own,
        outside that cut, keeps its own deadline: the blanket never explained it."""
        members = self.groups.get(key, set())
        silent = [h for h in members if self.hosts[h].status in _HELD]
        cut = found.hosts if found is not None else frozenset()
        self._release([h for h in silent if h in cut or self.hosts[h].under == fp], now, since)
        still = len(silent)
        reason = (
            f"{len(members) - still} of {len(members)} hosts report again; {still} still silent,"
            " each watched on a fresh deadline"
        )
        return self._resolve(fp, now, reason)

    def _release(self, host_ids: Iterable[str], now: float, since: float | None = None) -> None:
        """Hosts a blanket held get a fresh deadline: one ``late x interval`` from ``since``
        (the release: now, unless the blanket settled, see :meth:`_settled`), then grace."""
        for host_id in host_ids:
            host = self.hosts[host_id]
            host.released_at = now if since is None else since
            host.release_until = host.released_at + self._cfg(host_id).late * host.interval_s
            self.dirty.add(host_id)
            if host.status in ("unreachable", "unknown", "ingest"):
                self._set(host_id, host, "silent", host.release_until)
                self.pending.add(host_id)
            elif host.status == "silent":
                host.since = max(host.since, host.release_until)

    # -- hosts -----------------------------------------------------------------------------

    def _judge_at(self, host_id: str, host: _Host) -> float:
        cfg = self._cfg(host_id)
        if host.release_until and host.since <= host.release_until:
            return host.since + cfg.grace_s  # released: its fresh deadline is ``since``
        # Every host that could have stopped with it is late by then, in any region: an
        # ingest outage reaches a 1 s host long before a 10 s one shows it.
        complete = host.last_at + cfg.late * (host.interval_s + self._reach([host_id]))
        return max(host.since + cfg.grace_s, complete)

    def _witnessed(self, host_id: str, now: float) -> bool | None:
        """True: a live witness reaches it; False: live witnesses fail; None: nobody knows."""
        verdicts = []
        max_age = self._cfg(host_id).witness_max_age_s
        for witness, p in self.probes.get(host_id, {}).items():
            w = self.hosts.get(witness)
            if w is None or w.status != "up" or now - p.at > max_age:
                continue  # a silent witness's last word is stale
            verdicts.append(p.ok)
        if not verdicts:
            return None
        return any(verdicts)

    @staticmethod
    def _released_in_silence(host: _Host) -> bool:
        """A blanket released ``host`` after its last arrival: in the silence it is in now (a
        release before that arrival was an earlier silence's). A fresh deadline a co-stopper's
        return gave it (:meth:`_returned`) is no release: later returns may extend it."""
        return host.released_at >= host.last_at > 0.0

    def _healed_cut(self, host_id: str, host: _Host) -> float:
        """The fresh deadline a cut ``host`` was in gives it, if that cut healed before it
        ever showed (0.0: none). A short cut lets most of its hosts come back before the
        others are even late, so no single tick saw the group cut off; their windows still
        share the instant it began. The group's stale hosts and those back from a silence
        that ended after ``host``'s last arrival are matched for one such instant (the hosts
        back counted as stopped, not as gone: the stricter quorum; gone between their window
        and their return, as they were); the deadline runs from
        the last return among them."""
        heal = 0.0
        for key in self._keys(host):
            windows = []
            back: dict[str, float] = {}
            for other in self.stale_in.get(key, ()):
                o = self.hosts[other]
                windows.append((other, o.last_at, o.last_at + self._cfg(other).late * o.interval_s))
            for other in self._past.get(key, ()):
                o = self.hosts[other]
                if other == host_id or o.status != "up" or o.gone_to <= host.last_at:
                    continue
                windows.append((other, o.gone_from - self._cfg(other).late * o.interval_s, o.gone_from))
                back[other] = o.gone_to
            if not back:
                continue
            # (back again: not gone at instants after its return, or an old silence's host,
            # long back, would lower the quorum forever)
            found = clique(windows, self._quorum(key), self._part(key), returns=back.items())
            if found.quorate and host_id in found.hosts:
                # Only those that stopped with it: the clique holds every quorate instant's hosts.
                start, end = host.last_at, host.last_at + self._cfg(host_id).late * host.interval_s
                with_it = [h for h, s, e in windows if h in back and h in found.hosts and s <= end and e >= start]
                heal = max([heal, *(back[h] for h in with_it)])
        return heal + self._cfg(host_id).late * host.interval_s if heal else 0.0

    def _judge(self, host_id: str, host: _Host, now: float) -> list[DownNotice]:
        self.pending.discard(host_id)
        region = host.region
        witnessed = self._witnessed(host_id, now)
        # (Not for a host a blanket released in this silence: its release's bound stands.)
        released = self._released_in_silence(host)
        if witnessed is None and not released and host.status in ("late", "silent") and host_id not in self.cover:
            fresh = self._healed_cut(host_id, host)
            if fresh > max(now - self._cfg(host_id).grace_s, host.release_until):
                # Its group's cut healed before it showed: its next beat may not be due yet.
                host.release_until = fresh
                self._set(host_id, host, "silent", fresh)
                self.pending.add(host_id)
                why = "its group's short cut healed: a fresh deadline"
                self.decisions.append(Decision(now, region, host_id, "silent", why))
                return []
        blanket = self.open.get(self.cover.get(host_id, "")) if self.cover.get(host_id) != INGEST else None
        status: HostStatus
        if INGEST in self.open and self.cover.get(host_id) == INGEST:
            status, why = "ingest", "ingest outage: not judged"
        elif witnessed:
            status, why = "path_broken", "silent to us but reachable by a witness: alive, path broken"
        elif witnessed is False:
            status, why = "down", "witnesses cannot reach it either"
        elif blanket is not None and blanket.page:
            status, why = "unreachable", f"stopped together with its group: {blanket.reason}"
        elif blanket is not None:
            status, why = "unknown", "small group silent together and no witness: cannot tell"
        else:
            status, why = "down", "silent in a healthy region: no group of its stopped with it"
        self._set(host_id, host, status, now)
        if blanket is not None and status in ("unreachable", "unknown"):
            host.under = blanket.fingerprint
        self.decisions.append(Decision(now, region, host_id, status, why))
        if status != "down":
            return []
        window = self._cfg(host_id).flap_window_s
        flapping = host.last_page is not None and now - host.last_page < window
        if flapping:
            self.flapping.add(host_id)
            if f"host_flapping:{host_id}" in self.open:
                return []
            reason = f"down again within {window:g}s of its last page: flapping"
            return [self._fire(DownNotice("host_flapping", "firing", region, host_id, now, reason, page=False))]
        host.last_page = now
        return [self._fire(DownNotice("host_down", "firing", region, host_id, now, why))]

    def _returned(self, host_id: str, now: float) -> None:
        """A host that stopped with a cut-off group is back before the group's alert was raised
        (a short cut heals): the others that stopped with it get the fresh deadline a lifted
        blanket gives, since their next beats may simply not be due yet. A host a blanket
        released in this silence keeps its release's deadline (the promised bound)."""
        blankets = {n.blanket_group for n in self.open.values()}
        for key in self._keys(self.hosts[host_id]):
            found = self._last_cut.get(key)
            if found is None or key in blankets or host_id not in found.hosts:
                continue
            if key == FLEET and INGEST in self.open:
                continue
            for other in found.hosts:
                member = self.hosts[other]
                if other == host_id or member.status not in ("late", "silent"):
                    continue
                if self._released_in_silence(member):
                    continue  # released in this silence already: its release's bound stands
                member.release_until = max(member.release_until, now + self._cfg(other).late * member.interval_s)
                if member.status == "silent":
                    member.since = max(member.since, member.release_until)
                self.dirty.add(other)

    def _back(self, sig: Signal, host: _Host) -> list[DownNotice]:
        was = host.status
        if was in ("late", "silent"):
            self._returned(sig.host_id, sig.at)
        window_end = host.last_at + self._cfg(sig.host_id).late * host.interval_s
        if was != "up" and sig.at > window_end:
            host.gone_from, host.gone_to = window_end, sig.at
            for key in self._keys(host):
                self._past.setdefault(key, set()).add(sig.host_id)
        self._heard(sig.host_id, host, sig.at)
        self._set(sig.host_id, host, "up", sig.at)
        self.pending.discard(sig.host_id)
        notices = []
        if sig.reason == "rebooted":
            why = f"new boot id {sig.boot_id}; down about {sig.downtime_s:.0f}s"
            notices.append(
                DownNotice("host_rebooted", "firing", host.region, sig.host_id, sig.at, why, value=sig.downtime_s)
            )
            notices.append(DownNotice("host_rebooted", "resolved", host.region, sig.host_id, sig.at, "back up"))
        elif sig.reason == "continuous":
            why = "heartbeat sequence continuous: it was up the whole time"
        elif sig.reason == "stalled":
            why = f"same boot, no heartbeat made for about {sig.downtime_s:.0f}s: the host or its agent stalled"
        else:
            why = "same boot, heartbeats lost: it stayed up, its reports did not arrive"
        if was != "up":
            self.decisions.append(Decision(sig.at, host.region, sig.host_id, f"back_from_{was}", why))
        fp = f"host_down:{sig.host_id}"
        if fp in self.open:
            notices.append(self._resolve(fp, sig.at, why))
        return notices

    def _unflap(self, now: float) -> list[DownNotice]:
        out = []
        for host_id in sorted(self.flapping):
            host = self.hosts[host_id]
            window = self._cfg(host_id).flap_window_s
            if host.status == "up" and now - host.since >= window:
                self.flapping.discard(host_id)
                self.dirty.add(host_id)
                fp = f"host_flapping:{host_id}"
                if fp in self.open:
                    out.append(self._resolve(fp, now, f"stable for {window:g}s"))
        return out

    # -- alert bookkeeping -----------------------------------------------------------------

    def _fire(self, notice: DownNotice) -> DownNotice:
        self.open[notice.fingerprint] = notice
        return notice

    def _resolve(self, fp: str, now: float, reason: str) -> DownNotice:
        first = self.open.pop(fp)
        return DownNotice(
            first.kind, "resolved", first.region, first.host_id, now, reason, first.page, first.value, first.group
        )
