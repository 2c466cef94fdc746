"""The fix catalogue: an explicit tuple of FixSpecs, checked against the rules when loaded.

No registration by import side effect: adding a fix means adding its spec here. The tuple's
order is the order fixes run in on one host: the NIC's DNS servers come before registration,
so Register-DnsClient registers with the servers that hold the AD zone; transport settings
next; the connector last (it needs no restart); the shared restart after all of them.

Loading refuses a rule whose fix id has no spec, a fix no rule names (other than the shared
restart, which the plan builder adds), and a step kind two fixes declare.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from agent.fixes import (
    clear_dns_client_cache,
    dns_fault_tolerance,
    firewall_dns_allow,
    firewall_dns_block,
    nic_dns_servers,
    nic_registration,
    restart_transport,
    smart_host_connector,
    transport_dns,
)
from agent.fixes.spec import FixSpec, FixSpecError, Step
from agent.rules.registry import RULES, Rule

FIXES: tuple[FixSpec, ...] = (
    firewall_dns_block.SPEC,  # first: the host's DNS must get through before anything else is judged
    firewall_dns_allow.SPEC,  # after the block rules are off: an allow rule loses to a block rule
    nic_dns_servers.SPEC,
    nic_registration.SPEC,
    transport_dns.EXTERNAL_SPEC,
    transport_dns.INTERNAL_SPEC,
    smart_host_connector.SPEC,
    dns_fault_tolerance.SPEC,
    clear_dns_client_cache.SPEC,
    restart_transport.SPEC,
)

# Fixes the plan builder adds by itself; no rule names them.
BUILT_IN = frozenset({restart_transport.FIX_ID})


def check(
    fixes: Iterable[FixSpec], rules: Iterable[Rule]
) -> tuple[Mapping[str, FixSpec], Mapping[str, FixSpec]]:
    """(fix by id, fix by step kind), or FixSpecError naming what does not agree."""
    by_id: dict[str, FixSpec] = {}
    by_kind: dict[str, FixSpec] = {}
    for fix in fixes:
        if fix.id in by_id:
            raise FixSpecError(f"fix id {fix.id!r} is registered twice")
        by_id[fix.id] = fix
        for step in fix.steps:
            other = by_kind.setdefault(step.kind, fix)
            if other is not fix:
                raise FixSpecError(f"step kind {step.kind!r} is declared by {other.id!r} and {fix.id!r}")
    for fix in by_id.values():
        for planned_id in fix.plans_steps_of:
            if planned_id not in by_id:
                raise FixSpecError(f"fix {fix.id!r} plans steps of {planned_id!r}, which has no FixSpec")
    named = {fix_id for rule in rules for fix_id in rule.metadata.fix_ids}
    for rule in rules:
        for fix_id in rule.metadata.fix_ids:
            if fix_id not in by_id:
                raise FixSpecError(f"rule {rule.id!r} names fix {fix_id!r}, which has no FixSpec")
    for fix_id, fix in by_id.items():
        if fix_id not in named and fix_id not in BUILT_IN:
            raise FixSpecError(f"fix {fix_id!r} is named by no rule")
        if (fix.planner is None) != (fix_id in BUILT_IN):
            raise FixSpecError(f"fix {fix_id!r}: only a built-in fix has no planner")
    return MappingProxyType(by_id), MappingProxyType(by_kind)


FIXES_BY_ID, FIXES_BY_KIND = check(FIXES, RULES)
KINDS = frozenset(FIXES_BY_KIND)
# The fixes rules name: what a playbook may plan and apply (the restart comes with them).
RULE_FIXES: Mapping[str, FixSpec] = MappingProxyType(
    {fix.id: fix for fix in FIXES if fix.id not in BUILT_IN}
)


def fix(fix_id: str) -> FixSpec:
    """The fix with this id; KeyError for an unknown id."""
    return FIXES_BY_ID[fix_id]


def step(kind: str) -> tuple[FixSpec, Step]:
    """The fix declaring the step ``kind``, and the step; KeyError for an unknown kind."""
    owner = FIXES_BY_KIND[kind]
    return owner, owner.step(kind)
