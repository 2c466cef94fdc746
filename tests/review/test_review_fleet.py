"""The review pages of a 200-server plan (plain data, tests/review/_fleet.py): identical
changes grouped, every server once, apply's schedule, the healthy servers in one line, the
scripts collapsed with their sha256, the digest first, and the same model behind both pages."""

from __future__ import annotations

import itertools
import re
from collections import Counter

import pytest

from agent.evaluate import evaluate
from agent.model.facts import AreaIssue, CollectionArea
from agent.model.plan import Plan
from agent.planning import build_plan, render_plan
from agent.planning.schedule import DEFAULT_LIMITS, fleet_schedule
from agent.report import safe
from agent.report.display import plural
from agent.review import render_review, render_review_html
from agent.review.model import build_review, minutes
from review._fleet import NIC_DNS, REGISTRATION, TRANSPORT, fleet_plan
from support.facts_builders import host
from workflow._review_html_check import parse_review

SIZE = 200


@pytest.fixture(scope="module")
def plan() -> Plan:
    return fleet_plan(SIZE)


def test_identical_changes_are_one_group_each_and_every_server_is_shown_once(plan: Plan) -> None:
    review = build_review(plan, render_plan(plan), "plan.json")
    changing = [g for g in review.groups if g.steps]
    assert [len(g.hosts) for g in changing] == [40, 40, 40]
    rules = {rule for g in changing for rule in g.rules}
    assert {REGISTRATION, NIC_DNS, TRANSPORT} <= rules
    registration = next(g for g in changing if REGISTRATION in g.rules)
    assert registration.summary == (
        "40 servers: RegisterThisConnectionsAddress: False \u2192 True; register-dns-client, "
        "then restart MSExchangeTransport"
    )
    # Every step of the group is the same on each of its servers, description aside.
    for group in changing:
        keys = {tuple((a.kind, a.changes) for a in h.plan.actions) for h in group.hosts}
        assert len(keys) == 1
    shown = [h.plan.host for g in review.groups for h in g.hosts] + list(review.healthy)
    assert Counter(shown) == Counter(h.host for h in plan.hosts)
    assert len(review.healthy) == 80 and all(not plan.host(h).findings for h in review.healthy)


def test_the_schedule_is_apply_s_scheduler_for_the_printed_command(plan: Plan) -> None:
    review = build_review(plan, render_plan(plan), "plan.json")
    assert review.schedule == fleet_schedule(plan, DEFAULT_LIMITS)
    assert "--serial" not in review.apply_command and "--forks" not in review.apply_command
    restarts = review.schedule.restarts
    # One at a time, in the plan's order, each out of mail flow for the restart's estimate.
    restarting = [h.host for h in plan.hosts if any(a.disruptive for a in h.automatic)]
    assert [t.host for t in restarts] == restarting
    assert all(b.at >= a.ends for a, b in itertools.pairwise(restarts))
    assert review.schedule.outage_s == 120 * 120 and review.schedule.duration_s == 120 * 120
    # Each group's servers in apply's order.
    for group in review.groups:
        places = [h.turn.position for h in group.hosts if h.turn is not None]
        assert places == sorted(places)


def test_both_pages_render_the_same_groups_schedule_and_counts(plan: Plan) -> None:
    scripts = render_plan(plan)
    review = build_review(plan, scripts, "plan.json")
    markdown = render_review(plan, scripts, "plan.json")
    html_text = render_review_html(plan, scripts, "plan.json")
    page = parse_review(html_text)
    text = page.text
    for group in review.groups:
        assert f"### Group {group.number} \u00b7 {safe.markdown(group.summary)}" in markdown
        assert f"Group {group.number} \u00b7 {group.summary}" in text
    total = minutes(review.schedule.outage_s)
    assert total == "about 4 hours" and f"{total} in all" in markdown and f"{total} in all" in text
    # Healthy servers: one line in each page (a collapsed one in the browser).
    healthy_md = [line for line in markdown.splitlines() if line.startswith("80 servers, no finding")]
    assert len(healthy_md) == 1 and all(name in healthy_md[0] for name in review.healthy)
    assert "80 servers: no finding, nothing to change" in text
    # The digest first, before anything else the page says.
    assert text.index(plan.digest) < text.index("In plain words")
    assert markdown.index(plan.digest) < markdown.index("## In plain words")
    # Every server has its detail one click away: a <details> with its anchor.
    anchors = {a.get("id") for tag, a in page.tags if tag == "details"}
    for unit in plan.units:
        if unit.actions or unit.findings:
            assert f"host-{unit.directory}" in anchors
    # Scripts collapsed, each with its sha256 in its summary line.
    for unit in plan.units:
        for name, sha in unit.scripts:
            assert f"hosts/{unit.directory}/{name} sha256 {sha}" in text
            assert f"sha256 `{sha}`" in markdown


def test_the_wording_of_a_fleet_s_pages(plan: Plan) -> None:
    scripts = render_plan(plan)
    markdown = render_review(plan, scripts, "plan.json")
    text = parse_review(render_review_html(plan, scripts, "plan.json")).text
    for page in (markdown, text):
        assert not re.search(r"\b1 (servers|findings|groups|restarts|steps|changes|problems)\b", page)
        assert not re.search(r"[a-z-]+\|[^|\s]+\.contoso\.local\|", page)  # no internal finding key
        assert "Status: (none)" not in page and "(as found; stopped and started)" in page
        assert "estimate" in page


def test_plural_and_minutes() -> None:
    assert plural(1, "server") == "1 server" and plural(2, "server") == "2 servers"
    assert plural(2, "organisation") == "2 organisations"
    assert minutes(120) == "about 2 minutes" and minutes(60) == "about 1 minute"
    assert minutes(14_400) == "about 4 hours" and minutes(3_900) == "about 1 hour 5 minutes"
    assert minutes(20) == "under a minute" and minutes(0) == "about 0 minutes"


def test_a_server_not_fully_looked_at_is_not_counted_healthy() -> None:
    denied = AreaIssue(CollectionArea.EDGE_CONFIG, "Get-Content: access denied")
    fleet = [host(name="ex01.contoso.local"), host(name="ex02.contoso.local", issues=(denied,))]
    plan = build_plan(fleet, {f.host: evaluate(f) for f in fleet}, {})
    review = build_review(plan, render_plan(plan), "plan.json")
    assert review.healthy == ("ex01.contoso.local",)
    (group,) = review.groups
    assert [h.plan.host for h in group.hosts] == ["ex02.contoso.local"]
    assert group.summary == "1 server: no finding, but not everything was looked at (see Not judged)"
