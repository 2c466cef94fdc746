"""The TLS settings of a host as the inventory gives them: the CA file, ``exfix_tls_server_name``
and which endpoints it applies to, and which hosts a run warns about (plain data, no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from agent.errors import InventoryError
from agent.inventory import inventory_from_mapping
from agent.model.target import HostTarget
from agent.transport.tls import unvalidated, unvalidated_warning


def _targets(hosts: dict[str, Any], **common: Any) -> tuple[HostTarget, ...]:
    variables = {"ansible_user": "svc", "ansible_password": "pw", **common}
    return inventory_from_mapping({"all": {"vars": variables, "hosts": hosts}}, "<tls tests>").hosts


def test_the_server_name_applies_to_both_endpoints_at_the_same_address() -> None:
    (target,) = _targets(
        {"ex01.contoso.local": {"ansible_host": "10.1.0.21", "exfix_tls_server_name": "ex01.contoso.local"}},
        ansible_psrp_ca_cert="/etc/pki/contoso-ca.pem",
    )
    assert target.os.host == "10.1.0.21" and target.os.tls_server_name == "ex01.contoso.local"
    assert target.exchange.host == "10.1.0.21" and target.exchange.tls_server_name == "ex01.contoso.local"
    assert target.cert_validation.ca_path == "/etc/pki/contoso-ca.pem"
    assert target.to_dict()["os"]["tls_server_name"] == "ex01.contoso.local"


def test_an_exchange_endpoint_of_its_own_is_checked_by_its_own_host() -> None:
    (target,) = _targets({
        "ex01.contoso.local": {
            "ansible_host": "10.1.0.21",
            "exfix_tls_server_name": "ex01.contoso.local",
            "exfix_exchange_host": "mail.contoso.com",
        }
    })  # fmt: skip
    assert target.os.tls_server_name == "ex01.contoso.local"
    assert target.exchange.host == "mail.contoso.com" and target.exchange.tls_server_name is None


def test_without_the_variable_the_address_is_checked_as_ansible_does() -> None:
    (target,) = _targets({"ex01.contoso.local": {"ansible_host": "10.1.0.21"}})
    assert target.os.tls_server_name is None and target.exchange.tls_server_name is None


@pytest.mark.parametrize("value", ["not a name", "ex01..contoso", "ex01.contoso.local:5986", ["ex01"]])
def test_a_server_name_that_is_not_a_dns_name_is_refused(value: Any) -> None:
    with pytest.raises(InventoryError, match="exfix_tls_server_name") as caught:
        _targets({"ex01.contoso.local": {"ansible_host": "10.1.0.21", "exfix_tls_server_name": value}})
    assert "\n" not in str(caught.value)


def test_the_winrm_plugins_ca_trust_path_is_the_ca_file() -> None:
    (target,) = _targets(
        {"ex01.contoso.local": {"ansible_host": "10.1.0.21", "exfix_tls_server_name": "ex01.contoso.local"}},
        ansible_connection="winrm",
        ansible_winrm_transport="ntlm",
        ansible_winrm_ca_trust_path="/etc/pki/contoso-ca.pem",
    )
    assert target.cert_validation.verify and target.cert_validation.ca_path == "/etc/pki/contoso-ca.pem"
    assert target.os.tls_server_name == "ex01.contoso.local"


def test_the_warning_counts_https_hosts_without_validation_only() -> None:
    hosts = {f"ex{n:02}.contoso.local": {"ansible_host": f"10.1.0.{n}"} for n in range(1, 21)}
    hosts["ex21.contoso.local"] = {"ansible_host": "10.1.0.21", "ansible_psrp_cert_validation": "validate"}
    hosts["ex22.contoso.local"] = {  # plain http: no certificate to check
        "ansible_host": "10.1.0.22",
        "ansible_psrp_protocol": "http",
    }
    targets = _targets(hosts, ansible_psrp_cert_validation="ignore")
    assert len(unvalidated(targets)) == 20
    warning = unvalidated_warning(targets)
    assert warning is not None and "\n" not in warning
    assert warning.startswith(
        "TLS certificate validation is off for 20 host(s) (ex01.contoso.local, ex02.contoso.local, "
        "ex03.contoso.local and 17 more)"
    )
    assert (
        unvalidated_warning(t for t in targets if t.name in ("ex21.contoso.local", "ex22.contoso.local"))
        is None
    )
