"""The routing tree: which receivers an alert goes to, and in which group, as Alertmanager decides.

An alert enters at the root. At each node its children are tried in order: the first whose
matchers all hold takes the alert, and the search stops there unless that child says
``continue: true``. A matched child routes the alert on through its own children in the same
way; a node none of whose children takes the alert handles it itself. A child inherits the
receiver, ``group_by`` and timers of its parent unless it sets them (time intervals are its own).

Matchers are :class:`policies.model.LabelMatch`: RE2 regexes anchored at both ends, a missing
label being the empty string. The label set is :func:`policies.alerts.labels_of`.

The group key is Alertmanager's ``{route}:{group labels}``. The route part is the chain of
matcher sets from the root, each followed by the node's position among its siblings, e.g.
``{}/{severity="critical"}/0/{region=~"eu-.*"}/1:{region="eu-1", rule="cpu"}``. Alertmanager's
route id appends only the last position, so two nodes in different branches with the same
matchers at each level share an id there; here every node's id is its own.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass

from policies.model import LabelMatch
from sinks.notify.config import (
    DEFAULT_GROUP_INTERVAL_S,
    DEFAULT_GROUP_WAIT_S,
    DEFAULT_REPEAT_INTERVAL_S,
    GROUP_BY_ALL,
    RouteConfig,
)


@dataclass(frozen=True)
class Timers:
    """A route's timers, in seconds."""

    group_wait_s: float = DEFAULT_GROUP_WAIT_S
    group_interval_s: float = DEFAULT_GROUP_INTERVAL_S
    repeat_interval_s: float = DEFAULT_REPEAT_INTERVAL_S


@dataclass(frozen=True)
class Route:
    """A node of the routing tree with everything inherited already resolved."""

    route_id: str
    receiver: str
    group_by: tuple[str, ...]  # ("...",): every label
    timers: Timers
    matchers: tuple[LabelMatch, ...] = ()
    continue_matching: bool = False
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()

    @property
    def groups_by_all(self) -> bool:
        return self.group_by == (GROUP_BY_ALL,)


@dataclass(frozen=True)
class Match:
    """Where an alert goes: a route (its id, receiver, timers, time intervals) and its group there."""

    route_id: str
    receiver: str
    group_by: tuple[str, ...]
    timers: Timers
    mute_time_intervals: tuple[str, ...]
    active_time_intervals: tuple[str, ...]
    group_labels: tuple[tuple[str, str], ...]  # sorted by name
    group_key: str


def build_tree(config: RouteConfig) -> Route:
    """The resolved tree of a loaded root route (receiver, grouping and timers inherited)."""
    root = Route(
        route_id=format_matchers(config.matchers),
        receiver=config.receiver or "",
        group_by=config.group_by or (),
        timers=Timers(
            config.group_wait_s if config.group_wait_s is not None else DEFAULT_GROUP_WAIT_S,
            config.group_interval_s or DEFAULT_GROUP_INTERVAL_S,
            config.repeat_interval_s or DEFAULT_REPEAT_INTERVAL_S,
        ),
    )
    return _with_children(root, config)


def _with_children(node: Route, config: RouteConfig) -> Route:
    children = []
    for position, child in enumerate(config.routes):
        resolved = Route(
            route_id=f"{node.route_id}/{format_matchers(child.matchers)}/{position}",
            receiver=child.receiver if child.receiver is not None else node.receiver,
            group_by=child.group_by if child.group_by is not None else node.group_by,
            timers=Timers(
                child.group_wait_s if child.group_wait_s is not None else node.timers.group_wait_s,
                child.group_interval_s if child.group_interval_s is not None else node.timers.group_interval_s,
                child.repeat_interval_s if child.repeat_interval_s is not None else node.timers.repeat_interval_s,
            ),
            matchers=child.matchers,
            continue_matching=child.continue_matching,
            mute_time_intervals=child.mute_time_intervals,
            active_time_intervals=child.active_time_intervals,
        )
        children.append(_with_children(resolved, child))
    return dataclasses.replace(node, routes=tuple(children))


def matching_routes(node: Route, labels: Mapping[str, str]) -> list[Route]:
    """The routes that handle ``labels`` below (and including) ``node``, in tree order."""
    if not all(m.matches(labels) for m in node.matchers):
        return []
    found: list[Route] = []
    for child in node.routes:
        matched = matching_routes(child, labels)
        found.extend(matched)
        if matched and not child.continue_matching:
            break
    return found or [node]


def route_alert(tree: Route, labels: Mapping[str, str]) -> list[Match]:
    """Every route that takes an alert with ``labels`` (at least the root), with its group there."""
    matches = []
    for route in matching_routes(tree, labels):
        group_labels = group_labels_of(route, labels)
        matches.append(
            Match(
                route_id=route.route_id,
                receiver=route.receiver,
                group_by=route.group_by,
                timers=route.timers,
                mute_time_intervals=route.mute_time_intervals,
                active_time_intervals=route.active_time_intervals,
                group_labels=group_labels,
                group_key=f"{route.route_id}:{format_labels(group_labels)}",
            )
        )
    return matches


def group_labels_of(route: Route, labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The labels that name the alert's group on ``route``: those of ``group_by`` it has (every
    label for ``['...']``). An empty label counts as absent, as in Prometheus."""
    names = labels if route.groups_by_all else route.group_by
    return tuple(sorted((name, labels[name]) for name in names if labels.get(name)))


def _quote(value: str) -> str:
    """A quoted label value: JSON's escapes (what Go's ``%q`` gives for printable text)."""
    return json.dumps(value, ensure_ascii=False)


def format_labels(labels: tuple[tuple[str, str], ...]) -> str:
    """``{a="1", b="2"}``, as Alertmanager prints a label set (sorted by name)."""
    return "{" + ", ".join(f"{name}={_quote(value)}" for name, value in sorted(labels)) + "}"


def format_matchers(matchers: tuple[LabelMatch, ...]) -> str:
    """``{region=~"eu-.*",severity="critical"}``, as Alertmanager prints a route's matchers (sorted)."""
    parts = sorted((m.label, m.op, m.value) for m in matchers)
    return "{" + ",".join(f"{label}{op}{_quote(value)}" for label, op, value in parts) + "}"
