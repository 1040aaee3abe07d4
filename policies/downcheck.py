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
        for name in ("region_share", "ingest_share"):
            share = getattr(self, name)
            if not 0 < share <= 1:
                out.append(f"{name!r} must be in (0, 1], got {share:g}")
        if self.min_region_hosts < 2:
            out.append(f"'min_region_hosts' must be at least 2, got {self.min_region_hosts}")
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
    labels: Mapping[str, str] = field(default_factory=dict)  # on ``join``: for scoped settings


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
        return watch, Signal("join", host_id, region, now, boot_id=boot_id, labels=dict(labels or {}))

    def observe(self, boot_id: str, seq: int, sent_at: float, interval_s: float, now: float) -> list[Signal]:
        """A heartbeat arrived at ``now``; returns what changed (often nothing)."""
        if boot_id == self.boot_id and seq <= self.seq:
            return []  # a duplicate or an older replayed beat: arrival says nothing new
        signals: list[Signal] = []
        if boot_id != self.boot_id:
            # Both times are this host's clock, so its skew cancels out.
            downtime = max(0.0, sent_at - self.sent_at - self.interval_s)
            signals.append(Signal("back", self.host_id, self.region, now, "rebooted", downtime, boot_id))
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
            signals.append(Signal("back", self.host_id, self.region, now, reason, stalled_s, boot_id))
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
        return Signal(self.told, self.host_id, self.region, deadline)


HostStatus = Literal["up", "late", "silent", "down", "unreachable", "ingest", "path_broken", "unknown"]
NoticeKind = Literal[
    "host_down", "host_rebooted", "host_flapping", "region_unreachable", "region_unknown", "ingest_outage"
]
NOTICE_KINDS: tuple[str, ...] = NoticeKind.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Notice:
    """An alert transition the correlator decided (``page`` is false for warnings)."""

    kind: NoticeKind
    state: Literal["firing", "resolved"]
    region: str
    host_id: str
    at: float
    reason: str
    page: bool = True
    value: float = 0.0  # silent hosts for region/ingest alerts, downtime for reboots

    @property
    def fingerprint(self) -> str:
        return f"{self.kind}:{self.host_id or self.region or 'fleet'}"


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
    since: float = 0.0  # when the current status began (silence onset for pending ones)
    last_page: float | None = None


@dataclass
class _Probe:
    ok: bool
    at: float  # last report


@dataclass
class Correlator:
    """The fleet's down-check state; feed it signals and ticks, collect notices and decisions."""

    settings: DownCheckSettings = field(default_factory=DownCheckSettings)
    # (host id, region, labels) -> the settings of its policy scope; region-wide questions
    # ask with an empty host id and labels. Unset: ``settings`` everywhere.
    scoped: Callable[[str, str, Mapping[str, str]], DownCheckSettings] | None = None
    hosts: dict[str, _Host] = field(default_factory=dict)
    regions: dict[str, set[str]] = field(default_factory=dict)
    open: dict[str, Notice] = field(default_factory=dict)  # fingerprint -> firing notice
    probes: dict[str, dict[str, _Probe]] = field(default_factory=dict)  # target -> witness -> last
    pending: set[str] = field(default_factory=set)  # silent hosts awaiting a decision
    flapping: set[str] = field(default_factory=set)
    stale: dict[str, int] = field(default_factory=dict)  # region -> hosts not up (kept, never counted)
    decisions: list[Decision] = field(default_factory=list)
    dirty: set[str] = field(default_factory=set)  # hosts changed since the caller last saved them
    # When the last ingest outage ended. Not saved: after a restart, regions are judged at once.
    ingest_ended: float | None = None

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

    def restore(self, hosts: Iterable[tuple[str, Mapping[str, Any]]], open_notices: Iterable[Notice]) -> None:
        """Rebuild from saved hosts and the alerts still open (counts are derived, not stored)."""
        for host_id, body in hosts:
            host = _Host(
                str(body["region"]),
                dict(body.get("labels") or {}),
                body.get("status", "up"),
                float(body.get("since", 0.0)),
                body.get("last_page"),
            )
            self.hosts[host_id] = host
            self.regions.setdefault(host.region, set()).add(host_id)
            if host.status != "up":
                self.stale[host.region] = self.stale.get(host.region, 0) + 1
            if host.status == "silent":
                self.pending.add(host_id)
            if body.get("flapping"):
                self.flapping.add(host_id)
        for notice in open_notices:
            self.open[notice.fingerprint] = notice

    def _cfg(self, host_id: str = "", region: str = "") -> DownCheckSettings:
        if self.scoped is None:
            return self.settings
        host = self.hosts.get(host_id)
        return self.scoped(host_id, region or (host.region if host else ""), host.labels if host else {})

    def _set(self, host_id: str, host: _Host, status: HostStatus, now: float) -> None:
        if (host.status == "up") != (status == "up"):
            self.stale[host.region] = self.stale.get(host.region, 0) + (1 if status != "up" else -1)
        host.status, host.since = status, now
        self.dirty.add(host_id)

    # -- inputs ----------------------------------------------------------------------------

    def signal(self, sig: Signal) -> list[Notice]:
        """Apply one per-host signal; returns the notices it settles at once (recoveries)."""
        host = self.hosts.get(sig.host_id)
        if host is None or host.region != sig.region:
            if host is not None:  # moved region: leave the old one as up
                self._set(sig.host_id, host, "up", sig.at)
                self.regions[host.region].discard(sig.host_id)
            host = self.hosts[sig.host_id] = _Host(sig.region, dict(sig.labels), since=sig.at)
            self.dirty.add(sig.host_id)
            self.regions.setdefault(sig.region, set()).add(sig.host_id)
        if sig.kind == "join":
            if sig.labels and sig.labels != host.labels:
                host.labels = dict(sig.labels)
                self.dirty.add(sig.host_id)
            return []
        if sig.kind == "late":
            if host.status == "up":
                self._set(sig.host_id, host, "late", sig.at)
            return []
        if sig.kind == "silent":
            if host.status in ("up", "late"):
                self._set(sig.host_id, host, "silent", sig.at)
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

    def tick(self, now: float) -> list[Notice]:
        """Take the decisions that are due at ``now`` (called about every half second)."""
        notices = self._fleet(now)
        ingest = "ingest_outage:fleet" in self.open
        for region in sorted(self.regions):
            if not ingest:
                notices += self._region(region, now)
        for host_id in sorted(self.pending):
            host = self.hosts[host_id]
            if now >= host.since + self._cfg(host_id).grace_s:
                notices += self._judge(host_id, host, now)
        notices += self._unflap(now)
        return notices

    # -- fleet and regions -----------------------------------------------------------------

    def _stale(self, region: str) -> int:
        return self.stale.get(region, 0)

    def _out(self, region: str) -> bool:
        members = self.regions[region]
        return len(members) >= 2 and self._stale(region) >= self._cfg(region=region).region_share * len(members)

    def _fleet(self, now: float) -> list[Notice]:
        regions = [r for r in self.regions if self.regions[r]]
        out = [r for r in regions if self._out(r)]
        fp = "ingest_outage:fleet"
        stale = sum(self._stale(r) for r in regions)
        if len(regions) >= 2 and len(out) >= self.settings.ingest_share * len(regions):
            if fp not in self.open and self.pending:  # raised by a silence, not by lateness alone
                reason = f"{len(out)} of {len(regions)} regions stopped reporting together: the problem is on our side"
                return [self._fire(Notice("ingest_outage", "firing", "", "", now, reason, value=stale))]
            return []
        if fp in self.open:
            self._release("ingest", now)
            self.ingest_ended = now
            return [self._resolve(fp, now, "heartbeats arrive again from most regions")]
        return []

    def _region(self, region: str, now: float) -> list[Notice]:
        members = self.regions[region]
        stale = self._stale(region)
        cfg = self._cfg(region=region)
        small = len(members) < cfg.min_region_hosts
        kind: NoticeKind = "region_unknown" if small else "region_unreachable"
        fp = f"{kind}:{region}"
        # Late hosts count for health, but only a silent one raises it: a slow region is not cut off.
        if self._out(region) and stale >= 2 and any(self.hosts[h].region == region for h in self.pending):
            if fp in self.open:
                return []
            if self.ingest_ended is not None and now < self.ingest_ended + cfg.grace_s:
                # Its hosts' silence began under the ingest outage, and regions catch up at their
                # own pace once it ends: like each released host, the region gets a fresh grace.
                return []
            if small:
                reason = (
                    f"{stale} of {len(members)} hosts silent; too few hosts to tell a partition from failures"
                    " (witnesses decide where configured)"
                )
            else:
                reason = f"{stale} of {len(members)} hosts stopped reporting together while other regions are healthy"
            return [self._fire(Notice(kind, "firing", region, "", now, reason, page=not small, value=stale))]
        if fp in self.open and stale < cfg.region_share * len(members) / 2:
            self._release("unknown" if small else "unreachable", now, region)
            return [self._resolve(fp, now, f"{len(members) - stale} of {len(members)} hosts report again")]
        return []

    def _release(self, status: HostStatus, now: float, region: str | None = None) -> None:
        """A blanket alert ended: hosts still silent under it are judged again, after a fresh grace."""
        members = self.hosts if region is None else self.regions[region]
        for host_id in members:
            host = self.hosts[host_id]
            if host.status == status:
                self._set(host_id, host, "silent", now)
                self.pending.add(host_id)

    # -- hosts -----------------------------------------------------------------------------

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

    def _judge(self, host_id: str, host: _Host, now: float) -> list[Notice]:
        self.pending.discard(host_id)
        region = host.region
        witnessed = self._witnessed(host_id, now)
        status: HostStatus
        if "ingest_outage:fleet" in self.open:
            status, why = "ingest", "ingest outage: not judged"
        elif witnessed:
            status, why = "path_broken", "silent to us but reachable by a witness: alive, path broken"
        elif witnessed is False:
            status, why = "down", "witnesses cannot reach it either"
        elif f"region_unreachable:{region}" in self.open:
            status, why = "unreachable", "its region is unreachable"
        elif f"region_unknown:{region}" in self.open and witnessed is None:
            status, why = "unknown", "small region silent and no witness: cannot tell"
        else:
            status, why = "down", "silent in a healthy region"
        self._set(host_id, host, status, now)
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
            return [self._fire(Notice("host_flapping", "firing", region, host_id, now, reason, page=False))]
        host.last_page = now
        return [self._fire(Notice("host_down", "firing", region, host_id, now, why))]

    def _back(self, sig: Signal, host: _Host) -> list[Notice]:
        was = host.status
        self._set(sig.host_id, host, "up", sig.at)
        self.pending.discard(sig.host_id)
        notices = []
        if sig.reason == "rebooted":
            why = f"new boot id {sig.boot_id}; down about {sig.downtime_s:.0f}s"
            notices.append(
                Notice("host_rebooted", "firing", host.region, sig.host_id, sig.at, why, value=sig.downtime_s)
            )
            notices.append(Notice("host_rebooted", "resolved", host.region, sig.host_id, sig.at, "back up"))
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

    def _unflap(self, now: float) -> list[Notice]:
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

    def _fire(self, notice: Notice) -> Notice:
        self.open[notice.fingerprint] = notice
        return notice

    def _resolve(self, fp: str, now: float, reason: str) -> Notice:
        first = self.open.pop(fp)
        return Notice(first.kind, "resolved", first.region, first.host_id, now, reason, first.page, first.value)
