"""Scenario files: the shipped scenarios, validation errors that name file and key,
fleet scaling for benchmarks, and a scenario full of hostile values."""

from __future__ import annotations

import ipaddress
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from psrpcore.types import serialize

from agent.errors import ScenarioError
from lab.exchange._exchange_support import EX, OS, make_fleet, ok, prop
from mock_remoting.exchange import RULE_IDS, command, load_scenario, shipped_scenarios
from mock_remoting.exchange.scenario import SCENARIO_DIR

SHIPPED = (
    "dns-client-cache-negative",
    "dns-fault-tolerance-normal",
    "dns-server-intermittent",
    "dns-server-unreachable",
    "edge-config-malformed",
    "exchange-2010",
    "healthy",
    "healthy-multi-nic",
    "host-firewall-blocks-dns",
    "host-firewall-default-block",
    "mixed-fleet",
    "nic-external-dns",
    "nic-public-secondary-no-forwarders",
    "nic-registration-disabled",
    "queue-errors-not-dns",
    "queues-stuck-ready",
    "remote-domain-aaaa-broken",
    "server-a-record-wrong-nic",
    "transport-dns-settings-unused",
    "transport-external-dns-in-use",
    "transport-external-dns-unresolvable",
)


def test_the_shipped_scenarios_ship() -> None:
    assert shipped_scenarios() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenario_is_consistent(name: str) -> None:
    scenario = load_scenario(name)
    assert scenario.name == name and scenario.description
    assert set(scenario.expect_rules) <= set(RULE_IDS)
    assert all(q.messages > 0 for h in scenario.hosts for q in h.queues)
    for host in scenario.hosts:
        for nic in host.nics:
            assert ipaddress.ip_address(nic.ipv4).is_private
    fleet = make_fleet(name)
    retrying = [v for h in fleet.hosts for v in h.queues if v.status == "Retry"]
    # Messages waiting in Ready with no LastError: a lookup that never completes.
    views = [v for h in fleet.hosts for v in h.queues]
    stuck = [v for v in views if v.status == "Ready" and v.queued and not v.last_error]
    failing = retrying + stuck
    # A queue the scenario makes fail at the remote side (remote_error) is no DNS symptom.
    remote = {q.next_hop for h in scenario.hosts for q in h.queues if q.remote_error is not None}
    assert all(v.last_error and "4.4.0 DNS" not in v.last_error for v in retrying if v.next_hop in remote)
    failing = [v for v in failing if v.next_hop not in remote]
    # Queues fail at load exactly where the symptom is expected: not in the healthy scenarios,
    # nor where settings look broken but no mail uses them, nor where the fault is a DNS server
    # that fails only some queries while a steady one behind it carries the mail.
    if "queue-dns-failure" not in scenario.expect_rules:
        assert not failing
    else:
        assert failing
        assert all(v.last_error and "4.4.0" in v.last_error for v in retrying)
    # internet hosts use documentation addresses (RFC 5737)
    for address in scenario.internet_addresses():
        assert any(
            ipaddress.ip_address(address) in ipaddress.ip_network(net)
            for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
        )


def test_shipped_scenarios_need_nothing_outside_the_package() -> None:
    for path in SCENARIO_DIR.glob("*.yaml"):
        assert "replay" not in yaml.safe_load(path.read_text(encoding="utf-8"))["hosts"][0]
        assert "../" not in path.read_text(encoding="utf-8")


def test_a_path_loads_too(tmp_path: Path) -> None:
    target = tmp_path / "copy.yaml"
    target.write_text((SCENARIO_DIR / "healthy.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    assert load_scenario(target).name == "copy"
    assert load_scenario(str(target)).source == target


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(
        data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True), encoding="utf-8"
    )
    return path


def _healthy() -> dict[str, Any]:
    return yaml.safe_load((SCENARIO_DIR / "healthy.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "mutate, key, words",
    [
        (lambda d: d.pop("description"), "description", "missing"),
        (lambda d: d.update(extra=1), "extra", "unknown key"),
        (lambda d: d["hosts"][0].update(version="15.2"), "hosts.0.version", "build number"),
        (lambda d: d["hosts"][0].update(version="8.3.83.6"), "hosts.0.version", "2007"),
        (lambda d: d["hosts"][0]["nics"][0].update(mapi=False), "hosts.0.nics", "mapi"),
        (
            lambda d: d["hosts"][0]["nics"][0].update(dns_servers=["10.9.9.9"]),
            "hosts.0.nics.0.dns_servers.0",
            "not listed",
        ),
        (lambda d: d["hosts"][0]["nics"][0].update(ipv4="10.0.0.300"), "hosts.0.nics.0.ipv4", "IPv4"),
        (lambda d: d["expect"].update(rules=["no-such-rule"]), "expect.rules.0", "not a rule id"),
        (
            lambda d: d["send_connectors"][0].update(source_transport_servers=["EX9"]),
            "send_connectors.0.source_transport_servers.0",
            "not a host",
        ),
        (
            lambda d: d["send_connectors"][0].update(smart_hosts=["192.0.2.1"]),
            "send_connectors.0.smart_hosts",
            "dns_routing_enabled",
        ),
        (
            lambda d: d["hosts"][0]["queues"][0].update(messages=-1),
            "hosts.0.queues.0.messages",
            "whole number",
        ),
        (
            lambda d: d["hosts"][0]["queues"][2].update(target="ex02.fabrikam.com"),
            "hosts.0.queues.2.target",
            "internal queue",
        ),
        (
            lambda d: d["hosts"][0].update(replay={"Get-DnsClient": "missing.xml"}),
            "hosts.0.replay.Get-DnsClient",
            "not found",
        ),
        (lambda d: d["hosts"][1].update(name="ex01"), "hosts.1.name", "twice"),
        (
            lambda d: d["dns"]["servers"].update({"10.0.0.10": {"kind": "weird"}}),
            "dns.servers.10.0.0.10.kind",
            "weird",
        ),
        (
            lambda d: d["hosts"][0].update(dns_fault_tolerance="Strict"),
            "hosts.0.dns_fault_tolerance",
            "Lenient",
        ),
        (
            lambda d: d["hosts"][0].update(edge_transport_config={}),
            "hosts.0.edge_transport_config",
            "exactly one of text",
        ),
        (
            lambda d: d["hosts"][0].update(edge_transport_config={"text": "<a/>", "file": "x.config"}),
            "hosts.0.edge_transport_config",
            "exactly one of text",
        ),
        (
            lambda d: d["hosts"][0].update(edge_transport_config={"file": "missing.config"}),
            "hosts.0.edge_transport_config.file",
            "cannot read",
        ),
        (
            lambda d: d["hosts"][0].update(edge_transport_config={"text": "  "}),
            "hosts.0.edge_transport_config.text",
            "empty",
        ),
        (
            lambda d: d["hosts"][0].update(edge_transport_config={"body": "<a/>"}),
            "hosts.0.edge_transport_config.body",
            "unknown key",
        ),
        (
            lambda d: d["hosts"][0].update(
                dns_fault_tolerance="Normal", edge_transport_config={"text": "<configuration/>"}
            ),
            "hosts.0.dns_fault_tolerance",
            "in the edge_transport_config file",
        ),
        (lambda d: d["expect"].update(failed_areas=["registry"]), "expect.failed_areas.0", "not a fact area"),
        (
            lambda d: d["hosts"][0].update(expect={"rules": [], "failed_areas": ["queues"]}),
            "expect.failed_areas",
            "union",
        ),
    ],
)
def test_validation_errors_name_the_file_and_key(tmp_path: Path, mutate: Any, key: str, words: str) -> None:
    data = _healthy()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.key == key
    assert words in caught.value.problem
    line = str(caught.value)
    assert "\n" not in line and repr(key) in line
    assert line.startswith(f"{path}:{caught.value.line}: ")  # every problem has its line now


def test_yaml_errors_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(_write(tmp_path, "description: x\nhosts: [\n"))
    assert caught.value.line is not None and "not valid YAML" in caught.value.problem
    with pytest.raises(ScenarioError) as caught:
        load_scenario("no-such-scenario")
    assert "healthy" in caught.value.problem


def test_a_file_given_as_a_path_is_decoded_as_get_content_decodes_it(tmp_path: Path) -> None:
    text = '<configuration>\r\n  <appSettings>\r\n    <add key="Note" value="caf\u00e9" />\r\n'
    for name, data in (
        ("utf8-bom.config", b"\xef\xbb\xbf" + text.encode("utf-8")),
        ("utf16.config", b"\xff\xfe" + text.encode("utf-16-le")),
        ("ansi.config", text.encode("cp1252")),  # no BOM: the ANSI code page
    ):
        (tmp_path / name).write_bytes(data)
        scenario = _healthy()
        scenario["hosts"][0]["edge_transport_config"] = {"file": name}
        (host, _) = load_scenario(_write(tmp_path, scenario)).hosts
        assert host.edge_config_text == text, name


def test_the_shipped_malformed_file_keeps_its_bytes() -> None:
    # .gitattributes keeps git from normalising its CR LF line breaks.
    raw = (SCENARIO_DIR / "files" / "edge-config-malformed.EdgeTransport.exe.config").read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n") > 20
    (_, ex02) = load_scenario("edge-config-malformed").hosts
    assert ex02.expect_failed_areas == ("edge_config",) and ex02.edge_config_text is not None


def test_host_expectations_must_add_up(tmp_path: Path) -> None:
    data = yaml.safe_load((SCENARIO_DIR / "mixed-fleet.yaml").read_text(encoding="utf-8"))
    data["expect"]["rules"].remove("remote-domain-aaaa-broken")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(_write(tmp_path, data))
    assert caught.value.key == "expect.rules"


def test_hosts_n_clones_round_robin_with_unique_identities() -> None:
    scenario = load_scenario("mixed-fleet", hosts=23)
    names = [h.name for h in scenario.hosts]
    assert len(names) == 23 == len({n.lower() for n in names})
    assert len({h.fqdn for h in scenario.hosts}) == 23
    assert all(h.fqdn.endswith(".contoso.local") for h in scenario.hosts)
    addresses = [n.ipv4 for h in scenario.hosts for n in h.nics]
    assert len(addresses) == len(set(addresses))
    assert names[:5] == ["EX01", "EX02", "EX03", "EX04", "EX05"] and names[5] == "EX01-2"
    (internet,) = scenario.send_connectors
    assert set(internet.source_transport_servers) == set(names)
    fleet = make_fleet("mixed-fleet", hosts=23)
    clone = fleet.host("EX02-3")
    assert {v.status for v in clone.queues} == {"Retry"}  # the registration fault travels with the clone
    assert {v.status for v in fleet.host("EX01-4").queues} == {"Ready"}
    assert len(load_scenario("healthy", hosts=1).hosts) == 1
    with pytest.raises(ScenarioError):
        load_scenario("healthy", hosts=0)


HOSTILE = "Eth'\"$(Remove-Item C:\\)`n;|&\n\x1b[31mÜñï✓𝔘\u202e"


def test_hostile_values_are_served_without_crashing(tmp_path: Path) -> None:
    data = _healthy()
    host = data["hosts"][0]
    host["nics"][0]["alias"] = HOSTILE
    host["nics"][0]["description"] = HOSTILE
    host["queues"].append({"next_hop": "x'$(y)`z\n\x1b[0m.example", "messages": 2})
    host["queues"].append(
        {
            "next_hop": HOSTILE,
            "delivery_type": "SmtpRelayToDag",
            "target": "ex02.contoso.local",
            "messages": 1,
        }
    )
    data["send_connectors"].append(
        {
            "name": HOSTILE,
            "address_spaces": ["SMTP:hostile.example;5"],
            "source_transport_servers": ["EX01"],
            "comment": HOSTILE,
        }
    )
    fleet = make_fleet(_write(tmp_path, data))
    ex01 = fleet.host("EX01")
    weird = next(v for v in ex01.queues if v.next_hop.startswith("x'"))
    assert weird.status == "Retry" and "NonExistentDomain" in (weird.last_error or "")
    calls = [
        (EX, "Get-Queue"),
        (EX, "Get-SendConnector"),
        (EX, "Get-ExchangeServer"),
        (EX, "Get-TransportService"),
        (OS, "Get-DnsClient"),
        (OS, "Get-DnsClientServerAddress"),
        (OS, "Get-NetIPConfiguration"),
    ]
    for endpoint, name in calls:
        for obj in ok(ex01, endpoint, name):
            xml = ET.tostring(serialize(obj, None), encoding="unicode")
            assert "\x1b" not in xml and "\n" not in xml  # psrpcore escapes them as _xHHHH_
    (client,) = ok(ex01, OS, "Get-DnsClient", ("InterfaceAlias", [HOSTILE]))
    assert prop(client, "InterfaceAlias") == HOSTILE
    ok(ex01, OS, "Set-DnsClient", ("InterfaceAlias", HOSTILE), ("RegisterThisConnectionsAddress", False))
    assert ex01.state.mapi_nic.register is False
    ok(ex01, EX, "Set-SendConnector", ("Identity", HOSTILE), ("Comment", "ok"))
    ok(ex01, EX, "Retry-Queue", ("Identity", weird.identity))
    # the same alias written as exfix writes it for WinRS
    pieces = ["''"] + [
        f"[char]0x{int.from_bytes(ch.encode('utf-16-le')[i : i + 2], 'little'):04X}"
        for ch in HOSTILE
        for i in range(0, len(ch.encode("utf-16-le")), 2)
    ]
    result = ex01.run_script(f"Get-DnsClient -InterfaceAlias ({' + '.join(pieces)})", threading.Event())
    assert result.exit_code == 0 and prop(result.output[0], "InterfaceAlias") == HOSTILE
    result = ex01.invoke(
        OS,
        [command("Get-DnsClient"), command("Select-Object", ("Property", [HOSTILE, "*Alias"]))],
        threading.Event(),
    )
    assert result.failure is None


def test_the_readme_example_is_a_working_scenario(tmp_path: Path) -> None:
    readme = (SCENARIO_DIR.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## An annotated example") :]
    block = section[
        section.index("```yaml") + len("```yaml") : section.index("```", section.index("```yaml") + 7)
    ]
    path = tmp_path / "example.yaml"
    path.write_text(block, encoding="utf-8")
    fleet = make_fleet(path)
    host = fleet.host("EX01")
    assert host.queue("fabrikam.com").status == "Ready"
    internal = host.queue("site:default-first-site-name; version:15")
    assert internal.status == "Retry" and "NonExistentDomain" in (internal.last_error or "")
    assert load_scenario(path).expect_rules == ("nic-external-dns-server", "queue-dns-failure")
