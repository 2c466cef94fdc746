"""Which DNS servers this server's transport asks for one queue's next hop (pure).

The public face of agent/rules/_mail_path.py and _common.lookup_servers for the layers above
the rules: apply's verification re-runs the lookups a failing queue needed against exactly the
servers transport uses for it now, as an admin checks a fix ("Resolve-DnsName <domain> -Type MX
-Server <the server transport asks>"), not against every server the host lists.

- a next hop inside the organisation uses transport's Internal* settings;
- an external domain uses the send connector that carries it: External* with
  UseExternalDNSServersEnabled $true, Internal* otherwise (Set-SendConnector docs);
- a connector with smart hosts, or with FrontendProxyEnabled, puts no lookup of the recipient
  domain on the Transport service's path: no servers, and the reason says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.model import dns_servers
from agent.model.facts import HostFacts, QueueFacts, QueueScope, normalize_name
from agent.rules import _common
from agent.rules import _mail_path as paths


@dataclass(frozen=True, slots=True)
class NextHopLookup:
    """The servers transport asks for a next hop (empty when the Transport service resolves
    none for it), and one line saying why those."""

    servers: tuple[str, ...]
    how: str


def next_hop_lookup(facts: HostFacts, queue: QueueFacts) -> NextHopLookup:
    """The servers ``facts``' transport uses for ``queue``'s next hop, and why."""
    if facts.transport is None:
        return NextHopLookup((), "transport's DNS settings could not be read")
    if queue.scope is QueueScope.INTERNAL:
        route = paths.internal_route(facts)
    else:
        domain = normalize_name(queue.next_hop_domain)
        connector = paths.internet_connector(facts) if "*" in domain else paths.connector_for(facts, domain)
        if connector is None:
            return NextHopLookup((), f"no enabled send connector of {facts.exchange.name} carries {domain}")
        route = paths.connector_route(connector)
        if route.side is None:
            return NextHopLookup((), route.why)
    found = _common.lookup_servers(facts, route.side or "internal", (route,))
    return NextHopLookup(dns_servers.configured(found.servers), found.how)
