"""The NICs' DNS client settings, and which NIC is the MAPI/primary one.

Three OS cmdlets, joined by InterfaceIndex:

- Get-DnsClient: RegisterThisConnectionsAddress ("Register this connection's addresses in
  DNS"), UseSuffixWhenRegistering, ConnectionSpecificSuffix;
- Get-DnsClientServerAddress: ServerAddresses per AddressFamily, which comes back as a number
  (2 = IPv4, 23 = IPv6). Real captures repeat addresses; repeats are dropped, order kept;
- Get-NetIPConfiguration: the addresses, default gateways and (again) DNS servers.

They all return CimInstance objects whose type names carry a namespace in varying case
(``CimInstance#ROOT/StandardCimv2/MSFT_DNSClient``, ``#root/StandardCimv2/...``).

The MAPI NIC is the one with the default gateway and the address the server's A record points
to; registration must stay on there (KB3007623). A DAG replication NIC without a gateway may
have registration off; that is correct ("NIC DNS Registration and Exchange Servers",
exchangemaster.wordpress.com: off is fine on iSCSI, replication and backup NICs, never on the
MAPI/primary one), so only the MAPI NIC is judged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agent.collect import _values as v
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import NicFacts, NicSelection, normalize_name
from agent.model.probe import DnsQueryResult, Outcome
from agent.model.remote import RemoteObject

IPV4 = 2
IPV6 = 23
_FAMILY_WORDS = {"ipv4": IPV4, "internetwork": IPV4, "ipv6": IPV6, "internetworkv6": IPV6}
_NO_GATEWAY = frozenset({"", "0.0.0.0", "::"})


def calls() -> tuple[CmdletCall, ...]:
    return (
        CmdletCall(Endpoint.OS, "Get-DnsClient"),
        CmdletCall(Endpoint.OS, "Get-DnsClientServerAddress"),
        CmdletCall(Endpoint.OS, "Get-NetIPConfiguration"),
    )


def address_family(value: object) -> int | None:
    """2 (IPv4) or 23 (IPv6) from a number, a numeric string, or an enum name."""
    number = v.integer(value)
    if number in (IPV4, IPV6):
        return number
    return _FAMILY_WORDS.get(v.text(value).strip().lower())


def _index(obj: RemoteObject) -> int | None:
    for name in ("InterfaceIndex", "ifIndex"):
        number = v.integer(obj.get(name))
        if number is not None:
            return number
    return None


def _alias(obj: RemoteObject) -> str:
    return v.text(obj.get("InterfaceAlias")) or v.text(obj.get("ifAlias"))


def _address(value: Any) -> str:
    """An address from an MSFT_NetIPAddress object, or a string ("10.0.0.21" or "10.0.0.21/24")."""
    if isinstance(value, RemoteObject):
        for name in ("IPAddress", "IPv4Address", "IPv6Address", "Address"):
            found = value.get(name)
            if isinstance(found, str) and found:
                return found
    return v.text(value).split("/", 1)[0].strip()


def _gateways(value: Any) -> tuple[str, ...]:
    """Next hops of the default routes (MSFT_NetRoute objects or plain strings)."""
    out = []
    for item in v.items(value):
        hop = v.text(item.get("NextHop")) if isinstance(item, RemoteObject) else v.text(item)
        hop = hop.strip()
        if hop not in _NO_GATEWAY:
            out.append(hop)
    return v.unique(out)


class _Row:
    """What the three cmdlets said about one InterfaceIndex, before it is frozen."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.alias = ""
        self.register: bool | None = None
        self.use_suffix: bool | None = None
        self.suffix = ""
        self.servers: dict[int, list[str]] = {}
        self.config_servers: dict[int, list[str]] = {}
        self.ipv4: list[str] = []
        self.ipv6: list[str] = []
        self.gw4: tuple[str, ...] = ()
        self.gw6: tuple[str, ...] = ()
        self.description = ""
        self.guid = ""

    def freeze(self) -> NicFacts:
        servers = self.servers or self.config_servers
        return NicFacts(
            interface_index=self.index,
            interface_alias=self.alias,
            register_this_connections_address=self.register,
            use_suffix_when_registering=self.use_suffix,
            connection_specific_suffix=self.suffix,
            ipv4_dns_servers=v.unique(servers.get(IPV4, ())),
            ipv6_dns_servers=v.unique(servers.get(IPV6, ())),
            ipv4_addresses=v.unique(self.ipv4),
            ipv6_addresses=v.unique(self.ipv6),
            ipv4_default_gateways=self.gw4,
            ipv6_default_gateways=self.gw6,
            interface_description=self.description,
            interface_guid=self.guid,
        )


def _add_server_rows(row: _Row, obj: RemoteObject, into: dict[int, list[str]]) -> None:
    family = address_family(obj.get("AddressFamily"))
    addresses = v.texts(obj.get("ServerAddresses"), split=True)
    if family is None:
        # No family given: sort the addresses by their form.
        for address in addresses:
            into.setdefault(IPV6 if ":" in address else IPV4, []).extend([address])
    else:
        into.setdefault(family, []).extend(addresses)


def parse(
    dns_clients: Iterable[Any], server_addresses: Iterable[Any], ip_configurations: Iterable[Any]
) -> tuple[NicFacts, ...]:
    """The NICs, joined by InterfaceIndex and ordered by it. Objects without an index are skipped."""
    rows: dict[int, _Row] = {}

    def row_for(obj: RemoteObject) -> _Row | None:
        index = _index(obj)
        if index is None:
            return None
        row = rows.setdefault(index, _Row(index))
        row.alias = row.alias or _alias(obj)
        return row

    for obj in v.objects(dns_clients):
        row = row_for(obj)
        if row is None:
            continue
        row.register = v.boolean(obj.get("RegisterThisConnectionsAddress"))
        row.use_suffix = v.boolean(obj.get("UseSuffixWhenRegistering"))
        row.suffix = v.text(obj.get("ConnectionSpecificSuffix"))

    for obj in v.objects(server_addresses):
        row = row_for(obj)
        if row is not None:
            _add_server_rows(row, obj, row.servers)

    for obj in v.objects(ip_configurations):
        row = row_for(obj)
        if row is None:
            continue
        row.ipv4.extend(a for a in (_address(x) for x in v.items(obj.get("IPv4Address"))) if a)
        row.ipv6.extend(a for a in (_address(x) for x in v.items(obj.get("IPv6Address"))) if a)
        row.gw4 = v.unique(row.gw4 + _gateways(obj.get("IPv4DefaultGateway")))
        row.gw6 = v.unique(row.gw6 + _gateways(obj.get("IPv6DefaultGateway")))
        row.description = row.description or v.text(obj.get("InterfaceDescription"))
        adapter = obj.get("NetAdapter")
        if isinstance(adapter, RemoteObject):
            row.guid = row.guid or v.text(adapter.get("InterfaceGuid")).strip("{}").lower()
        for server_obj in v.objects(v.items(obj.get("DNSServer"))):
            _add_server_rows(row, server_obj, row.config_servers)

    return tuple(rows[index].freeze() for index in sorted(rows))


def fqdn_addresses(probes: Iterable[DnsQueryResult], fqdn: str) -> tuple[str, ...]:
    """The IPv4 addresses the host's FQDN resolved to in the probes (A answers), in order."""
    wanted = normalize_name(fqdn)
    out: list[str] = []
    for probe in probes:
        if (
            probe.outcome is Outcome.ANSWER
            and probe.rdtype.upper() == "A"
            and normalize_name(probe.qname) == wanted
        ):
            out.extend(probe.records)
    return v.unique(out)


def _join(values: Iterable[str]) -> str:
    return ", ".join(values)


def choose_mapi_nic(nics: tuple[NicFacts, ...], fqdn: str, resolved: tuple[str, ...] = ()) -> NicSelection:
    """The MAPI/primary NIC: the one with the default gateway that holds the address ``fqdn``
    resolves to (``resolved``, when known). The reason says which evidence decided.

    When the two disagree, the default gateway decides. The A record is what the NICs that
    register themselves in DNS put there, and registration is the very setting exfix judges:
    with registration off on the MAPI NIC and on for a backup NIC, the name points at the
    backup network. The gateway is the network design's: the MAPI network is the one with the
    default gateway, a DAG replication, backup or iSCSI network has none (EXCHANGE_FACTS;
    "NIC DNS Registration and Exchange Servers", exchangemaster.wordpress.com)."""
    with_gateway = [n for n in nics if n.default_gateways]
    holders = [n for n in nics if set(n.addresses) & set(resolved)]

    def held(nic: NicFacts) -> str:
        return _join(a for a in nic.addresses if a in resolved)

    both = [n for n in holders if n.default_gateways]
    if len(both) == 1:
        nic = both[0]
        return NicSelection(
            nic.interface_index,
            f"it has the default gateway {_join(nic.default_gateways)} and holds {held(nic)}, "
            f"the address {fqdn} resolves to",
            resolved,
        )
    if len(with_gateway) == 1 and not both:
        nic = with_gateway[0]
        if not resolved:
            why = f"the address {fqdn} resolves to is not known"
        elif holders:
            where = "; ".join(f"{held(n)} on {n.label}" for n in holders)
            why = (
                f"{fqdn} resolves to {where}, which has no default gateway: the A record follows the NICs "
                "that register in DNS, the gateway follows the network design"
            )
        else:
            why = f"no NIC holds {_join(resolved)}, what {fqdn} resolves to"
        return NicSelection(
            nic.interface_index,
            f"it is the only NIC with a default gateway ({_join(nic.default_gateways)}); {why}",
            resolved,
        )
    if len(holders) == 1 and not with_gateway:
        nic = holders[0]
        return NicSelection(
            nic.interface_index,
            f"it holds {held(nic)}, the address {fqdn} resolves to; no NIC has a default gateway",
            resolved,
        )
    addressed = [n for n in nics if n.ipv4_addresses]
    if not with_gateway and len(addressed) == 1:
        nic = addressed[0]
        return NicSelection(
            nic.interface_index,
            "it is the only NIC with an IPv4 address and no NIC has a default gateway",
            resolved,
        )
    if len(nics) == 1:
        return NicSelection(nics[0].interface_index, "it is the host's only NIC", resolved)
    if not nics:
        return NicSelection(None, "no NIC was reported", resolved)
    candidates = both or with_gateway or holders or list(nics)
    return NicSelection(
        None,
        "ambiguous: "
        + _join(n.label for n in candidates)
        + " could each be the MAPI NIC (default gateway / A-record address do not single one out)",
        resolved,
    )
