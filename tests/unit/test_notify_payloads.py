"""What receivers are sent: exact Alertmanager webhook v4 / API v2, Slack, PagerDuty v2 and email bodies."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.contract import Alert
from sinks.notify.config import load_notify_text
from sinks.notify.groups import Flush, Groups
from sinks.notify.payloads import (
    ZERO_TIME,
    alertmanager_alerts,
    email_message,
    json_body,
    pagerduty_dedup_key,
    pagerduty_event,
    rfc3339,
    signature,
    slack_escape,
    slack_message,
    subject,
    webhook_payload,
)
from tests.notify_alerts import alert

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()
KEY = '{}/{severity="critical"}/0:{rule="cpu_hot"}'
A = alert(
    "fa",
    severity="critical",
    started_at=T0,
    summary="cpu_hot: cpu_pct 97.5 on web-1",
    labels={"team": "db"},
    annotations={"runbook": "https://wiki/cpu"},
)
B = alert(
    "fb", "resolved", severity="critical", host_id="web-2", started_at=T0 - 60, at=T0 + 90.25, labels={"team": "db"}
)
A_LABELS = {
    "alertname": "cpu_hot",
    "host_id": "web-1",
    "kind": "metric",
    "metric": "cpu_pct",
    "region": "eu-1",
    "rule": "cpu_hot",
    "severity": "critical",
    "team": "db",
}
B_LABELS = {**A_LABELS, "host_id": "web-2"}
COMMON = {k: v for k, v in A_LABELS.items() if k != "host_id"}


def flush(*alerts: Alert, key: str = KEY) -> Flush:
    return Flush("n1", key, key.split(":")[0], "pager", (("rule", "cpu_hot"),), tuple(alerts), T0 + 120, 1)


def test_times_are_rfc3339_utc_with_go_trimmed_fractions() -> None:
    assert rfc3339(T0) == "2026-12-07T12:00:00Z"
    assert rfc3339(T0 + 90.25) == "2026-12-07T12:01:30.25Z"
    assert rfc3339(0) == "1970-01-01T00:00:00Z"


def test_the_webhook_payload_is_alertmanagers_version_4() -> None:
    payload = webhook_payload(
        flush(B, A), external_url="https://fp.example.org", generator="https://console/alerts/{fingerprint}"
    )
    assert payload == {
        "version": "4",
        "groupKey": KEY,
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "pager",
        "groupLabels": {"rule": "cpu_hot"},
        "commonLabels": COMMON,
        "commonAnnotations": {},
        "externalURL": "https://fp.example.org",
        "alerts": [
            {
                "status": "firing",
                "labels": A_LABELS,
                "annotations": {"runbook": "https://wiki/cpu", "summary": "cpu_hot: cpu_pct 97.5 on web-1"},
                "startsAt": "2026-12-07T12:00:00Z",
                "endsAt": ZERO_TIME,
                "generatorURL": "https://console/alerts/fa",
                "fingerprint": "fa",
            },
            {
                "status": "resolved",
                "labels": B_LABELS,
                "annotations": {"summary": "cpu_hot on web-2"},
                "startsAt": "2026-12-07T11:59:00Z",
                "endsAt": "2026-12-07T12:01:30.25Z",
                "generatorURL": "https://console/alerts/fb",
                "fingerprint": "fb",
            },
        ],
    }
    assert ZERO_TIME == "0001-01-01T00:00:00Z"


def test_max_alerts_keeps_firing_alerts_and_counts_the_rest() -> None:
    payload = webhook_payload(flush(B, A), max_alerts=1)
    assert [a["fingerprint"] for a in payload["alerts"]] == ["fa"]
    assert payload["truncatedAlerts"] == 1
    assert payload["commonLabels"] == COMMON  # over every alert, cut or not


def test_an_all_resolved_webhook_says_resolved() -> None:
    payload = webhook_payload(flush(B))
    assert payload["status"] == "resolved" and payload["commonLabels"] == B_LABELS
    assert payload["commonAnnotations"] == {"summary": "cpu_hot on web-2"}
    assert payload["externalURL"] == "" and payload["alerts"][0]["generatorURL"] == ""


def test_generator_urls_escape_alert_fields() -> None:
    odd = alert("f/1?x", host_id="a b")
    url = webhook_payload(flush(odd), generator="https://c/{host_id}/{fingerprint}")["alerts"][0]["generatorURL"]
    assert url == "https://c/a%20b/f%2F1%3Fx"


def test_the_alertmanager_api_body_lists_postable_alerts() -> None:
    assert alertmanager_alerts(flush(B, A)) == [
        {
            "labels": A_LABELS,
            "annotations": {"runbook": "https://wiki/cpu", "summary": "cpu_hot: cpu_pct 97.5 on web-1"},
            "startsAt": "2026-12-07T12:00:00Z",
            "generatorURL": "",
        },
        {
            "labels": B_LABELS,
            "annotations": {"summary": "cpu_hot on web-2"},
            "startsAt": "2026-12-07T11:59:00Z",
            "endsAt": "2026-12-07T12:01:30.25Z",
            "generatorURL": "",
        },
    ]
    held = alertmanager_alerts(flush(A), firing_ends_at=T0 + 240)
    assert held[0]["endsAt"] == "2026-12-07T12:04:00Z"


def test_the_subject_is_alertmanagers() -> None:
    assert subject(flush(B, A)) == "[FIRING:1] cpu_hot (cpu_hot metric cpu_pct eu-1 critical db)"
    assert subject(flush(B)) == "[RESOLVED] cpu_hot (cpu_hot web-2 metric cpu_pct eu-1 critical db)"
    sneaky = alert("x", rule="r\r\nBcc: evil@example.org")
    assert "\n" not in subject(Flush("n", "k", "{}", "r", (("rule", sneaky.rule),), (sneaky,), T0, 1))


def test_the_slack_message_has_fallback_text_and_blocks() -> None:
    message = slack_message(flush(B, A), channel="#ops", external_url="https://fp.example.org")
    assert message == {
        "text": "[FIRING:1] cpu_hot (cpu_hot metric cpu_pct eu-1 critical db)",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": "[FIRING:1] cpu_hot (cpu_hot metric cpu_pct eu-1 critical db)"},
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*FIRING* `critical` cpu_hot: cpu_pct 97.5 on web-1\n"
                    "cpu_hot · web-1 · eu-1 · since 2026-12-07T12:00:00Z",
                },
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*RESOLVED* `critical` cpu_hot on web-2\n"
                    "cpu_hot · web-2 · eu-1 · ended 2026-12-07T12:01:30.25Z",
                },
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "<https://fp.example.org|FleetPulse>"}]},
        ],
        "channel": "#ops",
    }


def test_slack_text_cannot_make_links_or_mentions() -> None:
    assert slack_escape("<!channel> & <https://x|y>") == "&lt;!channel&gt; &amp; &lt;https://x|y&gt;"
    many = [alert(f"f{i}", started_at=T0 + i) for i in range(30)]
    blocks = slack_message(flush(*many), max_alerts=20)["blocks"]
    assert len(blocks) == 22 and blocks[-1]["elements"][0]["text"] == "and 10 more"


def test_pagerduty_triggers_one_alert_per_group() -> None:
    event = pagerduty_event(flush(B, A), "R0UT1NG", client_url="https://fp.example.org")
    assert event == {
        "routing_key": "R0UT1NG",
        "event_action": "trigger",
        "dedup_key": hashlib.sha256(KEY.encode()).hexdigest(),
        "payload": {
            "summary": "[FIRING:1] cpu_hot (cpu_hot metric cpu_pct eu-1 critical db): cpu_hot: cpu_pct 97.5 on web-1",
            "source": "eu-1",
            "severity": "critical",
            "timestamp": "2026-12-07T12:00:00Z",
            "class": "cpu_hot",
            "group": "eu-1",
            "custom_details": {
                "firing": "critical cpu_hot web-1: cpu_hot: cpu_pct 97.5 on web-1",
                "resolved": "critical cpu_hot web-2: cpu_hot on web-2",
                "num_firing": 1,
                "num_resolved": 1,
                "group_labels": {"rule": "cpu_hot"},
            },
        },
        "client": "FleetPulse",
        "client_url": "https://fp.example.org",
    }


def test_pagerduty_resolves_with_the_same_dedup_key() -> None:
    assert pagerduty_event(flush(B), "K") == {
        "routing_key": "K",
        "event_action": "resolve",
        "dedup_key": pagerduty_dedup_key(KEY),
    }


def test_pagerduty_severity_is_the_worst_firing_one_mapped() -> None:
    warn, info = alert("w", severity="warning"), alert("i", severity="info")
    assert pagerduty_event(flush(warn, info), "K")["payload"]["severity"] == "warning"
    assert pagerduty_event(flush(info), "K", severity_map={"info": "error"})["payload"]["severity"] == "error"
    odd = alert("o", severity="page-me")
    assert pagerduty_event(flush(odd), "K")["payload"]["severity"] == "error"


def test_pagerduty_summaries_are_capped() -> None:
    long = alert("l", summary="x" * 5000)
    assert len(pagerduty_event(flush(long), "K")["payload"]["summary"]) == 1024


def test_email_has_a_subject_a_text_and_an_escaped_html_body() -> None:
    hostile = alert("h", summary="<script>alert(1)</script>", labels={"team": "a&b"}, started_at=T0)
    mail = email_message(flush(hostile), external_url="https://fp.example.org")
    assert mail.subject == "[FIRING:1] cpu_hot (cpu_hot web-1 metric cpu_pct eu-1 warning a&b)"
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html and "a&amp;b" in mail.html
    assert mail.text == (
        "[FIRING:1] cpu_hot (cpu_hot web-1 metric cpu_pct eu-1 warning a&b)\n\n"
        "- [FIRING] cpu_hot\n"
        "  labels:  alertname=cpu_hot, host_id=web-1, kind=metric, metric=cpu_pct, region=eu-1, rule=cpu_hot,"
        " severity=warning, team=a&b\n"
        "  started: 2026-12-07T12:00:00Z\n"
        "  summary: <script>alert(1)</script>\n\n"
        "https://fp.example.org\n"
    )
    assert mail.html.startswith("<html><body><h2>[FIRING:1] cpu_hot (cpu_hot web-1")
    assert '<a href="https://fp.example.org">FleetPulse</a>' in mail.html


def test_webhook_bodies_are_signed_with_hmac_sha256() -> None:
    body = json_body(webhook_payload(flush(A)))
    expected = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert signature(b"k", body) == f"sha256={expected}"


_text = st.text(max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_text, _text, _text, st.booleans()), min_size=1, max_size=6), st.integers(0, 8))
def test_any_alerts_make_json_payloads_for_every_receiver(
    specs: list[tuple[str, str, str, bool]], max_alerts: int
) -> None:
    alerts = [
        alert(
            f"f{i}", "resolved" if done else "firing", summary=s, host_id=h, labels={"x": v}, at=T0 + i, started_at=T0
        )
        for i, (s, h, v, done) in enumerate(specs)
    ]
    f = flush(*alerts)
    payload = webhook_payload(f, max_alerts=max_alerts)
    assert len(payload["alerts"]) + payload["truncatedAlerts"] == len(alerts)
    for body in (payload, alertmanager_alerts(f), slack_message(f, max_alerts=max_alerts), pagerduty_event(f, "K")):
        json_body(body)
    mail = email_message(f)
    assert "\n" not in mail.subject and "\r" not in mail.subject
    assert all(len(b["text"]["text"]) <= 3000 for b in slack_message(f)["blocks"] if b["type"] == "section")


def test_a_config_routes_groups_and_renders_end_to_end() -> None:
    config = load_notify_text(
        """\
route:
  receiver: hook
  group_by: [region]
  group_wait: 10s
  routes:
    - {matchers: ['severity="critical"'], receiver: chat, continue: true}
receivers:
  - {name: hook, webhook: {url: "http://h/x", max_alerts: 1}}
  - {name: chat, slack: {url_env: SLACK_URL}}
"""
    )
    groups = Groups.for_config(config)
    groups.ingest(alert("a", severity="critical", started_at=T0), T0)
    groups.ingest(alert("b", host_id="web-2", started_at=T0 + 1), T0 + 1)
    groups.ingest(alert("c", host_id="web-3", started_at=T0 + 1), T0 + 1)
    (chat,) = groups.due(T0 + 10)  # a matched the child, so not the root: continue is for siblings
    assert (chat.receiver, [a.fingerprint for a in chat.alerts]) == ("chat", ["a"])
    (hook,) = groups.due(T0 + 11)
    payload = webhook_payload(hook, max_alerts=config.receivers["hook"].integration.max_alerts)  # type: ignore[union-attr]
    assert (payload["receiver"], payload["groupKey"], payload["truncatedAlerts"]) == ("hook", '{}:{region="eu-1"}', 1)
    groups.ingest(alert("a", "resolved", severity="critical", started_at=T0, at=T0 + 20), T0 + 20)
    # the chat receiver is not told of resolutions: its group ends without a message
    assert groups.due(T0 + 10 + 300) == [] and list(groups.groups) == ['{}:{region="eu-1"}']
    assert groups.due(T0 + 11 + 300) == []  # hook: nothing new
