"""The command catalogue (agent/model/catalogue.py) against the code that builds calls.

Three checks keep it from drifting: the host connection and planning refuse an undeclared
call at run time (so every lab test that runs a collector, a probe, apply or a fix checks the
calls it makes); here, every ``CmdletCall(...)`` written in agent/ with a literal or a
module-constant cmdlet name is declared for its endpoint; and the f-string one (the
transport noun) is declared for every noun."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from agent.model import catalogue
from agent.model.catalogue import CATALOGUE, Access, Runner, UndeclaredCommand, check, granted
from agent.model.command import SWITCH, CmdletCall, Endpoint
from agent.model.facts import TransportNoun

AGENT = Path(__file__).resolve().parents[2] / "agent"


def _constants(tree: ast.Module) -> dict[str, str]:
    out: dict[str, str] = {}
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign) else None
        if isinstance(node, ast.Assign) and isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = value.value
    return out


def _written_calls() -> list[tuple[str, Endpoint, str]]:
    """(where, endpoint, cmdlet) for every CmdletCall(Endpoint.X, <literal or constant>, ...)."""
    found: list[tuple[str, Endpoint, str]] = []
    for path in sorted(AGENT.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            endpoint_arg, cmdlet_arg = node.args[0], node.args[1]
            func = node.func
            setting = isinstance(func, ast.Attribute) and func.attr == "of" and _name(func.value) == "Setting"
            if not (_name(func) == "CmdletCall" or setting):
                continue
            if not (isinstance(endpoint_arg, ast.Attribute) and endpoint_arg.attr in ("EXCHANGE", "OS")):
                continue
            cmdlet: str | None = None
            if isinstance(cmdlet_arg, ast.Constant) and isinstance(cmdlet_arg.value, str):
                cmdlet = cmdlet_arg.value
            elif isinstance(cmdlet_arg, ast.Name):
                cmdlet = constants.get(cmdlet_arg.id)
            if cmdlet is None:
                continue
            where = f"{path.relative_to(AGENT.parent)}:{node.lineno}"
            # Setting.of(endpoint, noun, ...) reads with Get-<noun> and writes with Set-<noun>.
            for name in (f"Get-{cmdlet}", f"Set-{cmdlet}") if setting else (cmdlet,):
                found.append((where, Endpoint[endpoint_arg.attr], name))
    return found


def _name(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


def test_every_call_written_in_agent_is_declared() -> None:
    written = _written_calls()
    assert len(written) >= 30  # the reader finds them: collectors, probes, apply, fixes
    missing = [w for w in written if catalogue.find(w[1], w[2]) is None]
    assert missing == []


def test_the_transport_noun_cmdlets_are_declared_for_every_version() -> None:
    for noun in TransportNoun:
        assert catalogue.find(Endpoint.EXCHANGE, f"Get-{noun.value}") is not None
        assert catalogue.find(Endpoint.EXCHANGE, f"Set-{noun.value}") is not None


def test_check_refuses_what_is_not_declared() -> None:
    with pytest.raises(UndeclaredCommand, match=r"Get-Process \(os endpoint\) is not in exfix's command"):
        check(CmdletCall(Endpoint.OS, "Get-Process"))
    # Declared on the other endpoint only.
    with pytest.raises(UndeclaredCommand):
        check(CmdletCall(Endpoint.OS, "Get-Queue"))
    with pytest.raises(UndeclaredCommand, match="Get-Queue -Identity"):
        check(CmdletCall(Endpoint.EXCHANGE, "Get-Queue", (("Identity", "EX01\\1"),)))
    with pytest.raises(UndeclaredCommand, match="'Spooler' is not one of MSExchangeTransport"):
        check(CmdletCall(Endpoint.OS, "Restart-Service", (("Name", "Spooler"),)))
    # A path that climbs out of the install folder does not match the marker's pattern.
    climbing = "C:\\Program Files\\..\\..\\Windows\\Logging\\exfix-change-in-progress.json"
    with pytest.raises(UndeclaredCommand, match="does not match"):
        check(CmdletCall(Endpoint.OS, "Remove-Item", (("LiteralPath", climbing),)))


def test_check_accepts_what_exfix_sends() -> None:
    config = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Bin\\EdgeTransport.exe.config"
    marker = "D:\\Exchange\\Logging\\exfix-change-in-progress.json"
    for call in (
        CmdletCall(Endpoint.OS, "Get-Content", (("LiteralPath", config), ("Raw", SWITCH))),
        CmdletCall(Endpoint.OS, "Get-Content", (("LiteralPath", marker), ("Raw", SWITCH))),
        CmdletCall(Endpoint.OS, "restart-service", (("name", "msexchangetransport"),)),
        CmdletCall(Endpoint.EXCHANGE, "Get-Queue", (("Server", "EX01"),)),
    ):
        assert check(call).cmdlet.lower() == call.cmdlet.lower()


def test_every_entry_is_whole() -> None:
    keys = [(c.endpoint, c.cmdlet.lower()) for c in CATALOGUE]
    assert len(keys) == len(set(keys))
    for command in CATALOGUE:
        # An Exchange entry names the built-in role it is kept from; an OS entry has none.
        assert (command.role is not None) == (command.endpoint is Endpoint.EXCHANGE), command.cmdlet
        assert command.why
        names = [p.name.lower() for p in command.parameters]
        assert len(names) == len(set(names)), command.cmdlet


def test_the_scanning_grant_changes_nothing_and_manual_steps_are_never_granted() -> None:
    scan = granted(Access.READ)
    assert scan and all(c.access is Access.READ for c in scan)
    assert not any(c.cmdlet.startswith(("Set-", "New-", "Remove-", "Restart-", "Clear-")) for c in scan)
    remediate = granted(Access.CHANGE)
    assert set(scan) < set(remediate)
    person = [c for c in CATALOGUE if c.runner is Runner.PERSON]
    assert person and not set(person) & set(remediate)


def test_the_allow_rule_names_are_the_fixs_own() -> None:
    from agent.fixes.firewall_dns_allow import RULE_NAMES

    assert set(RULE_NAMES.values()) == set(catalogue.RULE_NAME_SET)
