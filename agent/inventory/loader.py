"""Reading an inventory: a file, YAML text or already-loaded data -> :class:`Inventory`.

Variables take precedence host over group over ``all``; among groups a deeper child beats its
parent, and groups at the same depth apply in name order (Ansible's rule). Every problem is one
:class:`~agent.errors.InventoryError` naming the file, the line, the host and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import InventoryError, UsageError
from agent.inventory.credentials import CredentialResolver, PasswordPrompt
from agent.inventory.document import INVENTORY
from agent.inventory.groups import GroupBuilder
from agent.inventory.limit import select_hosts
from agent.inventory.variables import Written, host_target
from agent.model.credential import Secret
from agent.model.document import Loaded
from agent.model.target import HostTarget


@dataclass(frozen=True)
class Inventory:
    """A parsed inventory: its hosts in file order and its group membership."""

    source: str
    hosts: tuple[HostTarget, ...]
    groups: Mapping[str, tuple[str, ...]]  # group -> host names (children's hosts included)
    _passwords: Mapping[str, Secret] = field(default_factory=dict, repr=False, compare=False)

    def host(self, name: str) -> HostTarget:
        for target in self.hosts:
            if target.name.lower() == name.lower():
                return target
        raise UsageError(f"{self.source}: no host {name!r} in the inventory")

    def select(self, limit: str | None = None) -> tuple[HostTarget, ...]:
        """The hosts ``--limit`` selects (all of them when it is None or empty)."""
        return select_hosts(self, limit)

    def credentials(
        self, prompt: PasswordPrompt | None = None, environ: Mapping[str, str] | None = None
    ) -> CredentialResolver:
        """A resolver turning each target's :class:`CredentialRef` into a :class:`Credential`."""
        return CredentialResolver(self._passwords, prompt=prompt, environ=environ)


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory file. Raises InventoryError (one line, names the file)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InventoryError(source, "no such file") from None
    except UnicodeDecodeError:
        raise InventoryError(source, "not UTF-8 text") from None
    except OSError as exc:
        raise InventoryError(source, f"cannot read: {exc.strerror or exc}") from None
    return parse_inventory(text, source)


def parse_inventory(text: str, source: str = "<inventory>") -> Inventory:
    """Parse inventory YAML text. ``source`` names it in errors."""
    return _inventory(INVENTORY.read_yaml_tree(text, source=source))


def inventory_from_mapping(data: Any, source: str = "<inventory>") -> Inventory:
    """An inventory from already-loaded data (e.g. the lab's ``Lab.inventory()``)."""
    return _inventory(INVENTORY.read_data_tree(data, source=source))


def _inventory(loaded: Loaded[Any]) -> Inventory:
    source = loaded.source
    builder = GroupBuilder(loaded)
    builder.top()
    depth = builder.ancestry()

    # Which groups each host is in, directly or through children.
    parents: dict[str, set[str]] = {name: set() for name in builder.groups}
    for group in builder.groups.values():
        for child in group.children:
            parents[child].add(group.name)

    def ancestors(group: str) -> set[str]:
        seen: set[str] = set()
        stack = [group]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            stack.extend(parents.get(current, ()))
        return seen

    membership: dict[str, set[str]] = {host: {"all"} for host in builder.host_order}
    for group in builder.groups.values():
        for host in group.hosts:
            membership[host] |= ancestors(group.name)
    for groups in membership.values():
        if groups == {"all"}:
            groups.add("ungrouped")

    passwords: dict[str, Secret] = {}
    targets: list[HostTarget] = []
    for host in builder.host_order:
        merged: dict[str, Written] = {}
        ordered = sorted(
            (g for g in membership[host] if g in builder.groups), key=lambda g: (depth.get(g, 0), g)
        )
        for group_name in ordered:
            merged.update(builder.groups[group_name].vars)
        merged.update(builder.host_vars[host])
        visible = tuple(sorted(g for g in membership[host] if g != "all"))
        targets.append(host_target(loaded, host, visible, merged, passwords))

    group_hosts: dict[str, tuple[str, ...]] = {}
    for name in [*builder.groups, "ungrouped"]:
        group_hosts[name] = tuple(h for h in builder.host_order if name in membership[h])
    return Inventory(source=source, hosts=tuple(targets), groups=group_hosts, _passwords=passwords)
