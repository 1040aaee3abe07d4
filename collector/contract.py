"""The wire contract: every topic name, event type and encoding that crosses Kafka.

Events are born in the agent, so the contract lives here; streams and sinks import it.
Encoding is orjson with an explicit schema version (`"v"`) and event type (`"type"`).
Decoding never raises anything but :class:`DecodeError`, whose message says what was wrong,
so a consumer can log, count and skip a bad record instead of crashing.

Times are float seconds since the epoch. ``ts`` / ``sent_at`` / ``at`` are *event* times set
by whoever created the event; arrival time is never carried on the wire (consumers take it
from their own clock or the Kafka record).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson

SCHEMA_VERSION = 1
DEFAULT_TOPIC_PREFIX = "fleetpulse"
# The consumer groups of the default deployment (the broker's ACLs name them too).
DEFAULT_WORKER_APP_ID = "fleetpulse-worker"  # Faust app id: the workers' group and changelog prefix
DEFAULT_SINK_GROUP = "fleetpulse-sink"
# How long every transition stays on the alert topic before compaction keeps only the latest
# record per fingerprint.
ALERT_HISTORY_S = 7 * 86400.0
# The key of every record on the down-check topic (see ``Topics.downcheck``).
DOWNCHECK_KEY = b"fleet"
# The largest record the dead-letter topic takes (and its producer sends): a data topic takes
# the broker's default of about 1 MiB, and its copy carries a key and headers on top, so any
# record a data topic holds fits here.
DEADLETTER_MAX_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Topics:
    """Topic names for one deployment; the prefix lets tests and tenants stay apart."""

    prefix: str = DEFAULT_TOPIC_PREFIX

    @property
    def metrics(self) -> str:
        return f"{self.prefix}.metrics"

    @property
    def heartbeats(self) -> str:
        return f"{self.prefix}.heartbeats"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def processes(self) -> str:
        return f"{self.prefix}.processes"

    @property
    def logs(self) -> str:
        return f"{self.prefix}.logs"

    @property
    def policies(self) -> str:
        """Compacted: the active policy set (one key), written by ``fleetpulse policy apply``."""
        return f"{self.prefix}.policies"

    @property
    def silences(self) -> str:
        """Compacted: one record per silence id, written by ``fleetpulse silence``."""
        return f"{self.prefix}.silences"

    @property
    def scale(self) -> str:
        """``scale_out`` / ``scale_in`` signals of group rules, for clouds without autoscaling."""
        return f"{self.prefix}.scale"

    @property
    def group_samples(self) -> str:
        """Internal to the workers: hosts' values for group rules, keyed by rule name."""
        return f"{self.prefix}.group-samples"

    @property
    def downcheck(self) -> str:
        """Internal to the workers: the down-checker's host signals, witness reports and ticks.

        Every record carries the one fleet key (``DOWNCHECK_KEY``): telling a partition from an
        ingest outage is a question about the whole fleet, so it is answered in one place.
        """
        return f"{self.prefix}.downcheck"

    @property
    def deadletter(self) -> str:
        """Records a consumer could not decode, with the reason and where they came from."""
        return f"{self.prefix}.deadletter"

    def all(self) -> list[str]:
        """Every data topic the pipeline reads or writes (created up front, see ``kafka_io``)."""
        return [
            self.metrics,
            self.heartbeats,
            self.alerts,
            self.processes,
            self.logs,
            self.scale,
            self.deadletter,
            self.group_samples,
            self.downcheck,
        ]

    def compacted(self) -> list[str]:
        """Control topics holding the latest value per key (created with cleanup.policy=compact)."""
        return [self.policies, self.silences]

    def configs(self, name: str) -> dict[str, str]:
        """The topic configs ``name`` is created with: the one place that says how each topic is kept.

        The alert topic is the changelog of the workers' ``fired`` table, the truth of what was
        announced: deleting it after the broker's retention would forget an alert open for
        longer, so it is compacted too, but only after ``ALERT_HISTORY_S``, so subscribers
        still read every transition of the last week.
        """
        if name == self.alerts:
            return {"cleanup.policy": "compact", "min.compaction.lag.ms": str(int(ALERT_HISTORY_S * 1000))}
        if name in self.compacted():
            return {"cleanup.policy": "compact"}
        if name == self.heartbeats:
            # Stamped by the broker on arrival: the down-checker judges silence on when a beat
            # reached Kafka, never on an agent's clock, even when the worker reads it late.
            return {"message.timestamp.type": "LogAppendTime"}
        if name == self.deadletter:
            return {"max.message.bytes": str(DEADLETTER_MAX_BYTES)}
        return {}  # the broker's defaults: deleted after its retention


# A reject reason is at most this long: reasons quote what they refused, and a reason copied
# into a dead letter's header must never make it too large to produce.
MAX_REASON_CHARS = 200


def capped_reason(reason: str, limit: int = MAX_REASON_CHARS) -> str:
    """``reason`` cut to ``limit`` characters (marked with ``...``): how every message quotes
    what it refused without repeating all of it."""
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."


class DecodeError(ValueError):
    """A record that is not a valid event of this contract; ``str(err)`` is the reason (at most
    :data:`MAX_REASON_CHARS` characters, however much of the record it quotes)."""

    def __init__(self, reason: str) -> None:
        super().__init__(capped_reason(reason))


@dataclass(frozen=True)
class MetricBatch:
    """One sampling cycle of one host: flat ``name -> value`` metrics.

    Names carry units (``cpu_pct``, ``mem_used_bytes``); per-instance metrics append the
    instance after a colon (``disk_used_pct:/var``, ``net_rx_bytes_per_s:eth0``).
    """

    host_id: str
    region: str
    ts: float
    interval_s: float
    metrics: dict[str, float]
    labels: dict[str, str] = field(default_factory=dict)

    TYPE = "metric_batch"


@dataclass(frozen=True)
class Heartbeat:
    """Proof of life from an agent: sequence numbers are continuous within one ``boot_id``.

    It also reports what the agent costs (``agent_cpu_s`` since start, ``agent_rss_bytes``)
    and its delivery counters, so the fleet's monitoring can watch the monitor.
    ``events_dropped`` is every event the agent lost since it started; ``dropped`` splits it
    by why (:data:`DROP_REASONS`; only reasons that happened are present). Heartbeats made
    before ``dropped`` existed decode with it empty.
    """

    host_id: str
    region: str
    boot_id: str
    seq: int
    sent_at: float
    interval_s: float
    agent_version: str
    labels: dict[str, str] = field(default_factory=dict)
    agent_cpu_s: float = 0.0
    agent_rss_bytes: int = 0
    events_sent: int = 0
    events_spooled: int = 0
    events_dropped: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    TYPE = "heartbeat"


# Why an agent lost events (the keys of ``Heartbeat.dropped``).
DROP_REASONS = {
    "spool_full": "the oldest spooled events, dropped to stay under [spool] max_bytes",
    "spool_rejected": "an event larger than [spool] max_bytes",
    "spool_corrupt": "spooled events found damaged on disk",
    "disk_error": "events that could not be written to the spool (ENOSPC, EROFS, EIO...)"
    " or, while it was unwritable, held in memory for the broker",
}


@dataclass(frozen=True)
class PeerProbe:
    """A witness report: agent ``host_id`` tried a TCP connect to peer ``target`` at ``address``.

    Sent on the heartbeat topic when the result changes and as a periodic refresh, so the
    down-checker can tell a host that is silent to the backend but alive (path broken) from
    one that is down.
    """

    host_id: str  # the witness
    region: str
    target: str  # the peer's host id
    address: str  # host:port that was probed
    ok: bool
    at: float
    latency_ms: float = 0.0
    error: str = ""

    TYPE = "peer_probe"


@dataclass(frozen=True)
class ProcessInfo:
    """One process in a top-N list."""

    pid: int
    name: str
    user: str
    cpu_pct: float
    rss_bytes: int
    started_at: float


@dataclass(frozen=True)
class GroupStats:
    """A watched process group at one sample; start times are None when count is 0."""

    count: int
    cpu_pct: float
    rss_bytes: int
    oldest_start: float | None = None
    newest_start: float | None = None


@dataclass(frozen=True)
class ProcessSummary:
    """The process table of one host at one sample, summarised."""

    host_id: str
    region: str
    ts: float
    interval_s: float
    total: int
    by_state: dict[str, int]
    top_cpu: list[ProcessInfo]
    top_rss: list[ProcessInfo]
    groups: dict[str, GroupStats]
    labels: dict[str, str] = field(default_factory=dict)

    TYPE = "process_summary"


@dataclass(frozen=True)
class ProcessEvent:
    """A process of a watched group started or exited (seen between two samples)."""

    host_id: str
    region: str
    ts: float
    group: str
    kind: Literal["start", "exit"]
    pid: int
    name: str
    started_at: float
    labels: dict[str, str] = field(default_factory=dict)

    TYPE = "process_event"


@dataclass(frozen=True)
class LogMatch:
    """One log line that matched a rule; ``excerpt`` is capped, ``offset`` is the line's start."""

    host_id: str
    region: str
    ts: float
    path: str
    offset: int
    rule: str
    severity: str
    excerpt: str
    labels: dict[str, str] = field(default_factory=dict)

    TYPE = "log_match"


@dataclass(frozen=True)
class LogCounts:
    """Matches per rule during one interval; exact even when excerpts are rate-capped."""

    host_id: str
    region: str
    ts: float
    interval_s: float
    counts: dict[str, int]
    labels: dict[str, str] = field(default_factory=dict)

    TYPE = "log_counts"


AlertState = Literal["firing", "resolved"]


@dataclass(frozen=True)
class Alert:
    """A lifecycle transition of one alert, identified by its ``fingerprint``.

    ``event_id`` is deterministic (fingerprint, state, ``started_at``), so a transition
    replayed after a worker crash carries the same id and downstream stores can dedupe.
    """

    fingerprint: str
    rule: str
    state: AlertState
    severity: str
    host_id: str
    region: str
    metric: str
    value: float
    threshold: float
    started_at: float
    at: float
    summary: str
    event_id: str
    labels: dict[str, str] = field(default_factory=dict)
    # The rule kind (metric, process, schedule, log, group) and what this notification is:
    # ``firing`` opens the alert and ``resolved`` closes it (they strictly alternate per
    # fingerprint); ``escalated`` / ``deescalated`` / ``repeat`` update an open alert.
    kind: str = "metric"
    transition: str = ""
    annotations: dict[str, str] = field(default_factory=dict)

    TYPE = "alert"

    @property
    def notice(self) -> str:
        """The transition, defaulting to the state for events written before it existed."""
        return self.transition or self.state


TRANSITIONS = ("firing", "escalated", "deescalated", "repeat", "resolved")


@dataclass(frozen=True)
class ScaleSignal:
    """A group rule asks for more (``scale_out``) or fewer (``scale_in``) hosts in its scope."""

    rule: str
    action: Literal["scale_out", "scale_in"]
    at: float
    value: float
    threshold: float
    hosts: int
    event_id: str
    labels: dict[str, str] = field(default_factory=dict)

    TYPE = "scale"


Event = MetricBatch | Heartbeat | PeerProbe | Alert | ScaleSignal | ProcessSummary | ProcessEvent | LogMatch | LogCounts
_EVENT_CLASSES: tuple[type[Any], ...] = (
    MetricBatch,
    Heartbeat,
    PeerProbe,
    Alert,
    ScaleSignal,
    ProcessSummary,
    ProcessEvent,
    LogMatch,
    LogCounts,
)
_BY_TYPE: dict[str, type[Any]] = {cls.TYPE: cls for cls in _EVENT_CLASSES}


def encode(event: Event) -> bytes:
    """Serialise an event with its type and the schema version."""
    body = asdict(event)
    body["v"] = SCHEMA_VERSION
    body["type"] = event.TYPE
    return orjson.dumps(body)


def decode(data: bytes | bytearray | memoryview | str | None) -> Event:
    """Parse and validate one record; raises :class:`DecodeError` with a reason."""
    if data is None:
        raise DecodeError("empty record (null value)")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise DecodeError(f"expected a JSON object, got {type(body).__name__}")
    version = body.pop("v", None)
    if version != SCHEMA_VERSION:
        raise DecodeError(f"unsupported schema version {version!r} (expected {SCHEMA_VERSION})")
    kind = body.pop("type", None)
    cls = _BY_TYPE.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise DecodeError(f"unknown event type {kind!r}")
    return _VALIDATORS[cls](body)


def decode_as(data: bytes | bytearray | memoryview | str | None, cls: type[Any]) -> Any:
    """Decode and require a given event class (a metrics topic holds only metric batches)."""
    event = decode(data)
    if not isinstance(event, cls):
        raise DecodeError(f"expected {cls.TYPE}, got {type(event).TYPE}")
    return event


# -- validation ------------------------------------------------------------------------------


def _str(body: dict[str, Any], key: str, *, empty_ok: bool = False) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise DecodeError(f"field {key!r} must be a string, got {type(value).__name__}")
    if not value and not empty_ok:
        raise DecodeError(f"field {key!r} must not be empty")
    return value


def _num(value: Any, what: str) -> float:
    # bool is an int subclass; a True metric is a bug upstream, not a 1.0.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError(f"{what} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise DecodeError(f"{what} must be finite, got {number}")
    return number


# Counts, sequence numbers, pids, offsets and byte sizes are never negative, and each must fit
# the unsigned column that stores it: a value a store cannot take is a malformed event here,
# not an insert that fails (and is retried) forever downstream.
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
# Event times are seconds since the epoch; beyond 2286 they are a bug (or milliseconds) upstream.
MAX_EPOCH_S = 10_000_000_000.0


def _int(body: dict[str, Any], key: str, hi: int = UINT64_MAX) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DecodeError(f"field {key!r} must be an integer, got {type(value).__name__}")
    if not 0 <= value <= hi:
        raise DecodeError(f"field {key!r} must be between 0 and {hi}, got {value}")
    return value


def _time(body: dict[str, Any], key: str) -> float:
    value = _num(body.get(key), f"field {key!r}")
    if not 0 <= value < MAX_EPOCH_S:
        raise DecodeError(f"field {key!r} must be seconds since the epoch (0 .. {MAX_EPOCH_S:.0f}), got {value}")
    return value


# A sampling or heartbeat interval: positive (deadlines are multiples of it; 0 or less would
# make every host late at once) and at most a day.
MAX_INTERVAL_S = 86_400.0


def _interval(body: dict[str, Any]) -> float:
    value = _num(body.get("interval_s"), "field 'interval_s'")
    if not 0 < value <= MAX_INTERVAL_S:
        raise DecodeError(f"field 'interval_s' must be more than 0 and at most {MAX_INTERVAL_S:.0f} s, got {value:g}")
    return value


def _opt_num(body: dict[str, Any], key: str, default: float = 0.0) -> float:
    return default if body.get(key) is None else _num(body[key], f"field {key!r}")


def _opt_int(body: dict[str, Any], key: str) -> int:
    return 0 if body.get(key) is None else _int(body, key)


def _obj(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise DecodeError(f"field {key!r} must be an object")
    return value


def _list(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if not isinstance(value, list):
        raise DecodeError(f"field {key!r} must be a list")
    return value


def _labels(body: dict[str, Any], key: str = "labels") -> dict[str, str]:
    labels = body.get(key) or {}
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise DecodeError(f"field {key!r} must be an object of string values")
    return labels


def _metric_batch(body: dict[str, Any]) -> MetricBatch:
    metrics = body.get("metrics")
    if not isinstance(metrics, dict):
        raise DecodeError("field 'metrics' must be an object")
    clean: dict[str, float] = {}
    for name, value in metrics.items():
        if not name:
            raise DecodeError("metric names must not be empty")
        clean[name] = _num(value, f"metric {name!r}")
    return MetricBatch(
        host_id=_str(body, "host_id"),
        region=_str(body, "region"),
        ts=_time(body, "ts"),
        interval_s=_interval(body),
        metrics=clean,
        labels=_labels(body),
    )


def _heartbeat(body: dict[str, Any]) -> Heartbeat:
    return Heartbeat(
        host_id=_str(body, "host_id"),
        region=_str(body, "region"),
        boot_id=_str(body, "boot_id"),
        seq=_int(body, "seq"),
        sent_at=_time(body, "sent_at"),
        interval_s=_interval(body),
        agent_version=_str(body, "agent_version"),
        labels=_labels(body),
        agent_cpu_s=_opt_num(body, "agent_cpu_s"),
        agent_rss_bytes=_opt_int(body, "agent_rss_bytes"),
        events_sent=_opt_int(body, "events_sent"),
        events_spooled=_opt_int(body, "events_spooled"),
        events_dropped=_opt_int(body, "events_dropped"),
        dropped={} if body.get("dropped") is None else _counts(_obj(body, "dropped"), "dropped count", UINT64_MAX),
    )


def _peer_probe(body: dict[str, Any]) -> PeerProbe:
    ok = body.get("ok")
    if not isinstance(ok, bool):
        raise DecodeError(f"field 'ok' must be true or false, got {type(ok).__name__}")
    return PeerProbe(
        host_id=_str(body, "host_id"),
        region=_str(body, "region"),
        target=_str(body, "target"),
        address=_str(body, "address", empty_ok=True),
        ok=ok,
        at=_time(body, "at"),
        latency_ms=_opt_num(body, "latency_ms"),
        error=str(body.get("error") or ""),
    )


def _process_info(raw: Any) -> ProcessInfo:
    if not isinstance(raw, dict):
        raise DecodeError("process entries must be objects")
    return ProcessInfo(
        pid=_int(raw, "pid", UINT32_MAX),
        name=_str(raw, "name", empty_ok=True),
        user=_str(raw, "user", empty_ok=True),
        cpu_pct=_num(raw.get("cpu_pct"), "field 'cpu_pct'"),
        rss_bytes=_int(raw, "rss_bytes"),
        started_at=_time(raw, "started_at"),
    )


def _group_stats(name: str, raw: Any) -> GroupStats:
    if not isinstance(raw, dict):
        raise DecodeError(f"group {name!r} must be an object")
    return GroupStats(
        count=_int(raw, "count", UINT32_MAX),
        cpu_pct=_num(raw.get("cpu_pct"), f"group {name!r} cpu_pct"),
        rss_bytes=_int(raw, "rss_bytes"),
        oldest_start=None if raw.get("oldest_start") is None else _time(raw, "oldest_start"),
        newest_start=None if raw.get("newest_start") is None else _time(raw, "newest_start"),
    )


def _counts(raw: dict[str, Any], what: str, hi: int = UINT32_MAX) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= hi:
            raise DecodeError(f"{what} {key!r} must be a non-negative integer up to {hi}")
        out[key] = value
    return out


def _process_summary(body: dict[str, Any]) -> ProcessSummary:
    return ProcessSummary(
        host_id=_str(body, "host_id"),
        region=_str(body, "region"),
        ts=_time(body, "ts"),
        interval_s=_interval(body),
        total=_int(body, "total", UINT32_MAX),
        by_state=_counts(_obj(body, "by_state"), "state count"),
        top_cpu=[_process_info(p) for p in _list(body, "top_cpu")],
        top_rss=[_process_info(p) for p in _list(body, "top_rss")],
        groups={name: _group_stats(name, g) for name, g in _obj(body, "groups").items()},
        labels=_labels(body),
    )


def _process_event(body: dict[str, Any]) -> ProcessEvent:
    kind = _str(body, "kind")
    if kind not in ("start", "exit"):
        raise DecodeError(f"field 'kind' must be 'start' or 'exit', got {kind!r}")
    return ProcessEvent(
        host_id=_str(body, "host_id"),
        region=_str(body, "region"),
        ts=_time(body, "ts"),
        group=_str(body, "group"),
        kind=kind,  # type: ignore[arg-type]  # narrowed by the check above
        pid=_int(body, "pid", UINT32_MAX),
        name=_str(body, "name", empty_ok=True),
        started_at=_time(body, "started_at"),
        labels=_labels(body),
    )


def _log_match(body: dict[str, Any]) -> LogMatch:
    return LogMatch(
        host_id=_str(body, "host_id"),
        region=_str(body, "region"),
        ts=_time(body, "ts"),
        path=_str(body, "path"),
        offset=_int(body, "offset"),
        rule=_str(body, "rule"),
        severity=_str(body, "severity"),
        excerpt=_str(body, "excerpt", empty_ok=True),
        labels=_labels(body),
    )


def _log_counts(body: dict[str, Any]) -> LogCounts:
    return LogCounts(
        host_id=_str(body, "host_id"),
        region=_str(body, "region"),
        ts=_time(body, "ts"),
        interval_s=_interval(body),
        counts=_counts(_obj(body, "counts"), "count of rule"),
        labels=_labels(body),
    )


def _alert(body: dict[str, Any]) -> Alert:
    state = _str(body, "state")
    if state not in ("firing", "resolved"):
        raise DecodeError(f"field 'state' must be 'firing' or 'resolved', got {state!r}")
    return Alert(
        fingerprint=_str(body, "fingerprint"),
        rule=_str(body, "rule"),
        state=state,  # type: ignore[arg-type]  # narrowed by the check above
        severity=_str(body, "severity"),
        host_id=_str(body, "host_id", empty_ok=True),  # group rules span hosts
        region=_str(body, "region", empty_ok=True),
        metric=_str(body, "metric", empty_ok=True),
        value=_num(body.get("value"), "field 'value'"),
        threshold=_num(body.get("threshold"), "field 'threshold'"),
        started_at=_time(body, "started_at"),
        at=_time(body, "at"),
        summary=_str(body, "summary", empty_ok=True),
        event_id=_str(body, "event_id"),
        labels=_labels(body),
        kind=str(body.get("kind") or "metric"),
        transition=_transition(body),
        annotations=_labels(body, "annotations"),
    )


def _transition(body: dict[str, Any]) -> str:
    transition = body.get("transition") or ""
    if transition and transition not in TRANSITIONS:
        raise DecodeError(f"field 'transition' must be one of {', '.join(TRANSITIONS)}, got {transition!r}")
    if transition == "resolved" and body.get("state") != "resolved":
        raise DecodeError("transition 'resolved' needs state 'resolved'")
    return str(transition)


def _scale(body: dict[str, Any]) -> ScaleSignal:
    action = _str(body, "action")
    if action not in ("scale_out", "scale_in"):
        raise DecodeError(f"field 'action' must be 'scale_out' or 'scale_in', got {action!r}")
    return ScaleSignal(
        rule=_str(body, "rule"),
        action=action,  # type: ignore[arg-type]  # narrowed by the check above
        at=_time(body, "at"),
        value=_num(body.get("value"), "field 'value'"),
        threshold=_num(body.get("threshold"), "field 'threshold'"),
        hosts=_int(body, "hosts"),
        event_id=_str(body, "event_id"),
        labels=_labels(body),
    )


_VALIDATORS: dict[type, Any] = {
    MetricBatch: _metric_batch,
    Heartbeat: _heartbeat,
    PeerProbe: _peer_probe,
    Alert: _alert,
    ScaleSignal: _scale,
    ProcessSummary: _process_summary,
    ProcessEvent: _process_event,
    LogMatch: _log_match,
    LogCounts: _log_counts,
}
