"""Ansible's group tree: ``all`` / ``children`` / ``hosts`` / ``vars`` -> groups and host variables.

- a host may be listed in several groups and defined (with variables) in any of them;
- ``ex[01:03].contoso.local`` host ranges expand as Ansible's do;
- children must not form a cycle; each group's depth decides the precedence of its variables.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.errors import InventoryError
from agent.inventory.coerce import BadValue, Var, kind
from agent.inventory.document import line_of
from agent.inventory.variables import EXFIX_VARIABLES

_GROUP_KEYS = ("hosts", "vars", "children")
_RANGE = re.compile(
    r"^(?P<head>[^\[\]]*)\[(?P<start>[0-9]+|[a-z]):(?P<end>[0-9]+|[a-z])(?::(?P<step>[0-9]+))?\](?P<tail>.*)$"
)


@dataclass
class Group:
    """One group as the file defines it: its own variables, the hosts it lists, its children."""

    name: str
    vars: dict[str, Var] = field(default_factory=dict)
    hosts: dict[str, None] = field(default_factory=dict)  # ordered set
    children: list[str] = field(default_factory=list)


class GroupBuilder:
    """Walks the YAML tree into groups and host variables, remembering where each came from."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.groups: dict[str, Group] = {"all": Group("all")}
        self.host_vars: dict[str, dict[str, Var]] = {}
        self.host_order: list[str] = []

    def error(
        self, problem: str, *, line: int | None = None, host: str | None = None, key: str | None = None
    ) -> InventoryError:
        return InventoryError(self.source, problem, line=line, host=host, key=key)

    def top(self, data: Any) -> None:
        if data is None:
            raise self.error("the inventory is empty")
        if not isinstance(data, Mapping):
            raise self.error(
                f"the top level must be a mapping of groups (all: ...), not {kind(data)}", line=1
            )
        for name, body in data.items():
            group = self._group_name(name, line_of(data, name))
            self.group(group, body, line_of(data, name))
            if group != "all":
                self._link("all", group)

    def group(self, name: str, body: Any, line: int | None) -> None:
        group = self.groups.setdefault(name, Group(name))
        if body is None:
            return
        if not isinstance(body, Mapping):
            raise self.error(
                f"group {name!r} must be a mapping with hosts/vars/children, not {kind(body)}", line=line
            )
        for key in body:
            if key not in _GROUP_KEYS:
                hint = _hint(str(key), _GROUP_KEYS)
                raise self.error(
                    f"group {name!r} has unknown key {key!r}{hint} (expected hosts, vars, children)",
                    line=line_of(body, key),
                    key=str(key),
                )
        for key in body:  # in file order, so hosts keep the order the file lists them in
            if key == "vars" and body[key] is not None:
                where = f"vars of group {name!r}"
                group.vars.update(self.variables(body[key], line_of(body, key), where=where))
            elif key == "hosts" and body[key] is not None:
                self._hosts(group, body[key], line_of(body, key))
            elif key == "children" and body[key] is not None:
                self._children(group, body[key], line_of(body, key))

    def _hosts(self, group: Group, hosts: Any, line: int | None) -> None:
        if not isinstance(hosts, Mapping):
            raise self.error(
                f"hosts of group {group.name!r} must be a mapping of host names, not {kind(hosts)}",
                line=line,
                key="hosts",
            )
        for raw_name, host_body in hosts.items():
            host_line = line_of(hosts, raw_name)
            for host in self._host_names(raw_name, host_line):
                if host not in self.host_vars:
                    self.host_vars[host] = {}
                    self.host_order.append(host)
                group.hosts.setdefault(host, None)
                if host_body is not None:
                    self.host_vars[host].update(
                        self.variables(host_body, host_line, where=f"host {host!r}", host=host)
                    )

    def _children(self, group: Group, children: Any, line: int | None) -> None:
        if not isinstance(children, Mapping):
            raise self.error(
                f"children of group {group.name!r} must be a mapping of groups, not {kind(children)}",
                line=line,
                key="children",
            )
        for raw_child, child_body in children.items():
            child_line = line_of(children, raw_child)
            child = self._group_name(raw_child, child_line)
            if child == "all":
                raise self.error("group 'all' cannot be a child", line=child_line)
            self.group(child, child_body, child_line)
            self._link(group.name, child)

    def _link(self, parent: str, child: str) -> None:
        if child not in self.groups[parent].children:
            self.groups[parent].children.append(child)

    def variables(
        self, body: Any, line: int | None, *, where: str, host: str | None = None
    ) -> dict[str, Var]:
        if not isinstance(body, Mapping):
            raise self.error(
                f"{where} must be a mapping of variables, not {kind(body)}", line=line, host=host
            )
        out: dict[str, Var] = {}
        for key, value in body.items():
            key_line = line_of(body, key) or line
            if not isinstance(key, str):
                raise self.error(f"variable names must be strings, not {key!r}", line=key_line, host=host)
            if key.startswith("exfix_") and key not in EXFIX_VARIABLES:
                raise self.error(
                    f"unknown exfix variable{_hint(key, EXFIX_VARIABLES)}", line=key_line, host=host, key=key
                )
            out[key] = Var(value, key_line)
        return out

    def _group_name(self, raw: Any, line: int | None) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise self.error(f"group names must be non-empty strings, not {raw!r}", line=line)
        if not raw.isprintable() or any(ch.isspace() for ch in raw):
            raise self.error(f"group name {raw!r} contains spaces or unprintable characters", line=line)
        return raw

    def _host_names(self, raw: Any, line: int | None) -> list[str]:
        if isinstance(raw, bool) or raw is None or not isinstance(raw, (str, int, float)):
            raise self.error(f"host names must be strings, not {raw!r}", line=line)
        name = str(raw)
        if not name.strip():
            raise self.error("a host name is empty", line=line)
        if not name.isprintable() or any(ch.isspace() for ch in name):
            raise self.error(f"host name {name!r} contains spaces or unprintable characters", line=line)
        if len(name) > 255:
            raise self.error(f"host name {name[:40]!r}... is longer than 255 characters", line=line)
        try:
            return _expand_range(name)
        except BadValue as exc:
            raise self.error(str(exc), line=line, host=name) from None

    def ancestry(self) -> dict[str, int]:
        """Each group's depth (longest path from all), checking that children form no cycle."""
        depth: dict[str, int] = {}
        visiting: set[str] = set()

        def walk(name: str, level: int, path: tuple[str, ...]) -> None:
            if name in visiting:
                cycle = " -> ".join((*path, name))
                raise self.error(f"groups form a cycle: {cycle}")
            if depth.get(name, -1) >= level:
                return
            depth[name] = level
            visiting.add(name)
            for child in self.groups[name].children:
                walk(child, level + 1, (*path, name))
            visiting.discard(name)

        walk("all", 0, ())
        return depth


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _expand_range(name: str) -> list[str]:
    """Ansible host ranges: ``ex[01:03].x`` -> ex01.x, ex02.x, ex03.x; ``[a:c]`` letters."""
    match = _RANGE.match(name)
    if match is None:
        if "[" in name or "]" in name:
            raise BadValue(f"host name {name!r} has a malformed [start:end] range")
        return [name]
    start, end, step_text = match.group("start"), match.group("end"), match.group("step")
    step = int(step_text) if step_text else 1
    if step < 1:
        raise BadValue(f"host range in {name!r} has a step below 1")
    if start.isdigit() != end.isdigit():
        raise BadValue(f"host range in {name!r} mixes letters and numbers")
    if start.isdigit():
        first, last = int(start), int(end)
        width = len(start) if start.startswith("0") and len(start) > 1 else 0
        items = [str(n).zfill(width) for n in range(first, last + 1, step)]
    else:
        items = [chr(c) for c in range(ord(start), ord(end) + 1, step)]
    if not items:
        raise BadValue(f"host range in {name!r} is empty")
    if len(items) > 10000:
        raise BadValue(f"host range in {name!r} expands to more than 10000 hosts")
    out: list[str] = []
    for item in items:
        out.extend(_expand_range(match.group("head") + item + match.group("tail")))
    return out
