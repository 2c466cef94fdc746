"""review.html in a real browser: headless Chromium (Debian's ``chromium``) opens the page of
the 5-host lab plan and of a 200-server plan, and the test reads the DOM it built.

Checked: every server and every change group is on the page, the digest, the schedule in
apply's order; the page requests nothing but itself and logs no console error; its CSP is
the strict one; a link to a server marks it (``:target``, no script); printed, the part before
the appendix is a handful of pages. A screenshot (the first screen and the whole page, PNG)
and the PDF of each page are saved in ``$EXFIX_TEST_ARTIFACTS`` (default: a folder under
pytest's tmp path) for a person to look at.

Skips when chromium is not installed, unless ``CI`` is set: then it fails (.ci/run installs it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.model.plan import Plan, plan_from_json
from agent.planning import render_plan
from agent.planning.schedule import fleet_schedule
from agent.review import write_plan_dir
from agent.review.model import build_review
from apply._apply_support import lab_fleet
from review._chromium import Browser, Tab, chromium, launch, open_tab, pdf_pages
from review._fleet import fleet_plan

CSP = "default-src 'none'; style-src 'unsafe-inline'"
PRINTED_BEFORE_APPENDIX = 6  # pages of a 200-server plan before its appendix (measured: 6)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    binary = chromium()
    if binary is None:
        reason = "chromium is not installed (/usr/bin/chromium, Debian's package 'chromium')"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}, and CI is set: the browser test of review.html must run in CI")
        pytest.skip(f"{reason}: the browser test of review.html cannot run")
    with launch(binary) as running:
        yield running


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    named = os.environ.get("EXFIX_TEST_ARTIFACTS")
    path = Path(named) if named else tmp_path_factory.mktemp("review-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def lab_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 5-host mixed-fleet lab, planned over real sockets, written as a plan bundle."""
    tmp = tmp_path_factory.mktemp("lab-plan")
    with lab_fleet("mixed-fleet", tmp) as fleet:
        fleet.plan(tmp / "plan")
    return tmp / "plan"


def _dom(tab: Tab) -> dict[str, object]:
    loaded: dict[str, object] = tab.evaluate(
        """JSON.stringify({
          digest: document.getElementById('digest').textContent,
          csp: document.querySelector('meta[http-equiv="Content-Security-Policy"]').content,
          scripts: document.scripts.length,
          groups: [...document.querySelectorAll('section.group > h2')].map(h => h.textContent),
          details: [...document.querySelectorAll('.hosts > details')].map(d => d.id),
          open: document.querySelectorAll('details[open]').length,
          healthy: (document.querySelector('#healthy .servers') || {textContent: ''}).textContent,
          order: [...document.querySelectorAll('#schedule ol.order > li > a')].map(a => a.textContent),
          sha: [...document.querySelectorAll('details.script-file > summary')].map(s => s.textContent),
          visible: document.body.innerText,
          firstScreen: document.elementFromPoint(640, 120).closest('section') ?.className,
        })"""
    )
    assert isinstance(loaded, str)
    result: dict[str, object] = json.loads(loaded)
    return result


def _check(browser: Browser, plan_dir: Path, name: str, artifacts: Path) -> tuple[dict[str, object], int]:
    plan: Plan = plan_from_json((plan_dir / "plan.json").read_text(encoding="utf-8"), source="plan.json")
    review = build_review(plan, render_plan(plan), "plan.json")
    url = (plan_dir / "review.html").resolve().as_uri()
    tab = open_tab(browser, url)
    try:
        dom = _dom(tab)
        assert tab.requests() == (url,), "the page requested something besides itself"
        assert tab.console_errors() == ()
        assert dom["csp"] == CSP and dom["scripts"] == 0
        assert dom["digest"] == plan.digest
        assert dom["firstScreen"] == "approve"  # the digest and the command are what one sees first
        # Every change group, and every server: in its group (one click away) or healthy.
        assert dom["groups"] == [f"Group {g.number} \u00b7 {g.summary}" for g in review.groups]
        in_groups = {f"host-{h.plan.directory}" for g in review.groups for h in g.hosts}
        assert set(dom["details"]) == in_groups  # type: ignore[arg-type]
        for unit in plan.hosts:
            assert f"host-{unit.directory}" in in_groups or unit.host in str(dom["healthy"])
        assert dom["open"] == 0  # every detail closed at first
        # The schedule: apply's order.
        assert dom["order"] == [t.host for t in fleet_schedule(plan).turns]
        # Each script collapsed, its sha256 in its summary.
        assert dom["sha"] == [f"{s.path} sha256 {s.sha256}" for s in review.scripts]
        visible = str(dom["visible"])
        assert "|" + plan.hosts[0].host + "|" not in visible  # no internal finding key
        tab.screenshot(artifacts / f"review-{name}.png")
        tab.screenshot(artifacts / f"review-{name}-full.png", full=True)
        pdf = tab.pdf(artifacts / f"review-{name}.pdf")
        assert pdf.startswith(b"%PDF-") and pdf_pages(pdf) >= 1
        # What the print has before the appendix (which starts on a page of its own).
        tab.evaluate("document.getElementById('appendix').remove()")
        before = pdf_pages(tab.pdf(artifacts / f"review-{name}-before-appendix.pdf"))
    finally:
        tab.close()
    # Following a link to a server opens its details and marks it, without any script: the
    # link names an element inside the closed <details>, which the browser reveals (HTML's
    # "ancestor details revealing" on fragment navigation), and CSS :target marks it.
    some = review.groups[-1].hosts[-1]
    assert f'href="#in-{some.anchor}"' in (plan_dir / "review.html").read_text(encoding="utf-8")
    tab = open_tab(browser, f"{url}#in-{some.anchor}")
    try:
        assert tab.evaluate("document.querySelector(':target').id") == f"in-{some.anchor}"
        assert tab.evaluate(f"document.getElementById('{some.anchor}').open") is True
        assert tab.evaluate("document.querySelectorAll('details[open]').length") == 1
        assert tab.console_errors() == ()
    finally:
        tab.close()
    return dom, before


def test_the_lab_plan_s_page_in_chromium(browser: Browser, lab_plan: Path, artifacts: Path) -> None:
    dom, before = _check(browser, lab_plan, "lab-5-hosts", artifacts)
    assert len(dom["details"]) == 5  # type: ignore[arg-type]
    assert before <= 5


def test_a_200_server_page_in_chromium_prints_in_a_handful_of_pages(
    browser: Browser, tmp_path: Path, artifacts: Path
) -> None:
    plan = fleet_plan(200)
    write_plan_dir(plan, tmp_path / "plan")
    dom, before = _check(browser, tmp_path / "plan", "fleet-200-hosts", artifacts)
    assert len(dom["groups"]) == 3  # type: ignore[arg-type]
    assert before <= PRINTED_BEFORE_APPENDIX
    # What a reader sees before opening anything: no per-server evidence, no script text.
    assert "Get-DnsClient" not in str(dom["visible"]) and "$ErrorActionPreference" not in str(dom["visible"])
