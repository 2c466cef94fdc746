"""Get-TransportService (15.x) / Get-TransportServer (14.x): the transport's DNS lookup settings.

ExternalDNSAdapterEnabled $true (the default) makes transport use the NIC's DNS servers and
ignore ExternalDNSServers; the Internal* settings mirror these for internal lookups
(learn.microsoft.com: Set-TransportService).
"""

from __future__ import annotations

from agent.collect import _values as v
from agent.errors import UnusableOutputError
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import ZERO_GUID, DnsLookupSettings, TransportDnsFacts, TransportNoun
from agent.model.remote import RemoteObject


def calls(noun: TransportNoun, identity: str) -> tuple[CmdletCall, ...]:
    """Get-TransportService or Get-TransportServer for the host (by name or FQDN)."""
    return (CmdletCall(Endpoint.EXCHANGE, f"Get-{noun.value}", (("Identity", identity),)),)


def _side(obj: RemoteObject, prefix: str) -> DnsLookupSettings:
    adapter = v.boolean(obj.get(f"{prefix}DNSAdapterEnabled"))
    guid = v.text(obj.get(f"{prefix}DNSAdapterGuid")).strip().strip("{}").lower() or ZERO_GUID
    return DnsLookupSettings(
        # Absent means the default: use the adapter's servers.
        adapter_enabled=True if adapter is None else adapter,
        servers=v.unique(v.texts(obj.get(f"{prefix}DNSServers"), split=True)),
        adapter_guid=guid,
        protocol_option=v.text(obj.get(f"{prefix}DNSProtocolOption")) or "Any",
    )


def parse(
    results: tuple[RemoteObject, ...], *, host: str, cmdlet: str = "Get-TransportService"
) -> TransportDnsFacts:
    """The DNS settings of the (single) transport server object ``cmdlet`` returned.
    UnusableOutputError when none came back."""
    objs = v.objects(results)
    if not objs:
        raise UnusableOutputError(host, cmdlet, "no transport server object came back")
    obj = objs[0]
    return TransportDnsFacts(external=_side(obj, "External"), internal=_side(obj, "Internal"))
