"""The variables exfix reads, and one host's merged variables -> :class:`~agent.model.target.HostTarget`.

Unknown ``ansible_*`` variables are ignored (inventories carry more than exfix needs); an
unknown ``exfix_*`` variable is an error, because it is almost certainly a typo.

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

from agent.inventory.coerce import (
    BadValue,
    HostVars,
    Var,
    as_address,
    as_address_map,
    as_bool,
    as_cert_validation,
    as_dns_name,
    as_enum,
    as_ip_list,
    as_path,
    as_port,
    as_printable,
    as_seconds,
)
from agent.inventory.credentials import credential_ref
from agent.model.credential import Secret
from agent.model.target import Auth, CertValidation, EndpointConfig, HostTarget, OsTransport, Scheme, Timeouts

# ansible_* variables exfix reads. Any other ansible_* is ignored (admins reuse inventories).
ANSIBLE_VARIABLES = frozenset({
    "ansible_host", "ansible_user", "ansible_password", "ansible_port", "ansible_psrp_auth",
    "ansible_psrp_protocol", "ansible_psrp_path", "ansible_psrp_cert_validation", "ansible_psrp_ca_cert",
})  # fmt: skip

# exfix_* variables. Anything else starting with exfix_ is a typo and an error.
EXFIX_VARIABLES = frozenset({
    "exfix_exchange_host", "exfix_exchange_port", "exfix_exchange_path", "exfix_exchange_protocol",
    "exfix_exchange_auth", "exfix_dns_address_map", "exfix_os_transport", "exfix_allow_insecure_basic",
    "exfix_external_dns_servers", "exfix_password_env", "exfix_lab_scenario", "exfix_probe_public_name",
    "exfix_cert_pem", "exfix_cert_key_pem", "exfix_connection_timeout", "exfix_read_timeout",
    "exfix_operation_timeout", "exfix_command_timeout", "exfix_host_timeout",
})  # fmt: skip


def host_target(
    source: str, name: str, groups: tuple[str, ...], merged: dict[str, Var], passwords: dict[str, Secret]
) -> HostTarget:
    """The target one host's merged variables describe, with the defaults above applied.

    Raises InventoryError naming the host, the key and its line. A password in the inventory
    goes to ``passwords``, never into the target.
    """
    v = HostVars(source, name, merged)
    address = v.get("ansible_host", as_address, None) or _address_from_name(v, name)

    os_port = v.get("ansible_port", as_port)
    os_scheme = v.get("ansible_psrp_protocol", lambda x: as_enum(x, Scheme))
    if os_scheme is None:
        os_scheme = Scheme.HTTPS if os_port == 5986 else Scheme.HTTP
    os_endpoint = EndpointConfig(
        scheme=os_scheme,
        host=address,
        port=os_port or (5986 if os_scheme is Scheme.HTTPS else 5985),
        path=v.get("ansible_psrp_path", as_path, "wsman"),
        auth=v.get("ansible_psrp_auth", lambda x: as_enum(x, Auth), Auth.NEGOTIATE),
    )

    ex_port = v.get("exfix_exchange_port", as_port)
    ex_scheme = v.get("exfix_exchange_protocol", lambda x: as_enum(x, Scheme))
    if ex_scheme is None:
        ex_scheme = Scheme.HTTPS if ex_port == 443 else Scheme.HTTP
    exchange_endpoint = EndpointConfig(
        scheme=ex_scheme,
        host=v.get("exfix_exchange_host", as_address, address),
        port=ex_port or (443 if ex_scheme is Scheme.HTTPS else 80),
        path=v.get("exfix_exchange_path", as_path, "PowerShell"),
        auth=v.get("exfix_exchange_auth", lambda x: as_enum(x, Auth), Auth.KERBEROS),
    )

    allow_basic = v.get("exfix_allow_insecure_basic", as_bool, False)
    os_transport = v.get("exfix_os_transport", lambda x: as_enum(x, OsTransport), OsTransport.PSRP)
    for endpoint, key in ((os_endpoint, "ansible_psrp_auth"), (exchange_endpoint, "exfix_exchange_auth")):
        if endpoint.auth is Auth.BASIC and endpoint.scheme is Scheme.HTTP and not allow_basic:
            raise v.error(
                key,
                "basic authentication over plain HTTP sends the password readable on the "
                "network; use https, or set exfix_allow_insecure_basic: true to accept that",
            )
        if endpoint.auth is Auth.CERTIFICATE and endpoint.scheme is Scheme.HTTP:
            raise v.error(key, "certificate authentication needs https")

    validation = v.get("ansible_psrp_cert_validation", as_cert_validation, True)
    ca_path = v.get("ansible_psrp_ca_cert", as_printable)
    cert_validation = CertValidation(verify=validation, ca_path=ca_path if validation else None)

    address_map = v.get("exfix_dns_address_map", as_address_map, ())
    external = v.get("exfix_external_dns_servers", as_ip_list, ())

    defaults = Timeouts()
    timeouts = Timeouts(
        connection=v.get("exfix_connection_timeout", as_seconds, defaults.connection),
        read=v.get("exfix_read_timeout", as_seconds, defaults.read),
        operation=int(v.get("exfix_operation_timeout", as_seconds, defaults.operation)),
        command=v.get("exfix_command_timeout", as_seconds, defaults.command),
        host=v.get("exfix_host_timeout", as_seconds, defaults.host),
    )
    if timeouts.operation < 1 or timeouts.read <= timeouts.operation:
        key = "exfix_read_timeout" if v.has("exfix_read_timeout") else "exfix_operation_timeout"
        raise v.error(
            key,
            f"the read timeout ({timeouts.read:g}s) must exceed the WSMan operation timeout "
            f"({timeouts.operation}s), which must be at least 1s",
        )

    credential = credential_ref(v, os_endpoint, exchange_endpoint, passwords)

    return HostTarget(
        name=name,
        address=address,
        groups=groups,
        os=os_endpoint,
        exchange=exchange_endpoint,
        os_transport=os_transport,
        cert_validation=cert_validation,
        credential=credential,
        allow_insecure_basic=allow_basic,
        dns_address_map=address_map,
        external_dns_servers=external,
        timeouts=timeouts,
        lab_scenario=v.get("exfix_lab_scenario", as_printable),
        probe_public_name=v.get("exfix_probe_public_name", as_dns_name),
        source=source,
    )


def _address_from_name(v: HostVars, name: str) -> str:
    try:
        return as_address(name)
    except BadValue:
        raise v.error(None, f"the host name {name!r} is not an address: set ansible_host") from None
