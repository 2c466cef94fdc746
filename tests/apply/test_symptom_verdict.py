"""The symptom's checks and the verdict, on plain data (agent/apply/symptom.py and
agent/rules/next_hop.py): which lookups a failing queue needs, which servers are asked, what
"resolves" means, how SEND events are attributed, and that only an available check can fail."""

from __future__ import annotations

import datetime

import pytest

from agent.apply import symptom
from agent.apply.results import CheckStatus, ProbeCheck, QueueChange, QueueStatus, TrackingCheck
from agent.model.probe import Outcome
from agent.model.remote import RemoteObject
from agent.rules.next_hop import next_hop_lookup
from support.facts_builders import (
    INTERNAL_DNS,
    SERVFAIL_ERROR,
    connector,
    host,
    internal_queue,
    lookup,
    probe,
    queue,
    transport,
)

PUBLIC = "8.8.8.8"
T0 = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.timezone.utc)


def _change(drained: bool = True, checked: bool = True) -> QueueChange:
    before = QueueStatus("EX01\\1", "fabrikam.com", "Retry", 3, SERVFAIL_ERROR)
    after = QueueStatus("EX01\\1", "fabrikam.com", "Ready", 0 if drained else 3, None)
    return QueueChange("fabrikam.com", before, after, retried=True, checked=checked)


def _probe(status: CheckStatus) -> ProbeCheck:
    return ProbeCheck("fabrikam.com", "fabrikam.com", "MX", PUBLIC, "servfail", "answer", status)


def _sent(status: CheckStatus) -> TrackingCheck:
    return TrackingCheck("fabrikam.com", status, count=3 if status is CheckStatus.PASS else 0)


# --- the verdict ---------------------------------------------------------------------------


def test_every_available_check_passes_is_verified() -> None:
    assert symptom.verified([_change()], [_probe(CheckStatus.PASS)], [_sent(CheckStatus.PASS)],
                            error=None, still=False, new=False)  # fmt: skip


@pytest.mark.parametrize(
    ("probes", "tracking"),
    [
        ([_probe(CheckStatus.FAIL)], [_sent(CheckStatus.PASS)]),  # drained, but the lookup still fails
        ([_probe(CheckStatus.PASS)], [_sent(CheckStatus.FAIL)]),  # drained, but nothing was sent
        ([_probe(CheckStatus.PASS), _probe(CheckStatus.FAIL)], []),
    ],
)
def test_one_failed_check_is_not_verified_although_the_queues_drained(
    probes: list[ProbeCheck], tracking: list[TrackingCheck]
) -> None:
    assert not symptom.verified([_change()], probes, tracking, error=None, still=False, new=False)


def test_a_check_not_available_counts_for_nothing() -> None:
    na = [_probe(CheckStatus.NOT_AVAILABLE)], [_sent(CheckStatus.NOT_AVAILABLE)]
    assert symptom.verified([_change()], *na, error=None, still=False, new=False)
    # ... but it does not make up for what did fail or did not drain.
    assert not symptom.verified([_change(drained=False)], *na, error=None, still=False, new=False)
    assert not symptom.verified([_change(checked=False)], *na, error=None, still=False, new=False)


@pytest.mark.parametrize("against", [{"error": "Get-Queue failed"}, {"still": True}, {"new": True}])
def test_an_error_a_finding_left_or_a_new_one_is_not_verified(against: dict[str, object]) -> None:
    options: dict[str, object] = {"error": None, "still": False, "new": False, **against}
    assert not symptom.verified([_change()], [_probe(CheckStatus.PASS)], [_sent(CheckStatus.PASS)],
                                **options)  # type: ignore[arg-type]  # fmt: skip


def test_queue_status_is_pass_fail_or_not_available() -> None:
    assert _change().status is CheckStatus.PASS
    assert _change(drained=False).status is CheckStatus.FAIL
    assert _change(checked=False).status is CheckStatus.NOT_AVAILABLE
    assert _change().to_dict()["status"] == "pass"


# --- which lookups, at which servers -------------------------------------------------------


FAILING = queue("EX01\\1", next_hop="fabrikam.com", last_error=SERVFAIL_ERROR)


def test_the_lookups_of_an_external_queue_are_its_mx_and_what_failed_on_the_host() -> None:
    before = host(
        queues=[FAILING],
        extra_probes=[
            probe(INTERNAL_DNS, "fabrikam.com", "MX", Outcome.SERVFAIL),
            probe(INTERNAL_DNS, "fabrikam.com", "AAAA", Outcome.SERVFAIL),
            probe(INTERNAL_DNS, "fabrikam.com", "A", Outcome.ANSWER, ("203.0.113.10",)),
            probe(INTERNAL_DNS, "fabrikam.com", "MX", Outcome.ANSWER, ("10 mx1.fabrikam.com.",),
                  vantage=symptom.Vantage.ORCHESTRATOR),  # not the host's: ignored
        ],
    )  # fmt: skip
    found = symptom.lookups_for(before, FAILING)
    assert [(x.qname, x.rdtype, x.before, x.must_exist) for x in found] == [
        ("fabrikam.com", "MX", "servfail", False),
        ("fabrikam.com", "AAAA", "servfail", False),
    ]


def test_a_mail_host_lookup_that_failed_before_is_re_run_and_its_address_must_exist() -> None:
    before = host(queues=[FAILING], extra_probes=[
        probe(INTERNAL_DNS, "fabrikam.com", "MX", Outcome.ANSWER, ("10 mx1.fabrikam.com.",)),
        probe(INTERNAL_DNS, "mx1.fabrikam.com", "A", Outcome.TIMEOUT),
    ])  # fmt: skip
    found = symptom.lookups_for(before, FAILING)
    assert [(x.qname, x.rdtype, x.before, x.must_exist) for x in found] == [
        ("fabrikam.com", "MX", "answer", False),
        ("mx1.fabrikam.com", "A", "timeout", True),
    ]


def test_an_internal_next_hop_needs_its_a_record() -> None:
    hop = queue("EX01\\2", next_hop="ex02.contoso.local", delivery_type="SmtpRelayToMailboxDeliveryGroup",
                category="Internal")  # fmt: skip
    (only,) = symptom.lookups_for(host(queues=[hop]), hop)
    assert (only.qname, only.rdtype, only.before, only.must_exist) == ("ex02.contoso.local", "A", None, True)


@pytest.mark.parametrize(
    ("outcome", "must_exist", "ok"),
    [
        (Outcome.ANSWER, True, True),
        (Outcome.NODATA, False, True),  # no MX: the A record is used (RFC 5321 5.1); no AAAA: IPv4
        (Outcome.NODATA, True, False),  # a mail host without an address
        (Outcome.NXDOMAIN, False, False),
        (Outcome.SERVFAIL, False, False),
        (Outcome.TIMEOUT, False, False),
    ],
)
def test_what_resolves(outcome: Outcome, must_exist: bool, ok: bool) -> None:
    assert symptom.resolves(probe(PUBLIC, "fabrikam.com", "MX", outcome), must_exist=must_exist) is ok


def test_the_servers_asked_are_those_transport_uses_for_the_next_hop_now() -> None:
    external = transport(external=lookup(adapter=False, servers=(PUBLIC,)))
    by_external = host(transport_facts=external, connectors=[connector(use_external=True)])
    path = next_hop_lookup(by_external, FAILING)
    assert path.servers == (PUBLIC,) and "UseExternalDNSServersEnabled=True" in path.how
    # Without UseExternalDNSServersEnabled the connector's lookups are the Internal* ones: the NIC.
    by_nic = host(transport_facts=external, connectors=[connector(use_external=False)])
    assert next_hop_lookup(by_nic, FAILING).servers == (INTERNAL_DNS,)
    # A smart-host connector resolves no recipient domain: nothing to ask, and why.
    smart = host(connectors=[connector(dns_routing=False, smart_hosts=("relay.contoso.com",))])
    none = next_hop_lookup(smart, FAILING)
    assert none.servers == () and "DNSRoutingEnabled=False" in none.how


def test_a_next_hop_that_is_no_host_name_has_nothing_to_look_up() -> None:
    site = internal_queue()
    assert not symptom.is_host_name(site.next_hop_domain)
    assert not symptom.is_host_name("site:Default-First-Site-Name; version:15")
    assert symptom.is_host_name("ex02.contoso.local")
    check = symptom.tracking_check(site, ())
    assert check.status is CheckStatus.NOT_AVAILABLE and "not a host name" in check.reason


# --- the message tracking log --------------------------------------------------------------


def _event(recipient: str, server: str, at: datetime.datetime, event: str = "SEND") -> RemoteObject:
    return RemoteObject(
        type_names=("Microsoft.Exchange.Management.TransportLogSearchTasks.MessageTrackingEvent",),
        properties={"Timestamp": at, "EventId": event, "Source": "SMTP", "ConnectorId": "Internet",
                    "ServerHostname": server, "Recipients": (recipient,)},
    )  # fmt: skip


def test_send_events_are_counted_per_next_hop_with_the_first_one_shown() -> None:
    events = symptom.parse_events([
        _event("b@fabrikam.com", "mx1.fabrikam.com", T0 + datetime.timedelta(seconds=5)),
        _event("a@fabrikam.com", "mx1.fabrikam.com", T0),
        _event("c@tailspintoys.com", "mail.tailspintoys.com", T0),
        _event("d@fabrikam.com", "mx1.fabrikam.com", T0, event="RECEIVE"),  # not a SEND
    ])  # fmt: skip
    check = symptom.tracking_check(FAILING, events)
    assert (check.status, check.count, check.first, check.connector, check.server_hostname) == (
        CheckStatus.PASS, 2, T0.isoformat(), "Internet", "mx1.fabrikam.com",
    )  # fmt: skip
    none = symptom.tracking_check(queue("EX01\\3", next_hop="contoso.net", last_error=SERVFAIL_ERROR), events)
    assert none.status is CheckStatus.FAIL and none.count == 0 and "contoso.net" in none.reason


def test_an_empty_queue_had_nothing_to_send() -> None:
    empty = queue("EX01\\1", next_hop="fabrikam.com", messages=0)
    assert symptom.tracking_check(empty, ()).status is CheckStatus.NOT_AVAILABLE


def test_the_tracking_call_names_the_server_the_start_in_utc_and_send() -> None:
    local = T0.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    call = symptom.tracking_call("EX01", local)
    assert call.cmdlet == "Get-MessageTrackingLog"
    assert call.parameters == (("Server", "EX01"), ("Start", "2026-12-01T10:00:00Z"), ("EventId", "SEND"),
                               ("ResultSize", "Unlimited"))  # fmt: skip
