"""The journal file (append-only, one object per line, torn last line) and read-back
normalisation, without a lab."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.apply.journal import Journal, JournalEntry, read_journal
from agent.apply.readback import differences, property_value, same, state_from_result
from agent.errors import CmdletError, FactsFileError
from agent.model.command import CmdletCall, Endpoint
from agent.model.plan import Change
from agent.model.remote import RemoteError, RemoteObject
from agent.transport.base import CommandResult


def _entry(phase: str, host: str | None = "ex01", **extra: object) -> JournalEntry:
    return JournalEntry(
        "2025-01-01T00:00:00+00:00", "r1", "op", None, "d" * 64, host, None, phase, "ok", extra
    )


def test_the_journal_appends_whole_lines_and_never_truncates(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal(path) as journal:
        journal.write(_entry("start", None))
    with Journal(path) as journal:  # a second run appends
        journal.write(_entry("before", before={"Name": "x\n\u202e$(evil)"}))
    raw = path.read_bytes()
    assert raw.isascii() and raw.count(b"\n") == 2
    entries = read_journal(path)
    assert [e.phase for e in entries] == ["start", "before"]
    assert entries[1].get("before") == {"Name": "x\n\u202e$(evil)"}
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_torn_last_line_is_ignored_but_a_bad_line_in_the_middle_is_not(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    good = json.dumps(_entry("start", None).to_dict())
    path.write_text(good + "\n" + good[:20], encoding="ascii")
    assert len(read_journal(path)) == 1
    path.write_text(good[:20] + "\n" + good + "\n", encoding="ascii")
    with pytest.raises(FactsFileError) as caught:
        read_journal(path)
    assert caught.value.line == 1


def test_server_lists_join_address_families_ipv4_first_without_placeholders() -> None:
    change = Change("ServerAddresses", ("10.0.0.10", "8.8.8.8"), ("10.0.0.10",))
    cim = ("MSFT_DNSClientServerAddress",)
    objects = [
        RemoteObject(cim, {"AddressFamily": 23, "ServerAddresses": ("fec0:0:0:ffff::1",)}),
        RemoteObject(cim, {"AddressFamily": 2, "ServerAddresses": ["10.0.0.10"]}),
    ]
    assert property_value(objects, change) == ("10.0.0.10",)


def test_representation_differences_are_not_differences() -> None:
    assert property_value([RemoteObject(("T",), {"SmartHosts": ("[203.0.113.10]",)})],
                          Change("SmartHosts", None, ("203.0.113.10",))) == ("203.0.113.10",)  # fmt: skip
    assert (
        property_value([RemoteObject(("T",), {"Enabled": "False"})], Change("Enabled", True, False)) is False
    )
    assert (
        property_value([RemoteObject(("T",), {"Status": 4})], Change("Status", None, "Running")) == "Running"
    )
    assert same((), None) and same("EX01", "ex01") and not same(("a", "b"), ("b", "a"))
    assert not same(False, None) and not same(0, False)


def test_a_missing_object_reads_as_absent_and_other_errors_raise() -> None:
    call = CmdletCall(Endpoint.EXCHANGE, "Get-SendConnector", (("Identity", "x"),))
    changes = (Change("Name", None, "x"),)
    missing = CommandResult(errors=(RemoteError("couldn't be found", "ManagementObjectNotFoundException,X"),))
    state = state_from_result("ex01", call, changes, missing)
    assert not state.present and not differences((("Name", None),), state)
    denied = CommandResult(errors=(RemoteError("Access denied", "AccessDenied,X", "PermissionDenied"),))
    with pytest.raises(CmdletError):
        state_from_result("ex01", call, changes, denied)
