"""The IO loop around the step machine (agent/apply/execute.py), on a fake connection and a real
journal file: it performs each command and reports what happened (a transport failure, an
exception, a KeyboardInterrupt, the cancel flag), and it writes the journal records in the
format the journal documents."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agent.apply._context import Recorder
from agent.apply.execute import run_host, undo
from agent.apply.journal import Journal, JournalEntry
from agent.apply.results import HostOutcome, StepStatus
from agent.apply.steps import UndoItem
from agent.errors import UnreachableError
from agent.model.command import CmdletCall
from agent.model.remote import RemoteObject
from agent.transport.base import CommandResult
from apply._steps_support import A1, A2, A3, host_plan

HOST = "ex01.contoso.local"


class FakeConnection:
    """Get-* returns every property; Set-* sets the parameters it is given; Restart-Service
    starts the service. ``fail`` maps (cmdlet, n-th call on any connection) to what to raise."""

    def __init__(self, world: FakeWorld) -> None:
        self.world = world
        self.closed = False

    def invoke(self, call: CmdletCall, *, timeout: float | None = None) -> CommandResult:
        assert not self.closed, "a closed connection was used"
        world = self.world
        world.calls[call.cmdlet] += 1
        world.sent.append(call.cmdlet)
        failure = world.fail.get((call.cmdlet, world.calls[call.cmdlet]))
        if failure is not None:
            raise failure
        if call.cmdlet.startswith("Get-"):
            return CommandResult(objects=(RemoteObject(("Fake",), dict(world.values)),))
        if call.cmdlet == "Restart-Service":
            world.values["Status"] = "Running"
        else:
            for name, value in call.parameters:
                if name != "Identity":
                    world.values[name] = () if value is None else value
        return CommandResult()

    def close(self) -> None:
        self.closed = True


class FakeWorld:
    def __init__(self, fail: dict[tuple[str, int], BaseException] | None = None) -> None:
        self.values: dict[str, Any] = {
            "ExternalDNSAdapterEnabled": True, "ExternalDNSServers": (),
            "UseExternalDNSServersEnabled": False, "Status": "Running",
        }  # fmt: skip
        self.initial = dict(self.values)
        self.fail = fail or {}
        self.calls: Counter[str] = Counter()
        self.sent: list[str] = []
        self.connections: list[FakeConnection] = []

    def connect(self) -> FakeConnection:
        conn = FakeConnection(self)
        self.connections.append(conn)
        return conn


def _recorder(path: Path, on_event: Any = None) -> tuple[Recorder, Journal]:
    journal = Journal(path)
    return Recorder(journal, "run1", "tester", None, "d" * 64, on_event, threading.Event()), journal


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="ascii").splitlines()]


def _phases(path: Path) -> list[tuple[Any, ...]]:
    return [(r["phase"], (r["action"] or "-")[:2], r["result"]) for r in _lines(path)]


def test_a_clean_run_writes_the_journal_as_documented(tmp_path: Path) -> None:
    world = FakeWorld()
    rec, journal = _recorder(tmp_path / "j.jsonl")
    with journal:
        result = run_host(rec, host_plan(), world.connect)  # type: ignore[arg-type]
    assert result.outcome is HostOutcome.DONE
    assert world.sent == ["Get-TransportService", "Set-TransportService", "Get-TransportService",
                          "Get-SendConnector", "Set-SendConnector", "Get-SendConnector",
                          "Get-Service", "Restart-Service", "Get-Service"]  # fmt: skip
    assert len(world.connections) == 1 and world.connections[0].closed
    lines = _lines(tmp_path / "j.jsonl")
    before, started, ok, verify = lines[:4]
    core = ["schema", "time", "run", "operator", "ticket", "plan_digest", "host", "action", "phase", "result"]
    assert list(before) == [*core, "before", "detail"]
    assert before["before"] == {"ExternalDNSAdapterEnabled": True, "ExternalDNSServers": []}
    assert before["detail"]["rollback"][0]["cmdlet"] == "Set-TransportService"
    assert list(started) == [*core, "call"] and started["call"]["cmdlet"] == "Set-TransportService"
    assert list(ok) == core
    assert list(verify) == [*core, "after"]
    assert verify["after"] == {"ExternalDNSAdapterEnabled": False, "ExternalDNSServers": ["8.8.8.8"]}
    assert all(r["host"] == HOST for r in lines)


def test_a_transport_failure_is_reported_and_the_undo_runs_on_a_new_connection(tmp_path: Path) -> None:
    world = FakeWorld({("Set-SendConnector", 1): UnreachableError(HOST, "connection reset")})
    rec, journal = _recorder(tmp_path / "j.jsonl")
    with journal:
        result = run_host(rec, host_plan(), world.connect)  # type: ignore[arg-type]
    assert result.outcome is HostOutcome.ROLLED_BACK and result.error == f"{HOST}: connection reset"
    assert len(world.connections) == 2 and all(c.closed for c in world.connections)
    phases = _phases(tmp_path / "j.jsonl")
    assert phases[phases.index(("execute", "02", "failed")):] == [
        ("execute", "02", "failed"), ("rollback", "02", "unchanged"), ("rollback", "01", "started"),
        ("rollback", "01", "ok"), ("rollback-verify", "01", "ok"),
    ]
    assert world.values == world.initial


def test_an_unexpected_exception_from_the_transport_counts_as_a_broken_connection(tmp_path: Path) -> None:
    world = FakeWorld({("Get-SendConnector", 1): RuntimeError("pool in a bad state")})
    rec, journal = _recorder(tmp_path / "j.jsonl")
    with journal:
        result = run_host(rec, host_plan(), world.connect)  # type: ignore[arg-type]
    assert result.outcome is HostOutcome.ROLLED_BACK
    assert result.error == "RuntimeError: pool in a bad state"
    assert len(world.connections) == 2 and world.values == world.initial


def test_a_keyboard_interrupt_during_the_call_sets_the_cancel_flag_and_undoes(tmp_path: Path) -> None:
    world = FakeWorld({("Set-SendConnector", 1): KeyboardInterrupt()})
    rec, journal = _recorder(tmp_path / "j.jsonl")
    with journal:
        result = run_host(rec, host_plan(), world.connect)  # type: ignore[arg-type]
    assert rec.cancel.is_set()
    assert result.outcome is HostOutcome.ROLLED_BACK and result.interrupted
    statuses = [s.status for s in result.steps]
    assert statuses == [StepStatus.ROLLED_BACK, StepStatus.UNCHANGED, StepStatus.NOT_RUN]
    assert ("interrupted", "-", "stopping") in _phases(tmp_path / "j.jsonl")
    assert world.values == world.initial


def test_the_cancel_flag_is_read_after_each_command(tmp_path: Path) -> None:
    cancel_on = ("before", "02-use-external-dns-on-connector")

    def on_event(entry: JournalEntry) -> None:
        if (entry.phase, entry.action) == cancel_on:
            rec.cancel.set()

    world = FakeWorld()
    rec, journal = _recorder(tmp_path / "j.jsonl", on_event)
    with journal:
        result = run_host(rec, host_plan(), world.connect)  # type: ignore[arg-type]
    assert result.interrupted and "Set-SendConnector" not in world.sent
    assert world.values == world.initial


def test_a_journal_that_cannot_be_written_stops_the_host_and_closes_the_connection(tmp_path: Path) -> None:
    def on_event(entry: JournalEntry) -> None:
        if entry.phase == "verify":
            raise OSError(28, "No space left on device")

    world = FakeWorld()
    rec, journal = _recorder(tmp_path / "j.jsonl", on_event)
    with journal, pytest.raises(OSError):
        run_host(rec, host_plan(), world.connect)  # type: ignore[arg-type]
    assert world.connections[0].closed and world.sent.count("Set-SendConnector") == 0


def test_undo_drives_the_same_machine_for_exfix_rollback(tmp_path: Path) -> None:
    world = FakeWorld()
    world.values.update(ExternalDNSAdapterEnabled=False, ExternalDNSServers=("8.8.8.8",))
    items = [UndoItem(A1.id, A1.kind, A1.read_back, A1.changes, A1.rollback,
                      (("ExternalDNSAdapterEnabled", True), ("ExternalDNSServers", ())), True),
             UndoItem(A2.id, A2.kind, A2.read_back, A2.changes, A2.rollback,
                      (("UseExternalDNSServersEnabled", False),), False),
             UndoItem(A3.id, A3.kind, A3.read_back, A3.changes, A3.rollback, (("Status", "Running"),),
                      False)]  # fmt: skip
    rec, journal = _recorder(tmp_path / "j.jsonl")
    with journal:
        done = undo(rec, HOST, items, world.connect)  # type: ignore[arg-type]
    assert [(s.action[:2], s.status) for s in done.steps] == [
        ("03", StepStatus.NO_UNDO), ("02", StepStatus.UNCHANGED), ("01", StepStatus.ROLLED_BACK),
        ("ro", StepStatus.ROLLED_BACK)]  # fmt: skip
    assert world.sent[-2:] == ["Restart-Service", "Get-Service"]  # the closing restart
    assert world.values == world.initial
