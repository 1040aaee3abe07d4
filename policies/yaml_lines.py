"""YAML that remembers where things are: mappings keep their line and each key's line, so
every validation error can name ``file:line``. Used by the policy loader and the scenario
loader alike (both safe: :class:`LineLoader` is a ``SafeLoader``)."""

from __future__ import annotations

from typing import Any

import yaml

from collector.problems import Problem


class LineMapping(dict[str, Any]):
    """A YAML mapping that remembers its line (1-based) and each key's line."""

    line: int
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


# Bounds on what one document may build. Nesting: the composer and constructor recurse per
# level, so 5,000 levels would be a RecursionError; no policy or scenario nests past a dozen.
# Size: aliases share nodes, so a few lines can stand for billions of them ("billion laughs");
# a document whose aliases expand beyond this many nodes and characters is refused.
MAX_YAML_DEPTH = 64
MAX_YAML_EXPANDED = 10_000_000


class LineLoader(yaml.SafeLoader):
    """A safe loader whose mappings are :class:`LineMapping` (for ``file:line`` errors).

    It refuses documents nested deeper than :data:`MAX_YAML_DEPTH` or whose aliases expand
    to more than :data:`MAX_YAML_EXPANDED` nodes and characters, at the line where that happens.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._expanded: dict[int, int] = {}  # id(node) -> its nodes and characters, aliases expanded

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        mark = self.peek_event().start_mark
        alias = self.check_event(yaml.AliasEvent)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", mark)
            node = super().compose_node(parent, index)  # type: ignore[arg-type]
        finally:
            self._depth -= 1
        size: int
        if alias or node is None:  # the anchored node, already counted once: counted again where it is used
            size = self._expanded.get(id(node), 1)
        elif isinstance(node, yaml.ScalarNode):
            size = 1 + len(node.value)
        elif isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._expanded.get(id(child), 1) for child in node.value)
        else:
            pairs: list[tuple[yaml.Node, yaml.Node]] = node.value
            size = 1 + sum(self._expanded.get(id(k), 1) + self._expanded.get(id(v), 1) for k, v in pairs)
        if size > MAX_YAML_EXPANDED:
            raise yaml.composer.ComposerError(
                None, None, f"aliases expand this to more than {MAX_YAML_EXPANDED:,} nodes and characters", mark
            )
        if not alias:
            self._expanded[id(node)] = size
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = LineMapping(super().construct_mapping(node, deep=deep))  # type: ignore[arg-type]
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {
            str(k.value): k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)
        }
        return mapping


LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    lambda loader, node: loader.construct_mapping(node, deep=True),  # type: ignore[arg-type]
)


def load_lines(text: str) -> Any:
    """Parse one YAML document with line-keeping mappings; invalid YAML raises
    :class:`Problem` at the line the parser stopped (0 when it names none)."""
    try:
        return yaml.load(text, Loader=LineLoader)  # safe: LineLoader is a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        raise Problem(mark.line + 1 if mark is not None else 0, f"invalid YAML: {reason}") from None
    except RecursionError:  # bounded by MAX_YAML_DEPTH; kept so a surprise is still a Problem
        raise Problem(0, f"invalid YAML: nested too deep (at most {MAX_YAML_DEPTH} levels)") from None
