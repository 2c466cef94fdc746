"""Every script the review stage writes, read by a grammar nobody here wrote
(tree-sitter-powershell, tests/support/ts_oracle.py): hostile host values come back as the same
commands, parameters and literal values that apply executes, and no value ever becomes a
command, a variable, a subexpression or a comment.

The one place the grammar and PowerShell read exfix's text differently (the typographic single
quotes) is pinned below, with what the PowerShell language specification says.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import pwsh
from agent.fixes import registry
from agent.model.command import SWITCH, CmdletCall, Endpoint
from agent.model.plan import SCHEMA, HostPlan, Plan, with_scripts
from agent.planning.render import render_host
from agent.resources import data_dir
from agent.review import write_plan_dir
from support import pwsh_oracle, ts_oracle
from support.plan_builders import host_plan

HELPER = (data_dir("ps_templates") / "_set-exfix-app-setting.ps1.j2").read_text(encoding="utf-8")
TYPOGRAPHIC = "\u2018\u2019\u201a\u201b"

HOSTILE = [
    "Ethernet0'; Remove-Item C:\\ -Recurse; '",
    "conn $(Stop-Service MSExchangeTransport) ${env:PATH} $x",
    "tick`$env:PATH`n` #> <# # not a comment",
    "line1\nRestart-Computer -Force\r\n# line3",
    "smart \u2018quoted\u2019 \u201alow\u201b; Remove-Item C:\\ #",
    "\u2019; Stop-Computer; \u2018",
    "@{a=1}; & calc.exe | Out-Null > C:\\x 2>&1 && whoami",
    "rtl\u202eexe.ps1\u2028next\u0085\x1b[2J",
    "emoji ✉️ 📬 and 名前",
    "-Force -Confirm:$false",
    "",
]


def _written(host: HostPlan, out: Path) -> dict[str, str]:
    """``host``'s scripts as the review stage writes them (agent/review/bundle.py), read back."""
    draft = Plan(schema=SCHEMA, hosts=(host,), digest="0" * 64)
    digest = draft.compute_digest()
    rendered = render_host(host, digest)
    plan = dataclasses.replace(draft, digest=digest, hosts=(with_scripts(host, rendered.sha256()),))
    write_plan_dir(plan, out)
    texts = {}
    for name in ("remediate.ps1", "rollback.ps1"):
        data = (out / "hosts" / host.directory / name).read_bytes()
        assert data.startswith(b"\xef\xbb\xbf")
        texts[name] = data[3:].decode("utf-8")
    return texts


def _calls(script: ts_oracle.TreeScript) -> list[tuple[str, tuple[tuple[str, Any], ...]]]:
    return [
        (c.name, tuple((n, SWITCH if v is ts_oracle.SWITCH else v) for n, v in c.parameters))
        for c in script.commands
    ]


def _comment_rows(text: str) -> set[int]:
    """The rows the templates start with '#', outside the helper function's fixed text."""
    start = text.find(HELPER.rstrip("\n"))
    skip = set()
    if start >= 0:
        first = text.count("\n", 0, start)
        skip = set(range(first, first + HELPER.rstrip("\n").count("\n") + 1))
    return {i for i, line in enumerate(text.split("\n")) if line.startswith("#") and i not in skip}


def assert_read_back(host: HostPlan, out: Path) -> None:
    texts = _written(host, out)
    expected = {"remediate.ps1": [a.call for a in host.actions], "rollback.ps1": list(host.rollback_calls())}
    for name, text in texts.items():
        script = ts_oracle.read_script(text, functions=(HELPER,))
        # The same commands, parameters and values apply runs (read as PowerShell reads strings).
        assert _calls(script) == [(c.cmdlet, c.parameters) for c in expected[name]], name
        assert script.should_process and script.assignments == (("ErrorActionPreference", "Stop"),)
        assert all(f == HELPER.rstrip("\n") for f in script.functions)
        # No value made a comment, or hid one: each comment is a line the template starts with '#'.
        assert {c.start_point[0] for c in script.comments} == _comment_rows(text), name
        # The grammar's own reading differs only where the specification says it is wrong: it
        # takes a doubled typographic quote for two characters (pinned in the test below).
        for command in script.commands:
            for string in command.strings:
                assert string.grammar == "".join(ch * 2 if ch in TYPOGRAPHIC else ch for ch in string.spec)
        # And the text is what the independent oracle of tests/support/pwsh_oracle.py reads.
        assert [
            (s.cmdlet, s.parameters) for s in pwsh_oracle.parse_script(text, functions=(HELPER,)).statements
        ] == [
            (c.name, tuple((n, pwsh_oracle.SWITCH if v is ts_oracle.SWITCH else v) for n, v in c.parameters))
            for c in script.commands
        ]


@pytest.mark.parametrize("value", HOSTILE)
def test_every_written_script_reads_back_through_the_grammar(value: str, tmp_path: Path) -> None:
    host = host_plan(value)
    assert {a.kind for a in host.actions} == set(registry.KINDS)  # every template, every step
    assert_read_back(host, tmp_path / "plan")


_hostile_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(
            list("'\u2018\u2019\u201a\u201b\"`$(){}[]@#<>;|&,+=:.-\\ \n\r\t\x00\x1b\u202e\u2028")
        ),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=20,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_hostile_text)
def test_generated_hostile_values_read_back_through_the_grammar(value: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        assert_read_back(host_plan(value), Path(tmp) / "plan")


# --- where the grammar and PowerShell disagree ------------------------------------------------


def test_the_grammar_misses_the_typographic_quotes_that_powershell_honours() -> None:
    """The Windows PowerShell Language Specification 3.0, 2.3.5.2 (String literals), defines
    single-quote-character as ' (U+0027), U+2018, U+2019, U+201A and U+201B, and about_Quoting_Rules
    says PowerShell treats smart quotation marks as normal quotation marks. The grammar ends
    and escapes a verbatim string with the ASCII quote only. PowerShell is right about
    PowerShell; exfix (agent/pwsh.py) and tests/support/pwsh_oracle.py follow the specification,
    so exfix doubles the four typographic quotes too, and never opens a string with one."""
    line = pwsh.command(CmdletCall(Endpoint.OS, "Set-DnsClient", (("InterfaceAlias", "it\u2019s"),)))
    assert line == "Set-DnsClient -InterfaceAlias 'it\u2019\u2019s'"
    (command,) = ts_oracle.read_script(line + "\n").commands
    (string,) = command.strings
    assert string.grammar == "it\u2019\u2019s"  # the grammar: two characters, the quote is text
    assert string.spec == "it\u2019s"  # PowerShell: a doubled quote character is one
    (statement,) = pwsh_oracle.parse(line)
    assert statement.parameters == (("InterfaceAlias", "it\u2019s"),)

    # Why it matters: left single, U+2019 ends the string for PowerShell and what follows runs.
    # The grammar sees one harmless string; the specification (and the oracle) see the command.
    undoubled = "Set-DnsClient -InterfaceAlias 'a\u2019; Stop-Computer -Force #'"
    (alone,) = ts_oracle.read_script(undoubled + "\n", spec=False).commands
    assert [n for n, _ in alone.parameters] == ["InterfaceAlias"]
    with pytest.raises(ValueError, match="would end the string"):
        _ = alone.strings[0].spec
    assert [(s.cmdlet, s.parameters) for s in pwsh_oracle.parse(undoubled)] == [
        ("Set-DnsClient", (("InterfaceAlias", "a"),)),
        ("Stop-Computer", (("Force", pwsh_oracle.SWITCH),)),
    ]

    # And a string opened with a typographic quote is a bare word to the grammar, a string to
    # PowerShell: a reason exfix only ever opens strings with the ASCII quote.
    with pytest.raises(ts_oracle.TreeError, match="generic_token"):
        ts_oracle.read_script("Set-DnsClient -InterfaceAlias \u2018a\u2019\n")


def test_the_grammar_reader_refuses_what_exfix_never_writes() -> None:
    for code in (
        "Set-DnsClient -InterfaceAlias $alias\n",
        "Set-DnsClient -InterfaceAlias $(Get-Date)\n",
        'Set-DnsClient -InterfaceAlias "a"\n',
        "Set-DnsClient -InterfaceAlias 'a' # trailing\n",
        "Set-DnsClient -InterfaceAlias 'a' | Out-Null\n",
        "Set-DnsClient 'positional'\n",
        "& 'Set-DnsClient'\n",
        "Set-DnsClient -InterfaceAlias ('a' + $x)\n",
        "Set-DnsClient -InterfaceAlias ([int]0x41 + 'a')\n",
    ):
        with pytest.raises(ts_oracle.TreeError):
            ts_oracle.read_script(code)
