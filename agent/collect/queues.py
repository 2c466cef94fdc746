"""Get-Queue: the transport queues, and their LastError parsed and classified.

LastError comes in two forms:

- plain: ``451 4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain;
  nonexistent domain`` or ``4.4.0 DNS query failed. The error was: DNS query failed with
  error ErrorRetry``;
- structured, from Exchange 2013 on: ``[{LRT=<time>};{LED=<the error text>};{FQDN=<host>};
  {IP=<address>}]``.

Both are parsed case-insensitively. LastError is text a remote party influenced (a remote
server's SMTP reply can end up in it), so the parser is total: any string gives a result and
nothing in it is ever evaluated.
"""

from __future__ import annotations

import math
import re

from agent.collect import _values as v
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import QueueError, QueueErrorKind, QueueFacts
from agent.model.remote import RemoteObject

# LastError can be long (it quotes remote replies); nothing useful lies beyond this.
_MAX_PARSE = 8192

_FIELD = re.compile(r"\{\s*([A-Za-z]+)\s*=(.*?)\}\s*(?=;\s*\{|\]\s*$|$)", re.DOTALL)
_DNS_FAILED = re.compile(r"dns\s+query\s+failed", re.IGNORECASE)
_SMTPSEND_DNS = re.compile(r"smtpsend\.dns\.([a-z0-9_]+)", re.IGNORECASE)
_FAILED_WITH = re.compile(r"failed\s+with\s+error\s+([a-z0-9_]+)", re.IGNORECASE)
_NXDOMAIN_TEXT = re.compile(r"non-?existent\s+domain", re.IGNORECASE)
_STATUS = re.compile(r"\b([245]\d\d)[ -]([245]\.\d{1,3}\.\d{1,3})\b")
_ENHANCED = re.compile(r"\b([45]\.\d{1,3}\.\d{1,3})\b")

# The DNS error codes Exchange writes, lower-cased, and their class.
_CODES = {
    "errorretry": QueueErrorKind.ERROR_RETRY,
    "nonexistentdomain": QueueErrorKind.NON_EXISTENT_DOMAIN,
    "serverfailure": QueueErrorKind.SERVER_FAILURE,
    "errortimeout": QueueErrorKind.ERROR_TIMEOUT,
    "timeout": QueueErrorKind.ERROR_TIMEOUT,
    # ErrorDnsQueryFailed is what transport reports when the servers it asked could not
    # resolve the name at all, the typical result of internal DNS without forwarders asked
    # for an internet name (cause 3 of "Error 451 4.4.0: DNS Query Failed - Fix Guide 2025",
    # https://medhacloud.com/blog/error-451-440-dns-query-failed, which shows this LastError;
    # "Error occurs when you send email to all remote domains" in Microsoft's "451 4.4.0 DNS
    # query failed Exchange Server error in message queue"). The servers answered with a
    # failure, so it belongs with ServerFailure rather than with the timeouts.
    "errordnsqueryfailed": QueueErrorKind.SERVER_FAILURE,
}


def calls(server: str) -> tuple[CmdletCall, ...]:
    """Every queue on the server. (-Server cannot be combined with -Identity.)"""
    return (CmdletCall(Endpoint.EXCHANGE, "Get-Queue", (("Server", server),)),)


def _structured_fields(text: str) -> dict[str, str]:
    body = text.strip()
    if not (body.startswith("[") and "{" in body):
        return {}
    fields: dict[str, str] = {}
    for match in _FIELD.finditer(body):
        fields.setdefault(match.group(1).upper(), match.group(2).strip())
    return fields


def _classify(description: str) -> tuple[QueueErrorKind, str]:
    """(class, the code as written) of an error description."""
    smtpsend = _SMTPSEND_DNS.search(description)
    failed_with = _FAILED_WITH.search(description)
    if not (_DNS_FAILED.search(description) or smtpsend):
        return QueueErrorKind.NOT_DNS, ""
    if smtpsend is not None:
        code = smtpsend.group(0)
        return _CODES.get(smtpsend.group(1).lower(), QueueErrorKind.OTHER_DNS), code
    if failed_with is not None:
        code = failed_with.group(1)
        return _CODES.get(code.lower(), QueueErrorKind.OTHER_DNS), code
    if _NXDOMAIN_TEXT.search(description):
        return QueueErrorKind.NON_EXISTENT_DOMAIN, ""
    return QueueErrorKind.OTHER_DNS, ""


def _code_text(match: re.Match[str]) -> str:
    return " ".join(match.groups())


def _status_code(description: str) -> str:
    """The SMTP status of the DNS failure ("451 4.4.0"). An LED can hold several replies
    ("450 4.7.0 ... 451 4.4.0 DNS query failed ..."): the one just before the DNS failure wins."""
    anchor = _DNS_FAILED.search(description)
    if anchor is not None:
        head = description[: anchor.start()]
        for pattern in (_STATUS, _ENHANCED):
            found = list(pattern.finditer(head))
            if found:
                return _code_text(found[-1])
    for pattern in (_STATUS, _ENHANCED):
        first = pattern.search(description)
        if first is not None:
            return _code_text(first)
    return ""


def parse_last_error(value: object) -> QueueError:
    """A LastError in either form, classified. Never raises."""
    raw = v.text(value)
    if not raw.strip():
        return QueueError(raw=raw, kind=QueueErrorKind.NONE)
    text = raw[:_MAX_PARSE]
    fields = _structured_fields(text)
    description = fields.get("LED", text) if fields else text
    kind, code = _classify(description)
    if fields and kind is QueueErrorKind.NOT_DNS and description is not text:
        # A structured LastError whose LED says nothing of DNS may still name it elsewhere.
        kind, code = _classify(text)
    return QueueError(
        raw=raw,
        kind=kind,
        dns_code=code,
        status_code=_status_code(description),
        last_retry_time=fields.get("LRT", ""),
        description=description.strip(),
        target_fqdn=fields.get("FQDN", ""),
        target_ip=fields.get("IP", ""),
    )


def parse_queue(obj: RemoteObject) -> QueueFacts:
    return QueueFacts(
        identity=v.text(obj.get("Identity")) or v.text(obj.to_string),
        delivery_type=v.text(obj.get("DeliveryType")),
        status=v.text(obj.get("Status")),
        message_count=v.integer(obj.get("MessageCount"), 0) or 0,
        next_hop_domain=v.text(obj.get("NextHopDomain")),
        next_hop_category=v.text(obj.get("NextHopCategory")),
        next_hop_connector=v.text(obj.get("NextHopConnector")),
        last_error=parse_last_error(obj.get("LastError")),
        incoming_rate=_rate(obj.get("IncomingRate")),
        outgoing_rate=_rate(obj.get("OutgoingRate")),
        velocity=_rate(obj.get("Velocity")),
        first_retry_time=v.text(obj.get("FirstRetryTime")),
        last_retry_time=v.text(obj.get("LastRetryTime")),
        retry_count=v.integer(obj.get("RetryCount"), 0) or 0,
    )


def _rate(value: object) -> float | None:
    """A Double rate as it arrives (a number, or its text in the invariant culture); None
    when the property is absent or unreadable, so that "not shown" never reads as 0."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        try:
            number = float(v.text(value).strip())
        except ValueError:
            return None
    return number if math.isfinite(number) else None


def parse(results: tuple[RemoteObject, ...]) -> tuple[QueueFacts, ...]:
    """Every queue row, in the order Get-Queue returned them."""
    return tuple(parse_queue(obj) for obj in v.objects(results))
