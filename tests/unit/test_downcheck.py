"""The down-checker's decisions, on an injected clock: a small fleet of virtual hosts beats
through :class:`HostWatch` into the :class:`Correlator`, and faults are injected by time."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.downcheck import Correlator, DownCheckSettings, DownNotice, HostWatch, Quorum, Signal, clique

INTERVAL = 5.0
TICK = 0.5


@dataclass
class VirtualHost:
    host_id: str
    region: str
    phase: float  # when in each interval it beats
    boot: int = 1
    seq: int = 0
    skew: float = 0.0  # its clock's error; must never matter


@dataclass
class Fleet:
    """Hosts beating every INTERVAL; ``cut(now, host)`` says whether a beat is lost or held back."""

    regions: dict[str, int]
    cfg: DownCheckSettings = field(default_factory=DownCheckSettings)
    now: float = 1_000_000.0
    notices: list[DownNotice] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.hosts = [
            VirtualHost(f"{r}-{i:02d}", r, phase=(i * 0.37) % INTERVAL)
            for r, n in self.regions.items()
            for i in range(n)
        ]
        self.by_id = {h.host_id: h for h in self.hosts}
        self.watches: dict[str, HostWatch] = {}
        self.correlator = Correlator(self.cfg)
        self.dead: set[str] = set()
        self.cut: set[str] = set()  # hosts whose beats are held (spooled) right now
        self.drop_held: set[str] = set()  # held beats that will be lost instead of replayed
        self.held: dict[str, list[tuple[str, int, float]]] = {}

    def _arrive(self, host_id: str, boot: str, seq: int, sent_at: float) -> None:
        h = self.by_id[host_id]
        watch = self.watches.get(host_id)
        if watch is None:
            self.watches[host_id], sig = HostWatch.first(host_id, h.region, boot, seq, sent_at, INTERVAL, self.now)
            self.notices += self.correlator.signal(sig)
            return
        for sig in watch.observe(boot, seq, sent_at, INTERVAL, self.now):
            self.notices += self.correlator.signal(sig)

    def run(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end:
            start = self.now
            self.now += TICK
            for h in self.hosts:
                beats = int((self.now - h.phase) // INTERVAL) - int((start - h.phase) // INTERVAL)
                if beats <= 0 or h.host_id in self.dead:
                    continue
                h.seq += 1
                beat = (f"boot{h.boot}", h.seq, self.now + h.skew)
                if h.host_id in self.cut or h.host_id in self.held:  # a spool drains in order
                    self.held.setdefault(h.host_id, []).append(beat)
                else:
                    self._arrive(h.host_id, *beat)
            for host_id in sorted(self.held):
                if host_id not in self.cut:
                    for beat in [] if host_id in self.drop_held else self.held[host_id]:
                        self._arrive(host_id, *beat)
                    del self.held[host_id]
            for watch in self.watches.values():
                sig = watch.due(self.now, self.cfg)
                if sig is not None:
                    self.notices += self.correlator.signal(sig)
            self.notices += self.correlator.tick(self.now)

    def region(self, name: str) -> list[str]:
        return [h.host_id for h in self.hosts if h.region == name]

    def reboot(self, host_id: str) -> None:
        h = self.by_id[host_id]
        h.boot += 1
        h.seq = 0

    def fired(self, kind: str) -> list[DownNotice]:
        return [n for n in self.notices if n.kind == kind and n.state == "firing"]


def _fleet(**regions: int) -> Fleet:
    fleet = Fleet(regions or {"eu": 20, "us": 20, "ap": 20})
    fleet.run(30)
    assert fleet.notices == []
    return fleet


def test_an_isolated_crash_is_paged_once_soon_after_its_timeout() -> None:
    fleet = _fleet()
    crashed_at = fleet.now
    fleet.dead.add("eu-03")
    fleet.run(60)
    downs = fleet.fired("host_down")
    assert [n.host_id for n in downs] == ["eu-03"]
    timeout = fleet.cfg.missed * INTERVAL
    assert crashed_at < downs[0].at <= crashed_at + timeout + fleet.cfg.grace_s + 2 * TICK
    assert [n.kind for n in fleet.notices] == ["host_down"]


def test_a_partitioned_region_is_one_alert_and_no_host_down_and_continuous_replay_means_never_down() -> None:
    fleet = _fleet()
    fleet.cut.update(fleet.region("us"))
    fleet.run(60)
    assert [(n.kind, n.region) for n in fleet.notices] == [("region_unreachable", "us")]
    fleet.cut.clear()  # heals: spooled beats replay in order
    fleet.run(20)
    assert fleet.fired("host_down") == []
    assert [(n.kind, n.state) for n in fleet.notices] == [
        ("region_unreachable", "firing"),
        ("region_unreachable", "resolved"),
    ]
    back = [d for d in fleet.correlator.decisions if d.decision == "back_from_unreachable"]
    assert len(back) == 20 and all("continuous" in d.detail for d in back)


def test_hosts_joining_after_a_region_was_cut_do_not_dilute_its_cut() -> None:
    # A region's share at the instant its hosts stopped is of the hosts that had joined by then
    # (fleet start, a rollout): 5 of 5 cut, then 10 new hosts join; 5 of 15 is below the share.
    fleet = Fleet({"eu": 20, "us": 15, "ap": 20})
    known, newcomers = fleet.region("us")[:5], fleet.region("us")[5:]
    fleet.dead.update(newcomers)
    fleet.run(30)
    assert fleet.notices == []
    fleet.cut.update(known)
    fleet.drop_held.update(known)
    fleet.run(2)
    fleet.dead.difference_update(newcomers)
    fleet.run(60)
    assert [(n.kind, n.region) for n in fleet.notices] == [("region_unreachable", "us")]
    fleet.cut.clear()
    fleet.run(30)
    assert fleet.fired("host_down") == []
    assert [(n.kind, n.state) for n in fleet.notices] == [
        ("region_unreachable", "firing"),
        ("region_unreachable", "resolved"),
    ]
    saved = [(h, fleet.correlator.saved(h)) for h in fleet.region("us")]
    restored = Correlator(fleet.cfg)
    restored.restore([(h, body) for h, body in saved if body is not None], [])
    assert {h: restored.hosts[h].joined_at for h in fleet.region("us")} == {
        h: fleet.correlator.hosts[h].joined_at for h in fleet.region("us")
    }
    assert all(restored.hosts[h].joined_at > 0 for h in newcomers)


@pytest.mark.parametrize("back_at, quorate", [(None, True), (35.0, True), (20.0, False)])
def test_a_host_back_before_an_instant_no_longer_lowers_the_quorum_there(back_at: float | None, quorate: bool) -> None:
    # 2 of a 5-host group stop at 30; a third stopped at 0..10 on its own. Still silent at 30
    # it is not reporting then (2 of 4 is the share); back at 20, the share is of 5.
    q = Quorum({"": 0.5}, {"": 5}, 2, 1)
    windows = [("a", 0.0, 10.0), ("b", 30.0, 40.0), ("c", 30.0, 40.0)]
    returns = [] if back_at is None else [("a", back_at)]
    found = clique(windows, q, returns=returns)
    assert found.quorate is quorate
    assert not quorate or found.hosts == {"b", "c"}  # the quorum's instant holds both


def test_an_ingest_outage_ends_when_most_regions_report_again_though_its_instant_stays_quorate() -> None:
    # 6 hosts per region cut off (on their own: their own share is too small), then 8 more
    # per region die at once: 8 of the 14 still reporting, an outage's shape. The 6 come back;
    # the 8 stay dead. Every other host reports: the outage is over, not open for good.
    fleet = _fleet()
    early = [f"{r}-{i:02d}" for r in ("eu", "us", "ap") for i in range(6)]
    dead = [f"{r}-{i:02d}" for r in ("eu", "us", "ap") for i in range(6, 14)]
    fleet.cut.update(early)
    fleet.drop_held.update(early)
    fleet.run(20)
    fleet.dead.update(dead)
    fleet.run(40)
    assert [n.kind for n in fleet.fired("ingest_outage")] == ["ingest_outage"]
    fleet.cut.clear()
    fleet.run(60)
    assert "ingest_outage:fleet" not in fleet.correlator.open
    paged = {n.host_id for n in fleet.fired("host_down")}
    held = {h for h in dead if fleet.correlator.hosts[h].status == "unreachable"}
    assert set(dead) <= paged | held  # each dead host paged, or named by its region's open alert


def test_a_partition_without_replay_reconciles_as_lost_beats_not_downs() -> None:
    fleet = _fleet()
    fleet.cut.update(fleet.region("ap"))
    fleet.drop_held.update(fleet.region("ap"))
    fleet.run(40)
    fleet.cut.clear()
    fleet.run(20)
    assert fleet.fired("host_down") == [] and len(fleet.fired("region_unreachable")) == 1
    assert all("heartbeats lost" in d.detail for d in fleet.correlator.decisions if d.decision.startswith("back_"))


def test_a_real_crash_inside_a_partition_is_reported_once_the_region_is_back() -> None:
    fleet = _fleet()
    fleet.cut.update(fleet.region("us"))
    fleet.run(10)
    fleet.dead.add("us-07")  # dies while unreachable
    fleet.run(40)
    assert fleet.fired("host_down") == []
    fleet.cut.clear()
    fleet.run(20)
    assert [n.host_id for n in fleet.fired("host_down")] == ["us-07"]


def test_a_crash_inside_a_partition_is_paged_at_once_when_a_witness_cannot_reach_it() -> None:
    fleet = _fleet()
    fleet.cut.update(fleet.region("us"))
    fleet.run(30)
    assert len(fleet.fired("region_unreachable")) == 1
    fleet.dead.add("us-07")
    fleet.correlator.probe("eu-01", "us-07", False, fleet.now)
    fleet.correlator.probe("eu-01", "us-08", True, fleet.now)
    fleet.run(25)
    assert [n.host_id for n in fleet.fired("host_down")] == ["us-07"]


def test_ingest_outage_is_one_alert_and_suppresses_every_host_and_region_page() -> None:
    fleet = _fleet()
    fleet.cut.update(h.host_id for h in fleet.hosts)
    fleet.run(60)
    assert [(n.kind, n.state) for n in fleet.notices] == [("ingest_outage", "firing")]
    fleet.cut.clear()
    fleet.run(20)
    assert [(n.kind, n.state) for n in fleet.notices] == [("ingest_outage", "firing"), ("ingest_outage", "resolved")]


def test_a_crash_during_an_ingest_outage_is_reported_after_it() -> None:
    fleet = _fleet()
    fleet.cut.update(h.host_id for h in fleet.hosts)
    fleet.dead.add("ap-11")
    fleet.run(40)
    fleet.cut.clear()
    fleet.run(30)
    assert [n.host_id for n in fleet.fired("host_down")] == ["ap-11"]
    assert len(fleet.fired("ingest_outage")) == 1


def test_a_region_catching_up_a_moment_after_an_ingest_outage_is_not_called_unreachable() -> None:
    fleet = _fleet()
    fleet.cut.update(h.host_id for h in fleet.hosts)
    fleet.run(40)
    fleet.cut = {h.host_id for h in fleet.hosts if h.region == "ap"}  # two regions are back first
    fleet.run(TICK)
    fleet.cut.clear()
    fleet.run(30)
    assert [(n.kind, n.state) for n in fleet.notices] == [("ingest_outage", "firing"), ("ingest_outage", "resolved")]


def _ingest_outage_with_a_small_region_cut_longer(phase: float, extra: float, dead: str = "") -> Fleet:
    """An ingest outage (beats lost) ends while the link of a two-host region (too small for a
    region alert) stays down ``extra`` seconds longer; ``ap-01`` beats at ``phase``."""
    fleet = Fleet({"eu": 20, "us": 20, "ap": 2})
    fleet.by_id["ap-01"].phase = phase
    fleet.run(30)
    everyone = {h.host_id for h in fleet.hosts}
    fleet.cut |= everyone
    fleet.drop_held |= everyone
    if dead:
        fleet.dead.add(dead)
    fleet.run(40)
    fleet.cut = set(fleet.region("ap"))
    fleet.run(extra)
    fleet.cut.clear()
    fleet.run(40)
    return fleet


@pytest.mark.parametrize("extra", [0.5, 2.0, 4.0, 6.0, 9.0, 14.0])
def test_a_group_still_cut_when_an_ingest_outage_ends_pages_none_of_its_live_hosts(extra: float) -> None:
    """The outage's release is where its hosts' fresh deadlines start: it waits while a group
    it held is still cut off (at most late x interval), then hands what is still cut to it."""
    for phase in (0.75, 1.75, 2.75, 3.75, 4.75):
        fleet = _ingest_outage_with_a_small_region_cut_longer(phase, extra)
        assert fleet.fired("host_down") == [], (phase, fleet.notices)
        assert len(fleet.fired("ingest_outage")) == 1


@pytest.mark.parametrize("extra", [0.5, 4.0, 9.0, 14.0])
def test_a_host_dead_under_an_ingest_outage_and_a_longer_group_cut_is_paged_within_the_release_bound(
    extra: float,
) -> None:
    cfg = DownCheckSettings()
    for phase in (0.75, 2.75, 4.75):
        fleet = _ingest_outage_with_a_small_region_cut_longer(phase, extra, dead="ap-01")
        (page,) = fleet.fired("host_down")
        assert page.host_id == "ap-01"
        # The last blanket that held it lifted before the page; its release bound holds.
        lifts = [n.at for n in fleet.notices if n.state == "resolved" and n.kind != "host_down" and n.at <= page.at]
        assert page.at <= max(lifts) + cfg.late * INTERVAL + cfg.grace_s + TICK, (phase, fleet.notices)


def test_a_region_still_cut_off_after_an_ingest_outage_is_one_region_alert_after_the_grace() -> None:
    fleet = _fleet()
    fleet.cut.update(h.host_id for h in fleet.hosts)
    fleet.run(40)
    fleet.cut = {h.host_id for h in fleet.hosts if h.region == "ap"}
    fleet.run(30)
    assert [(n.kind, n.state, n.region) for n in fleet.notices] == [
        ("ingest_outage", "firing", ""),
        ("ingest_outage", "resolved", ""),
        ("region_unreachable", "firing", "ap"),
    ]
    resolved, region = fleet.notices[1], fleet.notices[2]
    assert region.at >= resolved.at + fleet.cfg.grace_s


def test_a_silent_host_a_witness_still_reaches_is_alive_with_a_broken_path() -> None:
    fleet = _fleet()
    fleet.correlator.probe("eu-01", "us-02", True, fleet.now)
    fleet.cut.add("us-02")
    fleet.run(10)
    fleet.correlator.probe("eu-01", "us-02", True, fleet.now)  # a refresh
    fleet.run(20)
    assert fleet.fired("host_down") == []
    assert [d.decision for d in fleet.correlator.decisions if d.host_id == "us-02"] == ["path_broken"]


def test_a_reboot_is_reported_as_a_reboot_with_its_downtime() -> None:
    fleet = _fleet()
    fleet.dead.add("eu-05")
    fleet.run(8)  # shorter than the timeout
    fleet.dead.discard("eu-05")
    fleet.reboot("eu-05")
    fleet.run(10)
    reboots = fleet.fired("host_rebooted")
    assert [n.host_id for n in reboots] == ["eu-05"] and fleet.fired("host_down") == []
    assert 0 < reboots[0].value <= 10


def test_a_long_reboot_pages_down_then_resolves_as_a_reboot() -> None:
    fleet = _fleet()
    fleet.dead.add("eu-05")
    fleet.run(40)
    fleet.dead.discard("eu-05")
    fleet.reboot("eu-05")
    fleet.run(10)
    assert [(n.kind, n.state) for n in fleet.notices] == [
        ("host_down", "firing"),
        ("host_rebooted", "firing"),
        ("host_rebooted", "resolved"),
        ("host_down", "resolved"),
    ]


def test_a_flapping_link_pages_at_most_once_per_flap_window() -> None:
    fleet = _fleet()
    for _ in range(6):  # down 25 s, up 25 s, for 5 minutes
        fleet.cut.add("us-04")
        fleet.drop_held.add("us-04")
        fleet.run(25)
        fleet.cut.discard("us-04")
        fleet.run(25)
    assert len(fleet.fired("host_down")) == 1
    assert len(fleet.fired("host_flapping")) == 1 and not fleet.fired("host_flapping")[0].page
    fleet.run(fleet.cfg.flap_window_s + 10)
    assert ("host_flapping", "resolved") in [(n.kind, n.state) for n in fleet.notices]


def test_clock_skew_changes_nothing() -> None:
    fleet = Fleet({"eu": 10, "us": 10})
    for i, h in enumerate(fleet.hosts):
        h.skew = (-1) ** i * 3600.0 * (i % 4)
    fleet.run(120)
    assert fleet.notices == []
    fleet.dead.add("eu-02")
    fleet.run(30)
    assert [n.host_id for n in fleet.fired("host_down")] == ["eu-02"]


def test_a_small_region_silent_together_is_unknown_not_a_partition_or_downs() -> None:
    fleet = _fleet(eu=20, us=20, edge=3)
    fleet.cut.update(fleet.region("edge"))
    fleet.run(40)
    assert [(n.kind, n.region, n.page) for n in fleet.notices] == [("region_unknown", "edge", False)]
    assert {d.decision for d in fleet.correlator.decisions} == {"unknown"}


def test_a_small_region_uses_witnesses_when_it_has_them() -> None:
    fleet = _fleet(eu=20, us=20, edge=3)
    fleet.correlator.probe("eu-00", "edge-00", False, fleet.now)
    fleet.correlator.probe("eu-00", "edge-01", True, fleet.now)
    fleet.dead.add("edge-00")
    fleet.cut.update(fleet.region("edge"))
    fleet.run(40)
    assert [n.host_id for n in fleet.fired("host_down")] == ["edge-00"]
    decided = {d.host_id: d.decision for d in fleet.correlator.decisions}
    assert decided == {"edge-00": "down", "edge-01": "path_broken", "edge-02": "unknown"}


def test_a_single_crash_in_a_small_region_is_still_a_down() -> None:
    fleet = _fleet(eu=20, us=20, edge=3)
    fleet.dead.add("edge-01")
    fleet.run(30)
    assert [n.host_id for n in fleet.fired("host_down")] == ["edge-01"]


def test_slow_delivery_under_the_timeout_pages_nobody() -> None:
    fleet = _fleet()
    for _ in range(5):  # the whole fleet's beats held 9 s, then delivered in a burst
        fleet.cut.update(h.host_id for h in fleet.hosts)
        fleet.run(9)
        fleet.cut.clear()
        fleet.run(6)
    assert fleet.notices == []


def test_duplicates_and_old_replays_are_ignored() -> None:
    watch, join = HostWatch.first("h", "eu", "b1", 5, 100.0, INTERVAL, 1000.0)
    assert join.kind == "join"
    assert watch.observe("b1", 5, 100.0, INTERVAL, 1001.0) == []
    assert watch.observe("b1", 3, 90.0, INTERVAL, 1002.0) == []
    assert watch.arrived == 1000.0


def test_silence_is_judged_on_arrival_time_not_the_agents_clock() -> None:
    cfg = DownCheckSettings()
    watch, _ = HostWatch.first("h", "eu", "b1", 1, 5.0, INTERVAL, 1000.0)  # agent clock far off
    assert watch.due(1000.0 + cfg.late * INTERVAL - 0.1, cfg) is None
    late = watch.due(1000.0 + cfg.late * INTERVAL, cfg)
    assert late is not None and late.kind == "late"
    silent = watch.due(1000.0 + cfg.missed * INTERVAL, cfg)
    assert silent is not None and silent.kind == "silent"
    assert watch.due(2000.0, cfg) is None  # said once
    (back,) = watch.observe("b1", 2, 6.0, INTERVAL, 2001.0)
    assert (back.kind, back.reason) == ("back", "continuous")


def test_the_next_sequence_made_long_after_the_last_means_stalled_not_up_the_whole_time() -> None:
    cfg = DownCheckSettings()
    watch, _ = HostWatch.first("h", "eu", "b1", 7, 500.0, INTERVAL, 1000.0)
    assert watch.due(1000.0 + cfg.missed * INTERVAL, cfg) is not None
    (back,) = watch.observe("b1", 8, 500.0 + 9 * INTERVAL, INTERVAL, 1000.0 + 10 * INTERVAL)
    assert (back.reason, back.downtime_s) == ("stalled", 8 * INTERVAL)
    fleet = _fleet()
    fleet.dead.add("eu-03")  # it makes no beats (its sequence does not advance) ...
    fleet.run(40)
    fleet.dead.discard("eu-03")  # ... and resumes with the next number, same boot
    fleet.run(10)
    assert [(n.kind, n.state) for n in fleet.notices] == [("host_down", "firing"), ("host_down", "resolved")]
    assert "stalled" in fleet.notices[1].reason


def test_a_worker_away_past_both_deadlines_reports_silent_directly() -> None:
    cfg = DownCheckSettings()
    watch, _ = HostWatch.first("h", "eu", "b1", 1, 5.0, INTERVAL, 1000.0)
    sig = watch.due(1100.0, cfg)
    assert sig is not None and sig.kind == "silent" and sig.at == 1000.0 + cfg.missed * INTERVAL


def test_a_silence_noticed_late_is_dated_at_its_deadline_and_its_grace_counts_from_there() -> None:
    cfg = DownCheckSettings()
    watch, _ = HostWatch.first("h", "eu", "b1", 1, 5.0, INTERVAL, 1000.0)
    late = watch.due(1000.0 + cfg.late * INTERVAL + 0.4, cfg)  # the next tick, 0.4 s on
    silent = watch.due(1000.0 + cfg.missed * INTERVAL + 0.4, cfg)
    assert late is not None and late.at == 1000.0 + cfg.late * INTERVAL
    assert silent is not None and silent.at == 1000.0 + cfg.missed * INTERVAL
    c = Correlator(cfg)
    for i in range(6):  # a healthy region of six
        c.signal(Signal("join", f"h{i}" if i else "h", "eu", 1000.0))
    c.signal(silent)
    assert c.tick(silent.at + cfg.grace_s - 0.1) == []
    assert [n.kind for n in c.tick(silent.at + cfg.grace_s)] == ["host_down"]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"missed": 1.5}, "'missed'"),
        ({"late": 2.5}, "'late'"),
        ({"region_share": 0}, "region_share"),
        ({"min_region_hosts": 1}, "min_region_hosts"),
        ({"grace_s": -1}, "negative"),
    ],
)
def test_inconsistent_settings_are_named(change: dict[str, float], needle: str) -> None:
    problems = DownCheckSettings(**change).problems()  # type: ignore[arg-type]
    assert problems and any(needle in p for p in problems)
    assert DownCheckSettings().problems() == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["join", "late", "silent", "back", "tick", "probe"]),
            st.integers(0, 11),
            st.floats(0, 20),
            st.booleans(),
        ),
        max_size=120,
    )
)
def test_any_signal_order_keeps_counts_consistent_and_alerts_alternating(
    ops: list[tuple[str, int, float, bool]],
) -> None:
    c = Correlator()
    now = 0.0
    states: dict[str, str] = {}
    for op, i, dt, ok in ops:
        now += dt
        host, region = f"h{i}", ("a", "b", "c")[i % 3]
        if op == "tick":
            notices = c.tick(now)
        elif op == "probe":
            c.probe(f"h{(i + 1) % 12}", host, ok, now)
            notices = []
        else:
            reason = "rebooted" if ok and op == "back" else "continuous"
            notices = c.signal(Signal(op, host, region, now, reason if op == "back" else ""))  # type: ignore[arg-type]
        for n in notices:
            if n.kind == "host_rebooted":
                continue  # a reboot is announced and closed at once
            assert states.get(n.fingerprint, "resolved") != n.state, n
            states[n.fingerprint] = n.state
        for r, members in c.regions.items():
            assert c.stale.get(r, 0) == sum(1 for h in members if c.hosts[h].status != "up")
    assert {fp for fp, s in states.items() if s == "firing"} == set(c.open)


def test_scoped_settings_decide_per_region() -> None:
    from policies.loader import load_policy_text

    policy = load_policy_text("downcheck:\n  - name: us_small\n    scope: {region: [us]}\n    min_region_hosts: 30\n")
    fleet = Fleet({"eu": 20, "us": 20, "ap": 20})
    fleet.correlator.scoped = policy.downcheck_for
    fleet.run(30)
    fleet.cut.update(fleet.region("us"))
    fleet.run(40)
    assert [(n.kind, n.region) for n in fleet.notices] == [("region_unknown", "us")]
