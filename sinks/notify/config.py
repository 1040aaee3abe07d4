"""``notify.yaml``: the notifier's routing tree, receivers and time intervals.

The shape follows Alertmanager's configuration, so an operator who knows one reads the other::

    global:
      external_url: https://fleetpulse.example.org     # externalURL of webhook payloads
      generator_url: https://console.example.org/alerts/{fingerprint}
    route:                        # the root: a receiver, no matchers
      receiver: ops
      group_by: [rule, region]    # default: none (one group per route); ['...']: every alert alone
      group_wait: 30s             # defaults as Alertmanager: 30s, 5m, 4h
      group_interval: 5m
      repeat_interval: 4h
      routes:
        - matchers: ['severity="critical"', 'region=~"eu-.*"']
          receiver: pager
          continue: true
          mute_time_intervals: [nights]
    receivers:
      - name: ops
        webhook: {url: https://hooks.example.org/fp, max_alerts: 20, bearer_token_file: /run/secrets/tok}
      - name: pager
        pagerduty: {routing_key_env: PD_ROUTING_KEY}
    time_intervals:
      - name: nights
        time_intervals:
          - {times: [{start_time: "22:00", end_time: "24:00"}], weekdays: ["monday:friday"]}
          - {cron: "0 0 * * *", duration: 6h, timezone: Europe/Berlin}

Every problem is a ``file:line: message`` line of one :class:`NotifyConfigError` (all of them,
not just the first). Secrets (tokens, passwords, routing keys, Slack webhook URLs) come only
from files (``*_file``) or environment variables (``*_env``): a secret written into the file is
an error that names the key and never repeats the value. Reading those files is the service's
job (:func:`read_secret`, with the reader injected).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from collector.contract import capped_reason
from collector.problems import Problem, ProblemsError
from policies.model import LabelMatch, parse_duration
from policies.yaml_lines import LineMapping, load_lines
from sinks.notify import intervals
from sinks.notify.intervals import CalendarWindow, CronWindow, TimeInterval, Window

GROUP_BY_ALL = "..."
DEFAULT_GROUP_WAIT_S = 30.0
DEFAULT_GROUP_INTERVAL_S = 300.0
DEFAULT_REPEAT_INTERVAL_S = 4 * 3600.0
DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 300.0
MAX_ALERTS_LIMIT = 100_000
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
DEFAULT_PAGERDUTY_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}
GENERATOR_FIELDS = ("fingerprint", "rule", "host_id", "region", "severity", "kind", "event_id")
RECEIVER_KINDS = ("webhook", "alertmanager", "slack", "pagerduty", "email", "exec")
ReceiverKind = Literal["webhook", "alertmanager", "slack", "pagerduty", "email", "exec"]

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_MATCHER = re.compile(r"^\s*(?P<label>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>.*?)\s*$", re.DOTALL)
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
_HOSTPORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})$")
_TOP_KEYS = ("global", "route", "receivers", "time_intervals")
_GLOBAL_KEYS = ("external_url", "generator_url")
_ROUTE_KEYS = (
    "receiver",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "matchers",
    "continue",
    "mute_time_intervals",
    "active_time_intervals",
    "routes",
)
_AM_LEGACY = {"match": "matchers: ['label=\"value\"']", "match_re": "matchers: ['label=~\"regex\"']"}


class NotifyConfigError(ProblemsError):
    """One or more problems in a notifier config; ``problems`` holds ``file:line: message`` lines."""


# --- the model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Secret:
    """Where a secret is read from: a file (its content, one trailing newline dropped) or an env var."""

    file: str = ""
    env: str = ""

    def shown(self) -> str:
        """How logs and errors name the secret: where it lives, never what it is."""
        return f"file {self.file}" if self.file else f"${self.env}"


@dataclass(frozen=True)
class HttpAuth:
    """How an HTTP receiver authenticates: a bearer token, basic auth, both or neither."""

    bearer_token: Secret | None = None
    basic_username: str = ""
    basic_password: Secret | None = None


@dataclass(frozen=True)
class WebhookReceiver:
    """POSTs the Alertmanager webhook payload (version 4); ``url`` or ``url_secret``."""

    url: str = ""
    url_secret: Secret | None = None
    max_alerts: int = 0  # 0: every alert; else the rest are counted in truncatedAlerts
    auth: HttpAuth = HttpAuth()
    hmac_secret: Secret | None = None  # signs the body (X-FleetPulse-Signature: sha256=...)
    timeout_s: float = DEFAULT_TIMEOUT_S
    send_resolved: bool = True


@dataclass(frozen=True)
class AlertmanagerReceiver:
    """POSTs alerts to ``/api/v2/alerts`` of each Alertmanager in ``urls`` (all of a cluster)."""

    urls: tuple[str, ...]
    auth: HttpAuth = HttpAuth()
    timeout_s: float = DEFAULT_TIMEOUT_S
    send_resolved: bool = True  # an Alertmanager must hear that an alert ended


@dataclass(frozen=True)
class SlackReceiver:
    """An incoming-webhook message; the webhook URL is a secret (it is the credential)."""

    url: Secret
    channel: str = ""
    username: str = ""
    max_alerts: int = 20
    timeout_s: float = DEFAULT_TIMEOUT_S
    send_resolved: bool = False


@dataclass(frozen=True)
class PagerDutyReceiver:
    """Events API v2: one PagerDuty alert per group, triggered and resolved by its dedup key."""

    routing_key: Secret
    url: str = PAGERDUTY_EVENTS_URL
    severity: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PAGERDUTY_SEVERITY))
    source: str = ""  # default: the group's labels
    client: str = "FleetPulse"
    timeout_s: float = DEFAULT_TIMEOUT_S
    send_resolved: bool = True


@dataclass(frozen=True)
class EmailReceiver:
    """A mail through ``smarthost`` (``host:port``), STARTTLS unless turned off."""

    to: tuple[str, ...]
    from_addr: str
    smarthost: str
    starttls: bool = True
    auth_username: str = ""
    auth_password: Secret | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    send_resolved: bool = False


@dataclass(frozen=True)
class ExecReceiver:
    """Runs ``command`` (argv, no shell) with the webhook payload on stdin, killed after ``timeout_s``."""

    command: tuple[str, ...]
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_alerts: int = 0
    send_resolved: bool = True


Integration = WebhookReceiver | AlertmanagerReceiver | SlackReceiver | PagerDutyReceiver | EmailReceiver | ExecReceiver


@dataclass(frozen=True)
class Receiver:
    """A named destination: one integration of one kind."""

    name: str
    kind: ReceiverKind
    integration: Integration
    source: str = ""

    @property
    def send_resolved(self) -> bool:
        return self.integration.send_resolved


@dataclass(frozen=True)
class RouteConfig:
    """One node of the routing tree as written; ``None`` means "inherit from the parent".

    ``group_by`` of ``("...",)`` groups by every label (each alert its own group).
    Time intervals are not inherited (as in Alertmanager).
    """

    receiver: str | None = None
    group_by: tuple[str, ...] | None = None
    group_wait_s: float | None = None
    group_interval_s: float | None = None
    repeat_interval_s: float | None = None
    matchers: tuple[LabelMatch, ...] = ()
    continue_matching: bool = False
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class NotifyConfig:
    """A loaded ``notify.yaml``."""

    route: RouteConfig
    receivers: Mapping[str, Receiver]
    time_intervals: Mapping[str, TimeInterval] = field(default_factory=dict)
    external_url: str = ""
    generator_url: str = ""  # a template of alert fields: {fingerprint}, {rule}, {host_id}, ...


def read_secret(secret: Secret, environ: Mapping[str, str], read_text: Callable[[str], str]) -> str:
    """The value of ``secret``: ``read_text(path)`` of its file (one trailing newline dropped) or
    its environment variable. ``KeyError``/``OSError`` from the readers pass through, for the
    service to report with :meth:`Secret.shown` (never the value)."""
    if secret.file:
        text = read_text(secret.file)
        return text[:-1] if text.endswith("\n") else text
    return environ[secret.env]


# --- entry points ------------------------------------------------------------------------------


def load_notify_text(text: str, origin: str = "notify.yaml") -> NotifyConfig:
    """Parse one ``notify.yaml``; :class:`NotifyConfigError` lists every problem found."""
    try:
        doc = load_lines(text)
    except Problem as problem:
        raise NotifyConfigError([problem.at(origin)]) from None
    problems: list[str] = []
    config = _document(doc, origin, problems)
    if problems or config is None:
        raise NotifyConfigError(problems or [f"{origin}: the config is empty (it needs 'route' and 'receivers')"])
    return config


def load_notify_path(path: str | Path) -> NotifyConfig:
    """Read and parse ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NotifyConfigError([f"{path}: cannot read: {capped_reason(str(exc))}"]) from None
    return load_notify_text(text, str(path))


# --- the document ------------------------------------------------------------------------------


class _Node:
    """One mapping of the document and helpers turning its keys into values or located problems."""

    def __init__(self, raw: LineMapping, what: str) -> None:
        self.raw, self.what = raw, what

    def fail(self, key: str, message: str) -> Problem:
        return Problem(self.raw.line_of(key), f"{self.what}: {message}" if self.what else message)

    def only(self, allowed: tuple[str, ...], hint: Mapping[str, str] | None = None) -> None:
        for key in map(str, self.raw):
            if key in allowed:
                continue
            shown = capped_reason(repr(key), 40)
            if hint and key in hint:
                raise self.fail(key, f"{shown} is not supported: use {hint[key]}")
            raise self.fail(key, f"unknown key {shown} (allowed: {', '.join(sorted(allowed))})")

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)

    def string(self, key: str, default: str | None = None, *, empty_ok: bool = False) -> str:
        value = self.raw.get(key, default)
        if not isinstance(value, str) or (not value and not empty_ok) or "\x00" in value:
            raise self.fail(key, f"'{key}' must be a non-empty string")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"'{key}' must be true or false")
        return value

    def duration(self, key: str, *, positive: bool = False, limit_s: float | None = None) -> float | None:
        if key not in self.raw:
            return None
        try:
            seconds = parse_duration(self.raw[key])
        except (ValueError, TypeError) as exc:
            raise self.fail(key, f"'{key}': {exc}") from None
        if positive and seconds <= 0:
            raise self.fail(key, f"'{key}' must be longer than 0s")
        if limit_s is not None and seconds > limit_s:
            raise self.fail(key, f"'{key}' must be at most {limit_s:g}s")
        return seconds

    def count(self, key: str, default: int, hi: int) -> int:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= hi:
            raise self.fail(key, f"'{key}' must be a whole number from 0 to {hi}")
        return value

    def strings(self, key: str, pattern: re.Pattern[str] | None = None, *, empty_ok: bool = True) -> tuple[str, ...]:
        value = self.raw.get(key, [])
        ok = isinstance(value, list) and all(isinstance(v, str) and v and "\x00" not in v for v in value)
        if not ok or (pattern is not None and not all(pattern.match(v) for v in value)):
            kind = "names" if pattern is not None else "non-empty strings"
            raise self.fail(key, f"'{key}' must be a list of {kind}")
        if not value and not empty_ok:
            raise self.fail(key, f"'{key}' must not be empty")
        return tuple(value)

    def mapping(self, key: str, what: str) -> _Node:
        value = self.raw.get(key)
        if not isinstance(value, LineMapping):
            raise self.fail(key, f"'{key}' must be a mapping")
        return _Node(value, what)


def _document(doc: Any, origin: str, problems: list[str]) -> NotifyConfig | None:
    if doc is None:
        return None
    if not isinstance(doc, LineMapping):
        problems.append(f"{origin}:1: a notifier config is a mapping of {', '.join(_TOP_KEYS)}")
        return None
    top = _Node(doc, "")
    external_url = generator_url = ""
    try:
        top.only(_TOP_KEYS)
        if "global" in doc:
            external_url, generator_url = _global(top.mapping("global", "global"))
    except Problem as problem:
        problems.append(problem.at(origin))
    declared: set[str] = set()  # names of receivers and intervals, loaded or not (no second error)
    intervals_by_name = _named_section(doc, "time_intervals", origin, _time_interval, problems, declared)
    receiver_names: set[str] = set()
    receivers = _named_section(doc, "receivers", origin, _receiver, problems, receiver_names)
    if "route" not in doc:
        problems.append(f"{origin}:{doc.line}: needs a 'route' (the root of the routing tree)")
        return None
    if not isinstance(doc["route"], LineMapping):
        problems.append(f"{origin}:{doc.line_of('route')}: 'route' must be a mapping")
        return None
    route = _route(doc["route"], origin, problems, root=True)
    if route is None:
        return None
    _check_references(route, receiver_names, declared, origin, problems)
    return NotifyConfig(route, receivers, intervals_by_name, external_url, generator_url)


def _global(node: _Node) -> tuple[str, str]:
    node.only(_GLOBAL_KEYS)
    external = _http_url(node, "external_url") if "external_url" in node.raw else ""
    generator = node.string("generator_url") if "generator_url" in node.raw else ""
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(generator) if name is not None]
    except ValueError as exc:
        raise node.fail("generator_url", f"'generator_url' is not a usable template: {exc}") from None
    for name, spec, conv in fields:
        if name not in GENERATOR_FIELDS or spec or conv:
            raise node.fail(
                "generator_url", f"'generator_url' may name only {{{'}, {'.join(GENERATOR_FIELDS)}}} (no formats)"
            )
    return external, generator


def _named_section(
    doc: LineMapping,
    section: str,
    origin: str,
    build: Callable[[_Node, str], Any],
    problems: list[str],
    names: set[str],
) -> dict[str, Any]:
    """A list of ``name:``d entries -> ``{name: built}``; duplicate and bad names are problems.
    ``names`` gets every well-formed name, of entries that load and entries that do not."""
    raw_list = doc.get(section) or []
    if not isinstance(raw_list, list):
        problems.append(f"{origin}:{doc.line_of(section)}: '{section}' must be a list")
        return {}
    what = section.rstrip("s").replace("_", " ")
    built: dict[str, Any] = {}
    for raw in raw_list:
        if not isinstance(raw, LineMapping):
            problems.append(f"{origin}:{doc.line_of(section)}: each entry of '{section}' must be a mapping")
            continue
        name = raw.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(f"{origin}:{raw.line_of('name')}: every {what} needs a 'name' of letters, digits, _ . -")
            continue
        if name in names:
            problems.append(f"{origin}:{raw.line_of('name')}: {what} name {name!r} is already used")
            continue
        names.add(name)
        try:
            built[name] = build(_Node(raw, f"{what} {name!r}"), f"{origin}:{raw.line}")
        except Problem as problem:
            problems.append(problem.at(origin))
    return built


# --- routes ------------------------------------------------------------------------------------


def _route(raw: LineMapping, origin: str, problems: list[str], *, root: bool) -> RouteConfig | None:
    """One route and its subtree; a bad node is reported and dropped, its siblings still read."""
    node = _Node(raw, "route" if root else "child route")
    children: list[RouteConfig] = []
    raw_children = raw.get("routes") or []
    if not isinstance(raw_children, list) or not all(isinstance(c, LineMapping) for c in raw_children):
        problems.append(f"{origin}:{raw.line_of('routes')}: 'routes' must be a list of routes (mappings)")
        raw_children = []
    for child in raw_children:
        built = _route(child, origin, problems, root=False)
        if built is not None:
            children.append(built)
    try:
        return _route_fields(node, root, tuple(children), f"{origin}:{raw.line}")
    except Problem as problem:
        problems.append(problem.at(origin))
        return None


def _route_fields(node: _Node, root: bool, children: tuple[RouteConfig, ...], source: str) -> RouteConfig:
    node.only(_ROUTE_KEYS, _AM_LEGACY)
    matchers = tuple(_matchers(node))
    if root:
        for key in ("matchers", "continue", "mute_time_intervals", "active_time_intervals"):
            if key in node.raw:
                raise node.fail(key, f"the root route takes no '{key}' (it receives every alert)")
        if "receiver" not in node.raw:
            raise node.fail("receiver", "the root route needs a 'receiver' (where unmatched alerts go)")
    elif not matchers:
        raise node.fail("matchers", "a child route needs 'matchers' (the alerts it takes)")
    group_by: tuple[str, ...] | None = None
    if "group_by" in node.raw:
        group_by = node.strings("group_by")
        if GROUP_BY_ALL in group_by and len(group_by) > 1:
            raise node.fail("group_by", "'...' groups by every label and stands alone in 'group_by'")
        if group_by != (GROUP_BY_ALL,) and not all(_LABEL.match(g) for g in group_by):
            raise node.fail("group_by", "'group_by' is a list of label names, or ['...']")
        if len(set(group_by)) != len(group_by):
            raise node.fail("group_by", "'group_by' names a label twice")
    return RouteConfig(
        receiver=node.string("receiver") if "receiver" in node.raw else None,
        group_by=group_by,
        group_wait_s=node.duration("group_wait"),
        group_interval_s=node.duration("group_interval", positive=True),
        repeat_interval_s=node.duration("repeat_interval", positive=True),
        matchers=matchers,
        continue_matching=node.flag("continue", False),
        mute_time_intervals=node.strings("mute_time_intervals", _NAME),
        active_time_intervals=node.strings("active_time_intervals", _NAME),
        routes=children,
        source=source,
    )


def _matchers(node: _Node) -> list[LabelMatch]:
    if "matchers" not in node.raw:
        return []
    raw = node.raw["matchers"]
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(m, str) for m in raw):
        raise node.fail("matchers", "'matchers' is a list of strings like 'severity=\"critical\"'")
    out = []
    for text in raw:
        try:
            out.append(parse_matcher(text))
        except ValueError as exc:
            raise node.fail("matchers", str(exc)) from None
    return out


def parse_matcher(text: str) -> LabelMatch:
    """Alertmanager's matcher syntax: ``name="value"``, ``name!=value``, ``name=~"re"``, ``name!~re``.

    A value may be double-quoted (with ``\\"``, ``\\\\`` and ``\\n`` escapes) or bare; regexes
    are RE2 and match the whole value (anchored, as in Alertmanager). ``ValueError`` says why not.
    """
    shown = capped_reason(repr(text), 60)
    match = _MATCHER.match(text)
    if not match:
        raise ValueError(f'cannot read matcher {shown} (use name="value", name!="value", name=~"re", name!~"re")')
    value = match["value"]
    if value.startswith('"'):
        value = _unquote(value, shown)
    elif '"' in value:
        raise ValueError(f"matcher {shown}: a value with '\"' in it must be quoted and escaped")
    try:
        return LabelMatch(match["label"], match["op"], value)  # type: ignore[arg-type]  # op is one of the four
    except ValueError as exc:
        raise ValueError(f"matcher {shown}: bad regex: {capped_reason(str(exc))}") from None


def _unquote(quoted: str, shown: str) -> str:
    if len(quoted) < 2 or not quoted.endswith('"'):
        raise ValueError(f"matcher {shown}: the quoted value has no closing '\"'")
    out: list[str] = []
    chars = iter(quoted[1:-1])
    for ch in chars:
        if ch == '"':
            raise ValueError(f"matcher {shown}: a '\"' inside a quoted value must be escaped as \\\"")
        if ch != "\\":
            out.append(ch)
            continue
        escaped = next(chars, "")
        if escaped not in ('"', "\\", "n"):
            raise ValueError(f"matcher {shown}: unknown escape '\\{escaped}' (use \\\" \\\\ or \\n)")
        out.append("\n" if escaped == "n" else escaped)
    return "".join(out)


def _check_references(
    route: RouteConfig,
    receivers: set[str],
    time_intervals: set[str],
    origin: str,
    problems: list[str],
) -> None:
    """Every receiver and time interval a route names is defined (reported at the route's line)."""
    pending = [route]
    while pending:
        node = pending.pop()
        pending.extend(node.routes)
        where = node.source or origin
        if node.receiver is not None and node.receiver not in receivers:
            shown = capped_reason(repr(node.receiver), 60)
            problems.append(f"{where}: receiver {shown} is not defined under 'receivers'")
        for name in (*node.mute_time_intervals, *node.active_time_intervals):
            if name not in time_intervals:
                problems.append(f"{where}: time interval {name!r} is not defined under 'time_intervals'")


# --- receivers ---------------------------------------------------------------------------------


def _receiver(node: _Node, source: str) -> Receiver:
    node.only(("name", *RECEIVER_KINDS))
    kinds = [k for k in RECEIVER_KINDS if k in node.raw]
    if len(kinds) != 1:
        found = f" (found {', '.join(kinds)})" if kinds else ""
        raise node.fail("name", f"a receiver has exactly one of {', '.join(RECEIVER_KINDS)}{found}")
    kind = kinds[0]
    body = node.mapping(kind, f"{node.what} {kind}")
    build = _BUILDERS[kind]
    return Receiver(node.raw["name"], kind, build(body), source)  # type: ignore[arg-type]  # kind is a ReceiverKind


def _secret(node: _Node, name: str, *, required: bool) -> Secret | None:
    """``<name>_file`` or ``<name>_env``; ``<name>`` itself (a literal secret) is refused unseen."""
    if name in node.raw:
        raise node.fail(
            name,
            f"'{name}' may not be written in the config (it is a secret): "
            f"use '{name}_file' (a file holding it) or '{name}_env' (an environment variable)",
        )
    has_file, has_env = f"{name}_file" in node.raw, f"{name}_env" in node.raw
    if has_file and has_env:
        raise node.fail(f"{name}_env", f"give '{name}_file' or '{name}_env', not both")
    if has_file:
        return Secret(file=node.string(f"{name}_file"))
    if has_env:
        env = node.string(f"{name}_env")
        if not _ENV.match(env):
            raise node.fail(f"{name}_env", f"'{name}_env' must be an environment variable name")
        return Secret(env=env)
    if required:
        raise node.fail(name, f"needs '{name}_file' or '{name}_env'")
    return None


def _secret_keys(*names: str) -> tuple[str, ...]:
    return tuple(key for name in names for key in (name, f"{name}_file", f"{name}_env"))


def _http_url(node: _Node, key: str, value: Any = None) -> str:
    url = node.string(key) if value is None else value
    if not isinstance(url, str) or not url:
        raise node.fail(key, f"'{key}' must be a list of http(s) URLs")
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        raise node.fail(key, f"'{key}' is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise node.fail(key, f"'{key}' must be an http:// or https:// URL with a host")
    if has_password:
        raise node.fail(key, f"'{key}' holds a password: use 'basic_auth' with 'password_file' or 'password_env'")
    return url


def _timeout(node: _Node) -> float:
    return node.duration("timeout", positive=True, limit_s=MAX_TIMEOUT_S) or DEFAULT_TIMEOUT_S


def _auth(node: _Node) -> HttpAuth:
    bearer = _secret(node, "bearer_token", required=False)
    if "basic_auth" not in node.raw:
        return HttpAuth(bearer_token=bearer)
    basic = node.mapping("basic_auth", f"{node.what} basic_auth")
    basic.only(("username", *_secret_keys("password")))
    if bearer is not None:
        raise node.fail("basic_auth", "give 'bearer_token_*' or 'basic_auth', not both")
    return HttpAuth(None, basic.string("username"), _secret(basic, "password", required=True))


_HTTP_KEYS = ("timeout", "basic_auth", "send_resolved", *_secret_keys("bearer_token"))


def _webhook(node: _Node) -> WebhookReceiver:
    node.only(("url", "url_file", "max_alerts", *_HTTP_KEYS, *_secret_keys("hmac_secret")))
    if ("url" in node.raw) == ("url_file" in node.raw):
        raise node.fail("url", "needs one of 'url' or 'url_file'")
    return WebhookReceiver(
        url=_http_url(node, "url") if "url" in node.raw else "",
        url_secret=Secret(file=node.string("url_file")) if "url_file" in node.raw else None,
        max_alerts=node.count("max_alerts", 0, MAX_ALERTS_LIMIT),
        auth=_auth(node),
        hmac_secret=_secret(node, "hmac_secret", required=False),
        timeout_s=_timeout(node),
        send_resolved=node.flag("send_resolved", True),
    )


def _alertmanager(node: _Node) -> AlertmanagerReceiver:
    node.only(("urls", *_HTTP_KEYS))
    if "send_resolved" in node.raw:
        raise node.fail("send_resolved", "an Alertmanager is always told when an alert ends")
    urls = node.strings("urls", empty_ok=False)
    return AlertmanagerReceiver(tuple(_http_url(node, "urls", u) for u in urls), _auth(node), _timeout(node))


def _slack(node: _Node) -> SlackReceiver:
    node.only(("url", "url_file", "url_env", "channel", "username", "max_alerts", "timeout", "send_resolved"))
    url = _secret(node, "url", required=True)
    assert url is not None  # required
    return SlackReceiver(
        url=url,
        channel=node.string("channel", "", empty_ok=True),
        username=node.string("username", "", empty_ok=True),
        max_alerts=node.count("max_alerts", 20, 45),  # Slack takes 50 blocks; 5 are the header
        timeout_s=_timeout(node),
        send_resolved=node.flag("send_resolved", False),
    )


def _pagerduty(node: _Node) -> PagerDutyReceiver:
    node.only(("url", "severity", "source", "client", "timeout", "send_resolved", *_secret_keys("routing_key")))
    key = _secret(node, "routing_key", required=True)
    assert key is not None  # required
    severity = dict(DEFAULT_PAGERDUTY_SEVERITY)
    if "severity" in node.raw:
        mapping = node.get("severity")
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and v in PAGERDUTY_SEVERITIES for k, v in mapping.items()
        ):
            raise node.fail("severity", f"'severity' maps alert severities to one of {', '.join(PAGERDUTY_SEVERITIES)}")
        severity.update(mapping)
    return PagerDutyReceiver(
        routing_key=key,
        url=_http_url(node, "url") if "url" in node.raw else PAGERDUTY_EVENTS_URL,
        severity=severity,
        source=node.string("source", "", empty_ok=True),
        client=node.string("client", "FleetPulse"),
        timeout_s=_timeout(node),
        send_resolved=node.flag("send_resolved", True),
    )


_PASSWORD_KEYS = _secret_keys("auth_password")


def _email(node: _Node) -> EmailReceiver:
    node.only(("to", "from", "smarthost", "starttls", "auth_username", "timeout", "send_resolved", *_PASSWORD_KEYS))
    to = node.get("to")
    to_list = (to,) if isinstance(to, str) else node.strings("to", empty_ok=False)
    from_addr = node.string("from")
    for address, key in [*((a, "to") for a in to_list), (from_addr, "from")]:
        if not _EMAIL.match(address) or any(c in address for c in "\r\n,"):
            raise node.fail(key, f"'{key}' must be e-mail addresses like ops@example.org")
    smarthost = node.string("smarthost")
    hostport = _HOSTPORT.match(smarthost)
    if not hostport or not 0 < int(hostport["port"]) < 65536:
        raise node.fail("smarthost", "'smarthost' must be host:port, e.g. smtp.example.org:587")
    password = _secret(node, "auth_password", required=False)
    username = node.string("auth_username", "", empty_ok=True)
    if (password is None) != (not username):
        raise node.fail("auth_username", "'auth_username' and 'auth_password_*' go together")
    return EmailReceiver(
        to=tuple(to_list),
        from_addr=from_addr,
        smarthost=smarthost,
        starttls=node.flag("starttls", True),
        auth_username=username,
        auth_password=password,
        timeout_s=_timeout(node),
        send_resolved=node.flag("send_resolved", False),
    )


def _exec(node: _Node) -> ExecReceiver:
    node.only(("command", "timeout", "max_alerts", "send_resolved"))
    return ExecReceiver(
        command=node.strings("command", empty_ok=False),
        timeout_s=_timeout(node),
        max_alerts=node.count("max_alerts", 0, MAX_ALERTS_LIMIT),
        send_resolved=node.flag("send_resolved", True),
    )


_BUILDERS: dict[str, Callable[[_Node], Integration]] = {
    "webhook": _webhook,
    "alertmanager": _alertmanager,
    "slack": _slack,
    "pagerduty": _pagerduty,
    "email": _email,
    "exec": _exec,
}


# --- time intervals ----------------------------------------------------------------------------

_CALENDAR_KEYS = ("times", "weekdays", "days_of_month", "months", "years", "location")


def _time_interval(node: _Node, source: str) -> TimeInterval:
    node.only(("name", "time_intervals"))
    raw = node.get("time_intervals")
    if not isinstance(raw, list) or not raw or not all(isinstance(w, LineMapping) for w in raw):
        raise node.fail("time_intervals", "'time_intervals' is a non-empty list of windows (mappings)")
    windows = tuple(_window(_Node(w, node.what)) for w in raw)
    return TimeInterval(node.raw["name"], windows, source)


def _window(node: _Node) -> Window:
    if "cron" in node.raw:
        node.only(("cron", "duration", "timezone"))
        expr, timezone = node.string("cron"), node.string("timezone", "UTC")
        try:
            intervals.check_cron(expr, timezone)
        except ValueError as exc:
            raise node.fail("cron", capped_reason(str(exc))) from None
        duration = node.duration("duration", positive=True)
        if duration is None:
            raise node.fail("cron", "a cron window needs a 'duration'")
        return CronWindow(expr, duration, timezone)
    node.only(_CALENDAR_KEYS, {"duration": "'cron' with 'duration', or 'times'"})
    timezone = node.string("location", "UTC")
    try:
        intervals.check_timezone(timezone)
        return CalendarWindow(
            times=tuple(_times(node)),
            weekdays=_spans(node, "weekdays"),
            days_of_month=_spans(node, "days_of_month"),
            months=_spans(node, "months"),
            years=_spans(node, "years"),
            timezone=timezone,
        )
    except ValueError as exc:
        raise node.fail("location", capped_reason(str(exc))) from None


def _times(node: _Node) -> list[intervals.Span]:
    raw = node.get("times", [])
    if not isinstance(raw, list):
        raise node.fail("times", "'times' is a list of {start_time: HH:MM, end_time: HH:MM}")
    out = []
    for item in raw:
        if not isinstance(item, LineMapping) or set(map(str, item)) != {"start_time", "end_time"}:
            raise node.fail("times", "'times' is a list of {start_time: HH:MM, end_time: HH:MM}")
        start, end = item["start_time"], item["end_time"]
        if not isinstance(start, str) or not isinstance(end, str):
            raise Problem(item.line, f'{node.what}: times are quoted strings like "09:00"')
        try:
            out.append(intervals.parse_time_range(start, end))
        except ValueError as exc:
            raise Problem(item.line, f"{node.what}: {capped_reason(str(exc))}") from None
    return out


def _spans(node: _Node, key: str) -> tuple[intervals.Span, ...]:
    raw = node.get(key, [])
    if not isinstance(raw, list):
        raise node.fail(key, f"'{key}' is a list of values or ranges 'a:b'")
    try:
        return tuple(intervals.parse_span(item, key) for item in raw)
    except ValueError as exc:
        raise node.fail(key, capped_reason(str(exc))) from None
