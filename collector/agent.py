"""The agent: collect every interval, write ahead to the disk spool, send from the spool.

Three tasks share one event loop and never wait for each other:

* the **collector** samples the host, the process table and the log files every
  ``interval_s`` and appends the cycle's encoded events to the spool (it touches only local
  disk, so collection keeps time whatever the network does). The log files are read in a
  thread of their own, waited for at most a quarter interval: a glob over a huge tree or a
  hung NFS mount delays log events, never a heartbeat, and signals are still handled;
* the **witness** (when ``[witness] peers`` are configured) probes peers by TCP connect on
  its own schedule; each cycle takes the reports it decided to send (see ``witness``);
* the **sender** reads the spool oldest first, sends through an idempotent producer and
  acknowledges what the broker confirmed. While Kafka is unreachable the events wait on disk
  (bounded; the oldest are dropped and counted when full) and go out in order, with their
  original timestamps, once it is back. A crash re-sends at most the unconfirmed batch.

Heartbeat sequence numbers are persisted with the boot id, so they stay continuous across
agent restarts within one boot (the down-checker relies on that).

A full, read-only or failing disk stops nothing: the outbox (:mod:`collector.outbox`) sends
heartbeats directly while the spool cannot be written, counts what it could not keep and
recovers by itself; the state directory is private (0700, files 0600).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import psutil
from aiokafka import AIOKafkaProducer

from collector import __version__
from collector.aio import sleep_unless
from collector.config import AgentConfig
from collector.connection import KafkaConnection, start_client
from collector.contract import Event, Heartbeat, MetricBatch, Topics, encode
from collector.durable import WriteHealth, atomic_write, lock_dir, private_dir
from collector.log_tail import LogTailer, PollResult
from collector.log_tail import to_events as log_events
from collector.outbox import Outbox, Outgoing
from collector.processes import ProcessScanner, to_summary
from collector.processes import to_events as process_events
from collector.spool import SpooledRecord
from collector.system_metrics import SystemSampler
from collector.witness import Witness

log = logging.getLogger(__name__)

Record = tuple[str, bytes, bytes]  # topic, key, value

# What the agent keeps in its state directory (a directory holding only these is ours to tighten).
_STATE_FILES = {"agent.lock", "agent-state.json", "agent-state.json.tmp", "log-offsets.json", "log-offsets.json.tmp"}
_STATE_DIRS = {"spool"}


def boot_id() -> str:
    """The kernel's boot id (changes on every reboot); a random id where there is none."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return f"nobootid-{uuid.uuid4()}"


class SequenceState:
    """The last heartbeat sequence number of this boot, kept in a small file (atomic writes).

    If the file cannot be written (a full or read-only disk), numbering goes on in memory and
    that is logged once; a restart before a write succeeds again may then repeat numbers the
    down-checker already saw (it ignores those as replays).
    """

    def __init__(self, path: Path | None, current_boot: str) -> None:
        self.path = path
        self.boot_id = current_boot
        self.health = WriteHealth("seq_state", log)
        self.seq = 0
        if path is not None and path.exists():
            try:
                saved = orjson.loads(path.read_bytes())
                if saved.get("boot_id") == current_boot and isinstance(saved.get("seq"), int):
                    self.seq = saved["seq"]
            except (OSError, orjson.JSONDecodeError):
                log.warning("event=seq_state_unreadable path=%s action=restart_at_1", path)

    def next(self) -> int:
        """Reserve and persist the next number before it is used (a crash leaves a gap, never a repeat)."""
        self.seq += 1
        if self.path is not None:
            try:
                atomic_write(self.path, orjson.dumps({"boot_id": self.boot_id, "seq": self.seq}))
            except OSError as exc:
                self.health.failed(exc, path=self.path)
            else:
                self.health.ok(path=self.path)
        return self.seq


@dataclass
class Counters:
    """Delivery counters reported in every heartbeat."""

    sent: int = 0
    send_failures: int = 0


class LogPolls:
    """Runs the tailer's polls in a daemon thread, one at a time, results taken on the loop.

    The thread is a daemon so that a poll stuck in the kernel (a dead NFS server) can neither
    hold the loop nor the process's exit; while it runs, the tailer belongs to it alone.
    """

    def __init__(self, tailer: LogTailer) -> None:
        self.tailer = tailer
        self._running: asyncio.Future[PollResult | None] | None = None
        self._thread: threading.Thread | None = None

    def start(self, now: float) -> None:
        """Begin a poll unless one is still running (its result is taken first)."""
        if self._running is not None:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[PollResult | None] = loop.create_future()
        self._running = done
        self._thread = threading.Thread(target=self._poll, args=(now, loop, done), name="log-poll", daemon=True)
        self._thread.start()

    def _poll(self, now: float, loop: asyncio.AbstractEventLoop, done: asyncio.Future[PollResult | None]) -> None:
        result = None
        try:
            result = self.tailer.poll(now)
        except Exception:  # a bug in one poll must not end log tailing for good
            log.exception("event=log_poll_failed")
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits any more
            loop.call_soon_threadsafe(_settle, done, result)

    async def result(self, wait_s: float) -> PollResult | None:
        """The running poll's result if it ends within ``wait_s`` (else None: taken next time)."""
        done = self._running
        if done is None:
            return None
        await asyncio.wait({done}, timeout=wait_s)
        if not done.done():
            return None
        self._running = None
        return done.result()

    async def stop(self, wait_s: float) -> bool:
        """Wait for a running poll; False if it is still stuck (then the tailer is left open)."""
        if self._running is not None:
            await asyncio.wait({self._running}, timeout=wait_s)
            if not self._running.done():
                log.warning("event=log_poll_abandoned waited_s=%g", wait_s)
                return False
        return True


def _settle(done: asyncio.Future[PollResult | None], result: PollResult | None) -> None:
    if not done.done():
        done.set_result(result)


class Collector:
    """Builds one cycle's events from the host.

    No network I/O, except witness probes when ``witness`` was not started in the background
    (``fleetpulse agent --stdout``): then each cycle runs one probe round, bounded by its timeout.
    """

    def __init__(self, config: AgentConfig, state_dir: Path | None) -> None:
        self.config = config
        self.topics = Topics(config.kafka.topic_prefix)
        self.sampler = SystemSampler(per_core_cpu=config.per_core_cpu, tcp_states=config.tcp_states)
        self.scanner = ProcessScanner(config.groups, top_n=config.top_n)
        self.tailer = (
            LogTailer(config.logs, state_path=(state_dir or Path(".")) / "log-offsets.json")
            if config.logs and state_dir is not None
            else None
        )
        # Set by the agent: polls in a thread (``--stdout`` polls inline).
        self.log_polls: LogPolls | None = None
        self.log_wait_s = min(2.0, config.interval_s / 4)
        w = config.witness
        self.witness = (
            Witness(
                w.peers,
                config.host_id,
                config.region,
                timeout_s=w.timeout_s,
                refresh_s=w.refresh_s,
                interval_s=w.every_s(config.interval_s),
            )
            if w.peers
            else None
        )
        self.sequence = SequenceState(state_dir / "agent-state.json" if state_dir else None, boot_id())
        self.me = psutil.Process()
        self.scanner.scan(time.time())  # prime per-process CPU and the start/exit baseline

    def collect(self, now: float, outbox: Outbox | None = None, counters: Counters | None = None) -> list[Event]:
        """Every event of one cycle, heartbeat last (its counters describe the cycle before)."""
        events = self.host_events(now)
        if self.tailer is not None:
            events.extend(self.log_events(now, self.tailer.poll(now)))
        return self.finish(now, events, outbox, counters)

    async def cycle(
        self, now: float, outbox: Outbox | None, counters: Counters | None, follow_logs: bool = True
    ) -> list[Event]:
        """:meth:`collect` with the log poll in its thread beside sampling, awaited at most
        ``log_wait_s``: a poll that takes longer is reported by a later cycle. ``follow_logs``
        off (the outbox cannot keep records) leaves unread lines in their files."""
        polls = self.log_polls
        if polls is not None and follow_logs:
            polls.start(now)
        events = self.host_events(now)
        if polls is not None:
            result = await polls.result(self.log_wait_s)
            if result is not None:
                events.extend(self.log_events(now, result))
        return self.finish(now, events, outbox, counters)

    def host_events(self, now: float) -> list[Event]:
        """Metrics, the process summary and process starts/exits."""
        c = self.config
        labels = dict(c.labels)
        scan = self.scanner.scan(now)
        metrics = self.sampler.sample()
        for state, count in scan.by_state.items():
            metrics[f"procs:{state}"] = float(count)
        metrics["procs_total"] = float(scan.total)
        return [
            MetricBatch(c.host_id, c.region, now, c.interval_s, metrics, labels),
            to_summary(scan, c.host_id, c.region, now, c.interval_s, labels),
            *process_events(scan, c.host_id, c.region, labels),
        ]

    def log_events(self, now: float, result: PollResult) -> list[Event]:
        c = self.config
        matches, totals = log_events(result.hits, result.counts, c.host_id, c.region, now, c.interval_s, c.labels)
        return [*matches, totals]

    def finish(self, now: float, events: list[Event], outbox: Outbox | None, counters: Counters | None) -> list[Event]:
        """Witness reports, then the heartbeat last."""
        if self.witness is not None:
            events.extend(self.witness.take())
        events.append(self.heartbeat(now, outbox, counters))
        return events

    def heartbeat(self, now: float, outbox: Outbox | None, counters: Counters | None) -> Heartbeat:
        """This agent's proof of life, with its own cost and delivery counters."""
        c = self.config
        cpu = self.me.cpu_times()
        dropped = outbox.dropped() if outbox is not None else {}
        return Heartbeat(
            host_id=c.host_id,
            region=c.region,
            boot_id=self.sequence.boot_id,
            seq=self.sequence.next(),
            sent_at=now,
            interval_s=c.interval_s,
            agent_version=__version__,
            labels=dict(c.labels),
            agent_cpu_s=cpu.user + cpu.system,
            agent_rss_bytes=self.me.memory_info().rss,
            events_sent=counters.sent if counters else 0,
            events_spooled=outbox.pending if outbox is not None else 0,
            events_dropped=sum(dropped.values()),
            dropped=dropped,
        )

    def records(self, events: list[Event]) -> list[Record]:
        """Encoded records, keyed by host so one host's events stay in order on one partition."""
        key = self.config.host_id.encode()
        return [(self.topic_of(event), key, encode(event)) for event in events]

    def topic_of(self, event: Event) -> str:
        t = self.topics
        return {
            "metric_batch": t.metrics,
            "heartbeat": t.heartbeats,
            "peer_probe": t.heartbeats,  # witness reports travel with proof of life
            "process_summary": t.processes,
            "process_event": t.processes,
            "log_match": t.logs,
            "log_counts": t.logs,
        }[event.TYPE]

    async def stop(self, wait_s: float = 2.0) -> None:
        """Close the log files, once a poll still running has ended (or been given up on)."""
        if self.log_polls is not None and not await self.log_polls.stop(wait_s):
            return  # the stuck thread still uses them; the process's exit closes them
        self.close()

    def close(self) -> None:
        if self.tailer is not None:
            self.tailer.close()


class Sender:
    """Drains the outbox to Kafka: held heartbeats first (fresh proof of life), then the spool
    in order, acknowledging only what the broker confirmed."""

    def __init__(
        self,
        outbox: Outbox,
        make_producer: Callable[[], AIOKafkaProducer],
        batch_records: int = 500,
        counters: Counters | None = None,
        slow_after_s: float = 5.0,
        connection: KafkaConnection | None = None,
    ) -> None:
        self.outbox = outbox
        self.make_producer = make_producer
        # With the settings, a refused start says why (a wrong password, an untrusted certificate).
        self.connection = connection
        self.batch_records = batch_records
        self.counters = counters or Counters()
        self.wakeup = asyncio.Event()
        self.connected = False
        self.slow_after_s = slow_after_s

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: send whatever is spooled, waiting on ``wakeup`` when it is empty."""
        producer: AIOKafkaProducer | None = None
        delay_s = 1.0
        try:
            while not stop.is_set():
                if producer is None:
                    producer = self.make_producer()
                    try:
                        # Only a failure that will be logged is explained: the probe is one more
                        # connection attempt, not worth repeating on every retry of an outage.
                        logged = self.connected or self.counters.send_failures == 0
                        if self.connection is None or not logged:
                            await producer.start()
                        else:
                            await start_client(producer, self.connection)
                    except Exception as exc:  # any start failure: retry later
                        await _close_quietly(producer)
                        producer = None
                        self._down(exc)
                        await sleep_unless(stop, delay_s)
                        delay_s = min(delay_s * 2, 30.0)
                        continue
                held = self.outbox.take_held()
                batch: Sequence[Outgoing | SpooledRecord] = held or self.outbox.peek(self.batch_records)
                if not batch:
                    # Sleep until the collector appends (or stop): no polling, no idle wakeups.
                    self.wakeup.clear()
                    await self.wakeup.wait()
                    continue
                delivered, refused = await self._send(producer, batch, stop)
                if held:
                    self.outbox.give_back(held[delivered:])
                elif delivered:
                    self.outbox.ack(batch[delivered - 1])  # type: ignore[arg-type]  # peeked: spooled
                self.counters.sent += delivered
                if refused:
                    # A batch the broker refused (e.g. no leader yet after a restart) leaves a
                    # hole in the idempotent producer's sequence; every later batch is then
                    # OutOfOrderSequenceNumber for good. A new producer starts a new sequence,
                    # and the refused records, still spooled, go out again in order.
                    await _close_quietly(producer)
                    producer = None
                if delivered < len(batch):
                    await sleep_unless(stop, delay_s)
                    delay_s = min(delay_s * 2, 30.0)
                else:
                    if not self.connected:
                        log.info("event=broker_reachable pending=%d", self.outbox.pending)
                    self.connected = True
                    delay_s = 1.0
        finally:
            if producer is not None:
                await _close_quietly(producer)

    async def _send(
        self, producer: AIOKafkaProducer, batch: Sequence[Outgoing | SpooledRecord], stop: asyncio.Event
    ) -> tuple[int, bool]:
        """Send a batch; returns how many records, from the start, the broker confirmed, and
        whether one was refused (failed, not merely slow).

        The producer retries by itself while the broker is away, so a batch may simply take
        long: it is never abandoned and re-sent (that would duplicate), only reported.
        """
        futures: list[asyncio.Future[object]] = []
        try:
            for record in batch:
                futures.append(await producer.send(record.topic, record.value, key=record.key))
        except Exception as exc:  # broker unreachable or metadata timeout: retry the rest later
            self._down(exc)
        pending = set(futures)
        while pending and not stop.is_set():
            _, pending = await asyncio.wait(pending, timeout=self.slow_after_s)
            if pending:
                self._down(TimeoutError(f"{len(pending)} records unconfirmed after {self.slow_after_s:g}s"))
        # On stop, unconfirmed records stay spooled and go out after the restart (at least once).
        confirmed = 0
        for fut in futures:
            if not fut.done():
                break
            error = fut.exception()
            if error is not None:
                self._down(error)
                # Retrieve the rest: their errors are this one's consequence, not news.
                for rest in futures:
                    if rest.done() and not rest.cancelled():
                        rest.exception()
                return confirmed, True
            confirmed += 1
        return confirmed, False

    def _down(self, exc: BaseException) -> None:
        self.counters.send_failures += 1
        if self.connected or self.counters.send_failures == 1:
            log.warning("event=broker_unreachable pending=%d error=%r", self.outbox.pending, exc)
        self.connected = False


async def _close_quietly(producer: AIOKafkaProducer, timeout_s: float = 5.0) -> None:
    # stop() flushes what is queued: bounded, or a broker that is away would hold shutdown forever.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), timeout_s)


def _own_state(name: str) -> bool:
    return name in _STATE_FILES or name in _STATE_DIRS


def _open_state_dir(state_dir: Path) -> int | None:
    """Make the state directory private and lock it; the lock's fd, or None if the disk
    refuses (the agent then runs without durable state rather than not at all)."""
    try:
        private_dir(state_dir, owned=_own_state)
        return lock_dir(state_dir, "agent")
    except OSError as exc:
        log.warning(
            "event=state_dir_unavailable path=%s error=%r action=running_without_durable_state",
            state_dir,
            exc.strerror or str(exc),
        )
        return None


async def run_agent(
    config: AgentConfig, state_dir: Path, stop: asyncio.Event, cycles: int | None = None, spool_retry_s: float = 5.0
) -> int:
    """Collect every interval and send through the spool until ``stop``; returns cycles collected.

    With ``cycles``, stops after that many and waits (up to ~one interval) for them to be sent.
    ``spool_retry_s`` is how often an unwritable spool is tried again.
    """
    # aiokafka logs an ERROR per reconnect attempt (10 a second while the broker is away);
    # the sender reports reachability changes itself, once each.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    lock = _open_state_dir(state_dir)  # StateDirBusy (another agent) is the one reason to refuse
    outbox = Outbox(
        state_dir / "spool",
        max_bytes=config.spool.max_bytes,
        segment_bytes=config.spool.segment_bytes,
        retry_s=spool_retry_s,
    )
    collector = Collector(config, state_dir)
    if collector.tailer is not None:
        collector.log_polls = LogPolls(collector.tailer)
    counters = Counters()

    def make_producer() -> AIOKafkaProducer:
        # Idempotence keeps per-partition order through retries, as replay requires.
        return AIOKafkaProducer(**config.kafka.client_options(), acks="all", enable_idempotence=True, linger_ms=20)

    sender = Sender(outbox, make_producer, counters=counters, connection=config.kafka)
    sender_stop = asyncio.Event()
    sending = asyncio.create_task(sender.run(sender_stop))
    # Probes run beside collection, so a slow or dead peer never delays a cycle.
    witnessing = collector.witness.start() if collector.witness is not None else None
    log.info(
        "event=agent_started host_id=%s region=%s interval_s=%g pending=%d state_dir=%s",
        config.host_id,
        config.region,
        config.interval_s,
        outbox.pending,
        state_dir,
    )
    done = 0
    next_at = time.monotonic() + min(1.0, config.interval_s)  # the first batch needs a CPU span
    try:
        while not stop.is_set() and (cycles is None or done < cycles):
            await sleep_unless(stop, max(0.0, next_at - time.monotonic()))
            if stop.is_set():
                break
            next_at += config.interval_s
            if next_at < time.monotonic():  # suspended or overloaded: skip, don't burst
                next_at = time.monotonic() + config.interval_s
            events = await collector.cycle(time.time(), outbox, counters, follow_logs=not outbox.unavailable)
            *records, heartbeat = collector.records(events)
            outbox.put(records, heartbeat)
            sender.wakeup.set()
            done += 1
        if cycles is not None:
            deadline = time.monotonic() + max(5.0, config.interval_s)
            while outbox.pending and time.monotonic() < deadline and not stop.is_set():
                await asyncio.sleep(0.05)
    finally:
        if witnessing is not None:
            witnessing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await witnessing
        sender_stop.set()
        sender.wakeup.set()
        await sending
        await collector.stop()
        outbox.close()
        log.info(
            "event=agent_stopped cycles=%d sent=%d pending=%d dropped=%d",
            done,
            counters.sent,
            outbox.pending,
            sum(outbox.dropped().values()),
        )
        if lock is not None:
            os.close(lock)
    return done
