"""The host-side DNS probe: Resolve-DnsName run on the Exchange server against each DNS server
it is configured with, so exfix sees DNS the way the host's transport does.

Every configured server (NIC and transport) is asked three things:

- the AD domain controllers' SRV record ``_ldap._tcp.dc._msdcs.<AD domain>``: a server that
  cannot answer it cannot serve an Exchange host (a public resolver on the NIC answers
  NXDOMAIN for the AD zone: "Bad NIC Settings Cause Internal Messages to Queue with 451 4.4.0
  DNS query failed (nonexistent domain)", exchangemaster.wordpress.com, 2014-04-15);
- an internal Exchange host's A record (by default the host's own FQDN, which also tells which
  address its A record points to, for choosing the MAPI NIC);
- a public name's MX record: a server used for external lookups must resolve internet names
  ("451 4.4.0 DNS query failed Exchange Server error in message queue", "Error occurs when you
  send email to all remote domains": https://learn.microsoft.com/en-us/troubleshoot/exchange/mailflow/dns-query-failed).

``-DnsOnly`` keeps NetBIOS/LLMNR and the hosts file out of the answer, ``-QuickTimeout`` keeps
an unreachable server from holding the host for the full retry schedule.

A failed lookup comes back as an ErrorRecord whose FullyQualifiedErrorId names the Windows
error, e.g. ``DNS_ERROR_RCODE_NAME_ERROR,Microsoft.DnsClient.Commands.ResolveDnsName``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from agent.collect import _values as v
from agent.model import dns_servers
from agent.model.command import SWITCH, CmdletCall, Endpoint
from agent.model.facts import ProbeTargets
from agent.model.probe import DnsQueryResult, Outcome, Vantage
from agent.model.remote import RemoteObject

CMDLET = "Resolve-DnsName"

# Windows error names in FullyQualifiedErrorId, and what they mean for the query.
_ERROR_IDS: tuple[tuple[str, Outcome], ...] = (
    ("DNS_ERROR_RCODE_NAME_ERROR", Outcome.NXDOMAIN),
    ("DNS_ERROR_RCODE_SERVER_FAILURE", Outcome.SERVFAIL),
    ("DNS_ERROR_RCODE_REFUSED", Outcome.REFUSED),
    ("DNS_INFO_NO_RECORDS", Outcome.NODATA),
    ("DNS_ERROR_RECORD_DOES_NOT_EXIST", Outcome.NODATA),
    ("ERROR_TIMEOUT", Outcome.TIMEOUT),
    ("WSAETIMEDOUT", Outcome.TIMEOUT),
    ("DNS_ERROR_TIMEOUT", Outcome.TIMEOUT),
)
# Message texts of the same errors, for error records that lost their id on the way.
_ERROR_TEXTS: tuple[tuple[str, Outcome], ...] = (
    ("dns name does not exist", Outcome.NXDOMAIN),
    ("server failure", Outcome.SERVFAIL),
    ("refused", Outcome.REFUSED),
    ("no records", Outcome.NODATA),
    ("timeout period expired", Outcome.TIMEOUT),
    ("timed out", Outcome.TIMEOUT),
)
_RECORD_TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV"}
_ANSWER_SECTION = {"answer", "1"}


class ErrorLike(Protocol):
    """An error record as the transport reports it (agent.model.remote.RemoteError)."""

    @property
    def message(self) -> str: ...

    @property
    def fully_qualified_error_id(self) -> str | None: ...


def probe_call(server: str, qname: str, rdtype: str) -> CmdletCall:
    return CmdletCall(
        Endpoint.OS,
        CMDLET,
        (
            ("Name", qname),
            ("Type", rdtype),
            ("Server", server),
            ("DnsOnly", SWITCH),
            ("QuickTimeout", SWITCH),
        ),
    )


def calls(targets: ProbeTargets, servers: Iterable[str]) -> tuple[CmdletCall, ...]:
    """The three standard questions for every configured server (agent/model/dns_servers.py:
    repeats, empty entries and Windows' placeholders are not asked), order kept."""
    out = []
    for server in dns_servers.configured(servers):
        out.append(probe_call(server, targets.ad_srv, "SRV"))
        out.append(probe_call(server, targets.internal_host, "A"))
        out.append(probe_call(server, targets.public_name, "MX"))
    return tuple(out)


def remote_domain_calls(domain: str, servers: Iterable[str]) -> tuple[CmdletCall, ...]:
    """MX, A and AAAA of a remote domain that fails in the queues."""
    return tuple(
        probe_call(server, domain, rdtype)
        for server in dns_servers.configured(servers)
        for rdtype in ("MX", "A", "AAAA")
    )


def mx_host_calls(mx_host: str, servers: Iterable[str]) -> tuple[CmdletCall, ...]:
    """A and AAAA of a remote domain's mail exchanger (second round, after its MX answered)."""
    return tuple(
        probe_call(server, mx_host, rdtype)
        for server in dns_servers.configured(servers)
        for rdtype in ("A", "AAAA")
    )


def _absolute(name: str) -> str:
    name = name.strip()
    return name if name.endswith(".") or not name else name + "."


def _record_type(obj: RemoteObject) -> str:
    value = obj.get("Type") if obj.get("Type") is not None else obj.get("QueryType")
    number = v.integer(value)
    if number is not None:
        return _RECORD_TYPES.get(number, str(number))
    return v.text(value).strip().upper()


def _record_text(obj: RemoteObject, rdtype: str) -> str:
    """Zone-file text of one answer record, as the lab and the orchestrator probe write it."""
    if rdtype in ("A", "AAAA"):
        for name in ("IPAddress", "IP4Address", "IP6Address", "Address"):
            found = v.text(obj.get(name)).strip()
            if found:
                return found
        return ""
    if rdtype == "MX":
        return f"{v.integer(obj.get('Preference'), 0)} {_absolute(v.text(obj.get('NameExchange')))}"
    if rdtype == "SRV":
        return (
            f"{v.integer(obj.get('Priority'), 0)} {v.integer(obj.get('Weight'), 0)} "
            f"{v.integer(obj.get('Port'), 0)} {_absolute(v.text(obj.get('NameTarget')))}"
        )
    if rdtype in ("CNAME", "PTR", "NS"):
        return _absolute(v.text(obj.get("NameHost")))
    return v.text(obj.to_string) or v.text(obj.get("Strings"))


def _error_outcome(fqid: str, message: str) -> Outcome:
    head = fqid.split(",", 1)[0].strip().upper()
    for name, outcome in _ERROR_IDS:
        if head == name:
            return outcome
    lowered = message.lower()
    for phrase, outcome in _ERROR_TEXTS:
        if phrase in lowered:
            return outcome
    return Outcome.ERROR


def _error_fields(error: Any) -> tuple[str, str]:
    """(FullyQualifiedErrorId, message) of a RemoteError-like value or a deserialized ErrorRecord."""
    if isinstance(error, RemoteObject):
        fqid = v.text(error.get("FullyQualifiedErrorId"))
        exception = error.get("Exception")
        message = v.text(error.get("Message")) or v.text(exception) or v.text(error.to_string)
        return fqid, message
    fqid = getattr(error, "fully_qualified_error_id", None) or ""
    message = getattr(error, "message", None) or ""
    return str(fqid), str(message)


def _is_error_record(obj: RemoteObject) -> bool:
    return v.type_matches(obj, "System.Management.Automation.ErrorRecord") or (
        obj.get("FullyQualifiedErrorId") is not None and obj.get("Section") is None
    )


def parse(
    call: CmdletCall,
    results: tuple[RemoteObject, ...],
    errors: tuple[ErrorLike | RemoteObject, ...] = (),
    *,
    elapsed_ms: float | None = None,
    attempt: int = 1,
) -> DnsQueryResult:
    """One Resolve-DnsName call's outcome. Never raises for odd output: unknown errors are
    ``Outcome.ERROR`` with the message as detail."""
    server = v.text(call.param("Server"))
    qname = v.text(call.param("Name"))
    rdtype = v.text(call.param("Type")).upper()
    all_errors: list[Any] = list(errors)
    answers: list[RemoteObject] = []
    for obj in v.objects(results):
        if _is_error_record(obj):
            all_errors.append(obj)
        else:
            answers.append(obj)

    records = []
    for obj in answers:
        section = v.text(obj.get("Section")).strip().lower()
        if section and section not in _ANSWER_SECTION:
            continue  # the SOA in Authority that comes with NODATA, glue in Additional
        if _record_type(obj) == rdtype:
            text = _record_text(obj, rdtype)
            if text:
                records.append(text)

    def result(outcome: Outcome, detail: str = "") -> DnsQueryResult:
        return DnsQueryResult(
            vantage=Vantage.HOST,
            server=server,
            queried=server,
            qname=qname,
            rdtype=rdtype,
            outcome=outcome,
            records=v.unique(records),
            detail=detail,
            elapsed_ms=elapsed_ms,
            attempt=attempt,
        )

    if records:
        return result(Outcome.ANSWER)
    if all_errors:
        fqid, message = _error_fields(all_errors[0])
        detail = fqid.split(",", 1)[0].strip() or message.strip()
        return result(_error_outcome(fqid, message), " ".join(detail.split())[:300])
    return result(Outcome.NODATA)
