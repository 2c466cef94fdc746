"""The one definition of a configured DNS server (agent/model/dns_servers.py), on plain data and
on the real Exchange 2016 capture in ../shared/fixtures (read in place; skipped without it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from agent.collect import nics
from agent.model import dns_servers
from agent.transport.clixml import read_clixml_file
from support.facts_builders import mapi_nic

PLACEHOLDERS = ("fec0:0:0:ffff::1", "fec0:0:0:ffff::2", "fec0:0:0:ffff::3")


@pytest.mark.parametrize(
    "shown",
    [
        "fec0:0:0:ffff::1",
        "fec0:0:0:ffff::2",
        "fec0:0:0:ffff::3",
        "FEC0:0000:0000:FFFF:0000:0000:0000:0001",  # any spelling
        "fec0:0:0:ffff::1%1",  # as ipconfig and .NET show them, with the loopback's zone index
        " fec0:0:0:ffff::3 ",
    ],
)
def test_windows_placeholders_are_no_servers(shown: str) -> None:
    assert dns_servers.is_windows_placeholder(shown)
    assert dns_servers.not_a_server(shown) == dns_servers.PLACEHOLDER
    assert dns_servers.configured([shown]) == ()


@pytest.mark.parametrize(
    "server",
    ["fec0:0:0:ffff::4", "fec0::1", "fd00:10::10", "2001:4860:4860::8888", "fe80::1%12", "10.0.0.10"],
)
def test_neighbours_of_the_placeholders_are_servers(server: str) -> None:
    # Only the three well-known addresses are Windows' own: another site-local or a
    # link-local address is something someone (or a router advertisement) configured.
    assert not dns_servers.is_windows_placeholder(server)
    assert dns_servers.configured([server]) == (server,)


def test_empty_entries_and_the_unspecified_address_are_no_servers() -> None:
    listed = ["", "   ", "0.0.0.0", "::", "10.0.0.10"]
    assert dns_servers.configured(listed) == ("10.0.0.10",)
    assert dns_servers.set_aside(listed) == (
        ("", dns_servers.EMPTY),
        ("   ", dns_servers.EMPTY),
        ("0.0.0.0", dns_servers.UNSPECIFIED),
        ("::", dns_servers.UNSPECIFIED),
    )


def test_repeats_count_once_at_their_first_place_in_any_spelling() -> None:
    listed = ["10.0.0.10", "10.0.0.11", "10.0.0.10 ", "FD00:10::10", "fd00:10:0::10"]
    assert dns_servers.configured(listed) == ("10.0.0.10", "10.0.0.11", "fd00:10::10")
    assert [why for _, why in dns_servers.set_aside(listed)] == [dns_servers.REPEAT, dns_servers.REPEAT]


def test_text_that_is_no_address_is_kept_as_someone_typed_it() -> None:
    # The probes report that they cannot ask it; hiding it would hide a configuration error.
    assert dns_servers.configured(["dns01.contoso.local", "10.0.0.10"]) == (
        "dns01.contoso.local",
        "10.0.0.10",
    )


def test_nic_facts_judge_the_configured_servers_and_keep_what_windows_listed() -> None:
    nic = mapi_nic(ipv4_dns_servers=("10.0.0.10", "10.0.0.10"), ipv6_dns_servers=PLACEHOLDERS)
    assert nic.listed_dns_servers == ("10.0.0.10", "10.0.0.10", *PLACEHOLDERS)
    assert nic.dns_servers == ("10.0.0.10",)
    assert [a for a, _ in nic.not_dns_servers] == ["10.0.0.10", *PLACEHOLDERS]


def test_a_configured_ipv6_server_is_a_server_after_the_ipv4_ones() -> None:
    nic = mapi_nic(ipv4_dns_servers=("10.0.0.10",), ipv6_dns_servers=("fd00:10::10",))
    assert nic.dns_servers == ("10.0.0.10", "fd00:10::10")


# --- the real capture -------------------------------------------------------------------------


@pytest.fixture
def e16_ip_configuration(fixtures_dir: Path) -> Path:
    path = fixtures_dir / "real-clixml" / "E16" / "OS" / "GetNetIPConfiguration.xml"
    if not path.is_file():
        pytest.skip(f"the Exchange 2016 Get-NetIPConfiguration capture is not at {path}")
    return path


def test_e16_capture_ipv6_row_is_empty_and_the_ipv4_server_is_the_only_one(
    e16_ip_configuration: Path,
) -> None:
    (config,) = read_clixml_file(e16_ip_configuration)
    rows = config.get("DNSServer")
    families = {
        nics.address_family(r.get("AddressFamily")): tuple(r.get("ServerAddresses") or ()) for r in rows
    }
    # What SOLO-E16A showed: an IPv6 row with no address at all, and the AD DNS server.
    assert families == {nics.IPV6: (), nics.IPV4: ("192.168.5.10",)}
    (nic,) = nics.parse((), rows + rows, (config,))  # captures repeat rows: read twice
    assert nic.listed_dns_servers == ("192.168.5.10",)
    assert nic.dns_servers == ("192.168.5.10",)


def test_e16_capture_with_windows_placeholders_on_its_ipv6_row(e16_ip_configuration: Path) -> None:
    """The same real objects, with the IPv6 row as an adapter without IPv6 DNS usually shows it
    (the fec0 trio): the configured servers do not change."""
    (config,) = read_clixml_file(e16_ip_configuration)
    rows = config.get("DNSServer")
    ipv6_row = next(r for r in rows if nics.address_family(r.get("AddressFamily")) == nics.IPV6)
    shown = dataclasses.replace(ipv6_row, properties={**ipv6_row.properties, "ServerAddresses": PLACEHOLDERS})
    (nic,) = nics.parse((), (shown, *rows), (config,))
    assert nic.ipv6_dns_servers == PLACEHOLDERS
    assert nic.dns_servers == ("192.168.5.10",)
