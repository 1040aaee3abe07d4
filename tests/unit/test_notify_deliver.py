"""Delivery over HTTP to real local receivers: webhook, Alertmanager API, Slack and PagerDuty
bodies and headers field by field; retries, permanent failures, redaction and limits."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from collector.contract import Alert
from fleetpulse.ports import free_port
from sinks.notify.config import NotifyConfig, load_notify_text
from sinks.notify.deliver import NOTIFICATION_ID_HEADER, Deliverer, DeliveryResult, shown_url
from sinks.notify.groups import Flush
from sinks.notify.limits import Limits, RetryPolicy
from sinks.notify.payloads import ZERO_TIME, json_body, pagerduty_dedup_key, rfc3339, signature, webhook_payload
from tests.notify_alerts import alert
from tests.notify_receivers import HttpReceiver

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()
KEY = '{}/{severity="critical"}/0:{rule="cpu_hot"}'
FIRING = alert("fa", severity="critical", started_at=T0, summary="cpu 97.5 on web-1", annotations={"runbook": "rb"})
RESOLVED = alert("fb", "resolved", severity="critical", host_id="web-2", started_at=T0 - 60, at=T0 + 90)
SECRETS = {"HOOK_TOKEN": "tok-s3cret-123", "HOOK_HMAC": "hmac-key", "PD_KEY": "R0UTINGKEY0000000000000000000000"}


def flush(*alerts: Alert, receiver: str = "hook", nid: str = "n-0001") -> Flush:
    return Flush(nid, KEY, KEY.split(":")[0], receiver, (("rule", "cpu_hot"),), alerts or (FIRING,), T0 + 120, 1)


def config(receivers: str) -> NotifyConfig:
    """A config whose root route sends to the first of ``receivers`` (YAML list items)."""
    root = receivers.split("name:", 1)[1].split()[0]
    text = f"""\
global:
  external_url: https://fp.example.org
  generator_url: https://console.example.org/a/{{fingerprint}}
route:
  receiver: {root}
receivers:
{receivers}"""
    return load_notify_text(text)


def run(cfg: NotifyConfig, go: Callable[[Deliverer], Awaitable[Any]], **kwargs: Any) -> Any:
    """``go(deliverer)`` in a fresh event loop; retries wait nothing (recorded in ``sleeps``)."""
    kwargs.setdefault("environ", SECRETS)
    kwargs.setdefault("retry", RetryPolicy(max_attempts=4, base_s=0.5, cap_s=4.0))
    kwargs.setdefault("sleep", _no_sleep)
    kwargs.setdefault("random", lambda: 0.5)

    async def main() -> Any:
        async with Deliverer(cfg, **kwargs) as deliverer:
            return await go(deliverer)

    return asyncio.run(main())


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def deliver_to(rx: HttpReceiver, receivers: str, *flushes: Flush, **kwargs: Any) -> list[DeliveryResult]:
    async def go(deliverer: Deliverer) -> list[DeliveryResult]:
        async with rx:
            cfg_receivers = receivers.replace("PORT", str(rx.port))
            deliverer.config = config(cfg_receivers)
            return [await deliverer.deliver(f) for f in flushes]

    return run(config(receivers.replace("PORT", "1")), go, **kwargs)  # type: ignore[no-any-return]


HOOK = """\
  - name: hook
    webhook:
      url: http://127.0.0.1:PORT/hook
      bearer_token_env: HOOK_TOKEN
      hmac_secret_env: HOOK_HMAC
      max_alerts: 1
      timeout: 2s
"""


def test_webhook_gets_alertmanagers_v4_payload_with_the_id_signature_and_bearer_token() -> None:
    rx = HttpReceiver([200])
    [result] = deliver_to(rx, HOOK, flush(FIRING, RESOLVED))
    assert result.status == "sent" and result.attempts == 1 and result.reason == ""
    [req] = rx.requests
    assert (req.method, req.path) == ("POST", "/hook")
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers[NOTIFICATION_ID_HEADER] == "n-0001"
    assert req.headers["Authorization"] == "Bearer tok-s3cret-123"
    assert req.headers["X-FleetPulse-Signature"] == signature(b"hmac-key", req.body)
    body = req.json()
    assert body["version"] == "4"
    assert body["groupKey"] == KEY
    assert body["truncatedAlerts"] == 1  # max_alerts: 1 keeps the firing one
    assert body["status"] == "firing"
    assert body["receiver"] == "hook"
    assert body["groupLabels"] == {"rule": "cpu_hot"}
    assert body["commonLabels"]["severity"] == "critical" and "host_id" not in body["commonLabels"]
    assert body["externalURL"] == "https://fp.example.org"
    [sent] = body["alerts"]
    assert sent["status"] == "firing"
    assert sent["labels"]["alertname"] == "cpu_hot" and sent["labels"]["host_id"] == "web-1"
    assert sent["annotations"] == {"runbook": "rb", "summary": "cpu 97.5 on web-1"}
    assert sent["startsAt"] == rfc3339(T0) and sent["endsAt"] == ZERO_TIME
    assert sent["generatorURL"] == "https://console.example.org/a/fa"
    assert sent["fingerprint"] == "fa"
    expected = webhook_payload(
        flush(FIRING, RESOLVED),
        external_url="https://fp.example.org",
        generator="https://console.example.org/a/{fingerprint}",
        max_alerts=1,
    )
    assert req.body == json_body(expected)


def test_webhook_with_basic_auth_sends_the_basic_authorization_header() -> None:
    rx = HttpReceiver([204])
    receivers = """\
  - name: hook
    webhook:
      url: http://127.0.0.1:PORT/
      basic_auth: {username: fp, password_env: HOOK_TOKEN}
"""
    [result] = deliver_to(rx, receivers, flush())
    assert result.sent
    assert rx.requests[0].headers["Authorization"] == "Basic " + base64.b64encode(b"fp:tok-s3cret-123").decode()


def test_a_500_then_200_receiver_is_retried_with_jittered_backoff_under_the_same_notification_id() -> None:
    rx = HttpReceiver([500, 503, 200])
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    [result] = deliver_to(rx, HOOK, flush(), sleep=sleep)
    assert result.status == "sent" and result.attempts == 3
    assert sleeps == [0.25, 0.5]  # random()=0.5 of the ceilings 0.5s and 1s
    assert [r.headers[NOTIFICATION_ID_HEADER] for r in rx.requests] == ["n-0001"] * 3
    assert rx.requests[0].body == rx.requests[2].body


def test_429_is_retried_and_the_last_reason_is_kept_when_attempts_run_out() -> None:
    rx = HttpReceiver([429], body="slow down")
    [result] = deliver_to(rx, HOOK, flush(), retry=RetryPolicy(max_attempts=3))
    assert result.status == "retry" and result.attempts == 3
    assert result.reason == f"HTTP 429 from http://127.0.0.1:{rx.port}/hook: slow down"
    assert len(rx.requests) == 3


def test_a_400_receiver_fails_permanently_with_a_capped_reason_without_secrets() -> None:
    echo = "bad request: token tok-s3cret-123 see http://admin:pw@10.0.0.1/x " + "x" * 500
    rx = HttpReceiver([400], body=echo)
    [result] = deliver_to(rx, HOOK, flush())
    assert result.status == "failed" and result.attempts == 1
    assert result.reason.startswith(f"HTTP 400 from http://127.0.0.1:{rx.port}/hook: bad request: token ***")
    assert "tok-s3cret-123" not in result.reason and "admin:pw" not in result.reason
    assert "http://***@10.0.0.1/x" in result.reason
    assert len(result.reason) <= 200
    assert len(rx.requests) == 1


def test_a_redirect_is_not_followed_so_credentials_stay_with_the_configured_host() -> None:
    rx = HttpReceiver([302])
    [result] = deliver_to(rx, HOOK, flush())
    assert result.status == "failed" and "HTTP 302" in result.reason
    assert len(rx.requests) == 1


def test_a_refused_connection_is_retried() -> None:
    port = free_port()
    receivers = f"  - name: hook\n    webhook: {{url: 'http://127.0.0.1:{port}/'}}\n"
    result = run(config(receivers), lambda d: d.deliver(flush()), retry=RetryPolicy(max_attempts=2))
    assert result.status == "retry" and result.attempts == 2
    assert result.reason.startswith(f"cannot reach http://127.0.0.1:{port}/: ClientConnectorError")


def test_a_receiver_slower_than_the_timeout_is_retried() -> None:
    rx = HttpReceiver([200], delay_s=0.4)
    receivers = "  - name: hook\n    webhook: {url: 'http://127.0.0.1:PORT/', timeout: 100ms}\n"
    [result] = deliver_to(rx, receivers, flush(), retry=RetryPolicy(max_attempts=1))
    assert result.status == "retry"
    assert result.reason == f"http://127.0.0.1:{rx.port}/ did not answer within 0.1s"


def test_a_missing_secret_is_a_permanent_failure_that_names_where_it_lives() -> None:
    rx = HttpReceiver([200])
    [result] = deliver_to(rx, HOOK, flush(), environ={"HOOK_HMAC": "k"})
    assert result == DeliveryResult("failed", 1, result.latency_s, "secret $HOOK_TOKEN is not set")
    assert rx.requests == []


def test_an_unknown_receiver_fails_without_an_attempt() -> None:
    rx = HttpReceiver([200])
    [result] = deliver_to(rx, HOOK, flush(receiver="nobody"))
    assert (result.status, result.attempts) == ("failed", 0)
    assert "'nobody' is not defined" in result.reason


def test_alertmanager_gets_api_v2_alerts_at_every_instance_of_the_set() -> None:
    async def go(deliverer: Deliverer) -> tuple[DeliveryResult, list[HttpReceiver]]:
        async with HttpReceiver([200]) as am1, HttpReceiver([200]) as am2:
            deliverer.config = config(
                f"  - name: am\n    alertmanager:\n      urls: ['{am1.url()}', '{am2.url('/am/')}']\n"
                "      bearer_token_env: HOOK_TOKEN\n"
            )
            return await deliverer.deliver(flush(FIRING, RESOLVED, receiver="am")), [am1, am2]

    result, servers = run(config("  - name: hook\n    exec: {command: ['true']}\n"), go)
    assert result.sent
    for server, path in zip(servers, ["/api/v2/alerts", "/am/api/v2/alerts"], strict=True):
        [req] = server.requests
        assert (req.method, req.path) == ("POST", path)
        assert req.headers[NOTIFICATION_ID_HEADER] == "n-0001"
        assert req.headers["Authorization"] == "Bearer tok-s3cret-123"
        firing, resolved = req.json()
        assert firing["labels"]["alertname"] == "cpu_hot" and firing["labels"]["host_id"] == "web-1"
        assert firing["annotations"]["summary"] == "cpu 97.5 on web-1"
        assert firing["startsAt"] == rfc3339(T0) and "endsAt" not in firing
        assert firing["generatorURL"] == "https://console.example.org/a/fa"
        assert resolved["labels"]["host_id"] == "web-2"
        assert resolved["startsAt"] == rfc3339(T0 - 60) and resolved["endsAt"] == rfc3339(T0 + 90)


def test_alertmanager_retry_goes_only_to_the_instances_that_have_not_accepted() -> None:
    async def go(deliverer: Deliverer) -> tuple[DeliveryResult, int, int]:
        async with HttpReceiver([200]) as am1, HttpReceiver([503, 200]) as am2:
            deliverer.config = config(f"  - name: am\n    alertmanager: {{urls: ['{am1.url()}', '{am2.url()}']}}\n")
            result = await deliverer.deliver(flush(receiver="am"))
            return result, len(am1.requests), len(am2.requests)

    result, first, second = run(config("  - name: hook\n    exec: {command: ['true']}\n"), go)
    assert (result.status, result.attempts, first, second) == ("sent", 2, 1, 2)


def test_alertmanager_firing_alerts_end_ahead_when_asked() -> None:
    rx = HttpReceiver([200])
    receivers = "  - name: hook\n    alertmanager: {urls: ['http://127.0.0.1:PORT']}\n"
    [result] = deliver_to(rx, receivers, flush(), alertmanager_ends_after_s=600.0)
    assert result.sent
    assert rx.requests[0].json()[0]["endsAt"] == rfc3339(T0 + 120 + 600)


def test_slack_gets_a_readable_message_and_its_secret_url_never_shows() -> None:
    rx = HttpReceiver([200])
    secret_url = "http://127.0.0.1:PORT/services/T0/B0/XYZsecret"
    receivers = "  - name: hook\n    slack: {url_env: SLACK_URL, channel: '#ops', username: fp}\n"

    async def go(deliverer: Deliverer) -> list[DeliveryResult]:
        async with rx:
            url = secret_url.replace("PORT", str(rx.port))
            deliverer.environ = {"SLACK_URL": url}
            first = await deliverer.deliver(flush(FIRING))
            rx.statuses = [404]
            rx.body = f"no_service for {url}"
            return [first, await deliverer.deliver(flush(FIRING, nid="n-0002"))]

    sent, refused = run(config(receivers), go)
    assert sent.sent
    body = rx.requests[0].json()
    assert rx.requests[0].path == "/services/T0/B0/XYZsecret"
    assert rx.requests[0].headers[NOTIFICATION_ID_HEADER] == "n-0001"
    assert body["channel"] == "#ops" and body["username"] == "fp"
    assert body["text"].startswith("[FIRING:1] cpu_hot")
    assert body["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": body["text"]}}
    assert body["blocks"][1]["type"] == "section" and "*FIRING*" in body["blocks"][1]["text"]["text"]
    assert refused.status == "failed"
    assert refused.reason == "HTTP 404 from the Slack webhook ($SLACK_URL): no_service for ***"


def test_pagerduty_gets_events_v2_trigger_then_resolve_with_one_dedup_key(tmp_path: Any) -> None:
    key_file = tmp_path / "pd-key"
    key_file.write_text(SECRETS["PD_KEY"] + "\n")
    rx = HttpReceiver([202], body='{"status":"success","dedup_key":"x"}')
    receivers = f"""\
  - name: hook
    pagerduty:
      url: http://127.0.0.1:PORT/v2/enqueue
      routing_key_file: {key_file}
      severity: {{critical: error}}
"""
    trigger, resolve = deliver_to(rx, receivers, flush(FIRING), flush(RESOLVED, nid="n-0002"))
    assert trigger.sent and resolve.sent
    first, second = (r.json() for r in rx.requests)
    assert rx.requests[0].path == "/v2/enqueue"
    assert [r.headers[NOTIFICATION_ID_HEADER] for r in rx.requests] == ["n-0001", "n-0002"]
    assert first["routing_key"] == SECRETS["PD_KEY"]
    assert first["event_action"] == "trigger"
    assert first["dedup_key"] == pagerduty_dedup_key(KEY) == second["dedup_key"]
    payload = first["payload"]
    assert payload["summary"].startswith("[FIRING:1] cpu_hot") and payload["summary"].endswith(": cpu 97.5 on web-1")
    assert payload["source"] == "web-1"
    assert payload["severity"] == "error"  # mapped by the receiver's severity table
    assert payload["timestamp"] == rfc3339(T0)
    assert payload["class"] == "cpu_hot" and payload["group"] == "eu-1"
    assert payload["custom_details"]["num_firing"] == 1
    assert payload["custom_details"]["group_labels"] == {"rule": "cpu_hot"}
    assert first["client"] == "FleetPulse" and first["client_url"] == "https://fp.example.org"
    assert second == {"routing_key": SECRETS["PD_KEY"], "event_action": "resolve", "dedup_key": first["dedup_key"]}


def test_pagerduty_rejecting_the_event_never_shows_the_routing_key() -> None:
    answer = '{"status":"invalid event","message":"bad routing_key ' + SECRETS["PD_KEY"] + '"}'
    rx = HttpReceiver([400], body=answer)
    receivers = "  - name: hook\n    pagerduty: {url: 'http://127.0.0.1:PORT/v2/enqueue', routing_key_env: PD_KEY}\n"
    [result] = deliver_to(rx, receivers, flush())
    assert result.status == "failed"
    assert SECRETS["PD_KEY"] not in result.reason and "bad routing_key ***" in result.reason


def test_per_receiver_concurrency_caps_requests_in_flight() -> None:
    rx = HttpReceiver([200], delay_s=0.05)

    async def go(deliverer: Deliverer) -> list[DeliveryResult]:
        async with rx:
            deliverer.config = config(HOOK.replace("PORT", str(rx.port)))
            flushes = [flush(nid=f"n-{i}") for i in range(6)]
            return list(await asyncio.gather(*(deliverer.deliver(f) for f in flushes)))

    results = run(config(HOOK.replace("PORT", "1")), go, limits=Limits(concurrency=2, rate_per_s=1000, burst=10))
    assert all(r.sent for r in results)
    assert rx.most_in_flight == 2
    assert sorted(r.headers[NOTIFICATION_ID_HEADER] for r in rx.requests) == [f"n-{i}" for i in range(6)]


def test_shown_urls_drop_credentials_queries_and_fragments() -> None:
    assert shown_url("https://u:p@hooks.example.org:8443/x/y?token=abc#f") == "https://hooks.example.org:8443/x/y"
    assert shown_url("http://[::1]:9093") == "http://[::1]:9093"


def test_log_lines_of_failed_attempts_never_carry_a_secret(caplog: Any) -> None:
    rx = HttpReceiver([503, 400], body="echo tok-s3cret-123 R0UTINGKEY0000000000000000000000")
    receivers = HOOK + "  - name: pd\n    pagerduty: {url: 'http://127.0.0.1:PORT/', routing_key_env: PD_KEY}\n"
    with caplog.at_level("INFO", logger="sinks.notify.deliver"):
        results = deliver_to(rx, receivers, flush(), flush(receiver="pd", nid="n-0002"))
    assert [r.status for r in results] == ["failed", "failed"]
    assert "event=notify_attempt_failed receiver=hook" in caplog.text
    assert "event=notify_delivery receiver=pd kind=pagerduty" in caplog.text and "status=failed" in caplog.text
    assert "tok-s3cret-123" not in caplog.text and SECRETS["PD_KEY"] not in caplog.text
