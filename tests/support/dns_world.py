"""The DNS world the DNS tests share, as the ``organization`` and ``dns`` sections of a lab
scenario (the format of mock_remoting/README.md).

One AD domain (contoso.local, two domain controllers), one DNS server of every kind the lab
emulates, and internet zones for each way a remote domain's mail DNS can look: MX records
with two preferences, a zone whose DNS ignores AAAA queries, a domain with an A record and no
MX (RFC 5321 5.1: the A record is the implicit MX) and a zone with no mail records at all.

The lab's world model (tests/lab/dns/test_world.py), its DNS responders on loopback
(tests/lab/dns/test_responder.py) and exfix's DNS probe (tests/collect/test_dns_probe.py)
all read this one world, so a record one of them relies on is the record the others see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from mock_remoting.dns.world import DnsWorld

_WORLD = """
organization:
  ad_domain: contoso.local
  ad_site: Default-First-Site-Name
  domain_controllers:
    - {name: dc01.contoso.local, address: 10.0.0.10}
    - {name: dc02.contoso.local, address: 10.0.0.11}
dns:
  servers:
    10.0.0.10: {kind: internal, forward: true}
    10.0.0.11: {kind: internal, forward: false}
    8.8.8.8: {kind: public}
    10.0.0.99: {kind: unreachable}
    192.0.2.1: {kind: servfail}
    198.51.100.53: {kind: ignore-aaaa}
  internal_records:
    owa.contoso.local: [10.0.0.30]
  internet:
    fabrikam.com:
      mx: [{preference: 20, host: mx2.fabrikam.com}, {preference: 10, host: mx1.fabrikam.com}]
      a: {mx1.fabrikam.com: [203.0.113.10], mx2.fabrikam.com: [203.0.113.11]}
      aaaa: {mx1.fabrikam.com: ["2001:db8::10"]}
    tailspin.example:
      mx: [{preference: 10, host: mail.tailspin.example}]
      a: {mail.tailspin.example: [203.0.113.20]}
      aaaa: {mail.tailspin.example: ["2001:db8::20"]}
      ignore_aaaa: true
    webonly.example:
      a: {webonly.example: [203.0.113.30]}
    nomail.example: {}
"""


def dns_scenario(*, a_records: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """A fresh copy of the shared world (callers may change it freely).

    ``a_records`` adds A records, each to the zone its name belongs to: the AD domain's
    internal records or an internet zone's ``a`` table. Tests that need an answer too large
    for one UDP reply add it here, so that its size stays beside the assertions that count it.
    Raises ValueError for a name in no zone of the world.
    """
    scenario: dict[str, Any] = yaml.safe_load(_WORLD)
    for name, addresses in (a_records or {}).items():
        _a_table(scenario, name)[name] = list(addresses)
    return scenario


def dns_world(scenario: Mapping[str, Any] | None = None, *, source: str = "test.yaml") -> DnsWorld:
    """The lab's :class:`DnsWorld` for ``scenario`` (by default the shared world as it is);
    ``source`` is the file name its validation errors give."""
    if scenario is None:
        scenario = dns_scenario()
    return DnsWorld.from_scenario(scenario["dns"], scenario["organization"], source=source)


def _a_table(scenario: dict[str, Any], name: str) -> dict[str, list[str]]:
    dns = scenario["dns"]
    if _within(name, scenario["organization"]["ad_domain"]):
        table: dict[str, list[str]] = dns["internal_records"]
        return table
    for zone, records in dns["internet"].items():
        if _within(name, zone):
            zone_table: dict[str, list[str]] = records.setdefault("a", {})
            return zone_table
    raise ValueError(f"{name!r} is in no zone of the shared DNS world")


def _within(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)
