"""``exfix inventory``: what exfix resolved from an inventory, before anything connects.

``--list`` and ``--host NAME`` print JSON (the shape of :meth:`HostTarget.to_dict`): for every
host, the URLs of both endpoints, their authentication, certificate validation, timeouts and
where the credential comes from, by name (an environment variable, the inventory, the Kerberos
cache, a prompt), never a password. ``--graph`` draws the groups as ``ansible-inventory
--graph`` does.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

import click

from agent.cli._common import inventory_option, load_with_warnings
from agent.errors import UsageError
from agent.inventory import Inventory
from agent.model.target import HostTarget


def _host(target: HostTarget) -> dict[str, Any]:
    shown = target.to_dict()
    shown["os"]["transport"] = target.os_transport.value
    return shown


def _document(inv: Inventory, targets: tuple[HostTarget, ...]) -> dict[str, Any]:
    chosen = {t.name for t in targets}
    return {
        "source": inv.source,
        "hosts": {t.name: _host(t) for t in targets},
        "groups": {g: [h for h in hosts if h in chosen] for g, hosts in inv.groups.items()},
        "unreachable": {name: str(error) for name, error in inv.unreachable.items()},
        "warnings": list(inv.warnings),
    }


def _graph(
    inv: Inventory,
    group: str,
    chosen: set[str],
    children: Mapping[str, tuple[str, ...]],
    depth: int,
    out: list[str],
) -> None:
    indent = "  |" * depth
    out.append(f"{indent}--@{group}:" if depth else f"@{group}:")
    direct = [
        h
        for h in inv.groups.get(group, ())
        if h in chosen and not any(h in inv.groups.get(child, ()) for child in children.get(group, ()))
    ]
    for child in children.get(group, ()):
        _graph(inv, child, chosen, children, depth + 1, out)
    for host in direct:
        out.append(f"{indent}  |--{host}")


@click.command("inventory")
@inventory_option
@click.option("--limit", "-l", "limit", metavar="PATTERN", help="Only hosts or groups matching PATTERN.")
@click.option("--list", "list_", is_flag=True, help="Every host exfix resolved, as JSON.")
@click.option("--graph", is_flag=True, help="The groups and their hosts, as a tree.")
@click.option("--host", "host", metavar="NAME", help="One host exfix resolved, as JSON.")
def inventory(inventory: str, limit: str | None, list_: bool, graph: bool, host: str | None) -> None:
    """Show what exfix reads from an inventory: hosts, groups, endpoints, credential sources.

    Exit 0; 1 when the inventory cannot be read or nothing matches --limit.
    """
    if sum((list_, graph, host is not None)) != 1:
        raise UsageError("give exactly one of --list, --graph or --host NAME")
    inv = load_with_warnings(inventory)
    if host is not None:
        sys.stdout.write(json.dumps(_host(inv.host(host)), indent=2, ensure_ascii=False) + "\n")
        return
    targets = inv.select(limit)
    if list_:
        sys.stdout.write(json.dumps(_document(inv, targets), indent=2, ensure_ascii=False) + "\n")
        return
    lines: list[str] = []
    _graph(inv, "all", {t.name for t in targets}, inv.children, 0, lines)
    sys.stdout.write("\n".join(lines) + "\n")
