"""The inventory through the one strict reader: what it refuses, and what of Ansible's it leaves alone."""

from __future__ import annotations

import textwrap

import pytest

from agent.errors import InventoryError
from agent.inventory import parse_inventory
from agent.inventory.document import READ, HostVariables
from agent.model.document import Document, key
from agent.model.target import Auth, HostTarget, Scheme


def one(text: str) -> HostTarget:
    (target,) = parse_inventory(textwrap.dedent(text), "inv.yaml").hosts
    return target


def error(text: str) -> InventoryError:
    with pytest.raises(InventoryError) as caught:
        parse_inventory(textwrap.dedent(text), "inv.yaml")
    return caught.value


def test_other_tools_values_that_exfix_would_refuse_are_left_alone() -> None:
    # Octal modes, dates, base-60 numbers and NaN are common in other tools' variables; exfix
    # never reads them, so they must not make the inventory unreadable.
    target = one("""
        all:
          vars:
            file_mode: 0644
            built: 2024-01-31
            window: 1:30
            ratio: .nan
            settings: {mask: 0x1F, when: 2024-02-01}
          hosts:
            ex01.contoso.local:
    """)
    assert target.name == "ex01.contoso.local"


def test_the_same_values_in_exfix_variables_are_refused_with_host_key_and_line() -> None:
    exc = error("""
        all:
          vars:
            exfix_exchange_port: 0x50
          hosts:
            ex01.contoso.local:
    """)
    assert (exc.line, exc.host, exc.key) == (4, "ex01.contoso.local", "exfix_exchange_port")
    assert "write whole numbers in decimal" in exc.problem
    dated = error("""
        all:
          hosts:
            ex01.contoso.local:
              exfix_lab_scenario: 2024-01-31
    """)
    assert (dated.line, dated.key) == (5, "exfix_lab_scenario") and "reads as a date" in dated.problem


def test_a_password_the_reader_cannot_read_is_not_quoted_back() -> None:
    exc = error("""
        all:
          vars:
            ansible_password: 0123
          hosts:
            ex01.contoso.local:
    """)
    assert exc.key == "ansible_password" and exc.line == 4
    assert "0123" not in str(exc) and "quote the password" in str(exc)


def test_loosely_typed_ansible_values_are_read_as_ansible_reads_them() -> None:
    target = one("""
        all:
          hosts:
            ex01.contoso.local:
              ansible_port: "5986"
              ansible_psrp_auth: ntlm
              exfix_exchange_port: "443"
              exfix_allow_insecure_basic: "no"
              ansible_psrp_cert_validation: ignore
              exfix_external_dns_servers: "203.0.113.53, 198.51.100.53"
              ansible_password: 123456
    """)
    assert (target.os.scheme, target.os.port, target.os.auth) == (Scheme.HTTPS, 5986, Auth.NTLM)
    assert target.exchange.url == "https://ex01.contoso.local:443/PowerShell"
    assert target.allow_insecure_basic is False and target.cert_validation.verify is False
    assert target.external_dns_servers == ("203.0.113.53", "198.51.100.53")
    # Ansible compares choices case-sensitively: NTLM is refused, with the spelling it takes.
    exc = error("""
        all:
          hosts:
            ex01.contoso.local: {ansible_psrp_auth: NTLM}
    """)
    assert (exc.line, exc.key) == (4, "ansible_psrp_auth") and "did you mean 'ntlm'?" in str(exc)


def test_an_error_has_the_line_where_the_winning_value_is_set() -> None:
    exc = error("""
        all:
          vars:
            exfix_command_timeout: 10
          children:
            exchange:
              vars:
                exfix_command_timeout: forever
              hosts:
                ex01.contoso.local:
    """)
    assert (exc.line, exc.host, exc.key) == (8, "ex01.contoso.local", "exfix_command_timeout")
    item = error("""
        all:
          vars:
            exfix_external_dns_servers:
              - 203.0.113.53
              - dns.google
          hosts:
            ex01.contoso.local:
    """)
    assert (item.line, item.key) == (6, "exfix_external_dns_servers[1]")


def test_a_null_variable_takes_its_default_even_over_a_group_value() -> None:
    target = one("""
        all:
          vars:
            exfix_exchange_port: 8080
          hosts:
            ex01.contoso.local:
              exfix_exchange_port:
    """)
    assert target.exchange.port == 80


def test_aliases_repeat_values_but_may_not_multiply_them() -> None:
    target = one("""
        all:
          vars:
            exfix_external_dns_servers: &public [203.0.113.53]
            other_tool_resolvers: *public
          hosts:
            ex01.contoso.local:
    """)
    assert target.external_dns_servers == ("203.0.113.53",)
    lines = ["all:", "  vars:", "    a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"    a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    exc = error("\n".join(lines) + "\n")
    assert "alias bomb" in str(exc)


def test_the_shape_declares_only_exfix_variables() -> None:
    # Ansible's variables are read as its plugins read them (agent/inventory/connection.py).
    assert all(name.startswith("exfix_") for name in READ)
    assert set(READ) == {f for f in HostVariables.__dataclass_fields__}


def test_merge_keys_share_variables_and_written_keys_override_them() -> None:
    ex01, ex02 = parse_inventory(
        textwrap.dedent("""
        all:
          hosts:
            ex01.contoso.local: &defaults
              ansible_psrp_auth: ntlm
              exfix_exchange_port: 8080
            ex02.contoso.local:
              <<: [*defaults, {exfix_exchange_path: Shell, exfix_exchange_port: 1}]
              exfix_exchange_port: 9090
        """),
        "inv.yaml",
    ).hosts
    assert (ex01.os.auth, ex01.exchange.port) == (Auth.NTLM, 8080)
    assert (ex02.os.auth, ex02.exchange.port, ex02.exchange.path) == (Auth.NTLM, 9090, "Shell")


def test_a_bad_merged_value_is_reported_where_it_is_written() -> None:
    exc = error("""
        all:
          hosts:
            ex01.contoso.local: &defaults
              exfix_exchange_auth: ntlm
            ex02.contoso.local:
              <<: *defaults
              ansible_port: none
    """)
    assert (exc.line, exc.host, exc.key) == (8, "ex02.contoso.local", "ansible_port")
    merged = error("""
        all:
          vars:
            shared: &shared
              exfix_exchange_auth: digest
          hosts:
            ex01.contoso.local:
              <<: *shared
    """)
    assert (merged.line, merged.key) == (5, "exfix_exchange_auth")
    assert "takes a mapping" in str(error("all:\n  hosts:\n    ex01:\n      <<: [1]\n"))


def test_a_raw_key_needs_a_check_and_other_documents_stay_strict() -> None:
    with pytest.raises(TypeError, match="needs a check"):
        key(raw=True)
    strict = Document(HostVariables, InventoryError, what="a test document")
    with pytest.raises(InventoryError, match="write whole numbers in decimal"):
        strict.read_yaml_tree("mode: 0644\n", source="t.yaml")
    with pytest.raises(InventoryError, match="merge keys"):
        strict.read_yaml_tree("a: &a {b: 1}\nc:\n  <<: *a\n", source="t.yaml")
    assert "cannot be read as written" in str(error("all: 0x10\n"))


def test_numbers_as_keys_in_other_tools_variables_are_ordinary_yaml() -> None:
    # Ansible inventories carry other tools' variables; {80: 8080} is valid YAML there. exfix
    # reads only its own variables, so such keys pass; a number as a host or group name does not.
    text = (
        "all:\n  vars:\n    vlans: {10: a, 20: b}\n  children:\n    exchange:\n      hosts:\n"
        "        ex01.contoso.local:\n          port_map: {80: 8080}\n"
    )
    assert [t.name for t in parse_inventory(text, "inv.yaml").select(None)] == ["ex01.contoso.local"]
    with pytest.raises(InventoryError, match=r"inv.yaml:3: key 'all.children': a key must be a plain string"):
        parse_inventory("all:\n  children:\n    7:\n      hosts:\n        ex01:\n", "inv.yaml")


@pytest.mark.parametrize("text", ["all: null\n", "all: {}\n", "all:\nexchange: {}\n", ""])
def test_an_inventory_that_declares_nothing_is_empty_like_an_empty_file(text: str) -> None:
    # Scanning it would report "0 hosts" with exit 0, as if the fleet were healthy.
    assert "the inventory is empty" in str(error(text))
