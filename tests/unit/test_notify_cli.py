"""``fleetpulse notify check|routes|test`` as an operator runs them (subprocesses, no broker)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sinks.notify.config import load_notify_path
from tests.cli import fleetpulse

DEPLOY_EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "notify.yaml"


def test_the_deploy_example_uses_every_receiver_kind_nested_routes_continue_and_time_intervals() -> None:
    config = load_notify_path(DEPLOY_EXAMPLE)
    kinds = {r.kind for r in config.receivers.values()}
    assert kinds == {"webhook", "alertmanager", "slack", "pagerduty", "email", "exec"}
    children = config.route.routes
    assert any(child.routes for child in children)
    assert any(child.continue_matching for child in children)
    assert any(child.mute_time_intervals for c in children for child in c.routes)
    assert any(child.active_time_intervals for child in children)
    assert set(config.time_intervals) == {"nights", "office-hours"}


def test_notify_check_accepts_the_deploy_example_and_summarises_it() -> None:
    done = fleetpulse("notify", "check", str(DEPLOY_EXAMPLE))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{DEPLOY_EXAMPLE}: valid: 8 route(s), 6 receiver(s), 2 time interval(s)"
    assert lines[2] == "  {} -> ops-webhook  group_by=[rule, region]  wait=30s interval=5m repeat=4h"
    assert "      {region=~\"staging-.*\"} -> ops-mail" in done.stdout and "muted in nights" in done.stdout
    assert "  oncall-pagerduty  pagerduty    https://events.pagerduty.com/v2/enqueue" in done.stdout
    assert "(routing key in $PAGERDUTY_ROUTING_KEY)" in done.stdout


def test_notify_check_lists_every_problem_with_file_and_line_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "notify.yaml"
    bad.write_text(
        "route:\n  receiver: nowhere\n  routes:\n    - receiver: ops\n"
        "receivers:\n  - name: ops\n    slack: {url: 'https://hooks.slack.com/services/T/B/SECRETVALUE'}\n"
    )
    done = fleetpulse("notify", "check", str(bad))
    assert done.returncode == 2
    assert f"{bad}:4: child route: a child route needs 'matchers'" in done.stderr
    assert f"{bad}:7:" in done.stderr and "may not be written in the config" in done.stderr
    assert f"{bad}:2: receiver 'nowhere' is not defined" in done.stderr
    assert "SECRETVALUE" not in done.stderr + done.stdout
    assert done.stdout == ""


def test_notify_routes_shows_every_receiver_and_group_an_alert_reaches() -> None:
    done = fleetpulse(
        "notify", "routes", str(DEPLOY_EXAMPLE),
        "-l", "severity=critical", "-l", "rule=host_down", "-l", "region=eu-1", "-l", "host_id=web-7",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "oncall-pagerduty,team-slack,alertmanager-ha"
    assert "  receiver: oncall-pagerduty" in lines
    assert "    group labels: {host_id=\"web-7\", region=\"eu-1\", rule=\"host_down\", severity=\"critical\"}" in lines
    assert '    group key:    {}/{severity="critical"}/1/{rule="host_down"}/1:' in done.stdout
    assert "    group labels: {region=\"eu-1\", rule=\"host_down\"}" in lines
    assert "    muted in:     -  active in: office-hours" in lines


def test_notify_routes_without_a_matching_child_is_the_root() -> None:
    done = fleetpulse("notify", "routes", str(DEPLOY_EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:3] == ["ops-webhook", "  receiver: ops-webhook", "    group key:    {}:{}"]


def test_notify_routes_refuses_a_label_that_is_not_name_value() -> None:
    done = fleetpulse("notify", "routes", str(DEPLOY_EXAMPLE), "--label", "severity")
    assert done.returncode == 2 and "'severity' is not NAME=VALUE" in done.stderr


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def hook_server() -> Iterator[tuple[int, list[tuple[str, dict[str, str], Any]]]]:
    _Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], _Hook.received
    finally:
        server.shutdown()
        server.server_close()


def test_notify_test_sends_a_firing_then_resolved_test_notification(
    tmp_path: Path, hook_server: tuple[int, list[Any]]
) -> None:
    port, received = hook_server
    cfg = tmp_path / "notify.yaml"
    cfg.write_text(f"route: {{receiver: hook}}\nreceivers:\n  - name: hook\n    webhook: {{url: 'http://127.0.0.1:{port}/in'}}\n")
    done = fleetpulse("notify", "test", str(cfg), "hook", "--resolve")
    assert done.returncode == 0, done.stderr
    firing_line, resolved_line = done.stdout.splitlines()
    assert firing_line.startswith("hook (webhook): firing test notification test-")
    assert ": sent after 1 attempt(s) in " in firing_line
    assert resolved_line.startswith("hook (webhook): resolved test notification test-")
    [(path, headers, first), (_, _, second)] = received
    assert path == "/in"
    assert headers["X-FleetPulse-Notification-Id"] == firing_line.split()[5].rstrip(":")
    assert first["version"] == "4" and first["status"] == "firing" and first["receiver"] == "hook"
    assert first["alerts"][0]["labels"]["rule"] == "fleetpulse_test"
    assert second["status"] == "resolved"
    assert first["groupKey"] == second["groupKey"]


def test_notify_test_exits_1_with_the_reason_when_the_receiver_refuses(tmp_path: Path) -> None:
    cfg = tmp_path / "notify.yaml"
    command = json.dumps([sys.executable, "-c", "import sys; sys.stdin.read(); sys.exit('no thanks')"])
    cfg.write_text(f"route: {{receiver: script}}\nreceivers:\n  - name: script\n    exec: {{command: {command}}}\n")
    done = fleetpulse("notify", "test", str(cfg), "script")
    assert done.returncode == 1
    assert "script (exec): firing test notification" in done.stdout
    assert "failed after 1 attempt(s) in" in done.stdout and f"{sys.executable} exited with 1: no thanks" in done.stdout


def test_notify_test_of_an_unknown_receiver_names_the_known_ones(tmp_path: Path) -> None:
    done = fleetpulse("notify", "test", str(DEPLOY_EXAMPLE), "pager")
    assert done.returncode == 2
    assert "no receiver 'pager'" in done.stderr and "oncall-pagerduty" in done.stderr


def test_notify_test_with_a_missing_secret_says_where_it_should_be(tmp_path: Path) -> None:
    done = fleetpulse("notify", "test", str(DEPLOY_EXAMPLE), "oncall-pagerduty")
    assert done.returncode == 1
    assert "failed after 1 attempt(s)" in done.stdout and "secret $PAGERDUTY_ROUTING_KEY is not set" in done.stdout


def test_notify_help_explains_each_action() -> None:
    for action in ("check", "routes", "test"):
        done = fleetpulse("notify", action, "--help")
        assert done.returncode == 0 and "usage: fleetpulse notify" in done.stdout, action
