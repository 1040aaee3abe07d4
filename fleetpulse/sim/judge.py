"""The down-checker's promise as invariants, checked on a simulated scenario without a broker.

:func:`play` runs a scenario's :class:`~fleetpulse.sim.timeline.Timeline` through the pure logic
(:class:`~policies.downcheck.HostWatch` per host, one :class:`~policies.downcheck.Correlator`)
on an injected clock that ticks like a worker; :func:`violations` judges the alerts against
what really happened. The generated-scenario tests drive both with thousands of random
fleets and faults, and print a failing one as a scenario file ``fleetpulse simulate`` replays.

The truth is stated from the timeline, never from the detector's state: when each host
really ran (crash, reboot and restart windows), when its path was cut, and when its
heartbeats really arrived. "Stopped together" is the promise's own definition: hosts whose
arrivals stopped within one ``late x interval`` window of each other (a healthy host's beats
are at most that far apart). The invariants:

1. **No false page.** A ``host_down`` for a host that was running throughout its silence is
   false, unless its path was cut and nothing explains the cut (a lone flapping link, a few
   hosts cut off out of a large group: those look exactly like crashes without witnesses).
2. **Isolated downs are paged in time.** A host not running, whose silence outlasts the
   timeout and that did not stop together with enough of any of its groups, is paged once,
   within ``max(missed x interval, late x (interval + longest interval of its region)) +
   grace`` of its last arrival (``missed x interval + grace`` when intervals are equal).
3. **Downs under a blanket are paged after it.** One that stopped together with a group that
   came back is paged within ``late x interval + grace`` of its group's return (the heal).
4. **One alert per shared cause.** Every region/group/ingest alert has a shared silence
   behind it, and each cut-off fault raises at most one; a long one raises one. An alert's
   cause is a fault in force when its hosts' silence began or, once that one is over, a
   fault that began during the silence and is in force when it fires.

"Stopped together" counts every instant that cuts a group off, not only the one with the
most hosts: a host in two such silences (a third of a zone crashed, then an outage) is
explained while either lasts.
5. **Alerts alternate** firing/resolved per fingerprint.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from collector.contract import Heartbeat, PeerProbe
from fleetpulse.sim.faults import Fault
from fleetpulse.sim.scenario import Scenario
from fleetpulse.sim.timeline import Timeline
from policies.downcheck import BLANKET_KINDS, Correlator, DownNotice, HostWatch, group_keys

START = 1_000_000.0  # the played clock's origin (seconds since the scenario's start are added)
TICK_S = 0.5


@dataclass
class Played:
    """A scenario's play: every notice (times since the start) and each host's arrivals."""

    scenario: Scenario
    notices: list[DownNotice]
    arrivals: dict[str, list[float]]
    downs: dict[str, list[tuple[float, float]]]  # host -> [start, end) not running
    cuts: dict[str, list[tuple[float, float]]]  # host -> [start, end) path cut
    interval: dict[str, float]
    groups: dict[str, set[str]] = field(default_factory=dict)  # "label=value" -> hosts
    host_groups: dict[str, list[str]] = field(default_factory=dict)


def play(scenario: Scenario, tick_s: float = TICK_S) -> Played:
    """Run ``scenario`` through the pure down-check logic up to its duration."""
    sc = scenario
    timeline = Timeline(sc, START)
    settings = sc.downcheck
    correlator = Correlator(settings=settings)
    watches: dict[str, HostWatch] = {}
    notices: list[DownNotice] = []
    arrivals: dict[str, list[float]] = {h.host_id: [] for h in sc.hosts}
    records = iter(timeline.records())
    record = next(records, None)
    t = 0.0
    while t < sc.duration_s:
        t = min(t + tick_s, sc.duration_s)
        while record is not None and record.deliver_at <= t:
            now = START + record.deliver_at
            event = record.event
            if isinstance(event, Heartbeat):
                arrivals[event.host_id].append(record.deliver_at)
                watch = watches.get(event.host_id)
                if watch is None:
                    watches[event.host_id], joined = HostWatch.first(
                        event.host_id, event.region, event.boot_id, event.seq, event.sent_at, event.interval_s, now,
                        event.labels,
                    )  # fmt: skip
                    signals = [joined]
                else:
                    signals = watch.observe(event.boot_id, event.seq, event.sent_at, event.interval_s, now)
                for sig in signals:
                    notices += correlator.signal(sig)
            elif isinstance(event, PeerProbe):
                correlator.probe(event.host_id, event.target, event.ok, now)
            record = next(records, None)
        now = START + t
        for watch in watches.values():
            due = watch.due(now, settings)
            if due is not None:
                notices += correlator.signal(due)
        notices += correlator.tick(now)
    shifted = [_shift(n) for n in notices]
    played = Played(
        sc,
        shifted,
        arrivals,
        {h: list(p.downs) for h, p in timeline.plans.items()},
        {h: [(s, e) for s, e, _ in p.cuts] for h, p in timeline.plans.items()},
        {h.host_id: _interval(sc, h) for h in sc.hosts},
    )
    for host in sc.hosts:
        keys = group_keys(host.region, getattr(host, "labels", {}), settings.correlate_by)
        played.host_groups[host.host_id] = keys
        for key in keys:
            played.groups.setdefault(key, set()).add(host.host_id)
    return played


def _interval(sc: Scenario, host: object) -> float:
    return float(getattr(host, "interval_s", 0.0) or sc.interval_s)


def _shift(n: DownNotice) -> DownNotice:
    return DownNotice(n.kind, n.state, n.region, n.host_id, n.at - START, n.reason, n.page, n.value, n.group)


@dataclass(frozen=True)
class Gap:
    """A stretch with no arrival from a host: ``start`` its last arrival, ``end`` the next (or inf)."""

    host_id: str
    start: float
    end: float


def _overlaps(spans: Iterable[tuple[float, float]], start: float, end: float) -> bool:
    return any(s < end and e > start for s, e in spans)


class Judge:
    """The truth of one play, and the invariants checked against its notices."""

    def __init__(self, played: Played) -> None:
        self.p = played
        sc = played.scenario
        self.cfg = sc.downcheck
        self.late = self.cfg.late
        self.slack = 2 * TICK_S + 1e-6
        self.gaps: dict[str, list[Gap]] = {}
        for host_id, times in played.arrivals.items():
            limit = self.late * played.interval[host_id]
            gaps = []
            for a, b in zip(times, [*times[1:], math.inf], strict=False):
                if b - a > limit:
                    gaps.append(Gap(host_id, a, b))
            self.gaps[host_id] = gaps
        self.region_longest: dict[str, float] = {}
        for host in sc.hosts:
            r = host.region
            self.region_longest[r] = max(self.region_longest.get(r, 0.0), _interval(sc, host))
        # A host not yet heard from does not exist to the down-checker: it counts in no group.
        self.first = {h: times[0] for h, times in played.arrivals.items() if times}
        # A host first heard within ``late x`` its interval of the fleet's first arrival was
        # running from the start (its phase); one first heard later joined then.
        born = min(self.first.values(), default=0.0)
        self.joined = {
            h: -math.inf if t <= born + self.late * played.interval[h] else t for h, t in self.first.items()
        }
        self.region_of = {h.host_id: h.region for h in sc.hosts if h.host_id in self.first}
        self.groups = {key: members & set(self.first) for key, members in played.groups.items()}
        self.groups["fleet"] = set(self.first)
        self._resolutions: dict[str, list[float]] = {}  # fingerprint -> when it resolved, in order
        for n in played.notices:
            if n.state == "resolved":
                self._resolutions.setdefault(n.fingerprint, []).append(n.at)

    def members(self, key: str, at: float) -> set[str]:
        """``key``'s hosts the down-checker counts at ``at`` (known by then, or from the start)."""
        return {h for h in self.groups.get(key, ()) if self.joined[h] <= at}

    # -- truth -----------------------------------------------------------------------------

    def window(self, gap: Gap) -> tuple[float, float]:
        return gap.start, gap.start + self.late * self.p.interval[gap.host_id]

    def instants(self, gap: Gap, key: str, cut_only: bool = False) -> Iterator[tuple[float, list[Gap]]]:
        """Each instant of ``gap``'s window ``key``'s other members may have stopped at with it,
        in time order, and their gaps holding it (``cut_only``: only hosts that were running
        and cut off, not crashed)."""
        s, e = self.window(gap)
        near = self.near(gap, key, cut_only, every=True)
        points = [s, *(self.window(g)[0] for g in near if self.window(g)[0] >= s)]
        if cut_only:  # cut off together: the cuts were in force at that instant, for each of them
            points += [c for h in [gap.host_id, *(g.host_id for g in near)] for c, _ in self.p.cuts[h] if s <= c <= e]
        for point in sorted(points):
            if point > e or (cut_only and not self._cut_at(gap.host_id, point)):
                continue
            holding = {  # one gap per host: two of one host's windows meet at a point at most (keep the later)
                g.host_id: g
                for g in near
                if self.window(g)[0] <= point <= self.window(g)[1] and (not cut_only or self._cut_at(g.host_id, point))
            }
            yield point, list(holding.values())

    def quorums(self, gap: Gap, key: str, cut_only: bool = False, share: float = 0.0) -> list[tuple[list[Gap], int]]:
        """Each distinct set of ``key``'s other members that stopped at one instant with
        ``gap`` where it and ``gap`` are ``share`` (two or more) of ``key``'s hosts still
        reporting then, with how many were still reporting. Every such instant counts, not
        only the largest: the down-checker keeps every host of every quorate instant cut off
        (a crash of a third of a zone, then an outage, are two cuts the host may be in)."""
        out: dict[frozenset[str], tuple[list[Gap], int]] = {}
        for point, at in self.instants(gap, key, cut_only):
            size = len(self.members(key, point)) - self.gone(gap, key, point)
            if len(at) + 1 >= max(2, share * size - 1e-9):
                out[frozenset(g.host_id for g in at)] = (at, size)
        return list(out.values())

    def _cut_at(self, host_id: str, t: float) -> bool:
        return any(c <= t < d for c, d in self.p.cuts[host_id])

    def gone(self, gap: Gap, key: str, at: float | None = None) -> int:
        """``key``'s hosts that had stopped on their own before ``at`` (``gap``'s window start by
        default) and were still silent then: a share is of the hosts still reporting."""
        s = self.window(gap)[0] if at is None else at
        return sum(
            1
            for h in self.members(key, s)
            if h != gap.host_id and any(self.window(g)[1] < s < g.end for g in self.gaps[h])
        )

    def near(self, gap: Gap, key: str, cut_only: bool = False, every: bool = False) -> list[Gap]:
        """Gaps of ``key``'s other members whose windows overlap ``gap``'s (could have stopped
        with it): each host's first such gap, or with ``every`` all of them (a host whose late
        beat ended one silence inside the window may have stopped with it in the next)."""
        s, e = self.window(gap)
        out = []
        for other in sorted(self.members(key, e)):
            if other == gap.host_id:
                continue
            for g in self.gaps[other]:
                gs, ge = self.window(g)
                if gs <= e and ge >= s:
                    if not cut_only or (self.ran_throughout(g, ge) and self.cut_during(g, ge)):
                        out.append(g)
                    if not every:
                        break
        return out

    def shared(self, gap: Gap, cut_only: bool = False) -> list[tuple[str, list[Gap], int]]:
        """The groups ``gap`` stopped together with (enough of the group's hosts still reporting
        at that instant, two or more), with how many were still reporting: a group once per
        distinct set of hosts it stopped with (see :meth:`quorums`)."""
        out = []
        e = self.window(gap)[1]
        for key in self.p.host_groups[gap.host_id]:
            share = self.cfg.region_share if key.startswith("region=") else self.cfg.group_share
            out += [(key, with_it, size) for with_it, size in self.quorums(gap, key, cut_only, share)]
        # The whole fleet stopping together (most regions at once) is an ingest outage to us.
        regions = {self.region_of[h] for h in self.members("fleet", e)}
        if len(regions) < 2:
            return out
        fleet: dict[frozenset[str], list[Gap]] = {}
        for point, at in self.instants(gap, "fleet", cut_only):
            # A region counts when its share of the hosts stopped at that instant reaches
            # region_share: of its hosts still reporting then, as for any group (see quorums).
            sizes = {r: len(self.members(f"region={r}", point)) - self.gone(gap, f"region={r}", point) for r in regions}
            stopped: dict[str, int] = {}
            for h in [gap.host_id, *(g.host_id for g in at)]:
                stopped[self.region_of[h]] = stopped.get(self.region_of[h], 0) + 1
            counted = [r for r, n in stopped.items() if n >= self.cfg.region_share * sizes[r]]
            if at and len(counted) >= self.cfg.ingest_share * len(regions):
                fleet[frozenset(g.host_id for g in at)] = at
        out += [("fleet", at, len(self.members("fleet", e))) for at in fleet.values()]
        return out

    def _cut_ended(self, key: str, gap: Gap, with_it: list[Gap], size: int) -> float:
        """When ``key``'s cut ended for a host still silent in it: the return that left fewer
        of those that stopped together silent than cut the group off (a lifted blanket);
        ``size``: the group's hosts still reporting when they stopped."""
        if key == "fleet":
            return self._fleet_cut_ended(gap, with_it)
        share = self.cfg.region_share if key.startswith("region=") else self.cfg.group_share
        need = max(2, math.ceil(share * size - 1e-9))
        ends = sorted(g.end for g in with_it)
        stopped = len(ends) + 1  # with the host still silent
        return ends[max(0, min(len(ends) - 1, stopped - need))]

    def _fleet_cut_ended(self, gap: Gap, with_it: list[Gap]) -> float:
        """The return that left too few regions with ``region_share`` of their hosts silent
        (``gap``'s host still silent among them): the fleet's cut is over for it."""
        e = self.window(gap)[1]
        regions = {self.region_of[h] for h in self.members("fleet", e)}
        sizes = {r: len(self.members(f"region={r}", e)) - self.gone(gap, f"region={r}") for r in regions}
        silent: dict[str, int] = {}
        for h in [gap.host_id, *(g.host_id for g in with_it)]:
            silent[self.region_of[h]] = silent.get(self.region_of[h], 0) + 1
        for g in sorted(with_it, key=lambda g: g.end):
            silent[self.region_of[g.host_id]] -= 1
            counted = sum(1 for r, k in silent.items() if k >= self.cfg.region_share * sizes[r])
            if counted < self.cfg.ingest_share * len(regions):
                return g.end
        return math.inf

    def ran_throughout(self, gap: Gap, until: float) -> bool:
        return not _overlaps(self.p.downs[gap.host_id], gap.start - 1e-9, until)

    def cut_during(self, gap: Gap, until: float) -> bool:
        return _overlaps(self.p.cuts[gap.host_id], gap.start - 1e-9, until)

    def timeout_bound(self, gap: Gap) -> float:
        i = self.p.interval[gap.host_id]
        longest = self.region_longest[self.region_of[gap.host_id]]
        if len(set(self.region_of.values())) >= 2:  # an ingest outage shows on the slowest host last
            longest = max(self.region_longest.values())
        return gap.start + max(self.cfg.missed * i, self.late * (i + longest)) + self.cfg.grace_s + self.slack

    # -- invariants ------------------------------------------------------------------------

    def violations(self) -> list[str]:
        out = self._alternation()
        pages = [n for n in self.p.notices if n.kind == "host_down" and n.state == "firing"]
        paged: dict[str, list[float]] = {}
        for n in pages:
            paged.setdefault(n.host_id, []).append(n.at)
            out += self._justified(n)
        for host_id, gaps in self.gaps.items():
            for gap in gaps:
                out += self._owed(gap, paged.get(host_id, []))
        out += self._blankets()
        return out

    def _gap_at(self, host_id: str, t: float) -> Gap | None:
        return next((g for g in self.gaps[host_id] if g.start < t <= g.end), None)

    def _justified(self, n: DownNotice) -> list[str]:
        gap = self._gap_at(n.host_id, n.at)
        if gap is None:
            return [f"t={n.at:.1f}s host_down {n.host_id} while its heartbeats arrived on time"]
        if not self.ran_throughout(gap, n.at):
            return []
        release = self.late * self.p.interval[n.host_id] + self.cfg.grace_s
        explained = [
            key
            for key, with_it, size in self.shared(gap, cut_only=True)
            # Its group back for a fresh deadline and grace while it stays silent: that looks
            # exactly like a host that died under the blanket (the promise allows the page).
            if self._cut_ended(key, gap, with_it, size) + release > n.at + self.slack
        ]
        if self.cut_during(gap, n.at) and not explained:
            return []  # a lone cut (the rest of its group crashed or ran on) looks exactly like a crash
        why = "its path was cut together with its group" if self.cut_during(gap, n.at) else "it ran and was not cut"
        return [f"t={n.at:.1f}s host_down {n.host_id} is false: silent since {gap.start:.1f}s, but {why}"]

    def _owed(self, gap: Gap, pages: list[float]) -> list[str]:
        host_id = gap.host_id
        duration = self.p.scenario.duration_s
        in_gap = [t for t in pages if gap.start < t <= gap.end]
        if len(in_gap) > 1:
            return [f"{host_id} paged {len(in_gap)} times in one silence from {gap.start:.1f}s: {in_gap}"]
        flap = self.cfg.flap_window_s
        if any(gap.start - flap < t <= gap.start for t in pages):
            return []  # a re-page inside the flap window is host_flapping instead, by design
        shared = self.shared(gap)
        if shared:
            # Stopped together with a group: paged after that group is back, if it comes back.
            back = []
            for key, with_it, size in shared:
                if self._cut_ended(key, gap, with_it, size) == math.inf:
                    return []  # the group never came back (or is all down): a blanket for good
                # The blanket lifts by the last return of any host that may have stopped with it
                # (which of them the down-checker counted with it is its choice between equals).
                could = [*with_it, *self.near(gap, key, every=True)]
                back.append(max([g.end for g in could if g.end != math.inf], default=gap.start))
            release = max(back) + self.late * self.p.interval[host_id] + self.cfg.grace_s + self.slack
            bound = max(release, self.timeout_bound(gap))
            kind = "under a blanket"
        else:
            bound, kind = self.timeout_bound(gap), "isolated"
        if bound > duration or gap.end <= bound or self.ran_throughout(gap, bound):
            return []  # not owed: ends before the bound, the run ends first, or it was alive
        if self._cut_at(host_id, bound) and not _overlaps(self.p.downs[host_id], bound - 1e-9, bound + 1e-9):
            return []  # back up by the bound, its path cut: alive (a page is allowed, not owed)
        if not any(t <= bound for t in in_gap):
            return [
                f"{host_id} down ({kind}) silent since {gap.start:.1f}s, not paged by {bound:.1f}s"
                f" (pages: {in_gap or 'none'})"
            ]
        return []

    def _alternation(self) -> list[str]:
        out = []
        state: dict[str, str] = {}
        for n in self.p.notices:
            if n.kind == "host_rebooted":
                continue
            if state.get(n.fingerprint, "resolved") == n.state:
                out.append(f"t={n.at:.1f}s {n.fingerprint} {n.state} twice in a row")
            state[n.fingerprint] = n.state
        return out

    def _blankets(self) -> list[str]:
        """Every blanket alert has a shared silence behind it; each cut-off fault raises at most one."""
        out = []
        blankets = BLANKET_KINDS | {"ingest_outage"}
        fired = [n for n in self.p.notices if n.state == "firing" and n.kind in blankets]
        faults = [(i, f) for i, f in enumerate(self.p.scenario.faults) if f.type.silences]
        faults_by = dict(faults)
        # Each alert and the faults that could be behind it (best fit first, then the latest).
        options: list[tuple[DownNotice, list[tuple[int, set[str]]]]] = []
        for n in fired:
            members = self.groups.get(n.blanket_group, set()) if n.kind != "ingest_outage" else set(self.region_of)
            # Judged by the hosts silent when it fired: a crash of most of a group after the
            # group's cut healed is the crash's alert, not the cut's second one.
            hosts = {h for h in members if self._gap_at(h, n.at)} or members
            # A cause was in force when those hosts' silence began (a region cut that healed is
            # not the cause of its hosts' later restart).
            began = [g.start for h in hosts if (g := self._gap_at(h, n.at)) is not None]
            lead = self.late * max(self.p.interval.values(), default=0.0)
            hit = [(i, f, cut & hosts) for i, f in faults if (cut := self._cut_hosts(f)) & hosts]
            began_with = [
                (i, f, held)
                for i, f, held in hit
                if f.at_s <= n.at <= self._fault_end(f) + self._reach()
                and (not began or (min(began) <= self._fault_end(f) and max(began) >= f.at_s - lead))
            ]
            if began and all(self._fault_end(f) < n.at for _, f, _ in began_with):
                # What began the silence is over: a fault that started during it and is in force
                # now is what keeps those hosts silent (a cut that began inside an outage).
                began_with += [(i, f, held) for i, f, held in hit if min(began) <= f.at_s <= n.at <= self._fault_end(f)]
            causes = sorted(
                [(len(held) / len(self._cut_hosts(f) | hosts), f.at_s, i, held) for i, f, held in began_with],
                key=lambda c: (c[0], c[1], c[2]),
                reverse=True,
            )
            if causes:
                options.append((n, [(i, held) for _, _, i, held in causes]))
            elif not self._co_stopped(hosts, n.at):
                out.append(f"t={n.at:.1f}s {n.fingerprint}: no shared silence behind it")
        # The promise holds if some reading of the faults gives every alert a cause of its own;
        # otherwise the best-fit reading's clashes are reported.
        if self._assign(options, {}, [20_000]) is None:
            owner: dict[int, list[tuple[DownNotice, set[str]]]] = {}
            for n, choices in options:
                i, held = choices[0]
                owner.setdefault(i, []).append((n, held))
            for i, raised in owner.items():
                if any(self._clash(faults_by[i], a, b) for k, a in enumerate(raised) for b in raised[k + 1 :]):
                    names = ", ".join(f"{n.fingerprint}@{n.at:.1f}s" for n, _ in raised)
                    out.append(f"fault #{i} raised {len(raised)} blanket alerts: {names}")
        return out

    def _assign(
        self,
        options: list[tuple[DownNotice, list[tuple[int, set[str]]]]],
        owned: dict[int, list[tuple[DownNotice, set[str]]]],
        budget: list[int],
    ) -> dict[int, list[tuple[DownNotice, set[str]]]] | None:
        """A choice of cause for each alert in which no cause raised two clashing alerts (None:
        there is none, or the search ran out of ``budget``)."""
        if not options:
            return owned
        (n, causes), rest = options[0], options[1:]
        faults = self.p.scenario.faults
        for i, held in causes:
            budget[0] -= 1
            if budget[0] < 0:
                return None
            if any(self._clash(faults[i], (n, held), other) for other in owned.get(i, [])):
                continue
            owned.setdefault(i, []).append((n, held))
            if self._assign(rest, owned, budget) is not None:
                return owned
            owned[i].pop()
        return None

    def _clash(self, f: Fault, a: tuple[DownNotice, set[str]], b: tuple[DownNotice, set[str]]) -> bool:
        """Two alerts one fault may not both raise.

        Crashes, or a cut of hosts chosen by no label, may hit several groups at once: one shared
        silence per group, so one alert per set of hosts (nested groups are one). A broader
        blanket that lifted (its own share back) hands the hosts still silent to the group they
        still cut off: a second group's alert after the first resolved is allowed, the same
        group's again is not (a long cut raises one), nor two open at once.
        """
        split = f.type.splits(f)
        (na, ha), (nb, hb) = a, b
        return (not split or bool(ha & hb)) and (na.fingerprint == nb.fingerprint or self._open_together(na, nb))

    def _resolved_at(self, n: DownNotice) -> float:
        """When the alert ``n`` fired resolved (inf: still open at the end)."""
        return next((t for t in self._resolutions.get(n.fingerprint, []) if t >= n.at), math.inf)

    def _open_together(self, a: DownNotice, b: DownNotice) -> bool:
        return a.at < self._resolved_at(b) and b.at < self._resolved_at(a)

    def _cut_hosts(self, f: Fault) -> set[str]:
        return set(self.region_of) if f.kind == "ingest_outage" else set(f.hosts)

    def _fault_end(self, f: Fault) -> float:
        return f.end_s(self.p.scenario.duration_s)

    def _reach(self) -> float:
        longest = max(self.p.interval.values(), default=0.0)
        return (self.cfg.missed + 2 * self.late) * longest + self.cfg.grace_s + self.slack

    def _co_stopped(self, hosts: set[str], at: float) -> bool:
        """Two or more of ``hosts`` were in a silence that began before ``at`` and overlapped."""
        silent = [g for h in hosts for g in self.gaps[h] if g.start < at <= g.end]
        for gap in silent:
            s, e = self.window(gap)
            if sum(1 for g in silent if self.window(g)[0] <= e and self.window(g)[1] >= s) >= 2:
                return True
        return False


def violations(played: Played) -> list[str]:
    """Every broken invariant of a play, one line each (empty: the promise held)."""
    return Judge(played).violations()


def check(scenario: Scenario) -> list[str]:
    """Play ``scenario`` and return its violations."""
    return violations(play(scenario))


def notice_lines(notices: Iterable[DownNotice]) -> list[str]:
    """The notices of a play, for people."""
    return [
        f"t={n.at:7.1f}s {n.state:8} {n.fingerprint:32} {n.reason}" for n in notices
    ]


def by_host(notices: Iterable[DownNotice]) -> Mapping[str, list[DownNotice]]:
    """Notices grouped by host (for tests that look at one host)."""
    out: dict[str, list[DownNotice]] = {}
    for n in notices:
        out.setdefault(n.host_id, []).append(n)
    return out
