from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.collect import queues
from agent.model.facts import QueueErrorKind, QueueScope
from agent.model.remote import RemoteObject

K = QueueErrorKind


@pytest.mark.parametrize(
    ("text", "kind", "code"),
    [
        (
            "451 4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; nonexistent domain",
            K.NON_EXISTENT_DOMAIN,
            "SMTPSEND.DNS.NonExistentDomain",
        ),
        (
            "4.4.0 DNS query failed. The error was: DNS query failed with error ErrorRetry",
            K.ERROR_RETRY,
            "ErrorRetry",
        ),
        (
            "451 4.4.0 DNS query failed. The error was: DNS query failed with error ErrorDnsQueryFailed",
            K.SERVER_FAILURE,
            "ErrorDnsQueryFailed",
        ),
        (
            "451 4.4.0 DNS query failed. The error was: DNS query failed with error ServerFailure",
            K.SERVER_FAILURE,
            "ServerFailure",
        ),
        (
            "451 4.4.0 DNS query failed. The error was: DNS query failed with error ErrorTimeout",
            K.ERROR_TIMEOUT,
            "ErrorTimeout",
        ),
        (
            "451 4.4.0 DNS QUERY FAILED. THE ERROR WAS: smtpsend.dns.nonexistentdomain; NONEXISTENT DOMAIN",
            K.NON_EXISTENT_DOMAIN,
            "smtpsend.dns.nonexistentdomain",
        ),
        (
            "451 4.4.0 DNS query failed. The error was: DNS query failed with error SomethingNew",
            K.OTHER_DNS,
            "SomethingNew",
        ),
        ("451 4.4.0 DNS query failed.", K.OTHER_DNS, ""),
        ("451 4.4.0 DNS query failed: nonexistent domain", K.NON_EXISTENT_DOMAIN, ""),
        ('451 4.4.0 Primary target IP address responded with: "421 4.2.1 Unable to connect."', K.NOT_DNS, ""),
        ("", K.NONE, ""),
        ("   ", K.NONE, ""),
    ],
)
def test_plain_forms(text: str, kind: QueueErrorKind, code: str) -> None:
    parsed = queues.parse_last_error(text)
    assert parsed.kind is kind
    assert parsed.dns_code == code
    assert parsed.raw == text


def test_plain_status_code() -> None:
    assert (
        queues.parse_last_error(
            "451 4.4.0 DNS query failed. The error was: DNS query failed with error ErrorRetry"
        ).status_code
        == "451 4.4.0"
    )
    assert (
        queues.parse_last_error(
            '451 4.4.0 Primary target IP address responded with: "421 4.2.1 Unable to connect."'
        ).status_code
        == "451 4.4.0"
    )


def test_structured_form() -> None:
    text = (
        "[{LRT=3/14/2024 9:26:53 AM};{LED=450 4.7.0 Proxy session setup failed; 451 4.4.0 DNS query failed. "
        "The error was: DNS query failed with error ErrorRetry};{FQDN=mx1.fabrikam.com};{IP=203.0.113.10}]"
    )
    parsed = queues.parse_last_error(text)
    assert parsed.kind is K.ERROR_RETRY
    assert parsed.status_code == "451 4.4.0"  # the one next to the DNS failure, not 450 4.7.0
    assert parsed.last_retry_time == "3/14/2024 9:26:53 AM"
    assert parsed.target_fqdn == "mx1.fabrikam.com" and parsed.target_ip == "203.0.113.10"
    assert parsed.description.startswith("450 4.7.0 Proxy session setup failed")


def test_structured_form_mixed_case_and_empty_fields() -> None:
    parsed = queues.parse_last_error(
        "[{lrt=};{Led=451 4.4.0 dns query failed. the error was: "
        "SMTPSEND.DNS.NonExistentDomain; nonexistent domain};{fqdn=};{Ip=}]"
    )
    assert parsed.kind is K.NON_EXISTENT_DOMAIN
    assert (parsed.last_retry_time, parsed.target_fqdn, parsed.target_ip) == ("", "", "")


def test_structured_form_not_dns() -> None:
    parsed = queues.parse_last_error("[{LRT=x};{LED=421 4.4.2 Connection dropped};{FQDN=a};{IP=b}]")
    assert parsed.kind is K.NOT_DNS and parsed.status_code == "421 4.4.2"


HOSTILE = [
    "451 4.4.0 DNS query failed. The error was: $(Remove-Item C:\\ -Recurse) `n'; \"",
    "[{LRT=`$env:PATH};{LED=451 4.4.0 DNS query failed \x1b[31mred\x1b[0m};{FQDN=a\nb};{IP=\u202e1.2.3.4}]",
    "[{LED=};{LED=}};{{{;]",
    "[{LED=451 4.4.0 DNS query failed. The error was: DNS query failed with error ErrorRetry",
    "ünïcødé ✉ 名前 DNS query failed with error ErrorRetry",
    "\x00\x01\x02",
    "{" * 5000 + "}" * 5000,
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_parsed_not_executed(text: str) -> None:
    parsed = queues.parse_last_error(text)
    assert parsed.raw == text


def test_hostile_dns_text_still_classifies() -> None:
    assert queues.parse_last_error(HOSTILE[0]).kind is K.OTHER_DNS
    assert queues.parse_last_error(HOSTILE[1]).kind is K.OTHER_DNS
    assert queues.parse_last_error(HOSTILE[4]).kind is K.ERROR_RETRY


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.lists(
            st.sampled_from(
                [
                    "[",
                    "]",
                    "{",
                    "}",
                    ";",
                    "=",
                    "LRT",
                    "LED",
                    "FQDN",
                    "IP",
                    "DNS query failed",
                    "SMTPSEND.DNS.",
                    "failed with error ",
                    "451 4.4.0",
                    "\n",
                    "\x1b",
                    "`",
                    "$(",
                ]
            )
        ).map("".join),
        st.none(),
        st.integers(),
        st.booleans(),
    )
)
def test_never_raises(value: object) -> None:
    parsed = queues.parse_last_error(value)
    assert isinstance(parsed.kind, QueueErrorKind)


def test_queue_rows_and_scopes() -> None:
    rows = (
        RemoteObject(
            ("Microsoft.Exchange.Data.QueueViewer.ExtensibleQueueInfo",),
            {
                "Identity": RemoteObject(("x",), {}, "EX01\\12"),
                "DeliveryType": "DnsConnectorDelivery",
                "Status": RemoteObject(("Microsoft.Exchange.Data.QueueViewer.QueueStatus",), {}, "Retry"),
                "MessageCount": "4",
                "NextHopDomain": "fabrikam.com",
                "NextHopCategory": "External",
                "LastError": "451 4.4.0 DNS query failed. The error was: "
                "DNS query failed with error ServerFailure",
            },
        ),
        RemoteObject(
            ("x",),
            {
                "Identity": "EX01\\7",
                "DeliveryType": "SmtpRelayToRemoteActiveDirectorySite",
                "Status": "Ready",
                "MessageCount": None,
                "NextHopCategory": "Internal",
            },
        ),
        RemoteObject(
            ("x",),
            {
                "Identity": "EX01\\Shadow\\3",
                "DeliveryType": "ShadowRedundancy",
                "NextHopCategory": "External",
            },
        ),
        RemoteObject(("x",), {"Identity": "EX01\\9", "DeliveryType": "smtprelaytoremoteadsite"}),
        RemoteObject(
            ("x",), {"Identity": "EX01\\10", "DeliveryType": "Undefined", "NextHopCategory": "External"}
        ),
    )
    parsed = queues.parse(rows)
    assert [q.identity for q in parsed] == ["EX01\\12", "EX01\\7", "EX01\\Shadow\\3", "EX01\\9", "EX01\\10"]
    assert parsed[0].status == "Retry" and parsed[0].message_count == 4
    assert parsed[0].scope is QueueScope.EXTERNAL and parsed[0].failing_dns
    assert parsed[1].scope is QueueScope.INTERNAL and parsed[1].message_count == 0 and parsed[1].delivering
    assert parsed[2].scope is QueueScope.OTHER
    assert parsed[3].scope is QueueScope.INTERNAL
    assert parsed[4].scope is QueueScope.EXTERNAL  # an unknown type falls back to NextHopCategory
    (call,) = queues.calls("EX01")
    assert call.cmdlet == "Get-Queue" and call.param("Server") == "EX01"


def _row(**props: object) -> RemoteObject:
    base: dict[str, object] = {
        "Identity": "EX01\\5", "DeliveryType": "DnsConnectorDelivery", "Status": "Ready", "MessageCount": 9,
        "NextHopDomain": "fabrikam.com", "NextHopCategory": "External", "LastError": None,
    }  # fmt: skip
    return RemoteObject(("Microsoft.Exchange.Data.QueueViewer.ExtensibleQueueInfo",), {**base, **props})


def test_rates_and_retry_times_are_read_as_get_queue_shows_them() -> None:
    row = _row(IncomingRate=0.25, OutgoingRate=0.0, Velocity=-0.25, RetryCount=2,
               FirstRetryTime="1/15/2025 9:50:00 AM", LastRetryTime="1/15/2025 10:00:00 AM")  # fmt: skip
    (q,) = queues.parse((row,))
    assert (q.incoming_rate, q.outgoing_rate, q.velocity) == (0.25, 0.0, -0.25)
    assert q.first_retry_time == "1/15/2025 9:50:00 AM" and q.last_retry_time == "1/15/2025 10:00:00 AM"
    assert q.retry_count == 2
    assert q.stuck_in_ready and not q.delivering and not q.failing_dns


@pytest.mark.parametrize(
    ("props", "rates"),
    [
        ({}, (None, None, None)),  # Exchange 2010: no rates at all
        ({"IncomingRate": "1.5", "OutgoingRate": "0", "Velocity": "-1.5"}, (1.5, 0.0, -1.5)),  # as text
        ({"IncomingRate": "NaN", "OutgoingRate": "fast", "Velocity": True}, (None, None, None)),
        ({"IncomingRate": float("inf"), "OutgoingRate": 2, "Velocity": None}, (None, 2.0, None)),
    ],
)
def test_rates_that_are_absent_or_unreadable_are_none_never_zero(
    props: dict[str, object], rates: tuple[float | None, ...]
) -> None:
    (q,) = queues.parse((_row(**props),))
    assert (q.incoming_rate, q.outgoing_rate, q.velocity) == rates


@pytest.mark.parametrize(
    ("props", "stuck"),
    [
        ({"OutgoingRate": 0.0, "Velocity": 0.0}, True),  # nothing in, nothing out, messages wait
        ({"OutgoingRate": 0.0}, True),  # no Velocity shown: OutgoingRate 0 is enough
        ({"OutgoingRate": 0.5, "Velocity": -0.1}, False),  # messages leave, just slower than they come
        ({"OutgoingRate": 0.0, "Velocity": 0.2}, False),  # draining by the rate Exchange computed
        ({}, False),  # no rates: not judged
        ({"OutgoingRate": 0.0, "MessageCount": 0}, False),  # empty
        ({"OutgoingRate": 0.0, "Status": "Retry"}, False),  # Retry is failing_dns's business
        ({"OutgoingRate": 0.0, "LastError": "421 4.2.1 Unable to connect"}, False),  # another fault
        ({"OutgoingRate": 0.0, "LastError": "451 4.4.0 DNS query failed. The error was: DNS query failed "
          "with error ErrorTimeout"}, False),  # a DNS LastError: failing_dns already counts it
    ],
)  # fmt: skip
def test_stuck_needs_messages_no_error_nothing_going_out(props: dict[str, object], stuck: bool) -> None:
    (q,) = queues.parse((_row(**props),))
    assert q.stuck_in_ready is stuck
