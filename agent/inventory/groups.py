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
from agent.inventory.document import READ
from agent.inventory.variables import Written
from agent.model.document import KeyPath, Loaded, kind

_GROUP_KEYS = ("hosts", "vars", "children")
_EXFIX_VARIABLES = sorted(name for name in READ if name.startswith("exfix_"))
_RANGE = re.compile(
    r"^(?P<head>[^\[\]]*)\[(?P<start>[0-9]+|[a-z]):(?P<end>[0-9]+|[a-z])(?::(?P<step>[0-9]+))?\](?P<tail>.*)$"
)


@dataclass
class Group:
    """One group as the file defines it: its own variables, the hosts it lists, its children."""

    name: str
    vars: dict[str, Written] = field(default_factory=dict)
    hosts: dict[str, None] = field(default_factory=dict)  # ordered set
    children: list[str] = field(default_factory=list)


class GroupBuilder:
    """Walks the tree into groups and host variables, remembering where each came from (the key
    path of each variable, whose line the reader knows)."""

    def __init__(self, loaded: Loaded[Any]) -> None:
        self.loaded = loaded
        self.groups: dict[str, Group] = {"all": Group("all")}
        self.host_vars: dict[str, dict[str, Written]] = {}
        self.host_order: list[str] = []

    def error(
        self, problem: str, *, line: int | None = None, host: str | None = None, key: str | None = None
    ) -> InventoryError:
        return InventoryError(self.loaded.source, problem, line=line, host=host, key=key)

    def top(self) -> None:
        data, line = self.loaded.value, self.loaded.line
        if data is None:
            raise self.error("the inventory is empty")
        if not isinstance(data, Mapping):
            raise self.error(
                f"the top level must be a mapping of groups (all: ...), not {kind(data)}", line=1
            )
        for name, body in data.items():
            group = self._group_name(name, line((name,)))
            self.group(group, body, (name,))
            if group != "all":
                self._link("all", group)

    def group(self, name: str, body: Any, path: KeyPath) -> None:
        group = self.groups.setdefault(name, Group(name))
        if body is None:
            return
        body = self._mapping(body, path, f"group {name!r} must be a mapping with hosts/vars/children")
        for key in body:
            if key not in _GROUP_KEYS:
                hint = _hint(str(key), _GROUP_KEYS)
                raise self.error(
                    f"group {name!r} has unknown key {key!r}{hint} (expected hosts, vars, children)",
                    line=self.loaded.line((*path, key)),
                    key=str(key),
                )
        for key in body:  # in file order, so hosts keep the order the file lists them in
            if key == "vars" and body[key] is not None:
                where = f"vars of group {name!r}"
                group.vars.update(self.variables(body[key], (*path, key), where=where))
            elif key == "hosts" and body[key] is not None:
                self._hosts(group, body[key], (*path, key))
            elif key == "children" and body[key] is not None:
                self._children(group, body[key], (*path, key))

    def _hosts(self, group: Group, hosts: Any, path: KeyPath) -> None:
        what = f"hosts of group {group.name!r} must be a mapping of host names"
        for raw_name, host_body in self._mapping(hosts, path, what, key="hosts").items():
            host_path = (*path, raw_name)
            for host in self._host_names(raw_name, self.loaded.line(host_path)):
                if host not in self.host_vars:
                    self.host_vars[host] = {}
                    self.host_order.append(host)
                group.hosts.setdefault(host, None)
                if host_body is not None:
                    self.host_vars[host].update(
                        self.variables(host_body, host_path, where=f"host {host!r}", host=host)
                    )

    def _children(self, group: Group, children: Any, path: KeyPath) -> None:
        what = f"children of group {group.name!r} must be a mapping of groups"
        for raw_child, child_body in self._mapping(children, path, what, key="children").items():
            child_path = (*path, raw_child)
            child = self._group_name(raw_child, self.loaded.line(child_path))
            if child == "all":
                raise self.error("group 'all' cannot be a child", line=self.loaded.line(child_path))
            self.group(child, child_body, child_path)
            self._link(group.name, child)

    def _mapping(
        self, value: Any, path: KeyPath, what: str, *, key: str | None = None, host: str | None = None
    ) -> Mapping[Any, Any]:
        """``value``, which ``what`` says must be a mapping (the group tree is Ansible's, free)."""
        if not isinstance(value, Mapping):
            raise self.error(f"{what}, not {kind(value)}", line=self.loaded.line(path), key=key, host=host)
        return value

    def _link(self, parent: str, child: str) -> None:
        if child not in self.groups[parent].children:
            self.groups[parent].children.append(child)

    def variables(
        self, body: Any, path: KeyPath, *, where: str, host: str | None = None
    ) -> dict[str, Written]:
        out: dict[str, Written] = {}
        for key, value in self._mapping(
            body, path, f"{where} must be a mapping of variables", host=host
        ).items():
            if not isinstance(key, str):  # only from data: the reader refuses such YAML keys
                raise self.error(
                    f"variable names must be strings, not {key!r}", line=self.loaded.line(path), host=host
                )
            if key.startswith("exfix_") and key not in READ:
                raise self.error(
                    f"unknown exfix variable{_hint(key, _EXFIX_VARIABLES)}",
                    line=self.loaded.line((*path, key)),
                    host=host,
                    key=key,
                )
            out[key] = (value, (*path, key))
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
        except ValueError as exc:
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
            raise ValueError(f"host name {name!r} has a malformed [start:end] range")
        return [name]
    start, end, step_text = match.group("start"), match.group("end"), match.group("step")
    step = int(step_text) if step_text else 1
    if step < 1:
        raise ValueError(f"host range in {name!r} has a step below 1")
    if start.isdigit() != end.isdigit():
        raise ValueError(f"host range in {name!r} mixes letters and numbers")
    if start.isdigit():
        first, last = int(start), int(end)
        width = len(start) if start.startswith("0") and len(start) > 1 else 0
        items = [str(n).zfill(width) for n in range(first, last + 1, step)]
    else:
        items = [chr(c) for c in range(ord(start), ord(end) + 1, step)]
    if not items:
        raise ValueError(f"host range in {name!r} is empty")
    if len(items) > 10000:
        raise ValueError(f"host range in {name!r} expands to more than 10000 hosts")
    out: list[str] = []
    for item in items:
        out.extend(_expand_range(match.group("head") + item + match.group("tail")))
    return out
