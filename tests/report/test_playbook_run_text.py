"""The playbook run's reports for a person at fleet size (plain data, no lab): the hosts that
need a look in full, worst first, the first DETAIL_LIMIT of them; then one recap line per host;
the JSON keeps every host whatever ``details`` says."""

from __future__ import annotations

import json

import pytest

from agent.model.findings import EvidenceItem, Finding, Severity
from agent.model.playbook_run import ActionStatus, ActionView, HostResult, Outcome, PlaybookRun
from agent.report.playbook_run import RENDERERS, detailed_hosts, render_markdown, render_text
from agent.report.safe import terminal
from agent.report.text import DETAIL_LIMIT, Details
from agent.workflow.playbook import load_playbook, shipped_playbooks


def _finding(host: str) -> Finding:
    return Finding(
        rule_id="nic-dns-registration-disabled", host=host, subject="Ethernet0", severity=Severity.HIGH,
        title="DNS registration off", summary=f"{host}: Register this connection's addresses is off",
        evidence=(EvidenceItem(source="Get-DnsClient", subject="Ethernet0",
                               values=(("RegisterThisConnectionsAddress", False),)),),
        fix_id="enable-dns-registration", fix_disrupts_mail_flow=False,
    )  # fmt: skip


def _host(i: int, outcome: Outcome) -> HostResult:
    name = f"ex{i:04d}.contoso.local"
    found = () if outcome in (Outcome.HEALTHY, Outcome.UNREACHABLE) else (_finding(name),)
    actions = ()
    if outcome is Outcome.REMEDIATED:
        actions = (ActionView("01-enable", "enable-dns-registration", "set-dns-client", f"turn it on {name}",
                              False, False, ActionStatus.APPLIED, "d" * 64),)  # fmt: skip
    reason = f"reason of {name}."
    remaining = () if outcome is Outcome.REMEDIATED else None  # None: nothing applied, no second look
    return HostResult(host=name, outcome=outcome, reason=reason, findings=found, actions=actions,
                      remaining=remaining)  # fmt: skip


def _run(hosts: list[HostResult]) -> PlaybookRun:
    book = load_playbook(next(p for p in shipped_playbooks() if p.stem == "dns-451-diagnose"))
    return PlaybookRun(
        ticket=None, playbook=book, variables=(), source="inv.yaml", operator="op",
        started="2026-12-01T00:00:00+00:00", finished="2026-12-01T00:01:00+00:00", hosts=tuple(hosts),
        directory="runs/x", run_file="runs/x/run.json",
    )  # fmt: skip


def _fleet(n: int) -> list[HostResult]:
    # Mostly healthy, every 7th with findings, every 50th unreachable, every 11th fixed.
    hosts = []
    for i in range(n):
        outcome = Outcome.HEALTHY
        if i % 50 == 3:
            outcome = Outcome.UNREACHABLE
        elif i % 11 == 5:
            outcome = Outcome.REMEDIATED
        elif i % 7 == 1:
            outcome = Outcome.FINDINGS
        hosts.append(_host(i, outcome))
    return hosts


def test_a_fleet_prints_the_hosts_to_look_at_then_a_line_per_host() -> None:
    run = _run(_fleet(200))
    text = render_text(run).splitlines()
    # Each host's name is at the start of exactly one recap line, and of a detail line only if shown.
    recap = text[text.index("Recap") + 2 : text.index("Recap") + 2 + 200]
    assert [line.split()[0] for line in recap] == [h.host for h in run.hosts]
    for line, host in zip(recap, run.hosts, strict=True):
        assert line.split()[1] == host.outcome.value and line.endswith(host.reason)
    shown = [line.split(": ")[0] for line in text if line.startswith("ex0") and ": " in line]  # detail heads
    unreachable = [h.host for h in run.hosts if h.outcome is Outcome.UNREACHABLE]
    assert shown[: len(unreachable)] == unreachable  # the worst first
    assert len(shown) == DETAIL_LIMIT
    chosen = sum(1 for h in run.hosts if h.outcome is not Outcome.HEALTHY)
    assert f"... and {chosen - DETAIL_LIMIT} more host(s) to look at or changed" in "\n".join(text)
    fixed = sum(1 for h in run.hosts if h.outcome is Outcome.REMEDIATED)
    found = sum(1 for h in run.hosts if h.outcome is Outcome.FINDINGS)
    by_rule = text[text.index("Findings by rule") + 1]
    rule = "nic-dns-registration-disabled [high]"
    assert by_rule == f"  {rule}: {found + fixed} host(s), still there on {found}"
    assert len(text) < 200 + DETAIL_LIMIT * 3 + 20  # was about 20 lines a host


def test_details_all_and_none() -> None:
    run = _run(_fleet(40))
    every = render_text(run, Details.ALL)
    assert all(f"{h.host}: {h.outcome.value}: {h.reason}" in every for h in run.hosts)
    assert "more host(s)" not in every
    bare = render_text(run, Details.NONE).splitlines()
    assert not any(": healthy: " in line or "    finding [" in line for line in bare)
    assert "Recap" in bare
    shown, more = detailed_hosts(run, Details.NONE)
    assert (shown, more) == ([], 0)


def test_a_healthy_fleet_has_no_details_and_a_small_one_shows_every_problem() -> None:
    assert detailed_hosts(_run([_host(i, Outcome.HEALTHY) for i in range(30)]), Details.FAILING) == ([], 0)
    small = _run([_host(0, Outcome.FINDINGS), _host(1, Outcome.HEALTHY), _host(2, Outcome.REMEDIATED)])
    shown, more = detailed_hosts(small, Details.FAILING)
    assert [h.host for h in shown] == ["ex0000.contoso.local", "ex0002.contoso.local"] and more == 0
    text = render_text(small)
    assert "    finding [high] nic-dns-registration-disabled:" in text and "    applied: turn it on" in text


def test_the_markdown_note_and_the_json_at_fleet_size() -> None:
    run = _run(_fleet(200))
    note = render_markdown(run)
    assert note.count("\n### ex") == DETAIL_LIMIT
    assert sum(1 for line in note.splitlines() if line.startswith("| ex")) == 200  # the table: every server
    assert "the run record `runs/x/run.json` has every server in full" in note
    doc = json.loads(RENDERERS["json"](run, Details.NONE))
    assert len(doc["hosts"]) == 200
    assert all(bool(h["findings"]) is (h["outcome"] in ("findings", "remediated")) for h in doc["hosts"])


@pytest.mark.parametrize("name", ["ex01\x1b[31m", "ex01\u202e", "\\x1b[2J"])
def test_recap_columns_line_up_with_hostile_names(name: str) -> None:
    run = _run([HostResult(host=name, outcome=Outcome.HEALTHY, reason="ok."), _host(1, Outcome.HEALTHY)])
    recap = render_text(run).splitlines()
    start = recap.index("Recap")
    header, first, second = recap[start + 1 : start + 4]
    assert first.startswith(terminal(name)) and "\x1b" not in first and "\u202e" not in first
    assert header.index("outcome") == first.index("healthy") == second.index("healthy")
