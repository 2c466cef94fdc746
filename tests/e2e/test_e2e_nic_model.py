"""The NIC model end to end, over the lab's sockets: what the probes ask on hosts built like real
servers (Windows' IPv6 placeholders never, a configured IPv6 server from both vantages), and
what server-a-record-wrong-nic reports about the class 4 scenario."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e.conftest import run_exfix, scan_shipped

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


def test_the_wrong_nic_finding_names_the_record_the_holder_and_the_decision() -> None:
    run = scan_shipped("server-a-record-wrong-nic")
    hosts = {h["host"]: h for h in run.doc["hosts"]}
    (ex01,) = [f for f in hosts["ex01.contoso.local"]["findings"] if f["rule"] == "server-a-record-wrong-nic"]
    assert ex01["data"]["a_record"] == ["192.168.60.21"]
    assert ex01["data"]["turn_off"] == [6] and ex01["data"]["interface_index"] == 4
    assert "resolves to 192.168.60.21 of NIC 'Backup' (InterfaceIndex 6)" in ex01["summary"]
    assert "only NIC with a default gateway (10.0.0.1)" in ex01["summary"]
    subjects = {e["subject"]: e for e in ex01["evidence"]}
    assert "A record of ex01.contoso.local" in subjects and "NIC 'Backup' (InterfaceIndex 6)" in subjects
    # The symptom names this cause, not the registration rule, which stays silent.
    rules = {f["rule"] for f in hosts["ex01.contoso.local"]["findings"]}
    assert rules == {"server-a-record-wrong-nic", "queue-dns-failure"}
    (ex02,) = hosts["ex02.contoso.local"]["findings"]
    assert ex02["data"]["a_record"] == ["10.0.0.22", "192.168.50.22"] and ex02["data"]["turn_off"] == [6]
