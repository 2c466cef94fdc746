"""Hosts that misbehave at the protocol level: one hangs, one refuses the credentials, one drops
a connection once. The fleet is still scanned; each failure becomes that host's status; exit 3.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import base_scenario, host_spec, run_exfix, write_scenario

pytestmark = pytest.mark.lab

HOST_TIMEOUT = 8


def test_hang_401_and_a_dropped_connection(
    tmp_path: Path, lab: Callable[..., Any], validate_scan: Callable[[Any], None]
) -> None:
    data = base_scenario()
    data["hosts"] = [
        host_spec("EX01", 21),
        # Never answers anything: the session cannot even open.
        host_spec("EX02", 22, faults={"fail": {"kind": "hang"}}),
        # Refuses the credentials on the Exchange endpoint.
        host_spec("EX03", 23, faults={"fail": {"kind": "http-401", "endpoint": "exchange"}}),
        # Closes the connection on the first Exchange command, once; the retry goes through.
        host_spec(
            "EX04", 24, faults={"fail": {"kind": "drop", "on": "Command", "endpoint": "exchange", "times": 1}}
        ),
        host_spec("EX05", 25),
        # Hangs mid-scan: the OS session is open and has answered a few requests.
        host_spec(
            "EX06", 26, faults={"fail": {"kind": "hang", "on": "Receive", "endpoint": "os", "after": 3}}
        ),
        # Closes the connection on the first attempt to open the OS session, once.
        host_spec(
            "EX07", 27, faults={"fail": {"kind": "drop", "on": "Create", "endpoint": "os", "times": 1}}
        ),
    ]
    data["send_connectors"][0]["source_transport_servers"] = [h["name"] for h in data["hosts"]]
    lab = lab(write_scenario(tmp_path / "faults.yaml", data))
    inventory = lab.write_inventory(tmp_path / "inventory.yaml")

    started = time.monotonic()
    run = run_exfix("scan", "-i", str(inventory), "--host-timeout", str(HOST_TIMEOUT), "--format", "json")
    elapsed = time.monotonic() - started

    assert run.exit_code == 3, run.describe()
    validate_scan(run.doc)
    hosts = {h["host"].split(".")[0]: h for h in run.doc["hosts"]}
    assert hosts["ex02"]["status"] == "unreachable", run.describe()
    assert str(HOST_TIMEOUT) in hosts["ex02"]["error"]
    assert hosts["ex06"]["status"] == "unreachable", run.describe()
    assert hosts["ex03"]["status"] == "auth-failed", run.describe()
    assert "401" in hosts["ex03"]["error"]
    for name in ("ex01", "ex04", "ex05", "ex07"):
        assert hosts[name]["status"] == "scanned" and hosts[name]["error"] is None, run.describe()
        assert hosts[name]["findings"] == [] and hosts[name]["exchange_version"] == "15.2.1118.7"
    summary = run.doc["summary"]
    assert (summary["scanned"], summary["unreachable"], summary["auth-failed"]) == (4, 2, 1)
    # The hung host is given up on at its deadline; it does not hold the fleet much beyond it.
    assert elapsed < HOST_TIMEOUT * 4, f"the scan took {elapsed:.1f}s"

    # The drops really happened, and were retried: EX04 sent one more Exchange command, and
    # EX07 one more OS session open, than the identical healthy EX01 did. One server of the
    # organisation also reads its send connectors (Get-SendConnector) for all of them.
    counters = lab.counters

    def count(host: str, endpoint: str, action: str) -> int:
        return int(counters.get(f"{host}.contoso.local", endpoint, action))

    assert count("ex01", "exchange", "Command") > 0 and count("ex01", "os", "Create") > 0
    commands = {h: count(h, "exchange", "Command") for h in ("ex01", "ex04", "ex05", "ex07")}
    base = min(commands.values())
    # The connector read falls to whichever server of the organisation gets there first; EX06's
    # Exchange endpoint answers (only its OS endpoint hangs), so it may be EX06.
    read_by_ex06 = count("ex06", "exchange", "Command") == base + 1
    assert sum(commands.values()) == 4 * base + 1 + (0 if read_by_ex06 else 1)  # one retried command
    assert commands["ex04"] in (base + 1, base + 2)
    assert count("ex07", "os", "Create") == count("ex01", "os", "Create") + 1


def test_text_report_of_unscanned_hosts_exit_3(tmp_path: Path, lab: Callable[..., Any]) -> None:
    """Lab.inject at run time: a 401 on every request of one host of a healthy fleet."""
    lab = lab("healthy")
    lab.inject("ex02", {"fail": {"kind": "http-401"}})
    inventory = lab.write_inventory(tmp_path / "inventory.yaml")
    run = run_exfix("scan", "-i", str(inventory), "--host-timeout", str(HOST_TIMEOUT))
    assert run.exit_code == 3, run.describe()
    assert "auth-failed" in run.stdout and "ex02.contoso.local" in run.stdout
    assert "2 hosts, 1 scanned, 1 auth-failed" in run.stdout
