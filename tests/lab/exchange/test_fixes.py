"""The mail-flow model, in process: each failure scenario shows its documented LastError,
Retry-Queue alone changes nothing, and the documented fix applied with the emulation's own
cmdlets drains the queues with every message accounted for."""

from __future__ import annotations

import pytest

from lab.exchange._exchange_support import EX, OS, invoke, make_fleet, ok, prop, retry_all, snapshot
from mock_remoting.exchange import Fleet

DNS_FAILED = "451 4.4.0 DNS query failed. The error was: "
ERROR_RETRY = DNS_FAILED + "DNS query failed with error ErrorRetry"
NON_EXISTENT = DNS_FAILED + "SMTPSEND.DNS.NonExistentDomain; nonexistent domain"
SERVER_FAILURE = DNS_FAILED + "DNS query failed with error ServerFailure"
TIMEOUT = DNS_FAILED + "DNS query failed with error ErrorTimeout"
LRT = "[{LRT=1/15/2025 10:00:00 AM};{LED="


def structured(plain: str, fqdn: str) -> str:
    return f"{LRT}{plain}}};{{FQDN={fqdn}}};{{IP=}}]"


def assert_retry_changes_nothing(fleet: Fleet) -> None:
    before = snapshot(fleet)
    for host in fleet.hosts:
        retry_all(host)
    after = snapshot(fleet)
    # Nothing but the retry bookkeeping moves: same status, counts and errors.
    assert [(i, s, q, d, e) for i, s, q, d, e, _ in after] == [(i, s, q, d, e) for i, s, q, d, e, _ in before]


def assert_drained(fleet: Fleet, totals: tuple[int, int]) -> None:
    queued, delivered = fleet.totals()
    assert queued == 0
    assert queued + delivered == sum(totals)
    for host in fleet.hosts:
        for view in host.queues:
            assert view.status == "Ready" and view.queued == 0 and view.last_error is None, view


def test_nic_registration_disabled_fails_every_queue_and_registration_fixes_it() -> None:
    fleet = make_fleet("nic-registration-disabled")
    host = fleet.host("EX01")
    assert {v.status for v in host.queues} == {"Retry"}
    assert host.queue("fabrikam.com").last_error == structured(ERROR_RETRY, "fabrikam.com")
    assert host.queue("dag01").last_error == structured(ERROR_RETRY, "ex02.contoso.local")
    totals = fleet.totals()
    assert totals == (29, 0)
    assert_retry_changes_nothing(fleet)

    # Turning the setting on is not enough: the A record appears only when the client registers.
    ok(host, OS, "Set-DnsClient", ("InterfaceIndex", 4), ("RegisterThisConnectionsAddress", True))
    assert_retry_changes_nothing(fleet)
    ok(host, OS, "Register-DnsClient")
    assert fleet.world.is_registered("ex01.contoso.local")
    retry_all(host)
    assert_drained(fleet, totals)


def test_nic_external_dns_needs_the_nic_change_and_a_transport_restart() -> None:
    fleet = make_fleet("nic-external-dns")
    host = fleet.host("EX01")
    assert host.queue("fabrikam.com").status == "Ready"
    assert host.queue("fabrikam.com").delivered == 8
    internal = host.queue("site:default-first-site-name; version:15")
    assert internal.status == "Retry"
    assert internal.last_error == structured(NON_EXISTENT, "ex02.contoso.local")
    assert host.queue("branch-site").last_error == structured(NON_EXISTENT, "ex03.contoso.local")
    totals = fleet.totals()
    assert_retry_changes_nothing(fleet)

    ok(host, OS, "Set-DnsClientServerAddress", ("InterfaceIndex", 4), ("ServerAddresses", "10.0.0.10"))
    # Transport still uses the servers it read at start.
    assert_retry_changes_nothing(fleet)
    ok(host, OS, "Restart-Service", ("Name", "MSExchangeTransport"))
    retry_all(host)
    assert_drained(fleet, totals)
    assert host.state.transport_starts == 2


def test_transport_external_dns_unresolvable_needs_both_settings_and_a_restart() -> None:
    fleet = make_fleet("transport-external-dns-unresolvable")
    host = fleet.host("EX01")
    assert host.queue("fabrikam.com").last_error == structured(SERVER_FAILURE, "fabrikam.com")
    assert host.queue("tailspintoys.com").status == "Retry"
    assert host.queue("site:default-first-site-name; version:15").status == "Ready"
    totals = fleet.totals()
    assert_retry_changes_nothing(fleet)

    ok(
        host,
        EX,
        "Set-TransportService",
        ("Identity", "EX01"),
        ("ExternalDNSServers", "8.8.8.8"),
        ("ExternalDNSAdapterEnabled", False),
    )
    ok(host, OS, "Restart-Service", ("Name", "MSExchangeTransport"))
    # The connector still uses the internal (adapter) settings: half a fix changes nothing.
    assert host.queue("fabrikam.com").status == "Retry"
    ok(host, EX, "Set-SendConnector", ("Identity", "Internet"), ("UseExternalDNSServersEnabled", True))
    retry_all(host)
    assert_drained(fleet, totals)


def test_connector_change_alone_is_not_enough_either() -> None:
    fleet = make_fleet("transport-external-dns-unresolvable")
    host = fleet.host("EX01")
    ok(host, EX, "Set-SendConnector", ("Identity", "Internet"), ("UseExternalDNSServersEnabled", True))
    ok(host, OS, "Restart-Service", ("Name", "MSExchangeTransport"))
    assert host.queue("fabrikam.com").status == "Retry"  # external settings still mean "the adapter"


def test_remote_domain_aaaa_broken_is_cured_by_a_smart_host_connector() -> None:
    fleet = make_fleet("remote-domain-aaaa-broken")
    host = fleet.host("EX01")
    assert host.queue("wingtiptoys.com").last_error == structured(SERVER_FAILURE, "wingtiptoys.com")
    assert host.queue("fabrikam.com").status == "Ready"
    assert host.queue("tailspintoys.com").status == "Ready"
    totals = fleet.totals()
    assert_retry_changes_nothing(fleet)

    out = ok(
        host,
        EX,
        "New-SendConnector",
        ("Name", "wingtiptoys.com smart host"),
        ("AddressSpaces", "SMTP:wingtiptoys.com;1"),
        ("SmartHosts", "198.51.100.25"),
        ("DNSRoutingEnabled", False),
        ("SmartHostAuthMechanism", "None"),
        ("SourceTransportServers", "EX01"),
        ("Usage", "Custom"),
    )
    assert len(out) == 1
    view = host.queue("wingtiptoys.com")
    assert view.status == "Retry"  # a new connector changes routing, not the queue, until a retry
    ok(host, EX, "Retry-Queue", ("Identity", view.identity))
    assert host.queue("wingtiptoys.com").delivery_type == "SmartHostConnectorDelivery"
    assert_drained(fleet, totals)


def test_a_smart_host_that_is_no_mail_server_does_not_deliver() -> None:
    fleet = make_fleet("remote-domain-aaaa-broken")
    host = fleet.host("EX01")
    ok(
        host,
        EX,
        "New-SendConnector",
        ("Name", "wrong"),
        ("AddressSpaces", "wingtiptoys.com"),
        ("SmartHosts", "192.0.2.200"),
        ("DNSRoutingEnabled", False),
    )
    ok(host, EX, "Retry-Queue", ("Identity", "EX01\\wingtiptoys.com"))
    view = host.queue("wingtiptoys.com")
    assert view.status == "Retry" and view.queued == 13
    assert "Primary target IP address responded with" in (view.last_error or "")


def test_dns_server_unreachable_times_out_until_the_server_is_replaced() -> None:
    fleet = make_fleet("dns-server-unreachable")
    host = fleet.host("EX01")
    assert host.queue("fabrikam.com").last_error == structured(TIMEOUT, "fabrikam.com")
    assert host.queue("site:default-first-site-name; version:15").last_error == structured(
        TIMEOUT, "ex02.contoso.local"
    )
    totals = fleet.totals()
    assert_retry_changes_nothing(fleet)
    ok(
        host,
        OS,
        "Set-DnsClientServerAddress",
        ("InterfaceAlias", "Ethernet"),
        ("ServerAddresses", ["10.0.0.10"]),
    )
    ok(host, OS, "Restart-Service", ("Name", "MSExchangeTransport"))
    retry_all(host)
    assert_drained(fleet, totals)


def test_dns_fault_tolerance_normal_cannot_be_fixed_by_cmdlets() -> None:
    fleet = make_fleet("dns-fault-tolerance-normal")
    host = fleet.host("EX01")
    assert host.queue("adventure-works.com").last_error == structured(ERROR_RETRY, "adventure-works.com")
    assert host.queue("fabrikam.com").status == "Ready"
    assert_retry_changes_nothing(fleet)
    ok(host, OS, "Restart-Service", ("Name", "MSExchangeTransport"))
    assert host.queue("adventure-works.com").status == "Retry"
    # The file edit (what exfix's fix does on disk), then the restart that reads it.
    host.state.dns_fault_tolerance = "Lenient"
    assert_retry_changes_nothing(fleet)  # not read until transport restarts
    ok(host, OS, "Restart-Service", ("Name", "MSExchangeTransport"))
    assert host.queue("adventure-works.com").status == "Ready"
    assert host.queue("adventure-works.com").delivered == 16


def test_exchange_2010_fix_path_uses_set_transportserver_and_plain_lasterror() -> None:
    fleet = make_fleet("exchange-2010")
    host = fleet.host("EX2010")
    assert host.queue("fabrikam.com").last_error == SERVER_FAILURE
    totals = fleet.totals()
    assert_retry_changes_nothing(fleet)
    ok(
        host,
        EX,
        "Set-TransportServer",
        ("Identity", "EX2010"),
        ("ExternalDNSServers", ["8.8.8.8"]),
        ("ExternalDNSAdapterEnabled", False),
    )
    ok(host, EX, "Set-SendConnector", ("Identity", "Internet Mail"), ("UseExternalDNSServersEnabled", True))
    ok(host, OS, "Restart-Service", ("Name", "MSExchangeTransport"))
    assert_drained(fleet, totals)


def test_mixed_fleet_faults_are_per_host_and_fixes_do_not_interfere() -> None:
    fleet = make_fleet("mixed-fleet")
    totals = fleet.totals()
    assert {v.status for v in fleet.host("EX01").queues} == {"Ready"}
    assert {v.last_error for v in fleet.host("EX02").queues} == {
        structured(ERROR_RETRY, "tailspintoys.com"),
        structured(ERROR_RETRY, "ex01.contoso.local"),
    }
    assert fleet.host("EX03").queue("fabrikam.com").status == "Ready"
    assert fleet.host("EX04").queue("site:default-first-site-name; version:15").status == "Ready"
    assert fleet.host("EX05").queue("fabrikam.com").status == "Ready"

    ex02, ex03, ex04, ex05 = (fleet.host(n) for n in ("EX02", "EX03", "EX04", "EX05"))
    ok(ex02, OS, "Set-DnsClient", ("InterfaceIndex", 4), ("RegisterThisConnectionsAddress", True))
    ok(ex02, OS, "Register-DnsClient")
    ok(ex03, OS, "Set-DnsClientServerAddress", ("InterfaceIndex", 4), ("ServerAddresses", "10.0.0.10"))
    ok(ex03, OS, "Restart-Service", ("Name", "MSExchangeTransport"))
    ok(
        ex04,
        EX,
        "Set-TransportService",
        ("Identity", "EX04"),
        ("ExternalDNSServers", {"Add": "8.8.8.8"}),
        ("ExternalDNSAdapterEnabled", False),
    )
    ok(ex04, EX, "Set-SendConnector", ("Identity", "Internet"), ("UseExternalDNSServersEnabled", True))
    ok(ex04, OS, "Restart-Service", ("Name", "MSExchangeTransport"))
    ok(
        ex05,
        EX,
        "New-SendConnector",
        ("Name", "wingtiptoys.com smart host"),
        ("AddressSpaces", "SMTP:wingtiptoys.com;1"),
        ("SmartHosts", "198.51.100.25"),
        ("DNSRoutingEnabled", False),
        ("SourceTransportServers", "EX05"),
        ("Custom", True),
    )
    for host in fleet.hosts:
        retry_all(host)
    assert_drained(fleet, totals)


@pytest.mark.parametrize("name", ["healthy", "mixed-fleet", "nic-external-dns"])
def test_whole_fleet_retry_without_fix_conserves_messages(name: str) -> None:
    fleet = make_fleet(name)
    totals = fleet.totals()
    for host in fleet.hosts:
        retry_all(host)
        ok(host, OS, "Restart-Service", ("Name", "MSExchangeTransport"))
    assert sum(fleet.totals()) == sum(totals)


def test_pipeline_get_queue_into_retry_queue() -> None:
    fleet = make_fleet("nic-registration-disabled")
    host = fleet.host("EX01")
    ok(host, OS, "Set-DnsClient", ("InterfaceIndex", 4), ("RegisterThisConnectionsAddress", True))
    ok(host, OS, "Register-DnsClient")
    import threading

    from mock_remoting.exchange import command

    result = host.invoke(
        EX,
        [command("Get-Queue", ("Filter", "Status -eq 'Retry'")), command("Retry-Queue")],
        threading.Event(),
    )
    assert result.failure is None and not result.errors
    assert {v.status for v in host.queues} == {"Ready"}


def test_retry_queue_whatif_and_unknown_queue() -> None:
    fleet = make_fleet("nic-registration-disabled")
    host = fleet.host("EX01")
    ok(host, OS, "Register-DnsClient")  # registration is still off: nothing to register
    assert not fleet.world.is_registered("ex01.contoso.local")
    ok(
        host,
        OS,
        "Set-DnsClient",
        ("InterfaceIndex", 4),
        ("RegisterThisConnectionsAddress", True),
        ("WhatIf", True),
    )
    ok(host, OS, "Register-DnsClient")
    assert not fleet.world.is_registered("ex01.contoso.local")
    ok(host, OS, "Set-DnsClient", ("InterfaceIndex", 4), ("RegisterThisConnectionsAddress", True))
    ok(host, OS, "Register-DnsClient", ("WhatIf", True))
    assert not fleet.world.is_registered("ex01.contoso.local")
    ok(host, OS, "Register-DnsClient")
    ok(host, EX, "Retry-Queue", ("Identity", "EX01\\1"), ("WhatIf", True))
    assert host.queue("fabrikam.com").status == "Retry"
    missing = invoke(host, EX, "Retry-Queue", ("Identity", "EX01\\99"))
    assert missing.errors and "couldn't be found" in str(missing.errors[0].Exception.Message)


# --- a wrong fix really breaks mail (issue 9, class 5), and unused settings stay unused ----------


def test_the_nic_fix_alone_breaks_internet_mail_where_the_other_server_has_no_forwarders() -> None:
    fleet = make_fleet("nic-public-secondary-no-forwarders")
    host = fleet.host("EX01")
    internal = "site:default-first-site-name; version:15"
    assert host.queue(internal).last_error == structured(NON_EXISTENT, "ex02.contoso.local")
    for domain in ("fabrikam.com", "tailspintoys.com"):
        assert host.queue(domain).status == "Ready" and host.queue(domain).queued == 0
    delivered = host.queue("fabrikam.com").delivered

    ok(host, OS, "Set-DnsClientServerAddress", ("InterfaceIndex", 4), ("ServerAddresses", "10.0.0.11"))
    ok(host, OS, "Restart-Service", ("Name", "MSExchangeTransport"))
    # The internal queue is cured; the mail that keeps arriving for the internet now waits.
    assert host.queue(internal).queued == 0 and host.queue(internal).status == "Ready"
    for domain in ("fabrikam.com", "tailspintoys.com"):
        view = host.queue(domain)
        assert view.status == "Retry" and view.queued > 0
        assert view.last_error == structured(SERVER_FAILURE, domain)
    assert host.queue("fabrikam.com").delivered == delivered
    retry_all(host)
    assert host.queue("fabrikam.com").status == "Retry"  # retrying changes nothing

    # The whole fix: transport's external lookups through a resolver that works.
    ok(host, EX, "Set-TransportService", ("Identity", "EX01"), ("ExternalDNSServers", "8.8.8.8"),
       ("ExternalDNSAdapterEnabled", False))  # fmt: skip
    ok(host, EX, "Set-SendConnector", ("Identity", "Internet"), ("UseExternalDNSServersEnabled", True))
    ok(host, OS, "Restart-Service", ("Name", "MSExchangeTransport"))
    for view in host.queues:
        assert view.status == "Ready" and view.queued == 0 and view.last_error is None, view
    assert host.queue("fabrikam.com").delivered > delivered


def test_arriving_mail_joins_the_queue_before_each_attempt() -> None:
    fleet = make_fleet("nic-public-secondary-no-forwarders")
    host = fleet.host("EX01")
    before = host.queue("fabrikam.com")
    assert before.delivered == 4 + 2  # the messages at load and the first arrivals, delivered
    retry_all(host)
    after = host.queue("fabrikam.com")
    assert after.delivered == before.delivered + 2 and after.queued == 0


def test_settings_no_route_uses_do_not_decide_delivery() -> None:
    fleet = make_fleet("transport-dns-settings-unused")
    for name in ("EX01", "EX02", "EX03"):
        host = fleet.host(name)
        ok(host, OS, "Restart-Service", ("Name", "MSExchangeTransport"))
        for view in host.queues:
            assert view.status == "Ready" and view.queued == 0 and view.last_error is None, (name, view)
    # FrontendProxyEnabled is what Get-SendConnector shows, and what decides EX02's lookups: with
    # it off, the connector's UseExternalDNSServersEnabled sends them to the broken External* list.
    ex02 = fleet.host("EX02")
    (shown,) = ok(ex02, EX, "Get-SendConnector", ("Identity", "Internet via Front End"))
    assert prop(shown, "FrontendProxyEnabled") is True and prop(shown, "UseExternalDNSServersEnabled") is True
    ok(ex02, EX, "Set-SendConnector", ("Identity", "Internet via Front End"), ("FrontendProxyEnabled", False))
    retry_all(ex02)
    assert ex02.queue("fabrikam.com").last_error == structured(SERVER_FAILURE, "fabrikam.com")
