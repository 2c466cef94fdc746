"""exfix.journal/5: the restart gate's records are written and read, and a journal that still
holds /4 records (an older exfix's runs) reads as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.apply import Journal, JournalEntry, read_journal
from agent.apply.journal import SCHEMA, SCHEMAS
from agent.errors import FactsFileError


def _entry(phase: str, result: str, **extra: object) -> JournalEntry:
    return JournalEntry(time="2026-12-01T20:00:00.000000+00:00", run="r1", operator="tester", ticket=None,
                        plan_digest="0" * 64, host="ex01.contoso.local", action="03-restart-transport",
                        phase=phase, result=result, extra=extra)  # fmt: skip


def test_gate_records_are_journal_5_and_older_records_still_read(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    older = {**_entry("execute", "started").to_dict(), "schema": "exfix.journal/4", "action": "01-x"}
    path.write_text(json.dumps(older) + "\n", encoding="ascii")
    with Journal(path) as journal:
        journal.write(_entry("gate", "waiting", detail={"executed": ["01-x"]}))
        journal.write(_entry("gate", "stopped", error="the run stopped before its restart (interrupted)"))
    assert SCHEMA == "exfix.journal/6" and {"exfix.journal/4", "exfix.journal/5"} <= SCHEMAS
    read = read_journal(path)
    expected = [("execute", "started"), ("gate", "waiting"), ("gate", "stopped")]
    assert [(e.phase, e.result) for e in read] == expected
    assert read[1].get("detail") == {"executed": ["01-x"]}
    assert json.loads(path.read_text(encoding="ascii").splitlines()[1])["schema"] == SCHEMA


def test_a_record_of_an_unknown_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text(json.dumps({**_entry("gate", "open").to_dict(), "schema": "exfix.journal/7"}) + "\n",
                    encoding="ascii")  # fmt: skip
    with pytest.raises(FactsFileError, match="or /1 to /5"):
        read_journal(path)
