"""Small pure derivations the planners and the fingerprints share, so that a plan and the
stale check apply makes later read the facts the same way."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from agent.model.facts import HostFacts, NicFacts, SendConnectorFacts, normalize_name, preferred_vantage
from agent.model.probe import Outcome


def nic_by_index(facts: HostFacts, index: int) -> NicFacts | None:
    for nic in facts.nics:
        if nic.interface_index == index:
            return nic
    return None


# An RFC 1035 host name (letters, digits, hyphens, and the underscore some zones use), at
# least two labels. A remote domain exfix writes into an address space must be one: the
# domain comes from a queue's NextHopDomain, which a host reports and exfix does not trust.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})+$")


def is_domain_name(name: str) -> bool:
    return bool(_DOMAIN.match(name))


def is_ipv4(address: str) -> bool:
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return True


SMART_HOST_CONNECTOR_PREFIX = "exfix smart host "


def smart_host_connector_name(domain: str) -> str:
    """The name of the send connector exfix adds for one domain: recognisably exfix's."""
    return SMART_HOST_CONNECTOR_PREFIX + normalize_name(domain)


@dataclass(frozen=True, slots=True)
class MailRoute:
    """Where mail for a domain goes, from the probes: the lowest MX preference, the MX hosts at
    that preference, and their IPv4 addresses (sorted). Empty when the MX lookup gave nothing."""

    preference: int | None
    hosts: tuple[str, ...]
    ipv4: tuple[str, ...]


def mail_route(facts: HostFacts, domain: str) -> MailRoute:
    """The lowest-preference MX hosts of ``domain`` and their IPv4 addresses, as the probes
    saw them (the host's own view where it probed). RFC 5321 5.1: the lowest preference is
    tried first; equal preferences are equivalent, so all of them are kept."""
    mx_records: list[tuple[int, str]] = []
    for probe in preferred_vantage(facts.probes_for(qname=domain, rdtype="MX")):
        if probe.outcome is not Outcome.ANSWER:
            continue
        for record in probe.records:
            preference, _, host = record.strip().partition(" ")
            try:
                value = int(preference)
            except ValueError:
                continue
            name = normalize_name(host)
            if name:
                mx_records.append((value, name))
    if not mx_records:
        return MailRoute(None, (), ())
    lowest = min(p for p, _ in mx_records)
    hosts = tuple(sorted({h for p, h in mx_records if p == lowest}))
    addresses: set[str] = set()
    for host in hosts:
        for probe in preferred_vantage(facts.probes_for(qname=host, rdtype="A")):
            if probe.outcome is Outcome.ANSWER:
                addresses.update(r.strip() for r in probe.records if is_ipv4(r.strip()))
    ipv4 = tuple(sorted(addresses, key=lambda a: ipaddress.IPv4Address(a)))
    return MailRoute(lowest, hosts, ipv4)


def connectors_for_domain(facts: HostFacts, domain: str) -> tuple[SendConnectorFacts, ...]:
    """Send connectors that name ``domain`` in an address space of their own (exactly, or by a
    ``*.parent`` wildcard), plus any connector already carrying exfix's name for it. The
    internet connector (``*``) is not one of them: it is what the domain's mail uses now."""
    wanted = normalize_name(domain)
    name = smart_host_connector_name(domain).lower()
    out = []
    for connector in facts.send_connectors:
        own = any(
            space == wanted or (space.startswith("*.") and wanted.endswith(space[1:]))
            for space in connector.domains
            if space != "*"
        )
        if own or connector.name.strip().lower() == name:
            out.append(connector)
    return tuple(sorted(out, key=lambda c: (c.name.lower(), c.name)))
