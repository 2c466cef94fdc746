"""The JSON of ``ansible-inventory --list`` and of inventory scripts -> :class:`Tree`.

The format ansible-core's ``script`` plugin reads from a script's ``--list``
(``lib/ansible/plugins/inventory/script.py``): top-level keys are groups, each
``{"hosts": [...], "vars": {...}, "children": [...]}`` (a bare list is its hosts), and
``_meta.hostvars`` holds every host's variables. ``ansible-inventory --list`` prints the same
shape, with every host's variables already merged in ``_meta.hostvars``. Vaulted values come
as ``{"__ansible_vault": ...}`` and strings Ansible never templates as
``{"__ansible_unsafe": ...}``; a script without ``_meta.hostvars`` would have to be asked once
per host (``--host``), which exfix refuses rather than run the script a thousand times.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.errors import InventoryError
from agent.inventory.document import check_variable_name
from agent.inventory.tree import Tree
from agent.inventory.values import Origin, Unsafe, Vaulted
from agent.inventory.yaml_source import group_name, literal_host_name
from agent.model.document import kind


def looks_like_list_json(data: Any) -> bool:
    """Whether parsed data is the ``--list`` shape rather than a YAML inventory."""
    # Both ansible-inventory --list and scripts (whose output exfix reads only with it) write
    # _meta; a YAML inventory has no group of that name.
    return isinstance(data, Mapping) and "_meta" in data


def read_list_json(data: Any, source: str, tree: Tree) -> None:
    """Add the groups and hosts of ``--list`` JSON (already parsed) to ``tree``."""
    origin = Origin(source)

    def fail(problem: str, *, key: str | None = None) -> InventoryError:
        return InventoryError(source, problem, key=key)

    if not isinstance(data, Mapping):
        raise fail(f"an inventory script's --list must print a JSON object, not {kind(data)}")
    meta = data.get("_meta")
    hostvars: Mapping[str, Any] | None = None
    if meta is not None:
        if not isinstance(meta, Mapping) or not isinstance(meta.get("hostvars", {}), Mapping):
            raise fail("_meta.hostvars must be an object of host -> variables", key="_meta")
        hostvars = meta.get("hostvars")
    hosts: list[str] = []
    for raw_group, body in data.items():
        if raw_group == "_meta":
            continue
        group = group_name(raw_group, source, None)
        tree.add_group(group, origin)
        if not isinstance(body, Mapping):
            body = {"hosts": body}
        elif not any(k in body for k in ("hosts", "vars", "children")):
            body = {"hosts": [group], "vars": body}  # script.py: a "malformed group" is its own host
        if "hosts" in body:
            listed = body["hosts"]
            if not isinstance(listed, list):
                raise fail(f"must be a list of host names, not {kind(listed)}", key=f"{group}.hosts")
            for raw_host in listed:
                # script.py adds these names as they are: no ranges, no :port
                name = literal_host_name(raw_host, source, None)
                if name not in tree.hosts:
                    hosts.append(name)
                tree.add_host(name, group, origin)
        if "vars" in body:
            variables = body["vars"]
            if not isinstance(variables, Mapping):
                raise fail(f"must be an object of variables, not {kind(variables)}", key=f"{group}.vars")
            for key, value in variables.items():
                check_variable_name(str(key), source, None, None)
                tree.set_group_var(group, str(key), (decode(value), origin))
        for raw_child in body.get("children") or ():
            child = group_name(raw_child, source, None)
            tree.add_group(child, origin)
            tree.add_child(group, child, origin)
    if hostvars is None:
        if hosts:
            raise fail(
                "has no _meta.hostvars: exfix does not run an inventory script once per host "
                "(--host); let the script print _meta.hostvars, or read it with -i ansible:PATH"
            )
        return
    for name, variables in hostvars.items():
        if name not in tree.hosts:
            continue  # script.py takes the variables of listed hosts only
        if not isinstance(variables, Mapping):
            raise fail(f"must be an object of variables, not {kind(variables)}", key=f"_meta.hostvars.{name}")
        for key, value in variables.items():
            check_variable_name(str(key), source, None, name)
            tree.set_host_var(name, str(key), (decode(value), origin))


def decode(value: Any) -> Any:
    """Ansible's JSON markers: ``__ansible_vault`` -> Vaulted, ``__ansible_unsafe`` -> Unsafe."""
    if isinstance(value, Mapping):
        if len(value) == 1 and "__ansible_vault" in value:
            return Vaulted(str(value["__ansible_vault"]))
        if len(value) == 1 and "__ansible_unsafe" in value and isinstance(value["__ansible_unsafe"], str):
            return Unsafe(value["__ansible_unsafe"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value
