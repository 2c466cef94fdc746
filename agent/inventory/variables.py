"""The variables exfix reads, and one host's merged variables -> :class:`~agent.model.target.HostTarget`.

They are read as :class:`~agent.inventory.document.HostVariables`, through the one strict
reader, once per host from its merged variables. Unknown ``ansible_*`` variables are ignored
(inventories carry more than exfix needs); an unknown ``exfix_*`` variable is an error, because
it is almost certainly a typo.

Variables (defaults in brackets):

==============================  ===========================================================
ansible_host                    address of the host [the inventory name]
ansible_port                    OS endpoint port [5985; 5986 for https]
ansible_psrp_protocol           http | https [http; https when the port is 5986]
ansible_psrp_path               OS endpoint path [wsman]
ansible_psrp_auth               kerberos | negotiate | ntlm | credssp | certificate | basic [negotiate]
ansible_psrp_cert_validation    validate | ignore [validate]
ansible_psrp_ca_cert            CA bundle to validate the server certificate with
ansible_user, ansible_password  the account; the password in the clear, as Ansible allows
exfix_password_env              name of an environment variable holding the password
exfix_exchange_host             Exchange endpoint address, for Kerberos by FQDN [ansible_host]
exfix_exchange_port             [80; 443 for https]
exfix_exchange_protocol         http | https [http; https when the port is 443]
exfix_exchange_path             [PowerShell]
exfix_exchange_auth             as ansible_psrp_auth [kerberos]
exfix_os_transport              psrp | winrm (WinRS + powershell.exe) [psrp]
exfix_allow_insecure_basic      accept basic authentication over plain http [false]
exfix_cert_pem, _cert_key_pem   client certificate files for certificate authentication
exfix_dns_address_map           DNS server address -> "host:port" really queried (the lab)
exfix_external_dns_servers      public resolvers the planner may propose
exfix_connection_timeout        seconds to connect [30]
exfix_read_timeout              seconds to wait for an HTTP answer [30]; above the next
exfix_operation_timeout         WSMan OperationTimeout seconds [20]
exfix_command_timeout           seconds one cmdlet may run [120]
exfix_host_timeout              seconds everything done to one host may take [900]
exfix_lab_scenario              informational: the lab scenario that wrote the inventory
exfix_probe_public_name         an internet name every working resolver answers [microsoft.com]
==============================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.errors import InventoryError
from agent.inventory.coerce import as_address
from agent.inventory.credentials import credential_ref
from agent.inventory.document import READ, HostVariables
from agent.model.credential import Secret
from agent.model.document import KeyPath, Loaded
from agent.model.target import Auth, CertValidation, EndpointConfig, HostTarget, Scheme, Timeouts

Written = tuple[Any, KeyPath]
"""A variable's value and where the file sets it (its key path)."""


@dataclass(frozen=True, slots=True)
class _Host:
    """Reports a problem with one host's variables: at the line that set the variable."""

    loaded: Loaded[Any]
    name: str
    origins: Mapping[str, KeyPath]

    def error(self, key: str | None, problem: str) -> InventoryError:
        at = self.origins.get(key) if key is not None else None
        line = self.loaded.line(at) if at is not None else None
        return InventoryError(self.loaded.source, problem, line=line, host=self.name, key=key)

    def read(self, merged: Mapping[str, Written]) -> HostVariables:
        data = {name: value for name, (value, _) in merged.items() if name in READ}
        try:
            return self.loaded.read_merged(HostVariables, data, self.origins)
        except InventoryError as exc:
            problem = exc.problem
            if exc.key == "ansible_password":  # the reader quotes what it cannot read: not this
                problem = "is not a plain string: quote the password"
            raise InventoryError(exc.path, problem, line=exc.line, host=self.name, key=exc.key) from None


def host_target(
    loaded: Loaded[Any],
    name: str,
    groups: tuple[str, ...],
    merged: Mapping[str, Written],
    passwords: dict[str, Secret],
) -> HostTarget:
    """The target one host's merged variables describe, with the defaults above applied.

    Raises InventoryError naming the host, the key and its line. A password in the inventory
    goes to ``passwords``, never into the target.
    """
    host = _Host(loaded, name, {key: at for key, (value, at) in merged.items() if value is not None})
    v = host.read(merged)
    address = v.ansible_host or _address_from_name(host)

    os_scheme = v.ansible_psrp_protocol or (Scheme.HTTPS if v.ansible_port == 5986 else Scheme.HTTP)
    os_endpoint = EndpointConfig(
        scheme=os_scheme,
        host=address,
        port=v.ansible_port or (5986 if os_scheme is Scheme.HTTPS else 5985),
        path=v.ansible_psrp_path,
        auth=v.ansible_psrp_auth,
    )
    ex_scheme = v.exfix_exchange_protocol or (Scheme.HTTPS if v.exfix_exchange_port == 443 else Scheme.HTTP)
    exchange_endpoint = EndpointConfig(
        scheme=ex_scheme,
        host=v.exfix_exchange_host or address,
        port=v.exfix_exchange_port or (443 if ex_scheme is Scheme.HTTPS else 80),
        path=v.exfix_exchange_path,
        auth=v.exfix_exchange_auth,
    )

    for endpoint, key in ((os_endpoint, "ansible_psrp_auth"), (exchange_endpoint, "exfix_exchange_auth")):
        if (
            endpoint.auth is Auth.BASIC
            and endpoint.scheme is Scheme.HTTP
            and not v.exfix_allow_insecure_basic
        ):
            raise host.error(
                key,
                "basic authentication over plain HTTP sends the password readable on the "
                "network; use https, or set exfix_allow_insecure_basic: true to accept that",
            )
        if endpoint.auth is Auth.CERTIFICATE and endpoint.scheme is Scheme.HTTP:
            raise host.error(key, "certificate authentication needs https")

    validation = v.ansible_psrp_cert_validation
    cert_validation = CertValidation(
        verify=validation, ca_path=v.ansible_psrp_ca_cert if validation else None
    )

    timeouts = Timeouts(
        connection=v.exfix_connection_timeout,
        read=v.exfix_read_timeout,
        operation=int(v.exfix_operation_timeout),
        command=v.exfix_command_timeout,
        host=v.exfix_host_timeout,
    )
    if timeouts.operation < 1 or timeouts.read <= timeouts.operation:
        key = "exfix_read_timeout" if "exfix_read_timeout" in host.origins else "exfix_operation_timeout"
        raise host.error(
            key,
            f"the read timeout ({timeouts.read:g}s) must exceed the WSMan operation timeout "
            f"({timeouts.operation}s), which must be at least 1s",
        )

    credential = credential_ref(name, v, host.error, (os_endpoint, exchange_endpoint), passwords)

    return HostTarget(
        name=name,
        address=address,
        groups=groups,
        os=os_endpoint,
        exchange=exchange_endpoint,
        os_transport=v.exfix_os_transport,
        cert_validation=cert_validation,
        credential=credential,
        allow_insecure_basic=v.exfix_allow_insecure_basic,
        dns_address_map=v.exfix_dns_address_map,
        external_dns_servers=v.exfix_external_dns_servers,
        timeouts=timeouts,
        lab_scenario=v.exfix_lab_scenario,
        probe_public_name=v.exfix_probe_public_name,
        source=loaded.source,
    )


def _address_from_name(host: _Host) -> str:
    try:
        return as_address(host.name)
    except ValueError:
        raise host.error(None, f"the host name {host.name!r} is not an address: set ansible_host") from None
