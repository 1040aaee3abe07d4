"""Score the down-checker's alerts of one simulated run against the run's ground truth.

:func:`score` is pure: a :class:`~fleetpulse.sim.truth.Truth` (what really happened) and the
alerts read from the alert topic go in, a :class:`Report` comes out. Reading Kafka is the
caller's job (``fleetpulse score``, ``fleetpulse simulate --score``).

What counts as a page
    A *firing* transition of ``kind == "downcheck"`` whose time lies in
    ``[truth.start, truth.end + truth.slack_s]``. Resolutions in that window are used only
    to know which alerts are open; other kinds are ignored, and down-check firings at other
    times (other runs on the same topic) are counted as ``outside_window``.

Duplicates
    An alert topic can hold one transition twice (a producer retry, a worker that replays
    after a crash). Two firings with the same ``event_id`` are one page; so is a firing of a
    fingerprint that is already open (no resolution in between), since firing and resolved
    strictly alternate per fingerprint and a second firing is the same alert announced
    again. Transitions are taken in ``at`` order per fingerprint (firing before resolved at
    the same instant: ``host_rebooted`` fires and resolves at once), and only those inside the
    window: host ids repeat from run to run, and an alert an earlier run left open must not
    turn this run's first firing into a repeat.

Matching, page by page in time order, each page to at most one thing it can explain
    * ``host_down`` for host H at t is *true* when H is really down: a :class:`Down` of H
      with ``since <= t <= max(until or end, end of its blanket) + slack``. The blanket is the
      partition or ingest outage named by ``covered_by``: a host that crashed under it may be
      paged only after it ends. The first page of a down detects it; a second one for the
      same down is false. Failing that, the page is *allowed* by an expectation of H whose
      window holds t and ``host_down_allowed`` is set: a long reboot allows one; a flap
      allows one per ``flap_window_s`` (a page within the flap window of the last allowed
      one is false and breaks the flap expectation); an agent restart long enough to look
      down and a partition cutting a host without its group allow one each. Anything else is
      false, notably a ``host_down`` for a live host of a partitioned region or group. A
      crash under a group partition (``covered_by="group zone=r1-z2"``) may be paged until
      that partition ends plus the slack, like one under a region partition.
    * ``host_rebooted`` matches an expectation of the same kind and host,
      ``region_unreachable`` / ``region_unknown`` one of the same kind and region,
      ``group_unreachable`` / ``group_unknown`` one of the same kind and group (the alert's
      ``labels["group"]``, ``zone=r1-z2``; its region is only informative),
      ``ingest_outage`` one of that kind, each with t inside the expectation's window. When
      several expectations could take it, the earliest one still short of its
      ``min_count`` wins, then the earliest still below ``max_count``; a page beyond every
      candidate's ``max_count`` is false and the expectation is broken. No candidate: false.
    * ``host_flapping`` is true inside a flap expectation of its host, or while the host is
      really down; it never satisfies a down (that needs a ``host_down``).
    * Some pages are the run's edges, not its faults: neither true nor false, they are listed
      and not scored. After ``truth.end`` every simulated host stops at once and the
      down-checker rightly reports that silence: a page after the end that nothing is
      waiting for (no unpaged down, no expectation below its ``max_count``) is ``after_end``.
      And host ids repeat from run to run: a worker that saw an earlier run sees each host's
      first beat come with a new boot id, so a ``host_rebooted`` that nothing explains within
      the slack after ``truth.start`` is ``carried_over``.

What the report says
    Per kind: pages, true pages, false pages. A *missed* down is a ``required`` down that no
    ``host_down`` matched. ``host_down`` precision is the share of its pages that are not
    false (1.0 without pages); recall the share of required downs paged (1.0 without any).
    An alert's time, here and below, is when the worker published it (its ``announced_at``
    annotation; else its ``at``, the decision's time, which trails it while a worker reads
    heartbeats late). Detection latency is that time minus ``Down.since`` for each down's first page, over downs not
    covered by a blanket (those wait for the blanket by design); p50/p99 by nearest rank,
    and ``latency_ok`` says whether p99 <= ``timeout_s + 2`` (reported, never failed on;
    None without a detection). The verdict is ``fail`` when any expectation's count is out
    of range, any required down was missed, or any page was false; ``failures`` says which,
    one line each (false pages grouped per kind, except those already named by the line of
    the expectation they broke).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from collector.contract import Alert
from fleetpulse.sim.truth import ALLOWANCE_KINDS, Down, Expectation, Truth
from policies.downcheck import NOTICE_KINDS

# How much later than the silence timeout a detection may come before ``latency_ok`` is false.
LATENCY_MARGIN_S = 2.0
# Examples named per kind in the failure line of false pages (the full list is in the report).
FAILURE_EXAMPLES = 3
# Expectation kinds whose pages are matched by region, by group (the rest by host, or kind only).
_REGION_KINDS = ("region_unreachable", "region_unknown")
_GROUP_KINDS = ("group_unreachable", "group_unknown")
# Truth files written before the simulator named the alert ("partition") still score.
_KIND_ALIASES = {"partition": "region_unreachable"}

# What a false page's subject really was, per kind (for the reason shown with it).
_NOT = {
    "host_down": "was not down",
    "host_rebooted": "did not reboot",
    "host_flapping": "was not flapping",
    "region_unreachable": "was not cut off",
    "region_unknown": "was not cut off",
    "group_unreachable": "was not cut off",
    "group_unknown": "was not cut off",
    "ingest_outage": "had no ingest outage",
}

AFTER_END = "after the run's end: every simulated host stopped"
KNOWN_BEFORE = "first beat of a host the worker knew from an earlier run (same host id, new boot id)"

PageVerdict = Literal["true", "false", "after_end", "carried_over"]
UNSCORED = ("after_end", "carried_over")


@dataclass(frozen=True)
class KindCount:
    """Pages of one alert kind and how they were judged (pages of the run's edges are in neither)."""

    kind: str
    pages: int
    true_pages: int
    false_pages: int


@dataclass(frozen=True)
class ScoredPage:
    """One deduplicated page and what it was matched to; ``expectation`` indexes the truth's list."""

    kind: str
    host_id: str
    region: str
    at: float
    verdict: PageVerdict
    reason: str
    expectation: int | None = None
    group: str = ""  # a group alert's "label=value"

    @property
    def subject(self) -> str:
        """What the page is about, for people: its host, group, region, or the fleet."""
        return self.host_id or self.group or self.region or "fleet"


@dataclass(frozen=True)
class MissedDown:
    """A required down that no ``host_down`` paged before its deadline."""

    host_id: str
    region: str
    since: float
    deadline: float
    fault: int
    covered_by: str = ""


@dataclass(frozen=True)
class ExpectationResult:
    """How many matching alerts one expectation got, against what it wants."""

    index: int
    fault: int
    kind: str
    label: str  # "partition r2 (#3)": the fault and what it hit
    count: int  # for a flap: the most host_down pages within one flap window
    min_count: int
    max_count: int
    ok: bool
    text: str  # "2 region_unreachable, want exactly 1"


@dataclass(frozen=True)
class Report:
    """The score of one run; :meth:`to_json` for machines, :meth:`lines` for people."""

    scenario: str
    run_id: str
    start: float
    end: float
    slack_s: float
    timeout_s: float
    kinds: tuple[KindCount, ...]
    pages: tuple[ScoredPage, ...]
    missed: tuple[MissedDown, ...]
    expectations: tuple[ExpectationResult, ...]
    required_downs: int
    detected_downs: int
    host_down_precision: float
    host_down_recall: float
    latencies_s: tuple[float, ...]
    latency_p50_s: float | None
    latency_p99_s: float | None
    latency_limit_s: float
    latency_ok: bool | None
    duplicates: int
    outside_window: int
    failures: tuple[str, ...]

    @property
    def verdict(self) -> Literal["pass", "fail"]:
        """``pass`` when nothing in ``failures``."""
        return "fail" if self.failures else "pass"

    @property
    def false_pages(self) -> tuple[ScoredPage, ...]:
        """The pages judged false, in time order."""
        return tuple(p for p in self.pages if p.verdict == "false")

    @property
    def unscored(self) -> tuple[ScoredPage, ...]:
        """Pages of the run's edges: the fleet's silence after the end, hosts known from an earlier run."""
        return tuple(p for p in self.pages if p.verdict in UNSCORED)

    @property
    def after_end(self) -> tuple[ScoredPage, ...]:
        """Pages after the run's end that nothing waited for (the fleet's final silence)."""
        return tuple(p for p in self.pages if p.verdict == "after_end")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, with ``verdict`` and the per-kind counts keyed by kind."""
        body = asdict(self)
        body["kinds"] = {k.kind: {"pages": k.pages, "true": k.true_pages, "false": k.false_pages} for k in self.kinds}
        body["verdict"] = self.verdict
        return body

    def lines(self) -> list[str]:
        """A human summary: counts per kind, expectations, false pages, missed downs, verdict."""

        def rel(t: float) -> str:
            return f"t={t - self.start:.1f}s"

        def num(x: float | None) -> str:
            return "-" if x is None else f"{x:.2f}s"

        out = [f"score of {self.scenario} run {self.run_id or '-'}: {self.verdict.upper()}", ""]
        out.append(f"{'kind':<20}{'pages':>7}{'true':>7}{'false':>7}")
        for k in self.kinds:
            out.append(f"{k.kind:<20}{k.pages:>7}{k.true_pages:>7}{k.false_pages:>7}")
        out.append("")
        out.append(
            f"host_down precision {self.host_down_precision:.2f}, recall {self.host_down_recall:.2f}"
            f" ({self.detected_downs}/{self.required_downs} required downs paged, {len(self.missed)} missed)"
        )
        verdict = {None: "no detection", True: "ok", False: "too slow"}[self.latency_ok]
        out.append(
            f"detection latency p50 {num(self.latency_p50_s)}, p99 {num(self.latency_p99_s)}"
            f" over {len(self.latencies_s)} down(s); limit {self.latency_limit_s:g}s: {verdict}"
        )
        if self.expectations:
            out.append("expectations:")
            out.extend(f"  {'ok  ' if e.ok else 'FAIL'} {e.label}: {e.text}" for e in self.expectations)
        if self.false_pages:
            out.append("false pages:")
            out.extend(f"  {rel(p.at)} {p.kind} {p.subject}: {p.reason}" for p in self.false_pages)
        if self.missed:
            out.append("missed downs:")
            out.extend(
                f"  {m.host_id} ({m.region}) down since {rel(m.since)}, no host_down by {rel(m.deadline)}"
                f" (#{m.fault}{', ' + m.covered_by if m.covered_by else ''})"
                for m in self.missed
            )
        if self.unscored:
            out.append("not scored (the run's edges):")
            out.extend(f"  {rel(p.at)} {p.kind} {p.subject}: {p.reason}" for p in self.unscored)
        out.append(f"duplicates dropped: {self.duplicates}; alerts outside the run's window: {self.outside_window}")
        if self.failures:
            out.append("failures:")
            out.extend(f"  - {f}" for f in self.failures)
        out.append(f"verdict: {self.verdict}")
        return out


def announced_at(alert: Alert) -> float:
    """When the worker published ``alert`` by its own clock (``at`` is the decision's time,
    which trails the wall clock while the worker reads heartbeats late)."""
    try:
        return float(alert.annotations.get("announced_at", alert.at))
    except ValueError:
        return alert.at


def percentile(values: Iterable[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of ``values``; None when there are none.

    Nearest rank returns a value that was observed: p99 of fewer than 100 detections is the
    slowest one, which is what "99% were faster" can honestly say about few samples.
    """
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def dedupe(alerts: Iterable[Alert]) -> tuple[list[Alert], int]:
    """The down-check firings that are pages, in ``at`` order, and how many repeats were dropped.

    A repeat is a transition whose ``event_id`` was seen, or a firing of a fingerprint that
    is already open; resolutions only close fingerprints and are not returned.
    """
    seen: set[str] = set()
    per_fingerprint: dict[str, list[Alert]] = defaultdict(list)
    duplicates = 0
    for alert in alerts:
        if alert.kind != "downcheck" or alert.notice not in ("firing", "resolved"):
            continue
        key = alert.event_id or f"{alert.fingerprint}|{alert.notice}|{alert.at!r}"
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        per_fingerprint[alert.fingerprint].append(alert)
    firings: list[Alert] = []
    for transitions in per_fingerprint.values():
        is_open = False
        for alert in sorted(transitions, key=lambda a: (a.at, a.notice != "firing")):
            if alert.notice == "resolved":
                is_open = False
            elif is_open:
                duplicates += 1
            else:
                is_open = True
                firings.append(alert)
    firings.sort(key=lambda a: (a.at, a.rule, a.host_id, a.region))
    return firings, duplicates


def _want(lo: int, hi: int) -> str:
    if lo == hi:
        return f"exactly {lo}"
    return f"at most {hi}" if lo == 0 else f"between {lo} and {hi}"


def _most_within(times: list[float], window_s: float) -> int:
    """The most of ``times`` inside any half-open span of ``window_s`` seconds."""
    ordered = sorted(times)
    best, first = 0, 0
    for last, t in enumerate(ordered):
        while t - ordered[first] >= window_s:
            first += 1
        best = max(best, last - first + 1)
    return best


class _Scorer:
    """The matching state of one :func:`score` call (see the module docstring for the rules)."""

    def __init__(self, truth: Truth) -> None:
        self.truth = truth
        self.expectations = [replace(e, kind=_KIND_ALIASES.get(e.kind, e.kind)) for e in truth.expectations]
        self.counts = [0] * len(self.expectations)  # matched alerts of each expectation's kind
        self.allowed_downs: dict[int, list[float]] = defaultdict(list)  # expectation -> host_down times
        self.flap_downs: dict[int, list[float]] = defaultdict(list)  # flap expectation -> every host_down
        self.detected: dict[int, float] = {}  # down index -> first host_down time
        self.deadlines = [self._deadline(d) for d in truth.downs]
        self.scored: list[ScoredPage] = []

    def _deadline(self, down: Down) -> float:
        """The last moment a page still detects ``down``: its end, or its blanket's, plus the slack."""
        t = self.truth
        last = down.until if down.until is not None else t.end
        if down.covered_by:
            kind, _, region = down.covered_by.partition(" ")
            for f in t.faults:
                if kind == "group":
                    covers = f.kind == "partition" and f.group == region
                else:
                    covers = f.kind == kind and (not region or f.region == region)
                if covers and f.at <= down.since:
                    blanket_end = f.end if f.end is not None else t.end
                    if down.since < blanket_end:
                        last = max(last, blanket_end)
        return last + t.slack_s

    def label(self, e: Expectation) -> str:
        """How failures name an expectation: its fault's kind, what it hit, and the fault's index."""
        fault = next((f for f in self.truth.faults if f.index == e.fault), None)
        subject = e.host_id or e.group or e.region
        return " ".join(x for x in (fault.kind if fault else e.kind, subject) if x) + f" (#{e.fault})"

    def page(self, alert: Alert) -> None:
        """Judge one page (pages come in time order)."""
        at, kind, host = alert.at, alert.rule, alert.host_id
        late = at > self.truth.end
        if kind == "host_down":
            self._host_down(alert, late)
            return
        if kind == "host_flapping":
            if any(self._flap_holds(i, host, at) for i in range(len(self.expectations))) or any(
                d.host_id == host and d.since <= at <= self.deadlines[j] for j, d in enumerate(self.truth.downs)
            ):
                self._add(alert, "true", "a flapping or really down host")
            else:
                self._unmatched(alert, late)
            return
        candidates = [i for i, e in enumerate(self.expectations) if self._holds(e, alert)]
        if not candidates:
            self._unmatched(alert, late)
            return
        chosen = next(
            (i for i in candidates if self.counts[i] < self.expectations[i].min_count),
            next((i for i in candidates if self.counts[i] < self.expectations[i].max_count), None),
        )
        if chosen is None:
            if late:
                self._add(alert, "after_end", "after the run's end, beyond what its fault owes")
                return
            chosen = candidates[0]
            self.counts[chosen] += 1
            label = self.label(self.expectations[chosen])
            self._add(alert, "false", f"one more than {label} owes", chosen)
            return
        self.counts[chosen] += 1
        self._add(alert, "true", f"owed by {self.label(self.expectations[chosen])}", chosen)

    def _holds(self, e: Expectation, alert: Alert) -> bool:
        if e.kind != alert.rule or not e.start <= alert.at <= e.end:
            return False
        if e.kind in _REGION_KINDS:
            return e.region == alert.region
        if e.kind in _GROUP_KINDS:
            return e.group == alert.labels.get("group", "")
        if e.kind == "host_rebooted":
            return e.host_id == alert.host_id
        return True  # ingest_outage: the fleet's

    def _flap_holds(self, i: int, host: str, at: float) -> bool:
        e = self.expectations[i]
        return e.kind == "flap" and e.host_id == host and e.start <= at <= e.end

    def _host_down(self, alert: Alert, late: bool) -> None:
        at, host = alert.at, alert.host_id
        downs = [j for j, d in enumerate(self.truth.downs) if d.host_id == host and d.since <= at <= self.deadlines[j]]
        fresh = [j for j in downs if j not in self.detected]
        if fresh:
            j = fresh[0]
            self.detected[j] = announced_at(alert)
            self._add(alert, "true", f"down since t={self.truth.downs[j].since - self.truth.start:.1f}s")
            return
        allowing = [
            i
            for i, e in enumerate(self.expectations)
            if e.host_down_allowed and e.host_id == host and e.start <= at <= e.end
        ]
        window = self.truth.flap_window_s
        for i in allowing:
            e, previous = self.expectations[i], self.allowed_downs[i]
            if e.kind == "flap":
                if all(at - t >= window for t in previous):
                    previous.append(at)
                    self.flap_downs[i].append(at)
                    self._add(alert, "true", f"allowed once per flap window by {self.label(e)}", i)
                    return
            elif not previous:
                previous.append(at)
                self._add(alert, "true", f"allowed by {self.label(e)}: {e.note}", i)
                return
        if late:
            self._add(alert, "after_end", AFTER_END)
            return
        flap = next((i for i in allowing if self.expectations[i].kind == "flap"), None)
        if flap is not None:
            self.flap_downs[flap].append(at)
            self._add(
                alert, "false", f"second host_down within {window:g}s, {self.label(self.expectations[flap])}", flap
            )
        elif downs:
            self._add(alert, "false", "a second host_down for one down")
        elif allowing:
            self._add(alert, "false", f"one more than {self.label(self.expectations[allowing[0]])} allows", allowing[0])
        else:
            self._unmatched(alert, late)

    def _unmatched(self, alert: Alert, late: bool) -> None:
        if late:
            self._add(alert, "after_end", AFTER_END)
            return
        if alert.rule == "host_rebooted" and alert.at <= self.truth.start + self.truth.slack_s:
            self._add(alert, "carried_over", KNOWN_BEFORE)
            return
        self._add(alert, "false", self._context(alert))

    def _context(self, alert: Alert) -> str:
        """Why nothing explains a page: the host was up, and which faults were in force then."""
        t, at = self.truth, alert.at
        group = alert.labels.get("group", "")
        around = [
            f"{f.kind}{' ' + (f.region or f.group) if f.region or f.group else ''} (#{f.index})"
            for f in t.faults
            if f.at <= at <= (f.end if f.end is not None else t.end) + t.slack_s
            and (
                f.kind == "ingest_outage"
                or (alert.host_id and alert.host_id in f.hosts)
                or (f.region and f.region == alert.region)
                or (group and f.group == group)
            )
        ]
        who = alert.host_id or group or alert.region or "the fleet"
        state = _NOT.get(alert.rule, "was not what the alert says")
        return f"{who} {state}" + (f"; during {', '.join(around)}" if around else "; no fault explains it")

    def _add(self, alert: Alert, verdict: PageVerdict, reason: str, expectation: int | None = None) -> None:
        group = alert.labels.get("group", "")
        self.scored.append(
            ScoredPage(alert.rule, alert.host_id, alert.region, alert.at, verdict, reason, expectation, group)
        )

    def results(self) -> list[ExpectationResult]:
        """Each expectation's count checked against its range."""
        out = []
        for i, e in enumerate(self.expectations):
            label = self.label(e)
            if e.kind == "flap":
                window = self.truth.flap_window_s
                downs = self.flap_downs[i]
                count = _most_within(downs, window) if window > 0 else min(1, len(downs))
                ok = e.min_count <= count <= e.max_count
                text = f"{count} host_down within one {window:g}s flap window, want {_want(e.min_count, e.max_count)}"
            elif e.kind in ALLOWANCE_KINDS:
                # No alert of its own: what counts is the host_down it allowed (a second one is
                # a false page, named in the failures).
                count = len(self.allowed_downs[i])
                ok = e.min_count <= count <= e.max_count
                text = f"{count} host_down allowed, want {_want(e.min_count, e.max_count)}"
            else:
                count = self.counts[i]
                ok = e.min_count <= count <= e.max_count
                text = f"{count} {e.kind}, want {_want(e.min_count, e.max_count)}"
            out.append(ExpectationResult(i, e.fault, e.kind, label, count, e.min_count, e.max_count, ok, text))
        return out


def score(truth: Truth, alerts: Iterable[Alert]) -> Report:
    """Judge the alerts of one run against its ground truth; see the module docstring for the rules."""
    in_window, outside = _in_window(truth, alerts)
    # Deduplicated within the window only: an alert left open by an earlier run on the same
    # topic (same host ids) must not make this run's first firing look like a repeat.
    firings, duplicates = dedupe(in_window)
    scorer = _Scorer(truth)
    for alert in firings:
        scorer.page(alert)
    pages = tuple(scorer.scored)
    expectations = tuple(scorer.results())

    required = [j for j, d in enumerate(truth.downs) if d.required]
    missed = tuple(
        MissedDown(d.host_id, d.region, d.since, scorer.deadlines[j], d.fault, d.covered_by)
        for j, d in enumerate(truth.downs)
        if d.required and j not in scorer.detected
    )
    host_downs = [p for p in pages if p.kind == "host_down" and p.verdict not in UNSCORED]
    precision = sum(p.verdict == "true" for p in host_downs) / len(host_downs) if host_downs else 1.0
    detected_required = sum(j in scorer.detected for j in required)
    recall = detected_required / len(required) if required else 1.0
    latencies = tuple(
        sorted(at - truth.downs[j].since for j, at in scorer.detected.items() if not truth.downs[j].covered_by)
    )
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    limit = truth.timeout_s + LATENCY_MARGIN_S

    return Report(
        scenario=truth.scenario,
        run_id=truth.run_id,
        start=truth.start,
        end=truth.end,
        slack_s=truth.slack_s,
        timeout_s=truth.timeout_s,
        kinds=_kind_counts(pages),
        pages=pages,
        missed=missed,
        expectations=expectations,
        required_downs=len(required),
        detected_downs=detected_required,
        host_down_precision=precision,
        host_down_recall=recall,
        latencies_s=latencies,
        latency_p50_s=p50,
        latency_p99_s=p99,
        latency_limit_s=limit,
        latency_ok=None if p99 is None else p99 <= limit,
        duplicates=duplicates,
        outside_window=outside,
        failures=tuple(_failures(truth, expectations, missed, pages)),
    )


def _in_window(truth: Truth, alerts: Iterable[Alert]) -> tuple[list[Alert], int]:
    """The down-check transitions inside the run's window (at their announced time), and how
    many down-check firings fell outside it."""
    window_end = truth.end + truth.slack_s
    in_window: list[Alert] = []
    outside = 0
    for alert in alerts:
        if alert.kind != "downcheck":
            continue
        # Judged at when the operator got it: a worker reading late decides on an earlier clock.
        alert = replace(alert, at=announced_at(alert))
        if truth.start <= alert.at <= window_end:
            in_window.append(alert)
        elif alert.notice == "firing":
            outside += 1
    return in_window, outside


def _kind_counts(pages: tuple[ScoredPage, ...]) -> tuple[KindCount, ...]:
    """Pages per kind: every down-check kind, then any other kind seen, in name order."""
    kinds = []
    for kind in (*NOTICE_KINDS, *sorted({p.kind for p in pages} - set(NOTICE_KINDS))):
        of_kind = [p for p in pages if p.kind == kind]
        kinds.append(
            KindCount(
                kind,
                sum(p.verdict not in UNSCORED for p in of_kind),
                sum(p.verdict == "true" for p in of_kind),
                sum(p.verdict == "false" for p in of_kind),
            )
        )
    return tuple(kinds)


def _failures(
    truth: Truth,
    expectations: tuple[ExpectationResult, ...],
    missed: tuple[MissedDown, ...],
    pages: tuple[ScoredPage, ...],
) -> list[str]:
    """One line per broken expectation, per missed down, and per kind of false page not named yet."""
    failures = [f"{e.label}: {e.text}" for e in expectations if not e.ok]
    for m in missed:
        cover = f", under {m.covered_by}" if m.covered_by else ""
        failures.append(
            f"missed down {m.host_id} (#{m.fault}{cover}): no host_down between t={m.since - truth.start:.1f}s"
            f" and t={m.deadline - truth.start:.1f}s"
        )
    # A false page that broke an expectation is named by that expectation's line; the rest here.
    broken = {e.index for e in expectations if not e.ok}
    unexplained: dict[str, list[ScoredPage]] = defaultdict(list)
    for p in pages:
        if p.verdict == "false" and p.expectation not in broken:
            unexplained[p.kind].append(p)
    for kind, wrong in unexplained.items():
        examples = ", ".join(f"{p.subject} t={p.at - truth.start:.1f}s" for p in wrong[:FAILURE_EXAMPLES])
        more = f" (+{len(wrong) - FAILURE_EXAMPLES} more)" if len(wrong) > FAILURE_EXAMPLES else ""
        failures.append(f"{len(wrong)} false {kind}: {examples}{more}")
    return failures
