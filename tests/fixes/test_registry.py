"""The fix catalogue: one FixSpec per fix, validated when built and checked against the rules."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from agent.evaluate import evaluate
from agent.fixes import registry
from agent.fixes.spec import FixSpec, FixSpecError, Step
from agent.model.findings import Level
from agent.model.plan import RESTART_KIND, FactArea, HostVars
from agent.planning import build
from agent.rules.registry import RULES
from support import facts_builders as fb


def spec(**changes: Any) -> FixSpec:
    base = registry.fix("set-nic-dns-servers")
    return dataclasses.replace(base, **changes)


def test_every_rule_fix_has_a_spec_and_every_spec_a_rule() -> None:
    named = {fix_id for r in RULES for fix_id in r.metadata.fix_ids}
    assert named == set(registry.RULE_FIXES)
    assert set(registry.FIXES_BY_ID) == named | {"restart-transport"}
    assert registry.step(RESTART_KIND)[0].id == "restart-transport"


def test_the_tuple_order_is_the_order_fixes_run_in() -> None:
    order = [f.id for f in registry.FIXES]
    assert order.index("set-nic-dns-servers") < order.index("enable-nic-dns-registration")
    assert order[-1] == "restart-transport"


def test_a_rule_naming_an_unknown_fix_is_refused() -> None:
    rule = RULES[1]
    meta = dataclasses.replace(rule.metadata, fix_id="reboot-everything")
    forged = dataclasses.replace(rule, metadata=meta)
    with pytest.raises(FixSpecError, match="names fix 'reboot-everything', which has no FixSpec"):
        registry.check(registry.FIXES, [*RULES, forged])


def test_a_rule_naming_an_unknown_other_fix_is_refused() -> None:
    rule = next(r for r in RULES if r.metadata.other_fix_ids)
    meta = dataclasses.replace(rule.metadata, other_fix_ids=("open-every-port",))
    forged = dataclasses.replace(rule, metadata=meta)
    others = [r for r in RULES if r is not rule]
    with pytest.raises(FixSpecError, match="names fix 'open-every-port', which has no FixSpec"):
        registry.check(registry.FIXES, [*others, forged])
    # Without the rule that names it as another fix, the allow fix is an orphan.
    plain = dataclasses.replace(rule, metadata=dataclasses.replace(rule.metadata, other_fix_ids=()))
    with pytest.raises(FixSpecError, match="'allow-dns-through-firewall' is named by no rule"):
        registry.check(registry.FIXES, [*others, plain])


def test_a_fix_no_rule_names_is_refused() -> None:
    orphan = spec(id="set-something-else", steps=(Step("set-something-else"),))
    with pytest.raises(FixSpecError, match="named by no rule"):
        registry.check([*registry.FIXES, orphan], RULES)


def test_two_fixes_cannot_declare_one_step_kind() -> None:
    twin = spec(id="set-something-else")
    with pytest.raises(FixSpecError, match="declared by 'set-nic-dns-servers' and 'set-something-else'"):
        registry.check([*registry.FIXES, twin], RULES)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "Bad_Id"}, "lower-case words"),
        ({"summary": ""}, "summary"),
        ({"steps": ()}, "at least one kind of step"),
        ({"steps": (Step("a-b"), Step("a-b"))}, "declared twice"),
        ({"reads": ()}, "drift check"),
        ({"level": Level.ORGANIZATION}, "organisation steps only"),
    ],
)
def test_spec_validation(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(FixSpecError, match=message):
        spec(**changes)


def test_a_planner_step_outside_its_declaration_is_a_bug() -> None:
    fix = registry.fix("set-nic-dns-servers")
    assert fix.planner is not None
    narrowed = dataclasses.replace(fix, reads=(FactArea.EDGE_CONFIG,))
    facts = fb.host(nics=(fb.mapi_nic(ipv4_dns_servers=("10.0.0.10", "8.8.8.8")), fb.replication_nic()))
    finding = next(f for f in evaluate(facts) if f.fix_id == fix.id)
    with pytest.raises(ValueError, match="which it does not declare"):
        build._checked(narrowed, fix.planner(finding, facts, HostVars()))


def test_findings_carry_the_fix_s_own_disruption_flag() -> None:
    facts = fb.host(nics=(fb.mapi_nic(register_this_connections_address=False), fb.replication_nic()))
    found = [f for f in evaluate(facts) if f.fix_id is not None]
    assert found
    for finding in found:
        assert finding.fix_disrupts_mail_flow is registry.fix(finding.fix_id).disrupts_mail_flow
    assert registry.fix("add-smarthost-send-connector").disrupts_mail_flow is False


def test_a_fix_planning_steps_of_an_unknown_fix_is_refused() -> None:
    allow = registry.fix("allow-dns-through-firewall")
    assert allow.plans_steps_of == ("disable-dns-firewall-block",)
    forged = dataclasses.replace(allow, plans_steps_of=("open-every-port",))
    others = [f for f in registry.FIXES if f is not allow]
    with pytest.raises(FixSpecError, match="plans steps of 'open-every-port', which has no FixSpec"):
        registry.check([*others, forged], RULES)
    with pytest.raises(FixSpecError, match="plans_steps_of names the fix itself"):
        dataclasses.replace(allow, plans_steps_of=(allow.id,))
