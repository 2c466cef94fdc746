"""Ansible's YAML inventory (``all`` / ``children`` / ``hosts`` / ``vars``) -> :class:`Tree`.

As ansible-core's ``yaml`` inventory plugin reads it (``lib/ansible/plugins/inventory/yaml.py``):

- top-level keys are groups; ``hosts``, ``vars`` and ``children`` may be written as a single
  name (``hosts: ex01``), a mapping, or left empty;
- a host key is a host pattern: ``ex[01:03].contoso.local`` ranges and a ``:port`` suffix
  (which sets ``ansible_port`` when the host is first seen);
- a document with a ``plugin:`` key is an inventory plugin's configuration, not an inventory
  (:class:`PluginConfig`): only Ansible can run it.

Where Ansible warns and skips (an unknown key in a group, a group that is not a mapping),
exfix refuses with the line: a skipped group is hosts silently lost.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from agent.errors import InventoryError
from agent.inventory.addresses import split_host_pattern
from agent.inventory.document import check_variable_name
from agent.inventory.tree import Tree
from agent.inventory.values import Origin
from agent.model.document import NOT_A_NAME, KeyPath, Loaded, kind

_GROUP_KEYS = ("hosts", "vars", "children")


class PluginConfig(Exception):
    """The file configures an inventory plugin (``plugin: NAME``); Ansible must run it."""

    def __init__(self, plugin: str, line: int | None) -> None:
        super().__init__(plugin)
        self.plugin = plugin
        self.line = line


def read_yaml(loaded: Loaded[Any], tree: Tree) -> None:
    """Add the groups and hosts of a YAML inventory document to ``tree``. Raises
    InventoryError (one line, with the line of the problem), or PluginConfig."""
    _Reader(loaded, tree).top()


def looks_like_yaml_inventory(data: Any) -> bool:
    """Whether parsed data has the shape the YAML plugin reads (a mapping of groups)."""
    return isinstance(data, Mapping) and bool(data)


class _Reader:
    def __init__(self, loaded: Loaded[Any], tree: Tree) -> None:
        self.loaded = loaded
        self.tree = tree

    def origin(self, path: KeyPath) -> Origin:
        return Origin(self.loaded.source, loaded=self.loaded, path=path)

    def error(
        self, problem: str, *, line: int | None = None, host: str | None = None, key: str | None = None
    ) -> InventoryError:
        return InventoryError(self.loaded.source, problem, line=line, host=host, key=key)

    def top(self) -> None:
        data = self.loaded.value
        if data is None:
            raise self.error("the inventory is empty")
        if not isinstance(data, Mapping):
            raise self.error(
                f"the top level must be a mapping of groups (all: ...), not {kind(data)}", line=1
            )
        if all(body is None or body == {} for body in data.values()):
            # `all: null` / `all: {}` declares no group, host or variable: the same as an empty
            # file, which would otherwise scan nothing and exit 0 as if the fleet were healthy.
            raise self.error("the inventory is empty (its groups hold no hosts, groups or vars)", line=1)
        if data.get("plugin"):
            plugin = data["plugin"]
            raise PluginConfig(
                plugin if isinstance(plugin, str) else repr(plugin), self.loaded.line(("plugin",))
            )
        for name, body in data.items():
            self._name_written_as_text((name,))
            self.group(self._group_name(name, self.loaded.line((name,))), body, (name,))

    def group(self, name: str, body: Any, path: KeyPath) -> str:
        self.tree.add_group(name, self.origin(path))
        if body is None:
            return name
        if not isinstance(body, Mapping):
            raise self.error(
                f"group {name!r} must be a mapping with hosts/vars/children, not {kind(body)}",
                line=self.loaded.line(path),
            )
        for key in body:
            if key not in _GROUP_KEYS:
                raise self.error(
                    f"group {name!r} has unknown key {key!r}{_hint(str(key), _GROUP_KEYS)} "
                    "(expected hosts, vars, children)",
                    line=self.loaded.line((*path, key)),
                    key=str(key),
                )
        for key in body:  # in file order, as Ansible walks the group
            section = body[key]
            if section is None:
                continue
            if isinstance(section, str):  # ``hosts: ex01`` is ``hosts: {ex01: }``
                section = {section: None}
                entries: Iterable[tuple[Any, Any, KeyPath]] = [(next(iter(section)), None, (*path, key))]
            elif isinstance(section, Mapping):
                entries = [(k, v, (*path, key, k)) for k, v in section.items()]
            else:
                what = {
                    "hosts": f"hosts of group {name!r} must be a mapping of host names",
                    "children": f"children of group {name!r} must be a mapping of groups",
                    "vars": f"vars of group {name!r} must be a mapping of variables",
                }[key]
                raise self.error(f"{what}, not {kind(section)}", line=self.loaded.line((*path, key)), key=key)
            if key == "vars":
                for var, value, at in entries:
                    self.variable(var, at)
                    self.tree.set_group_var(name, var, (value, self.origin(at)))
            elif key == "hosts":
                for raw, host_body, at in entries:
                    self.hosts(name, raw, host_body, at)
            else:
                for raw, child_body, at in entries:
                    self._name_written_as_text(at)
                    child = self._group_name(raw, self.loaded.line(at))
                    if child == "all":
                        raise self.error("group 'all' cannot be a child", line=self.loaded.line(at))
                    self.group(child, child_body, at)
                    self.tree.add_child(name, child, self.origin(at))
        return name

    def hosts(self, group: str, raw: Any, body: Any, path: KeyPath) -> None:
        self._name_written_as_text(path)
        line = self.loaded.line(path)
        names, port = self._host_names(raw, line)
        if body is not None and not isinstance(body, Mapping):
            raise self.error(
                f"host {names[0]!r} must be a mapping of variables, not {kind(body)}",
                line=line,
                host=names[0],
            )
        origin = self.origin(path)
        for host in names:
            self.tree.add_host(host, group, origin, None if port is None else (port, origin))
            for var, value in (body or {}).items():
                self.variable(var, (*path, var), host=host)
                self.tree.set_host_var(host, var, (value, self.origin((*path, var))))

    def variable(self, name: Any, path: KeyPath, *, host: str | None = None) -> None:
        line = self.loaded.line(path)
        if not isinstance(name, str):  # only from data: the reader refuses such YAML keys
            raise self.error(f"variable names must be strings, not {name!r}", line=line, host=host)
        check_variable_name(name, self.loaded.source, line, host)

    def _name_written_as_text(self, path: KeyPath) -> None:
        # A group or host name must be a string; a number there is refused (Ansible: "Host
        # pattern must be a string. Enclose integers/floats in quotation marks.").
        if self.loaded.loose(path):
            where = self.loaded.document.key(path[:-1]) or None
            raise self.error(NOT_A_NAME, line=self.loaded.line(path), key=where)

    def _group_name(self, raw: Any, line: int | None) -> str:
        return group_name(raw, self.loaded.source, line)

    def _host_names(self, raw: Any, line: int | None) -> tuple[list[str], int | None]:
        return host_names(raw, self.loaded.source, line)


def group_name(raw: Any, source: str, line: int | None) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InventoryError(source, f"group names must be non-empty strings, not {raw!r}", line=line)
    if not raw.isprintable() or any(ch.isspace() for ch in raw):
        raise InventoryError(
            source, f"group name {raw!r} contains spaces or unprintable characters", line=line
        )
    return raw


def host_names(raw: Any, source: str, line: int | None) -> tuple[list[str], int | None]:
    """A host key's names (ranges expanded) and port. Raises InventoryError."""
    name = literal_host_name(raw, source, line)
    try:
        return split_host_pattern(name)
    except ValueError as exc:
        raise InventoryError(source, str(exc), line=line, host=name) from None


def literal_host_name(raw: Any, source: str, line: int | None) -> str:
    """A host name as written (no range, no port). Raises InventoryError."""
    if isinstance(raw, bool) or raw is None or not isinstance(raw, (str, int, float)):
        raise InventoryError(source, f"host names must be strings, not {raw!r}", line=line)
    name = str(raw)
    if not name.strip():
        raise InventoryError(source, "a host name is empty", line=line)
    if not name.isprintable() or any(ch.isspace() for ch in name):
        raise InventoryError(
            source, f"host name {name!r} contains spaces or unprintable characters", line=line
        )
    if len(name) > 255:
        raise InventoryError(source, f"host name {name[:40]!r}... is longer than 255 characters", line=line)
    return name


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def hint(word: str, choices: Iterable[str]) -> str:
    """ "; did you mean 'x'?" when ``word`` is close to one of ``choices``."""
    return _hint(word, choices)
