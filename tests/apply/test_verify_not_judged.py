"""apply's verification: a finding that cannot be judged again (one of its fact areas failed
when the host was collected after the change) is no proof the change worked."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from agent.apply._context import Recorder
from agent.apply.journal import Journal
from agent.apply.verify import verify_host
from agent.evaluate import evaluate
from agent.model.command import CmdletCall
from agent.model.facts import AreaIssue, CollectionArea, CollectionStatus, HostFacts, NicSelection
from agent.model.plan import HostVars
from agent.model.remote import RemoteObject
from agent.planning import build_plan
from agent.transport.base import CommandResult
from support.facts_builders import host as host_facts
from support.facts_builders import mapi_nic, replication_nic

DENIED = "Get-NetIPConfiguration: The term 'Get-NetIPConfiguration' is not recognized"


class _DrainedQueues:
    """A host whose queues are empty now (Get-Queue answers nothing that holds mail)."""

    def run(self, call: CmdletCall, *, timeout: float | None = None) -> tuple[RemoteObject, ...]:
        return ()

    def invoke(self, call: CmdletCall, *, timeout: float | None = None) -> CommandResult:
        return CommandResult()

    def __enter__(self) -> _DrainedQueues:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _verify(tmp_path: Path, after: HostFacts) -> object:
    before = host_facts(nics=(mapi_nic(register_this_connections_address=False), replication_nic()))
    (plan,) = build_plan([before], {before.host: evaluate(before)}, {before.host: HostVars()}).hosts
    assert any(a.kind == "enable-nic-dns-registration" for a in plan.automatic)
    with Journal(tmp_path / "journal.jsonl") as journal:
        rec = Recorder(journal, "run", "tester", None, "0" * 64)
        return verify_host(rec, plan, before, _DrainedQueues, lambda: after, timeout=0.0)  # type: ignore[arg-type]


def test_a_fixed_host_whose_nics_are_read_again_is_verified(tmp_path: Path) -> None:
    check = _verify(tmp_path, host_facts())
    assert check.verified and check.error is None  # type: ignore[attr-defined]


def test_a_host_whose_nics_cannot_be_read_again_is_not_verified(tmp_path: Path) -> None:
    fixed = host_facts()
    unread = dataclasses.replace(
        fixed,
        nics=(),
        mapi_nic=NicSelection(None, "no NIC was collected"),
        status=CollectionStatus(fixed.status.transport_noun, (AreaIssue(CollectionArea.NICS, DENIED),)),
    )
    check = _verify(tmp_path, unread)
    assert not check.verified  # type: ignore[attr-defined]
    error = check.error  # type: ignore[attr-defined]
    assert error.startswith("nic-dns-registration-disabled could not be judged again: it reads nics")
    assert DENIED in error
