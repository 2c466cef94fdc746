"""exfix check answers as a Nagios/Icinga plugin: the status line and perfdata follow the
plugin guidelines' grammar, and the state follows the findings (plain data), and the CLI
(over the lab) exits with the plugin's codes, bad input included."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from agent.cli import main
from agent.model.facts import EdgeTransportConfigFacts
from agent.model.results import HostScan, HostStatus, ScanReport
from agent.report import nagios
from agent.scan import organised, scanned
from support.facts_builders import host, mapi_nic

# Nagios Plugin Development Guidelines, "Performance data": 'label'=value[UOM];[warn];[crit];[min];[max]
_LABEL = r"(?:'(?:[^']|'')+'|[^'= ]+)"
_NUMBER = r"-?\d+(?:\.\d+)?"
_PERF = rf"{_LABEL}={_NUMBER}(?:[a-zA-Z%]+)?(?:;(?:{_NUMBER})?){{0,4}}"
_STATUS = re.compile(rf"^EXFIX (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+ \| {_PERF}(?: {_PERF})*$")


def _report(*hosts: HostScan) -> ScanReport:
    return organised(hosts, started="2026-12-01T10:00:00+00:00", finished="2026-12-01T10:00:05+00:00",
                     source="inventory.yaml")  # fmt: skip


CLEAN = scanned(host(name="ex01.contoso.local"))
NORMAL = EdgeTransportConfigFacts("C:\\x\\EdgeTransport.exe.config", "Normal", True)
MEDIUM = scanned(host(name="ex02.contoso.local", edge=NORMAL))
HIGH = scanned(host(name="ex03.contoso.local", nics=(mapi_nic(register_this_connections_address=False),)))
DOWN = HostScan("ex04.contoso.local", HostStatus.UNREACHABLE, error="connection refused | 'quoted'\nnext")


@pytest.mark.parametrize(
    ("hosts", "state"),
    [
        ((CLEAN,), nagios.State.OK),
        ((CLEAN, MEDIUM), nagios.State.WARNING),
        ((CLEAN, DOWN), nagios.State.UNKNOWN),
        ((MEDIUM, DOWN), nagios.State.UNKNOWN),
        ((HIGH, DOWN, MEDIUM), nagios.State.CRITICAL),
    ],
)
def test_the_state_and_its_lines(hosts: tuple[HostScan, ...], state: nagios.State) -> None:
    report = _report(*hosts)
    assert {f.severity.value for f in MEDIUM.findings} == {"medium"}
    assert "high" in {f.severity.value for f in HIGH.findings}
    out, got = nagios.render(report)
    assert got is state
    first, *long = out.splitlines()
    assert _STATUS.match(first), first
    assert first.startswith(f"EXFIX {state.name} - ")
    assert f"hosts={len(hosts)};;;0" in first
    # The long output: one line per host with findings or problems, each one line; the
    # separator and the line feed of a host's error never reach the status line.
    assert len(long) == sum(1 for h in hosts if h is not CLEAN)
    assert all("|" not in line or line.startswith("ex04") for line in long)


@pytest.mark.lab
def test_the_cli_exits_with_the_plugins_codes() -> None:
    ok = CliRunner().invoke(main, ["check", "--lab", "healthy"])
    critical = CliRunner().invoke(main, ["check", "--lab", "mixed-fleet"])
    assert (ok.exit_code, critical.exit_code) == (0, 2)
    assert _STATUS.match(ok.stdout.splitlines()[0]) and _STATUS.match(critical.stdout.splitlines()[0])
    for bad in (["check", "--bogus"], ["check", "--lab", "no-such-scenario"], ["check", "--forks", "0"]):
        run = CliRunner().invoke(main, bad)
        assert run.exit_code == 3, (bad, run.output)
        (line,) = run.stdout.splitlines()
        assert line.startswith("EXFIX UNKNOWN - ")
