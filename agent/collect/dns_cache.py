"""Get-DnsClientCache: the DNS Client service's cache on the host (MSFT_DNSClientCache).

Each row is one cached record or one negative answer. Get-DnsClientCache documents the
properties Entry (the name asked for), Name (alias RecordName: the owner of the record), Type,
Status, Section, TimeToLive, DataLength and Data (learn.microsoft.com: Get-DnsClientCache; the
MSFT_DNSClientCache class). Over CIM, Type and Status arrive as numbers (uint16 and uint32),
while a capture made through the cmdlet's format may show their names ("A", "NotExist"): both
are read. Status is the Win32 status of the answer (agent/model/facts.py DNS_STATUS_*).

A row exfix cannot read (no entry name, or a type or status it cannot make a number of) is
output that cannot be used: the area fails alone, with the reason (agent/collect/runner.py).
"""

from __future__ import annotations

from agent.collect import _values as v
from agent.errors import UnusableOutputError
from agent.model.command import CmdletCall, Endpoint
from agent.model.facts import DNS_RECORD_TYPES, DNS_STATUS_WORDS, DnsCacheEntry
from agent.model.remote import RemoteObject

CMDLET = "Get-DnsClientCache"

_TYPE_NUMBERS = {name.lower(): number for number, name in DNS_RECORD_TYPES.items()}
_STATUS_NUMBERS = {word.lower(): number for number, word in DNS_STATUS_WORDS.items()}


def calls() -> tuple[CmdletCall, ...]:
    return (CmdletCall(Endpoint.OS, CMDLET),)


def _number(value: object, words: dict[str, int]) -> int | None:
    number = v.integer(value)
    if number is not None:
        return number
    return words.get(v.text(value).strip().lower())


def parse(results: tuple[RemoteObject, ...], *, host: str) -> tuple[DnsCacheEntry, ...]:
    """The cache rows, in the order the host listed them. UnusableOutputError for a row that
    names no entry or whose Type or Status is neither a number nor a known name."""
    out: list[DnsCacheEntry] = []
    for obj in v.objects(results):
        entry = v.text(obj.get("Entry")).strip()
        name = v.text(obj.get("Name")).strip() or v.text(obj.get("RecordName")).strip()
        if not entry and not name:
            raise UnusableOutputError(host, CMDLET, "a cache row names no Entry")
        record_type = _number(obj.get("Type"), _TYPE_NUMBERS)
        status = _number(obj.get("Status"), _STATUS_NUMBERS)
        if record_type is None or status is None:
            what = "Type" if record_type is None else "Status"
            problem = f"the cache row for {entry or name!r} has no readable {what}"
            raise UnusableOutputError(host, CMDLET, problem)
        out.append(
            DnsCacheEntry(
                entry=entry or name,
                name=name or entry,
                record_type=record_type,
                status=status,
                time_to_live=v.integer(obj.get("TimeToLive"), 0) or 0,
                data=v.text(obj.get("Data")).strip(),
                section=v.integer(obj.get("Section"), 1) or 1,
            )
        )
    return tuple(out)
