from __future__ import annotations

import copy
import dataclasses
import io
import json
import threading
from typing import Any

import pytest

from agent.errors import FactsFileError
from agent.evaluate import evaluate
from agent.model import snapshot
from agent.model.facts import (
    AreaIssue,
    CollectionArea,
    CollectionStatus,
    EdgeConfigFileFacts,
    EdgeTransportConfigFacts,
    FirewallFacts,
    XmlSyntaxError,
)
from agent.model.probe import Outcome, Vantage
from support.facts_builders import (
    INTERNAL_DNS,
    NXDOMAIN_ERROR,
    firewall_profiles,
    firewall_rule,
    host,
    internal_queue,
    mapi_nic,
    probe,
    replication_nic,
    server_probes,
)


def rich_host() -> Any:
    return host(
        nics=(
            mapi_nic(
                ipv4_dns_servers=(INTERNAL_DNS, "8.8.8.8"),
                ipv6_dns_servers=("fec0:0:0:ffff::1",),
                interface_alias="Ethernet0 'quoted' $(x) `n ✉\x1b[31m",
            ),
            replication_nic(),
        ),
        queues=(
            internal_queue(last_error="[{LRT=x};{LED=" + NXDOMAIN_ERROR + "};{FQDN=ex02};{IP=10.0.1.5}]"),
        ),
        probes=server_probes(INTERNAL_DNS)
        + server_probes("8.8.8.8", srv=Outcome.NXDOMAIN, vantage=Vantage.ORCHESTRATOR),
        extra_probes=(probe(INTERNAL_DNS, "fabrikam.com", "AAAA", Outcome.TIMEOUT),),
        edge=EdgeTransportConfigFacts("C:\\x\\Bin\\EdgeTransport.exe.config", "Normal", True),
        remote_domains=("fabrikam.com",),
    )


def test_round_trip_through_json_is_equal() -> None:
    hosts = (rich_host(), host(name="ex02.contoso.local", no_transport=True))
    text = snapshot.to_json(hosts)
    assert json.loads(text)["schema"] == "exfix.facts/4"
    again = snapshot.from_json(text, source="facts.json")
    assert again == hosts
    assert evaluate(again[0]) == evaluate(hosts[0])


def partial_host() -> Any:
    """A host whose EdgeTransport.exe.config was read but is not well-formed XML."""
    path = "C:\\x\\Bin\\EdgeTransport.exe.config"
    facts = host(edge=None)
    return dataclasses.replace(
        facts,
        edge_config_file=EdgeConfigFileFacts(path, XmlSyntaxError(12, 31, "mismatched tag", "</a>")),
        status=CollectionStatus(
            facts.status.transport_noun,
            (AreaIssue(CollectionArea.EDGE_CONFIG, f"Get-Content: {path}: not well-formed XML: line 12"),),
        ),
    )


def test_failed_areas_and_the_file_as_read_round_trip() -> None:
    hosts = (partial_host(),)
    again = snapshot.from_json(snapshot.to_json(hosts), source="facts.json")
    assert again == hosts
    assert again[0].status.failed_areas == (CollectionArea.EDGE_CONFIG,)
    assert again[0].edge_config_file is not None and again[0].edge_config_file.xml_error is not None


def _as_2(data: dict[str, Any]) -> dict[str, Any]:
    # What exfix wrote as exfix.facts/2: no edge_config_file, and one edge_config area for both
    # reading the file and parsing it.
    data = copy.deepcopy(data)
    data["schema"] = "exfix.facts/2"
    for old in data["hosts"]:
        del old["edge_config_file"]
        for issue in old["status"]["issues"]:
            if issue["area"] == "edge_config_file":
                issue["area"] = "edge_config"
    return data


def test_a_snapshot_written_as_exfix_facts_2_still_reads() -> None:
    # A host whose settings were read: the file was read and well-formed.
    (facts,) = snapshot.from_dict(_as_2(snapshot.to_dict([rich_host()])))
    assert facts.edge_config == rich_host().edge_config
    assert facts.edge_config_file == EdgeConfigFileFacts("C:\\x\\Bin\\EdgeTransport.exe.config")
    assert evaluate(facts) == evaluate(rich_host())
    # A host where /2 said edge_config was not collected: nothing is known of the file either,
    # so neither rule about it is judged.
    unread = dataclasses.replace(
        host(),
        status=CollectionStatus(
            host().status.transport_noun,
            (AreaIssue(CollectionArea.EDGE_CONFIG_FILE, "Get-Content: Cannot find path"),),
        ),
    )
    (facts,) = snapshot.from_dict(_as_2(snapshot.to_dict([unread])))
    assert facts.edge_config_file is None
    assert [i.area for i in facts.status.issues] == [CollectionArea.EDGE_CONFIG_FILE]
    assert not facts.status.collected(CollectionArea.EDGE_CONFIG)


def good() -> dict[str, Any]:
    return snapshot.to_dict((rich_host(),))


def broken(mutate: Any) -> dict[str, Any]:
    data = copy.deepcopy(good())
    mutate(data)
    return data


@pytest.mark.parametrize(
    ("mutate", "key", "problem"),
    [
        (
            lambda d: d.update(schema="exfix.facts/5"),
            "schema",
            "is not one of: exfix.facts/1, exfix.facts/2, exfix.facts/3, exfix.facts/4",
        ),
        (
            lambda d: d["hosts"][0]["status"].update(issues=[{"area": "registry", "reason": "x"}]),
            "hosts[0].status.issues[0].area",
            "is not one of",
        ),
        (lambda d: d.pop("organizations"), "organizations", "missing"),
        (lambda d: d["hosts"][0].update(org=7), "hosts[0].org", "index of one of the 1 organizations"),
        (lambda d: d.pop("hosts"), "hosts", "missing"),
        (lambda d: d.update(hosts={}), "hosts", "must be a list"),
        (lambda d: d.update(extra=1), "extra", "unknown key"),
        (lambda d: d["hosts"][0].pop("exchange"), "hosts[0].exchange", "missing"),
        (
            lambda d: d["hosts"][0]["nics"][1].update(interface_index="14"),
            "hosts[0].nics[1].interface_index",
            "must be a whole number, not a",
        ),
        (
            lambda d: d["hosts"][0]["nics"][0].update(interface_index=True),
            "hosts[0].nics[0].interface_index",
            "must be a whole number, not a",
        ),
        (
            lambda d: d["hosts"][0]["nics"][0].update(ipv4_dns_servers="10.0.0.10"),
            "hosts[0].nics[0].ipv4_dns_servers",
            "must be a list",
        ),
        (
            lambda d: d["hosts"][0]["nics"][0].update(ipv4_dns_servers=[1]),
            "hosts[0].nics[0].ipv4_dns_servers[0]",
            "must be a string",
        ),
        (
            lambda d: d["hosts"][0]["probes"][0].update(outcome="maybe"),
            "hosts[0].probes[0].outcome",
            "'maybe' is not one of",
        ),
        (
            lambda d: d["hosts"][0]["queues"][0]["last_error"].update(kind="Bad"),
            "hosts[0].queues[0].last_error.kind",
            "is not one of",
        ),
        (
            lambda d: d["hosts"][0]["transport"]["external"].update(adapter_enabled="yes"),
            "hosts[0].transport.external.adapter_enabled",
            "true or false",
        ),
        (
            lambda d: d["hosts"][0].update(exchange=None),
            "hosts[0].exchange",
            "must be a JSON object, not null",
        ),
        (lambda d: d["hosts"][0]["mapi_nic"].update(surprise=1), "hosts[0].mapi_nic.surprise", "unknown key"),
        (
            lambda d: d["hosts"][0]["status"].update(transport_noun="TransportThing"),
            "hosts[0].status.transport_noun",
            "is not one of",
        ),
    ],
)
def test_malformed_snapshot_names_the_key(mutate: Any, key: str, problem: str) -> None:
    with pytest.raises(FactsFileError) as caught:
        snapshot.from_dict(broken(mutate), source="facts.json")
    assert caught.value.key == key
    assert caught.value.path == "facts.json"
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"facts.json: key {key!r}: ")


def test_not_json_and_not_an_object() -> None:
    with pytest.raises(FactsFileError, match="not valid JSON") as caught:
        snapshot.from_json("{\n  nope", source="f.json")
    assert caught.value.line == 2
    with pytest.raises(FactsFileError, match="must be a JSON object"):
        snapshot.from_json("[]", source="f.json")


def test_optional_areas_may_be_null_and_defaults_may_be_absent() -> None:
    data = good()
    data["hosts"][0]["edge_config"] = None
    del data["hosts"][0]["nics"][0]["interface_description"]  # has a default
    (facts,) = snapshot.from_dict(data)
    assert facts.edge_config is None and facts.nics[0].interface_description == ""


def test_a_connector_written_before_frontend_proxy_enabled_was_collected_reads_as_false() -> None:
    data = good()
    (connector, *_rest) = data["organizations"][0]["send_connectors"]
    assert connector.pop("frontend_proxy_enabled") is False
    (facts,) = snapshot.from_dict(data)
    assert facts.send_connectors[0].frontend_proxy_enabled is False


def test_errors_in_a_snapshot_file_have_the_line_of_their_key() -> None:
    text = snapshot.to_json((rich_host(),))
    bad = text.replace('"interface_index": 12', '"interface_index": "12"', 1)
    with pytest.raises(FactsFileError) as caught:
        snapshot.from_json(bad, source="f.json")
    assert caught.value.key == "hosts[0].nics[0].interface_index"
    assert caught.value.line is not None
    assert bad.splitlines()[caught.value.line - 1].strip() == '"interface_index": "12",'
    missing = text.replace('"remote_domains"', '"remote_domain"', 1)
    with pytest.raises(FactsFileError, match="unknown key") as caught:
        snapshot.from_json(missing, source="f.json")
    assert caught.value.line is not None
    assert '"remote_domain"' in missing.splitlines()[caught.value.line - 1]


def test_what_an_organisation_shares_is_written_once_and_shared_again_when_read() -> None:
    first = host(name="ex01.contoso.local")
    second = dataclasses.replace(host(name="ex02.contoso.local"), org=first.org)
    data = snapshot.to_dict([first, second])
    assert len(data["organizations"]) == 1 and [h["org"] for h in data["hosts"]] == [0, 0]
    read = snapshot.from_json(json.dumps(data))
    assert read == (first, second) and read[0].org is read[1].org


def test_a_snapshot_written_as_exfix_facts_1_still_reads() -> None:
    # /1 wrote each host's send connectors inline and no organisation in exchange.
    data = snapshot.to_dict([host()])
    org = data.pop("organizations")[0]
    (old,) = data["hosts"]
    del old["org"], old["exchange"]["organization"]
    old["send_connectors"] = org["send_connectors"]
    data["schema"] = "exfix.facts/1"
    (facts,) = snapshot.from_dict(data)
    assert facts.send_connectors == host().send_connectors
    assert facts.org.collected_from == facts.host and facts.exchange.organization == ""


def test_firewall_rules_round_trip_and_a_facts_3_snapshot_reads_without_them() -> None:
    rules = FirewallFacts((firewall_rule(remote_address=("10.0.0.0/24",), profile=("Domain", "Private")),))
    hosts = (host(firewall=rules),)
    data = snapshot.to_dict(hosts)
    assert data["hosts"][0]["firewall"]["rules"][0]["remote_address"] == ["10.0.0.0/24"]
    assert snapshot.from_json(snapshot.to_json(hosts), source="facts.json") == hosts
    # exfix.facts/3 had no firewall key: read as "not read".
    old = copy.deepcopy(data)
    old["schema"] = "exfix.facts/3"
    del old["hosts"][0]["firewall"]
    (facts,) = snapshot.from_dict(old)
    assert facts.firewall is None
    assert facts == dataclasses.replace(hosts[0], firewall=None)


def test_firewall_profiles_round_trip_and_a_snapshot_without_them_reads_them_as_not_read() -> None:
    firewall = FirewallFacts((firewall_rule(action="Allow"),), firewall_profiles("Block"))
    hosts = (host(firewall=firewall),)
    data = snapshot.to_dict(hosts)
    assert data["hosts"][0]["firewall"]["profiles"][0] == {
        "name": "Domain", "enabled": True, "default_outbound_action": "Block", "allow_local_rules": True,
    }  # fmt: skip
    assert snapshot.from_json(snapshot.to_json(hosts), source="facts.json") == hosts
    # An exfix.facts/4 snapshot written before exfix read the profiles has no "profiles" key.
    old = copy.deepcopy(data)
    del old["hosts"][0]["firewall"]["profiles"]
    (facts,) = snapshot.from_dict(old)
    assert facts.firewall is not None and facts.firewall.profiles is None
    assert facts.firewall.rules == firewall.rules


@pytest.mark.parametrize("count", [0, 1, 3])
def test_a_snapshot_written_host_by_host_is_the_same_document(count: int) -> None:
    """SnapshotWriter (exfix scan --save-facts streams with it) writes what to_json writes,
    whichever host finishes first: parsed, the same JSON with organizations after the hosts;
    read, the same facts in the inventory's order, one organisation object shared again."""
    first = rich_host()
    others = [
        dataclasses.replace(host(name=f"ex{i}.contoso.local"), org=first.org) for i in range(2, 1 + count)
    ]
    hosts = [first, *others][:count]
    failed = "ex99.contoso.local"  # not scanned: finished, with nothing to write
    order = [h.host for h in hosts] + [failed]
    out = io.StringIO()
    writer = snapshot.SnapshotWriter(out, order)
    for facts in reversed(hosts):  # the last host of the inventory answers first
        thread = threading.Thread(target=writer.add, args=(facts,))
        thread.start()
        thread.join()
        writer.finished(facts.host)
    writer.finished(failed)
    writer.close()
    writer.close()  # closing twice writes nothing more
    text = out.getvalue()
    assert json.loads(text) == json.loads(snapshot.to_json(hosts))
    assert snapshot.from_json(text) == tuple(hosts)
    head = '  "hosts": [' + ("" if hosts else "],")
    assert text.splitlines()[:3] == ["{", '  "schema": "exfix.facts/4",', head]
    with pytest.raises(ValueError, match="closed"):
        writer.add(first)


def test_a_snapshot_cut_short_keeps_the_hosts_that_finished_as_valid_json() -> None:
    first, second = rich_host(), host(name="ex02.contoso.local")
    out = io.StringIO()
    writer = snapshot.SnapshotWriter(out, [first.host, second.host, "ex03.contoso.local"])
    writer.add(second)
    writer.finished(second.host)  # waits for ex01, which never finishes
    writer.close()
    assert snapshot.from_json(out.getvalue()) == (second,)
