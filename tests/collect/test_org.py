"""The organisation's facts are read once per organisation: the DN parse, the shared cache,
and over the lab, one Get-SendConnector for a whole fleet."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from agent.collect.exchange_server import organization
from agent.collect.org import OrgFactsCache
from agent.errors import CmdletError, UnreachableError
from agent.inventory import load_inventory
from agent.model.facts import SendConnectorFacts
from agent.scan import scan_fleet

REAL_DN = (
    "CN=SOLO-E16A,CN=Servers,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative Groups,"
    "CN=SoloORG,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=Solo,DC=local"
)
CONNECTOR = SendConnectorFacts("Internet", ("SMTP:*;1",), (), True, False, ("EX01",), True, 1)


def test_the_organisation_is_read_from_the_server_dn() -> None:
    assert organization(REAL_DN) == "SoloORG@solo.local"
    escaped = REAL_DN.replace("CN=SoloORG", "CN=Contoso\\, Ltd")
    assert organization(escaped) == "Contoso\\, Ltd@solo.local"
    assert organization("") == ""
    assert organization("CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=Solo,DC=local") == ""


def test_servers_of_one_organisation_share_one_read() -> None:
    cache = OrgFactsCache()
    reads: list[str] = []

    def read_on(host: str) -> Any:
        def read() -> tuple[SendConnectorFacts, ...]:
            reads.append(host)
            return (CONNECTOR,)

        return read

    first = cache.get("Org@contoso.local", "ex01", read_on("ex01"))
    second = cache.get("Org@contoso.local", "ex02", read_on("ex02"))
    other = cache.get("Other@fabrikam.local", "ex03", read_on("ex03"))
    assert second is first and first.collected_from == "ex01"
    assert other is not first
    assert reads == ["ex01", "ex03"]
    # An organisation the servers did not show is not shared: each server reads its own.
    cache.get("", "ex04", read_on("ex04"))
    cache.get("", "ex05", read_on("ex05"))
    assert reads[-2:] == ["ex04", "ex05"]


def test_a_failed_read_is_not_kept_and_the_next_server_tries() -> None:
    cache = OrgFactsCache()

    def denied() -> tuple[SendConnectorFacts, ...]:
        raise CmdletError("ex01", "Get-SendConnector", "access denied")

    failed = cache.get("Org@x", "ex01", denied)
    assert failed.issue is not None and failed.issue.area == "send_connectors"
    assert "access denied" in failed.issue.reason and failed.send_connectors == ()
    with pytest.raises(UnreachableError):
        cache.get("Org@x", "ex02", lambda: (_ for _ in ()).throw(UnreachableError("ex02", "reset")))
    good = cache.get("Org@x", "ex03", lambda: (CONNECTOR,))
    assert good.issue is None and good.collected_from == "ex03"


def test_concurrent_servers_wait_for_the_one_read() -> None:
    cache = OrgFactsCache()
    started = threading.Event()
    release = threading.Event()
    reads = []

    def slow() -> tuple[SendConnectorFacts, ...]:
        reads.append(1)
        started.set()
        release.wait(5)
        return (CONNECTOR,)

    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(cache.get("Org@x", "ex01", slow)))
    first.start()
    started.wait(5)
    second = threading.Thread(target=lambda: results.append(cache.get("Org@x", "ex02", slow)))
    second.start()
    release.set()
    first.join(5)
    second.join(5)
    assert len(reads) == 1 and results[0] is results[1]


@pytest.mark.lab
def test_a_fleet_scan_reads_the_send_connectors_once(lab: Any, tmp_path: Path) -> None:
    running = lab("mixed-fleet", hosts=20, auth="basic")
    inventory = load_inventory(running.write_inventory(tmp_path / "inventory.yaml"))
    targets = inventory.select(None)
    report = scan_fleet(targets, inventory.credentials(), source="lab", forks=8)
    assert all(h.facts is not None for h in report.hosts)
    orgs = {id(h.facts.org) for h in report.hosts if h.facts is not None}
    assert len(orgs) == 1  # one object shared by the whole fleet
    collected_from = {h.facts.org.collected_from for h in report.hosts if h.facts is not None}
    assert len(collected_from) == 1
    # Every server ran the same Exchange cmdlets but one: Get-SendConnector, on the server the
    # organisation's facts were read from.
    commands = {
        t.name: running.counters.get(running.host_name(t.name), endpoint="exchange", action="Command")
        for t in targets
    }
    reader = collected_from.pop()
    assert commands[reader] == max(commands.values())
    others = {n for name, n in commands.items() if name != reader}
    assert others == {commands[reader] - 1}
