"""Reading an inventory -> :class:`Inventory`, with Ansible's variable precedence.

A host's variables are merged as ansible-core's ``VariableManager.get_vars`` merges them
(default ``VARIABLE_PRECEDENCE``), each layer replacing what the one before set:

1. the ``all`` group's variables from the inventory sources;
2. the host's other groups' variables from the sources, by depth (parents before children),
   then ``ansible_group_priority`` (lower first), then name;
3. ``group_vars/all``;
4. ``group_vars/<group>`` of the host's groups, in the order of 2;
5. the host's own variables from the sources;
6. ``host_vars/<host>``.

Every problem is one :class:`~agent.errors.InventoryError` naming the file, the line, the host
and the key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import InventoryError, UsageError
from agent.inventory.connection import unused_variables
from agent.inventory.credentials import CredentialResolver, PasswordPrompt
from agent.inventory.document import INVENTORY
from agent.inventory.json_source import looks_like_list_json, read_list_json
from agent.inventory.limit import select_hosts
from agent.inventory.sources import Runner, read_source, read_text
from agent.inventory.tree import Tree
from agent.inventory.values import Origin, Written
from agent.inventory.variables import NotReachable, host_target
from agent.inventory.varsfiles import VarsFiles
from agent.inventory.yaml_source import read_yaml
from agent.model.credential import Secret
from agent.model.target import HostTarget


@dataclass(frozen=True)
class Inventory:
    """A parsed inventory: its hosts in file order and its group membership.

    ``unreachable``: hosts exfix cannot connect to (``ansible_connection: ssh``), with the
    error selecting one raises; ``warnings``: what exfix read but does not use, one line per
    variable; ``children``: each group's child groups (for ``exfix inventory --graph``).
    """

    source: str
    hosts: tuple[HostTarget, ...]
    groups: Mapping[str, tuple[str, ...]]  # group -> host names (children's hosts included)
    _passwords: Mapping[str, Secret] = field(default_factory=dict, repr=False, compare=False)
    unreachable: Mapping[str, InventoryError] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    children: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    order: tuple[str, ...] = ()  # every host name (reachable or not) in inventory order

    def host(self, name: str) -> HostTarget:
        for target in self.hosts:
            if target.name == name:
                return target
        if name in self.unreachable:
            raise self.unreachable[name]
        raise UsageError(f"{self.source}: no host {name!r} in the inventory")

    def select(self, limit: str | None = None) -> tuple[HostTarget, ...]:
        """The hosts ``--limit`` selects (all of them when it is None or empty)."""
        return select_hosts(self, limit)

    def credentials(
        self, prompt: PasswordPrompt | None = None, environ: Mapping[str, str] | None = None
    ) -> CredentialResolver:
        """A resolver turning each target's :class:`CredentialRef` into a :class:`Credential`."""
        return CredentialResolver(self._passwords, prompt=prompt, environ=environ)


def load_inventory(
    path: str | Path, *, stdin: Callable[[], str] | None = None, run: Runner | None = None
) -> Inventory:
    """Read and validate what ``-i`` names: a file, a directory, ``-``, ``ansible:PATH`` or a
    host list (:mod:`agent.inventory.sources`). Raises InventoryError (one line, names the file)."""
    read = read_source(str(path), stdin=stdin, run=run)
    return build(read.tree, read.name, VarsFiles(read.var_dirs))


def parse_inventory(text: str, source: str = "<inventory>") -> Inventory:
    """Parse inventory text (YAML, INI, or ``--list`` JSON). ``source`` names it in errors;
    no group_vars are read."""
    tree = Tree()
    read_text(text, source, tree, ext=Path(source).suffix.lower() or ".yaml")
    tree.reconcile()
    return build(tree, source, VarsFiles([]))


def inventory_from_mapping(data: Any, source: str = "<inventory>") -> Inventory:
    """An inventory from already-loaded data (e.g. the lab's ``Lab.inventory()``): the YAML
    inventory's shape, or ``--list`` JSON."""
    tree = Tree()
    if looks_like_list_json(data):
        read_list_json(data, source, tree)
    else:
        if data is not None and not isinstance(data, Mapping):
            raise InventoryError(
                source, f"the top level must be a mapping of groups (all: ...), not {type(data).__name__}"
            )
        read_yaml(INVENTORY.read_data_tree(data, source=source), tree)
    tree.reconcile()
    return build(tree, source, VarsFiles([]))


# The variables a host's target is made of: Ansible's psrp and winrm plugins' (their own
# prefixes, and the generic ones they read) and exfix's own (agent/inventory/variables.py).
_GENERIC = frozenset(
    ("ansible_connection", "ansible_host", "ansible_port", "ansible_user", "ansible_password")
)
_PREFIXES = ("ansible_psrp_", "ansible_winrm_", "exfix_")
# The connection that runs a task on the controller: what a play that runs exfix's Ansible
# modules names (they reach the host themselves), never how the host is reached.
_CONTROLLER = frozenset(("local", "ansible.builtin.local"))


def reads_variable(name: str) -> bool:
    """Whether a host variable called ``name`` is one :func:`inventory_from_variables` reads (the
    Ansible collection templates only these)."""
    return name in _GENERIC or name.startswith(_PREFIXES)


def inventory_from_variables(hosts: Mapping[str, Mapping[str, Any]], *, source: str = "ansible") -> Inventory:
    """An inventory of ``hosts`` (inventory name -> the variables Ansible has already resolved
    for it: vault decrypted, templates rendered, group_vars and precedence applied, as a
    task's variables are), each read with the same rules as every inventory exfix reads: the
    same :func:`~agent.inventory.variables.host_target`, defaults and refusals.

    Only the variables :func:`reads_variable` names are read, and ``group_names`` (Ansible's
    list of the host's groups). ``ansible_connection: local`` is how Ansible runs exfix's
    modules on the controller, so it stands for exfix's default (psrp) here. Raises
    InventoryError (one line, naming ``source``, the host and the key), also for a host whose
    connection exfix cannot use (ssh)."""
    origin = Origin(source)
    passwords: dict[str, Secret] = {}
    targets: list[HostTarget] = []
    groups: dict[str, list[str]] = {"all": []}
    warnings: dict[str, str] = {}
    for name, variables in hosts.items():
        merged: dict[str, Written] = {
            key: (value, origin)
            for key, value in variables.items()
            if reads_variable(key) and not (key == "ansible_connection" and value in _CONTROLLER)
        }
        names = variables.get("group_names") or ()
        member = tuple(sorted({str(g) for g in names if g not in ("all", "ungrouped")}))
        try:
            target = host_target(name, member, merged, passwords, source)
        except NotReachable as refused:
            raise refused.error from None
        targets.append(target)
        groups["all"].append(name)
        for group in member:
            groups.setdefault(group, []).append(name)
        plain = {k: v for k, (v, _) in merged.items()}
        for variable in unused_variables(target.connection, plain):
            reason = _unused_reason(variable, target.connection)
            warnings.setdefault(variable, f"{source}: host {name!r}: {variable} {reason}")
    return Inventory(
        source=source,
        hosts=tuple(targets),
        groups={group: tuple(members) for group, members in groups.items()},
        _passwords=passwords,
        warnings=tuple(warnings[v] for v in sorted(warnings)),
        order=tuple(hosts),
    )


def merged_variables(tree: Tree, host: str, files: VarsFiles) -> dict[str, Written]:
    """One host's variables after Ansible's precedence (the module docstring)."""
    merged: dict[str, Written] = {}
    groups = tree.sorted_groups(host)
    merged.update(tree.groups["all"].vars)
    for group in groups:
        merged.update(group.vars)
    for layer in files.group("all"):
        merged.update(layer)
    for directory in files.directories:  # sources outside, groups inside (get_vars_from_inventory_sources)
        for group in groups:
            for layer in files.group(group.name, directory):
                merged.update(layer)
    merged.update(tree.hosts[host].vars)
    for layer in files.host(host):
        merged.update(layer)
    return merged


def build(tree: Tree, source: str, files: VarsFiles) -> Inventory:
    passwords: dict[str, Secret] = {}
    targets: list[HostTarget] = []
    unreachable: dict[str, InventoryError] = {}
    unused: dict[str, str] = {}
    for name in tree.hosts:
        merged = merged_variables(tree, name, files)
        visible = tuple(sorted(g for g in tree.hosts[name].groups if g != "all"))
        try:
            target = host_target(name, visible, merged, passwords, source)
        except NotReachable as refused:
            unreachable[name] = refused.error
            continue
        targets.append(target)
        for variable in unused_variables(target.connection, {k: v for k, (v, _) in merged.items()}):
            if variable not in unused:
                unused[variable] = (
                    f"{merged[variable][1].where()}: host {name!r}: {variable} "
                    + _unused_reason(variable, target.connection)
                )
    group_hosts = {name: tuple(tree.group_hosts(name)) for name in tree.groups}
    children = {name: tuple(group.children) for name, group in tree.groups.items()}
    return Inventory(
        source=source,
        hosts=tuple(targets),
        groups=group_hosts,
        _passwords=passwords,
        unreachable=unreachable,
        warnings=tuple(unused[v] for v in sorted(unused)),
        children=children,
        order=tuple(tree.hosts),
    )


def _unused_reason(variable: str, connection: str) -> str:
    other = "winrm" if connection == "psrp" else "psrp"
    if variable.startswith(f"ansible_{other}_") and not variable.startswith(("ansible_winrm_pass",)):
        return f"is for ansible_connection {other}, and this host's is {connection}: exfix ignores it"
    if variable in (
        "ansible_psrp_reconnection_retries",
        "ansible_psrp_reconnection_backoff",
        "ansible_psrp_connection_backoff",
    ):
        return "is not used: exfix retries by its own policy (agent/transport/retry.py); ignoring it"
    if variable.startswith("ansible_winrm_kinit") or variable in (
        "ansible_winrm_realm",
        "ansible_winrm_keytab",
    ):
        return "is not used: exfix takes Kerberos tickets from the cache and never runs kinit; ignoring it"
    return f"is not a variable of Ansible's {connection} plugin that exfix uses; ignoring it"
