"""inventory_from_variables: the variables Ansible resolved for a host (what the collection's
action plugins hand over) read by the same code as an inventory file."""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Any

import pytest
import yaml

from agent.errors import InventoryError
from agent.inventory import inventory_from_variables, parse_inventory, reads_variable
from agent.model.target import Auth, OsTransport, Scheme
from inventory.test_inventory import LAB_INVENTORY


def _resolved(text: str, host: str) -> dict[str, Any]:
    """What Ansible would hand a task for ``host`` of a one-level inventory: the group's
    variables under the host's own, its groups in group_names, and variables of its own."""
    data = yaml.safe_load(text)
    variables = dict(data["all"]["vars"])
    groups = []
    for group, body in data["all"]["children"].items():
        if host in body["hosts"]:
            groups.append(group)
            variables.update(body["hosts"][host])
    return {**variables, "group_names": groups, "inventory_dir": "/somewhere", "ansible_check_mode": False}


def test_the_same_target_as_the_inventory_file() -> None:
    from_file = parse_inventory(LAB_INVENTORY, "inv.yaml")
    (expected,) = from_file.hosts
    inv = inventory_from_variables({expected.name: _resolved(LAB_INVENTORY, expected.name)})
    (target,) = inv.hosts
    assert target == dataclasses.replace(expected, source="ansible")
    assert inv.groups == {"all": (expected.name,), "exchange": (expected.name,)}
    assert inv.credentials().resolve(target) == from_file.credentials().resolve(expected)


def test_the_controller_connection_stands_for_psrp_and_winrm_is_winrms() -> None:
    base = {"ansible_host": "10.1.2.3", "ansible_user": "admin", "ansible_password": "pw"}
    (local,) = inventory_from_variables({"ex01": {**base, "ansible_connection": "local"}}).hosts
    assert local.connection == "psrp" and local.os.scheme is Scheme.HTTPS and local.os.port == 5986
    winrm_vars = {**base, "ansible_connection": "winrm", "ansible_port": 5985}
    winrm_vars["ansible_winrm_transport"] = "ntlm"
    (winrm,) = inventory_from_variables({"ex01": winrm_vars}).hosts
    assert winrm.connection == "winrm" and winrm.os_transport is OsTransport.WINRM
    assert winrm.os.scheme is Scheme.HTTP and winrm.os.auth is Auth.NTLM


def test_refusals_are_the_inventory_readers() -> None:
    with pytest.raises(InventoryError) as caught:
        inventory_from_variables({"ex01": {"ansible_connection": "ssh"}}, source="ansible inventory")
    assert "ex01" in str(caught.value) and "ssh" in str(caught.value)
    with pytest.raises(InventoryError) as caught:
        inventory_from_variables({"ex01": {"ansible_port": "not-a-port"}}, source="ansible inventory")
    assert "ansible_port" in str(caught.value) and "port number" in str(caught.value)
    with pytest.raises(InventoryError) as caught:
        inventory_from_variables({"ex01": {"exfix_exchange_auth": "telepathy"}})
    assert "exfix_exchange_auth" in str(caught.value)


def test_only_its_variables_are_read_and_unused_ones_are_named() -> None:
    assert reads_variable("ansible_psrp_auth") and reads_variable("exfix_external_dns_servers")
    assert reads_variable("ansible_password") and not reads_variable("ansible_python_interpreter")
    # A template Ansible did not render would be refused, but a variable exfix does not read is
    # never looked at, whatever it holds.
    inv = inventory_from_variables({"ex01": {"ansible_psrp_reconnection_retries": 3, "other": "{{ x }}"}})
    assert len(inv.warnings) == 1 and "ansible_psrp_reconnection_retries" in inv.warnings[0]
    with pytest.raises(InventoryError) as caught:
        inventory_from_variables({"ex01": {"ansible_password": "{{ vault_password }}"}})
    assert "template" in str(caught.value)


def test_several_hosts_share_nothing_but_the_inventory() -> None:
    text = textwrap.dedent(LAB_INVENTORY)
    (name,) = parse_inventory(text, "inv.yaml").select()
    one = _resolved(text, name.name)
    inv = inventory_from_variables({"ex01": one, "ex02": {**one, "ansible_port": 40002, "group_names": []}})
    assert [t.name for t in inv.hosts] == ["ex01", "ex02"]
    assert [t.os.port for t in inv.hosts] == [40001, 40002]
    assert inv.groups["exchange"] == ("ex01",)
    assert inv.order == ("ex01", "ex02")
