"""The plan directory and REVIEW.md: what the change board reads is what apply will run."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from agent.errors import UsageError
from agent.evaluate import evaluate
from agent.model.plan import HostVars, Plan, plan_from_json
from agent.planning import build_plan, render_plan
from agent.review import apply_command, code_block, render_review, render_review_html, write_plan_dir
from support.facts_builders import (
    broken,
    connector,
    host,
    internal_queue,
    lookup,
    mapi_nic,
    replication_nic,
    transport,
)

HOSTILE_ALIAS = "Eth```0 $(x)\n| # <b>\x1b[31m"


def fleet_plan() -> Plan:
    fleet = (
        broken("ex01.contoso.local", alias=HOSTILE_ALIAS),
        host(
            name="../ex02 `bad`",
            transport_facts=transport(external=lookup(adapter=False)),
            connectors=(connector(use_external=True),),
        ),
        host(name="ex03.contoso.local"),
    )
    return build_plan(fleet, {f.host: evaluate(f) for f in fleet}, {"ex01.contoso.local": HostVars()})


def test_write_plan_dir_writes_plan_scripts_and_review(tmp_path: Path) -> None:
    plan = fleet_plan()
    out = tmp_path / "plan"
    files = write_plan_dir(plan, out)
    assert plan_from_json(files.plan_json.read_text(encoding="utf-8"), source=str(files.plan_json)) == plan
    for hp in plan.hosts:
        directory = out / "hosts" / hp.directory
        assert directory.parent == out / "hosts"
        for name in ("remediate.ps1", "rollback.ps1"):
            data = (directory / name).read_bytes()
            assert data.startswith(b"\xef\xbb\xbf")  # Windows PowerShell 5.1 reads UTF-8 only with a BOM
            assert hashlib.sha256(data).hexdigest() == hp.script_sha256(name)
    assert sorted(p.name for p in (out / "hosts").iterdir()) == sorted(h.directory for h in plan.hosts)
    # The pages name plan.json by its place in the directory: the bundle can move unchanged.
    assert files.review.read_text(encoding="utf-8") == render_review(plan, render_plan(plan), "plan.json")
    html = render_review_html(plan, render_plan(plan), "plan.json")
    assert files.review_html.read_text(encoding="utf-8") == html
    assert sorted(p.name for p in out.iterdir()) == ["REVIEW.md", "hosts", "plan.json", "review.html"]


def test_write_plan_dir_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(UsageError):
        write_plan_dir(fleet_plan(), tmp_path)
    write_plan_dir(fleet_plan(), tmp_path, overwrite=True)


def test_review_contains_every_finding_script_line_digest_and_command() -> None:
    plan = fleet_plan()
    scripts = render_plan(plan)
    review = render_review(plan, scripts, "/srv/plans/p1/plan.json")
    assert review.count(plan.digest) >= 2
    command = f"exfix apply /srv/plans/p1/plan.json --approve {plan.digest} --allow-restart"
    assert command == apply_command(plan, "/srv/plans/p1/plan.json")
    assert command in review
    for hp in plan.hosts:
        for finding in hp.findings:
            assert finding.rule_id in review
        for name, text in scripts[hp.directory].texts().items():
            block = code_block(text, "powershell")
            assert block in review, f"{hp.host} {name} is not shown verbatim"
            for line in text.splitlines():
                assert line in review
        for advisory in hp.advisories:
            assert advisory.variable is None or advisory.variable in review
    assert "exfix_external_dns_servers" in review
    # Plain language first, then the refusals apply makes.
    assert (
        review.index("## In plain words") < review.index("## Approving this plan") < review.index("## Host")
    )
    for refusal in ("digest", "drifted", "--allow-restart"):
        assert refusal in review[review.index("apply refuses") :]
    assert "**Mail flow is interrupted**" in review


def test_review_markdown_cannot_be_broken_by_host_values() -> None:
    plan = fleet_plan()
    review = render_review(plan, render_plan(plan), "plan.json")
    assert "\x1b" not in review and "\u202e" not in review
    outside_code = []
    fence: str | None = None
    for line in review.splitlines():
        stripped = line.strip()
        if fence is None and stripped.startswith("```"):
            fence = stripped[: len(stripped) - len(stripped.lstrip("`"))]
            continue
        if fence is not None:
            if stripped == fence:
                fence = None
            continue
        outside_code.append(line)
    assert fence is None  # every block closed by its own fence
    prose = "\n".join(outside_code)
    assert "<b>" not in prose  # markup from a NIC alias is escaped outside code
    columns: int | None = None
    for line in outside_code:
        if not line.startswith("|"):
            columns = None
            continue
        cells = line.count("|") - line.count("\\|")  # a table row keeps its header's columns
        columns = cells if columns is None else columns
        assert cells == columns, line


def test_code_block_fence_is_longer_than_any_backtick_run() -> None:
    assert code_block("a\n") == "```\na\n```\n"
    assert code_block("x ```` y\n", "ps") == "`````ps\nx ```` y\n`````\n"


def test_apply_command_quotes_the_path_and_omits_restart_when_not_needed() -> None:
    facts = host()
    plan = build_plan([facts], {facts.host: evaluate(facts)}, {})
    assert (
        apply_command(plan, "my plans/plan.json")
        == f"exfix apply 'my plans/plan.json' --approve {plan.digest}"
    )


def test_causes_are_named_by_rule_and_subject_and_counts_agree_with_their_verbs() -> None:
    """The review names a finding's cause as a reader knows it, never by the internal key
    ("nic-dns-registration-disabled|ex02.contoso.local|NIC ..."); "1 finding needs"."""
    unregistered = host(
        name="ex05.contoso.local",
        nics=(mapi_nic(register_this_connections_address=False), replication_nic()),
        queues=(internal_queue(),),
    )
    fleet = (unregistered,)
    plan = build_plan(fleet, {f.host: evaluate(f) for f in fleet}, {})
    scripts = render_plan(plan)
    review = render_review(plan, scripts, "plan.json")
    html = render_review_html(plan, scripts, "plan.json")
    linked = [(f, c) for hp in plan.hosts for f in hp.findings for c in f.explained_by]
    assert linked, "the fixture has a symptom explained by a cause"
    for _, cause in linked:
        rule, _, subject = cause.split("|", 2)
        assert cause not in review and cause not in html
        assert f"{rule} ({subject})" in review.replace("\\", "")
    for page in (review, html):
        assert "1 finding need " not in page and "1 findings" not in page and "1 servers" not in page
    # The restart plans no before (apply records the state it finds): never "(none)".
    assert any(a.disruptive for hp in plan.hosts for a in hp.actions)
    script = "\n".join(t for hp in plan.hosts for t in scripts[hp.directory].texts().values())
    for page in (review, html, script):
        assert "Status: (none)" not in page and "(as found; stopped and started)" in page


def test_a_fleet_of_restarts_is_counted_in_the_plain_words_not_listed() -> None:
    fleet = tuple(
        host(name=f"ex{i:02d}.contoso.local",
             nics=(mapi_nic(register_this_connections_address=False), replication_nic()))
        for i in range(1, 15)
    )  # fmt: skip
    plan = build_plan(fleet, {f.host: evaluate(f) for f in fleet}, {})
    scripts = render_plan(plan)
    review = render_review(plan, scripts, "plan.json")
    html = render_review_html(plan, scripts, "plan.json")
    (sentence,) = [line for line in review.splitlines() if line.startswith("**Mail flow is interrupted**")]
    assert "on 14 servers (ex01.contoso.local, " in sentence and "and 4 more)" in sentence
    assert "ex11.contoso.local" not in sentence
    assert "on 14 servers (ex01.contoso.local, " in html and "and 4 more)" in html
