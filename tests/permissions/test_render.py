"""The files `exfix rbac` writes, read back with the tree-sitter PowerShell grammar (a reader
nobody here wrote, tests/support/ts_oracle.py): the RBAC script runs exactly the role
commands the structured roles hold, and the JEA files hold exactly the cmdlets, parameters,
sets and patterns of the role capabilities, with hostile group names staying one string."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import tree_sitter

from agent.model.catalogue import Access
from agent.permissions import build, grant
from agent.permissions.render import Groups, capability_file, exchange_script, files, session_file
from support import ts_oracle

PERMS = build()


def _nodes(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    out = [node]
    for child in node.children:
        out.extend(_nodes(child))
    return out


def _tree(text: str) -> tree_sitter.Node:
    root = ts_oracle.parse_tree(text).root_node
    assert not root.has_error, text
    return root


def _commands(text: str, names: set[str]) -> list[ts_oracle.Command]:
    root = _tree(text)
    out = []
    for node in _nodes(root):
        name = node.children[0] if node.type == "command" and node.children else None
        if name is not None and name.type == "command_name" and (name.text or b"").decode() in names:
            out.append(ts_oracle._command(node, True))
    return out


def _strings(text: str) -> Counter[str]:
    root = _tree(text)
    return Counter(
        ts_oracle.verbatim_text(n).spec for n in _nodes(root) if n.type == "string_literal"
    )


def test_the_rbac_script_makes_exactly_the_structured_roles() -> None:
    text = exchange_script(PERMS, "test")
    made = _commands(text, {"New-ManagementRole", "Set-ManagementRoleEntry", "New-RoleGroup"})
    roles = [dict(c.parameters) for c in made if c.name == "New-ManagementRole"]
    assert roles == [{"Name": r.name, "Parent": r.parent} for r in PERMS.exchange]
    entries = [dict(c.parameters) for c in made if c.name == "Set-ManagementRoleEntry"]
    assert entries == [
        {"Identity": f"{r.name}\\{e.cmdlet}", "Parameters": e.parameters}
        for r in PERMS.exchange
        for e in r.entries
    ]
    made_groups = [dict(c.parameters) for c in made if c.name == "New-RoleGroup"]
    groups = {g["Name"]: g["Roles"] for g in made_groups}
    assert groups == {
        "exfix Scan": tuple(r.name for r in PERMS.roles_for(Access.READ)),
        "exfix Remediate": tuple(r.name for r in PERMS.roles_for(Access.CHANGE)),
    }
    # Each role keeps only its own entries: the list the removal filter compares with.
    keeps = [
        n for n in _nodes(_tree(text))
        if n.type == "assignment_expression" and n.text is not None and n.text.startswith(b"$keep")
    ]
    assert len(keeps) == len(PERMS.exchange)


def test_the_scanning_roles_hold_no_change() -> None:
    scan = grant(Access.READ)
    assert "get-queue" in scan.exchange and "retry-queue" not in scan.exchange
    assert not [c for c in scan.exchange if c.startswith(("set-", "new-", "remove-"))]
    assert not [c for c in scan.os if c.startswith(("set-", "new-", "remove-", "restart-", "clear-"))]
    remediate = grant(Access.CHANGE)
    assert set(scan.exchange) < set(remediate.exchange) and set(scan.os) < set(remediate.os)


@pytest.mark.parametrize("capability", PERMS.capabilities, ids=lambda c: c.name)
def test_a_role_capability_holds_exactly_its_cmdlets_and_parameters(capability: Any) -> None:
    text = capability_file(capability, "test")
    expected: Counter[str] = Counter()
    for visible in capability.cmdlets:
        expected[visible.cmdlet] += 1
        for param in visible.parameters:
            expected[param.name] += 1
            expected.update(param.values)
            if param.pattern is not None:
                expected[param.pattern] += 1
    expected.update(capability.providers)
    got = _strings(text)
    # Besides the names: the GUID, Author and Description of the file itself.
    header = {k for k in got if k not in expected}
    assert len(header) == 3 and "exfix" in header
    assert got - Counter(dict.fromkeys(header, 1)) == expected
    # The file is one hashtable: no command, no subexpression, no script block.
    kinds = {n.type for n in _nodes(_tree(text))}
    assert not kinds & {"command", "sub_expression", "script_block", "expandable_string_literal"}


@pytest.mark.parametrize(
    "group",
    [
        "CONTOSO\\exfix-scan",
        "CONTOSO\\o'brien",
        "x'; Remove-Item C:\\ -Recurse; '",
        "a\u2019b$(whoami)",
        "`n@{",
    ],
)
def test_hostile_group_names_stay_one_string(group: str) -> None:
    text = session_file(PERMS, Groups(group, "CONTOSO\\exfix-remediate"), "test")
    strings = _strings(text)
    assert strings[group] == 1
    assert strings["ExfixScan"] == 2 and strings["ExfixRemediate"] == 1
    kinds = {n.type for n in _nodes(_tree(text))}
    assert not kinds & {"command", "sub_expression", "script_block", "expandable_string_literal"}


def test_the_files_and_the_inventory_variable() -> None:
    written = files(PERMS, Groups("A\\scan", "A\\fix"), "test")
    assert set(written) == {
        "exchange-rbac.ps1",
        "jea/ExfixJEA/RoleCapabilities/ExfixScan.psrc",
        "jea/ExfixJEA/RoleCapabilities/ExfixRemediate.psrc",
        "jea/exfix.pssc",
        "inventory-vars.yml",
    }
    assert written["inventory-vars.yml"].endswith("ansible_psrp_configuration_name: exfix\n")
