"""One host's merged variables -> :class:`~agent.model.target.HostTarget`, and the table of
every variable exfix reads.

The OS endpoint is what Ansible's connection plugin would connect to: ``ansible_connection:
winrm`` reads the winrm plugin's variables, ``psrp`` (and no ``ansible_connection``: exfix
speaks PSRP) the psrp plugin's (:mod:`agent.inventory.connection`). Any other connection
(``ssh``, ``local``) is not a host exfix can reach: it is refused if selected. The Exchange
endpoint is exfix's own (``exfix_exchange_*``). exfix's own timeouts and certificate files,
where set, win over Ansible's.

:data:`EXFIX_VARIABLES` and the plugins' option tables make the README's variable table
(:func:`variable_table`; a test keeps the two equal).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.errors import InventoryError
from agent.inventory.coerce import as_address, as_path
from agent.inventory.connection import (
    CONNECTIONS,
    PSRP,
    PSRP_OPTIONS,
    WINRM,
    WINRM_EXTRAS,
    WINRM_OPTIONS,
    Option,
    OptionError,
    Resolved,
    connection_error,
    resolve,
    template_refusal,
    vault_refusal,
)
from agent.inventory.credentials import credential_ref
from agent.inventory.document import INVENTORY, READ, HostVariables
from agent.inventory.values import Origin, Written, vault_or_template
from agent.model.credential import Secret
from agent.model.target import (
    EXCHANGE_SERVICE,
    Auth,
    CertValidation,
    CredSSP,
    EndpointConfig,
    HostTarget,
    MessageEncryption,
    OsTransport,
    Scheme,
    Timeouts,
)

# pywinrm transport names -> exfix's (pywinrm 0.5: plaintext and ssl are basic authentication
# over http and https; ssl with a client certificate is certificate authentication).
_WINRM_AUTH = {
    "basic": Auth.BASIC,
    "plaintext": Auth.BASIC,
    "ssl": Auth.BASIC,
    "ntlm": Auth.NTLM,
    "kerberos": Auth.KERBEROS,
    "credssp": Auth.CREDSSP,
    "certificate": Auth.CERTIFICATE,
}

EXFIX_VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("exfix_password_env", "name of an environment variable holding the password", ""),
    ("exfix_exchange_host", "Exchange endpoint address, for Kerberos by FQDN", "the OS endpoint's address"),
    ("exfix_exchange_port", "Exchange endpoint port", "80; 443 for https"),
    ("exfix_exchange_protocol", "http or https", "http; https when the port is 443"),
    ("exfix_exchange_path", "Exchange endpoint path", "PowerShell"),
    ("exfix_exchange_auth", "kerberos, negotiate, ntlm, credssp, certificate or basic", "kerberos"),
    (
        "exfix_os_transport",
        "psrp or winrm (WinRS + powershell.exe) for the OS cmdlets",
        "winrm with ansible_connection: winrm, else psrp",
    ),
    (
        "exfix_psrp_client",
        "psrpcore or pypsrp: the PSRP client library (EXFIX_PSRP_CLIENT overrides it)",
        "psrpcore; pypsrp for credssp, certificate or a proxy",
    ),
    ("exfix_allow_insecure_basic", "accept basic authentication over plain http", "false"),
    ("exfix_cert_pem, exfix_cert_key_pem", "client certificate files (over Ansible's)", ""),
    ("exfix_dns_address_map", 'DNS server address -> "host:port" really queried (the lab)', ""),
    ("exfix_external_dns_servers", "public resolvers the planner may propose", ""),
    ("exfix_connection_timeout", "seconds to connect (over Ansible's)", "Ansible's"),
    ("exfix_read_timeout", "seconds to wait for an HTTP answer (over Ansible's)", "Ansible's"),
    ("exfix_operation_timeout", "WSMan OperationTimeout seconds (over Ansible's)", "Ansible's"),
    ("exfix_command_timeout", "seconds one cmdlet may run", "120"),
    ("exfix_host_timeout", "seconds everything done to one host may take", "900"),
    ("exfix_lab_scenario", "informational: the lab scenario that wrote the inventory", ""),
    ("exfix_probe_public_name", "an internet name every working resolver answers", "microsoft.com"),
    (
        "exfix_tls_server_name",
        "the name TLS certificates are checked against when connecting by address (both endpoints)",
        "the address connected to",
    ),
)


def _default_text(opt: Option) -> str:
    if opt.default is None:
        return ""
    if isinstance(opt.default, bool):
        return "true" if opt.default else "false"
    if isinstance(opt.default, list):
        return ", ".join(opt.default)
    return str(opt.default)


_PSRP_DEFAULTS = {
    "remote_addr": "the inventory name",
    "port": "5986; 5985 with protocol http",
    "protocol": "https; http when the port is 5985",
}
_WINRM_DEFAULTS = {
    "remote_addr": "the inventory name",
    "scheme": "https; http when the port is 5985",
    "transport": "kerberos for user@domain, else basic (ssl, plaintext)",
    "connection_timeout": "pywinrm's",
}


def variable_table() -> str:
    """The README's table of every variable exfix reads or warns about, from the code."""
    rows = ["| variable | plugin | what exfix does with it | default |", "|---|---|---|---|"]
    for plugin, options, defaults in (
        (PSRP, PSRP_OPTIONS, _PSRP_DEFAULTS),
        (WINRM, (*WINRM_OPTIONS, *WINRM_EXTRAS), _WINRM_DEFAULTS),
    ):
        for opt in options:
            names = ", ".join(f"`{v}`" for v in opt.variables if v != "inventory_hostname")
            use = opt.use or "not used: warned about"
            default = defaults.get(opt.name, _default_text(opt))
            rows.append(f"| {names} | {plugin} | {use} | {default} |")
    rows.append("| `ansible_connection` | | psrp or winrm: whose variables make the OS endpoint | psrp |")
    for names, use, default in EXFIX_VARIABLES:
        shown = ", ".join(f"`{n.strip()}`" for n in names.split(","))
        rows.append(f"| {shown} | exfix | {use} | {default} |")
    return "\n".join(rows) + "\n"


class NotReachable(Exception):
    """A host whose ``ansible_connection`` exfix cannot use: refused only when selected."""

    def __init__(self, error: InventoryError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, slots=True)
class _Host:
    name: str
    source: str
    merged: Mapping[str, Written]

    def error(self, key: str | None, problem: str) -> InventoryError:
        written = self.merged.get(key) if key is not None else None
        if written is None:
            return InventoryError(self.source, problem, host=self.name, key=key)
        origin = written[1]
        return InventoryError(origin.source, problem, line=origin.at(), host=self.name, key=key)

    def option_error(self, resolved: Resolved, name: str, problem: str, fallback: str) -> InventoryError:
        _, variable = resolved.origin(name)
        return self.error(variable or fallback, problem)


def host_target(
    name: str,
    groups: tuple[str, ...],
    merged: Mapping[str, Written],
    passwords: dict[str, Secret],
    source: str,
) -> HostTarget:
    """The target one host's merged variables describe, with the defaults of Ansible's plugin.

    Raises InventoryError naming the file, line, host and key; NotReachable for a host whose
    ``ansible_connection`` is neither psrp nor winrm. A password goes to ``passwords``, never
    into the target.
    """
    host = _Host(name, source, merged)
    connection = _connection(host)
    v = _exfix_variables(host)
    skip = frozenset({"remote_password"}) if v.exfix_password_env else frozenset()
    withname = {"inventory_hostname": (name, _first_origin(host)), **merged}
    try:
        r = resolve(connection, withname, skip=skip)
    except OptionError as exc:
        raise connection_error(source, name, exc) from None
    if connection == PSRP:
        os_endpoint, cert, timeouts_in, certs = _psrp(host, r)
    else:
        os_endpoint, cert, timeouts_in, certs = _winrm(host, r)
    user = r["remote_user"]
    password = r["remote_password"]
    if v.exfix_tls_server_name is not None:
        os_endpoint = dataclasses.replace(os_endpoint, tls_server_name=v.exfix_tls_server_name)

    exchange_scheme = v.exfix_exchange_protocol or (
        Scheme.HTTPS if v.exfix_exchange_port == 443 else Scheme.HTTP
    )
    exchange_endpoint = EndpointConfig(
        scheme=exchange_scheme,
        host=v.exfix_exchange_host or os_endpoint.host,
        port=v.exfix_exchange_port or (443 if exchange_scheme is Scheme.HTTPS else 80),
        path=v.exfix_exchange_path,
        auth=v.exfix_exchange_auth,
        configuration_name="Microsoft.Exchange",
        # /PowerShell is an IIS application: its SPN is HTTP/<fqdn> (or HTTP/<namespace> on the
        # alternate service account of a load-balanced namespace; Microsoft, "Using Kerberos
        # with a Client Access Server Array or a Load-Balancing Solution"). Not the OS
        # endpoint's WSMAN, and never left to pypsrp, whose unset service is "host".
        negotiate_service=EXCHANGE_SERVICE,
        negotiate_hostname_override=None
        if v.exfix_exchange_host
        else os_endpoint.negotiate_hostname_override,
        # Like the Kerberos name: an Exchange endpoint of its own (exfix_exchange_host) is
        # checked against that host; one at the OS endpoint's address against the same name.
        tls_server_name=None if v.exfix_exchange_host else os_endpoint.tls_server_name,
        negotiate_delegate=os_endpoint.negotiate_delegate,
        send_cbt=os_endpoint.send_cbt,
        proxy=os_endpoint.proxy,
        ignore_proxy=os_endpoint.ignore_proxy,
    )
    os_auth_key = r.origin("auth" if connection == PSRP else "transport")[1] or (
        "ansible_psrp_auth" if connection == PSRP else "ansible_winrm_transport"
    )
    encryption_key = r.origin("message_encryption")[1]
    for endpoint, key, explicit_never in (
        (
            os_endpoint,
            os_auth_key,
            encryption_key is not None and os_endpoint.message_encryption is MessageEncryption.NEVER,
        ),
        (exchange_endpoint, "exfix_exchange_auth", False),
    ):
        if (
            endpoint.auth is Auth.BASIC
            and endpoint.scheme is Scheme.HTTP
            and not (v.exfix_allow_insecure_basic or explicit_never)
        ):
            raise host.error(
                key,
                "basic authentication over plain HTTP sends the password readable on the "
                "network; use https, or set exfix_allow_insecure_basic: true to accept that",
            )
        if endpoint.auth is Auth.CERTIFICATE and endpoint.scheme is Scheme.HTTP:
            raise host.error(key, "certificate authentication needs https")
        if endpoint.message_encryption is MessageEncryption.ALWAYS and endpoint.auth in (
            Auth.BASIC,
            Auth.CERTIFICATE,
        ):
            raise host.error(
                encryption_key,
                f"message encryption needs negotiate, kerberos, ntlm or credssp, not {endpoint.auth.value} "
                "(Ansible's message_encryption: always)",
            )

    connect, read, operation = timeouts_in
    timeouts = Timeouts(
        connection=v.exfix_connection_timeout if v.exfix_connection_timeout is not None else float(connect),
        read=v.exfix_read_timeout if v.exfix_read_timeout is not None else float(read),
        operation=int(v.exfix_operation_timeout if v.exfix_operation_timeout is not None else operation),
        command=v.exfix_command_timeout,
        host=v.exfix_host_timeout,
    )
    if timeouts.connection <= 0:
        raise host.error(
            "exfix_connection_timeout" if v.exfix_connection_timeout else None,
            "the connection timeout must be above 0s",
        )
    if timeouts.operation < 1 or timeouts.read <= timeouts.operation:
        key = next(
            (
                k
                for k in (
                    "exfix_read_timeout",
                    "exfix_operation_timeout",
                    "ansible_psrp_read_timeout",
                    "ansible_psrp_operation_timeout",
                    "ansible_winrm_read_timeout_sec",
                    "ansible_winrm_operation_timeout_sec",
                    "ansible_winrm_connection_timeout",
                )
                if k in merged
            ),
            "exfix_read_timeout",
        )
        raise host.error(
            key,
            f"the read timeout ({timeouts.read:g}s) must exceed the WSMan operation timeout "
            f"({timeouts.operation}s), which must be at least 1s",
        )

    cert_pem = v.exfix_cert_pem or certs[0]
    cert_key_pem = v.exfix_cert_key_pem or certs[1]
    credential = credential_ref(
        name,
        user=None if user is None else str(user),
        password=None if password is None else Secret(str(password)),
        env_var=v.exfix_password_env,
        cert_pem=cert_pem,
        cert_key_pem=cert_key_pem,
        endpoints=(os_endpoint, exchange_endpoint),
        error=lambda key, problem: host.error(
            {"os": os_auth_key, "exchange": "exfix_exchange_auth"}.get(key, key), problem
        ),
        passwords=passwords,
    )
    default_transport = OsTransport.WINRM if connection == WINRM else OsTransport.PSRP
    return HostTarget(
        name=name,
        address=os_endpoint.host,
        groups=groups,
        os=os_endpoint,
        exchange=exchange_endpoint,
        os_transport=v.exfix_os_transport or default_transport,
        cert_validation=cert,
        credential=credential,
        allow_insecure_basic=v.exfix_allow_insecure_basic,
        dns_address_map=v.exfix_dns_address_map,
        external_dns_servers=v.exfix_external_dns_servers,
        timeouts=timeouts,
        lab_scenario=v.exfix_lab_scenario,
        probe_public_name=v.exfix_probe_public_name,
        source=source,
        connection=connection,
        psrp_client=v.exfix_psrp_client,
    )


_Built = tuple[EndpointConfig, CertValidation, tuple[int, int, int], tuple[str | None, str | None]]


def _psrp(host: _Host, r: Resolved) -> _Built:
    protocol, port = r["protocol"], r["port"]
    # psrp.py Connection._build_kwargs
    if protocol is None and port is None:
        protocol, port = "https", 5986
    elif protocol is None:
        protocol = "https" if port != 5985 else "http"
    elif port is None:
        port = 5986 if protocol == "https" else 5985
    endpoint = EndpointConfig(
        scheme=Scheme(protocol),
        host=_address(host, r),
        port=_port(host, r, port),
        path=_path(host, r),
        auth=Auth(r["auth"]),
        configuration_name=r["configuration_name"],
        message_encryption=MessageEncryption(r["message_encryption"]),
        negotiate_service=r["negotiate_service"],
        negotiate_hostname_override=r["negotiate_hostname_override"],
        negotiate_delegate=bool(r["negotiate_delegate"]),
        send_cbt=r["negotiate_send_cbt"],
        proxy=r["proxy"],
        ignore_proxy=r["ignore_proxy"],
        max_envelope_size=r["max_envelope_size"],
        credssp=CredSSP(
            auth_mechanism=r["credssp_auth_mechanism"],
            disable_tlsv1_2=r["credssp_disable_tlsv1_2"],
            minimum_version=r["credssp_minimum_version"],
        ),
    )
    verify = r["cert_validation"] != "ignore"
    cert = CertValidation(verify=verify, ca_path=r["ca_cert"] if verify else None)
    timeouts = (r["connection_timeout"], r["read_timeout"], r["operation_timeout"])
    return endpoint, cert, timeouts, (r["certificate_pem"], r["certificate_key_pem"])


def _winrm(host: _Host, r: Resolved) -> _Built:
    port = r["port"]
    scheme = r["scheme"] or ("http" if port == 5985 else "https")  # winrm.py _build_winrm_kwargs
    user = r["remote_user"]
    transports = r["transport"]
    if not transports or transports[0] is None:
        transports = (
            ["kerberos"] if user and "@" in str(user) else ["ssl" if scheme == "https" else "plaintext"]
        )
    cert_pem, cert_key_pem = r["cert_pem"], r["cert_key_pem"]
    auths: list[Auth] = []
    for transport in transports:
        auth = _WINRM_AUTH.get(transport) if isinstance(transport, str) else None
        if auth is None:
            raise host.option_error(
                r,
                "transport",
                f"{transport!r} is not a pywinrm transport ({', '.join(_WINRM_AUTH)})",
                "ansible_winrm_transport",
            )
        if transport == "ssl" and (cert_pem or cert_key_pem):
            auth = Auth.CERTIFICATE
        auths.append(auth)
    if len(set(auths)) > 1:
        raise host.option_error(
            r,
            "transport",
            f"lists several transports ({', '.join(map(str, transports))}), which Ansible tries in turn; "
            "exfix uses one: keep the one the host accepts",
            "ansible_winrm_transport",
        )
    operation, read = r["operation_timeout_sec"], r["read_timeout_sec"]
    if r["connection_timeout"]:  # winrm.py _winrm_connect
        operation, read = r["connection_timeout"], r["connection_timeout"] + 10
    endpoint = EndpointConfig(
        scheme=Scheme(scheme),
        host=_address(host, r),
        port=_port(host, r, port),
        path=_path(host, r),
        auth=auths[0],
        message_encryption=MessageEncryption(r["message_encryption"]),
        negotiate_service=r["service"],
        negotiate_hostname_override=r["kerberos_hostname_override"],
        negotiate_delegate=r["kerberos_delegation"],
        send_cbt=r["send_cbt"],
        proxy=r["proxy"],
    )
    verify = r["server_cert_validation"] != "ignore"
    cert = CertValidation(verify=verify, ca_path=r["ca_trust_path"] if verify else None)
    # pywinrm waits read_timeout_sec for the connection too (requests' single timeout).
    return endpoint, cert, (read, read, operation), (cert_pem, cert_key_pem)


def _address(host: _Host, r: Resolved) -> str:
    try:
        return as_address(r["remote_addr"])
    except ValueError:
        _, variable = r.origin("remote_addr")
        if variable in (None, "inventory_hostname"):
            raise host.error(
                None, f"the host name {host.name!r} is not an address: set ansible_host"
            ) from None
        raise host.error(variable, f"{r['remote_addr']!r} is not a valid host name or IP address") from None


def _port(host: _Host, r: Resolved, port: int) -> int:
    if not 1 <= port <= 65535:
        raise host.option_error(
            r, "port", f"must be a port number between 1 and 65535, not {port}", "ansible_port"
        )
    return port


def _path(host: _Host, r: Resolved) -> str:
    try:
        return as_path(r["path"])
    except ValueError as exc:
        raise host.option_error(r, "path", str(exc), "path") from None


def _first_origin(host: _Host) -> Origin:
    return Origin(host.source)


def _connection(host: _Host) -> str:
    written = host.merged.get("ansible_connection")
    if written is None or written[0] is None:
        return PSRP
    value = written[0]
    problem = vault_or_template(value)
    if problem is not None:
        refusal = vault_refusal if problem == "vault" else template_refusal
        raise host.error("ansible_connection", refusal("ansible_connection"))
    if isinstance(value, str) and value in CONNECTIONS:
        return CONNECTIONS[value]
    raise NotReachable(
        host.error(
            "ansible_connection",
            f"{value!r}: exfix reaches Windows hosts over psrp or winrm only; set ansible_connection: "
            "psrp (or winrm) for this host, or leave it out with --limit",
        )
    )


def _exfix_variables(host: _Host) -> HostVariables:
    """exfix's own variables through the strict reader, each at the line that set it."""
    batches: dict[int, tuple[Origin, dict[str, Any], dict[str, Any]]] = {}
    for name, (value, origin) in host.merged.items():
        if name not in READ:
            continue
        problem = vault_or_template(value)
        if problem is not None:
            refusal = vault_refusal if problem == "vault" else template_refusal
            raise host.error(name, refusal(name))
        # One read per YAML document (its lines find errors below a variable); values with no
        # document of lines behind them (INI, JSON) one by one, each with its own line.
        slot = id(origin.loaded) if origin.loaded is not None else id(origin) ^ hash(name)
        _, data, paths = batches.setdefault(slot, (origin, {}, {}))
        data[name] = value
        paths[name] = origin.path
    values: dict[str, Any] = {}
    for origin, data, paths in batches.values():
        try:
            if origin.loaded is not None:
                read = origin.loaded.read_merged(HostVariables, data, paths)
            else:
                blank = INVENTORY.read_data_tree(None, source=origin.source)
                read = blank.read_merged(HostVariables, data, {n: () for n in data})
        except InventoryError as exc:
            line = exc.line if exc.line is not None else origin.at()
            raise InventoryError(exc.path, exc.problem, line=line, host=host.name, key=exc.key) from None
        for name in data:
            values[name] = getattr(read, name)
    return HostVariables(**values)
