"""Host-side Resolve-DnsName: real DNS queries to the lab responders over loopback (dnspython).

The host knows DNS servers by their scenario addresses ("10.0.0.10"); the address map turns
each into the loopback ``host:port`` of its responder. An address with no responder has no
server behind it, so the query times out without any packet leaving (the network guard would
refuse anything but 127.0.0.0/8 anyway).

The timeout is 2 seconds per query: long enough for a loaded test machine, short enough that a
scenario with an unreachable server does not stall a scan (Windows' resolver waits about 1 s
per attempt and retries a few times; the lab needs only the outcome).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from mock_remoting.dns.world import DnsRecord

QUERY_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class ClientAnswer:
    """``status``: NOERROR, NXDOMAIN, SERVFAIL, REFUSED, TIMEOUT or ERROR."""

    status: str
    records: tuple[DnsRecord, ...] = ()


def _canonical(server: str) -> str:
    try:
        return str(ipaddress.ip_address(server.strip()))
    except ValueError:
        return server


def split_endpoint(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


def query(
    address_map: Mapping[str, str], server: str, qname: str, rdtype: str, timeout: float = QUERY_TIMEOUT
) -> ClientAnswer:
    """Ask ``server`` (a scenario address, IPv4 or IPv6 in any spelling) for ``qname``/``rdtype``;
    UDP, then TCP if truncated."""
    endpoint = address_map.get(server) or address_map.get(_canonical(server))
    if endpoint is None:
        return ClientAnswer("TIMEOUT")
    host, port = split_endpoint(endpoint)
    try:
        wire_type = dns.rdatatype.from_text(rdtype)
        request = dns.message.make_query(qname, wire_type, use_edns=0)
        response = dns.query.udp(request, host, port=port, timeout=timeout, ignore_unexpected=True)
        if response.flags & dns.flags.TC:
            response = dns.query.tcp(request, host, port=port, timeout=timeout)
    except dns.exception.Timeout:
        return ClientAnswer("TIMEOUT")
    except (OSError, dns.exception.DNSException, ValueError):
        return ClientAnswer("ERROR")
    except TimeoutError:  # pragma: no cover - older Pythons raise this separately
        return ClientAnswer("TIMEOUT")
    status = dns.rcode.to_text(response.rcode())
    records: list[DnsRecord] = []
    for rrset in response.answer:
        for rdata in rrset:
            records.append(
                DnsRecord(
                    rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rrset.ttl, rdata.to_text()
                )
            )
    return ClientAnswer(status, tuple(records))
