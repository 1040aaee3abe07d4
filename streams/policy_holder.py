"""The worker's live policy: the evaluator, the suppressor, and what the control topics change.

The policy set, silences and the fleet's firing alerts (inhibition sources) come from a
:class:`~streams.control_feed.ControlFeed` every worker reads in full. A policy set that does
not load is refused with its ``file:line`` problems and the last good set stays.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiokafka.structs import ConsumerRecord

from collector.contract import Alert, DecodeError, decode_as
from policies.alerts import labels_of
from policies.control import POLICY_KEY, ControlError, PublishedPolicy, decode_silence, format_matcher
from policies.downcheck import DownCheckSettings
from policies.engine import Evaluator
from policies.lifecycle import AnnouncedLookup
from policies.loader import PolicyError, load_policy_texts
from policies.model import PolicySet
from policies.signing import Verifier
from policies.suppress import Suppressor
from streams.settings import WorkerStats

log = logging.getLogger(__name__)



class PolicyHolder:
    """The evaluator and the live policy; applies published sets, keeps the last good one.

    ``announced`` is where the truth about published alerts lives (the worker's ``fired``
    table, see :class:`~streams.context.WorkerContext`).
    """

    def __init__(
        self,
        policy: PolicySet,
        stats: WorkerStats,
        announced: AnnouncedLookup | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        self.evaluator = Evaluator(policy, announced=announced)
        self.stats = stats
        # With trusted keys, only records they signed are obeyed (see policies.signing).
        self.verifier = verifier
        self.applied_at = float("-inf")  # of the published set in force: an older one is a replay
        stats.policy_version = policy.version
        # group rule -> the metric it read, for group rules a later set removed: their open
        # alerts are closed by the worker holding the group's state (see streams.group_rules)
        self.retired_groups: dict[str, str] = {}

    @property
    def suppressor(self) -> Suppressor:
        return self.evaluator.suppressor

    def downcheck_for(self, host_id: str, region: str, labels: Mapping[str, str]) -> DownCheckSettings:
        """The live policy's down-check settings of a host (or, host id empty, of a region)."""
        return self.evaluator.policy.downcheck_for(host_id, region, labels)

    def muted(self, alert: Alert) -> str | None:
        """Why a silence, maintenance window or inhibition holds this alert back (or None):
        matched against the label set every alert is matched by (:func:`~policies.alerts.labels_of`)."""
        return self.suppressor.reason(labels_of(alert), alert.at, alert.fingerprint)

    def _unsigned(self, record: ConsumerRecord) -> str | None:
        if self.verifier is None:
            return None
        return self.verifier.problem(record.topic, record.key or b"", record.value, record.headers)

    def on_policy(self, record: ConsumerRecord) -> None:
        if record.key != POLICY_KEY or record.value is None:
            return
        why = self._unsigned(record)
        if why is not None:
            self.stats.policies_refused += 1
            log.error(
                "event=policy_refused reason=signature offset=%d keeping=%s detail=%r",
                record.offset,
                self.evaluator.policy.version,
                why,
            )
            return
        try:
            published = PublishedPolicy.decode(record.value)
            policy = load_policy_texts(published.files)
        except (ControlError, PolicyError) as exc:
            self.stats.policies_refused += 1
            problems = exc.problems if isinstance(exc, PolicyError) else [str(exc)]
            log.error(
                "event=policy_refused offset=%d keeping=%s problems=%d\n  %s",
                record.offset,
                self.evaluator.policy.version,
                len(problems),
                "\n  ".join(problems),
            )
            return
        if published.applied_at < self.applied_at:
            self.stats.policies_refused += 1
            log.error(
                "event=policy_refused reason=stale offset=%d keeping=%s detail=%r",
                record.offset,
                self.evaluator.policy.version,
                f"applied at {published.applied_at:.3f}, before the set in force: a replayed record",
            )
            return
        self.applied_at = published.applied_at
        if policy.version == self.evaluator.policy.version:
            return
        kept = {r.name for r in policy.group_rules}
        self.retired_groups.update({r.name: r.metric for r in self.evaluator.policy.group_rules if r.name not in kept})
        for name in kept:
            self.retired_groups.pop(name, None)
        self.evaluator.policy = policy
        self.stats.policy_version = policy.version
        log.info(
            "event=policy_applied version=%s rules=%d applied_by=%s",
            policy.version,
            len(policy),
            published.applied_by or "-",
        )

    def on_silence(self, record: ConsumerRecord) -> None:
        sid = (record.key or b"").decode(errors="replace")
        why = self._unsigned(record)
        if why is not None:
            log.error("event=silence_refused reason=signature id=%s detail=%r", sid, why)
            return
        if record.value is None:
            self.suppressor.put_silence(None, sid)
            return
        try:
            silence = decode_silence(record.value)
        except ControlError as exc:
            log.warning("event=silence_unreadable id=%s reason=%r", sid, str(exc))
            return
        self.suppressor.put_silence(silence, sid)
        # Who muted what, in the worker's own log: the audit trail of every silence it obeys.
        log.info(
            "event=silence_put id=%s matchers=%r ends_at=%.0f by=%s",
            sid,
            " ".join(format_matcher(m) for m in silence.matchers),
            silence.ends_at,
            silence.created_by or "-",
        )

    def on_alert(self, record: ConsumerRecord) -> None:
        """Every firing alert of the fleet is a possible inhibition source."""
        try:
            alert: Alert = decode_as(record.value, Alert)
        except DecodeError:
            return
        labels = labels_of(alert)
        self.suppressor.note_firing(alert.fingerprint, labels if alert.state == "firing" else None)
