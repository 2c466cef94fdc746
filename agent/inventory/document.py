"""Inventory YAML text -> plain data whose mappings remember the line of each key.

PyYAML's safe loader, with two changes: a duplicate key is an error (YAML forbids it; PyYAML
keeps the last one silently), and every mapping is a :class:`LineMap`, so later errors can
name the line of the key they are about.
"""

from __future__ import annotations

from typing import Any

import yaml

from agent.errors import InventoryError


class LineMap(dict[Any, Any]):
    """A YAML mapping that remembers the line of each key (1-based)."""

    __slots__ = ("line", "lines")

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}
        self.line: int | None = None


def line_of(mapping: Any, key: Any) -> int | None:
    """The line ``key`` is on in ``mapping`` (the mapping's own line if the key is absent);
    None for data that did not come from YAML text."""
    if isinstance(mapping, LineMap):
        return mapping.lines.get(key, mapping.line)
    return None


def read_yaml(text: str, source: str) -> Any:
    """Load YAML text. Raises InventoryError naming ``source`` and, where known, the line."""
    try:
        return yaml.load(text, Loader=_make_loader(source))  # a SafeLoader subclass
    except InventoryError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise InventoryError(source, f"not valid YAML: {exc.problem or exc.context}", line=line) from None
    except yaml.YAMLError as exc:
        raise InventoryError(source, f"not valid YAML: {exc}") from None


def _make_loader(source: str) -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LineMap:
        loader.flatten_mapping(node)
        result = LineMap()
        result.line = node.start_mark.line + 1
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (dict, list)):
                raise InventoryError(source, "a mapping key must be a plain value", line=line)
            if key in result:
                raise InventoryError(source, f"duplicate key {key!r}", line=line)
            result[key] = loader.construct_object(value_node, deep=True)
            result.lines[key] = line
        return result

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return Loader
