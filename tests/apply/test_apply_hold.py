"""Holding hosts before collecting them (agent/apply/hold.py), then applying under the hold:
the stale check takes the facts collected under the hold instead of collecting the host again,
still refuses a plan whose host drifted, a change by hand after the collection is still caught
by the step's before-read, and the markers are let go of on every path. Against the lab over
real sockets; the decision of which facts may be taken is tested on plain data first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.apply import HostHold, HostOutcome, hold_hosts, plan_fleet, read_plan_file, rollback_journal
from agent.apply.hold import BEFORE_PLANNING, reusable
from agent.apply.lock import MARKER_NAME, Holder
from agent.errors import EXIT_REFUSED, HostLockedError, StalePlanError
from agent.model.facts import HostFacts
from agent.model.plan import PlanSource, SourceKind
from agent.review import write_plan_dir
from apply._apply_support import LabFleet, full_state, journal_lines, lab_fleet, phases
from support import facts_builders as fb

HOST = "ex01.contoso.local"
INSTALL = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\"


# --- which facts may be taken (plain data) ---------------------------------------------------


def test_only_planned_hosts_held_and_collected_are_reused() -> None:
    a, b, c = (fb.host(name=f"ex0{n}.contoso.local") for n in (1, 2, 3))
    collected = {f.host: f for f in (a, b, c)}
    planned = ["ex01.contoso.local", "ex02.contoso.local", "ex04.contoso.local"]
    held = {"ex01.contoso.local", "ex03.contoso.local", "ex04.contoso.local"}
    # ex02: not held (collected before its marker, or held by someone else); ex03: not planned;
    # ex04: held but the collection did not reach it.
    assert reusable(planned, held, collected) == {"ex01.contoso.local": a}


def test_facts_filed_under_another_name_are_not_reused() -> None:
    other = fb.host(name="ex02.contoso.local")
    assert reusable([HOST], {HOST}, {HOST: other}) == {}
    assert reusable([HOST], set(), {HOST: fb.host()}) == {}


# --- over the lab ------------------------------------------------------------------------------


def _commands(fleet: LabFleet) -> int:
    """The commands (WSMan Command requests, both endpoints) the lab's host has been sent."""
    return fleet.lab.counters.get(HOST, action="Command")


def _marker(fleet: LabFleet) -> str | None:
    hits = [t for p, t in fleet.host(HOST).state.files.items() if p.endswith(MARKER_NAME.lower())]
    return hits[0] if hits else None


def _hold(fleet: LabFleet, journal: Path) -> HostHold:
    return hold_hosts(fleet.targets, fleet.credentials(), journal=journal, purpose="test, ticket T-1",
                      operator="tester")  # fmt: skip


def _plan_under(fleet: LabFleet, out: Path) -> tuple[Any, dict[str, HostFacts]]:
    """Plan the fleet (one collection of each host) and write the plan directory."""
    result = plan_fleet(fleet.targets, fleet.credentials(),
                        source=PlanSource(SourceKind.INVENTORY, str(fleet.inventory_path)))  # fmt: skip
    write_plan_dir(result.plan, out)
    return read_plan_file(out / "plan.json"), {h.host: h.facts for h in result.scan.hosts if h.facts}


def _apply(fleet: LabFleet, plan_file: Any, held: HostHold, facts: dict[str, HostFacts]) -> Any:
    """apply_plan under ``held`` (its journal and operator), with the facts collected under it."""
    return fleet.apply(plan_file, allow_restart=True, held=held, collected=facts, operator=None, journal=None)


@pytest.fixture
def two_labs(tmp_path: Path) -> Iterator[tuple[LabFleet, LabFleet]]:
    """Two labs of the same scenario, each with its own directory (a, b)."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    scenario = "nic-external-dns"
    with lab_fleet(scenario, tmp_path / "a") as first, lab_fleet(scenario, tmp_path / "b") as second:
        yield first, second


@pytest.mark.lab
def test_apply_under_a_hold_sends_one_collection_fewer(
    tmp_path: Path, two_labs: tuple[LabFleet, LabFleet]
) -> None:
    plain, holding = two_labs
    # As before: plan (collects), then apply from the plan directory (locks, collects again for
    # the stale check, changes, verifies).
    start = _commands(plain)
    plan_file, _ = _plan_under(plain, tmp_path / "a" / "plan")
    one_collection = _commands(plain) - start
    report = plain.apply(plan_file, allow_restart=True)
    assert report.exit_code == 0
    without_hold = _commands(plain) - start

    # Held first, then the same plan and apply: the apply takes the plan's facts.
    pristine = full_state(holding.lab, HOST)["nics"]
    start = _commands(holding)
    with _hold(holding, tmp_path / "b" / "journal.jsonl") as held:
        assert held.hosts == {HOST} and not held.missed
        assert BEFORE_PLANNING in (_marker(holding) or "")
        plan_file, facts = _plan_under(holding, tmp_path / "b" / "plan")
        report = _apply(holding, plan_file, held, facts)
        assert report.exit_code == 0 and report.hosts[0].verified
        assert _marker(holding) is None  # let go of at apply's end, before the block ends
    with_hold = _commands(holding) - start
    assert one_collection > 20
    assert without_hold - with_hold == one_collection

    lines = journal_lines(tmp_path / "b" / "journal.jsonl")
    assert len({r["run"] for r in lines}) == 1  # the hold and its apply are one run
    assert [(p, r) for p, _, r in phases(lines, locks=True)][:5] == [
        ("hold", "taken"), ("lock", "acquired"), ("start", "ok"), ("stale-check", "fresh"), ("before", "ok"),
    ]  # fmt: skip
    assert [r["plan_digest"] for r in lines[:2]] == ["", ""]
    assert all(r["plan_digest"] == plan_file.plan.digest for r in lines[2:])
    (check,) = [r for r in lines if r["phase"] == "stale-check"]
    assert check["detail"] == {"facts": "reused", "held_since": held.since}
    assert lines[2]["detail"]["held_since"] == held.since
    assert [(r["phase"], r["result"]) for r in lines[-2:]] == [("unlock", "released"), ("end", "ok")]

    # exfix rollback reads the run as any apply run: its digest from the start, its steps undone.
    changed = full_state(holding.lab, HOST)
    undone = rollback_journal(tmp_path / "b" / "journal.jsonl", holding.targets, holding.credentials(),
                              allow_restart=True, operator="tester")  # fmt: skip
    assert undone.exit_code == 0 and undone.undoes == report.run
    assert undone.plan_digest == plan_file.plan.digest
    assert changed["nics"] != pristine and full_state(holding.lab, HOST)["nics"] == pristine


@pytest.mark.lab
def test_reused_facts_still_refuse_a_stored_plan_whose_host_drifted(tmp_path: Path) -> None:
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        stored, _ = _plan_under(fleet, tmp_path / "reviewed")  # the plan a change board approved
        # Someone changes the NIC after the review, over the real protocol.
        servers = ("8.8.8.8", "10.0.0.10")
        fleet.set_nic_dns_servers(servers)
        drifted = full_state(fleet.lab, HOST)
        journal = tmp_path / "journal.jsonl"
        with _hold(fleet, journal) as held:
            _, facts = _plan_under(fleet, tmp_path / "now")  # collected under the hold: the drift is in them
            start = _commands(fleet)
            with pytest.raises(StalePlanError) as caught:
                _apply(fleet, stored, held, facts)
            assert _commands(fleet) - start == 2  # no collection: only the marker's removal (read, remove)
        assert caught.value.exit_code == EXIT_REFUSED
        assert [(d.host, d.action, d.current) for d in caught.value.drift] == [
            (HOST, "01-set-nic-dns-servers", servers)
        ]
        assert full_state(fleet.lab, HOST) == drifted and _marker(fleet) is None
        lines = journal_lines(journal)
        assert [(r["phase"], r["result"]) for r in lines] == [
            ("hold", "taken"), ("lock", "acquired"), ("start", "ok"), ("stale-check", "drifted"),
            ("refused", "StalePlanError"), ("unlock", "released"),
        ]  # fmt: skip
        check = lines[3]
        assert check["detail"]["facts"] == "reused" and check["detail"]["held_since"] == held.since
        assert check["detail"]["drift"][0]["action"] == "01-set-nic-dns-servers"


@pytest.mark.lab
def test_a_change_by_hand_after_the_collection_is_caught_by_the_before_read(tmp_path: Path) -> None:
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        journal = tmp_path / "journal.jsonl"
        servers = ("8.8.8.8", "10.0.0.10")
        with _hold(fleet, journal) as held:
            plan_file, facts = _plan_under(fleet, tmp_path / "plan")
            # A person at the console changes the NIC after the scan: no lock keeps a person out.
            fleet.set_nic_dns_servers(servers)
            changed = full_state(fleet.lab, HOST)
            report = _apply(fleet, plan_file, held, facts)
        (host,) = report.hosts
        assert host.outcome is HostOutcome.ROLLED_BACK and report.exit_code != 0
        lines = journal_lines(journal)
        seen = phases(lines, HOST)
        assert ("stale-check", None, "fresh") in seen  # the reused facts predate the change
        assert ("before", "01-set-nic-dns-servers", "drifted") in seen
        assert not any(r["phase"] == "execute" and r["action"] == "01-set-nic-dns-servers" for r in lines)
        assert full_state(fleet.lab, HOST)["nics"] == changed["nics"]  # what the person set stays
        assert _marker(fleet) is None


@pytest.mark.lab
@pytest.mark.parametrize("stop", [RuntimeError("planning failed"), KeyboardInterrupt()])
def test_the_markers_are_let_go_when_planning_raises(tmp_path: Path, stop: BaseException) -> None:
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        journal = tmp_path / "journal.jsonl"
        before = full_state(fleet.lab, HOST)
        with pytest.raises(type(stop)), _hold(fleet, journal) as held:
            assert _marker(fleet) is not None and held.hosts == {HOST}
            _plan_under(fleet, tmp_path / "plan")
            raise stop
        assert _marker(fleet) is None and held.hosts == frozenset()
        assert full_state(fleet.lab, HOST) == before
        lines = journal_lines(journal)
        assert [(r["phase"], r["result"]) for r in lines] == [
            ("hold", "taken"), ("lock", "acquired"), ("unlock", "released"), ("end", "failed"),
        ]  # fmt: skip
        assert lines[-1]["detail"] == {"applied": False} and type(stop).__name__ in lines[-1]["error"]
        # The local lock is free again: another hold takes the host at once.
        with _hold(fleet, journal) as again:
            assert again.hosts == {HOST}


@pytest.mark.lab
def test_a_host_held_by_another_run_is_left_out_and_apply_refuses_it_as_always(tmp_path: Path) -> None:
    with lab_fleet("nic-external-dns", tmp_path) as fleet:
        other = Holder("ab" * 16, "CONTOSO\\bob", "ws17.contoso.local", 4242, "0" * 64,
                       "2025-01-15T10:00:00.000000+00:00")  # fmt: skip
        fleet.host(HOST).state.files[f"{INSTALL}Logging\\{MARKER_NAME}".lower()] = other.to_json()
        journal = tmp_path / "journal.jsonl"
        with _hold(fleet, journal) as held:
            assert held.hosts == frozenset() and isinstance(held.missed[HOST], HostLockedError)
            plan_file, facts = _plan_under(fleet, tmp_path / "plan")
            before = full_state(fleet.lab, HOST)
            with pytest.raises(HostLockedError) as caught:
                _apply(fleet, plan_file, held, facts)
        assert caught.value.holder_run == other.run and "(CONTOSO\\bob on ws17" in str(caught.value)
        assert full_state(fleet.lab, HOST) == before
        assert _marker(fleet) == other.to_json()  # bob's marker is his
        lines = journal_lines(journal)
        assert [(r["phase"], r["result"]) for r in lines] == [
            ("hold", "taken"), ("lock", "refused"), ("start", "ok"), ("lock", "refused"),
            ("refused", "HostLockedError"),
        ]  # fmt: skip


def test_a_hold_marker_names_who_and_why() -> None:
    holder = Holder("cd" * 16, "alice", "ws01", 7, f"{BEFORE_PLANNING}: playbook dns-451-auto, ticket CHG1",
                    "2026-12-01T10:00:00+00:00")  # fmt: skip
    assert "before planning: playbook dns-451-auto, ticket CHG1" in holder.describe()
    assert Holder.from_text(holder.to_json()) == holder
    digest = Holder("cd" * 16, "alice", "ws01", 7, "e" * 64, "2026-12-01T10:00:00+00:00")
    assert f"plan {'e' * 12}," in digest.describe()  # a marker of an apply, as before
