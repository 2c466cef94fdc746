"""What "a configured DNS server" is: the one definition every rule, the probes and the
planners use.

Get-DnsClientServerAddress (and the DNSServer objects inside Get-NetIPConfiguration, which are
the same MSFT_DNSClientServerAddress instances) lists, per interface and address family, what
the DNS client would use. Some of what it lists is not a setting anyone made:

- **fec0:0:0:ffff::1, fec0:0:0:ffff::2, fec0:0:0:ffff::3** on the IPv6 row of every interface
  whose IPv6 stack has no DNS server configured: the Ethernet adapter of a server with IPv4
  DNS only, the "Loopback Pseudo-Interface 1", disconnected and virtual adapters. They are the
  well-known site-local addresses of "IPv6 Stateless DNS Discovery"
  (draft-ietf-ipv6-dns-discovery, Durand, Hagino and Thaler of Microsoft): with nothing
  configured, Windows' resolver sends its queries there ("Weird DNS Stuff on Windows",
  barncover.blogspot.com, 2012-11-16, from a network capture). Site-local addresses were
  deprecated by RFC 3879 and no DNS server answers there on an ordinary network, so resolvers
  that read Windows' settings skip them (c-ares ``ares_init.c``: "Windows apparently always
  reports some IPv6 DNS servers that prefixed with fec0:0:0:ffff"). They are not in the
  registry's ``NameServer`` values, which is what ansible.windows' win_dns_client reads
  instead of Get-DnsClientServerAddress. ipconfig and .NET show them with a zone index
  (``fec0:0:0:ffff::1%1``).
- **Empty rows**: the IPv4 row of the loopback and tunnel pseudo-interfaces, and the IPv6 row
  of an adapter with no placeholder (the Exchange 2016 capture in ../shared/fixtures,
  Get-NetIPConfiguration of SOLO-E16A: AddressFamily 23, ``ServerAddresses`` an empty list).
  An empty string inside a list is no server either.
- **The unspecified address** (``0.0.0.0``, ``::``): it names no host (RFC 4291 2.5.2,
  RFC 1122 3.2.1.3); c-ares skips ``::`` for the same reason.
- **Repeats**: real captures repeat addresses and whole rows (EXCHANGE_FACTS: "Real captures
  show duplicate addresses"); a server is configured once, at its first position.

Everything else a host lists is a configured server, in the order listed, IPv4 rows first as
NicFacts keeps them. Text that is not an IP address at all is kept as it was shown: it is
something someone typed, and the probes report that they cannot ask it. Addresses are
written in canonical form (``str(ipaddress.ip_address(...))``: lower case, compressed), the
form Windows shows them in and the form the probes key their results by.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

# Windows' placeholders (see the module docstring), as ipaddress values: compared without the
# zone index, whatever the spelling.
WINDOWS_IPV6_PLACEHOLDERS: tuple[str, ...] = ("fec0:0:0:ffff::1", "fec0:0:0:ffff::2", "fec0:0:0:ffff::3")
_PLACEHOLDERS = frozenset(ipaddress.IPv6Address(a) for a in WINDOWS_IPV6_PLACEHOLDERS)

PLACEHOLDER = "Windows' IPv6 placeholder (fec0:0:0:ffff::1-3: no IPv6 DNS server is configured)"
EMPTY = "empty entry"
UNSPECIFIED = "the unspecified address names no server"
REPEAT = "listed again"


_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


# Every host lists the same few servers, and each is classified several times a scan: the
# parsed values (immutable) are kept rather than parsed in Python again.
@functools.lru_cache(maxsize=4096)
def _ip(text: str) -> _Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _without_zone(ip: _Address) -> _Address:
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        return ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    return ip


def is_windows_placeholder(address: str) -> bool:
    """fec0:0:0:ffff::1, ::2 or ::3, in any spelling, with or without a zone index."""
    ip = _ip(str(address).strip())
    return ip is not None and _without_zone(ip) in _PLACEHOLDERS


def not_a_server(address: str) -> str | None:
    """Why one listed entry is not a configured DNS server (a short phrase), or None when it is
    one. Repeats are a property of the list: see :func:`classify`."""
    text = str(address).strip()
    if not text:
        return EMPTY
    ip = _ip(text)
    if ip is None:
        return None
    bare = _without_zone(ip)
    if bare in _PLACEHOLDERS:
        return PLACEHOLDER
    if bare.is_unspecified:
        return UNSPECIFIED
    return None


def canonical(address: str) -> str:
    """The form a configured server is written in: canonical IP text, or the stripped text of
    something that is not an address."""
    text = str(address).strip()
    ip = _ip(text)
    return str(ip) if ip is not None else text


def classify(addresses: Iterable[str]) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """(the configured servers in order, canonical and each once; the entries set aside, as
    shown, each with why)."""
    configured: list[str] = []
    aside: list[tuple[str, str]] = []
    for address in addresses:
        why = not_a_server(address)
        if why is not None:
            aside.append((str(address), why))
            continue
        server = canonical(address)
        if server in configured:
            aside.append((str(address), REPEAT))
            continue
        configured.append(server)
    return tuple(configured), tuple(aside)


def configured(addresses: Iterable[str]) -> tuple[str, ...]:
    """The configured DNS servers among ``addresses``, as the module docstring defines them:
    order kept, canonical form, each once."""
    return classify(addresses)[0]


def set_aside(addresses: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """The entries of ``addresses`` that are not configured servers, as shown, with why."""
    return classify(addresses)[1]
