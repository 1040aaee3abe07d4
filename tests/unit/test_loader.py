"""Policy files: what loads, and errors that point at file:line with what to fix."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.loader import PolicyError, load_policy_path, load_policy_text
from policies.model import parse_duration

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"


def test_when_shorthand_and_explicit_min_max_give_the_same_model() -> None:
    rules = load_policy_text(
        """
rules:
  - name: a
    when: cpu_pct > 90 for 60s
  - name: b
    metric: cpu_pct
    max: 90
    for: 1m
  - name: c
    when: disk_free_bytes:/var < 1e9
    severity: critical
""",
        "p.yaml",
    )
    a, b, c = rules
    assert (a.metric, a.max, a.min, a.for_s) == (b.metric, b.max, b.min, b.for_s) == ("cpu_pct", 90.0, None, 60.0)
    assert (c.metric, c.min, c.max, c.severity) == ("disk_free_bytes:/var", 1e9, None, "critical")
    assert a.source == "p.yaml:3" and b.source == "p.yaml:5"


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, "p.yaml")
    return info.value.problems


def test_unknown_key_is_reported_at_its_line() -> None:
    assert problems("rules:\n  - name: a\n    when: cpu_pct > 1\n    sevrity: high\n") == [
        "p.yaml:4: unknown key 'sevrity' (allowed: for, max, metric, min, name, severity, summary, when)"
    ]


def test_unreadable_condition_says_what_was_expected() -> None:
    (msg,) = problems("rules:\n  - name: a\n    when: cpu_pct is high\n")
    assert msg.startswith("p.yaml:3: rule 'a': cannot read when: 'cpu_pct is high'")
    assert "cpu_pct > 90 for 60s" in msg


def test_every_bad_rule_is_reported_not_just_the_first() -> None:
    found = problems(
        "rules:\n"
        "  - name: a\n    metric: m\n    max: 1\n    for: soon\n"
        "  - name: b\n    metric: m\n    min: 5\n    max: 1\n"
        "  - name: c\n    metric: m\n"
        "  - name: d\n    when: m > 1\n    severity: loud\n"
    )
    assert found == [
        "p.yaml:5: rule 'a': not a duration: 'soon' (use e.g. 30s, 5m, 1h)",
        "p.yaml:8: rule 'b': min 5 is above max 1",
        "p.yaml:10: rule 'c': give 'max', 'min' or both",
        "p.yaml:14: rule 'd': severity must be one of info, warning, critical",
    ]


def test_duplicate_rule_names_name_both_places() -> None:
    (msg,) = problems("rules:\n  - name: a\n    when: m > 1\n  - name: a\n    when: m < 0\n")
    assert msg == "p.yaml:4: rule name 'a' already used at p.yaml:2"


def test_invalid_yaml_gives_the_line() -> None:
    (msg,) = problems("rules:\n  - name: a\n    when: [unclosed\n")
    assert msg.startswith("p.yaml:4: invalid YAML")


def test_bad_summary_template_is_caught_at_load_time() -> None:
    (msg,) = problems("rules:\n  - name: a\n    when: m > 1\n    summary: '{hostname} is hot'\n")
    assert msg.startswith("p.yaml:4: rule 'a': bad summary template")


def test_non_numeric_threshold_is_rejected() -> None:
    (msg,) = problems("rules:\n  - name: a\n    metric: m\n    max: lots\n")
    assert msg == "p.yaml:4: rule 'a': 'max' must be a number, got 'lots'"


def test_examples_directory_is_valid() -> None:
    rules = load_policy_path(EXAMPLES)
    assert {r.name for r in rules} >= {"cpu_high", "disk_nearly_full"}


def test_a_directory_with_errors_reports_each_file(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text("rules:\n  - name: a\n    when: m > 1\n")
    (tmp_path / "bad.yaml").write_text("rules:\n  - name: a\n    when: m > 2\n  - name: b\n    when: ?\n")
    with pytest.raises(PolicyError) as info:
        load_policy_path(tmp_path)
    assert [p.split(": ")[0] for p in info.value.problems] == [f"{tmp_path}/bad.yaml:5"]


def test_missing_path_is_an_error() -> None:
    with pytest.raises(PolicyError, match="no such file or directory"):
        load_policy_path("/nonexistent/policies")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("5m", 300), ("1.5h", 5400), ("250ms", 0.25), ("2d", 172800), (30, 30)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@given(st.text(max_size=30))
def test_duration_parser_never_raises_anything_but_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert parse_duration(text) >= 0


@given(st.text(max_size=200))
def test_policy_parser_never_raises_anything_but_policy_error(text: str) -> None:
    try:
        load_policy_text(text, "fuzz.yaml")
    except PolicyError as exc:
        assert all(p.startswith("fuzz.yaml") for p in exc.problems)


_scalar = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_rule = st.dictionaries(
    st.sampled_from(["name", "when", "metric", "max", "min", "for", "severity", "summary", "extra"]),
    _scalar | st.sampled_from(["cpu_pct > 90 for 60s", "m < 1", "5m", "critical", "{host}", "{nope}"]),
)


@given(st.lists(_rule, max_size=5))
def test_structured_rule_fuzz_yields_rules_or_located_errors(rules: list[dict[str, object]]) -> None:
    import yaml

    text = yaml.safe_dump({"rules": rules})
    try:
        loaded = load_policy_text(text, "fuzz.yaml")
    except PolicyError as exc:
        assert all(p.startswith("fuzz.yaml:") for p in exc.problems)
    else:
        assert len(loaded) == len(rules)
        assert all(r.max is not None or r.min is not None for r in loaded)
