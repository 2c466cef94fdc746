"""Inventory parsing: Ansible's YAML format, precedence, defaults and validation."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import InventoryError
from agent.inventory import inventory_from_mapping, load_inventory, parse_inventory
from agent.model.credential import CredentialSource
from agent.model.target import Auth, HostTarget, OsTransport, Scheme

LAB_INVENTORY = """\
all:
  vars:
    ansible_user: exfix-lab
    ansible_password: lab-throwaway-Passw0rd!
    ansible_psrp_protocol: http
    ansible_psrp_auth: ntlm
    ansible_psrp_cert_validation: ignore
    exfix_exchange_auth: ntlm
    exfix_dns_address_map: {"10.0.0.10": "127.0.0.1:53123", "8.8.8.8": "127.0.0.1:53124"}
    exfix_lab_scenario: mixed-fleet
  children:
    exchange:
      hosts:
        ex01.contoso.local:
          ansible_host: 127.0.0.1
          ansible_port: 40001
          ansible_psrp_path: wsman
          exfix_exchange_port: 40001
          exfix_exchange_path: PowerShell
          exfix_exchange_protocol: http
"""


def parse(text: str) -> Any:
    return parse_inventory(textwrap.dedent(text), "inv.yaml")


def one(text: str) -> HostTarget:
    (target,) = parse(text).hosts
    return target


def error(text: str) -> InventoryError:
    with pytest.raises(InventoryError) as caught:
        parse(text)
    return caught.value


def test_the_lab_inventory(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(LAB_INVENTORY, encoding="utf-8")
    (target,) = load_inventory(path).hosts
    assert target.name == "ex01.contoso.local"
    assert target.address == "127.0.0.1"
    assert target.groups == ("exchange",)
    assert target.os.url == "http://127.0.0.1:40001/wsman" and target.os.auth is Auth.NTLM
    assert target.exchange.url == "http://127.0.0.1:40001/PowerShell" and target.exchange.auth is Auth.NTLM
    assert target.cert_validation.verify is False
    assert target.address_map == {"10.0.0.10": "127.0.0.1:53123", "8.8.8.8": "127.0.0.1:53124"}
    assert target.lab_scenario == "mixed-fleet"
    assert target.credential.source is CredentialSource.INVENTORY
    assert target.credential.username == "exfix-lab"
    assert target.source == str(path)


def test_defaults() -> None:
    # Ansible's psrp plugin: no protocol and no port is https on 5986 (exfix used http/5985,
    # which no Ansible connection plugin defaults to).
    target = one("""
        all:
          hosts:
            ex01.contoso.local:
    """)
    assert target.address == "ex01.contoso.local"
    assert (target.os.scheme, target.os.port, target.os.path, target.os.auth) == (
        Scheme.HTTPS,
        5986,
        "wsman",
        Auth.NEGOTIATE,
    )
    assert (target.exchange.scheme, target.exchange.port, target.exchange.path, target.exchange.auth) == (
        Scheme.HTTP,
        80,
        "PowerShell",
        Auth.KERBEROS,
    )
    assert target.exchange.host == "ex01.contoso.local"
    assert target.os_transport is OsTransport.PSRP
    assert target.cert_validation.verify is True
    assert target.groups == ("ungrouped",)
    # No password anywhere and Kerberos/Negotiate: the ticket cache is used.
    assert target.credential.source is CredentialSource.KERBEROS_CACHE


def test_https_defaults_follow_the_scheme_and_the_port() -> None:
    target = one("""
        all:
          hosts:
            ex01.contoso.local: {ansible_psrp_protocol: https, exfix_exchange_protocol: https}
    """)
    assert target.os.port == 5986 and target.exchange.port == 443
    by_port = one("""
        all:
          hosts:
            ex01.contoso.local: {ansible_port: 5985}
    """)
    assert by_port.os.scheme is Scheme.HTTP
    other_port = one("""
        all:
          hosts:
            ex01.contoso.local: {ansible_port: 8080}
    """)
    assert other_port.os.scheme is Scheme.HTTPS  # Ansible: https unless the port is 5985


def test_precedence_host_over_child_over_parent_over_all() -> None:
    inventory = parse("""
        all:
          vars:
            exfix_exchange_port: 1
            exfix_exchange_path: from-all
            ansible_port: 100
            exfix_command_timeout: 11
          children:
            parent:
              vars: {exfix_exchange_port: 2, exfix_exchange_path: from-parent, ansible_port: 200}
              children:
                child:
                  vars: {exfix_exchange_port: 3, ansible_port: 300}
                  hosts:
                    a.contoso.local: {exfix_exchange_port: 4}
                    b.contoso.local:
              hosts:
                c.contoso.local:
    """)
    a, b, c = inventory.hosts
    assert (a.exchange.port, a.exchange.path, a.os.port) == (4, "from-parent", 300)
    assert (b.exchange.port, b.os.port) == (3, 300)
    assert (c.exchange.port, c.os.port) == (2, 200)
    assert a.timeouts.command == 11
    assert a.groups == ("child", "parent")
    # Ansible's order (Group.get_hosts): the group's own hosts, then its children's.
    assert inventory.groups["parent"] == ("c.contoso.local", "a.contoso.local", "b.contoso.local")
    assert inventory.groups["child"] == ("a.contoso.local", "b.contoso.local")


def test_same_depth_groups_apply_in_name_order_and_hosts_merge() -> None:
    inventory = parse("""
        all:
          children:
            zeta:
              vars: {exfix_exchange_port: 26}
              hosts:
                ex01.contoso.local: {ansible_port: 1234}
            alpha:
              vars: {exfix_exchange_port: 1, exfix_exchange_path: alpha}
              hosts:
                ex01.contoso.local: {ansible_host: 127.0.0.5}
    """)
    (target,) = inventory.hosts  # listed twice, one host
    assert target.exchange.port == 26  # zeta sorts after alpha, so it wins
    assert target.exchange.path == "alpha"
    assert target.os.port == 1234 and target.address == "127.0.0.5"  # vars from both places
    assert target.groups == ("alpha", "zeta")


def test_top_level_groups_and_host_ranges() -> None:
    inventory = parse("""
        exchange:
          hosts:
            ex[01:03].contoso.local:
            mb[a:b].contoso.local:
    """)
    assert [t.name for t in inventory.hosts] == [
        "ex01.contoso.local",
        "ex02.contoso.local",
        "ex03.contoso.local",
        "mba.contoso.local",
        "mbb.contoso.local",
    ]
    assert inventory.groups["all"] == inventory.groups["exchange"]


def test_unknown_ansible_and_own_variables_are_ignored() -> None:
    target = one("""
        all:
          vars: {ansible_connection: psrp, ansible_become: true, ntp_server: pool.ntp.org}
          hosts:
            ex01.contoso.local: {ansible_psrp_reconnection_retries: 3}
    """)
    assert target.name == "ex01.contoso.local"


def test_every_option() -> None:
    target = one("""
        all:
          hosts:
            ex01.contoso.local:
              ansible_host: 10.0.0.21
              ansible_user: CONTOSO\\svc-exfix
              exfix_password_env: EXFIX_PASSWORD
              ansible_psrp_protocol: https
              ansible_psrp_auth: credssp
              ansible_psrp_path: /wsman/
              ansible_psrp_ca_cert: /etc/pki/contoso-ca.pem
              exfix_exchange_host: ex01.contoso.local
              exfix_exchange_protocol: https
              exfix_exchange_auth: kerberos
              exfix_os_transport: winrm
              exfix_external_dns_servers: [203.0.113.53, "2001:db8::53"]
              exfix_dns_address_map: {"10.0.0.10": "[::1]:5353"}
              exfix_connection_timeout: 5
              exfix_read_timeout: 45
              exfix_operation_timeout: 30
              exfix_command_timeout: 90
              exfix_host_timeout: "600"
    """)
    assert target.address == "10.0.0.21"
    assert target.os.url == "https://10.0.0.21:5986/wsman" and target.os.auth is Auth.CREDSSP
    assert target.exchange.url == "https://ex01.contoso.local:443/PowerShell"
    assert target.os_transport is OsTransport.WINRM
    assert target.cert_validation.requests_verify == "/etc/pki/contoso-ca.pem"
    assert target.external_dns_servers == ("203.0.113.53", "2001:db8::53")
    assert target.timeouts.to_dict() == {
        "connection": 5,
        "read": 45,
        "operation": 30,
        "command": 90,
        "host": 600,
    }
    assert target.credential.source is CredentialSource.ENV and target.credential.env_var == "EXFIX_PASSWORD"
    assert target.credential.username == "CONTOSO\\svc-exfix"


def test_certificate_auth_needs_both_files_and_https() -> None:
    target = one("""
        all:
          hosts:
            ex01.contoso.local: {ansible_psrp_protocol: https, ansible_psrp_auth: certificate,
                                 exfix_exchange_auth: certificate, exfix_exchange_protocol: https,
                                 exfix_cert_pem: /c.pem, exfix_cert_key_pem: /k.pem}
    """)
    assert target.credential.source is CredentialSource.CERTIFICATE
    assert (target.credential.cert_pem, target.credential.cert_key_pem) == ("/c.pem", "/k.pem")
    assert "exfix_cert_pem" in str(
        error("""
        all:
          hosts:
            ex01.contoso.local: {ansible_psrp_protocol: https, ansible_psrp_auth: certificate}
    """)
    )
    assert "needs https" in str(
        error("""
        all:
          hosts:
            ex01.contoso.local: {ansible_psrp_auth: certificate, ansible_psrp_protocol: http,
                                 exfix_cert_pem: /c, exfix_cert_key_pem: /k}
    """)
    )


# --- validation: one line naming file, line, host and key ----------------------------------


def test_unknown_exfix_variable_is_an_error_with_a_suggestion() -> None:
    exc = error("""
        all:
          hosts:
            ex01.contoso.local:
              exfix_exchnage_port: 80
    """)
    assert (exc.path, exc.line, exc.host, exc.key) == (
        "inv.yaml",
        5,
        "ex01.contoso.local",
        "exfix_exchnage_port",
    )
    assert "did you mean 'exfix_exchange_port'?" in str(exc)
    assert str(exc).startswith("inv.yaml:5: host 'ex01.contoso.local': key 'exfix_exchnage_port': ")
    assert "\n" not in str(exc)


def test_unknown_exfix_variable_in_group_vars() -> None:
    exc = error("""
        all:
          vars:
            exfix_bogus: 1
    """)
    assert exc.line == 4 and exc.key == "exfix_bogus"


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("ansible_port", 0, "port number"),
        ("ansible_port", 70000, "port number"),
        ("ansible_port", "http", "port number"),
        ("exfix_exchange_port", True, "port number"),
        ("ansible_psrp_auth", "digest", "not one of basic, certificate, negotiate, kerberos, ntlm, credssp"),
        ("exfix_exchange_auth", ["ntlm"], "must be a string"),
        ("ansible_psrp_protocol", "ftp", "not one of http, https"),
        ("ansible_psrp_cert_validation", "maybe", "validate, ignore"),
        ("exfix_os_transport", "ssh", "psrp, winrm"),
        ("exfix_allow_insecure_basic", "perhaps", "true or false"),
        ("exfix_external_dns_servers", ["8.8.8.8", "dns.google"], "not an IP address"),
        ("exfix_dns_address_map", {"10.0.0.10": "127.0.0.1"}, "not host:port"),
        ("exfix_dns_address_map", {"not-an-ip": "127.0.0.1:53"}, "not an IP address"),
        ("exfix_dns_address_map", ["10.0.0.10"], "must be a mapping"),
        ("exfix_password_env", "MY-PASSWORD", "not an environment variable name"),
        ("ansible_host", "$(calc)", "not a valid host name"),
        ("ansible_host", "ex01 .contoso", "not a valid host name"),
        ("ansible_psrp_path", "ws man", "not a URL path"),
        ("exfix_command_timeout", -1, "seconds"),
        ("exfix_read_timeout", 5, "must exceed the WSMan operation timeout"),
    ],
)  # fmt: skip
def test_bad_values_name_host_key_and_line(variable: str, value: Any, fragment: str) -> None:
    data = {"all": {"hosts": {"ex01.contoso.local": {"ansible_host": "127.0.0.1", variable: value}}}}
    exc = error(yaml.safe_dump(data))
    assert fragment in str(exc)
    # A list item that is wrong is named with its index: exfix_external_dns_servers[1].
    assert exc.host == "ex01.contoso.local" and exc.key is not None and exc.key.split("[")[0] == variable
    assert exc.line is not None and exc.path == "inv.yaml"


def test_basic_over_http_is_refused_unless_allowed() -> None:
    exc = error("""
        all:
          vars:
            exfix_exchange_auth: basic
          hosts:
            ex01.contoso.local:
    """)
    assert exc.key == "exfix_exchange_auth" and exc.line == 4
    assert "exfix_allow_insecure_basic" in str(exc)
    allowed = one("""
        all:
          vars: {ansible_psrp_auth: basic, exfix_exchange_auth: basic, exfix_allow_insecure_basic: yes}
          hosts:
            ex01.contoso.local:
    """)
    assert allowed.allow_insecure_basic is True and allowed.os.auth is Auth.BASIC
    over_https = one("""
        all:
          vars: {ansible_psrp_auth: basic, ansible_psrp_protocol: https}
          hosts:
            ex01.contoso.local:
    """)
    assert over_https.os.auth is Auth.BASIC


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ("all: [a, b]\n", "group 'all' must be a mapping", 1),
        ("- ex01\n", "top level", 1),
        ("all:\n  hosts: [ex01]\n", "must be a mapping of host names", 2),
        ("all:\n  hostz:\n    ex01:\n", "unknown key 'hostz'; did you mean 'hosts'?", 2),
        ("all:\n  children: [web]\n", "children of group 'all'", 2),
        ("all:\n  vars: [1]\n", "mapping of variables", 2),
        ("all:\n  hosts:\n    ex01: [1]\n", "mapping of variables", 3),
        ("all:\n  hosts:\n    ex01:\n    ex01:\n", "duplicate key", 4),
        ("all:\n  hosts:\n    ex01: {a: 1\n", "not valid YAML", None),
        ("all:\n  hosts:\n    ? [a]\n    : 1\n", "a key must be a plain string (quote it)", 3),
        ("all: !!python/object:os.system {}\n", "tag tag:yaml.org,2002:python/object:os.system is not", 1),
        ("all:\n  vars:\n    ansible_password: !vault |\n      $ANSIBLE_VAULT\n  hosts:\n    ex01:\n",
         "encrypted with Ansible Vault", 3),
        ("all:\n  vars:\n    x: !secret y\n", "tag !secret is not", 3),
        ("all:\n  hosts:\n    10:\n", "a key must be a plain string", 3),
        ("all:\n  vars:\n    exfix_lab_scenario: a\n    exfix_lab_scenario: b\n", "duplicate key", 4),
        ("a: &a [*a]\n", "an alias refers to a value that contains it", 1),
        ("", "empty", None),
        ("a:\n  children:\n    b:\n      children:\n        a:\n", "cycle", None),
        ("all:\n  hosts:\n    ex[01:x].contoso.local:\n", "range", 3),
        ("all:\n  hosts:\n    \"ex01\\nevil\":\n", "unprintable", 3),
        ("all:\n  hosts:\n    \"ex 01\":\n", "spaces", 3),
        ("all:\n  hosts:\n    \"e\\u001b[31mx\":\n", "unprintable", 3),
        ("all:\n  hosts:\n    ex$(calc):\n", "not an address: set ansible_host", None),
    ],
)  # fmt: skip
def test_malformed_inventories(text: str, fragment: str, line: int | None) -> None:
    exc = error(text)
    assert fragment in str(exc)
    if line is not None:
        assert exc.line == line
    assert "\n" not in str(exc) and "\x1b" not in str(exc)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="no such file"):
        load_inventory(tmp_path / "missing.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InventoryError, match="not UTF-8"):
        load_inventory(binary)


def test_hostile_names_are_only_labels() -> None:
    names = ["ex01'quote", "ex$(Stop-Service)", "ex`backtick", "名前.contoso", "ex;rm", 'dq"uote']
    data = {"all": {"hosts": {name: {"ansible_host": "127.0.0.1"} for name in names}}}
    inventory = inventory_from_mapping(data, "<data>")
    assert [t.name for t in inventory.hosts] == names
    for target in inventory.hosts:
        assert target.os.url == "https://127.0.0.1:5986/wsman"


def test_unicode_host_names_are_valid_addresses() -> None:
    target = one("""
        all:
          hosts:
            exchange.bücher.example:
    """)
    assert target.address == "exchange.bücher.example"


@settings(max_examples=150, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=12), kids, max_size=3),
    max_leaves=12,
))  # fmt: skip
def test_arbitrary_data_is_accepted_or_refused_cleanly(data: Any) -> None:
    for shaped in (
        data,
        {"all": data},
        {"all": {"hosts": data}},
        {"all": {"hosts": {"ex01": data}}},
        {"all": {"vars": data, "hosts": {"ex01": None}}},
    ):
        try:
            inventory_from_mapping(shaped, "<fuzz>")
        except InventoryError as exc:
            assert "\n" not in str(exc)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_is_accepted_or_refused_cleanly(text: str) -> None:
    try:
        parse_inventory(text, "<fuzz>")
    except InventoryError as exc:
        assert str(exc).startswith("<fuzz>")
