"""Load and validate policy files (YAML); every error names ``file:line`` and what to fix.

A policy file holds a ``rules`` list. Each rule either writes the condition as one line::

    - name: high_cpu
      when: cpu_pct > 90 for 60s

or gives the min/max sides explicitly::

    - name: disk_low
      metric: disk_free_bytes
      min: 1e9
      for: 5m
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from policies.model import SEVERITIES, ThresholdRule, parse_duration

_WHEN = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][\w.]*(?::\S+)?)\s*(?P<op>[<>])\s*(?P<threshold>\S+)"
    r"(?:\s+for\s+(?P<for>\S+))?\s*$"
)
_RULE_KEYS = {"name", "when", "metric", "max", "min", "for", "severity", "summary"}
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class PolicyError(ValueError):
    """One or more problems in policy files; ``problems`` holds ``file:line: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Mapping(dict[str, Any]):
    """A YAML mapping that remembers its line (1-based) and each key's line."""

    line: int
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = _Mapping(super().construct_mapping(node, deep=deep))  # type: ignore[arg-type]
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {
            str(k.value): k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)
        }
        return mapping


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    lambda loader, node: loader.construct_mapping(node, deep=True),  # type: ignore[arg-type]
)


def load_policy_text(text: str, origin: str = "<policy>") -> list[ThresholdRule]:
    """Parse one policy document; raises :class:`PolicyError` listing every problem found."""
    try:
        doc = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{origin}:{mark.line + 1}" if mark is not None else origin
        reason = getattr(exc, "problem", None) or str(exc)
        raise PolicyError([f"{where}: invalid YAML: {reason}"]) from None
    if doc is None:
        return []
    if not isinstance(doc, _Mapping) or set(doc) - {"rules"}:
        line = doc.line if isinstance(doc, _Mapping) else 1
        raise PolicyError([f"{origin}:{line}: a policy file is a mapping with one key, 'rules'"])
    rules_raw = doc.get("rules") or []
    if not isinstance(rules_raw, list):
        raise PolicyError([f"{origin}:{doc.key_lines.get('rules', 1)}: 'rules' must be a list"])

    problems: list[str] = []
    rules: list[ThresholdRule] = []
    for raw in rules_raw:
        if not isinstance(raw, _Mapping):
            problems.append(f"{origin}:{doc.key_lines.get('rules', 1)}: each rule must be a mapping")
            continue
        try:
            rules.append(_rule(raw, origin))
        except _RuleProblem as exc:
            problems.append(f"{origin}:{exc.line}: {exc.message}")
    problems.extend(_duplicate_names(rules))
    if problems:
        raise PolicyError(problems)
    return rules


def load_policy_path(path: str | Path) -> list[ThresholdRule]:
    """Load a policy file, or every ``*.yaml``/``*.yml`` file of a directory (sorted)."""
    path = Path(path)
    if path.is_dir():
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    elif path.exists():
        files = [path]
    else:
        raise PolicyError([f"{path}: no such file or directory"])
    problems: list[str] = []
    rules: list[ThresholdRule] = []
    for file in files:
        try:
            rules.extend(load_policy_text(file.read_text(encoding="utf-8"), str(file)))
        except PolicyError as exc:
            problems.extend(exc.problems)
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{file}: cannot read: {exc}")
    problems.extend(_duplicate_names(rules))
    if problems:
        raise PolicyError(problems)
    return rules


def _duplicate_names(rules: list[ThresholdRule]) -> list[str]:
    first: dict[str, str] = {}
    problems = []
    for rule in rules:
        if rule.name in first:
            problems.append(f"{rule.source}: rule name {rule.name!r} already used at {first[rule.name]}")
        first.setdefault(rule.name, rule.source)
    return problems


class _RuleProblem(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def _rule(raw: _Mapping, origin: str) -> ThresholdRule:
    def line_of(key: str) -> int:
        return raw.key_lines.get(key, raw.line)

    unknown = sorted(set(map(str, raw)) - _RULE_KEYS)
    if unknown:
        raise _RuleProblem(
            line_of(unknown[0]), f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_RULE_KEYS))})"
        )
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _RuleProblem(line_of("name"), "every rule needs a 'name' of letters, digits, '_', '.', '-'")

    fields: dict[str, Any] = {"name": name, "source": f"{origin}:{raw.line}"}
    if "when" in raw:
        if {"metric", "min", "max"} & set(raw):
            raise _RuleProblem(
                line_of("when"), f"rule {name!r}: use either 'when' or 'metric' with 'min'/'max', not both"
            )
        when = raw["when"]
        match = _WHEN.match(when) if isinstance(when, str) else None
        if not match:
            raise _RuleProblem(
                line_of("when"),
                f"rule {name!r}: cannot read when: {when!r} (expected e.g. 'cpu_pct > 90 for 60s')",
            )
        fields["metric"] = match["metric"]
        threshold = _number(match["threshold"], line_of("when"), f"rule {name!r}: threshold")
        fields["max" if match["op"] == ">" else "min"] = threshold
        if match["for"] is not None:
            if "for" in raw:
                raise _RuleProblem(
                    line_of("for"), f"rule {name!r}: 'for' given twice (in 'when' and as a key)"
                )
            fields["for_s"] = _duration(match["for"], line_of("when"), name)
    else:
        metric = raw.get("metric")
        if not isinstance(metric, str) or not metric:
            raise _RuleProblem(line_of("metric"), f"rule {name!r}: needs 'when' or 'metric'")
        fields["metric"] = metric
        for side in ("max", "min"):
            if side in raw:
                fields[side] = _number(raw[side], line_of(side), f"rule {name!r}: '{side}'")
        if "max" not in fields and "min" not in fields:
            raise _RuleProblem(raw.line, f"rule {name!r}: give 'max', 'min' or both")
        if "max" in fields and "min" in fields and fields["min"] > fields["max"]:
            raise _RuleProblem(
                line_of("min"), f"rule {name!r}: min {fields['min']:g} is above max {fields['max']:g}"
            )
    if "for" in raw:
        fields["for_s"] = _duration(raw["for"], line_of("for"), name)
    if "severity" in raw:
        if raw["severity"] not in SEVERITIES:
            raise _RuleProblem(
                line_of("severity"), f"rule {name!r}: severity must be one of {', '.join(SEVERITIES)}"
            )
        fields["severity"] = raw["severity"]
    if "summary" in raw:
        if not isinstance(raw["summary"], str):
            raise _RuleProblem(line_of("summary"), f"rule {name!r}: 'summary' must be a string")
        fields["summary"] = raw["summary"]
    rule = ThresholdRule(**fields)
    try:
        rule.render_summary("host", rule.metric, 1.0, 1.0)
    except (KeyError, IndexError, ValueError) as exc:
        raise _RuleProblem(
            line_of("summary"),
            f"rule {name!r}: bad summary template ({exc!r}); fields: rule, host, metric, value, threshold",
        ) from None
    return rule


def _number(value: Any, line: int, what: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _RuleProblem(line, f"{what} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _RuleProblem(line, f"{what} must be a finite number, got {value!r}")
    return float(value)


def _duration(value: Any, line: int, name: str) -> float:
    try:
        return parse_duration(value)
    except (ValueError, TypeError) as exc:
        raise _RuleProblem(line, f"rule {name!r}: {exc}") from None
