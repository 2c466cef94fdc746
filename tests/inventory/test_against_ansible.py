"""exfix reads inventories as ansible-core reads them: a differential test against the real thing.

For every inventory of the corpus (tests/inventory/corpus/*/: ``source`` names what ``-i``
takes, ``limits`` one ``--limit`` per line) and for Hypothesis-generated ones, ansible-core
itself (tests/support/ansible_oracle.py, a separate process) says which hosts there are, which
groups each is in, which hosts each limit selects, and what its psrp or winrm plugin would
connect with. exfix must agree on every one of them. Nothing expected is written by hand.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.errors import UsageError
from agent.inventory import Inventory, load_inventory
from agent.model.credential import CredentialSource
from support.ansible_reference import (
    Oracle,
    ansible_inventory_cli,
    ansible_python,
    exfix_settings,
    expected_settings,
)

CORPUS = Path(__file__).with_name("corpus")
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
PYTHON = ansible_python()
needs_ansible = pytest.mark.skipif(
    PYTHON is None, reason="ansible-core is not installed (pip install '.[test]' brings it)"
)


@pytest.fixture(scope="module")
def oracle() -> Iterator[Oracle]:
    assert PYTHON is not None
    running = Oracle(PYTHON)
    yield running
    running.close()


def _case(name: str) -> tuple[Path, str, list[str]]:
    case = CORPUS / name
    source = (case / "source").read_text(encoding="utf-8").strip()
    limits = [line for line in (case / "limits").read_text(encoding="utf-8").split("\n") if line.strip()]
    return case, source, limits


def _load(case: Path, source: str) -> Inventory:
    here = os.getcwd()
    os.chdir(case)  # relative paths (ca_cert, @file) are relative to where exfix runs, as Ansible's
    try:
        return load_inventory(source)
    finally:
        os.chdir(here)


def _select(inventory: Inventory, case: Path, limit: str) -> list[str] | None:
    here = os.getcwd()
    os.chdir(case)
    try:
        return sorted(t.name for t in inventory.select(limit))
    except UsageError:
        return None
    finally:
        os.chdir(here)


def compare(inventory: Inventory, reply: dict[str, Any], case: Path, limits: list[str]) -> None:
    assert "error" not in reply, reply.get("error")
    hosts = reply["hosts"]
    targets = {t.name: t for t in inventory.hosts}
    assert set(targets) | set(inventory.unreachable) == set(hosts)
    resolver = inventory.credentials(environ={})
    for name, answer in hosts.items():
        settings_ = answer["settings"]
        if settings_["connection"] not in ("psrp", "winrm"):
            assert name in inventory.unreachable, name
            continue
        assert "error" not in settings_, (name, settings_["error"])
        target = targets[name]
        assert target.connection == settings_["connection"], name
        assert list(target.groups) == answer["groups"], name
        inline = target.credential.source is CredentialSource.INVENTORY
        password = resolver.resolve(target).password if inline else None
        shown = exfix_settings(target, password.reveal() if password is not None else None)
        assert shown == expected_settings(settings_), name
    for limit, selected in reply["limits"].items():
        mine = _select(inventory, case, limit)
        if isinstance(selected, dict) or not selected:  # Ansible: an error, or no host
            assert mine is None, (limit, mine, selected)
        else:
            assert mine == sorted(selected), limit


@needs_ansible
@pytest.mark.parametrize("name", CASES)
def test_corpus_reads_as_ansible_reads_it(oracle: Oracle, name: str) -> None:
    case, source, limits = _case(name)
    reply = oracle.ask(case / source, case, limits)
    compare(_load(case, source), reply, case, limits)


def test_the_corpus_covers_what_the_issue_lists() -> None:
    assert len(CASES) >= 25
    every = "".join(p.read_text(encoding="utf-8", errors="replace") for p in CORPUS.rglob("*") if p.is_file())
    for needle in (
        "[exchange:vars]",
        ":children]",
        "ansible_group_priority",
        "ansible_connection: winrm",
        "ansible_winrm_",
        "ansible_psrp_",
        "_meta",
        "@retry.txt",
        "[01:05]",
        "~ex0",
        "[-1]",
    ):
        assert needle in every, needle
    sources = {(CORPUS / n / "source").read_text(encoding="utf-8").strip() for n in CASES}
    assert any((CORPUS / n / _case(n)[1]).is_dir() for n in CASES)  # a directory inventory
    assert any(s.endswith(".py") for s in sources)  # a script
    assert list(CORPUS.glob("*/group_vars/*/*")) and list(CORPUS.glob("*/host_vars/*.json"))


@needs_ansible
@pytest.mark.parametrize("name", ["09-group-vars-dirs", "12-script"])  # each runs Ansible twice: few
def test_the_ansible_form_and_stdin_read_what_ansible_inventory_prints(oracle: Oracle, name: str) -> None:
    # -i ansible:PATH runs the real ansible-inventory --list; "-" reads that JSON on stdin.
    case, source, limits = _case(name)
    cli = ansible_inventory_cli()
    assert cli is not None
    reply = oracle.ask(case / source, case, limits)
    compare(_load(case, f"ansible:{source}"), reply, case, limits)
    printed = subprocess.run(
        [cli, "-i", source, "--list"], cwd=case, capture_output=True, text=True, check=True
    ).stdout
    here = os.getcwd()
    os.chdir(case)
    try:
        from_stdin = load_inventory("-", stdin=lambda: printed)
    finally:
        os.chdir(here)
    compare(from_stdin, reply, case, limits)


# --- generated inventories ------------------------------------------------------------------

_NAMES = ["g" + c for c in "abcdef"]
_HOSTS = [f"ex{n:02d}.contoso.local" for n in range(1, 7)]
_VALUES = {
    "ansible_port": st.sampled_from([5985, 5986, 8080, "5985"]),
    "ansible_psrp_protocol": st.sampled_from(["http", "https"]),
    "ansible_psrp_auth": st.sampled_from(["ntlm", "kerberos", "negotiate", "credssp"]),
    "ansible_psrp_path": st.sampled_from(["wsman", "alt"]),
    "ansible_psrp_configuration_name": st.sampled_from(["Microsoft.PowerShell", "JEA"]),
    "ansible_psrp_read_timeout": st.sampled_from([40, 60]),
    "ansible_user": st.sampled_from(["svc", "CONTOSO\\svc", "svc@CONTOSO.LOCAL"]),
    "ansible_connection": st.sampled_from(["psrp", "winrm"]),
    "ansible_winrm_transport": st.sampled_from(["ntlm", "kerberos", "credssp"]),
    "ansible_host": st.sampled_from(["192.0.2.1", "192.0.2.2"]),
    "exfix_allow_insecure_basic": st.just(True),
}
_variables = st.dictionaries(st.sampled_from(sorted(_VALUES)), st.none(), max_size=3).flatmap(
    lambda keys: st.fixed_dictionaries({k: _VALUES[k] for k in keys})
)


@st.composite
def inventories(draw: st.DrawFn) -> dict[str, Any]:
    groups = draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=5, unique=True))
    tree: dict[str, Any] = {}
    for index, group in enumerate(groups):
        parents = groups[:index]  # only earlier groups as parents: no cycles
        tree[group] = {
            "parents": draw(st.lists(st.sampled_from(parents), unique=True, max_size=2)) if parents else [],
            "hosts": {
                h: draw(_variables) for h in draw(st.lists(st.sampled_from(_HOSTS), unique=True, max_size=3))
            },
            "vars": draw(_variables),
            "priority": draw(st.none() | st.integers(min_value=0, max_value=3)),
            "group_vars": draw(st.none() | _variables),
        }
    return {
        "groups": tree,
        "all_vars": draw(_variables),
        "host_vars": draw(st.dictionaries(st.sampled_from(_HOSTS), _variables, max_size=2)),
        "ini": draw(st.booleans()),
    }


def _ini_value(value: Any) -> str:
    return repr(value) if isinstance(value, str) and ("\\" in value or " " in value) else str(value)


def write(spec: dict[str, Any], root: Path) -> Path:
    groups = spec["groups"]
    (root / "group_vars").mkdir()
    (root / "host_vars").mkdir()
    for name, group in groups.items():
        if group["group_vars"] is not None:
            (root / "group_vars" / f"{name}.yml").write_text(yaml.safe_dump(group["group_vars"]))
    if spec["all_vars"]:
        (root / "group_vars" / "all.yaml").write_text(yaml.safe_dump(spec["all_vars"]))
    for host, variables in spec["host_vars"].items():
        (root / "host_vars" / host).write_text(yaml.safe_dump(variables))
    if spec["ini"]:
        lines: list[str] = []
        for name, group in groups.items():
            lines.append(f"[{name}]")
            for host, variables in group["hosts"].items():
                lines.append(" ".join([host, *(f"{k}={_ini_value(v)}" for k, v in variables.items())]))
            variables = dict(group["vars"])
            if group["priority"] is not None:
                variables["ansible_group_priority"] = group["priority"]
            lines.append(f"[{name}:vars]")
            lines.extend(f"{k}={_ini_value(v)}" for k, v in variables.items())
        for name, group in groups.items():
            for parent in group["parents"]:
                lines += [f"[{parent}:children]", name]
        path = root / "hosts.ini"
        path.write_text("\n".join(lines) + "\n")
        return path
    body: dict[str, Any] = {}
    for name, group in groups.items():
        entry: dict[str, Any] = {"hosts": dict(group["hosts"]) or None, "vars": dict(group["vars"]) or None}
        if group["priority"] is not None:
            entry["vars"] = {**(entry["vars"] or {}), "ansible_group_priority": group["priority"]}
        body[name] = entry
    for name, group in groups.items():
        for parent in group["parents"]:
            body[parent].setdefault("children", {})[name] = None
    path = root / "hosts.yml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


_LIMITS = ["all", "ga", "gb:!gc", "ga:&gb", "g*", "~g[ab]", "ex0[1-3]*", "ga[0]", "gb[-1]", "gc[0:1]", "!ga"]


@needs_ansible
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=inventories())
def test_generated_inventories_read_as_ansible_reads_them(
    oracle: Oracle, tmp_path_factory: pytest.TempPathFactory, spec: dict[str, Any]
) -> None:
    root = tmp_path_factory.mktemp("generated")
    path = write(spec, root)
    # Subscripts pick by Ansible's host order, which Ansible itself leaves open below a group's
    # children (a set walk): only ask them of groups with no grandchildren.
    deep = {p for g in spec["groups"].values() for p in g["parents"]}
    grand = {
        name for name in spec["groups"]
        if any(c for c, g in spec["groups"].items() if name in g["parents"] and c in deep)
    }  # fmt: skip
    limits = [limit for limit in _LIMITS if "[" not in limit or limit[:2] not in grand]
    reply = oracle.ask(path, root, limits)
    hosts = reply.get("hosts", {})
    refused = [n for n, h in hosts.items() if expected_refusal(h)]
    if refused:
        with pytest.raises(UsageError):
            _load(root, path.name).select(None)
        return
    compare(_load(root, path.name), reply, root, limits)


def expected_refusal(answer: dict[str, Any]) -> bool:
    """Whether exfix refuses this host by design, computed from Ansible's answer: an option
    Ansible itself rejects, several winrm transports, or basic authentication over plain http
    without exfix_allow_insecure_basic (Ansible's winrm plugin sends the password so)."""
    settings_ = answer["settings"]
    if "error" in settings_:
        return True
    if settings_["connection"] != "winrm":
        return False
    if len(settings_["transport"]) > 1:
        return True
    basic = settings_["transport"][0] in ("plaintext", "basic", "ssl")
    allowed = answer["vars"].get("exfix_allow_insecure_basic") is True
    return basic and settings_["scheme"] == "http" and not allowed


def test_the_generator_writes_what_it_means(tmp_path: Path) -> None:
    spec = {
        "groups": {
            "ga": {"parents": [], "hosts": {"ex01.contoso.local": {"ansible_port": 5985}}, "vars": {},
                   "priority": 2, "group_vars": {"ansible_psrp_auth": "ntlm"}},
            "gb": {"parents": ["ga"], "hosts": {}, "vars": {"ansible_user": "CONTOSO\\svc"},
                   "priority": None, "group_vars": None},
        },
        "all_vars": {}, "host_vars": {}, "ini": True,
    }  # fmt: skip
    path = write(spec, tmp_path)
    assert path.read_text() == textwrap.dedent("""\
        [ga]
        ex01.contoso.local ansible_port=5985
        [ga:vars]
        ansible_group_priority=2
        [gb]
        [gb:vars]
        ansible_user='CONTOSO\\\\svc'
        [ga:children]
        gb
    """)
    assert (tmp_path / "group_vars" / "ga.yml").read_text() == "ansible_psrp_auth: ntlm\n"
