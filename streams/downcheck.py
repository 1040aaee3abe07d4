"""The down-checker in the worker: heartbeats in, host/region/ingest alerts out.

Two stages, the pure logic of both in :mod:`policies.downcheck`:

* **watch** (agent on the heartbeat topic, keyed by host): one :class:`HostWatch` per host of
  the assigned partitions, kept in memory and saved to the ``beats`` table. A timer looks
  for hosts whose deadline passed (on the worker's clock, never the agent's) and sends
  *late* / *silent* signals; heartbeats send *join* and *back* signals; witness reports are
  forwarded as they come.
* **correlate** (agent on the down-check topic, one fleet key): the :class:`Correlator`
  turns signals into at most one alert per cause and publishes them through the ``fired``
  table, the alert topic's changelog, like every other alert. Its per-host view is saved to
  the ``downcheck`` table; the alerts it has open are read back from ``fired``.

Why a topic between the stages: tables are written only from their stream (the timer cannot
write one), and "is this region cut off, or is it us?" needs the whole fleet in one place.
The volume there is signals (changes), not heartbeats. Every record is keyed by the same
fleet key, so the topic keeps the worker's partition count and the correlator's writes to
``fired`` land on a partition its worker owns.

After a restart, hosts restored from ``beats`` count their deadlines from when the worker
was ready: a worker that was away knows nothing of what arrived meanwhile.

**A worker that falls behind must not page.** A beat's arrival is when the broker appended
it (the heartbeat topic is ``LogAppendTime``), and each partition's deadlines are judged on
that partition's clock: how far the log is known. That is the append time of the last
record read, or, once that record was the last one the consumer's latest fetch reported
(its highwater), the time of that fetch: the log held nothing newer then. So a backlog
delays decisions instead of turning the hosts it holds into silent ones, and so does a
worker starved of CPU (its fetches stop, and so does its clock; running the clock on with
the wall clock while "nothing is read" turned a busy machine's pauses into whole regions
late at once). An idle partition's clock moves in steps of the consumer's long poll
(Faust asks for 1.5 s). The correlator's clock is the slowest worker's (each worker's ticks
carry its own). A worker's lag is in its stats line (``heartbeat_lag_s``) and logged when
it passes :data:`BEHIND_S`.
"""

from __future__ import annotations

import logging
import time
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import orjson

from collector.contract import (
    DOWNCHECK_KEY,
    Alert,
    DecodeError,
    Heartbeat,
    PeerProbe,
    decode,
    decode_as,
)
from policies.alerts import downcheck_alert, downcheck_notice
from policies.downcheck import Correlator, DownCheckSettings, DownNotice, HostWatch, Signal
from streams.consumer import Fetched, assigned_partitions, fetch_reports
from streams.context import WorkerContext

log = logging.getLogger(__name__)

# A heartbeat from a host this worker never saw is ignored when it was produced this many
# timeouts ago: a new consumer group reads the topic from the start, and a host last heard
# of yesterday is history, not a host to watch (and page) now.
STALE_FIRST_BEAT_TIMEOUTS = 2.0
# Unchanged hosts are saved once in this period (their sequence number, for continuity checks
# after a restart), each at its own offset in it; every change of what the correlator was
# told is saved at once.
SAVE_EVERY_S = 60.0
TICK_S = 0.5
# Signals per down-check record at most (a record of this many is about 100 KB).
BATCH_MAX = 500
# Reading heartbeats this far behind the broker is worth a line in the log (decisions wait).
BEHIND_S = 10.0


# -- the down-check topic's records (internal to the workers; one definition) ----------------


def signal_body(sig: Signal) -> dict[str, Any]:
    body = asdict(sig)
    body["t"] = "signal"
    body["labels"] = dict(sig.labels)
    return body


def signal_record(sig: Signal) -> bytes:
    return orjson.dumps(signal_body(sig))


def probe_body(witness: str, target: str, ok: bool) -> dict[str, Any]:
    return {"t": "probe", "witness": witness, "target": target, "ok": ok}


def batch_record(items: list[dict[str, Any]]) -> bytes:
    """Signals and probes in one record, applied in order (what a worker sends per tick)."""
    return orjson.dumps({"t": "batch", "items": items})


def tick_record(worker: str, now: float) -> bytes:
    return orjson.dumps({"t": "tick", "worker": worker, "now": now})


@dataclass
class Watched:
    """A watched host in memory: its bookkeeping, where it lives and when it was last saved."""

    watch: HostWatch
    partition: int
    settings: DownCheckSettings
    saved_at: float


def _watch_bytes(w: Watched) -> bytes:
    body = asdict(w.watch)
    body["partition"] = w.partition
    return orjson.dumps(body)


def _watch_from(raw: bytes) -> tuple[HostWatch, int]:
    body = orjson.loads(raw)
    partition = int(body.pop("partition", -1))
    return HostWatch(**body), partition


Scoped = Callable[[str, str, Mapping[str, str]], DownCheckSettings]


def _save_slot(host_id: str, t: float) -> int:
    """Which of ``host_id``'s save periods ``t`` falls in. Each host's periods start at its
    own offset: a fleet met all at once (a fresh worker, a handover) would otherwise come due
    in the same few seconds every period, thousands of table writes at once (a lag spike)."""
    return int(t / SAVE_EVERY_S + (zlib.crc32(host_id.encode()) & 0xFFFF) / 0x10000)


def _stamped(alert: Alert) -> Alert:
    """``alert`` with the wall-clock time it is announced at: its ``at`` is the decision's time
    on the fleet's clock, behind the wall clock while a worker reads heartbeats late. An
    annotation, so the event id stays the decision's (a replay after a crash dedupes)."""
    return replace(alert, annotations={**alert.annotations, "announced_at": f"{time.time():.3f}"})


class HostWatches:
    """The watch stage's in-memory state for the assigned heartbeat partitions."""

    def __init__(self, scoped: Scoped, table: Any, fetched: Fetched | None = None) -> None:
        self.scoped = scoped
        self.table = table
        self.fetched = fetched or (lambda partition: None)
        self.mem: dict[str, Watched] = {}
        self.actives: frozenset[int] | None = None  # heartbeat partitions the mirror was built for
        self.ready_at = time.time()
        self.assigned_at = 0.0  # when the assignment last changed
        # partition -> (broker append time, offset, our wall time) of the last record read on it
        self.read_to: dict[int, tuple[float, int, float]] = {}

    def read(self, partition: int, appended_at: float, offset: int, now: float) -> None:
        """Note how far the stream has read ``partition`` (every record, beat or not)."""
        self.read_to[partition] = (appended_at, offset, now)

    def clock(self, partition: int, now: float) -> float:
        """The time ``partition``'s deadlines are judged at: how far its log is known.

        While records flow this is the append time of the one read last (the wall clock minus
        the lag). Once that record is the last the consumer's latest fetch reported, the log
        is known to be empty up to that fetch, so the clock is the fetch's time. Nothing
        fetched lately (a starved or stuck consumer), no progress. Without fetch reports (no
        consumer to ask) it runs on with the wall clock from the last record read.
        """
        seen = self.fetched(partition)
        last = self.read_to.get(partition)
        if last is None:
            return now if seen is None else min(now, seen[0])
        appended, offset, read_at = last
        if seen is None:
            return min(now, appended + (now - read_at))
        fetched_at, highwater = seen
        return min(now, max(appended, fetched_at) if offset + 1 >= highwater else appended)

    def clocks(self, now: float) -> dict[int, float]:
        """Every assigned partition's clock (one reading per tick serves all its uses)."""
        return {p: self.clock(p, now) for p in self.actives or ()}

    @staticmethod
    def watermark(clocks: Mapping[int, float], now: float) -> float:
        """The slowest partition's clock (what this worker knows the fleet up to)."""
        return min(clocks.values(), default=now)

    def heartbeat(self, hb: Heartbeat, partition: int, produced_at: float, now: float) -> list[Signal]:
        """Apply one heartbeat (from its stream); saves to the table when something changed."""
        if hb.interval_s <= 0:
            return []
        w = self.mem.get(hb.host_id)
        if w is None:
            saved = self.table.get(hb.host_id.encode())
            settings = self.scoped(hb.host_id, hb.region, hb.labels)
            if saved is not None:
                watch = self._restored(saved, max(self.ready_at, self.assigned_at))
                w = self.mem[hb.host_id] = Watched(watch, partition, settings, now)
            else:
                if produced_at < now - STALE_FIRST_BEAT_TIMEOUTS * settings.missed * hb.interval_s:
                    return []
                watch, joined = HostWatch.first(
                    hb.host_id, hb.region, hb.boot_id, hb.seq, hb.sent_at, hb.interval_s, now, hb.labels
                )
                w = self.mem[hb.host_id] = Watched(watch, partition, settings, now)
                self._save(w, now)
                return [joined]
        w.partition = partition
        w.settings = self.scoped(hb.host_id, hb.region, hb.labels)  # the live policy's scope
        signals = w.watch.observe(hb.boot_id, hb.seq, hb.sent_at, hb.interval_s, now)
        if hb.region != w.watch.region:
            w.watch.region = hb.region
            w.settings = self.scoped(hb.host_id, hb.region, hb.labels)
            signals.insert(
                0,
                Signal(
                    "join", hb.host_id, hb.region, now, labels=dict(hb.labels), interval_s=hb.interval_s, last_at=now
                ),
            )
        if signals or _save_slot(hb.host_id, now) != _save_slot(hb.host_id, w.saved_at):
            self._save(w, now)
        return signals

    def _restored(self, raw: bytes, since: float) -> HostWatch:
        watch, _ = _watch_from(raw)
        # The table's arrival is at most SAVE_EVERY_S old for a host that kept beating: count
        # from when this worker took the host over, or a handover pages every host it moves.
        watch.arrived = max(watch.arrived, since)
        # What the correlator was told last is not saved by the timer (it cannot write the
        # table): say "not up" so the next heartbeat always reports the host back.
        watch.told = "late"
        return watch

    def _save(self, w: Watched, now: float) -> None:
        self.table[w.watch.host_id.encode()] = _watch_bytes(w)
        w.saved_at = now

    def resync(self, actives: frozenset[int], now: float) -> None:
        """The assignment changed: forget hosts given away, restore those taken over."""
        self.actives = actives
        self.assigned_at = now
        for host_id in [h for h, w in self.mem.items() if w.partition not in actives]:
            del self.mem[host_id]
        self.read_to = {p: at for p, at in self.read_to.items() if p in actives}
        for key, raw in list(self.table.items()):
            host_id = key.decode()
            if host_id in self.mem or raw is None:
                continue
            watch, partition = _watch_from(raw)
            if partition in actives:
                watch = self._restored(raw, now)
                self.mem[host_id] = Watched(watch, partition, self.scoped(host_id, watch.region, {}), now)

    def due(self, clocks: Mapping[int, float], now: float) -> list[Signal]:
        """Late/silent signals owed on each partition's clock (given once; not saved)."""
        out = []
        for w in self.mem.values():
            sig = w.watch.due(clocks.get(w.partition, now), w.settings)
            if sig is not None:
                out.append(sig)
        return out


class CorrelatorState:
    """The correlate stage: the correlator, restored lazily from its tables on first use."""

    def __init__(self, scoped: Scoped, table: Any, fired: Any) -> None:
        self.table = table
        self.fired = fired
        self.correlator = Correlator(scoped=scoped)
        self.loaded = False
        self.last_tick = 0.0
        self.clocks: dict[str, tuple[float, float]] = {}  # worker -> (its watermark, heard at)

    def load(self) -> Correlator:
        if not self.loaded:
            hosts = [(k.decode(), orjson.loads(v)) for k, v in list(self.table.items()) if v is not None]
            open_notices = []
            for _, raw in list(self.fired.items()):
                try:
                    notice = downcheck_notice(decode_as(raw, Alert))
                except DecodeError:
                    continue
                if notice is not None:
                    open_notices.append(notice)
            self.correlator.restore(hosts, open_notices)
            self.loaded = True
            log.info("event=downcheck_restored hosts=%d open=%d", len(hosts), len(open_notices))
        return self.correlator

    def apply(self, body: dict[str, Any], now: float) -> list[DownNotice]:
        """One record of the down-check topic; returns the notices to publish."""
        c = self.load()
        kind = body.get("t")
        if kind == "tick":
            # Every worker ticks with how far it has read; the fleet is known up to the slowest
            # one heard from lately (a worker gone quiet has handed its partitions over).
            self.clocks[str(body.get("worker", ""))] = (float(body.get("now", now)), now)
            fresh = [wm for wm, heard in self.clocks.values() if now - heard <= 5 * TICK_S]
            self.clocks = {w: v for w, v in self.clocks.items() if now - v[1] <= 5 * TICK_S}
            fleet_now = min(fresh, default=now)
            if fleet_now - self.last_tick < TICK_S / 2:
                return []  # one decision round per half interval is enough
            self.last_tick = fleet_now
            notices = c.tick(fleet_now)
        elif kind == "batch":
            notices = [n for item in body["items"] for n in self._item(c, item, now)]
        else:
            notices = self._item(c, body, now)
        self.save()
        return notices

    @staticmethod
    def _item(c: Correlator, body: dict[str, Any], now: float) -> list[DownNotice]:
        kind = body.get("t")
        if kind == "signal":
            fields = {k: v for k, v in body.items() if k != "t"}
            return c.signal(Signal(**fields))
        if kind == "probe":
            c.probe(str(body["witness"]), str(body["target"]), bool(body["ok"]), now)
            return []
        raise KeyError(f"unknown down-check record {kind!r}")

    def save(self) -> None:
        c = self.correlator
        for host_id in c.dirty:
            body = c.saved(host_id)
            key = host_id.encode()
            if body is None:
                self.table.pop(key, None)
            else:
                self.table[key] = orjson.dumps(body)
        c.dirty.clear()
        for d in c.decisions:
            log.debug("event=downcheck_decision host=%s region=%s decision=%s detail=%r", d.host_id, d.region,
                      d.decision, d.detail)  # fmt: skip
        c.decisions.clear()


class DownCheckStage:
    """The down-checker on one worker: the watch and correlate agents, the deadline timer, and
    the outbox between them.

    Signals and probes wait in the outbox for the next tick and go out as one record: a fresh
    worker meets every host at once (15,000 joins), a healed partition brings thousands back,
    and one down-check record per signal made each of those a burst of lag.
    """

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.stats = ctx.stats
        topics = ctx.settings.topics
        self.heartbeats_topic = ctx.topic(topics.heartbeats)
        self.downcheck_topic = ctx.topic(topics.downcheck)
        scoped = ctx.holder.downcheck_for
        self.watches = HostWatches(scoped, ctx.table("beats"), fetch_reports(ctx.app, topics.heartbeats))
        self.state = CorrelatorState(scoped, ctx.table("downcheck"), ctx.fired)
        self.worker_id = uuid.uuid4().hex[:12]
        self.lagging = False
        self.outbox: list[dict[str, Any]] = []

    async def send(self, value: bytes) -> None:
        await self.downcheck_topic.send(key=DOWNCHECK_KEY, value=value)

    async def post(self, item: dict[str, Any]) -> None:
        self.outbox.append(item)
        if len(self.outbox) >= BATCH_MAX:
            await self.flush()

    async def flush(self) -> None:
        if self.outbox:
            items = self.outbox[:]
            self.outbox.clear()
            await self.send(batch_record(items))

    # -- watch: heartbeats and witness reports in, signals to the outbox ---------------------

    async def watch(self, stream: Any) -> None:
        async for event in stream.events():
            await self.on_heartbeat_record(event)

    async def on_heartbeat_record(self, event: Any) -> None:
        message = event.message
        try:
            hb = decode(event.value)
        except DecodeError as exc:
            self.stats.malformed += 1
            log.warning("event=malformed_record topic=heartbeats reason=%r", str(exc))
            return
        now = time.time()
        # Faust gives the record timestamp in seconds; it is the broker's append time on a
        # LogAppendTime topic (type 1), else the producer's clock, which is never trusted.
        appended = message.timestamp if message.timestamp is not None else now
        arrived = min(now, appended) if message.timestamp_type == 1 else now
        self.watches.read(message.partition, arrived, message.offset, now)
        if isinstance(hb, Heartbeat):
            self.stats.heartbeats += 1
            for sig in self.watches.heartbeat(hb, message.partition, appended, arrived):
                await self.post(signal_body(sig))
        elif isinstance(hb, PeerProbe):
            await self.post(probe_body(hb.host_id, hb.target, hb.ok))

    # -- correlate: the fleet's signals in, alerts through ``fired`` ---------------------------

    async def correlate(self, stream: Any) -> None:
        async for payload in stream:
            self.on_downcheck_record(payload)

    def on_downcheck_record(self, payload: bytes) -> None:
        self.stats.downcheck_signals += 1
        try:
            notices = self.state.apply(orjson.loads(payload), time.time())
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
            self.stats.malformed += 1
            log.warning("event=malformed_record topic=downcheck reason=%r", str(exc))
            return
        for notice in notices:
            self.announce(notice)

    def announce(self, notice: DownNotice) -> None:
        previous = self.ctx.fired.get(notice.fingerprint.encode())
        if notice.state == "firing":
            self.announce_firing(_stamped(downcheck_alert(notice, notice.at)))
            return
        if previous is None:
            return  # never announced (fired before a restart that lost it): nothing to close
        first: Alert = decode_as(previous, Alert)
        if first.state == "firing":
            self.ctx.publish(_stamped(downcheck_alert(notice, first.started_at)))

    def announce_firing(self, alert: Alert) -> None:
        why = self.ctx.holder.muted(alert)
        if why is None:
            self.ctx.publish(alert)
        else:  # its resolution is then not announced either (nothing firing in ``fired``)
            log.info("event=alert_suppressed rule=%s host=%s region=%s why=%s", alert.rule,
                     alert.host_id or "-", alert.region or "-", why)  # fmt: skip

    # -- the deadline timer: late/silent signals, then the tick ------------------------------

    async def deadlines(self) -> None:
        now = time.time()
        actives = assigned_partitions(self.ctx.app, self.ctx.settings.topics.heartbeats)
        if actives != self.watches.actives:
            self.watches.resync(actives, now)
        clocks = self.watches.clocks(now)
        lag_s = now - self.watches.watermark(clocks, now)
        self.note_lag(lag_s)
        for sig in self.watches.due(clocks, now):
            await self.post(signal_body(sig))  # an outage makes thousands due in one tick: bounded records
        await self.flush()  # before the tick: the correlator judges at the tick what came before it
        await self.send(tick_record(self.worker_id, now - lag_s))

    def note_lag(self, lag_s: float) -> None:
        """Into the stats; a line in the log when it passes :data:`BEHIND_S` and when it is back."""
        self.stats.watched, self.stats.heartbeat_lag_s = len(self.watches.mem), lag_s
        if (lag_s > BEHIND_S) != self.lagging:
            self.lagging = lag_s > BEHIND_S
            log.warning("event=%s lag_s=%.1f", "heartbeats_behind" if self.lagging else "heartbeats_caught_up", lag_s)


def install(ctx: WorkerContext) -> None:
    """Add the down-checker's agents, tables and timer to the worker's app."""
    stage = DownCheckStage(ctx)
    ctx.app.agent(stage.heartbeats_topic)(stage.watch)
    ctx.app.agent(stage.downcheck_topic)(stage.correlate)
    ctx.app.timer(TICK_S)(stage.deadlines)
