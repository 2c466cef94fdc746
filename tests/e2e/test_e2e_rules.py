"""One end-to-end test per rule: a lab fleet where exactly that fault is present, scanned with
`exfix scan --format json`, and the finding checked for the values that made it fire.

Eight rules have a shipped scenario. Three do not (transport-internal-dns-misconfigured,
transport-no-dns-configured, remote-domain-no-mail-dns): their scenarios are written here, in the
documented format, from a healthy one-host organisation with one thing broken.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import Run, base_scenario, run_exfix, scan_shipped, write_scenario

pytestmark = pytest.mark.lab

Finding = dict[str, Any]


def only_host(run: Run) -> dict[str, Any]:
    """The one host of the run, its findings with the organisation findings naming it."""
    (host,) = run.doc["hosts"]
    assert host["status"] == "scanned", run.describe()
    return {**host, "findings": run.findings_for(host)}


def the_finding(host: dict[str, Any], rule: str) -> Finding:
    found = [f for f in host["findings"] if f["rule"] == rule]
    assert len(found) == 1, f"{rule}: {[f['id'] for f in host['findings']]}"
    return dict(found[0])


def evidence(finding: Finding, source: str) -> list[dict[str, Any]]:
    return [e for e in finding["evidence"] if e["source"] == source]


def symptoms_name(host: dict[str, Any], cause: Finding) -> None:
    """Every failing-queue finding on the host is explained by ``cause``."""
    symptoms = [f for f in host["findings"] if f["rule"] == "queue-dns-failure"]
    assert symptoms
    assert all(cause["id"] in s["explained_by"] for s in symptoms)


def scan_made(tmp_path: Path, data: dict[str, Any]) -> Run:
    path = write_scenario(tmp_path / "made.yaml", data)
    run = run_exfix("scan", "--lab", str(path), "--format", "json")
    assert run.exit_code == 2, run.describe()
    return run


# --- rules with a shipped scenario ---------------------------------------------------------


def test_queue_dns_failure() -> None:
    host = only_host(scan_shipped("nic-external-dns"))
    symptom = the_finding(host, "queue-dns-failure")
    assert symptom["subject"] == "internal next hops" and symptom["data"]["scope"] == "internal"
    assert symptom["data"]["error_classes"] == ["NonExistentDomain"]
    assert symptom["fix"] is None and symptom["severity"] == "high"
    queues = evidence(symptom, "Get-Queue")
    assert len(queues) == len(symptom["data"]["queues"]) >= 1
    for item in queues:
        assert item["values"]["Status"] == "Retry"
        assert "451 4.4.0 DNS query failed" in item["values"]["LastError"]
        assert "NonExistentDomain" in item["values"]["LastError"]
    assert symptom["data"]["message_count"] == sum(q["values"]["MessageCount"] for q in queues) > 0


def test_nic_dns_registration_disabled() -> None:
    host = only_host(scan_shipped("nic-registration-disabled"))
    cause = the_finding(host, "nic-dns-registration-disabled")
    assert cause["fix"] == "enable-nic-dns-registration"
    assert cause["data"]["interface_index"] == 4 and cause["data"]["fqdn"] == host["host"]
    (client,) = evidence(cause, "Get-DnsClient")
    assert client["values"]["RegisterThisConnectionsAddress"] is False
    # Only the MAPI NIC is reported: the replication NIC has registration off, correctly.
    assert [f["subject"] for f in host["findings"] if f["rule"] == cause["rule"]] == [cause["subject"]]
    symptoms_name(host, cause)


def test_server_a_record_wrong_nic() -> None:
    """The record as probed, the NIC that holds it, why the MAPI NIC is the one it is, and the
    decision about the other NIC; the symptom names this cause, not the registration rule."""
    run = scan_shipped("server-a-record-wrong-nic")
    hosts = {h["host"]: h for h in run.doc["hosts"]}
    (ex01,) = [f for f in hosts["ex01.contoso.local"]["findings"] if f["rule"] == "server-a-record-wrong-nic"]
    assert ex01["data"]["a_record"] == ["192.168.60.21"]
    assert ex01["data"]["turn_off"] == [6] and ex01["data"]["interface_index"] == 4
    assert "resolves to 192.168.60.21 of NIC 'Backup' (InterfaceIndex 6)" in ex01["summary"]
    assert "only NIC with a default gateway (10.0.0.1)" in ex01["summary"]
    subjects = {e["subject"]: e for e in ex01["evidence"]}
    assert subjects["A record of ex01.contoso.local"]["values"]["A"] == ["192.168.60.21"]
    holder = subjects["NIC 'Backup' (InterfaceIndex 6)"]["values"]
    assert (
        holder["holds A record value"] == ["192.168.60.21"]
        and holder["RegisterThisConnectionsAddress"] is True
    )
    # The symptom names this cause, not the registration rule, which stays silent.
    rules = {f["rule"] for f in hosts["ex01.contoso.local"]["findings"]}
    assert rules == {"server-a-record-wrong-nic", "queue-dns-failure"}
    symptoms_name(hosts["ex01.contoso.local"], ex01)
    (ex02,) = hosts["ex02.contoso.local"]["findings"]
    assert ex02["data"]["a_record"] == ["10.0.0.22", "192.168.50.22"] and ex02["data"]["turn_off"] == [6]


def test_nic_external_dns_server() -> None:
    host = only_host(scan_shipped("nic-external-dns"))
    cause = the_finding(host, "nic-external-dns-server")
    assert cause["fix"] == "set-nic-dns-servers"
    assert cause["data"]["current_servers"] == ["10.0.0.10", "8.8.8.8"]
    assert cause["data"]["drop_servers"] == ["8.8.8.8"] and cause["data"]["keep_servers"] == ["10.0.0.10"]
    symptoms_name(host, cause)


def test_transport_external_dns_unresolvable() -> None:
    host = only_host(scan_shipped("transport-external-dns-unresolvable"))
    cause = the_finding(host, "transport-external-dns-unresolvable")
    assert cause["fix"] == "set-transport-external-dns" and cause["fix_disrupts_mail_flow"] is True
    assert cause["data"]["current_servers"] == ["10.0.0.11"]
    probes = evidence(cause, "Resolve-DnsName")
    assert probes and all(p["values"]["outcome"] == "servfail" for p in probes)
    assert all(p["values"]["server"] == "10.0.0.11" and p["vantage"] == "host" for p in probes)
    symptoms_name(host, cause)


def test_remote_domain_aaaa_broken() -> None:
    host = only_host(scan_shipped("remote-domain-aaaa-broken"))
    cause = the_finding(host, "remote-domain-aaaa-broken")
    assert cause["subject"] == "wingtiptoys.com" and cause["fix"] == "add-smarthost-send-connector"
    assert cause["data"]["mx_hosts"] == ["mx.wingtiptoys.com"]
    outcomes = {(p["values"]["type"], p["values"]["outcome"]) for p in evidence(cause, "Resolve-DnsName")}
    assert ("MX", "answer") in outcomes and ("AAAA", "servfail") in outcomes
    symptoms_name(host, cause)


def test_dns_client_cache_negative() -> None:
    host = only_host(scan_shipped("dns-client-cache-negative"))
    cause = the_finding(host, "dns-client-cache-negative")
    assert cause["subject"] == "fabrikam.com" and cause["fix"] == "clear-dns-client-cache"
    assert cause["data"]["entries"] == ["fabrikam.com"] and cause["data"]["statuses"] == [9003]
    (cached,) = evidence(cause, "Get-DnsClientCache")
    assert cached["values"]["Type"] == "15 (MX)" and cached["values"]["Status"] == "9003 (NotExist)"
    assert cached["values"]["TimeToLive"] == 840
    answers = evidence(cause, "Resolve-DnsName") + evidence(cause, "dns-probe")
    assert answers
    assert all(a["values"]["outcome"] == "answer" and a["values"]["type"] == "MX" for a in answers)
    symptoms_name(host, cause)


def test_dns_server_unreachable() -> None:
    host = only_host(scan_shipped("dns-server-unreachable"))
    cause = the_finding(host, "dns-server-unreachable")
    assert cause["subject"] == "DNS server 10.0.0.99" and cause["data"]["server"] == "10.0.0.99"
    probes = evidence(cause, "Resolve-DnsName")
    assert probes and {p["values"]["outcome"] for p in probes} == {"timeout"}
    symptoms_name(host, cause)


def test_dns_server_intermittent() -> None:
    run = scan_shipped("dns-server-intermittent")  # with its expect.probe_repeat: 4
    (ex01,) = [h for h in run.doc["hosts"] if h["host"] == "ex01.contoso.local"]
    cause = the_finding({**ex01, "findings": run.findings_for(ex01)}, "dns-server-intermittent")
    assert cause["subject"] == "DNS server 10.0.0.11" and cause["data"]["failure_percent"] == 50
    probes = evidence(cause, "Resolve-DnsName")
    assert probes and all(p["values"]["attempts"] == 4 for p in probes)
    assert all(set(p["values"]["outcomes"]) == {"answer", "servfail"} for p in probes)
    assert cause["explained_by"] == []  # a cause: the mail still flows through 10.0.0.10


def test_dns_fault_tolerance() -> None:
    host = only_host(scan_shipped("dns-fault-tolerance-normal"))
    cause = the_finding(host, "dns-fault-tolerance")
    assert cause["data"]["current_value"] == "Normal" and cause["data"]["desired_value"] == "Lenient"
    assert cause["subject"].endswith("\\Bin\\EdgeTransport.exe.config")
    (config,) = evidence(cause, "Get-Content")
    assert config["values"]["value"] == "Normal"
    symptoms_name(host, cause)


def test_host_firewall_blocks_dns() -> None:
    run = scan_shipped("host-firewall-blocks-dns")
    hosts = {h["host"]: {**h, "findings": run.findings_for(h)} for h in run.doc["hosts"]}
    ex01 = hosts["ex01.contoso.local"]
    cause = the_finding(ex01, "host-firewall-blocks-dns")
    assert cause["subject"] == "DNS server 10.0.0.10" and cause["fix"] == "disable-dns-firewall-block"
    assert cause["data"]["rules"] == ["{3F2A9C1E-7B44-4D0B-9E51-2C6A0D8E1F01}"]
    # Both vantages are the evidence: silent from the host, answering exfix.
    host_side = evidence(cause, "Resolve-DnsName")
    ours = evidence(cause, "dns-probe")
    assert host_side and {p["values"]["outcome"] for p in host_side} == {"timeout"}
    assert ours and "answer" in {p["values"]["outcome"] for p in ours}
    (rule,) = [e for e in evidence(cause, "Get-NetFirewallRule") if "Action" in e["values"]]
    assert rule["values"]["RemoteAddress"] == ["10.0.0.0/24"] and rule["values"]["Action"] == "Block"
    assert not [f for f in ex01["findings"] if f["rule"] == "dns-server-unreachable"]
    symptoms_name(ex01, cause)
    # EX03: the rules could not be read; the contrast still names the cause, without a rule.
    ex03 = hosts["ex03.contoso.local"]
    blind = the_finding(ex03, "host-firewall-blocks-dns")
    assert blind["data"]["firewall_read"] is False and "Access is denied" in blind["data"]["firewall_issue"]
    assert [a["area"] for a in ex03["failed_areas"]] == ["firewall"] and ex03["not_judged"] == []
    assert hosts["ex02.contoso.local"]["findings"] == []


# --- rules without a shipped scenario: test-made ones ---------------------------------------


def test_transport_internal_dns_misconfigured(tmp_path: Path) -> None:
    # Transport's internal lookups go to a fixed list holding only the public resolver, which
    # answers NXDOMAIN for the AD zone: the queue to the other Exchange server fails; internet
    # mail (also through the internal settings: no connector uses the external ones) delivers.
    data = base_scenario()
    data["hosts"][0]["transport"] = {
        "internal_dns_adapter_enabled": False,
        "internal_dns_servers": ["8.8.8.8"],
    }
    host = only_host(scan_made(tmp_path, data))
    assert {f["rule"] for f in host["findings"]} == {
        "transport-internal-dns-misconfigured",
        "queue-dns-failure",
    }
    cause = the_finding(host, "transport-internal-dns-misconfigured")
    assert cause["fix"] == "set-transport-internal-dns"
    assert cause["data"]["current_servers"] == ["8.8.8.8"]
    assert cause["data"]["candidate_servers"] == ["10.0.0.10"]
    (settings,) = evidence(cause, "Get-TransportService")
    assert settings["values"]["InternalDNSAdapterEnabled"] is False
    assert settings["values"]["InternalDNSServers"] == ["8.8.8.8"]
    symptom = the_finding(host, "queue-dns-failure")
    assert symptom["data"]["scope"] == "internal" and symptom["data"]["error_classes"] == [
        "NonExistentDomain"
    ]
    symptoms_name(host, cause)


def test_transport_no_dns_configured(tmp_path: Path) -> None:
    # The internet connector uses the external settings, which turn the adapter off and list no
    # server: every external queue fails with ErrorRetry; the internal queue still delivers.
    data = base_scenario()
    data["hosts"][0]["transport"] = {"external_dns_adapter_enabled": False, "external_dns_servers": []}
    data["send_connectors"][0]["use_external_dns_servers_enabled"] = True
    host = only_host(scan_made(tmp_path, data))
    assert {f["rule"] for f in host["findings"]} == {"transport-no-dns-configured", "queue-dns-failure"}
    cause = the_finding(host, "transport-no-dns-configured")
    assert cause["data"]["sides"] == ["external"]
    (settings,) = evidence(cause, "Get-TransportService")
    assert settings["values"]["ExternalDNSAdapterEnabled"] is False
    assert settings["values"]["ExternalDNSServers"] == []
    symptom = the_finding(host, "queue-dns-failure")
    assert symptom["data"]["scope"] == "all-external" and symptom["data"]["error_classes"] == ["ErrorRetry"]
    symptoms_name(host, cause)


def test_remote_domain_no_mail_dns(tmp_path: Path) -> None:
    # Mail to a domain that does not exist anywhere: NXDOMAIN for MX and A, while the other
    # internet domains deliver. Advisory: nothing to fix on the server.
    data = base_scenario()
    data["hosts"][0]["queues"].append({"next_hop": "no-such-domain.example", "messages": 5})
    host = only_host(scan_made(tmp_path, data))
    assert {f["rule"] for f in host["findings"]} == {"remote-domain-no-mail-dns", "queue-dns-failure"}
    cause = the_finding(host, "remote-domain-no-mail-dns")
    assert cause["subject"] == "no-such-domain.example" and cause["fix"] is None
    assert cause["severity"] == "low"
    asked = {(p["values"]["type"], p["values"]["outcome"]) for p in evidence(cause, "Resolve-DnsName")}
    assert ("MX", "nxdomain") in asked
    symptom = the_finding(host, "queue-dns-failure")
    assert symptom["subject"] == "no-such-domain.example" and symptom["data"]["scope"] == "domain"
    symptoms_name(host, cause)


def test_edge_transport_config_malformed() -> None:
    # EX02's file has typographic quotes on line 25; its NIC fault is found beside it.
    run = scan_shipped("edge-config-malformed")
    (ex02,) = [h for h in run.doc["hosts"] if h["host"].startswith("ex02")]
    finding = the_finding({**ex02, "findings": run.findings_for(ex02)}, "edge-transport-config-malformed")
    assert finding["subject"].endswith("\\Bin\\EdgeTransport.exe.config") and finding["fix"] is None
    (read,) = evidence(finding, "Get-Content")
    assert (read["values"]["line"], read["values"]["column"]) == (25, 14)
    assert read["values"]["XML error"] == "not well-formed (invalid token)"
    assert "\u201dDnsFaultTolerance\u201d" in read["values"]["text of the line"]
    assert not finding["explained_by"] and finding["severity"] == "high"


def test_every_rule_has_a_test_here() -> None:
    from agent.rules.registry import RULES_BY_ID

    tested = {name[len("test_") :].replace("_", "-") for name in globals() if name.startswith("test_")}
    assert set(RULES_BY_ID) <= tested


def test_host_firewall_blocks_dns_by_a_default_outbound_block() -> None:
    run = scan_shipped("host-firewall-default-block")
    hosts = {h["host"]: {**h, "findings": run.findings_for(h)} for h in run.doc["hosts"]}
    ex01 = hosts["ex01.contoso.local"]
    cause = the_finding(ex01, "host-firewall-blocks-dns")
    # No rule blocks it: the Domain profile's default does, and no allow rule matches.
    assert cause["fix"] == "allow-dns-through-firewall"
    assert cause["data"]["rules"] == [] and cause["data"]["default_block_profile"] == "Domain"
    (profile,) = evidence(cause, "Get-NetFirewallProfile")
    assert profile["subject"] == "firewall profile Domain"
    assert profile["values"]["DefaultOutboundAction"] == "Block" and profile["values"]["Enabled"] is True
    assert profile["values"]["enabled allow rules for UDP 53 to 10.0.0.10"] == 0
    assert {p["values"]["outcome"] for p in evidence(cause, "Resolve-DnsName")} == {"timeout"}
    assert "answer" in {p["values"]["outcome"] for p in evidence(cause, "dns-probe")}
    symptoms_name(ex01, cause)
    # EX03: a block rule too; the finding names both, and the allow fix (which turns it off first).
    ex03 = the_finding(hosts["ex03.contoso.local"], "host-firewall-blocks-dns")
    assert ex03["fix"] == "allow-dns-through-firewall"
    assert ex03["data"]["rules"] == ["{8C1D2E3F-4A5B-4C6D-8E9F-0A1B2C3D4E03}"]
    assert ex03["data"]["default_block_profile"] == "Domain"
    # EX02 blocks by default too, and allows DNS to its DNS servers: healthy.
    assert hosts["ex02.contoso.local"]["findings"] == []
