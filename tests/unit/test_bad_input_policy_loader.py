"""Bad input, policy files: whatever a file holds, the loader raises nothing but PolicyError, every
problem names ``file:line``, and what does load is bounded (finite durations, templates that
render, regexes that run in linear time)."""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.loader import _TEMPLATE_FIELDS, MAX_TEMPLATE_WIDTH, PolicyError, load_policy_text, load_policy_texts
from policies.model import MAX_DURATION_S, PolicySet
from tests.bad_input import hostile_numbers, hostile_text, json_values, mutations

ORIGIN = "fuzz.yaml"
_LOCATED = re.compile(rf"^{re.escape(ORIGIN)}(:\d+)?: \S")
VALID_RULES: list[dict[str, Any]] = [
    {"name": "a", "when": "cpu_pct > 90 for 60s", "summary": "{rule} {value:.1f}", "renotify": "1h"},
    {"name": "b", "metric": "m", "max": {"warning": 5, "critical": 9}, "agg": "p95", "window": "1m"},
    {"name": "c", "process": "nginx", "count": {"min": 2, "max": 9}, "window": "2m", "for": "30s"},
    {"name": "d", "schedule": "0 2 * * *", "process": "backup", "within": "1h", "max_runtime": "3h"},
    {"name": "e", "log": "oom", "at_least": 3, "within": "10m", "annotations": {"runbook": "x/{host}"}},
    {"name": "f", "log": "done", "absent_for": "1d", "flap": {"window": "10m", "changes": 3}},
    {"name": "g", "group": {"metric": "cpu_pct", "agg": "avg"}, "max": 80, "scale": {"out_above": 70}},
    {"name": "h", "when": "m > 1", "scope": {"labels": {"role": {"regex": "web-.*"}}, "region": "eu"}},
]
VALID_FILE = {
    "rules": VALID_RULES,
    "maintenance": [{"name": "m", "cron": "0 3 * * 0", "duration": "2h", "match": {"env": {"not": "prod"}}}],
    "inhibit": [{"name": "i", "source": {"rule": "host_down"}, "target": {"kind": "metric"}, "equal": ["host_id"]}],
    "downcheck": [{"name": "d", "missed": 3, "late": 1.5, "grace": "5s", "scope": {"region": "eu"}}],
}
_hostile = st.one_of(json_values, hostile_text, hostile_numbers)


def _load(text: str) -> PolicySet | None:
    """Load ``text``: a policy set, or None after checking every problem is located."""
    try:
        return load_policy_text(text, ORIGIN)
    except PolicyError as exc:
        assert exc.problems and all(_LOCATED.match(p) for p in exc.problems), exc.problems
        return None
    except Exception as exc:  # the finding
        raise AssertionError(f"{type(exc).__name__} escaped the loader: {exc!r}"[:500]) from exc


def _check_bounded(policy: PolicySet) -> None:
    """What loaded is usable: finite bounded durations, templates that render, matchers that run."""
    for rule in (*policy.metric_rules, *policy.group_rules):
        for seconds in (getattr(rule, "window_s", 0.0), rule.for_s, rule.notify.renotify_s, rule.notify.flap_window_s):
            assert math.isfinite(seconds) and 0 <= seconds <= MAX_DURATION_S
        for template in (rule.notify.summary, *(t for _, t in rule.notify.annotations)):
            rendered = template.format(**_TEMPLATE_FIELDS)
            assert len(rendered) <= len(template) + (MAX_TEMPLATE_WIDTH + 50) * template.count("{")
        rule.selector.matches("h" * 1000, "eu", {"role": "a" * 10_000 + "!", "env": "\x00"})
    for window in policy.maintenance:
        assert 0 < window.duration_s <= MAX_DURATION_S


def _dump(doc: Any) -> str:
    try:
        return yaml.safe_dump(doc, allow_unicode=True)
    except (yaml.YAMLError, UnicodeEncodeError):
        return yaml.safe_dump(doc)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID_RULES).flatmap(lambda rule: mutations(rule, _hostile)))
def test_any_rule_with_keys_replaced_by_hostile_values_loads_bounded_or_is_a_located_policy_error(
    rule: dict[str, Any],
) -> None:
    loaded = _load(_dump({"rules": [rule]}))
    if loaded is not None:
        _check_bounded(loaded)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations(VALID_FILE, st.one_of(_hostile, st.lists(_hostile, max_size=3))))
def test_any_file_with_sections_replaced_is_a_located_policy_error(doc: dict[str, Any]) -> None:
    loaded = _load(_dump(doc))
    if loaded is not None:
        _check_bounded(loaded)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["summary", "annotations", "for", "window", "renotify", "scope", "labels", "when"]),
    hostile_text,
)
def test_hostile_text_under_any_key_is_a_located_policy_error(key: str, text: str) -> None:
    rule: dict[str, Any] = {"name": "a", "when": "m > 1"}
    if key == "annotations":
        rule[key] = {"note": text}
    elif key == "scope":
        rule[key] = {"labels": {"role": {"regex": text}}}
    elif key == "labels":
        rule[key] = {text or "x": text}
    else:
        rule[key] = text
    try:
        doc = yaml.safe_dump({"rules": [rule]}, allow_unicode=True)
    except UnicodeEncodeError:
        return  # a lone surrogate cannot be written as a YAML file
    loaded = _load(doc)
    if loaded is not None:
        _check_bounded(loaded)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6000), st.sampled_from(["[", "{a: ", "- ", "  " * 1]))
def test_any_nesting_depth_is_a_located_policy_error_or_loads(depth: int, opener: str) -> None:
    closer = {"[": "]", "{a: ": "}"}.get(opener, "")
    if opener == "- ":
        text = "".join("  " * i + "- \n" for i in range(min(depth, 400))) + "  " * min(depth, 400) + "x\n"
    else:
        text = "rules: " + opener * depth + "1" * (opener == "{a: ") + closer * depth + "\n"
    _load(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abc:-[]{}&*!|>'\"#%@`,? \n\t0123456789.", max_size=300))
def test_arbitrary_yaml_ish_text_is_a_located_policy_error_or_loads(text: str) -> None:
    _load(text)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 25), st.integers(2, 12))
def test_alias_bombs_of_any_size_are_a_located_policy_error_or_load(levels: int, fanout: int) -> None:
    lines = ['a0: &a0 ["' + "x" * 50 + '"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fanout) + "]" for i in range(1, levels)]
    _load("\n".join(lines))


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.sampled_from(["a.yaml", "b.yaml", "c.yml"]), st.text(max_size=200), max_size=3))
def test_a_published_set_of_any_files_is_a_located_policy_error_or_loads(files: dict[str, str]) -> None:
    try:
        load_policy_texts(files)
    except PolicyError as exc:
        assert all(any(p.startswith(name) for name in files) for p in exc.problems), exc.problems
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__} escaped the loader: {exc!r}"[:500]) from exc
