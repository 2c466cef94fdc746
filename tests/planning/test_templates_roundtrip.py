"""Every template, with hostile values: the rendered remediate.ps1 and rollback.ps1 parse back
(tests/support/pwsh_oracle.py, an independent reader) to exactly the structured commands apply runs.

remediate.ps1 must be exactly ``[a.call for a in host.actions]``; rollback.ps1 exactly
``host.rollback_calls()`` (every action's rollback, last action first, then the restart).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jinja2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.fixes import dns_fault_tolerance, nic_dns_servers, nic_registration, registry, smart_host_connector
from agent.fixes import transport_dns as tdns
from agent.model.command import SWITCH, CmdletCall
from agent.model.plan import HostPlan
from agent.planning import render
from agent.planning.render import environment, render_host
from agent.resources import data_dir
from support import pwsh_oracle
from support.plan_builders import every_step, host_plan

TEMPLATES = data_dir("ps_templates")
HELPER = (TEMPLATES / "_set-exfix-app-setting.ps1.j2").read_text(encoding="utf-8")

HOSTILE = [
    "Ethernet0'; Remove-Item C:\\ -Recurse; '",
    "conn $(Stop-Service MSExchangeTransport)",
    "tick`$env:PATH`n` #> <# ",
    "line1\nRestart-Computer -Force\r\nline3",
    "\x1b[31mred\x1b[0m\x07",
    "smart \u2018quoted\u2019 \u201alow\u201b \u201cdouble\u201d",
    "rtl\u202eexe.ps1\u2028next\u0085",
    "emoji ✉️ 📬 and 名前",
    "semi;colon | pipe & amp > redirect",
    "@('a') -Force",
    "",
]


def _shape(call: CmdletCall) -> tuple[str, tuple[tuple[str, Any], ...]]:
    return call.cmdlet, call.parameters


def _parsed(script: pwsh_oracle.Script) -> list[tuple[str, tuple[tuple[str, Any], ...]]]:
    return [
        (s.cmdlet, tuple((n, SWITCH if v is pwsh_oracle.SWITCH else v) for n, v in s.parameters))
        for s in script.statements
    ]


def assert_round_trip(host: HostPlan, digest: str = "d" * 64) -> None:
    rendered = render_host(host, digest)
    for text in (rendered.remediate, rendered.rollback):
        # Nothing a host sent can hide in the text: every character is printable or a newline.
        assert all(ch.isprintable() or ch == "\n" for ch in text)
    remediate = pwsh_oracle.parse_script(rendered.remediate, functions=(HELPER,))
    rollback = pwsh_oracle.parse_script(rendered.rollback, functions=(HELPER,))
    assert _parsed(remediate) == [_shape(a.call) for a in host.actions]
    assert _parsed(rollback) == [_shape(c) for c in host.rollback_calls()]
    for script in (remediate, rollback):
        assert script.should_process
        assert script.assignments == (pwsh_oracle.Assignment("ErrorActionPreference", "Stop"),)
        assert all(f.text == HELPER for f in script.functions)
    removes = [s for s in rollback.statements if s.cmdlet == "Remove-SendConnector"]
    assert all(s.colon == frozenset({"Confirm"}) for s in removes)
    assert digest in rendered.remediate and digest in rendered.rollback


@pytest.mark.parametrize("value", HOSTILE)
def test_every_template_round_trips_hostile_values(value: str) -> None:
    host = host_plan(value)
    # Every step kind of every fix is in the host's plan: every template macro is exercised.
    assert {a.kind for a in host.actions} == set(registry.KINDS)
    assert_round_trip(host)


@pytest.mark.parametrize("fix_id", sorted(registry.RULE_FIXES))
def test_each_fix_template_alone_round_trips(fix_id: str) -> None:
    drafts = [d for d in every_step("Eth'0\n$(x)") if d.fix_id == fix_id]
    assert drafts, f"no action kind renders through {fix_id}"
    assert_round_trip(host_plan("Eth'0\n$(x)", drafts))


def test_every_fix_has_its_template_with_a_macro_per_step() -> None:
    env = environment()
    for fix in registry.FIXES:
        assert (TEMPLATES / f"{fix.template}.ps1.j2").is_file()
        module = env.get_template(f"{fix.template}.ps1.j2").module
        for step in fix.steps:
            assert hasattr(module, f"remediate_{step.macro_suffix}"), (fix.id, step.kind)


def test_the_helper_function_is_fixed_text() -> None:
    # The function is included verbatim: no Jinja syntax in it, so no value can be rendered in.
    for marker in ("{{", "{%", "{#"):
        assert marker not in HELPER
    rendered = render_host(host_plan("x'); Remove-Item C:\\ #"), "d" * 64)
    assert rendered.remediate.count(HELPER) == 1 and rendered.rollback.count(HELPER) == 1


def test_the_oracle_refuses_an_unknown_function_and_stray_code() -> None:
    rendered = render_host(host_plan("x"), "d" * 64).remediate
    with pytest.raises(pwsh_oracle.OracleError):
        pwsh_oracle.parse_script(rendered)  # the helper is not allowed
    tampered = rendered.replace("$document.Save($LiteralPath)", "$document.Save('C:\\evil')")
    with pytest.raises(pwsh_oracle.OracleError):
        pwsh_oracle.parse_script(tampered, functions=(HELPER,))
    with pytest.raises(pwsh_oracle.OracleError):
        pwsh_oracle.parse_script(rendered + "\nInvoke-Expression $x\n", functions=(HELPER,))
    with pytest.raises(pwsh_oracle.OracleError):
        pwsh_oracle.parse_script("[CmdletBinding()]\nparam()\n")


def test_an_empty_host_renders_scripts_that_do_nothing() -> None:
    host = dataclasses.replace(host_plan("x", []), findings=(), advisories=())
    rendered = render_host(host, "d" * 64)
    assert pwsh_oracle.parse_script(rendered.remediate).statements == ()
    assert pwsh_oracle.parse_script(rendered.rollback).statements == ()
    assert "changes nothing" in rendered.remediate and "Nothing to undo." in rendered.rollback


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=24)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(alias=_text, name=_text, domain=_text, path=_text)
def test_whole_scripts_round_trip_generated_values(alias: str, name: str, domain: str, path: str) -> None:
    ids = (f"rule|{alias}|{name}",)
    drafts = [
        nic_dns_servers.draft(7, alias, (alias, "10.0.0.10"), ("10.0.0.10",), ids),
        *nic_registration.drafts(7, alias, False, ids),
        *tdns.external_drafts("TransportService", name, (domain,), True, (domain,), (name,), ids),
        tdns.adapter_draft("TransportServer", name, 7, (alias,), ids),
        smart_host_connector.draft(domain, name, (domain,), (name,), ids),
        *dns_fault_tolerance.drafts(path, alias, path + ".bak", ids),
    ]
    assert_round_trip(host_plan(alias, drafts))


# --- the environment --------------------------------------------------------------------------


def _env_with(tmp_path: Path, text: str) -> jinja2.Environment:
    (tmp_path / "t.ps1.j2").write_text(text, encoding="utf-8")
    return environment(tmp_path)


def test_strict_undefined_fails_loudly(tmp_path: Path) -> None:
    env = _env_with(tmp_path, "Set-DnsClient -InterfaceIndex {{ action.missing | ps }}\n")
    with pytest.raises(jinja2.UndefinedError):
        env.get_template("t.ps1.j2").render(action=object())
    env = _env_with(tmp_path, "Set-DnsClient -InterfaceIndex {{ no_such_variable | ps }}\n")
    with pytest.raises(jinja2.UndefinedError):
        env.get_template("t.ps1.j2").render()


def test_a_value_without_a_filter_is_refused(tmp_path: Path) -> None:
    env = _env_with(tmp_path, "Set-DnsClient -InterfaceAlias {{ alias }}\n")
    with pytest.raises(jinja2.TemplateError, match="without the 'ps' or 'comment' filter"):
        env.get_template("t.ps1.j2").render(alias="x'; evil")
    env = _env_with(tmp_path, "Set-DnsClient -InterfaceAlias {{ alias | ps }} # {{ alias | comment }}\n")
    assert env.get_template("t.ps1.j2").render(alias="a'\nb") == (
        "Set-DnsClient -InterfaceAlias ('a''' + [char]0x000A + 'b') # a'\\nb\n"
    )


def test_a_template_without_a_macro_for_the_step_fails(tmp_path: Path) -> None:
    action = host_plan("x").actions[0]
    fix, step = registry.step(action.kind)
    (tmp_path / f"{fix.template}.ps1.j2").write_text("{% macro remediate_other(action) %}x{% endmacro %}\n")
    with pytest.raises(jinja2.TemplateError, match=f"has no macro remediate_{step.macro_suffix}"):
        render._macro(environment(tmp_path), action.kind, "remediate")


def test_a_template_refuses_a_call_of_another_cmdlet() -> None:
    module: Any = environment().get_template("set-transport-external-dns.ps1.j2").module
    action = next(a for a in host_plan("x").actions if a.kind == "set-transport-external-dns")
    wrong = dataclasses.replace(action, call=dataclasses.replace(action.call, cmdlet="Set-Mailbox"))
    with pytest.raises(jinja2.TemplateError, match="no case for action kind"):
        module.remediate_set_transport_external_dns(wrong)
