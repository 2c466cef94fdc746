"""Every kind of source, what exfix refuses (one line, FILE:LINE, exit 1, no traceback), what
it warns about, and ``exfix inventory``."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import main
from agent.errors import InventoryError, UsageError
from agent.inventory import load_inventory, parse_inventory
from agent.model.credential import CredentialSource

PASSWORD = "S3cret-Never-Shown"


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def refusal(root: Path, source: str) -> InventoryError:
    with pytest.raises(InventoryError) as caught:
        load_inventory(root / source).select(None)
    assert "\n" not in str(caught.value)
    return caught.value


def test_vaulted_values_are_refused_naming_the_variable_and_the_way_out(tmp_path: Path) -> None:
    write(tmp_path, {"hosts.yml": """
        exchange:
          hosts:
            ex01.contoso.local:
              ansible_password: !vault |
                $ANSIBLE_VAULT;1.1;AES256
                6130
    """})  # fmt: skip
    exc = refusal(tmp_path, "hosts.yml")
    assert (exc.line, exc.key, exc.host) == (4, "ansible_password", "ex01.contoso.local")
    assert "exfix_password_env" in str(exc) and "ansible:" in str(exc) and "6130" not in str(exc)
    # With exfix_password_env the vaulted password is not needed, so it is not read.
    write(tmp_path, {"group_vars/exchange.yml": "exfix_password_env: EXFIX_PASSWORD\n"})
    (target,) = load_inventory(tmp_path / "hosts.yml").hosts
    assert target.credential.source is CredentialSource.ENV
    # Another tool's vaulted variable is none of exfix's business.
    write(
        tmp_path,
        {"other.yml": "all:\n  vars:\n    api_token: !vault |\n      $ANSIBLE_VAULT\n  hosts:\n    ex01:\n"},
    )
    assert [t.name for t in load_inventory(tmp_path / "other.yml").hosts] == ["ex01"]


def test_vault_in_list_json_and_whole_vaulted_files(tmp_path: Path) -> None:
    listed = {"exchange": {"hosts": ["ex01"]}, "_meta": {"hostvars": {"ex01": {
        "ansible_user": {"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n31"}}}}}  # fmt: skip
    write(tmp_path, {"list.json": json.dumps(listed)})
    exc = refusal(tmp_path, "list.json")
    assert exc.key == "ansible_user" and "Ansible Vault" in str(exc)
    write(
        tmp_path,
        {
            "v/hosts.yml": "all:\n  hosts:\n    ex01:\n",
            "v/group_vars/all.yml": "$ANSIBLE_VAULT;1.1;AES256\n3132\n",
        },
    )
    exc = refusal(tmp_path, "v/hosts.yml")
    assert exc.path.endswith("group_vars/all.yml") and exc.line == 1 and "ansible:" in str(exc)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ansible_host", "{{ inventory_hostname }}.contoso.local"), ("ansible_password", "{{ vault_pw }}"),
     ("exfix_exchange_host", "{% if x %}a{% endif %}"), ("ansible_connection", "{{ conn }}"),
     ("exfix_external_dns_servers", ["203.0.113.53", "{{ dns2 }}"])],
)  # fmt: skip
def test_templates_are_refused_naming_the_variable(tmp_path: Path, variable: str, value: object) -> None:
    write(
        tmp_path,
        {
            "hosts.yml": "all:\n  hosts:\n    ex01.contoso.local:\n      "
            + f"{variable}: {json.dumps(value)}\n"
        },
    )
    exc = refusal(tmp_path, "hosts.yml")
    assert (exc.line, exc.key) == (4, variable)
    assert "Jinja2 template" in str(exc) and "ansible:" in str(exc)
    if "password" in variable:
        assert "exfix_password_env" in str(exc)


def test_unsafe_strings_are_literal(tmp_path: Path) -> None:
    write(tmp_path, {"hosts.yml": "all:\n  hosts:\n    ex01:\n      ansible_password: !unsafe 'a{{b'\n"})
    inv = load_inventory(tmp_path / "hosts.yml")
    (target,) = inv.hosts
    password = inv.credentials().resolve(target).password
    assert password is not None and password.reveal() == "a{{b"


def test_plugin_configuration_is_refused_without_ansible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, {"ad.yml": "plugin: microsoft.ad.ldap\nserver: dc01.contoso.local\n"})
    monkeypatch.setattr("agent.inventory.sources.find_ansible_inventory", lambda: None)
    exc = refusal(tmp_path, "ad.yml")
    assert exc.line == 1 and "microsoft.ad.ldap" in str(exc) and "exfix[ansible]" in str(exc)
    with pytest.raises(InventoryError, match=r"pip install 'exfix\[ansible\]'"):
        load_inventory("ansible:" + str(tmp_path / "ad.yml"))


def test_a_host_reached_over_ssh_is_refused_only_when_selected() -> None:
    inv = parse_inventory(textwrap.dedent("""
        [exchange]
        ex01.contoso.local
        [linux]
        web01.contoso.local ansible_connection=ssh
    """), "hosts.ini")  # fmt: skip
    assert [t.name for t in inv.select("exchange")] == ["ex01.contoso.local"]
    with pytest.raises(InventoryError) as caught:
        inv.select(None)
    assert (
        caught.value.line == 5
        and "ansible_connection: psrp" in str(caught.value)
        and "--limit" in str(caught.value)
    )


def test_unused_connection_variables_are_warned_about_once_each() -> None:
    inv = parse_inventory(textwrap.dedent("""
        all:
          vars:
            ansible_psrp_reconnection_retries: 3
            ansible_winrm_transport: ntlm
          hosts:
            ex01.contoso.local:
            ex02.contoso.local:
            ex03.contoso.local: {ansible_winrm_kinit_mode: managed, ansible_connection: winrm}
    """), "inv.yml")  # fmt: skip
    assert len(inv.warnings) == 3
    retries, kinit, transport = inv.warnings
    assert retries.startswith("inv.yml:4: ") and "own policy" in retries
    assert "ansible_winrm_kinit_mode" in kinit and "kinit" in kinit
    assert transport.startswith("inv.yml:5: ") and "ansible_connection winrm" in transport


def test_host_lists_and_ports() -> None:
    inv = load_inventory("ex01.contoso.local,192.0.2.5:5985,")
    assert [(t.name, t.os.url) for t in inv.hosts] == [
        ("ex01.contoso.local", "https://ex01.contoso.local:5986/wsman"),
        ("192.0.2.5", "http://192.0.2.5:5985/wsman"),
    ]


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ("[exchange]\nex01 ansible_port\n", "expected key=value", 2),
        ("[exchange:vars]\nansible_port=1\n", "never declared", 1),
        ("[a:children]\nb\n", "never declared", 2),
        ("[a:bogus]\nx\n", "unknown type", 1),
        ("[a b]\nx\n", "invalid section", 1),
        ("[a]\nex01: \n", "reserved for a port", 2),
        ("[a]\nex01 'unterminated\n", "cannot split", 2),
        ("[a]\nex[1:x]\n", "range", 2),
        ("[a]\nex01 exfix_exchnage_port=1\n", "did you mean 'exfix_exchange_port'", 2),
        ("[a]\nex01 ansible_port=http\n", "port number", 2),
        ("[a]\nex01 ansible_psrp_auth=NTLM\n", "did you mean 'ntlm'", 2),
        ("[a]\nex01 ansible_group_priority=x\n", "", None),
        ("[a:vars]\nansible_group_priority=high\n[a]\n", "whole number", 2),
        ("[a:children]\na\n[a]\n", "cannot be a child of itself", 2),
        ("[a:children]\nb\n[b:children]\na\n[b]\n", "cycle", 4),
    ],
)  # fmt: skip
def test_ini_refusals_have_the_line(text: str, fragment: str, line: int | None) -> None:
    try:
        parse_inventory(text, "hosts.ini").select(None)
    except InventoryError as exc:
        assert fragment in str(exc) and "\n" not in str(exc)
        if line is not None:
            assert exc.line == line and exc.path == "hosts.ini"
    else:
        assert not fragment  # a host variable named ansible_group_priority is just a variable


def test_limit_file_and_subscript_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inv = parse_inventory("[g]\na\nb\n", "hosts.ini")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "retry.txt").write_text("b\n", encoding="utf-8")
    assert [t.name for t in inv.select("@retry.txt")] == ["b"]
    with pytest.raises(UsageError, match="no such file"):
        inv.select("@missing.txt")
    with pytest.raises(UsageError, match="subscripted"):
        inv.select("g[5]")
    assert [t.name for t in inv.select("g[-1]")] == ["b"]


# --- the command line --------------------------------------------------------------------

CORPUS = Path(__file__).with_name("corpus")


def test_exfix_inventory_list_shows_what_was_resolved_never_a_password(tmp_path: Path) -> None:
    write(tmp_path, {"hosts.ini": f"""
        [exchange]
        ex01.contoso.local ansible_password={PASSWORD} ansible_user=svc ansible_psrp_auth=ntlm
        ex02.contoso.local exfix_password_env=EXFIX_PW ansible_psrp_cert_validation=ignore
    """})  # fmt: skip
    result = CliRunner().invoke(main, ["inventory", "-i", str(tmp_path / "hosts.ini"), "--list"])
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    shown = json.loads(result.output)
    ex01, ex02 = shown["hosts"]["ex01.contoso.local"], shown["hosts"]["ex02.contoso.local"]
    assert ex01["os"]["url"] == "https://ex01.contoso.local:5986/wsman" and ex01["os"]["auth"] == "ntlm"
    assert ex01["exchange"]["url"] == "http://ex01.contoso.local:80/PowerShell"
    assert ex01["credential"] == {"source": "inventory", "username": "svc", "env_var": None,
                                  "cert_pem": None, "cert_key_pem": None}  # fmt: skip
    assert ex02["credential"]["env_var"] == "EXFIX_PW" and ex02["cert_validation"]["verify"] is False
    host = CliRunner().invoke(
        main, ["inventory", "-i", str(tmp_path / "hosts.ini"), "--host", "ex02.contoso.local"]
    )
    assert json.loads(host.output)["name"] == "ex02.contoso.local"


def test_exfix_inventory_graph() -> None:
    result = CliRunner().invoke(
        main, ["inventory", "-i", str(CORPUS / "07-ini-pending-children" / "hosts.ini"), "--graph"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "@all:", "  |--@ungrouped:", "  |--@site:", "  |  |--@dag:", "  |  |  |--ex01.contoso.local",
        "  |  |  |--ex02.contoso.local", "  |  |--@edge:", "  |  |  |--edge01.contoso.local",
    ]  # fmt: skip


HOSTILE = [
    ("hosts.yml", "all:\n  hosts:\n    ex01:\n      ansible_port: \"\\e[31m\"\n", "ansible_port"),
    ("hosts.yml", "all:\n  hosts:\n    ex01:\n      ansible_host: \"$(Stop-Service x)\"\n", "ansible_host"),
    ("hosts.ini", "[a]\nex01 ansible_psrp_path='a b'\n", "ansible_psrp_path"),
    ("hosts.ini", "[a]\nex01 ansible_port=99999999999999999999999\n", "ansible_port"),
    ("hosts.ini", "[a]\nex01 ansible_winrm_transport=[1] ansible_connection=winrm\n", "ansible_winrm_transport"),  # noqa: E501
    ("hosts.ini", "[a]\nex01 ansible_psrp_read_timeout=5\n", "ansible_psrp_read_timeout"),
    ("hosts.yml", "all:\n  hosts:\n    ex01: {ansible_psrp_message_encryption: always, ansible_psrp_auth: basic}\n",  # noqa: E501
     "ansible_psrp_message_encryption"),
    ("hosts.yml", "all:\n  hosts:\n    ex01: {ansible_connection: winrm, ansible_winrm_transport: [ntlm, kerberos]}\n",  # noqa: E501
     "ansible_winrm_transport"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "text", "key"), HOSTILE)
def test_hostile_values_are_one_line_with_file_and_line_and_exit_1(
    tmp_path: Path, name: str, text: str, key: str
) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["inventory", "-i", str(tmp_path / name), "--list"])
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"exfix: error: {tmp_path / name}:") and f"key {key!r}" in line, line
    assert "\x1b" not in line and "Traceback" not in line


def test_the_real_command_line_exits_1_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text("[a]\nex01 ansible_port=http\n", encoding="utf-8")
    exfix = Path(sys.executable).with_name("exfix")
    if not exfix.exists():
        pytest.skip("the exfix console script is not installed beside this Python")
    done = subprocess.run([str(exfix), "inventory", "-i", "hosts.ini", "--list"], cwd=tmp_path,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "exfix: error: hosts.ini:2: host 'ex01': key 'ansible_port': must be a port number between 1 and 65535, "  # noqa: E501
        "not 'http'"
    ]


def test_warnings_reach_stderr_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "hosts.ini").write_text(
        "[a]\nex01 ansible_psrp_reconnection_retries=2\nex02 ansible_psrp_reconnection_retries=2\n",
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING, logger="agent.inventory"):
        result = CliRunner().invoke(main, ["inventory", "-i", str(tmp_path / "hosts.ini"), "--list"])
    assert result.exit_code == 0
    assert [r.getMessage() for r in caplog.records if "reconnection" in r.getMessage()] == [
        f"{tmp_path / 'hosts.ini'}:2: host 'ex01': ansible_psrp_reconnection_retries is not used: exfix retries "  # noqa: E501
        "by its own policy (agent/transport/retry.py); ignoring it"
    ]
