from __future__ import annotations

from agent.model.facts import EdgeTransportConfigFacts
from agent.model.finding_data import AddSmartHostConnector, SymptomScope
from agent.model.probe import DnsQueryResult, Outcome, Vantage
from agent.rules import (
    dns_fault_tolerance,
    dns_server_unreachable,
    queue_dns_failure,
    remote_domain_aaaa_broken,
    remote_domain_no_mail_dns,
)
from support.facts_builders import (
    ERRORRETRY_ERROR,
    INTERNAL_DNS,
    NXDOMAIN_ERROR,
    SERVFAIL_ERROR,
    connector,
    host,
    internal_queue,
    lookup,
    mapi_nic,
    probe,
    queue,
    server_probes,
    transport,
    unreachable,
    values,
)


def fabrikam_probes(
    aaaa: Outcome = Outcome.SERVFAIL, vantage: Vantage = Vantage.ORCHESTRATOR
) -> tuple[DnsQueryResult, ...]:
    return (
        probe(INTERNAL_DNS, "fabrikam.com", "MX", Outcome.ANSWER, ("10 mx1.fabrikam.com.",), vantage),
        probe(INTERNAL_DNS, "mx1.fabrikam.com", "A", Outcome.ANSWER, ("203.0.113.10",), vantage),
        probe(INTERNAL_DNS, "mx1.fabrikam.com", "AAAA", aaaa, (), vantage),
    )


FAILING = queue("EX01\\12", next_hop="fabrikam.com", last_error=SERVFAIL_ERROR)
DELIVERING = queue("EX01\\13", next_hop="tailspintoys.com", status="Ready", messages=0)

# --- remote-domain-aaaa-broken ------------------------------------------------------------


def test_one_domain_failing_with_broken_aaaa_fires_with_the_smart_host() -> None:
    facts = host(
        queues=(FAILING, DELIVERING), extra_probes=fabrikam_probes(), remote_domains=("fabrikam.com",)
    )
    (finding,) = remote_domain_aaaa_broken.evaluate(facts)
    assert finding.subject == "fabrikam.com"
    assert finding.data == AddSmartHostConnector(
        domain="fabrikam.com",
        mx_hosts=("mx1.fabrikam.com",),
        smart_hosts=("203.0.113.10",),
        queues=("EX01\\12",),
        source_transport_servers=("EX01",),
        connector_name="fabrikam.com smart host",
    )
    assert finding.fix_id == "add-smarthost-send-connector"
    assert "other external domains deliver (tailspintoys.com)" in finding.summary
    assert "AAAA gets SERVFAIL for AAAA mx1.fabrikam.com (orchestrator)" in finding.summary
    text = values(finding)
    assert SERVFAIL_ERROR in text and "203.0.113.10" in text


def test_aaaa_timeout_also_counts() -> None:
    facts = host(queues=(FAILING, DELIVERING), extra_probes=fabrikam_probes(Outcome.TIMEOUT))
    assert len(remote_domain_aaaa_broken.evaluate(facts)) == 1


def test_fires_without_delivering_queues_when_no_global_cause_exists() -> None:
    facts = host(queues=(FAILING,), extra_probes=fabrikam_probes())
    assert len(remote_domain_aaaa_broken.evaluate(facts)) == 1


def test_global_external_failure_is_not_the_domains_fault() -> None:
    facts = host(
        probes=server_probes(INTERNAL_DNS, public=Outcome.SERVFAIL),
        queues=(FAILING,),
        extra_probes=fabrikam_probes(),
    )
    assert remote_domain_aaaa_broken.evaluate(facts) == ()


def test_healthy_aaaa_is_clean() -> None:
    facts = host(queues=(FAILING, DELIVERING), extra_probes=fabrikam_probes(Outcome.NODATA))
    assert remote_domain_aaaa_broken.evaluate(facts) == ()


def test_not_probed_is_clean() -> None:
    assert remote_domain_aaaa_broken.evaluate(host(queues=(FAILING, DELIVERING))) == ()


# --- remote-domain-no-mail-dns ------------------------------------------------------------


def test_domain_without_mx_and_a_fires_as_advisory() -> None:
    failing = queue("EX01\\20", next_hop="nowhere.example", last_error=NXDOMAIN_ERROR)
    probes = (
        probe(INTERNAL_DNS, "nowhere.example", "MX", Outcome.NXDOMAIN),
        probe(INTERNAL_DNS, "nowhere.example", "A", Outcome.NXDOMAIN),
    )
    facts = host(queues=(failing,), extra_probes=probes)
    (finding,) = remote_domain_no_mail_dns.evaluate(facts)
    assert finding.fix_id is None and finding.data.domain == "nowhere.example"
    assert "no MX (NXDOMAIN for MX nowhere.example (host))" in finding.summary
    assert "no A (NXDOMAIN for A nowhere.example (host))" in finding.summary


def test_nxdomain_for_mx_alone_is_enough() -> None:
    failing = queue("EX01\\20", next_hop="nowhere.example", last_error=NXDOMAIN_ERROR)
    facts = host(
        queues=(failing,), extra_probes=(probe(INTERNAL_DNS, "nowhere.example", "MX", Outcome.NXDOMAIN),)
    )
    assert len(remote_domain_no_mail_dns.evaluate(facts)) == 1


def test_nodata_mx_but_an_a_record_is_clean() -> None:
    failing = queue("EX01\\20", next_hop="bare.example", last_error=NXDOMAIN_ERROR)
    probes = (
        probe(INTERNAL_DNS, "bare.example", "MX", Outcome.NODATA),
        probe(INTERNAL_DNS, "bare.example", "A", Outcome.ANSWER, ("203.0.113.99",)),
    )
    assert remote_domain_no_mail_dns.evaluate(host(queues=(failing,), extra_probes=probes)) == ()


def test_servfail_is_not_absence() -> None:
    failing = queue("EX01\\20", next_hop="nowhere.example", last_error=SERVFAIL_ERROR)
    probes = (
        probe(INTERNAL_DNS, "nowhere.example", "MX", Outcome.SERVFAIL),
        probe(INTERNAL_DNS, "nowhere.example", "A", Outcome.SERVFAIL),
    )
    assert remote_domain_no_mail_dns.evaluate(host(queues=(failing,), extra_probes=probes)) == ()


# --- queue-dns-failure --------------------------------------------------------------------


def test_internal_queues_failing_are_one_finding() -> None:
    facts = host(queues=(internal_queue("EX01\\7"), internal_queue("EX01\\8", messages=5)))
    (finding,) = queue_dns_failure.evaluate(facts)
    assert finding.subject == "internal next hops"
    assert finding.data.scope is SymptomScope.INTERNAL
    assert finding.data.queues == ("EX01\\7", "EX01\\8")
    assert finding.data.error_classes == ("NonExistentDomain",)
    assert finding.data.message_count == 8
    assert "EX01\\7 (Retry, 3 msg, SMTPSEND.DNS.NonExistentDomain)" in finding.summary
    assert finding.evidence[0].value("LastError") == NXDOMAIN_ERROR
    assert finding.fix_id is None


def test_all_external_failing() -> None:
    queues = (
        queue("EX01\\12", next_hop="fabrikam.com", last_error=SERVFAIL_ERROR),
        queue("EX01\\13", next_hop="tailspintoys.com", last_error=SERVFAIL_ERROR),
    )
    (finding,) = queue_dns_failure.evaluate(host(queues=queues))
    assert finding.data.scope is SymptomScope.ALL_EXTERNAL
    assert finding.data.domains == ("fabrikam.com", "tailspintoys.com")
    assert finding.data.error_classes == ("ServerFailure",)


def test_specific_domain_while_others_deliver() -> None:
    (finding,) = queue_dns_failure.evaluate(host(queues=(FAILING, DELIVERING)))
    assert finding.data.scope is SymptomScope.DOMAIN
    assert finding.subject == "fabrikam.com"


def test_non_dns_errors_and_healthy_queues_are_clean() -> None:
    other = queue(
        "EX01\\30",
        next_hop="contoso.net",
        last_error='451 4.4.0 Primary target IP address responded with: "421 4.2.1 Unable to connect."',
    )
    assert queue_dns_failure.evaluate(host(queues=(other, DELIVERING))) == ()


def test_ready_queue_with_dns_error_and_messages_counts_but_empty_one_does_not() -> None:
    stuck = queue("EX01\\40", next_hop="fabrikam.com", status="Ready", last_error=ERRORRETRY_ERROR)
    idle = queue("EX01\\41", next_hop="fabrikam.com", status="Ready", last_error=ERRORRETRY_ERROR, messages=0)
    assert len(queue_dns_failure.evaluate(host(queues=(stuck,)))) == 1
    assert queue_dns_failure.evaluate(host(queues=(idle,))) == ()


# --- dns-server-unreachable ---------------------------------------------------------------


def test_server_that_only_times_out_is_reported_with_where_it_is_configured() -> None:
    facts = host(
        nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS, "10.0.0.99")),),
        transport_facts=transport(external=lookup(adapter=False, servers=("10.0.0.99",))),
        connectors=(connector(use_external=True),),
        probes=server_probes(INTERNAL_DNS) + unreachable("10.0.0.99"),
    )
    (finding,) = dns_server_unreachable.evaluate(facts)
    assert finding.subject == "DNS server 10.0.0.99"
    assert finding.data.configured_on == ("NIC 'Ethernet0' (InterfaceIndex 12)", "ExternalDNSServers")
    assert finding.data.vantages == ("host",)
    assert finding.summary == (
        "DNS server 10.0.0.99 (configured on NIC 'Ethernet0' (InterfaceIndex 12), ExternalDNSServers) "
        "timed out on all 3 probe(s) from host"
    )
    assert finding.fix_id is None


def test_a_server_only_in_a_list_nothing_uses_is_not_judged() -> None:
    # ExternalDNSServers is ignored while ExternalDNSAdapterEnabled is $true, and unused by a
    # connector without UseExternalDNSServersEnabled; InternalDNSServers is ignored while
    # InternalDNSAdapterEnabled is $true (Set-TransportService docs).
    for external, connectors in (
        (lookup(adapter=True, servers=("10.0.0.99",)), (connector(use_external=True),)),
        (lookup(adapter=False, servers=("10.0.0.99",)), (connector(use_external=False),)),
    ):
        facts = host(
            transport_facts=transport(
                external=external, internal=lookup(adapter=True, servers=("10.0.0.98",))
            ),
            connectors=connectors,
            probes=server_probes(INTERNAL_DNS) + unreachable("10.0.0.99") + unreachable("10.0.0.98"),
        )
        assert dns_server_unreachable.evaluate(facts) == ()


def test_a_server_that_answers_anything_is_reachable() -> None:
    probes = server_probes(INTERNAL_DNS) + server_probes(
        "10.0.0.98", srv=Outcome.TIMEOUT, internal=Outcome.TIMEOUT, public=Outcome.SERVFAIL
    )
    facts = host(nics=(mapi_nic(ipv4_dns_servers=(INTERNAL_DNS, "10.0.0.98")),), probes=probes)
    assert dns_server_unreachable.evaluate(facts) == ()


def test_unconfigured_servers_are_not_reported() -> None:
    facts = host(probes=server_probes(INTERNAL_DNS) + unreachable("10.0.0.97"))
    assert dns_server_unreachable.evaluate(facts) == ()


# --- dns-fault-tolerance ------------------------------------------------------------------

CONFIG = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Bin\\EdgeTransport.exe.config"


def test_normal_fires_naming_the_file_and_value() -> None:
    facts = host(
        edge=EdgeTransportConfigFacts(config_path=CONFIG, dns_fault_tolerance="Normal", key_present=True)
    )
    (finding,) = dns_fault_tolerance.evaluate(facts)
    assert finding.summary == f"{CONFIG} sets DnsFaultTolerance='Normal' (the default is Lenient)"
    assert finding.data.current_value == "Normal" and finding.data.desired_value == "Lenient"
    assert finding.fix_id == "set-dns-fault-tolerance"


def test_lenient_any_case_absent_or_uncollected_is_clean() -> None:
    for edge in (
        EdgeTransportConfigFacts(CONFIG, "lenient", True),
        EdgeTransportConfigFacts(CONFIG, "Lenient", False),
        None,
    ):
        assert dns_fault_tolerance.evaluate(host(edge=edge)) == ()


def test_queues_that_fail_for_reasons_other_than_dns_are_no_dns_symptom() -> None:
    # The next hop resolved; its server could not be reached (441 4.4.1) or dropped the session
    # (421 4.4.2 inside a 451 4.4.0 that names no DNS error): nothing for a DNS fix to cure.
    unreachable_mx = (
        "[{LRT=1/15/2025 10:00:00 AM};{LED=441 4.4.1 Error encountered while communicating with "
        'primary target IP address: "Failed to connect. Winsock error code: 10060, Win32 error code: '
        '10060."};{FQDN=mx1.fabrikam.com};{IP=203.0.113.10}]'
    )
    dropped = (
        '451 4.4.0 Primary target IP address responded with: "421 4.4.2 Connection dropped due to '
        'SocketError." Attempted failover to alternate host, but that did not succeed.'
    )
    facts = host(
        queues=(
            queue("EX01\\12", next_hop="fabrikam.com", last_error=unreachable_mx),
            queue("EX01\\13", next_hop="tailspintoys.com", last_error=dropped),
        )
    )
    assert queue_dns_failure.evaluate(facts) == ()
