"""Get-SendConnector: where mail leaves the organisation, and whether it uses the transport's
external DNS settings (UseExternalDNSServersEnabled, default $false)."""

from __future__ import annotations

import re

from agent.collect import _values as v
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import SendConnectorFacts
from agent.model.remote import RemoteObject

_COST = re.compile(r";\s*(\d+)\s*$")


def calls() -> tuple[CmdletCall, ...]:
    return (CmdletCall(Endpoint.EXCHANGE, "Get-SendConnector"),)


def _address_spaces(value: object) -> tuple[str, ...]:
    # AddressSpace objects show as "SMTP:*;1"; a bare string list is taken as is.
    return v.texts(value)


def _cost(spaces: tuple[str, ...], value: object) -> int | None:
    explicit = v.integer(value)
    if explicit is not None:
        return explicit
    costs = [int(m.group(1)) for m in (_COST.search(s) for s in spaces) if m]
    return min(costs) if costs else None


def parse_connector(obj: RemoteObject) -> SendConnectorFacts:
    spaces = _address_spaces(obj.get("AddressSpaces"))
    smart_hosts = v.texts(obj.get("SmartHosts"))
    if not smart_hosts:
        smart_hosts = v.texts(obj.get("SmartHostsString"), split=True)
    return SendConnectorFacts(
        name=v.text(obj.get("Name")) or v.text(obj.get("Identity")) or v.text(obj.to_string),
        address_spaces=spaces,
        smart_hosts=smart_hosts,
        dns_routing_enabled=v.boolean(obj.get("DNSRoutingEnabled"), True) is not False,
        use_external_dns_servers_enabled=v.boolean(obj.get("UseExternalDNSServersEnabled"), False) is True,
        source_transport_servers=v.texts(obj.get("SourceTransportServers")),
        enabled=v.boolean(obj.get("Enabled"), True) is not False,
        cost=_cost(spaces, obj.get("Cost")),
        frontend_proxy_enabled=v.boolean(obj.get("FrontendProxyEnabled"), False) is True,
    )


def parse(results: tuple[RemoteObject, ...]) -> tuple[SendConnectorFacts, ...]:
    return tuple(parse_connector(obj) for obj in v.objects(results))
