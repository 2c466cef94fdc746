"""The NIC model end to end, over the lab's sockets: what the probes ask on hosts built like real
servers (Windows' IPv6 placeholders never, a configured IPv6 server from both vantages).
server-a-record-wrong-nic's own end-to-end test is in test_e2e_rules.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e.conftest import run_exfix

pytestmark = pytest.mark.lab

PLACEHOLDERS = {"fec0:0:0:ffff::1", "fec0:0:0:ffff::2", "fec0:0:0:ffff::3"}


def test_real_world_nics_probe_configured_servers_only(tmp_path: Path) -> None:
    facts_file = tmp_path / "facts.json"
    run = run_exfix("scan", "--lab", "healthy-multi-nic", "--save-facts", str(facts_file), "--format", "json")
    assert run.exit_code == 0, run.describe()
    hosts = {h["host"]: h for h in json.loads(facts_file.read_text(encoding="utf-8"))["hosts"]}
    # Windows showed the placeholders (the facts keep what it listed) ...
    ex01_nics = {n["interface_alias"]: n for n in hosts["ex01.contoso.local"]["nics"]}
    assert set(ex01_nics["Ethernet"]["ipv6_dns_servers"]) == PLACEHOLDERS
    assert ex01_nics["Ethernet"]["ipv4_dns_servers"] == ["10.0.0.10", "10.0.0.11"]  # the repeat read once
    # ... and no probe from either vantage ever asked them.
    asked = {p["server"] for h in hosts.values() for p in h["probes"]}
    assert not asked & PLACEHOLDERS
    assert asked == {"10.0.0.10", "10.0.0.11", "fd00:10::10"}
    # EX02's IPv6 AD DNS server answered the host's Resolve-DnsName and exfix's own probe.
    ipv6 = [p for p in hosts["ex02.contoso.local"]["probes"] if p["server"] == "fd00:10::10"]
    assert {p["vantage"] for p in ipv6} == {"host", "orchestrator"}
    assert {p["outcome"] for p in ipv6} == {"answer"}
