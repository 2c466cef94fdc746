"""server-a-record-wrong-nic over the lab, three runs (ansible.windows style) with what the
generic three-run test does not look at: the plan leaves the A record and both NICs untouched,
apply puts the MAPI address alone in the record (the backup and replication NICs' registration
off) and cures the queues, and planning again finds nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.apply import HostOutcome, StepStatus
from apply._apply_support import full_state, lab_fleet

pytestmark = pytest.mark.lab

EX01, EX02 = "ex01.contoso.local", "ex02.contoso.local"


def registration(fleet: object, host: str) -> dict[str, bool]:
    state = fleet.host(host).state  # type: ignore[attr-defined]
    return {nic.alias: nic.register for nic in state.nics}


def test_a_record_of_the_wrong_nic_plan_apply_plan_again(tmp_path: Path) -> None:
    with lab_fleet("server-a-record-wrong-nic", tmp_path) as fleet:
        world = fleet.lab.fleet.world
        before = {h: full_state(fleet.lab, h) for h in (EX01, EX02)}
        records = {h: world.registered(h) for h in (EX01, EX02)}
        assert records == {EX01: ("192.168.60.21",), EX02: ("10.0.0.22", "192.168.50.22")}

        # 1. plan: nothing on either host moves, the record neither.
        result, plan_file = fleet.plan(tmp_path / "plan")
        assert result.exit_code == 2
        assert {h: full_state(fleet.lab, h) for h in (EX01, EX02)} == before
        assert {h: world.registered(h) for h in (EX01, EX02)} == records
        kinds = {h: [a.kind for a in result.plan.host(h).actions] for h in (EX01, EX02)}
        assert kinds == {
            EX01: ["enable-nic-dns-registration", "disable-nic-dns-registration", "register-dns-client",
                   "restart-transport"],
            EX02: ["disable-nic-dns-registration", "register-dns-client"],
        }  # fmt: skip
        # The decision is in the plan, with its reason.
        (disable,) = [a for a in result.plan.host(EX01).actions if a.kind == "disable-nic-dns-registration"]
        assert "NIC 'Backup' (InterfaceIndex 6): it has no default gateway" in disable.description

        # 2. apply: every step reads back, the record holds the MAPI address alone, mail flows.
        report = fleet.apply(plan_file, allow_restart=True)
        assert report.exit_code == 0
        for host in (EX01, EX02):
            outcome = report.host(host)
            assert outcome.outcome is HostOutcome.DONE and outcome.verified is True, outcome
            assert all(s.status is StepStatus.OK for s in outcome.steps)
            assert "server-a-record-wrong-nic" not in {f.rule_id for f in outcome.remaining_findings}
        assert {h: world.registered(h) for h in (EX01, EX02)} == {EX01: ("10.0.0.21",), EX02: ("10.0.0.22",)}
        assert registration(fleet, EX01) == {"Ethernet": True, "Backup": False}
        assert registration(fleet, EX02) == {"Ethernet": True, "Replication": False}
        assert all(q.queued == 0 for q in fleet.host(EX01).queues)
        # EX02 needed no restart: only its record changed.
        assert fleet.host(EX02).state.transport_starts == before[EX02]["transport_starts"]

        # 3. plan again: nothing to do.
        again, _ = fleet.plan(tmp_path / "plan-again")
        assert again.plan.actions == () and again.exit_code == 0
