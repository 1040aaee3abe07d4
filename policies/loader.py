"""Load and validate policy files (YAML); every error names ``file:line`` and what to fix.

A policy file may hold ``rules``, ``maintenance`` and ``inhibit`` lists. A rule's kind is
given by the key that introduces it (``policies/examples/`` shows each in use):

* ``when: "cpu_pct > 90 for 60s"`` or ``metric:`` with ``max``/``min`` — a metric rule;
  each side is a number (with ``severity``) or ``{warning: 80, critical: 95}``; optional
  ``agg`` (last/avg/min/max/p95) over ``window``, ``for``, ``hysteresis`` (a margin) or
  ``recover`` (explicit points), ``scope``, ``labels``, ``annotations``, ``summary``,
  ``renotify``, ``flap``;
* ``process: nginx`` with ``count``, ``cpu_pct``, ``rss_bytes`` min/max over ``window``;
* ``schedule: "0 2 * * *"`` with ``process``, ``within`` and optional ``max_runtime``;
* ``log: <agent log rule>`` with ``at_least: N`` ``within: W``, or ``absent_for: W``;
* ``group: {metric: cpu_pct, agg: avg}`` or ``group: {running: nginx}`` with max/min,
  ``stale`` and optional ``scale: {out_above, in_below, cooldown}``.
"""

from __future__ import annotations

import _string  # the stdlib's own parser of format field names
import hashlib
import math
import re
import string
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collector.contract import capped_reason
from collector.problems import Problem, ProblemsError
from policies import cron
from policies.downcheck import DownCheckSettings
from policies.model import (
    AGGREGATIONS,
    EVERYWHERE,
    SEVERITIES,
    DownCheckScope,
    GroupRule,
    InhibitRule,
    LabelMatch,
    MaintenanceWindow,
    MetricRule,
    Notify,
    PolicySet,
    ScaleSpec,
    ScheduleRule,
    Selector,
    Threshold,
    parse_duration,
)
from policies.samples import LOG_COUNT, PROC_AGE, PROC_COUNT, PROC_CPU, PROC_RSS
from policies.yaml_lines import LineMapping, load_lines

_WHEN = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][\w.]*(?::\S+)?)\s*(?P<op>[<>])\s*(?P<threshold>\S+)"
    r"(?:\s+for\s+(?P<for>\S+))?\s*$"
)
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_COMMON = {"name", "scope", "labels", "annotations", "summary", "renotify", "flap", "severity"}
_KEYS = {
    "metric": _COMMON | {"when", "metric", "max", "min", "for", "agg", "window", "hysteresis", "recover"},
    "process": _COMMON | {"process", "count", "cpu_pct", "rss_bytes", "window", "for", "hysteresis"},
    "schedule": _COMMON | {"schedule", "process", "within", "max_runtime", "timezone"},
    "log": _COMMON | {"log", "at_least", "within", "absent_for", "for"},
    "group": _COMMON | {"group", "max", "min", "for", "stale", "scale", "hysteresis", "recover"},
}
_FILE_KEYS = {"rules", "maintenance", "inhibit", "downcheck"}
DEFAULT_PROCESS_WINDOW_S = 60.0


class PolicyError(ProblemsError):
    """One or more problems in policy files; ``problems`` holds ``file:line: message`` lines."""


# --- entry points --------------------------------------------------------------------------


def load_policy_text(text: str, origin: str = "<policy>") -> PolicySet:
    """Parse one policy document; raises :class:`PolicyError` listing every problem found."""
    return load_policy_texts({origin: text})


def load_policy_texts(files: dict[str, str]) -> PolicySet:
    """Parse a whole policy set given as ``{file name: text}`` (what ``policy apply`` publishes)."""
    problems: list[str] = []
    parts: dict[str, list[Any]] = {
        "metric": [],
        "schedule": [],
        "group": [],
        "maintenance": [],
        "inhibit": [],
        "downcheck": [],
    }
    for origin in sorted(files):
        problems.extend(_load_document(files[origin], origin, parts))
    rules = [*parts["metric"], *parts["schedule"], *parts["group"]]
    problems.extend(_duplicates(rules, "rule"))
    problems.extend(_duplicates(parts["maintenance"], "maintenance window"))
    problems.extend(_duplicates(parts["inhibit"], "inhibit rule"))
    problems.extend(_duplicates(parts["downcheck"], "downcheck scope"))
    if problems:
        raise PolicyError(problems)
    digest = hashlib.sha256()
    for origin in sorted(files):
        digest.update(origin.encode() + b"\x00" + files[origin].encode() + b"\x00")
    return PolicySet(
        metric_rules=tuple(parts["metric"]),
        schedule_rules=tuple(parts["schedule"]),
        group_rules=tuple(parts["group"]),
        maintenance=tuple(parts["maintenance"]),
        inhibit=tuple(parts["inhibit"]),
        downcheck=tuple(parts["downcheck"]),
        version=digest.hexdigest()[:12],
    )


def policy_files(path: str | Path) -> dict[str, str]:
    """``{file name: text}`` of a policy file, or of every ``*.yaml``/``*.yml`` in a directory."""
    path = Path(path)
    if path.is_dir():
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    elif path.exists():
        files = [path]
    else:
        raise PolicyError([f"{path}: no such file or directory"])
    texts: dict[str, str] = {}
    problems = []
    for file in files:
        try:
            texts[str(file)] = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{file}: cannot read: {exc}")
    if problems:
        raise PolicyError(problems)
    return texts


def load_policy_path(path: str | Path) -> PolicySet:
    """Load a policy file or directory."""
    return load_policy_texts(policy_files(path))


# --- documents -----------------------------------------------------------------------------


def _load_document(text: str, origin: str, parts: dict[str, list[Any]]) -> list[str]:
    try:
        doc = load_lines(text)
    except Problem as problem:
        return [problem.at(origin)]
    if doc is None:
        return []
    if not isinstance(doc, LineMapping) or set(map(str, doc)) - _FILE_KEYS:
        line = doc.line if isinstance(doc, LineMapping) else 1
        extra = sorted(set(map(str, doc)) - _FILE_KEYS) if isinstance(doc, LineMapping) else []
        if extra:
            line = doc.line_of(extra[0])
        return [f"{origin}:{line}: a policy file is a mapping of {', '.join(sorted(_FILE_KEYS))}"]
    problems: list[str] = []
    sections: list[tuple[str, Callable[[LineMapping, str], list[Any]]]] = [
        ("rules", _rule),
        ("maintenance", _maintenance),
        ("inhibit", _inhibit),
        ("downcheck", _downcheck),
    ]
    for section, build in sections:
        raw_list = doc.get(section) or []
        if not isinstance(raw_list, list):
            problems.append(f"{origin}:{doc.line_of(section)}: {section!r} must be a list")
            continue
        for raw in raw_list:
            if not isinstance(raw, LineMapping):
                problems.append(f"{origin}:{doc.line_of(section)}: each entry of {section!r} must be a mapping")
                continue
            try:
                for item in build(raw, origin):
                    kind = section if section != "rules" else _kind_of_built(item)
                    parts[kind].append(item)
            except Problem as exc:
                problems.append(exc.at(origin))
    return problems


def _kind_of_built(item: Any) -> str:
    if isinstance(item, ScheduleRule):
        return "schedule"
    if isinstance(item, GroupRule):
        return "group"
    return "metric"


def _duplicates(items: list[Any], what: str) -> list[str]:
    first: dict[str, str] = {}
    problems = []
    for item in items:
        if item.name in first:
            problems.append(f"{item.source}: {what} name {item.name!r} already used at {first[item.name]}")
        first.setdefault(item.name, item.source)
    return problems


# --- rules ---------------------------------------------------------------------------------


def _rule(raw: LineMapping, origin: str) -> list[Any]:
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise Problem(raw.line_of("name"), "every rule needs a 'name' of letters, digits, '_', '.', '-'")
    if "schedule" in raw:
        kind = "schedule"
    elif "group" in raw:
        kind = "group"
    elif "log" in raw:
        kind = "log"
    elif "process" in raw:
        kind = "process"
    elif "when" in raw or "metric" in raw:
        kind = "metric"
    else:
        raise Problem(
            raw.line, f"rule {name!r}: say what it watches: 'when'/'metric', 'process', 'schedule', 'log' or 'group'"
        )
    unknown = sorted(set(map(str, raw)) - _KEYS[kind])
    if unknown:
        raise Problem(
            raw.line_of(unknown[0]),
            f"rule {name!r}: unknown key {unknown[0]!r} for a {kind} rule (allowed: {', '.join(sorted(_KEYS[kind]))})",
        )
    ctx = _Ctx(raw, name, f"{origin}:{raw.line}")
    builders: dict[str, Callable[[_Ctx], list[Any]]] = {
        "metric": _metric_rule,
        "process": _process_rules,
        "schedule": _schedule_rules,
        "log": _log_rule,
        "group": _group_rule,
    }
    return builders[kind](ctx)


class _Ctx:
    """One raw rule and helpers that turn its keys into values or line-numbered problems."""

    def __init__(self, raw: LineMapping, name: str, source: str, what: str = "rule") -> None:
        self.raw, self.name, self.source, self.what = raw, name, source, what

    def fail(self, key: str, message: str, node: Any = None) -> Problem:
        line = node.line if isinstance(node, LineMapping) else self.raw.line_of(key)
        return Problem(line, f"{self.what} {self.name!r}: {message}")

    def duration(self, key: str, default: float = 0.0, positive: bool = False) -> float:
        """``key`` as seconds (bounded by ``MAX_DURATION_S``); ``positive``: where ``0s`` means nothing."""
        if key not in self.raw:
            return default
        try:
            seconds = parse_duration(self.raw[key])
        except (ValueError, TypeError) as exc:
            raise self.fail(key, f"'{key}': {exc}") from None
        if positive and seconds <= 0:
            raise self.fail(key, f"'{key}' must be > 0")
        return seconds

    def number(self, value: Any, key: str, what: str) -> float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise self.fail(key, f"{what} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(key, f"{what} must be a finite number, got {value!r}")
        return float(value)

    def string(self, key: str, default: str | None = None) -> str:
        value = self.raw.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"'{key}' must be a non-empty string")
        return value

    def severity(self) -> str:
        severity = self.raw.get("severity", "warning")
        if severity not in SEVERITIES:
            raise self.fail("severity", f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
        return str(severity)

    def labels(self, key: str = "labels") -> tuple[tuple[str, str], ...]:
        value = self.raw.get(key) or {}
        if not isinstance(value, dict) or not all(isinstance(k, str) and _is_scalar(v) for k, v in value.items()):
            raise self.fail(key, f"'{key}' must be a mapping of names to strings")
        return tuple((k, str(v)) for k, v in value.items())

    def notify(self, default_summary: str | None = None) -> Notify:
        fields: dict[str, Any] = {}
        if "renotify" in self.raw:
            fields["renotify_s"] = self.duration("renotify")
        flap = self.raw.get("flap")
        if flap is not None:
            if not isinstance(flap, LineMapping) or set(map(str, flap)) - {"window", "changes"}:
                raise self.fail("flap", "'flap' is a mapping of 'window' (duration) and 'changes' (count, 0 = off)")
            if "window" in flap:
                fields["flap_window_s"] = _Ctx(flap, self.name, self.source).duration("window", positive=True)
            if "changes" in flap:
                changes = flap["changes"]
                if isinstance(changes, bool) or not isinstance(changes, int) or changes < 0:
                    raise self.fail("flap", "'flap.changes' must be a whole number >= 0", flap)
                fields["flap_changes"] = changes
        summary = self.raw.get("summary", default_summary)
        if summary is not None:
            if not isinstance(summary, str):
                raise self.fail("summary", "'summary' must be a string")
            _check_template(self, "summary", summary)
            fields["summary"] = summary
        annotations = self.labels("annotations")
        for _key, template in annotations:
            _check_template(self, "annotations", template)
        fields["annotations"] = annotations
        return Notify(**fields)

    def selector(self) -> Selector:
        return _selector(self.raw.get("scope"), self, "scope") if "scope" in self.raw else EVERYWHERE

    def thresholds(self, value_key: str = "") -> tuple[Threshold, ...]:
        """``max``/``min`` of the rule (or of the mapping under ``value_key``), with recovery points."""
        node = self.raw if not value_key else self.raw[value_key]
        return _thresholds(self, node, value_key or "max")


def _is_scalar(value: Any) -> bool:
    """A YAML scalar (what a label value or a listed value may be; never a list or mapping)."""
    return value is None or isinstance(value, str | int | float | bool)


# What summary and annotation templates may name, with sample values of the types the alert
# builder passes (``policies.alerts.to_alert``): a trial format with them catches a format
# spec that cannot apply (``{host:.2f}``) at load, not on the first alert.
_TEMPLATE_FIELDS: dict[str, Any] = {
    "rule": "r",
    "host": "h",
    "region": "eu",
    "metric": "m",
    "value": 1.0,
    "threshold": 1.0,
    "severity": "warning",
    "labels": defaultdict(str),  # {labels[team]}: a label the host may or may not have
}
# Widths and precisions of template fields are at most this: ``{value:99999999999}`` would make
# every alert of the rule a 100 GB string.
MAX_TEMPLATE_WIDTH = 200


def _check_template(ctx: _Ctx, key: str, template: str) -> None:
    """Known fields only (``{labels[NAME]}`` for a label), no indexing or attributes elsewhere,
    bounded widths; then a trial format with sample values."""
    shown = capped_reason(template, 80)
    fields = ", ".join(_TEMPLATE_FIELDS)
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ctx.fail(key, f"bad template {shown!r}: {exc} (write {{{{ and }}}} for literal braces)") from None
    for _text, name, spec, _conversion in parts:
        if name is None:
            continue
        first, rest = _string.formatter_field_name_split(name)
        rest = list(rest)
        if not isinstance(first, str) or first not in _TEMPLATE_FIELDS:
            raise ctx.fail(key, f"bad template {shown!r}: unknown field {{{name}}}; fields: {fields}")
        if first == "labels":
            if rest and (len(rest) != 1 or rest[0][0] or not isinstance(rest[0][1], str)):
                raise ctx.fail(key, f"bad template {shown!r}: {{{name}}}: name one label, as in {{labels[team]}}")
        elif rest:
            raise ctx.fail(key, f"bad template {shown!r}: {{{name}}}: {first!r} takes no index or attribute")
        if spec and "{" in spec:
            raise ctx.fail(key, f"bad template {shown!r}: {{{name}}}: a format spec cannot hold fields")
        if spec and max((int(d) for d in re.findall(r"\d+", spec)), default=0) > MAX_TEMPLATE_WIDTH:
            raise ctx.fail(
                key, f"bad template {shown!r}: {{{name}}}: widths and precisions are at most {MAX_TEMPLATE_WIDTH}"
            )
    try:
        template.format(**_TEMPLATE_FIELDS)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
        raise ctx.fail(key, f"bad template {shown!r}: {exc}") from None


def _thresholds(ctx: _Ctx, node: LineMapping, key_for_line: str, inclusive: bool = False) -> tuple[Threshold, ...]:
    severity = ctx.severity()
    margin = 0.0
    if "hysteresis" in ctx.raw:
        margin = ctx.number(ctx.raw["hysteresis"], "hysteresis", "'hysteresis'")
        if margin < 0:
            raise ctx.fail("hysteresis", "'hysteresis' must be >= 0")
    recover = ctx.raw.get("recover")
    if recover is not None and not isinstance(recover, LineMapping):
        raise ctx.fail("recover", "'recover' is a mapping like {max: 85} or {max: {warning: 75, critical: 85}}")
    out: list[Threshold] = []
    for side in ("max", "min"):
        if side not in node:
            continue
        # errors in a nested mapping (count: {min: ..}) point at its own lines
        levels = _levels(ctx if node is ctx.raw else _Ctx(node, ctx.name, ctx.source), node[side], side, severity)
        explicit = _levels(ctx, recover[side], side, severity) if recover and side in recover else {}
        for sev, value in levels.items():
            back = explicit.get(sev, value - margin if side == "max" else value + margin)
            if (side == "max" and back > value) or (side == "min" and back < value):
                raise ctx.fail("recover", f"recovery point {back:g} of {side} {sev} is beyond its threshold {value:g}")
            out.append(Threshold(side, value, sev, back, inclusive))
    if not out:
        raise ctx.fail(key_for_line, "give 'max', 'min' or both", node)
    maxes = [t.value for t in out if t.side == "max"]
    mins = [t.value for t in out if t.side == "min"]
    if maxes and mins and max(mins) > min(maxes):
        raise ctx.fail("min", f"min {max(mins):g} is above max {min(maxes):g}")
    return tuple(out)


def _levels(ctx: _Ctx, value: Any, side: str, severity: str) -> dict[str, float]:
    if isinstance(value, LineMapping):
        unknown = sorted(set(map(str, value)) - set(SEVERITIES))
        if unknown or not value:
            raise ctx.fail(side, f"'{side}' levels are severities ({', '.join(SEVERITIES)}) with numbers", value)
        levels = {str(s): ctx.number(v, side, f"'{side}.{s}'") for s, v in value.items()}
        ordered = [levels[s] for s in SEVERITIES if s in levels]
        monotone = ordered == sorted(ordered) if side == "max" else ordered == sorted(ordered, reverse=True)
        if not monotone:
            raise ctx.fail(side, f"'{side}' levels must get stricter with severity ({', '.join(SEVERITIES)})", value)
        return levels
    return {severity: ctx.number(value, side, f"'{side}'")}


def _metric_rule(ctx: _Ctx) -> list[Any]:
    raw = ctx.raw
    fields: dict[str, Any] = {}
    node: LineMapping = raw
    if "when" in raw:
        if {"metric", "min", "max"} & set(raw):
            raise ctx.fail("when", "use either 'when' or 'metric' with 'min'/'max', not both")
        when = raw["when"]
        match = _WHEN.match(when) if isinstance(when, str) else None
        if not match:
            raise ctx.fail("when", f"cannot read when: {when!r} (expected e.g. 'cpu_pct > 90 for 60s')")
        metric = match["metric"]
        threshold = ctx.number(match["threshold"], "when", "the threshold in 'when'")  # at the 'when' line
        node = LineMapping({"max" if match["op"] == ">" else "min": threshold})
        node.line, node.key_lines = raw.line_of("when"), {}
        if match["for"] is not None:
            if "for" in raw:
                raise ctx.fail("for", "'for' given twice (in 'when' and as a key)")
            try:
                fields["for_s"] = parse_duration(match["for"])
            except ValueError as exc:
                raise ctx.fail("when", str(exc)) from None
    else:
        metric = ctx.string("metric")
    agg = raw.get("agg", "last" if "window" not in raw else "avg")
    if agg not in AGGREGATIONS:
        raise ctx.fail("agg", f"'agg' must be one of {', '.join(AGGREGATIONS)}, got {agg!r}")
    window_s = ctx.duration("window")
    if agg != "last" and window_s <= 0:
        raise ctx.fail("agg", f"'agg: {agg}' needs a 'window'")
    fields.setdefault("for_s", ctx.duration("for"))
    return [
        MetricRule(
            name=ctx.name,
            metric=metric,
            thresholds=_thresholds(ctx, node, "metric"),
            agg=agg,
            window_s=window_s,
            selector=ctx.selector(),
            labels=ctx.labels(),
            notify=ctx.notify(),
            source=ctx.source,
            **fields,
        )
    ]


_PROCESS_FIGURES = {"count": PROC_COUNT, "cpu_pct": PROC_CPU, "rss_bytes": PROC_RSS}


def _process_rules(ctx: _Ctx) -> list[Any]:
    """One metric rule per figure and side; counts are judged over a window.

    A count's min side sees the window's *max* and its max side the window's *min*: only a
    breach held through the whole window counts, so one missed or odd sample is not an alert.
    """
    group = ctx.string("process")
    window_s = ctx.duration("window", DEFAULT_PROCESS_WINDOW_S)
    figures = [f for f in _PROCESS_FIGURES if f in ctx.raw]
    if not figures:
        raise ctx.fail("process", "give at least one of 'count', 'cpu_pct', 'rss_bytes' with min/max")
    rules: list[Any] = []
    notify = ctx.notify(
        f"{{rule}}: process group {group} {{metric}}={{value:g}} on {{host}} (threshold {{threshold:g}})"
    )
    for figure in figures:
        node = ctx.raw[figure]
        if not isinstance(node, LineMapping):
            raise ctx.fail(figure, f"'{figure}' is a mapping like {{min: 2, max: 16}}")
        unknown = sorted(set(map(str, node)) - {"min", "max"})
        if unknown:
            raise ctx.fail(figure, f"'{figure}' takes 'min' and 'max', not {unknown[0]!r}", node)
        for bound in _thresholds(ctx, node, figure):
            side_agg = "max" if bound.side == "min" else "min"
            rules.append(
                MetricRule(
                    name=f"{ctx.name}.{figure}_{bound.side}_{bound.severity}",
                    metric=f"{_PROCESS_FIGURES[figure]}:{group}",
                    thresholds=(bound,),
                    kind="process",
                    agg=side_agg if window_s > 0 else "last",
                    window_s=window_s,
                    for_s=ctx.duration("for"),
                    selector=ctx.selector(),
                    labels=(*ctx.labels(), ("group", group)),
                    notify=notify,
                    source=ctx.source,
                )
            )
    return _merge_levels(rules)


def _merge_levels(rules: list[MetricRule]) -> list[Any]:
    """Rules differing only in severity become one rule with levels (one alert escalates)."""
    merged: dict[tuple[str, str], MetricRule] = {}
    for rule in rules:
        figure_side = rule.name.rsplit("_", 1)[0]
        key = (figure_side, rule.metric)
        if key in merged:
            first = merged[key]
            merged[key] = MetricRule(**{**first.__dict__, "thresholds": first.thresholds + rule.thresholds})
        else:
            merged[key] = MetricRule(**{**rule.__dict__, "name": figure_side})
    return list(merged.values())


def _schedule_rules(ctx: _Ctx) -> list[Any]:
    expr = ctx.string("schedule")
    timezone = ctx.string("timezone", "UTC")
    try:
        cron.check(expr, timezone)
    except ValueError as exc:
        raise ctx.fail("timezone" if "zone" in str(exc) else "schedule", str(exc)) from None
    group = ctx.string("process")
    if "within" not in ctx.raw:
        raise ctx.fail("schedule", "needs 'within': how long after the scheduled time the run may start")
    within_s = ctx.duration("within")
    if within_s <= 0:
        raise ctx.fail("within", "'within' must be > 0")
    notify = ctx.notify(f"{{rule}}: {group} did not run in its window ({expr}, within {ctx.raw['within']}) on {{host}}")
    rules: list[Any] = [
        ScheduleRule(
            name=ctx.name,
            group=group,
            cron=expr,
            within_s=within_s,
            timezone=timezone,
            severity=ctx.severity(),
            selector=ctx.selector(),
            labels=(*ctx.labels(), ("group", group)),
            notify=notify,
            source=ctx.source,
        )
    ]
    if "max_runtime" in ctx.raw:
        limit = ctx.duration("max_runtime", positive=True)
        rules.append(
            MetricRule(
                name=f"{ctx.name}.runtime",
                metric=f"{PROC_AGE}:{group}",
                thresholds=(Threshold("max", limit, ctx.severity(), limit),),
                kind="schedule",
                selector=ctx.selector(),
                labels=(*ctx.labels(), ("group", group)),
                notify=ctx.notify(f"{{rule}}: {group} has run {{value:.0f}}s on {{host}} (limit {{threshold:g}}s)"),
                source=ctx.source,
            )
        )
    return rules


def _log_rule(ctx: _Ctx) -> list[Any]:
    log_rule = ctx.string("log")
    if ("at_least" in ctx.raw) == ("absent_for" in ctx.raw):
        raise ctx.fail("log", "give either 'at_least' (with 'within') or 'absent_for'")
    severity = ctx.severity()
    if "at_least" in ctx.raw:
        count = ctx.number(ctx.raw["at_least"], "at_least", "'at_least'")
        if count < 1:
            raise ctx.fail("at_least", "'at_least' must be >= 1")
        if "within" not in ctx.raw:
            raise ctx.fail("at_least", "'at_least' needs 'within' (the window the matches are counted in)")
        window_s = ctx.duration("within")
        bound = Threshold("max", count, severity, count - 1, inclusive=True)
        summary = (
            f"{{rule}}: {{value:g}} '{log_rule}' lines within {ctx.raw['within']} on {{host}}"
            " (at least {threshold:g})"
        )
    else:
        window_s = ctx.duration("absent_for")
        bound = Threshold("min", 1.0, severity, 1.0)
        summary = f"{{rule}}: no '{log_rule}' line for {ctx.raw['absent_for']} on {{host}}"
    if window_s <= 0:
        raise ctx.fail("within" if "within" in ctx.raw else "absent_for", "the window must be > 0")
    return [
        MetricRule(
            name=ctx.name,
            metric=f"{LOG_COUNT}:{log_rule}",
            thresholds=(bound,),
            kind="log",
            agg="sum",
            window_s=window_s,
            for_s=ctx.duration("for"),
            selector=ctx.selector(),
            labels=ctx.labels(),
            notify=ctx.notify(summary),
            source=ctx.source,
        )
    ]


def _group_rule(ctx: _Ctx) -> list[Any]:
    spec = ctx.raw["group"]
    if not isinstance(spec, LineMapping):
        raise ctx.fail("group", "'group' is {metric: M, agg: avg|max|min|sum} or {running: <process group>}")
    if "running" in spec:
        if set(map(str, spec)) - {"running"}:
            raise ctx.fail("group", "'group: {running: G}' takes nothing else", spec)
        metric, agg = f"{PROC_COUNT}:{spec['running']}", "count"
    else:
        unknown = sorted(set(map(str, spec)) - {"metric", "agg"})
        if unknown or not isinstance(spec.get("metric"), str):
            raise ctx.fail("group", "'group' is {metric: M, agg: avg|max|min|sum} or {running: <process group>}", spec)
        metric, agg = spec["metric"], spec.get("agg", "avg")
        if agg not in ("avg", "max", "min", "sum"):
            raise ctx.fail("group", f"group 'agg' must be avg, max, min or sum, got {agg!r}", spec)
    scale = None
    if "scale" in ctx.raw:
        raw_scale = ctx.raw["scale"]
        if not isinstance(raw_scale, LineMapping) or set(map(str, raw_scale)) - {"out_above", "in_below", "cooldown"}:
            raise ctx.fail("scale", "'scale' is a mapping of out_above, in_below and cooldown")
        sub = _Ctx(raw_scale, ctx.name, ctx.source)
        out_above = (
            sub.number(raw_scale["out_above"], "out_above", "'scale.out_above'") if "out_above" in raw_scale else None
        )
        in_below = (
            sub.number(raw_scale["in_below"], "in_below", "'scale.in_below'") if "in_below" in raw_scale else None
        )
        if out_above is None and in_below is None:
            raise ctx.fail("scale", "'scale' needs 'out_above', 'in_below' or both")
        if out_above is not None and in_below is not None and in_below >= out_above:
            raise ctx.fail("scale", "'scale.in_below' must be below 'scale.out_above'")
        scale = ScaleSpec(out_above, in_below, sub.duration("cooldown", 600.0))
    return [
        GroupRule(
            name=ctx.name,
            metric=metric,
            agg=agg,
            thresholds=_thresholds(ctx, ctx.raw, "group"),
            for_s=ctx.duration("for"),
            stale_s=ctx.duration("stale", 120.0, positive=True),
            selector=ctx.selector(),
            scale=scale,
            labels=ctx.labels(),
            notify=ctx.notify("{rule}: {metric} {value:g} across {host} (threshold {threshold:g})"),
            source=ctx.source,
        )
    ]


# --- scopes and matchers -------------------------------------------------------------------

_MATCH_OPS = {"equals": "=", "not": "!=", "regex": "=~", "not_regex": "!~", "in": "in", "not_in": "not in"}


def label_matchers(node: Any, ctx: _Ctx, key: str) -> tuple[LabelMatch, ...]:
    """``{label: value | {equals|not|regex|not_regex: v} | {in|not_in: [..]}}`` -> matchers."""
    if not isinstance(node, LineMapping):
        raise ctx.fail(key, f"'{key}' must be a mapping of label names to values or conditions")
    out: list[LabelMatch] = []
    for label, cond in node.items():
        if isinstance(cond, LineMapping):
            if len(cond) != 1 or next(iter(cond)) not in _MATCH_OPS:
                raise ctx.fail(key, f"label {label!r}: a condition is one of {', '.join(_MATCH_OPS)}", cond)
            word, value = next(iter(cond.items()))
            op = _MATCH_OPS[word]
            if op in ("in", "not in"):
                if not isinstance(value, list) or not value or not all(map(_is_scalar, value)):
                    raise ctx.fail(key, f"label {label!r}: '{word}' takes a list of values", cond)
                out.append(LabelMatch(str(label), op, values=tuple(map(str, value))))  # type: ignore[arg-type]
                continue
            if not _is_scalar(value):
                raise ctx.fail(key, f"label {label!r}: '{word}' takes one value", cond)
            try:
                out.append(LabelMatch(str(label), op, str(value)))  # type: ignore[arg-type]
            except ValueError as exc:  # a regex RE2 cannot compile
                raise ctx.fail(key, f"label {label!r}: bad regex {value!r}: {exc}", cond) from None
        elif isinstance(cond, list) and all(map(_is_scalar, cond)):
            out.append(LabelMatch(str(label), "in", values=tuple(map(str, cond))))
        elif _is_scalar(cond):
            out.append(LabelMatch(str(label), "=", str(cond)))
        else:
            raise ctx.fail(key, f"label {label!r}: a value, a list of values or a condition", node)
    return tuple(out)


def _str_list(value: Any, ctx: _Ctx, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ctx.fail(key, f"'{key}' must be a string or a list of strings")


def _selector(node: Any, ctx: _Ctx, key: str) -> Selector:
    if not isinstance(node, LineMapping):
        raise ctx.fail(key, f"'{key}' must be a mapping of region, host, labels and exclude")
    unknown = sorted(set(map(str, node)) - {"region", "host", "labels", "exclude"})
    if unknown:
        raise ctx.fail(key, f"unknown key {unknown[0]!r} in '{key}' (allowed: exclude, host, labels, region)", node)
    sub = _Ctx(node, ctx.name, ctx.source)
    exclude: list[Selector] = []
    raw_exclude = node.get("exclude") or []
    if isinstance(raw_exclude, LineMapping):
        raw_exclude = [raw_exclude]
    if not isinstance(raw_exclude, list):
        raise sub.fail("exclude", "'exclude' is a list of selectors (region, host, labels)")
    for item in raw_exclude:
        exclude.append(_selector(item, sub, "exclude"))
    return Selector(
        labels=label_matchers(node["labels"], sub, "labels") if "labels" in node else (),
        regions=_str_list(node["region"], sub, "region") if "region" in node else (),
        hosts=_str_list(node["host"], sub, "host") if "host" in node else (),
        exclude=tuple(exclude),
    )


def _named(raw: LineMapping, origin: str, what: str) -> _Ctx:
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise Problem(raw.line_of("name"), f"every {what} needs a 'name' of letters, digits, '_', '.', '-'")
    return _Ctx(raw, name, f"{origin}:{raw.line}", what)


def _maintenance(raw: LineMapping, origin: str) -> list[Any]:
    ctx = _named(raw, origin, "maintenance window")
    unknown = sorted(set(map(str, raw)) - {"name", "cron", "duration", "match", "timezone"})
    if unknown:
        raise ctx.fail(unknown[0], f"unknown key {unknown[0]!r} (allowed: cron, duration, match, name, timezone)")
    expr, timezone = ctx.string("cron"), ctx.string("timezone", "UTC")
    try:
        cron.check(expr, timezone)
    except ValueError as exc:
        raise ctx.fail("cron", str(exc)) from None
    duration = ctx.duration("duration")
    if duration <= 0:
        raise ctx.fail("duration", "needs a 'duration' > 0")
    matchers = label_matchers(raw.get("match") or LineMapping(), ctx, "match") if "match" in raw else ()
    return [MaintenanceWindow(ctx.name, expr, duration, matchers, timezone, ctx.source)]


def _inhibit(raw: LineMapping, origin: str) -> list[Any]:
    ctx = _named(raw, origin, "inhibit rule")
    unknown = sorted(set(map(str, raw)) - {"name", "source", "target", "equal"})
    if unknown:
        raise ctx.fail(unknown[0], f"unknown key {unknown[0]!r} (allowed: equal, name, source, target)")
    for key in ("source", "target"):
        if key not in raw:
            raise ctx.fail(key, f"needs '{key}' (label conditions of the {key} alerts)")
    equal = raw.get("equal") or []
    if not isinstance(equal, list) or not all(isinstance(e, str) for e in equal):
        raise ctx.fail("equal", "'equal' is a list of label names both alerts must share")
    return [
        InhibitRule(
            ctx.name,
            label_matchers(raw["source"], ctx, "source"),
            label_matchers(raw["target"], ctx, "target"),
            tuple(equal),
            ctx.source,
        )
    ]


# Policy-file key -> (settings field, how it is read).
_DOWNCHECK_KEYS: dict[str, tuple[str, str]] = {
    "missed": ("missed", "number"),
    "late": ("late", "number"),
    "grace": ("grace_s", "duration"),
    "region_share": ("region_share", "number"),
    "min_region_hosts": ("min_region_hosts", "count"),
    "ingest_share": ("ingest_share", "number"),
    "flap_window": ("flap_window_s", "duration"),
    "witness_max_age": ("witness_max_age_s", "duration"),
    "group_share": ("group_share", "number"),
    "min_group_hosts": ("min_group_hosts", "count"),
    "correlate_by": ("correlate_by", "labels"),
}


def _downcheck(raw: LineMapping, origin: str) -> list[Any]:
    """``downcheck:`` entries: silence and correlation settings for a scope (first match wins)."""
    ctx = _named(raw, origin, "downcheck scope")
    allowed = {"name", "scope", *_DOWNCHECK_KEYS}
    unknown = sorted(set(map(str, raw)) - allowed)
    if unknown:
        raise ctx.fail(unknown[0], f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    values: dict[str, Any] = {}
    for key, (attr, how) in _DOWNCHECK_KEYS.items():
        if key not in raw:
            continue
        if how == "duration":
            values[attr] = ctx.duration(key)
            continue
        if how == "labels":
            labels = raw[key]
            if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
                raise ctx.fail(key, f"'{key}' must be a list of label names like [region, zone, rack], got {labels!r}")
            values[attr] = tuple(labels)
            continue
        number = ctx.number(raw[key], key, f"'{key}'")
        if how == "count" and number != int(number):
            raise ctx.fail(key, f"'{key}' must be a whole number, got {raw[key]!r}")
        values[attr] = int(number) if how == "count" else number
    settings = DownCheckSettings(**values)
    problems = settings.problems()
    if problems:
        raise ctx.fail(next((k for k in raw if str(k) in _DOWNCHECK_KEYS), "name"), "; ".join(problems))
    return [DownCheckScope(ctx.name, ctx.selector(), settings, ctx.source)]
