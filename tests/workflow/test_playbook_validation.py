"""Playbook files: the shipped ones are valid; malformed ones are refused with file, line and key.

These run without the lab: `exfix playbook validate` and the checks `exfix playbook run` does
before it touches any host.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import main
from agent.errors import PlaybookError, UsageError
from agent.fixes.registry import RULE_FIXES as FIXES
from agent.model.findings import Finding, Severity
from agent.workflow.playbook import (
    Approval,
    Mode,
    load_playbook,
    parse_assignments,
    parse_playbook,
    resolve_variables,
    scope_for,
    shipped_playbooks,
)

SHIPPED = ("dns-451-diagnose", "dns-451-remediate", "dns-451-auto-safe", "smarthost-for-domain")

VALID = """\
name: my-playbook
description: A playbook for tests.
rules: [nic-dns-registration-disabled, remote-domain-aaaa-broken]
fixes:
  plan: [enable-nic-dns-registration, add-smarthost-send-connector]
  apply: [enable-nic-dns-registration, add-smarthost-send-connector]
mode: apply
approval: required
"""


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, text: str, name: str = "book.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- the shipped playbooks ------------------------------------------------------------------


def test_the_four_playbooks_ship_under_their_contract_names() -> None:
    names = {p.stem for p in shipped_playbooks()}
    assert names == set(SHIPPED)
    for path in shipped_playbooks():
        assert load_playbook(path).name == path.stem


def test_shipped_playbooks_say_what_the_issue_asks() -> None:
    books = {p.stem: load_playbook(p) for p in shipped_playbooks()}
    diagnose = books["dns-451-diagnose"]
    assert diagnose.mode is Mode.DIAGNOSE and not diagnose.plan_fixes and not diagnose.apply_fixes

    remediate = books["dns-451-remediate"]
    assert remediate.mode is Mode.APPLY and remediate.approval is Approval.REQUIRED
    assert set(remediate.plan_fixes) == set(FIXES) == set(remediate.apply_fixes)

    safe = books["dns-451-auto-safe"]
    assert safe.approval is Approval.AUTO and set(safe.plan_fixes) == set(FIXES)
    assert safe.apply_fixes and all(not FIXES[f].disrupts_mail_flow for f in safe.apply_fixes)
    assert not safe.allow_restart

    smarthost = books["smarthost-for-domain"]
    assert smarthost.approval is Approval.AUTO
    assert smarthost.plan_fixes == smarthost.apply_fixes == ("add-smarthost-send-connector",)
    assert [(s.rule_id, s.subject_variable) for s in smarthost.rules] == [
        ("remote-domain-aaaa-broken", "domain")
    ]
    assert smarthost.variable("domain").required


def test_validate_and_list_commands() -> None:
    for path in shipped_playbooks():
        code, out, _ = cli("playbook", "validate", str(path))
        assert code == 0 and "valid playbook" in out
    code, out, _ = cli("playbook", "list", "--format", "json")
    assert code == 0
    assert {b["name"] for b in json.loads(out)["playbooks"]} == set(SHIPPED)
    code, out, _ = cli("playbook", "list")
    assert code == 0 and all(name in out for name in SHIPPED) and "--var domain=" in out


# --- malformed playbooks: exit 1, file, line and key ----------------------------------------

HOSTILE = "$(Remove-Item C:\\ -Recurse)`;\x1b[31m\u202e"

MALFORMED = [
    pytest.param(VALID + "approvals: auto\n", 9, "approvals", "unknown key", id="unknown-top-key"),
    pytest.param(
        VALID + "verify:\n  timeout: 30\n  retries: 3\n",
        11,
        "verify.retries",
        "unknown key",
        id="unknown-nested-key",
    ),
    pytest.param(VALID + "serial: two\n", 9, "serial", "whole number", id="wrong-type-serial"),
    pytest.param(VALID + "allow_restart: 'yes'\n", 9, "allow_restart", "true or false", id="wrong-type-bool"),
    pytest.param(
        VALID.replace("rules: [nic-dns-registration-disabled,", "rules: [nic-dns-registration-off,"),
        3,
        "rules[0]",
        "unknown rule",
        id="unknown-rule",
    ),
    pytest.param(
        VALID.replace("  plan: [enable-nic-dns-registration,", "  plan: [enable-nic-dns,"),
        5,
        "fixes.plan[0]",
        "unknown fix",
        id="unknown-fix",
    ),
    pytest.param(
        VALID.replace("approval: required", "approval: auto"),
        6,
        "fixes.apply[0]",
        "disrupts mail flow",
        id="auto-approval-disruptive-fix",
    ),
    pytest.param(
        VALID.replace(
            "  plan: [enable-nic-dns-registration, add-smarthost-send-connector]",
            "  plan: [add-smarthost-send-connector]",
        ),
        6,
        "fixes.apply[0]",
        "may be applied but not planned",
        id="apply-not-plan",
    ),
    pytest.param(
        VALID.replace("mode: apply", "mode: fix-everything"), 7, "mode", "not one of", id="bad-mode"
    ),
    pytest.param(
        VALID.replace(
            "rules: [nic-dns-registration-disabled, remote-domain-aaaa-broken]",
            "rules: [host-firewall-blocks-dns]",
        ).replace(
            "[enable-nic-dns-registration, add-smarthost-send-connector]", "[allow-dns-through-firewall]"
        ),
        5,
        "fixes.plan[0]",
        "also plans steps of 'disable-dns-firewall-block'",
        id="fix-without-the-fix-whose-steps-it-plans",
    ),
    pytest.param(
        VALID.replace("name: my-playbook", 'name: "$(Remove-Item C:\\\\ -Recurse)`;\\e[31m\\u202e"'),
        1,
        "name",
        "control or format",
        id="hostile-name",
    ),
    pytest.param(
        VALID.replace("name: my-playbook", f"name: {HOSTILE}"),
        1,
        None,
        "is not allowed",
        id="raw-escape-character",
    ),
    pytest.param(
        VALID.replace("description: A playbook for tests.", 'description: "run \\e[2J now"'),
        2,
        "description",
        "control or format",
        id="hostile-description",
    ),
    pytest.param(VALID + '"$(evil)`\\n": 1\n', 9, "$(evil)`\\n", "unknown key", id="hostile-key"),
    pytest.param(
        VALID.replace(
            "rules: [nic-dns-registration-disabled,",
            'rules: ["nic-dns-registration-disabled; Remove-Item *",',
        ),
        3,
        "rules[0]",
        "unknown rule",
        id="hostile-rule-id",
    ),
    pytest.param(
        VALID + 'variables:\n  domain: {type: domain, default: "a.com; rm -rf /"}\n',
        10,
        "variables.domain.default",
        "not a domain name",
        id="hostile-variable-default",
    ),
    pytest.param(
        VALID + "variables:\n  exfix_password: {type: string}\n",
        10,
        "variables.exfix_password",
        "not a planner variable",
        id="unknown-planner-variable",
    ),
    pytest.param(
        VALID.replace(
            "rules: [nic-dns-registration-disabled, remote-domain-aaaa-broken]",
            "rules:\n  - {id: remote-domain-aaaa-broken, subject: '${domain}'}",
        ),
        4,
        "rules[0].subject",
        "not declared",
        id="undeclared-variable",
    ),
    pytest.param(
        VALID.replace("mode: apply", "mode: diagnose").replace("approval: required\n", ""),
        4,
        "fixes",
        "never plans",
        id="diagnose-with-fixes",
    ),
    pytest.param(
        VALID.replace(
            "  apply: [enable-nic-dns-registration, add-smarthost-send-connector]",
            "  apply: [add-smarthost-send-connector]",
        ),
        6,
        "fixes.apply",
        "exactly what was approved",
        id="required-apply-subset",
    ),
    pytest.param(VALID + "serial: [1\n", 10, None, "not valid YAML", id="yaml-syntax"),
    pytest.param(VALID + "name: again\n", 9, "name", "duplicate key", id="duplicate-key"),
    pytest.param(
        VALID + "verify: {retry_queues: false}\n", 9, "verify.retry_queues", "not supported", id="no-retry"
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "problem"), MALFORMED)
def test_malformed_playbooks_are_refused_with_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str | None, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path)
    error = caught.value
    assert error.path == str(path)
    assert error.line == line, str(error)
    assert error.key == key
    assert problem in error.problem

    code, out, err = cli("playbook", "validate", str(path))
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one line, no traceback
    assert f"{path}:{line}" in lines[0] and problem in lines[0]
    if key is not None:
        assert f"key {key!r}"[:20] in lines[0]
    assert "\x1b" not in err and "\u202e" not in err  # hostile text never reaches the terminal raw


BOMB = "".join(
    f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]\n"
    for prev, name in zip("abcdefg", "bcdefgh", strict=True)
)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (
            'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + BOMB,
            "alias bomb",
        ),
        ("serial: !!python/object/apply:os.system [id]\n", "is not allowed"),
        ("serial: 0x1F\n", "in decimal"),
        ("verify: {timeout: .inf}\n", "NaN and infinity"),
        ("<<: {serial: 2}\n", "merge keys"),
    ],
)
def test_yaml_tricks_are_refused_with_a_line(tmp_path: Path, extra: str, problem: str) -> None:
    path = write(tmp_path, VALID + extra)
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path)
    assert problem in caught.value.problem and caught.value.line is not None and caught.value.line >= 9
    code, out, err = cli("playbook", "validate", str(path))
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and problem in err


def test_a_playbook_that_tries_to_auto_apply_a_disruptive_fix_is_refused_by_run(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("approval: required", "approval: auto"))
    code, out, err = cli("playbook", "run", str(path), "--lab")
    assert code == 1 and out == ""
    assert "disrupts mail flow" in err and "never applied without approval" in err


def test_auto_with_allow_restart_and_fixes_of_rules_not_acted_on_are_refused(tmp_path: Path) -> None:
    auto = textwrap.dedent("""\
        name: x
        description: d
        rules: [remote-domain-aaaa-broken]
        fixes: {plan: [add-smarthost-send-connector], apply: [add-smarthost-send-connector]}
        mode: apply
        approval: auto
        allow_restart: true
        """)
    with pytest.raises(PlaybookError, match="cannot allow a restart") as caught:
        parse_playbook(auto, source="x.yaml")
    assert caught.value.line == 7
    unrelated = auto.replace("approval: auto\nallow_restart: true\n", "").replace(
        "fixes: {plan: [add-smarthost-send-connector], apply: [add-smarthost-send-connector]}",
        "fixes: {plan: [set-nic-dns-servers], apply: [set-nic-dns-servers]}",
    )
    with pytest.raises(PlaybookError, match="fixes none of the rules"):
        parse_playbook(unrelated, source="x.yaml")


def test_oversized_binary_and_empty_files(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (300 * 1024))
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: \xff\xfe")
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    for path, problem in ((big, "KiB"), (binary, "UTF-8"), (empty, "empty")):
        with pytest.raises(PlaybookError, match=problem):
            load_playbook(path)
    with pytest.raises(PlaybookError, match="cannot read"):
        load_playbook(tmp_path / "missing.yaml")


# --- variables, tickets and digests at run time ---------------------------------------------


def test_variables_are_typed_and_overridden() -> None:
    book = load_playbook(next(p for p in shipped_playbooks() if p.stem == "smarthost-for-domain"))
    with pytest.raises(UsageError, match="needs --var domain="):
        resolve_variables(book, {})
    values = resolve_variables(book, parse_assignments(["domain=WingTipToys.com."]))
    assert values == {"domain": "wingtiptoys.com"}
    for bad in ("wingtiptoys.com; Remove-Item", "$(evil).com", "a b.com", "\x1b[31m.com"):
        with pytest.raises(UsageError, match="not a domain name"):
            resolve_variables(book, {"domain": bad})
    with pytest.raises(UsageError, match="has no variable"):
        resolve_variables(book, {"other": "x"})
    with pytest.raises(UsageError, match="NAME=VALUE"):
        parse_assignments(["domain"])
    # Two values for one name: which one the operator meant is not for exfix to guess.
    with pytest.raises(UsageError, match=r"--var domain is given twice \('a.com' and 'b.com'\)"):
        parse_assignments(["domain=a.com", "domain=b.com"])

    remediate = load_playbook(next(p for p in shipped_playbooks() if p.stem == "dns-451-remediate"))
    assert resolve_variables(remediate, {})["exfix_external_dns_servers"] == ()
    assert resolve_variables(remediate, {"exfix_external_dns_servers": "8.8.8.8, 1.1.1.1"})[
        "exfix_external_dns_servers"
    ] == ("8.8.8.8", "1.1.1.1")
    with pytest.raises(UsageError, match="not an IP address"):
        resolve_variables(remediate, {"exfix_external_dns_servers": "8.8.8.8;calc"})


def _finding(rule_id: str, subject: str) -> Finding:
    return Finding(rule_id=rule_id, host="ex01", subject=subject, severity=Severity.HIGH, title="t",
                   summary="s", evidence=(), fix_id=None, fix_disrupts_mail_flow=False)  # fmt: skip


def test_scope_keeps_only_the_rule_and_subject_asked_for() -> None:
    book = load_playbook(next(p for p in shipped_playbooks() if p.stem == "smarthost-for-domain"))
    scope = scope_for(book, {"domain": "wingtiptoys.com"})
    assert scope.covers(_finding("remote-domain-aaaa-broken", "WingTipToys.com."))
    assert not scope.covers(_finding("remote-domain-aaaa-broken", "fabrikam.com"))
    assert not scope.covers(_finding("queue-dns-failure", "wingtiptoys.com"))


@pytest.mark.parametrize("ticket", ["../etc", "..", "a b", "$(id)", "x" * 65, "INC`1`", "", "-rf", "t\nx"])
def test_hostile_ticket_ids_are_refused_before_anything_runs(ticket: str) -> None:
    code, out, err = cli("playbook", "run", "dns-451-diagnose", "--lab", "--ticket", ticket)
    assert code == 1 and out == ""
    assert "--ticket must be" in err and len(err.strip().splitlines()) == 1


def test_bad_approve_digest_and_approve_on_a_playbook_that_never_applies(tmp_path: Path) -> None:
    code, _, err = cli("playbook", "run", "dns-451-remediate", "--lab", "--approve", "abc")
    assert code == 1 and "64 lower-case hexadecimal" in err
    code, _, err = cli("playbook", "run", "dns-451-diagnose", "--lab", "--approve", "a" * 64,
                       "--out", str(tmp_path))  # fmt: skip
    assert code == 1 and "never applies" in err
    code, _, err = cli("playbook", "run", "no-such-playbook", "--lab")
    assert code == 1 and "no playbook file or shipped playbook" in err


def test_the_allow_fix_is_listed_with_the_block_fix_whose_steps_it_plans(tmp_path: Path) -> None:
    rules = "rules: [nic-dns-registration-disabled, remote-domain-aaaa-broken]"
    fixes = "[enable-nic-dns-registration, add-smarthost-send-connector]"
    text = VALID.replace(rules, "rules: [host-firewall-blocks-dns]")
    text = text.replace(fixes, "[disable-dns-firewall-block, allow-dns-through-firewall]")
    text = text.replace("approval: required", "approval: auto")  # both are non-disruptive
    book = load_playbook(write(tmp_path, text))
    assert set(book.apply_fixes) == {"disable-dns-firewall-block", "allow-dns-through-firewall"}
