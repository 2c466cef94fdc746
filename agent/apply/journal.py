"""The apply journal: an append-only JSONL audit of every step apply and rollback take.

One JSON object per line (``"schema": "exfix.journal/6"``; /1 to /5 records are still read), written
with ``O_APPEND`` and flushed to disk (``fsync``) before apply goes on, so that after a crash,
a kill or a power cut the journal still says what was about to happen to a host and what did.
A mutation is journaled twice: ``execute``/``started`` *before* the call is sent and
``execute``/``ok`` or ``failed`` after it; a ``started`` without an outcome means "may have
run", and ``exfix rollback`` treats it so (it reads the property first and undoes only what
changed).

Every record has these keys (null where they do not apply)::

    schema        "exfix.journal/6"
    time          UTC, ISO 8601 with microseconds ("2025-01-15T10:00:00.123456+00:00")
    run           id of the apply (or rollback) run that wrote the record
    operator      --operator, or the local user name
    ticket        --ticket, or null
    plan_digest   the digest of the plan being applied ("" in the records of a hold written
                  before its plan exists: ``hold`` and its ``lock`` records)
    host          the inventory name of the host, or null for run-wide records
    action        the plan's action id ("01-set-nic-dns-servers"), or null
    phase         hold | start | refused | lock | stale-check | manual | before | execute | verify |
                  gate | interrupted | rollback | rollback-verify | host | organization |
                  queues | unlock | end
    result        what happened (per phase: see agent/apply/__init__.py)

and, where they apply: ``before`` / ``after`` (property -> value), ``call`` (the structured
command), ``error`` (one line), ``undoes`` (the apply run a rollback record belongs to) and
``detail`` (phase-specific data). No credential is ever written: records are built from plan
values, read-back values and error messages, and no API here takes a credential.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from agent.errors import FactsFileError
from agent.review.files import owned_file

SCHEMA = "exfix.journal/6"
# /2 adds the phase "organization" (an organisation unit's outcome, after its steps); /3 adds
# "lock" (acquired | broken | refused: the host's change marker, agent/apply/lock.py) and
# "unlock" (released | not-ours | failed). /4: the "queues" verified | not-verified record's
# detail also has "probes" (the lookups re-run on the host) and "tracking" (the SEND events per
# next hop), each check with its status (agent/apply/symptom.py). /5 adds the phase "gate"
# (waiting | open | stopped: a host with a restart before its first disruptive execute, waiting
# for its restart slot; agent/apply/steps.py). /6 adds the phase "hold" (taken: a run that
# holds its hosts before it collects and plans them, agent/apply/hold.py; its records until
# the start have plan_digest ""), the lock result "failed" (a host such a hold could not reach:
# not held), the end of a hold no apply used (detail "applied": false), and "held_since" in
# the start and in a stale-check detail whose facts were collected under the hold ("facts":
# "reused"). Every other record is as in /1; /1 to /5 are still read (a journal may hold
# records of all of them).
SCHEMAS = frozenset(
    {"exfix.journal/1", "exfix.journal/2", "exfix.journal/3", "exfix.journal/4", "exfix.journal/5", SCHEMA}
)

PHASES = frozenset(
    {
        "hold", "start", "refused", "stale-check", "manual", "before", "execute", "verify", "gate",
        "interrupted", "rollback", "rollback-verify", "host", "organization", "queues", "end", "lock",
        "unlock",
    }
)  # fmt: skip


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journal record, as written. ``extra`` holds the optional keys (before, after, call,
    error, undoes, detail)."""

    time: str
    run: str
    operator: str
    ticket: str | None
    plan_digest: str
    host: str | None
    action: str | None
    phase: str
    result: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.extra.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "time": self.time,
            "run": self.run,
            "operator": self.operator,
            "ticket": self.ticket,
            "plan_digest": self.plan_digest,
            "host": self.host,
            "action": self.action,
            "phase": self.phase,
            "result": self.result,
        }
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out


class Journal:
    """An open journal file. Thread-safe: hosts applied at once write whole lines each.

    ``write`` returns only after the line is on disk. The file is created 0600 (it names
    hosts and settings of the organisation), never truncated, never rewritten, and never
    opened through a symbolic link (UnsafePathError, exit 1).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # Never through a link (agent/review/files.py): a journal.jsonl planted in a shared plan
        # directory as a link to a file the operator can write must not get audit lines.
        directory, name = owned_file(self.path)
        with directory:
            self._fd: int | None = directory.open_append(name, mode=0o600)

    def write(self, entry: JournalEntry) -> None:
        line = json.dumps(entry.to_dict(), ensure_ascii=True, sort_keys=False, allow_nan=False, default=str)
        data = (line + "\n").encode("ascii")
        with self._lock:
            if self._fd is None:
                raise ValueError(f"journal {self.path} is closed")
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
            os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_journal(path: str | os.PathLike[str]) -> tuple[JournalEntry, ...]:
    """Every record of a journal file, in order. Raises FactsFileError (exit 1) naming the line
    for a line that is not a journal record. A last line cut short by a crash (no newline, not
    JSON) is ignored: it was never acknowledged as written."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise FactsFileError(source, f"cannot read: {exc.strerror or exc}") from None
    lines = raw.split(b"\n")
    out: list[JournalEntry] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            if number == len(lines):  # the torn last line of an interrupted write
                continue
            raise FactsFileError(source, "not a JSON object", line=number) from None
        out.append(_entry(source, number, data))
    return tuple(out)


_CORE = ("time", "run", "operator", "plan_digest", "phase", "result")


def _entry(source: str, number: int, data: Any) -> JournalEntry:
    if not isinstance(data, dict) or data.get("schema") not in SCHEMAS:
        raise FactsFileError(source, f"not an {SCHEMA} (or /1 to /5) record", line=number)
    for key in _CORE:
        if not isinstance(data.get(key), str):
            raise FactsFileError(source, "missing or not a string", line=number, key=key)
    for key in ("host", "action", "ticket"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise FactsFileError(source, "must be a string or null", line=number, key=key)
    if data["phase"] not in PHASES:
        raise FactsFileError(source, f"unknown phase {data['phase']!r}", line=number, key="phase")
    known = {"schema", "host", "action", "ticket", *_CORE}
    return JournalEntry(
        time=data["time"],
        run=data["run"],
        operator=data["operator"],
        ticket=data.get("ticket"),
        plan_digest=data["plan_digest"],
        host=data.get("host"),
        action=data.get("action"),
        phase=data["phase"],
        result=data["result"],
        extra={k: v for k, v in data.items() if k not in known},
    )


def iter_run(entries: tuple[JournalEntry, ...], run: str) -> Iterator[JournalEntry]:
    return (e for e in entries if e.run == run or e.get("undoes") == run)
