"""Ansible's INI inventory -> :class:`Tree`, as ansible-core's ``ini`` plugin reads it
(``lib/ansible/plugins/inventory/ini.py``):

- lines before any section are hosts of ``ungrouped``; ``[name]`` lists hosts,
  ``[name:vars]`` sets ``key=value`` variables, ``[name:children]`` names child groups;
- ``;`` and ``#`` start a comment line; a host line is split like a shell line (``shlex``,
  comments allowed) into a host pattern (ranges, ``:port``) and ``key=value`` variables;
- every value is read as a Python literal where it is one (``5986`` a number, ``True`` a
  boolean, ``'a b'`` a string, ``[1, 2]`` a list) and is a string otherwise;
- a ``[g:children]`` may name a group declared later; one never declared, or ``[g:vars]`` of a
  group never declared, is an error at the line that named it.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from typing import Any

from agent.errors import InventoryError
from agent.inventory.document import check_variable_name
from agent.inventory.tree import Tree
from agent.inventory.values import Origin
from agent.inventory.yaml_source import group_name, host_names

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:\#.*)?$")
_GROUPNAME = re.compile(r"^([^:\]\s]+)\s*(?:\#.*)?$")


def read_ini(text: str, source: str, tree: Tree) -> None:
    """Add the groups and hosts of INI inventory ``text`` to ``tree``. Raises InventoryError."""
    pending: dict[str, dict[str, Any]] = {}
    group, state = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        origin = Origin(source, number)

        def fail(problem: str, *, key: str | None = None, host: str | None = None) -> InventoryError:
            return InventoryError(source, problem, line=number, key=key, host=host)  # noqa: B023

        section = _SECTION.match(line)
        if section:
            group = group_name(section.group(1), source, number)
            state = section.group(2) or "hosts"
            if state not in ("hosts", "children", "vars"):
                raise fail(f"section [{group}:{state}] has unknown type {state!r} (hosts, vars or children)")
            if group not in tree.groups:
                if state == "vars" and group not in pending:
                    pending[group] = {"line": number, "state": "vars"}
                tree.add_group(group, origin)
            if group in pending and state != "vars":
                if pending[group]["state"] == "children":
                    _add_pending(tree, group, pending)
                else:
                    del pending[group]
            continue
        if line.startswith("[") and line.endswith("]"):
            raise fail(f"invalid section {line!r}: no spaces or other characters in a section name")
        if state == "hosts":
            try:
                tokens = shlex.split(line, comments=True)
            except ValueError as exc:
                raise fail(f"cannot split the host line: {exc}") from None
            if not tokens:
                continue
            pattern = tokens[0]
            if pattern.endswith(":"):
                raise fail(f"host pattern {pattern!r} ends in ':', which is reserved for a port")
            if pattern.strip() == "---":
                raise fail("'---' starts a YAML document: this is not an INI inventory")
            names, port = host_names(pattern, source, number)
            variables: list[tuple[str, Any]] = []
            for token in tokens[1:]:
                if "=" not in token:
                    raise fail(f"expected key=value after the host name, got {token!r}", host=names[0])
                key, value = token.split("=", 1)
                check_variable_name(key, source, number, names[0])
                variables.append((key, parse_value(value)))
            for name in names:
                tree.add_host(name, group, origin, None if port is None else (port, origin))
                for key, value in variables:
                    tree.set_host_var(name, key, (value, origin))
        elif state == "vars":
            if "=" not in line:
                raise fail(f"expected key=value in [{group}:vars], got {line!r}")
            key, value = (part.strip() for part in line.split("=", 1))
            check_variable_name(key, source, number, None)
            tree.set_group_var(group, key, (parse_value(value), origin))
        else:
            match = _GROUPNAME.match(line)
            if match is None:
                raise fail(f"expected a group name in [{group}:children], got {line!r}")
            child = match.group(1)
            if child not in tree.groups:
                entry = pending.setdefault(child, {"line": number, "state": "children", "parents": []})
                entry.setdefault("parents", []).append(group)
            else:
                tree.add_child(group, child, origin)
    for name, entry in pending.items():
        if entry["state"] == "vars":
            raise InventoryError(
                source,
                f"section [{name}:vars] is for group {name!r}, which is never declared",
                line=entry["line"],
            )
        raise InventoryError(
            source,
            f"section [{entry['parents'][-1]}:children] names group {name!r}, which is never declared",
            line=entry["line"],
        )


def _add_pending(tree: Tree, group: str, pending: dict[str, dict[str, Any]]) -> None:
    for parent in pending[group]["parents"]:
        tree.add_child(parent, group, None)
        if parent in pending and pending[parent]["state"] == "children":
            _add_pending(tree, parent, pending)
    del pending[group]


def parse_value(text: str) -> Any:
    """An INI value as Ansible reads it: a Python literal where it is one, else the text."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value: Any = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = text
    return _plain(value)


def _plain(value: Any) -> Any:
    # ini.py _parse_recursive_coerce_types_and_tag: tuples and sets become lists, complex
    # numbers and Ellipsis their text, bytes text.
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k) if isinstance(k, str) else k: _plain(v) for k, v in value.items()}
    if value is ...:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value
