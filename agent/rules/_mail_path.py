"""Which of transport's DNS settings are on the path of this server's mail (pure).

The Transport service has two groups of DNS settings (Set-TransportService): External* and
Internal*. Which group a lookup uses depends on the route the message takes, not on the
settings themselves, so a rule judges a group only when a route puts it on the path of this
server's mail, and names that route in its evidence:

- next hops inside the organisation (other Exchange servers, delivery to mailboxes) use the
  Internal* settings: "DNS lookups of destinations inside the Exchange organization"
  (Set-TransportService / Set-FrontendTransportService docs, -InternalDNSAdapterEnabled). A
  Mailbox server delivers to mailboxes, so this route is always on its path;
- a send connector that routes by DNS uses the External* settings only with
  UseExternalDNSServersEnabled $true ("whether this Send connector uses the external DNS list
  specified by the ExternalDNSServers parameter of the Set-TransportService cmdlet",
  Set-SendConnector docs), the Internal* ones otherwise;
- a connector with smart hosts (DNSRoutingEnabled $false) looks up no recipient domain; what
  it resolves at most is its smart hosts' own names, which the public probe name says nothing
  about, so its route is not judged by the external rules;
- a connector with FrontendProxyEnabled $true "routes outbound messages through the CAS server,
  where destination specific routing, such as DNS or IP address, is set" (Set-SendConnector
  docs): the recipient's lookups are the Front End Transport service's, with its own DNS
  settings (Set-FrontendTransportService -ExternalDNS* / -InternalDNS*). exfix does not
  collect those, so the Transport service's settings are not judged for that route;
- a connector whose SourceTransportServers do not name this server is not its route, and a
  disabled connector is nobody's.

Which connector carries a domain: the enabled connector of this server whose address space
fits it best, the most specific first, then the lowest cost ("Mail routing in Exchange Server",
learn.microsoft.com: selecting the connector for an external recipient). "The internet route"
is the connector of this server with the cheapest ``*`` address space.

Within a group, ``*DNSAdapterEnabled $true`` means the NIC's servers and the server list is
ignored ("If the value of the ExternalDNSAdapterEnabled parameter is set to $true, the
ExternalDNSServers parameter and its list of DNS servers isn't used", Set-TransportService
docs); agent/rules/_common.py resolves a group to its servers.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.model.facts import (
    CollectionArea,
    HostFacts,
    QueueFacts,
    QueueScope,
    SendConnectorFacts,
    normalize_name,
)
from agent.model.finding_data import LookupSide
from agent.model.findings import DataValue, EvidenceItem

INTERNAL_HOPS = "internal next hops"


@dataclass(frozen=True, slots=True)
class Route:
    """One way this server's mail goes, and which group of transport's DNS settings resolves
    it (``side``; None when the Transport service's settings are not what resolves it)."""

    name: str  # "send connector 'Internet'", or INTERNAL_HOPS
    side: LookupSide | None
    why: str  # one line: why this group (or why none)
    connector: SendConnectorFacts | None = None
    queues: tuple[QueueFacts, ...] = ()  # this server's queues that take the route

    @property
    def prefix(self) -> str:
        return "External" if self.side == "external" else "Internal"


def host_connectors(facts: HostFacts) -> tuple[SendConnectorFacts, ...]:
    """The enabled send connectors this server may send through (its SourceTransportServers)."""
    names = (facts.exchange.name, facts.exchange.fqdn, facts.host)
    return tuple(c for c in facts.send_connectors if c.enabled and c.sources(*names))


def connector_for(facts: HostFacts, domain: str) -> SendConnectorFacts | None:
    """The connector of this server that carries mail for ``domain`` (best address space
    first, then lowest cost, then the first listed), or None when none does."""
    best: tuple[tuple[int, int], SendConnectorFacts] | None = None
    for connector in host_connectors(facts):
        match = connector.match(domain)
        if match is not None and (best is None or match > best[0]):
            best = (match, connector)
    return None if best is None else best[1]


def internet_connector(facts: HostFacts) -> SendConnectorFacts | None:
    """The connector of this server with the cheapest ``*`` address space (the first listed
    of equal ones), or None."""
    best: tuple[int, SendConnectorFacts] | None = None
    for connector in host_connectors(facts):
        match = connector.match("*")
        if match is not None and match[0] == 0 and (best is None or match[1] > best[0]):
            best = (match[1], connector)
    return None if best is None else best[1]


def connector_route(connector: SendConnectorFacts, queues: tuple[QueueFacts, ...] = ()) -> Route:
    name = f"send connector {connector.name!r}"
    if not connector.dns_routing_enabled:
        why = (
            f"{connector.name!r} delivers to smart hosts {', '.join(connector.smart_hosts) or '(none)'} "
            "(DNSRoutingEnabled=False): it looks up no recipient domain"
        )
        return Route(name, None, why, connector, queues)
    if connector.frontend_proxy_enabled:
        why = (
            f"{connector.name!r} has FrontendProxyEnabled=True: the Front End Transport service looks up "
            "the recipients with its own DNS settings (Get-FrontendTransportService), which exfix does "
            "not collect"
        )
        return Route(name, None, why, connector, queues)
    if connector.use_external_dns_servers_enabled:
        why = f"send connector {connector.name!r} has UseExternalDNSServersEnabled=True"
        return Route(name, "external", why, connector, queues)
    why = f"send connector {connector.name!r} has UseExternalDNSServersEnabled=False"
    return Route(name, "internal", why, connector, queues)


def external_routes(facts: HostFacts) -> tuple[Route, ...]:
    """The routes of this server's mail to the internet: the internet route first, then the
    connectors that carry its other external queues (one route per connector, with its queues)."""
    by_connector: dict[str, list[QueueFacts]] = {}
    order: list[SendConnectorFacts] = []
    internet = internet_connector(facts)
    if internet is not None:
        order.append(internet)
        by_connector[internet.name] = []
    for queue in facts.queues:
        if queue.scope is not QueueScope.EXTERNAL:
            continue
        domain = normalize_name(queue.next_hop_domain)
        connector = internet if not domain or "*" in domain else connector_for(facts, domain)
        if connector is None:
            continue
        if connector.name not in by_connector:
            order.append(connector)
            by_connector[connector.name] = []
        by_connector[connector.name].append(queue)
    return tuple(connector_route(c, tuple(by_connector[c.name])) for c in order)


def internal_route(facts: HostFacts) -> Route:
    """Next hops inside the organisation: always resolved with the Internal* settings."""
    queues = tuple(q for q in facts.queues if q.scope is QueueScope.INTERNAL)
    why = (
        "next hops inside the organisation (other Exchange servers, delivery to mailboxes) are looked "
        "up with the Internal* settings"
    )
    return Route(INTERNAL_HOPS, "internal", why, None, queues)


def routes_using(facts: HostFacts, side: LookupSide) -> tuple[Route, ...]:
    """Every route of this server whose lookups use ``side``'s settings (internal next hops
    first for the internal side); empty when nothing puts that group on the path."""
    routes = [r for r in external_routes(facts) if r.side == side]
    if side == "internal":
        routes.insert(0, internal_route(facts))
    return tuple(routes)


# What judging a DNS server or setting on the mail path reads (RuleMetadata.reads of every
# rule that asks routes_using / in_use, or _common.server_in_use): transport's settings, the
# NICs (the adapter's servers), the send connectors and the queues whose next hops they route.
READS = (CollectionArea.TRANSPORT, CollectionArea.NICS, CollectionArea.SEND_CONNECTORS, CollectionArea.QUEUES)


def in_use(facts: HostFacts, side: LookupSide) -> bool:
    return bool(routes_using(facts, side))


def route_evidence(route: Route) -> EvidenceItem:
    """What puts a group of settings on the path: the route, the settings it uses and why, and
    this server's queues on it."""
    values: list[tuple[str, DataValue]] = [
        ("settings used", f"{route.prefix}DNS*" if route.side is not None else "none of transport's"),
        ("why", route.why),
    ]
    if route.connector is not None:
        values.append(("AddressSpaces", route.connector.address_spaces))
    values.append(("queues", tuple(q.identity for q in route.queues)))
    failing = tuple(q.identity for q in route.queues if q.failing_dns)
    if failing:
        values.append(("failing queues", failing))
    return EvidenceItem(source="mail path", subject=route.name, values=tuple(values))


def describe(routes: tuple[Route, ...]) -> str:
    """The routes in one phrase: "send connector 'Internet' and internal next hops"."""
    return " and ".join(r.name for r in routes)
