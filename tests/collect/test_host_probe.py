from __future__ import annotations

import pytest

from agent.collect import host_probe
from agent.model.command import SWITCH
from agent.model.facts import ProbeTargets
from agent.model.probe import Outcome, Vantage
from agent.model.remote import RemoteError, RemoteObject

TARGETS = ProbeTargets.for_domain("contoso.local", "ex01.contoso.local", "microsoft.com")
DNSREC = "Microsoft.DnsClient.Commands.DnsRecord_"


def record(kind: str, props: dict[str, object]) -> RemoteObject:
    return RemoteObject((DNSREC + kind, "Microsoft.DnsClient.Commands.DnsRecord", "System.Object"), props)


def test_three_questions_per_server_without_repeats() -> None:
    calls = host_probe.calls(TARGETS, ("10.0.0.10", "8.8.8.8", "10.0.0.10", ""))
    asked = [(c.param("Server"), c.param("Name"), c.param("Type")) for c in calls]
    assert asked == [
        ("10.0.0.10", "_ldap._tcp.dc._msdcs.contoso.local", "SRV"),
        ("10.0.0.10", "ex01.contoso.local", "A"),
        ("10.0.0.10", "microsoft.com", "MX"),
        ("8.8.8.8", "_ldap._tcp.dc._msdcs.contoso.local", "SRV"),
        ("8.8.8.8", "ex01.contoso.local", "A"),
        ("8.8.8.8", "microsoft.com", "MX"),
    ]
    assert all(c.cmdlet == "Resolve-DnsName" and c.endpoint.value == "os" for c in calls)
    assert calls[0].param("DnsOnly") is SWITCH and calls[0].param("QuickTimeout") is SWITCH


def test_remote_domain_and_mx_host_calls() -> None:
    assert [c.param("Type") for c in host_probe.remote_domain_calls("fabrikam.com", ("10.0.0.10",))] == [
        "MX",
        "A",
        "AAAA",
    ]
    assert [
        (c.param("Name"), c.param("Type")) for c in host_probe.mx_host_calls("mx1.fabrikam.com", ("1.1.1.1",))
    ] == [("mx1.fabrikam.com", "A"), ("mx1.fabrikam.com", "AAAA")]


def test_answers_of_each_type_in_zone_file_text() -> None:
    srv_call, a_call, mx_call = host_probe.calls(TARGETS, ("10.0.0.10",))
    srv = host_probe.parse(
        srv_call,
        (
            record(
                "SRV",
                {
                    "Name": "_ldap...",
                    "Type": 33,
                    "Section": "Answer",
                    "NameTarget": "dc01.contoso.local",
                    "Port": 389,
                    "Priority": 0,
                    "Weight": 100,
                },
            ),
            record(
                "A",
                {
                    "Name": "dc01.contoso.local",
                    "Type": "A",
                    "Section": "Additional",
                    "IPAddress": "10.0.0.10",
                },
            ),
        ),
    )
    assert srv.outcome is Outcome.ANSWER and srv.records == ("0 100 389 dc01.contoso.local.",)
    assert srv.vantage is Vantage.HOST and srv.server == "10.0.0.10" and srv.rdtype == "SRV"
    a = host_probe.parse(
        a_call,
        (
            record("A", {"Type": 1, "Section": 1, "IPAddress": "10.0.0.21"}),
            record("A", {"Type": 1, "Section": 1, "IPAddress": "10.0.0.21"}),
        ),
        elapsed_ms=4.5,
    )
    assert a.records == ("10.0.0.21",) and a.elapsed_ms == 4.5
    mx = host_probe.parse(
        mx_call,
        (
            record(
                "MX",
                {
                    "Type": "MX",
                    "Section": "Answer",
                    "Preference": "10",
                    "NameExchange": "microsoft-com.mail.protection.outlook.com",
                },
            ),
        ),
    )
    assert mx.records == ("10 microsoft-com.mail.protection.outlook.com.",)


def test_nodata_is_an_soa_in_authority() -> None:
    (call,) = host_probe.mx_host_calls("mx1.fabrikam.com", ("10.0.0.10",))[1:]
    soa = record("SOA", {"Type": 6, "Section": "Authority", "PrimaryServer": "ns1.fabrikam.com"})
    assert host_probe.parse(call, (soa,)).outcome is Outcome.NODATA
    assert host_probe.parse(call, ()).outcome is Outcome.NODATA


@pytest.mark.parametrize(
    ("fqid", "message", "outcome"),
    [
        (
            "DNS_ERROR_RCODE_NAME_ERROR,Microsoft.DnsClient.Commands.ResolveDnsName",
            "x : DNS name does not exist",
            Outcome.NXDOMAIN,
        ),
        (
            "ERROR_TIMEOUT,Microsoft.DnsClient.Commands.ResolveDnsName",
            "This operation returned because the timeout period expired",
            Outcome.TIMEOUT,
        ),
        (
            "DNS_ERROR_RCODE_SERVER_FAILURE,Microsoft.DnsClient.Commands.ResolveDnsName",
            "DNS server failure",
            Outcome.SERVFAIL,
        ),
        ("DNS_ERROR_RCODE_REFUSED,Microsoft.DnsClient.Commands.ResolveDnsName", "refused", Outcome.REFUSED),
        ("DNS_INFO_NO_RECORDS,Microsoft.DnsClient.Commands.ResolveDnsName", "No records", Outcome.NODATA),
        (None, "DNS name does not exist", Outcome.NXDOMAIN),
        ("SomethingElse", "the \x1b[31m$(weird) error\nspanning lines", Outcome.ERROR),
    ],
)
def test_error_records(fqid: str | None, message: str, outcome: Outcome) -> None:
    call = host_probe.probe_call("10.0.0.99", "fabrikam.com", "MX")
    result = host_probe.parse(call, (), (RemoteError(message=message, fully_qualified_error_id=fqid),))
    assert result.outcome is outcome
    assert "\n" not in result.detail
    if fqid:
        assert result.detail == fqid.split(",")[0]


def test_error_record_delivered_as_an_object() -> None:
    call = host_probe.probe_call("10.0.0.99", "fabrikam.com", "MX")
    err = RemoteObject(
        ("System.Management.Automation.ErrorRecord",),
        {"FullyQualifiedErrorId": "ERROR_TIMEOUT,Microsoft.DnsClient.Commands.ResolveDnsName"},
        "timeout",
    )
    assert host_probe.parse(call, (err,)).outcome is Outcome.TIMEOUT


def test_an_answer_wins_over_a_stray_error() -> None:
    call = host_probe.probe_call("10.0.0.10", "ex01.contoso.local", "A")
    result = host_probe.parse(
        call,
        (record("A", {"Type": 1, "Section": 1, "IPAddress": "10.0.0.21"}),),
        (RemoteError("warning-ish"),),
    )
    assert result.outcome is Outcome.ANSWER
