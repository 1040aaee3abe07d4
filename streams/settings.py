"""A worker process's typed settings and the counters it reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from collector.connection import Bootstrap
from collector.contract import DEFAULT_WORKER_APP_ID, Topics
from policies.model import PolicySet
from policies.signing import Verifier


@dataclass
class WorkerSettings:
    """One worker process: its broker, consumer group (``app_id``), topics and initial policy.

    ``policy`` is used until (and unless) the policy topic holds an applied set.
    """

    bootstrap: Bootstrap  # servers and credentials (a plain string: PLAINTEXT)
    topics: Topics
    policy: PolicySet
    app_id: str = DEFAULT_WORKER_APP_ID
    partitions: int = 8
    datadir: Path = field(default_factory=lambda: Path(".fleetpulse/worker"))
    stats_interval_s: float = 10.0
    # How long the group waits for a silent member before giving its partitions away: after
    # a crash, the restarted worker resumes only once the dead member's session expired.
    session_timeout_s: float = 30.0
    # The public keys policy and silence records must be signed with (None: any record is obeyed).
    verifier: Verifier | None = None


@dataclass
class WorkerStats:
    """Counters logged periodically and at shutdown (malformed records are counted here)."""

    events: int = 0
    heartbeats: int = 0
    downcheck_signals: int = 0
    watched: int = 0
    heartbeat_lag_s: float = 0.0  # how far behind the broker the slowest heartbeat partition is read
    malformed: int = 0
    alerts: int = 0
    scale_signals: int = 0
    policy_version: str = ""
    policies_refused: int = 0

    def line(self) -> str:
        return (
            f"events={self.events} heartbeats={self.heartbeats} watched={self.watched}"
            f" heartbeat_lag_s={self.heartbeat_lag_s:.1f}"
            f" downcheck_signals={self.downcheck_signals} malformed={self.malformed} alerts_sent={self.alerts}"
            f" scale_signals={self.scale_signals} policy={self.policy_version or '-'}"
        )
