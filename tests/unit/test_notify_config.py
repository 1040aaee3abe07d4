"""notify.yaml: what loads, the defaults, and every refusal naming file:line (secrets never echoed)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sinks.notify.config import (
    PAGERDUTY_EVENTS_URL,
    AlertmanagerReceiver,
    EmailReceiver,
    ExecReceiver,
    HttpAuth,
    NotifyConfig,
    NotifyConfigError,
    PagerDutyReceiver,
    Secret,
    SlackReceiver,
    WebhookReceiver,
    load_notify_path,
    load_notify_text,
    parse_matcher,
    read_secret,
)
from sinks.notify.intervals import CalendarWindow, CronWindow
from tests.bad_input import hostile_numbers, hostile_text, json_values, only

FULL = """\
global:
  external_url: https://fleetpulse.example.org
  generator_url: https://console.example.org/alerts/{fingerprint}
route:
  receiver: ops
  group_by: [rule, region]
  group_wait: 10s
  routes:
    - matchers: ['severity="critical"', 'region=~"eu-.*"']
      receiver: pager
      continue: true
      mute_time_intervals: [nights]
      routes:
        - matchers: [rule!=disk_full]
          group_by: ['...']
    - matchers: ['kind!~"log|group"']
      receiver: chat
      repeat_interval: 1h
      active_time_intervals: [office]
receivers:
  - name: ops
    webhook:
      url: https://hooks.example.org/fp
      max_alerts: 5
      bearer_token_file: /run/secrets/hook-token
      hmac_secret_env: HOOK_HMAC
  - name: pager
    pagerduty: {routing_key_env: PD_KEY, severity: {info: warning}}
  - name: chat
    slack: {url_file: /run/secrets/slack-url, channel: "#ops"}
  - name: mail
    email:
      to: [ops@example.org, oncall@example.org]
      from: fleetpulse@example.org
      smarthost: smtp.example.org:587
      auth_username: fleetpulse
      auth_password_file: /run/secrets/smtp
  - name: am
    alertmanager:
      urls: [http://am-0:9093, http://am-1:9093]
      basic_auth: {username: fp, password_env: AM_PASSWORD}
  - name: script
    exec: {command: [/usr/local/bin/page, --quiet], timeout: 5s}
time_intervals:
  - name: nights
    time_intervals:
      - {times: [{start_time: "22:00", end_time: "24:00"}], weekdays: ["monday:friday"]}
  - name: office
    time_intervals:
      - {cron: "0 9 * * 1-5", duration: 8h, timezone: Europe/Berlin}
"""

MINIMAL = """\
route: {receiver: ops}
receivers:
  - name: ops
    webhook: {url: "http://localhost:9000/hook"}
"""


def problems_of(text: str, origin: str = "notify.yaml") -> list[str]:
    with pytest.raises(NotifyConfigError) as caught:
        load_notify_text(text, origin)
    return caught.value.problems


def with_receiver(body: str) -> str:
    return f"route: {{receiver: r}}\nreceivers:\n  - name: r\n{body}"


# --- what loads ---------------------------------------------------------------------------------


def test_the_full_example_loads_every_part() -> None:
    config = load_notify_text(FULL, "notify.yaml")
    assert config.external_url == "https://fleetpulse.example.org"
    assert config.generator_url == "https://console.example.org/alerts/{fingerprint}"
    root = config.route
    assert (root.receiver, root.group_by, root.group_wait_s) == ("ops", ("rule", "region"), 10.0)
    assert root.group_interval_s is None
    pager, chat = root.routes
    assert [(m.label, m.op, m.value) for m in pager.matchers] == [
        ("severity", "=", "critical"),
        ("region", "=~", "eu-.*"),
    ]
    assert pager.continue_matching and pager.mute_time_intervals == ("nights",)
    assert pager.routes[0].group_by == ("...",) and pager.routes[0].receiver is None
    assert [(m.label, m.op, m.value) for m in chat.matchers] == [("kind", "!~", "log|group")]
    assert chat.repeat_interval_s == 3600.0 and chat.active_time_intervals == ("office",)
    assert pager.source == "notify.yaml:9"


def test_receivers_of_every_kind_load_with_their_fields() -> None:
    r = load_notify_text(FULL).receivers
    assert r["ops"].integration == WebhookReceiver(
        url="https://hooks.example.org/fp",
        max_alerts=5,
        auth=HttpAuth(bearer_token=Secret(file="/run/secrets/hook-token")),
        hmac_secret=Secret(env="HOOK_HMAC"),
    )
    assert r["pager"].integration == PagerDutyReceiver(
        routing_key=Secret(env="PD_KEY"),
        severity={"critical": "critical", "warning": "warning", "info": "warning"},
    )
    assert r["chat"].integration == SlackReceiver(url=Secret(file="/run/secrets/slack-url"), channel="#ops")
    assert r["mail"].integration == EmailReceiver(
        to=("ops@example.org", "oncall@example.org"),
        from_addr="fleetpulse@example.org",
        smarthost="smtp.example.org:587",
        auth_username="fleetpulse",
        auth_password=Secret(file="/run/secrets/smtp"),
    )
    assert r["am"].integration == AlertmanagerReceiver(
        urls=("http://am-0:9093", "http://am-1:9093"),
        auth=HttpAuth(basic_username="fp", basic_password=Secret(env="AM_PASSWORD")),
    )
    assert r["script"].integration == ExecReceiver(command=("/usr/local/bin/page", "--quiet"), timeout_s=5.0)
    assert r["pager"].integration.url == PAGERDUTY_EVENTS_URL  # type: ignore[union-attr]


def test_send_resolved_defaults_follow_alertmanager() -> None:
    r = load_notify_text(FULL).receivers
    assert {name: rec.send_resolved for name, rec in r.items()} == {
        "ops": True,
        "pager": True,
        "chat": False,
        "mail": False,
        "am": True,
        "script": True,
    }


def test_time_intervals_take_calendar_and_cron_windows() -> None:
    intervals = load_notify_text(FULL).time_intervals
    assert intervals["nights"].windows == (CalendarWindow(times=((1320, 1440),), weekdays=((1, 5),)),)
    assert intervals["office"].windows == (CronWindow("0 9 * * 1-5", 8 * 3600.0, "Europe/Berlin"),)
    tuesday_2300 = datetime(2026, 12, 8, 23, 0, tzinfo=UTC).timestamp()
    saturday_2300 = datetime(2026, 12, 12, 23, 0, tzinfo=UTC).timestamp()
    assert intervals["nights"].contains(tuesday_2300) and not intervals["nights"].contains(saturday_2300)
    tuesday_1000_berlin = datetime(2026, 12, 8, 9, 0, tzinfo=UTC).timestamp()
    assert intervals["office"].contains(tuesday_1000_berlin) and not intervals["office"].contains(tuesday_2300)


def test_calendar_days_of_month_count_back_from_the_end() -> None:
    config = load_notify_text(
        MINIMAL + "time_intervals:\n  - name: eom\n    time_intervals: [{days_of_month: ['-1'], months: [december]}]\n"
    )
    eom = config.time_intervals["eom"]
    assert eom.contains(datetime(2026, 12, 31, 12, tzinfo=UTC).timestamp())
    assert not eom.contains(datetime(2026, 12, 30, 12, tzinfo=UTC).timestamp())
    assert not eom.contains(datetime(2026, 11, 30, 12, tzinfo=UTC).timestamp())


def test_a_minimal_config_has_alertmanager_defaults_left_to_the_tree() -> None:
    config = load_notify_text(MINIMAL)
    assert config.route.group_by is None and config.route.group_wait_s is None
    assert config.time_intervals == {} and config.external_url == ""


def test_load_notify_path_reads_the_file_and_names_it(tmp_path: Any) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text(MINIMAL + "bogus: 1\n")
    with pytest.raises(NotifyConfigError) as caught:
        load_notify_path(path)
    allowed = "global, receivers, route, time_intervals"
    assert caught.value.problems == [f"{path}:5: unknown key 'bogus' (allowed: {allowed})"]
    with pytest.raises(NotifyConfigError, match="cannot read"):
        load_notify_path(tmp_path / "missing.yaml")


def test_read_secret_takes_a_file_without_its_newline_or_an_env_var() -> None:
    files = {"/run/k": "s3cret\n"}
    assert read_secret(Secret(file="/run/k"), {}, files.__getitem__) == "s3cret"
    assert read_secret(Secret(env="K"), {"K": "v"}, files.__getitem__) == "v"
    assert Secret(file="/run/k").shown() == "file /run/k" and Secret(env="K").shown() == "$K"


# --- matchers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('severity="critical"', ("severity", "=", "critical")),
        ('region=~"eu-.*"', ("region", "=~", "eu-.*")),
        ("rule!=x", ("rule", "!=", "x")),
        ('kind!~"log|group"', ("kind", "!~", "log|group")),
        ('  team = "a \\"b\\" \\\\ c"  ', ("team", "=", 'a "b" \\ c')),
        ('empty=""', ("empty", "=", "")),
    ],
)
def test_matchers_read_alertmanager_syntax(text: str, expected: tuple[str, str, str]) -> None:
    m = parse_matcher(text)
    assert (m.label, m.op, m.value) == expected


def test_regex_matchers_are_anchored_at_both_ends() -> None:
    m = parse_matcher('region=~"eu-.*"')
    assert m.matches({"region": "eu-west"}) and not m.matches({"region": "xeu-west"})
    assert parse_matcher("host!~web").matches({"host": "web-1"})  # "web" must match all of it


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("severity", "cannot read matcher"),
        ('a="b', "no closing"),
        ('a="b"c"', "must be escaped"),
        ('a="\\t"', "unknown escape"),
        ('a=b"c', "must be quoted"),
        ('a=~"(a)\\\\1"', "bad regex"),
        ('a=~"(?=x)"', "bad regex"),
    ],
)
def test_bad_matchers_say_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_matcher(text)


# --- refusals --------------------------------------------------------------------------------------


def test_a_literal_secret_is_refused_without_echoing_it() -> None:
    cases = {
        "    pagerduty: {routing_key: TOPSECRET-1}\n": "'routing_key' may not be written",
        "    webhook: {url: 'http://h/x', bearer_token: TOPSECRET-1}\n": "'bearer_token' may not be written",
        "    webhook: {url: 'http://h/x', hmac_secret: TOPSECRET-1}\n": "'hmac_secret' may not be written",
        "    webhook: {url: 'http://h/x', basic_auth: {username: u, password: TOPSECRET-1}}\n": "'password' may not",
        "    slack: {url: 'https://hooks.slack.com/services/TOPSECRET-1'}\n": "'url' may not be written",
        "    webhook: {url: 'http://u:TOPSECRET-1@h/x'}\n": "holds a password",
        "    email: {to: a@b.c, from: d@e.f, smarthost: 'h:25', auth_username: u, auth_password: TOPSECRET-1}\n": (
            "'auth_password' may not"
        ),
    }
    for body, reason in cases.items():
        problems = problems_of(with_receiver(body))
        assert len(problems) == 1 and reason in problems[0], problems
        assert "TOPSECRET" not in problems[0]
        assert problems[0].startswith("notify.yaml:4: receiver 'r' ")


def test_unknown_keys_are_named_with_their_line() -> None:
    text = MINIMAL.replace("route: {receiver: ops}", "route:\n  receiver: ops\n  group_wiat: 1m")
    assert problems_of(text) == [
        "notify.yaml:3: route: unknown key 'group_wiat' (allowed: active_time_intervals, continue, group_by, "
        "group_interval, group_wait, matchers, mute_time_intervals, receiver, repeat_interval, routes)"
    ]
    assert problems_of(with_receiver("    webhook: {url: 'http://h/x', colour: red}\n"))[0].startswith(
        "notify.yaml:4: receiver 'r' webhook: unknown key 'colour'"
    )


def test_alertmanager_match_and_match_re_point_to_matchers() -> None:
    text = MINIMAL.replace("route: {receiver: ops}", "route:\n  receiver: ops\n  routes:\n    - match: {a: b}")
    assert problems_of(text) == [
        "notify.yaml:4: child route: 'match' is not supported: use matchers: ['label=\"value\"']"
    ]


def test_an_undefined_receiver_and_time_interval_are_errors_at_the_route() -> None:
    text = MINIMAL.replace(
        "route: {receiver: ops}",
        "route:\n  receiver: nobody\n  routes:\n    - {matchers: [a=b], mute_time_intervals: [never]}",
    )
    assert problems_of(text) == [
        "notify.yaml:2: receiver 'nobody' is not defined under 'receivers'",
        "notify.yaml:4: time interval 'never' is not defined under 'time_intervals'",
    ]


def test_a_child_route_needs_matchers_and_the_root_none() -> None:
    child = MINIMAL.replace("route: {receiver: ops}", "route:\n  receiver: ops\n  routes:\n    - {receiver: ops}")
    assert problems_of(child) == ["notify.yaml:4: child route: a child route needs 'matchers' (the alerts it takes)"]
    root = MINIMAL.replace("route: {receiver: ops}", "route: {receiver: ops, matchers: [a=b]}")
    assert problems_of(root) == ["notify.yaml:1: route: the root route takes no 'matchers' (it receives every alert)"]
    no_receiver = MINIMAL.replace("route: {receiver: ops}", "route: {group_by: [a]}")
    assert "the root route needs a 'receiver'" in problems_of(no_receiver)[0]


def test_every_problem_is_reported_not_only_the_first() -> None:
    text = """\
route:
  receiver: ops
  group_wait: soon
  routes:
    - {matchers: ['a=~"("'], receiver: ops}
    - {matchers: [b=c], group_interval: 0s}
receivers:
  - name: ops
    webhook: {url: "ftp://h/x"}
  - name: ops
    exec: {command: []}
"""
    problems = problems_of(text)
    assert [p.split(":")[1] for p in problems] == ["9", "10", "5", "6", "3"], problems
    assert "already used" in problems[1] and "bad regex" in problems[2] and "longer than 0s" in problems[3]


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        ("{receiver: ops, group_by: ['...', rule]}", "stands alone"),
        ("{receiver: ops, group_by: [rule, rule]}", "twice"),
        ("{receiver: ops, group_by: ['not a label']}", "label names"),
        ("{receiver: ops, repeat_interval: 401d}", "longer than the maximum"),
        ("{receiver: ops, group_interval: -5}", "finite number >= 0"),
        ("{receiver: ops, continue: true}", "takes no 'continue'"),
        ("[ops]", "'route' must be a mapping"),
    ],
)
def test_route_values_are_checked(route: str, reason: str) -> None:
    problems = problems_of(MINIMAL.replace("{receiver: ops}", route))
    assert len(problems) == 1 and reason in problems[0], problems
    assert problems[0].startswith("notify.yaml:1: ")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("    webhook: {}\n", "needs one of 'url' or 'url_file'"),
        ("    webhook: {url: 'http://h/x', max_alerts: -1}\n", "whole number"),
        ("    webhook: {url: 'http://h/x', timeout: 1h}\n", "at most 300s"),
        ("    webhook: {url: 'http://h/x', bearer_token_env: 'not valid'}\n", "environment variable name"),
        ("    webhook: {url: 'http://h/x', bearer_token_env: A, bearer_token_file: /f}\n", "not both"),
        ("    pagerduty: {}\n", "needs 'routing_key_file' or 'routing_key_env'"),
        ("    pagerduty: {routing_key_env: K, severity: {critical: page}}\n", "critical, error, warning, info"),
        ("    email: {to: nobody, from: a@b.c, smarthost: 'h:25'}\n", "e-mail addresses"),
        ("    email: {to: a@b.c, from: a@b.c, smarthost: h}\n", "host:port"),
        ("    email: {to: a@b.c, from: a@b.c, smarthost: 'h:25', auth_username: u}\n", "go together"),
        ("    alertmanager: {urls: []}\n", "must not be empty"),
        ("    alertmanager: {urls: ['http://h'], send_resolved: false}\n", "always told"),
        ("    exec: {command: ls}\n", "list of non-empty strings"),
        ("    slack: {url_env: S}\n    webhook: {url: 'http://h'}\n", "exactly one of"),
        ("    sms: {to: '123'}\n", "unknown key 'sms'"),
    ],
)
def test_receiver_fields_are_checked(body: str, reason: str) -> None:
    problems = problems_of(with_receiver(body))
    assert len(problems) == 1 and reason in problems[0], problems
    assert re.match(r"^notify\.yaml:[345]: receiver 'r'", problems[0]), problems


@pytest.mark.parametrize(
    ("window", "reason"),
    [
        ("{times: [{start_time: '10:00', end_time: '09:00'}]}", "must be before"),
        ("{times: [{start_time: '25:00', end_time: '26:00'}]}", "time of day"),
        ("{weekdays: [funday]}", "not a name or a number"),
        ("{days_of_month: ['0']}", "not 0"),
        ("{days_of_month: ['-3:5']}", "not both"),
        ("{months: ['march:january']}", "ends before it starts"),
        ("{location: Mars/Base}", "unknown time zone"),
        ("{cron: 'every day', duration: 1h}", "bad cron"),
        ("{cron: '0 0 * * *'}", "needs a 'duration'"),
        ("{duration: 1h}", "not supported"),
    ],
)
def test_time_interval_windows_are_checked(window: str, reason: str) -> None:
    text = MINIMAL + f"time_intervals:\n  - name: t\n    time_intervals: [{window}]\n"
    problems = problems_of(text)
    assert len(problems) == 1 and reason in problems[0], problems
    assert problems[0].startswith("notify.yaml:7: time interval 't': ")


def test_generator_url_names_only_alert_fields() -> None:
    bad = "global: {generator_url: 'https://c/{value:99999999999}'}\n" + MINIMAL
    assert "may name only" in problems_of(bad)[0]
    assert "may name only" in problems_of("global: {generator_url: 'https://c/{0}'}\n" + MINIMAL)[0]
    assert "not a usable template" in problems_of("global: {generator_url: 'https://c/{'}\n" + MINIMAL)[0]


@pytest.mark.parametrize(
    "text",
    ["", "[]", "route: {receiver: ops}", "receivers: []", "route: {receiver: ops}\nreceivers: 7", "a: [", "&a [*a]"],
)
def test_documents_that_are_not_configs_are_located_problems(text: str) -> None:
    problems = problems_of(text)
    assert problems and all(p.startswith("notify.yaml") for p in problems)


# --- bad input: only NotifyConfigError, always located ----------------------------------------------

_LOCATED = re.compile(r"^fuzz\.yaml(:\d+)?: \S")
_hostile = st.one_of(json_values, hostile_text, hostile_numbers)
VALID: dict[str, Any] = yaml.safe_load(FULL)


def _load(text: str) -> NotifyConfig | None:
    try:
        return load_notify_text(text, "fuzz.yaml")
    except NotifyConfigError as exc:
        assert exc.problems and all(_LOCATED.match(p) for p in exc.problems), exc.problems
        return None
    except Exception as exc:  # the finding
        raise AssertionError(f"{type(exc).__name__} escaped the loader: {exc!r}"[:500]) from exc


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.extend(_paths(value, (*prefix, index)))
    return out


_PATHS = _paths(VALID)[1:]


def _replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {**doc, head: _replaced(doc[head], rest, value)}
    copy = list(doc)
    copy[head] = _replaced(doc[head], rest, value)
    return copy


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_PATHS), _hostile), min_size=1, max_size=3))
def test_any_value_anywhere_in_a_config_gives_only_located_problems(changes: list[tuple[Any, Any]]) -> None:
    doc = VALID
    for path, value in changes:
        try:
            doc = _replaced(doc, path, value)
        except (KeyError, IndexError, TypeError):  # an earlier change removed the path
            continue
    try:
        text = yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        return
    _load(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_a_config_or_located_problems(text: str) -> None:
    _load(text)


@settings(max_examples=200, deadline=None)
@given(st.one_of(hostile_text, st.text(alphabet='ab=!~"\\ .*()|[]', max_size=20)))
def test_any_matcher_text_is_a_matcher_or_a_value_error(text: str) -> None:
    with only(ValueError):
        parse_matcher(text).matches({"a": "x" * 100})


_SECRET_BODIES = [
    "    pagerduty: {{routing_key: {v}}}\n",
    "    webhook: {{url: 'http://h/x', bearer_token: {v}}}\n",
    "    webhook: {{url: 'http://h/x', basic_auth: {{username: u, password: {v}}}}}\n",
    "    email: {{to: a@b.c, from: d@e.f, smarthost: 'h:25', auth_username: u, auth_password: {v}}}\n",
    "    slack: {{url: {v}}}\n",
]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_SECRET_BODIES), st.from_regex(r"[A-Za-z0-9]{12,40}", fullmatch=True))
def test_a_literal_secret_never_appears_in_any_problem(body: str, secret: str) -> None:
    problems = problems_of(with_receiver(body.format(v=secret)))
    assert problems and not any(secret in p for p in problems)
