"""What each receiver is sent for a :class:`~sinks.notify.groups.Flush` (pure builders, no I/O).

* :func:`webhook_payload` — Alertmanager's webhook payload, version ``"4"`` (also the stdin of
  ``exec`` receivers), honouring ``max_alerts`` (the rest counted in ``truncatedAlerts``);
* :func:`alertmanager_alerts` — the body of an Alertmanager ``POST /api/v2/alerts``;
* :func:`slack_message` — a Slack incoming-webhook message (fallback text and blocks);
* :func:`pagerduty_event` — a PagerDuty Events API v2 event, one PagerDuty alert per group;
* :func:`email_message` — subject, plain text and HTML (escaped) of a mail.

Alerts are shown by their label set (:func:`policies.alerts.labels_of`, plus ``alertname`` =
the rule, which Alertmanager tools expect; empty labels left out), and annotations (the
alert's own, plus ``summary``). Firing alerts come first (oldest first), then resolved ones,
so truncation keeps what is still wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson

from collector.contract import Alert
from policies.alerts import labels_of
from policies.model import SEVERITY_RANK
from sinks.notify.config import DEFAULT_PAGERDUTY_SEVERITY
from sinks.notify.groups import Flush

WEBHOOK_VERSION = "4"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time: what Alertmanager sends as a firing alert's endsAt
PAGERDUTY_SUMMARY_CHARS = 1024
SLACK_HEADER_CHARS = 150
SLACK_SECTION_CHARS = 3000
SIGNATURE_HEADER = "X-FleetPulse-Signature"


# --- shared pieces -------------------------------------------------------------------------------


def rfc3339(t: float) -> str:
    """``t`` (epoch seconds) as RFC 3339 in UTC, fractions trimmed as Go prints them."""
    moment = datetime.fromtimestamp(t, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def alert_labels(alert: Alert) -> dict[str, str]:
    """The labels a receiver sees: the routing label set, ``alertname``, no empty values; sorted."""
    labels = {k: v for k, v in labels_of(alert).items() if v}
    labels.setdefault("alertname", alert.rule)
    return dict(sorted(labels.items()))


def alert_annotations(alert: Alert) -> dict[str, str]:
    """The alert's annotations, with its ``summary`` unless an annotation of that name exists; sorted."""
    annotations = dict(alert.annotations)
    if alert.summary:
        annotations.setdefault("summary", alert.summary)
    return dict(sorted(annotations.items()))


def ordered(alerts: Iterable[Alert]) -> list[Alert]:
    """Firing alerts first, then resolved; each part oldest first (fingerprint breaks ties)."""
    return sorted(alerts, key=lambda a: (a.state != "firing", a.started_at, a.fingerprint))


def generator_url(template: str, alert: Alert) -> str:
    """``template`` (a config's ``generator_url``) filled with the alert's fields, URL-escaped."""
    if not template:
        return ""
    fields = {
        name: quote(str(getattr(alert, name)), safe="")
        for name in ("fingerprint", "rule", "host_id", "region", "severity", "kind", "event_id")
    }
    return template.format(**fields)


def _common(dicts: list[dict[str, str]]) -> dict[str, str]:
    if not dicts:
        return {}
    common = dict(dicts[0])
    for d in dicts[1:]:
        common = {k: v for k, v in common.items() if d.get(k) == v}
    return common


def subject(flush: Flush) -> str:
    """Alertmanager's default subject: ``[FIRING:2] <group label values> (<other common values>)``."""
    status = f"FIRING:{len(flush.firing)}" if flush.firing else "RESOLVED"
    group = dict(flush.group_labels)
    common = _common([alert_labels(a) for a in flush.alerts])
    extra = [v for k, v in sorted(common.items()) if k not in group]
    parts = [f"[{status}]", *(v for _, v in sorted(group.items()))]
    if extra:
        parts.append(f"({' '.join(extra)})")
    return _one_line(" ".join(parts))


def _one_line(text: str) -> str:
    """Control characters (a header's CR/LF above all) become spaces."""
    return "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text).strip()


def json_body(payload: Any) -> bytes:
    """The bytes to send (and to sign): compact JSON, keys in the order built."""
    return orjson.dumps(payload)


def signature(secret: bytes, body: bytes) -> str:
    """The ``X-FleetPulse-Signature`` value of a webhook body: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


# --- Alertmanager webhook -------------------------------------------------------------------------


def webhook_alert(alert: Alert, generator: str = "") -> dict[str, Any]:
    """One entry of a webhook payload's ``alerts``."""
    return {
        "status": alert.state,
        "labels": alert_labels(alert),
        "annotations": alert_annotations(alert),
        "startsAt": rfc3339(alert.started_at),
        "endsAt": rfc3339(alert.at) if alert.state == "resolved" else ZERO_TIME,
        "generatorURL": generator_url(generator, alert),
        "fingerprint": alert.fingerprint,
    }


def webhook_payload(
    flush: Flush, *, external_url: str = "", generator: str = "", max_alerts: int = 0
) -> dict[str, Any]:
    """Alertmanager's webhook payload (version 4) of ``flush``; ``max_alerts`` > 0 caps ``alerts``.

    Common labels and annotations are over every alert of the notification, sent or cut.
    """
    alerts = ordered(flush.alerts)
    kept = alerts[:max_alerts] if max_alerts > 0 else alerts
    return {
        "version": WEBHOOK_VERSION,
        "groupKey": flush.group_key,
        "truncatedAlerts": len(alerts) - len(kept),
        "status": flush.status,
        "receiver": flush.receiver,
        "groupLabels": dict(sorted(flush.group_labels)),
        "commonLabels": _common([alert_labels(a) for a in alerts]),
        "commonAnnotations": _common([alert_annotations(a) for a in alerts]),
        "externalURL": external_url,
        "alerts": [webhook_alert(a, generator) for a in kept],
    }


# --- Alertmanager API v2 --------------------------------------------------------------------------


def alertmanager_alerts(
    flush: Flush, *, generator: str = "", firing_ends_at: float | None = None
) -> list[dict[str, Any]]:
    """The body of ``POST /api/v2/alerts``: every alert of ``flush``.

    A resolved alert ends at its resolution. A firing one ends at ``firing_ends_at`` when given
    (Prometheus sends a few resend intervals ahead); without it ``endsAt`` is left out and the
    Alertmanager applies its ``resolve_timeout``, so the sender must post firing alerts again
    within that time.
    """
    body = []
    for alert in ordered(flush.alerts):
        entry: dict[str, Any] = {
            "labels": alert_labels(alert),
            "annotations": alert_annotations(alert),
            "startsAt": rfc3339(alert.started_at),
        }
        if alert.state == "resolved":
            entry["endsAt"] = rfc3339(alert.at)
        elif firing_ends_at is not None:
            entry["endsAt"] = rfc3339(firing_ends_at)
        entry["generatorURL"] = generator_url(generator, alert)
        body.append(entry)
    return body


# --- Slack ----------------------------------------------------------------------------------------


def slack_escape(text: str) -> str:
    """Text for Slack mrkdwn: ``&``, ``<`` and ``>`` escaped (they start links and mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_alert(alert: Alert) -> dict[str, Any]:
    mark = "FIRING" if alert.state == "firing" else "RESOLVED"
    where = " · ".join(x for x in (alert.host_id, alert.region) if x)
    since = f"since {rfc3339(alert.started_at)}" if alert.state == "firing" else f"ended {rfc3339(alert.at)}"
    text = f"*{mark}* `{slack_escape(alert.severity)}` {slack_escape(alert.summary or alert.rule)}\n"
    text += slack_escape(" · ".join(x for x in (alert.rule, where, since) if x))
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cap(text, SLACK_SECTION_CHARS)}}


def slack_message(
    flush: Flush, *, max_alerts: int = 20, channel: str = "", username: str = "", external_url: str = ""
) -> dict[str, Any]:
    """A Slack incoming-webhook message: the subject as fallback ``text``, a header block and a
    section per alert (at most ``max_alerts``; the rest counted in a context line)."""
    title = subject(flush)
    alerts = ordered(flush.alerts)
    kept = alerts[:max_alerts] if max_alerts > 0 else alerts
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cap(title, SLACK_HEADER_CHARS)}},
        *(_slack_alert(a) for a in kept),
    ]
    notes = []
    if len(kept) < len(alerts):
        notes.append(f"and {len(alerts) - len(kept)} more")
    if external_url:
        notes.append(f"<{slack_escape(external_url)}|FleetPulse>")
    if notes:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(notes)}]})
    message: dict[str, Any] = {"text": slack_escape(title), "blocks": blocks}
    if channel:
        message["channel"] = channel
    if username:
        message["username"] = username
    return message


# --- PagerDuty ------------------------------------------------------------------------------------


def pagerduty_dedup_key(group_key: str) -> str:
    """One PagerDuty alert per group: the SHA-256 of the group key (as Alertmanager does)."""
    return hashlib.sha256(group_key.encode("utf-8", "surrogatepass")).hexdigest()


def pagerduty_severity(flush: Flush, severity_map: Mapping[str, str]) -> str:
    """The PagerDuty severity of the worst firing alert (``error`` for one the map lacks)."""
    worst = max((a.severity for a in flush.firing), key=lambda s: SEVERITY_RANK.get(s, 0), default="")
    return severity_map.get(worst, "error")


def _alert_lines(alerts: Iterable[Alert]) -> str:
    return "\n".join(f"{a.severity} {a.rule} {a.host_id or a.region}: {a.summary}".strip() for a in alerts)


def pagerduty_event(
    flush: Flush,
    routing_key: str,
    *,
    severity_map: Mapping[str, str] = DEFAULT_PAGERDUTY_SEVERITY,
    source: str = "",
    client: str = "FleetPulse",
    client_url: str = "",
) -> dict[str, Any]:
    """A PagerDuty Events API v2 event: ``trigger`` while any alert of the group fires (sent
    again when it changes, which updates the PagerDuty alert), ``resolve`` when none does."""
    dedup_key = pagerduty_dedup_key(flush.group_key)
    if not flush.firing:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}
    alerts = ordered(flush.alerts)
    first = alerts[0]
    common = _common([alert_labels(a) for a in alerts])
    summary = subject(flush) + (f": {first.summary}" if first.summary else "")
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": _cap(summary, PAGERDUTY_SUMMARY_CHARS),
            "source": source or common.get("host_id") or common.get("region") or "fleetpulse",
            "severity": pagerduty_severity(flush, severity_map),
            "timestamp": rfc3339(min(a.started_at for a in flush.firing)),
            "class": common.get("rule", ""),
            "group": common.get("region", ""),
            "custom_details": {
                "firing": _alert_lines(flush.firing),
                "resolved": _alert_lines(flush.resolved),
                "num_firing": len(flush.firing),
                "num_resolved": len(flush.resolved),
                "group_labels": dict(sorted(flush.group_labels)),
            },
        },
        "client": client,
    }
    if client_url:
        event["client_url"] = client_url
    return event


# --- email ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmailMessage:
    """A mail's subject (one line) and its two bodies."""

    subject: str
    text: str
    html: str


def _text_alert(alert: Alert) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in alert_labels(alert).items())
    ended = f"\n  ended:   {rfc3339(alert.at)}" if alert.state == "resolved" else ""
    notes = "".join(f"\n  {k}: {v}" for k, v in alert_annotations(alert).items())
    started = rfc3339(alert.started_at)
    return f"- [{alert.state.upper()}] {alert.rule}\n  labels:  {labels}\n  started: {started}{ended}{notes}"


def _html_alert(alert: Alert) -> str:
    e = html.escape
    labels = "".join(f"<li>{e(k)} = {e(v)}</li>" for k, v in alert_labels(alert).items())
    notes = "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in alert_annotations(alert).items())
    ended = f" &middot; ended {e(rfc3339(alert.at))}" if alert.state == "resolved" else ""
    return (
        f"<tr><td><b>{e(alert.state.upper())}</b></td><td><b>{e(alert.rule)}</b> "
        f"&middot; started {e(rfc3339(alert.started_at))}{ended}<ul>{notes}</ul><ul>{labels}</ul></td></tr>"
    )


def email_message(flush: Flush, *, external_url: str = "") -> EmailMessage:
    """The mail of ``flush``: Alertmanager's subject; text and HTML listing every alert
    (firing first), every value HTML-escaped in the HTML part."""
    title = subject(flush)
    alerts = ordered(flush.alerts)
    link = f"\n\n{external_url}" if external_url else ""
    text = f"{title}\n\n" + "\n\n".join(_text_alert(a) for a in alerts) + link + "\n"
    footer = f'<p><a href="{html.escape(external_url)}">FleetPulse</a></p>' if external_url else ""
    body = (
        f"<html><body><h2>{html.escape(title)}</h2><table>"
        + "".join(_html_alert(a) for a in alerts)
        + f"</table>{footer}</body></html>"
    )
    return EmailMessage(title, text, body)
