"""The groups and hosts every inventory source adds to, with Ansible's rules for them.

Each source (YAML, INI, the JSON of ``ansible-inventory --list`` and inventory scripts, a
host list) adds groups, hosts, children and variables here in the order it reads them, as
Ansible's sources add them to its ``InventoryData`` (ansible-core
``lib/ansible/inventory/data.py``, ``group.py``, ``host.py``):

- a group's depth is the longest path from ``all``; children may not form a cycle;
- a host joins the groups it is listed in and all of their ancestors;
- ``ansible_group_priority`` is not a variable: it sets the group's priority (default 1);
- a host's port from ``host:port`` becomes ``ansible_port`` when the host is first seen;
- :meth:`Tree.reconcile` then makes every top group a child of ``all`` and puts the hosts in
  no group but ``all`` in ``ungrouped``, as Ansible does after the last source.

Hosts in a group, in Ansible's order (``Group.get_hosts``): the group's own hosts, then those
of its descendants, level by level. Ansible walks the levels below the children as a set, so
the order there is its own and may differ run to run; exfix keeps the order the children are
listed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.errors import InventoryError
from agent.inventory.values import Origin, Written

PRIORITY = "ansible_group_priority"


@dataclass
class Group:
    name: str
    vars: dict[str, Written] = field(default_factory=dict)
    # An ordered set (a dict's keys): a membership test per host added, so a list made loading
    # a 10,000-host group quadratic.
    hosts: dict[str, None] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    depth: int = 0
    priority: int = 1
    origin: Origin | None = None


@dataclass
class Host:
    name: str
    vars: dict[str, Written] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)  # direct and inherited, in the order joined
    origin: Origin | None = None


class Tree:
    """Groups and hosts as the sources define them (see the module docstring)."""

    def __init__(self) -> None:
        self.groups: dict[str, Group] = {"all": Group("all"), "ungrouped": Group("ungrouped")}
        self.hosts: dict[str, Host] = {}
        self.add_child("all", "ungrouped", None)

    # --- what sources call ------------------------------------------------------------------

    def add_group(self, name: str, origin: Origin | None) -> Group:
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = Group(name, origin=origin)
        return group

    def add_host(
        self, name: str, group: str | None, origin: Origin | None, port: Written | None = None
    ) -> Host:
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = Host(name, origin=origin)
            if port is not None:  # Ansible's Host(name, port): only when the host is created
                host.vars["ansible_port"] = port
        if group is not None:
            target = self.groups[group]
            if name not in target.hosts:
                target.hosts[name] = None
                self._join(host, group)
        return host

    def add_child(self, parent: str, child: str, origin: Origin | None) -> None:
        up, down = self.groups[parent], self.groups[child]
        if parent == child:
            raise self._error(origin, f"group {child!r} cannot be a child of itself")
        if child in up.children:
            return
        if parent in self.descendants(child):
            raise self._error(
                origin, f"adding group {child!r} as a child of {parent!r} makes the groups a cycle"
            )
        up.children.append(child)
        if parent not in down.parents:
            down.parents.append(parent)
        self._deepen(down, up.depth + 1)
        for host in self.group_hosts(child):
            for ancestor in self.ancestors(parent, include_self=True):
                if ancestor not in self.hosts[host].groups:
                    self.hosts[host].groups.append(ancestor)

    def set_group_var(self, group: str, name: str, written: Written) -> None:
        if name == PRIORITY:
            value, origin = written
            priority = _priority(value, origin)
            if priority is not None:
                self.groups[group].priority = priority
            return
        self.groups[group].vars[name] = written

    def set_host_var(self, host: str, name: str, written: Written) -> None:
        self.hosts[host].vars[name] = written

    def reconcile(self) -> None:
        for group in list(self.groups.values()):
            if group.name != "all" and not group.parents:
                self.add_child("all", group.name, None)
        ungrouped = self.groups["ungrouped"]
        for host in self.hosts.values():
            others = set(host.groups) - {"all", "ungrouped"}
            if "ungrouped" in host.groups and others:
                del ungrouped.hosts[host.name]
                host.groups.remove("ungrouped")
            elif not others and "ungrouped" not in host.groups:
                self.add_host(host.name, "ungrouped", None)

    # --- reading it -------------------------------------------------------------------------

    def descendants(self, name: str, *, include_self: bool = False) -> list[str]:
        """``name``'s descendants, children first, then level by level (Ansible's order for
        the children; see the module docstring for the levels below)."""
        ordered = [name] if include_self else []
        seen = {name}
        level = [name]
        while level:
            following: list[str] = []
            for group in level:
                for child in self.groups[group].children:
                    if child not in seen:
                        seen.add(child)
                        ordered.append(child)
                        following.append(child)
            level = following
        return ordered

    def ancestors(self, name: str, *, include_self: bool = False) -> list[str]:
        ordered = [name] if include_self else []
        seen = {name}
        stack = list(self.groups[name].parents)
        while stack:
            group = stack.pop(0)
            if group in seen:
                continue
            seen.add(group)
            ordered.append(group)
            stack.extend(self.groups[group].parents)
        return ordered

    def group_hosts(self, name: str) -> list[str]:
        hosts: list[str] = []
        seen: set[str] = set()
        for group in self.descendants(name, include_self=True):
            for host in self.groups[group].hosts:
                if host not in seen:
                    seen.add(host)
                    hosts.append(host)
        return hosts

    def sorted_groups(self, host: str) -> list[Group]:
        """The host's groups but ``all``, in the order their variables apply (Ansible's
        ``sort_groups``: depth, then ``ansible_group_priority``, then name)."""
        groups = [self.groups[g] for g in self.hosts[host].groups if g != "all"]
        return sorted(groups, key=lambda g: (g.depth, g.priority, g.name))

    # --- inside -----------------------------------------------------------------------------

    def _join(self, host: Host, group: str) -> None:
        for name in self.ancestors(group, include_self=True)[::-1]:
            if name not in host.groups:
                host.groups.append(name)

    def _deepen(self, group: Group, depth: int) -> None:
        if depth <= group.depth:
            return
        group.depth = depth
        for child in group.children:
            self._deepen(self.groups[child], depth + 1)

    @staticmethod
    def _error(origin: Origin | None, problem: str) -> InventoryError:
        if origin is None:
            return InventoryError("<inventory>", problem)
        return InventoryError(origin.source, problem, line=origin.at())


def _priority(value: object, origin: Origin) -> int | None:
    """Ansible's ``Group.set_priority``: ``int(value)``; a value int() cannot take (a list,
    null) is ignored, one it refuses ("high") fails the inventory."""
    if isinstance(value, (bool, int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise InventoryError(
                origin.source, f"must be a whole number, not {value!r}", line=origin.at(), key=PRIORITY
            ) from None
    return None
