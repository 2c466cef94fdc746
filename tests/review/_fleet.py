"""A fleet of plain-data hosts (tests/support/facts_builders.py) with three kinds of change and
healthy servers between them, planned: the 200-server plan of the review tests, built in well
under a second. Not a test module (no test_ prefix)."""

from __future__ import annotations

from agent.evaluate import evaluate
from agent.model.facts import HostFacts
from agent.model.plan import Plan
from agent.model.probe import Outcome
from agent.planning import build_plan
from support.facts_builders import (
    INTERNAL_DNS,
    host,
    lookup,
    mapi_nic,
    replication_nic,
    server_probes,
    transport,
)

# The three kinds of change, by the rule that fires (and the step apply takes).
REGISTRATION = "nic-dns-registration-disabled"  # enable-nic-dns-registration, register, restart
NIC_DNS = "nic-external-dns-server"  # set-nic-dns-servers, restart
TRANSPORT = "transport-internal-dns-misconfigured"  # enable-transport-internal-dns-adapter, restart


def server(number: int) -> HostFacts:
    """Server ``number``: of every five, one with each kind of change and two healthy."""
    name = f"ex{number:03d}.contoso.local"
    kind = number % 5
    if kind == 0:
        return host(name=name, nics=(mapi_nic(register_this_connections_address=False), replication_nic()))
    if kind == 1:
        return host(name=name, nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS, "8.8.8.8")), replication_nic()))
    if kind == 2:
        return host(
            name=name,
            transport_facts=transport(internal=lookup(adapter=False, servers=("10.9.9.9",))),
            probes=server_probes(INTERNAL_DNS) + server_probes("10.9.9.9", srv=Outcome.SERVFAIL),
        )
    return host(name=name)


def fleet_plan(size: int) -> Plan:
    fleet = [server(n) for n in range(1, size + 1)]
    return build_plan(fleet, {f.host: evaluate(f) for f in fleet}, {})
