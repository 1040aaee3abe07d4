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


class LineLoader(yaml.SafeLoader):
    """A safe loader whose mappings are :class:`LineMapping` (for ``file:line`` errors)."""

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
