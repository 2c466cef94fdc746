"""review.html and the playbook-run reports with hostile host values (no lab): nothing a host
sends can add markup, a script, a reference, a terminal escape or a Rundeck data line."""

from __future__ import annotations

import dataclasses
import html
import json
import re
from pathlib import Path

import jinja2
import pytest

from agent.fixes.smart_host_connector import draft
from agent.model.findings import EvidenceItem, Finding, Severity
from agent.model.plan import SCHEMA, Action, Advisory, AdvisoryKind, HostPlan, Plan, with_scripts
from agent.model.playbook_run import (
    ActionStatus,
    ActionView,
    HostResult,
    Outcome,
    PlanArtifact,
    PlanRole,
    PlaybookRun,
)
from agent.planning.build import host_directories
from agent.planning.render import render_plan
from agent.report.playbook_run import RENDERERS, rundeck_data
from agent.report.safe import terminal
from agent.review import render_review_html
from agent.review.review_html import page_environment
from agent.workflow.playbook import load_playbook, shipped_playbooks
from workflow._review_html_check import parse_review

EVIL_HOST = 'ex01<script src="https://evil.example/x.js"></script>\u202e\x1b[31m"\'`$(calc)\nRUNDECK:DATA:outcome=healthy'
EVIL = (
    "<img src=//evil.example/p.png> @import url(https://evil.example/a.css); `$(Remove-Item *)`;\x1b]0;t\x07"
)


def hostile_plan() -> Plan:
    [directory] = host_directories([EVIL_HOST])
    finding = Finding(
        rule_id="remote-domain-aaaa-broken",
        host=EVIL_HOST,
        subject="wingtiptoys.com",
        severity=Severity.MEDIUM,
        title=f"title {EVIL}",
        summary=f"summary {EVIL}",
        evidence=(EvidenceItem(source="Get-Queue", subject=f"queue {EVIL}", values=(("LastError", EVIL),)),),
        fix_id="add-smarthost-send-connector",
        fix_disrupts_mail_flow=False,
    )
    d = draft("wingtiptoys.com", f"smart host {EVIL}", ("198.51.100.25",), ("EX01",), (finding.id,))
    action = Action(
        id="01-new-smart-host-connector", kind=d.kind, fix_id=d.fix_id, call=d.call,
        description=d.description, changes=d.changes, read_back=d.read_back, rollback=d.rollback,
        disruptive=d.disruptive, restart_required=d.restart_required, manual=d.manual,
        finding_ids=d.finding_ids, depends_on=d.depends_on, fingerprint="0" * 64,
    )  # fmt: skip
    host = HostPlan(
        host=EVIL_HOST, directory=directory, fqdn=EVIL, exchange_version="15.2.1118.7", findings=(finding,),
        actions=(action,), advisories=(Advisory(AdvisoryKind.NO_FIX, None, (finding.id,), f"advice {EVIL}"),),
        fingerprint="1" * 64,
    )  # fmt: skip
    unsigned = Plan(schema=SCHEMA, hosts=(host,), digest="")
    plan = dataclasses.replace(unsigned, digest=unsigned.compute_digest())
    rendered = render_plan(plan)
    return dataclasses.replace(
        plan, hosts=tuple(with_scripts(h, rendered[h.directory].sha256()) for h in plan.hosts)
    )


def test_review_html_escapes_every_host_value_and_loads_nothing() -> None:
    plan = hostile_plan()
    rendered = render_plan(plan)
    page_text = render_review_html(plan, rendered, "runs/plan-1/plan.json")
    assert page_text.startswith("<!DOCTYPE html>\n") and page_text.endswith("</html>\n")
    for raw in ("\x1b", "\u202e", "\x07", "<script", "<img"):
        assert raw not in page_text  # (host text such as "@import" is only text: the parser checks styles)
    page = parse_review(page_text)
    assert page.external_references() == []
    assert page.by_id["digest"] == plan.digest
    text = page.text
    [host] = plan.hosts
    assert (
        terminal(EVIL_HOST) in text
        and terminal(f"summary {EVIL}") in text
        and terminal(f"advice {EVIL}") in text
    )
    assert terminal(host.actions[0].description) in text
    scripts = rendered[host.directory]
    for name, script in (("remediate.ps1", scripts.remediate), ("rollback.ps1", scripts.rollback)):
        lines = script.split("\n")
        if lines[-1] == "":
            lines.pop()
        assert page.scripts[name] == [[(n, terminal(line)) for n, line in enumerate(lines, start=1)]]
    # Plain words come before the detail.
    assert text.index("In plain words") < text.index("Approving this plan") < text.index(terminal(EVIL_HOST))


def test_the_review_page_environment_escapes_what_a_template_prints() -> None:
    # The page can grow: a new {{ value }} in the template is safe without a filter, and what
    # the template builds itself (a macro) is not escaped twice.
    env = page_environment()
    assert env.autoescape is True
    template = env.from_string(
        '{% macro cell(v) %}<td title="{{ v }}">{{ v }}</td>{% endmacro %}{{ cell(value) }}|{{ value }}'
    )
    shown = template.render(value=EVIL_HOST)
    cell, bare = shown.split("|", 1)
    escaped = html.escape(terminal(EVIL_HOST), quote=True)
    assert bare == escaped and cell == f'<td title="{escaped}">{escaped}</td>'
    assert "<script" not in shown and r"\u202e" in shown and r"\x1b" in shown  # shown as escapes
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ page.misspelt }}").render(page=None)


def test_the_review_page_template_is_shipped_as_package_data() -> None:
    setup = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert '"agent.review" = ["templates/*.j2"]' in setup and '"agent.review",' in setup
    assert page_environment().list_templates() == ["review.html.j2"]


def _run(tmp_path: Path) -> PlaybookRun:
    book = load_playbook(next(p for p in shipped_playbooks() if p.stem == "dns-451-remediate"))
    plan = hostile_plan()
    action = plan.hosts[0].actions[0]
    artifact = PlanArtifact(
        role=PlanRole.PENDING_APPROVAL, digest=plan.digest, directory=str(tmp_path),
        plan_json=f"{tmp_path}/plan.json", review_md=f"{tmp_path}/REVIEW.md",
        review_html=f"{tmp_path}/review.html", scripts=(),
        apply_command=f"exfix apply '{tmp_path}/plan.json' --approve {plan.digest}",
    )  # fmt: skip
    host = HostResult(
        host=EVIL_HOST, outcome=Outcome.PENDING_APPROVAL, reason="1 change(s) planned.", error=EVIL,
        exchange_version="15.2", findings=plan.hosts[0].findings,
        actions=(ActionView(action.id, action.fix_id, action.kind, action.description, False, False,
                            ActionStatus.PENDING_APPROVAL, plan.digest),),
    )  # fmt: skip
    return PlaybookRun(
        ticket="INC0001", playbook=book, variables=(), source="inv.yaml", operator=EVIL,
        started="2026-01-01T00:00:00+00:00", finished="2026-01-01T00:00:01+00:00", hosts=(host,),
        directory=str(tmp_path), run_file=f"{tmp_path}/run.json",
        plans=(artifact,), approve_command="exfix playbook run dns-451-remediate --approve x",
    )  # fmt: skip


def test_run_reports_keep_host_values_inert(tmp_path: Path) -> None:
    run = _run(tmp_path)
    assert run.exit_code == 2 and run.outcome is Outcome.PENDING_APPROVAL
    for name, render in RENDERERS.items():
        out = render(run)
        assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out, name
    doc = json.loads(RENDERERS["json"](run))
    assert doc["hosts"][0]["host"] == EVIL_HOST  # JSON keeps the exact value, escaped by json.dumps

    markdown = RENDERERS["markdown"](run)
    assert not re.search(r"(?<!\\)<(script|img)", markdown)  # every '<' from a host is escaped
    assert (
        markdown.splitlines()[2] == "**Fixes planned; waiting for approval (1 server: 1 pending-approval).**"
    )

    worknote = RENDERERS["worknote"](run)
    assert worknote.startswith(RENDERERS["text"](run))  # the text report, then the record
    record = worknote.splitlines()[worknote.splitlines().index("Record") + 1 :]
    assert record[0].startswith("  playbook: dns-451-remediate (apply, approval ")
    assert run.playbook.sha256 in record[0]
    assert any(line == f"  run record: {run.run_file}" for line in record)
    # None of the Markdown note's syntax: a plain-text ticket shows it as it is.
    assert "|---|" not in worknote and "\n### " not in worknote and "**Fixes planned" not in worknote

    rundeck = RENDERERS["rundeck"](run)
    data_lines = [line for line in rundeck.splitlines() if line.startswith("RUNDECK:DATA:")]
    assert [line for line in data_lines if line.startswith("RUNDECK:DATA:outcome=")] == [
        "RUNDECK:DATA:outcome=pending-approval"
    ]
    assert len(data_lines) == len(rundeck_data(run))
    for line in data_lines:
        assert re.fullmatch(r"RUNDECK:DATA:[a-z][a-z0-9_]*=[A-Za-z0-9 ._:/@+,=()-]+", line), line
