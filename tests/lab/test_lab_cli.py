"""``exfix lab serve`` and the Lab class with the real Exchange emulation."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool

pytestmark = pytest.mark.lab

NO_LANGUAGE = (
    "The syntax is not supported by this runspace. This can occur if the runspace is in no-language mode."
)


def _scenario() -> str:
    from mock_remoting.exchange import shipped_scenarios

    names = shipped_scenarios()
    if not names:
        pytest.skip("no shipped scenario in mock_remoting/scenarios")
    return "mixed-fleet" if "mixed-fleet" in names else names[0]


def _exfix(*args: str) -> list[str]:
    return [sys.executable, "-c", "from agent.cli import main; main()", *args]


def test_bad_scenario_is_one_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("hosts: [unclosed\n", encoding="utf-8")
    for scenario in (str(bad), "no-such-scenario-name"):
        result = subprocess.run(
            _exfix("lab", "serve", "--scenario", scenario), capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 1
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("exfix: error: ")


def test_serve_writes_inventory_serves_and_stops_on_sigint(tmp_path: Path, pypsrp_wsman: Any) -> None:
    scenario = _scenario()
    inventory_path = tmp_path / "inventory.yaml"
    process = subprocess.Popen(
        _exfix(
            "lab", "serve", "--scenario", scenario, "--inventory-out", str(inventory_path), "--auth", "ntlm"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line == f"ready {inventory_path}\n"
        inventory = yaml.safe_load(inventory_path.read_text(encoding="utf-8"))
        variables = inventory["all"]["vars"]
        assert variables["ansible_psrp_auth"] == "ntlm" and variables["exfix_lab_scenario"] == scenario
        # The servers the planner may give transport for internet names: the lab's working
        # public resolver, and a comment above the key saying what they are.
        assert variables["exfix_external_dns_servers"] == ["8.8.8.8"]
        text = inventory_path.read_text(encoding="utf-8").splitlines()
        at = next(i for i, line in enumerate(text) if line.strip().startswith("exfix_external_dns_servers:"))
        comment = [line.strip() for line in text[:at] if line.strip().startswith("#")]
        assert comment and "8.8.8.8: the lab's working public resolver" in comment[0]
        hosts = inventory["all"]["children"]["exchange"]["hosts"]
        name, host = next(iter(hosts.items()))
        assert host["ansible_host"] == "127.0.0.1" and host["exfix_exchange_path"] == "PowerShell"
        wsman = pypsrp_wsman(host["exfix_exchange_port"], auth="ntlm", password=variables["ansible_password"])
        with RunspacePool(wsman, configuration_name="Microsoft.Exchange") as pool:
            servers = PowerShell(pool).add_cmdlet("Get-ExchangeServer").invoke()
        assert servers
    finally:
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert f"{name} exchange Create 1" in err and "total requests" in err


def test_lab_with_the_real_emulation(lab: Any, pypsrp_wsman: Any, tmp_path: Path) -> None:
    instance = lab(_scenario(), https=True)
    endpoint = instance.endpoints[0]
    assert instance.endpoint(endpoint.name.split(".")[0]) == endpoint  # short names work too
    wsman = pypsrp_wsman(endpoint.https_port, auth="ntlm", ssl=True)
    with RunspacePool(wsman, configuration_name="Microsoft.Exchange") as pool:
        ps = PowerShell(pool)
        ps.add_script("Get-ExchangeServer")
        assert ps.invoke() == []
        assert ps.state == PSInvocationState.FAILED
        assert [str(e) for e in ps.streams.error] == [NO_LANGUAGE]
        instance.inject(endpoint.name, {"fail": {"kind": "http-500", "on": "Command", "times": 1}})
        from pypsrp.exceptions import WinRMTransportError

        with pytest.raises(WinRMTransportError):
            PowerShell(pool).add_cmdlet("Get-ExchangeServer").invoke()
        assert PowerShell(pool).add_cmdlet("Get-ExchangeServer").invoke()
    assert instance.counters.get(endpoint.name, "exchange", "Command") == 3
    inventory = yaml.safe_load(instance.write_inventory(tmp_path / "inv.yaml").read_text(encoding="utf-8"))
    assert inventory["all"]["vars"]["ansible_psrp_protocol"] == "https"
    assert inventory["all"]["vars"]["ansible_psrp_cert_validation"] == "ignore"
    assert (
        inventory["all"]["children"]["exchange"]["hosts"][endpoint.name]["ansible_port"]
        == endpoint.https_port
    )
