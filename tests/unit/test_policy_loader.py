"""Policy files: what loads, and errors that point at file:line with what to fix."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.loader import PolicyError, load_policy_path, load_policy_text, load_policy_texts
from policies.model import GroupRule, MetricRule, ScheduleRule, Threshold, parse_duration

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, "p.yaml")
    return info.value.problems


def test_when_shorthand_and_explicit_min_max_give_the_same_model() -> None:
    loaded = load_policy_text(
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
    a, b, c = loaded.metric_rules
    assert (a.metric, a.thresholds, a.for_s) == (b.metric, b.thresholds, b.for_s)
    assert a.thresholds == (Threshold("max", 90.0, "warning", 90.0),) and a.for_s == 60.0
    assert c.metric == "disk_free_bytes:/var" and c.thresholds == (Threshold("min", 1e9, "critical", 1e9),)
    assert (a.source, b.source, c.source) == ("p.yaml:3", "p.yaml:5", "p.yaml:9")
    assert len(loaded) == 3 and loaded.names() == ["a", "b", "c"]


def test_levels_hysteresis_and_recovery_points_become_thresholds() -> None:
    loaded = load_policy_text(
        """
rules:
  - name: cpu
    metric: cpu_pct
    agg: avg
    window: 2m
    max: {warning: 85, critical: 95}
    min: 1
    hysteresis: 5
  - name: disk
    metric: disk_used_pct
    max: {warning: 85, critical: 95}
    recover: {max: {critical: 92}}
""",
        "p.yaml",
    )
    cpu, disk = loaded.metric_rules
    assert cpu.thresholds == (
        Threshold("max", 85.0, "warning", 80.0),
        Threshold("max", 95.0, "critical", 90.0),
        Threshold("min", 1.0, "warning", 6.0),
    )
    assert (cpu.agg, cpu.window_s) == ("avg", 120.0)
    assert disk.thresholds == (Threshold("max", 85.0, "warning", 85.0), Threshold("max", 95.0, "critical", 92.0))


def test_every_rule_kind_loads_into_the_model() -> None:
    loaded = load_policy_path(EXAMPLES)
    kinds = {r.name: r.kind for r in (*loaded.metric_rules, *loaded.schedule_rules, *loaded.group_rules)}
    assert kinds["cpu_high"] == "metric"
    assert kinds["nginx_workers.count_min"] == kinds["nginx_workers.count_max"] == "process"
    assert kinds["oom_kills"] == kinds["backup_report_missing"] == "log"
    assert kinds["nightly_backup"] == kinds["nightly_backup.runtime"] == "schedule"
    assert kinds["web_capacity"] == kinds["web_hosts_serving"] == "group"
    by_name = {r.name: r for r in loaded.metric_rules}
    count_min = by_name["nginx_workers.count_min"]
    # a minimum count sees the window's maximum: only a drop held for the whole window fires
    assert (count_min.metric, count_min.agg, count_min.window_s) == ("proc_count:nginx", "max", 60.0)
    assert dict(count_min.labels)["group"] == "nginx"
    oom = by_name["oom_kills"]
    assert (oom.metric, oom.agg, oom.window_s) == ("log_count:oom", "sum", 600.0)
    assert oom.thresholds == (Threshold("max", 3.0, "critical", 2.0, inclusive=True),)
    absent = by_name["backup_report_missing"]
    assert absent.thresholds == (Threshold("min", 1.0, "warning", 1.0),) and absent.window_s == 26 * 3600
    (backup,) = loaded.schedule_rules
    assert isinstance(backup, ScheduleRule) and (backup.cron, backup.within_s, backup.group) == (
        "0 2 * * *",
        3600.0,
        "backup",
    )
    capacity = next(g for g in loaded.group_rules if g.name == "web_capacity")
    assert isinstance(capacity, GroupRule) and capacity.scale is not None
    assert (capacity.scale.out_above, capacity.scale.in_below, capacity.scale.cooldown_s) == (80.0, 20.0, 600.0)
    assert [m.name for m in loaded.maintenance] == ["sunday_patching"]
    assert [i.equal for i in loaded.inhibit] == [("host_id",)]
    assert isinstance(by_name["cpu_high"], MetricRule)


def test_the_version_follows_the_content() -> None:
    one = load_policy_texts({"a.yaml": "rules:\n  - name: a\n    when: m > 1\n"})
    same = load_policy_texts({"a.yaml": "rules:\n  - name: a\n    when: m > 1\n"})
    other = load_policy_texts({"a.yaml": "rules:\n  - name: a\n    when: m > 2\n"})
    assert one.version == same.version != other.version and len(one.version) == 12


def test_unknown_key_is_reported_at_its_line() -> None:
    (msg,) = problems("rules:\n  - name: a\n    when: cpu_pct > 1\n    sevrity: high\n")
    assert msg.startswith("p.yaml:4: rule 'a': unknown key 'sevrity' for a metric rule (allowed: agg, annotations,")


def test_unreadable_condition_says_what_was_expected() -> None:
    (msg,) = problems("rules:\n  - name: a\n    when: cpu_pct is high\n")
    assert msg.startswith("p.yaml:3: rule 'a': cannot read when: 'cpu_pct is high'")
    assert "cpu_pct > 90 for 60s" in msg


def test_a_non_numeric_threshold_in_when_is_reported_at_the_when_line() -> None:
    assert problems("rules:\n  - name: x\n    when: cpu > ninety\n") == [
        "p.yaml:3: rule 'x': the threshold in 'when' must be a number, got 'ninety'"
    ]


def test_every_bad_rule_is_reported_not_just_the_first() -> None:
    found = problems(
        "rules:\n"
        "  - name: a\n    metric: m\n    max: 1\n    for: soon\n"
        "  - name: b\n    metric: m\n    min: 5\n    max: 1\n"
        "  - name: c\n    metric: m\n"
        "  - name: d\n    when: m > 1\n    severity: loud\n"
        "  - name: e\n    log: oom\n    at_least: 3\n"
        "  - name: f\n    schedule: '0 2 * * *'\n    process: b\n    within: 1h\n    timezone: Mars/Olympus\n"
    )
    assert found == [
        "p.yaml:5: rule 'a': 'for': not a duration: 'soon' (use e.g. 30s, 5m, 1h)",
        "p.yaml:8: rule 'b': min 5 is above max 1",
        "p.yaml:10: rule 'c': give 'max', 'min' or both",
        "p.yaml:14: rule 'd': severity must be one of info, warning, critical, got 'loud'",
        "p.yaml:17: rule 'e': 'at_least' needs 'within' (the window the matches are counted in)",
        "p.yaml:22: rule 'f': unknown time zone 'Mars/Olympus'",
    ]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("    metric: m\n    max: {warning: 90, critical: 80}\n", "4: rule 'a': 'max' levels must get stricter"),
        ("    metric: m\n    max: 90\n    recover: {max: 95}\n", "5: rule 'a': recovery point 95 of max warning"),
        ("    metric: m\n    max: 1\n    agg: avg\n", "5: rule 'a': 'agg: avg' needs a 'window'"),
        ("    metric: m\n    max: 1\n    agg: p99\n    window: 1m\n", "5: rule 'a': 'agg' must be one of"),
        ("    metric: m\n    max: 1\n    hysteresis: -1\n", "5: rule 'a': 'hysteresis' must be >= 0"),
        ("    metric: m\n    max: 1\n    flap: {changes: -1}\n", "5: rule 'a': 'flap.changes' must be a whole"),
        ("    metric: m\n    max: 1\n    scope:\n      labels: {env: {regex: '('}}\n", "6: rule 'a': label 'env': bad"),
        ("    metric: m\n    max: 1\n    scope: {zone: a}\n", "5: rule 'a': unknown key 'zone' in 'scope'"),
        ("    schedule: '61 2 * * *'\n    process: b\n    within: 1h\n", "3: rule 'a': bad cron expression"),
        ("    schedule: '0 2 * * *'\n    process: b\n", "3: rule 'a': needs 'within'"),
        ("    log: oom\n    at_least: 3\n    within: 1m\n    absent_for: 1h\n", "3: rule 'a': give either"),
        ("    log: oom\n    at_least: 0\n    within: 1m\n", "4: rule 'a': 'at_least' must be >= 1"),
        ("    process: nginx\n", "3: rule 'a': give at least one of 'count'"),
        ("    process: nginx\n    count: {least: 2}\n", "4: rule 'a': 'count' takes 'min' and 'max'"),
        (
            "    group: {metric: cpu, agg: avg}\n    max: 80\n    scale: {out_above: 10, in_below: 20}\n",
            "5: rule 'a': 'scale.in_below' must be below 'scale.out_above'",
        ),
        ("    group: {metric: cpu, agg: p95}\n    max: 80\n", "3: rule 'a': group 'agg' must be avg, max"),
        ("    max: 1\n", "2: rule 'a': say what it watches"),
    ],
)
def test_rule_errors_name_the_line_and_what_to_fix(rule: str, expected: str) -> None:
    (msg,) = problems("rules:\n  - name: a\n" + rule)
    assert msg.startswith(f"p.yaml:{expected}"), msg


def test_maintenance_and_inhibit_errors_say_what_they_are_about() -> None:
    found = problems(
        "maintenance:\n  - name: m\n    cron: '0 3 * * *'\n"
        "  - name: n\n    cron: 'x'\n    duration: 1h\n"
        "inhibit:\n  - name: i\n    source: {rule: x}\n"
    )
    assert found == [
        "p.yaml:2: maintenance window 'm': needs a 'duration' > 0",
        "p.yaml:5: maintenance window 'n': bad cron expression 'x': Wrong number of fields",
        "p.yaml:8: inhibit rule 'i': needs 'target' (label conditions of the target alerts)",
    ]


def test_duplicate_rule_names_name_both_places() -> None:
    (msg,) = problems("rules:\n  - name: a\n    when: m > 1\n  - name: a\n    when: m < 0\n")
    assert msg == "p.yaml:4: rule name 'a' already used at p.yaml:2"


def test_duplicates_across_files_name_both_files() -> None:
    with pytest.raises(PolicyError) as info:
        load_policy_texts(
            {"a.yaml": "rules:\n  - name: x\n    when: m > 1\n", "b.yaml": "\n\nrules:\n  - name: x\n    when: m > 1\n"}
        )
    assert info.value.problems == ["b.yaml:4: rule name 'x' already used at a.yaml:2"]


def test_invalid_yaml_gives_the_line() -> None:
    (msg,) = problems("rules:\n  - name: a\n    when: [unclosed\n")
    assert msg.startswith("p.yaml:4: invalid YAML")


def test_a_file_that_is_not_a_policy_mapping_says_what_it_should_be() -> None:
    assert problems("- a\n- b\n") == ["p.yaml:1: a policy file is a mapping of downcheck, inhibit, maintenance, rules"]
    assert problems("rules: 5\n") == ["p.yaml:1: 'rules' must be a list"]
    assert problems("rules:\n  - 5\n") == ["p.yaml:1: each entry of 'rules' must be a mapping"]


@pytest.mark.parametrize(
    "template",
    ["{hostname} is hot", "{hostname} on {labels[team]}", "{value:q}", "{labels.x}", "{0}", "{host"],
)
def test_bad_summary_template_is_caught_at_load_time(template: str) -> None:
    (msg,) = problems(f"rules:\n  - name: a\n    when: m > 1\n    summary: '{template}'\n")
    assert msg.startswith(f"p.yaml:4: rule 'a': bad template {template!r}")


def test_good_templates_load_including_labels_a_host_may_lack() -> None:
    loaded = load_policy_text(
        "rules:\n  - name: a\n    when: m > 1\n    summary: '{rule} {value:.1f} {labels[team]}'\n"
        "    annotations: {runbook: 'https://x/{host}/{metric}'}\n",
        "p.yaml",
    )
    assert loaded.metric_rules[0].notify.annotations == (("runbook", "https://x/{host}/{metric}"),)


def test_bad_annotation_template_is_caught_at_load_time() -> None:
    (msg,) = problems("rules:\n  - name: a\n    when: m > 1\n    annotations: {runbook: 'x/{hots}'}\n")
    assert msg.startswith("p.yaml:4: rule 'a': bad template 'x/{hots}'")


def test_non_numeric_threshold_is_rejected() -> None:
    assert problems("rules:\n  - name: a\n    metric: m\n    max: lots\n") == [
        "p.yaml:4: rule 'a': 'max' must be a number, got 'lots'"
    ]


def test_examples_directory_is_valid() -> None:
    loaded = load_policy_path(EXAMPLES)
    assert set(loaded.names()) >= {"cpu_high", "disk_nearly_full", "nginx_workers.count_min", "web_capacity"}


def test_a_directory_with_errors_reports_each_file(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text("rules:\n  - name: a\n    when: m > 1\n")
    (tmp_path / "bad.yaml").write_text("rules:\n  - name: b\n    when: m > 2\n  - name: c\n    when: ?\n")
    (tmp_path / "worse.yml").write_text("rules:\n  - name: d\n    when: m >\n")
    (tmp_path / "notes.txt").write_text("not a policy")
    with pytest.raises(PolicyError) as info:
        load_policy_path(tmp_path)
    assert [p.split(": ")[0] for p in info.value.problems] == [f"{tmp_path}/bad.yaml:5", f"{tmp_path}/worse.yml:3"]


def test_missing_path_is_an_error() -> None:
    with pytest.raises(PolicyError, match="no such file or directory"):
        load_policy_path("/nonexistent/policies")


def test_an_empty_file_is_an_empty_policy(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    assert len(load_policy_path(tmp_path)) == 0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("5m", 300), ("1.5h", 5400), ("250ms", 0.25), ("2d", 172800), (30, 30)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5s", "5 minutes", "", True, float("nan"), -1])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)  # type: ignore[arg-type]


@given(st.text(max_size=30))
def test_duration_parser_never_raises_anything_but_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert parse_duration(text) >= 0


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_policy_parser_never_raises_anything_but_policy_error(text: str) -> None:
    try:
        load_policy_text(text, "fuzz.yaml")
    except PolicyError as exc:
        assert all(p.startswith("fuzz.yaml") for p in exc.problems)


_scalar = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_value = _scalar | st.sampled_from(
    ["cpu_pct > 90 for 60s", "m < 1", "5m", "critical", "{host}", "{nope}", "0 2 * * *", "nginx", "oom"]
)
_anything = st.recursive(
    _value, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_value, inner, max_size=3), max_leaves=6
)
_KEYS = [
    *("name", "when", "metric", "max", "min", "for", "severity", "summary", "agg", "window", "hysteresis"),
    *("recover", "process", "schedule", "within", "log", "at_least", "absent_for", "group", "scope", "count"),
    *("flap", "renotify", "labels", "annotations", "stale", "scale", "timezone", "max_runtime", "extra"),
]
_rule = st.dictionaries(st.sampled_from(_KEYS), _anything)
_VALID = [
    {"when": "cpu_pct > 90 for 60s"},
    {"metric": "m", "max": {"warning": 5, "critical": 9}, "agg": "p95", "window": "1m", "hysteresis": 1},
    {"process": "nginx", "count": {"min": 2, "max": 9}, "cpu_pct": {"max": 300}},
    {"schedule": "0 2 * * *", "process": "backup", "within": "1h", "max_runtime": "3h"},
    {"log": "oom", "at_least": 3, "within": "10m"},
    {"log": "done", "absent_for": "1d"},
    {"group": {"metric": "cpu_pct", "agg": "avg"}, "max": 80, "scale": {"out_above": 70}},
    {"group": {"running": "nginx"}, "min": 2, "scope": {"labels": {"role": "web"}}},
]
# a valid rule of each kind, as it is or with a key or two replaced by anything
_mutated = st.builds(
    lambda base, changes, n: {**base, "name": f"r{n}", **changes},
    st.sampled_from(_VALID),
    st.just({}) | st.dictionaries(st.sampled_from(_KEYS), _anything, max_size=2),
    st.integers(0, 5),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_rule | _mutated, max_size=5))
def test_structured_rule_fuzz_yields_rules_or_located_errors(rules: list[dict[str, object]]) -> None:
    text = yaml.safe_dump({"rules": rules})
    try:
        loaded = load_policy_text(text, "fuzz.yaml")
    except PolicyError as exc:
        assert all(p.startswith("fuzz.yaml:") for p in exc.problems), exc.problems
    else:
        assert len(loaded) >= len(rules)
        assert all(r.thresholds for r in (*loaded.metric_rules, *loaded.group_rules))


def test_a_bad_bound_inside_a_nested_mapping_is_reported_at_its_own_line() -> None:
    text = "rules:\n  - name: y\n    process: nginx\n    window: 1m\n    count: {min: two}\n"
    with pytest.raises(PolicyError) as err:
        load_policy_text(text, "p.yaml")
    assert err.value.problems == ["p.yaml:5: rule 'y': 'min' must be a number, got 'two'"]


# --- inputs that used to escape validation (security review) ---------------------------------


def test_a_5000_deep_yaml_is_a_file_line_error_not_a_traceback() -> None:
    deep = "rules:\n  - name: a\n    when: m > 1\n    labels: " + "[" * 5000 + "]" * 5000 + "\n"
    (msg,) = problems(deep)
    assert msg.startswith("p.yaml:4: invalid YAML: nested deeper than 64 levels")
    (flow,) = problems("a: " + "{b: " * 5000 + "1" + "}" * 5000)
    assert flow.startswith("p.yaml:1: invalid YAML: nested deeper than")


def test_aliases_that_expand_to_billions_of_nodes_are_refused_at_their_line() -> None:
    lines = ['a0: &a0 ["' + "x" * 100 + '"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 20)]
    (msg,) = problems("\n".join(lines))
    assert msg.startswith("p.yaml:") and "aliases expand this to more than" in msg


def test_a_5000_deep_yaml_and_a_bad_template_make_policy_validate_exit_2_without_traceback(tmp_path: Path) -> None:
    from tests.cli import fleetpulse

    (tmp_path / "deep.yaml").write_text("rules: " + "[" * 5000 + "]" * 5000 + "\n")
    (tmp_path / "template.yaml").write_text("rules:\n  - name: a\n    when: m > 1\n    summary: '{value[0]}'\n")
    done = fleetpulse("policy", "validate", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"{tmp_path / 'deep.yaml'}:1: invalid YAML: nested deeper than 64 levels" in done.stderr
    assert f"{tmp_path / 'template.yaml'}:4: rule 'a': bad template '{{value[0]}}'" in done.stderr


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("{value[0]}", "'value' takes no index or attribute"),
        ("{rule.__class__}", "'rule' takes no index or attribute"),
        ("{labels[team][0]}", "name one label"),
        ("{labels}", None),  # the whole label set: allowed, as before
        ("{value:99999999999}", "widths and precisions are at most 200"),
        ("{value:.1000f}", "widths and precisions are at most 200"),
        ("{host:>{value}}", "a format spec cannot hold fields"),
        ("{}", "unknown field {}"),
    ],
)
def test_a_summary_template_names_known_fields_with_bounded_widths(template: str, why: str | None) -> None:
    text = f"rules:\n  - name: a\n    when: m > 1\n    summary: '{template}'\n"
    if why is None:
        assert load_policy_text(text, "p.yaml").metric_rules[0].notify.summary == template
        return
    (msg,) = problems(text)
    assert msg.startswith(f"p.yaml:4: rule 'a': bad template {template!r}") and why in msg, msg


def test_a_bounded_template_width_still_loads() -> None:
    text = "rules:\n  - name: a\n    when: m > 1\n    summary: '{rule:>20} {value:10.3f} {labels[team]:<8}'\n"
    assert load_policy_text(text, "p.yaml").metric_rules[0].notify.summary.startswith("{rule:>20}")


def test_a_duration_of_999_9_hours_is_a_file_line_error_not_infinity() -> None:
    (msg,) = problems("rules:\n  - name: a\n    when: m > 1\n    for: " + "9" * 400 + "h\n")
    assert msg.startswith("p.yaml:4: rule 'a': 'for': duration") and "longer than the maximum of 400d" in msg
    (inline,) = problems("rules:\n  - name: a\n    when: m > 1 for " + "9" * 400 + "h\n")
    assert inline.startswith("p.yaml:3: rule 'a':") and "maximum of 400d" in inline
    (number,) = problems("rules:\n  - name: a\n    when: m > 1\n    for: " + "9" * 400 + "\n")
    assert number.startswith("p.yaml:4: rule 'a': 'for':")


def test_durations_are_finite_and_at_most_400_days() -> None:
    from policies.model import MAX_DURATION_S

    assert MAX_DURATION_S == 400 * 86400 and parse_duration("400d") == MAX_DURATION_S
    assert parse_duration("2w") == 14 * 86400
    for text in ("401d", "9601h", "1e999", 10**400, float("inf"), 34_560_001):
        with pytest.raises(ValueError):
            parse_duration(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rule", "key"),
    [
        ("group: {metric: cpu_pct, agg: avg}\n    max: 80\n    stale: 0s", "stale"),
        ("schedule: '0 2 * * *'\n    process: backup\n    within: 1h\n    max_runtime: 0", "max_runtime"),
        ("when: m > 1\n    flap: {window: 0s, changes: 3}", "window"),
    ],
)
def test_a_zero_duration_is_refused_where_it_means_nothing(rule: str, key: str) -> None:
    (msg,) = problems(f"rules:\n  - name: a\n    {rule}\n")
    assert f"'{key}' must be > 0" in msg and msg.startswith("p.yaml:")


def test_a_zero_duration_loads_where_it_means_something() -> None:
    loaded = load_policy_text("rules:\n  - name: a\n    when: m > 1\n    for: 0s\n    renotify: 0\n", "p.yaml")
    assert loaded.metric_rules[0].for_s == 0 and loaded.metric_rules[0].notify.renotify_s == 0


def test_the_redos_label_regex_runs_on_re2_and_completes() -> None:
    """``(a+)+$`` took 403 ms per evaluation on a 24-character label with Python's re, doubling
    per character; on RE2 a label of 100,000 characters is one linear pass."""
    loaded = load_policy_text(
        "rules:\n  - name: a\n    when: m > 1\n    scope: {labels: {role: {regex: '(a+)+$'}}}\n", "p.yaml"
    )
    selector = loaded.metric_rules[0].selector
    for label in ("a" * 24 + "!", "a" * 100_000 + "!"):
        assert not selector.matches("h1", "eu", {"role": label})
    assert selector.matches("h1", "eu", {"role": "a" * 100_000})


def test_a_backreference_regex_re2_cannot_run_is_refused_at_load_with_file_line() -> None:
    text = "rules:\n  - name: a\n    when: m > 1\n    scope:\n      labels:\n        role: {regex: '(a)\\1'}\n"
    (msg,) = problems(text)
    assert msg.startswith("p.yaml:6: rule 'a': label 'role': bad regex") and "RE2" in msg, msg
    (look,) = problems("inhibit:\n  - name: i\n    source: {a: {regex: '(?=x)'}}\n    target: {b: c}\n")
    assert look.startswith("p.yaml:3: inhibit rule 'i': label 'a': bad regex"), look


def test_label_values_must_be_scalars_not_structures() -> None:
    (msg,) = problems("rules:\n  - name: a\n    when: m > 1\n    labels: {team: [a, b]}\n")
    assert msg == "p.yaml:4: rule 'a': 'labels' must be a mapping of names to strings"
    (scope,) = problems("rules:\n  - name: a\n    when: m > 1\n    scope: {labels: {team: {in: [[a]]}}}\n")
    assert scope.startswith("p.yaml:4: rule 'a': label 'team': 'in' takes a list of values")


def test_a_template_the_loader_refuses_never_reaches_a_worker() -> None:
    """A published set with ``{value[0]}`` used to raise TypeError out of the worker's policy feed."""
    from aiokafka.structs import ConsumerRecord

    from policies.control import POLICY_KEY, PublishedPolicy
    from policies.model import PolicySet
    from streams.policy_holder import PolicyHolder
    from streams.settings import WorkerStats

    stats = WorkerStats()
    holder = PolicyHolder(PolicySet(), stats)
    files = {"p.yaml": "rules:\n  - name: a\n    when: m > 1\n    summary: '{value[0]}'\n"}
    value = PublishedPolicy(files, "v1", 1.0).encode()
    record = ConsumerRecord("t", 0, 0, 0, 0, POLICY_KEY, value, None, 0, len(value), [])
    holder.on_policy(record)
    assert stats.policies_refused == 1 and holder.evaluator.policy.version == ""
