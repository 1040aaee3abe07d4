"""``downcheck:`` sections of policy files: scopes, defaults and file:line errors."""

from __future__ import annotations

import pytest

from policies.downcheck import DownCheckSettings
from policies.loader import PolicyError, load_policy_path, load_policy_text


def test_the_example_scopes_load_and_the_first_match_wins() -> None:
    policy = load_policy_path("policies/examples")
    edge = policy.downcheck_for("", "edge-1", {})
    assert (edge.min_region_hosts, edge.grace_s) == (8, 5.0)
    rest = policy.downcheck_for("web-1", "eu-west", {"role": "web"})
    assert (rest.missed, rest.late, rest.flap_window_s) == (3.0, 1.5, 300.0)


def test_without_a_downcheck_section_the_defaults_hold() -> None:
    assert load_policy_text("rules: []").downcheck_for("h", "eu", {}) == DownCheckSettings()


def test_a_label_scope_applies_to_matching_hosts_only() -> None:
    policy = load_policy_text("downcheck:\n  - name: db\n    scope: {labels: {role: db}}\n    missed: 5\n    late: 2\n")
    assert policy.downcheck_for("h", "eu", {"role": "db"}).missed == 5.0
    assert policy.downcheck_for("h", "eu", {"role": "web"}).missed == 3.0


@pytest.mark.parametrize(
    ("text", "where", "needle"),
    [
        ("downcheck:\n  - name: a\n    missed: 2\n", "p.yaml:3", "'late' must be at least 1 and below missed - 1"),
        ("downcheck:\n  - name: a\n    sharee: 0.5\n", "p.yaml:3", "unknown key 'sharee'"),
        ("downcheck:\n  - name: a\n    grace: soon\n", "p.yaml:3", "'grace'"),
        ("downcheck:\n  - name: a\n    min_region_hosts: 2.5\n", "p.yaml:3", "whole number"),
        ("downcheck:\n  - name: a\n  - name: a\n", "p.yaml:3", "already used"),
    ],
)
def test_bad_settings_are_refused_with_file_and_line(text: str, where: str, needle: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "p.yaml")
    (problem,) = caught.value.problems
    assert problem.startswith(where) and needle in problem, problem
