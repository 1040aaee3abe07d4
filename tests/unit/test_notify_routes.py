"""The routing tree: Alertmanager's first-match-wins walk, continue, inheritance and group keys."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.alerts import labels_of
from sinks.notify.config import RouteConfig, load_notify_text, parse_matcher
from sinks.notify.routes import Route, Timers, build_tree, format_labels, route_alert
from tests.notify_alerts import alert

TREE = """\
route:
  receiver: default
  group_by: [rule]
  group_wait: 10s
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      group_by: [rule, region]
      repeat_interval: 1h
      continue: true
      routes:
        - matchers: ['region=~"eu-.*"']
          receiver: pager-eu
          group_wait: 0s
        - matchers: ['region=~"us-.*"']
          group_by: ['...']
    - matchers: ['kind="log"']
      receiver: logs
    - matchers: ['severity=~"critical|warning"']
      receiver: chat
      mute_time_intervals: [nights]
    - matchers: ['severity=~"critical|warning"']
      receiver: never
receivers:
  - {name: default, webhook: {url: "http://h/default"}}
  - {name: pager, webhook: {url: "http://h/pager"}}
  - {name: pager-eu, webhook: {url: "http://h/pager-eu"}}
  - {name: logs, webhook: {url: "http://h/logs"}}
  - {name: chat, webhook: {url: "http://h/chat"}}
  - {name: never, webhook: {url: "http://h/never"}}
time_intervals:
  - {name: nights, time_intervals: [{times: [{start_time: "22:00", end_time: "24:00"}]}]}
"""
TREE_ROUTE = build_tree(load_notify_text(TREE).route)


def receivers_for(**fields: str) -> list[str]:
    return [m.receiver for m in route_alert(TREE_ROUTE, labels_of(alert(**fields)))]  # type: ignore[arg-type]


def test_an_alert_no_child_takes_goes_to_the_root() -> None:
    assert receivers_for(severity="info") == ["default"]


def test_the_first_matching_child_wins_and_stops_the_walk() -> None:
    assert receivers_for(severity="warning", kind="log") == ["logs"]  # not also chat: logs does not continue


def test_continue_lets_later_siblings_match_too() -> None:
    assert receivers_for(severity="critical", region="eu-west") == ["pager-eu", "chat"]
    assert receivers_for(severity="critical", region="ap-1", kind="log") == ["pager", "logs"]


def test_a_matched_node_without_a_matching_child_handles_the_alert_itself() -> None:
    matches = route_alert(TREE_ROUTE, labels_of(alert(severity="critical", region="ap-1")))
    assert (matches[0].receiver, matches[0].route_id) == ("pager", '{}/{severity="critical"}/0')


def test_children_inherit_receiver_group_by_and_timers_unless_they_set_them() -> None:
    eu, _ = route_alert(TREE_ROUTE, labels_of(alert(severity="critical", region="eu-west")))
    assert eu.timers == Timers(group_wait_s=0.0, group_interval_s=300.0, repeat_interval_s=3600.0)
    assert eu.group_by == ("rule", "region")
    us, _ = route_alert(TREE_ROUTE, labels_of(alert(severity="critical", region="us-east")))
    assert us.receiver == "pager" and us.group_by == ("...",)
    assert us.timers == Timers(10.0, 300.0, 3600.0)


def test_time_intervals_are_not_inherited() -> None:
    chat = route_alert(TREE_ROUTE, labels_of(alert(severity="warning")))[0]
    assert chat.mute_time_intervals == ("nights",)
    root = route_alert(TREE_ROUTE, labels_of(alert(severity="info")))[0]
    assert root.mute_time_intervals == ()


def test_the_group_key_is_the_route_id_and_the_group_labels() -> None:
    eu, chat = route_alert(TREE_ROUTE, labels_of(alert(severity="critical", region="eu-west")))
    assert eu.group_key == '{}/{severity="critical"}/0/{region=~"eu-.*"}/0:{region="eu-west", rule="cpu_hot"}'
    assert eu.group_labels == (("region", "eu-west"), ("rule", "cpu_hot"))
    assert chat.group_key == '{}/{severity=~"critical|warning"}/2:{rule="cpu_hot"}'


def test_group_by_all_makes_every_label_set_its_own_group() -> None:
    labels = labels_of(alert(severity="critical", region="us-east", labels={"team": "db"}))
    us = route_alert(TREE_ROUTE, labels)[0]
    assert us.group_labels == tuple(sorted((k, v) for k, v in labels.items() if v))
    other = route_alert(TREE_ROUTE, labels_of(alert("fp2", severity="critical", region="us-east", host_id="web-2")))[0]
    assert us.group_key != other.group_key


def test_no_group_by_puts_every_alert_of_a_route_in_one_group() -> None:
    tree = build_tree(RouteConfig(receiver="r"))
    keys = {route_alert(tree, labels_of(alert(f"fp{i}", host_id=f"h{i}")))[0].group_key for i in range(5)}
    assert keys == {"{}:{}"}


def test_siblings_with_the_same_matchers_never_share_a_group_key() -> None:
    same = (parse_matcher("a=b"),)
    tree = build_tree(
        RouteConfig(
            receiver="r",
            routes=(RouteConfig(matchers=same, continue_matching=True), RouteConfig(matchers=same)),
        )
    )
    first, second = route_alert(tree, {"a": "b"})
    assert (first.group_key, second.group_key) == ('{}/{a="b"}/0:{}', '{}/{a="b"}/1:{}')


def test_a_missing_label_is_the_empty_string_to_matchers() -> None:
    child = RouteConfig(receiver="x", matchers=(parse_matcher("team!=db"),))
    tree = build_tree(RouteConfig(receiver="root", routes=(child,)))
    assert [m.receiver for m in route_alert(tree, {"rule": "r"})] == ["x"]
    assert [m.receiver for m in route_alert(tree, {"team": "db"})] == ["root"]


def test_empty_labels_do_not_name_a_group() -> None:
    tree = build_tree(RouteConfig(receiver="r", group_by=("rule", "host_id", "team")))
    labels = labels_of(alert(host_id=""))
    assert route_alert(tree, labels)[0].group_key == '{}:{rule="cpu_hot"}'


def test_label_values_are_quoted_so_keys_cannot_collide() -> None:
    assert format_labels((("a", 'x", b="y'),)) == '{a="x\\", b=\\"y"}'
    assert format_labels((("a", "x"), ("b", "y"))) == '{a="x", b="y"}'


# --- invariants over generated trees ------------------------------------------------------------

_MATCHERS = ["severity=critical", "severity!=info", 'region=~"eu-.*"', "region!~us-.*", "team=db", "kind=log"]
_VALUES = {
    "severity": ["critical", "warning", "info"],
    "region": ["eu-1", "us-1", ""],
    "team": ["db", "web", ""],
    "kind": ["log", "metric"],
}


def _routes() -> st.SearchStrategy[RouteConfig]:
    leaf = st.builds(
        lambda ms, receiver, cont: RouteConfig(
            receiver=receiver, matchers=tuple(parse_matcher(m) for m in ms), continue_matching=cont
        ),
        st.lists(st.sampled_from(_MATCHERS), min_size=1, max_size=2),
        st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
        st.booleans(),
    )
    return st.recursive(
        leaf,
        lambda children: st.builds(
            lambda node, kids: RouteConfig(**{**node.__dict__, "routes": tuple(kids)}),
            leaf,
            st.lists(children, max_size=3),
        ),
        max_leaves=12,
    )


_trees = st.builds(
    lambda kids: build_tree(RouteConfig(receiver="root", routes=tuple(kids))),
    st.lists(_routes(), max_size=4),
)
_labels = st.fixed_dictionaries({name: st.sampled_from(values) for name, values in _VALUES.items()})


def _no_continue(route: Route) -> bool:
    return not route.continue_matching and all(_no_continue(child) for child in route.routes)


@settings(max_examples=300, deadline=None)
@given(_trees, _labels)
def test_every_alert_reaches_at_least_one_defined_receiver(tree: Route, labels: dict[str, str]) -> None:
    matches = route_alert(tree, labels)
    assert matches and all(m.receiver in {"root", "a", "b", "c"} for m in matches)
    assert route_alert(tree, dict(reversed(labels.items()))) == matches  # deterministic, order-free
    assert len({m.route_id for m in matches}) == len(matches)
    if _no_continue(tree):
        assert len(matches) == 1


@settings(max_examples=300, deadline=None)
@given(_trees, _labels)
def test_every_match_is_a_node_whose_path_of_matchers_holds(tree: Route, labels: dict[str, str]) -> None:
    paths: dict[str, list[Route]] = {}

    def walk(node: Route, path: list[Route]) -> None:
        paths[node.route_id] = [*path, node]
        for child in node.routes:
            walk(child, [*path, node])

    walk(tree, [])
    for match in route_alert(tree, labels):
        assert all(m.matches(labels) for node in paths[match.route_id] for m in node.matchers)
        assert match.group_key.startswith(match.route_id + ":")
