"""Ansible's connection variables, read as its ``psrp`` and ``winrm`` plugins read them.

The options, their variables and defaults are those ``ansible-doc -t connection psrp`` and
``ansible-doc -t connection winrm`` document (ansible-core 2.16 to 2.20), and the defaults
that depend on other options follow the plugins' code (``Connection._build_kwargs`` of
``lib/ansible/plugins/connection/psrp.py``, ``_build_winrm_kwargs`` and ``_winrm_connect`` of
``winrm.py``):

- an option set by several variables takes the last of them in its list that is set and not
  null (ansible-core ``ConfigManager._loop_entries``): ``ansible_psrp_port`` beats
  ``ansible_port``, ``ansible_winrm_password`` beats ``ansible_password``;
- values are converted as Ansible converts them (``ensure_type``): ``"5986"`` is a port,
  ``yes`` a boolean, a relative path is made absolute from the current directory, a
  comma-separated string is a list; ``choices`` are compared case-sensitively, as Ansible does;
- psrp: no protocol and no port is https on 5986; a port alone is http only when it is 5985;
  a protocol alone gives 5986 (https) or 5985 (http);
- winrm: the port defaults to 5986; the scheme is http only when the port is 5985; with no
  ``ansible_winrm_transport``, a ``user@domain`` name means Kerberos and anything else basic
  authentication; ``ansible_winrm_<arg>`` variables are passed to pywinrm's ``Protocol``
  (the plugin's "extras"), and ``ansible_winrm_connection_timeout`` sets both its operation
  timeout and, 10 s more, its read timeout.

Every option is in :data:`PSRP_OPTIONS` or :data:`WINRM_OPTIONS` with what exfix does with it.
One exfix does not use (``ansible_psrp_reconnection_retries``: exfix retries by its own policy)
is reported, once per variable, by :func:`unused_variables`.
"""

from __future__ import annotations

import decimal
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.errors import InventoryError
from agent.inventory.values import Origin, Written, vault_or_template
from agent.model.document import Unread

PSRP = "psrp"
WINRM = "winrm"
CONNECTIONS = {PSRP: PSRP, "ansible.builtin.psrp": PSRP, WINRM: WINRM, "ansible.builtin.winrm": WINRM}

# ansible-core module_utils/parsing/convert_bool.py
_TRUE = frozenset(("y", "yes", "on", "1", "true", "t"))
_FALSE = frozenset(("n", "no", "off", "0", "false", "f"))


@dataclass(frozen=True, slots=True)
class Option:
    """One option of an Ansible connection plugin, as its documentation declares it.

    ``variables``: the variables that set it, in Ansible's order (the last one set wins);
    ``use``: what exfix does with it, "" when it does not use it (then it is warned about).
    """

    name: str
    variables: tuple[str, ...]
    type: str  # str | int | bool | path | list
    default: Any
    use: str
    choices: tuple[str, ...] = ()


_ADDR = ("inventory_hostname", "ansible_host")
_PASSWORD = ("ansible_password", "ansible_winrm_pass", "ansible_winrm_password")

PSRP_OPTIONS: tuple[Option, ...] = (
    Option("remote_addr", (*_ADDR, "ansible_psrp_host"), "str", None, "the OS endpoint's address"),
    Option("remote_user", ("ansible_user", "ansible_psrp_user"), "str", None, "the account"),
    Option("remote_password", _PASSWORD, "str", None, "the password (kept out of every output)"),
    Option("port", ("ansible_port", "ansible_psrp_port"), "int", None, "the OS endpoint's port"),
    Option("protocol", ("ansible_psrp_protocol",), "str", None, "http or https", ("http", "https")),
    Option("path", ("ansible_psrp_path",), "str", "wsman", "the OS endpoint's URL path"),
    Option(
        "auth",
        ("ansible_psrp_auth",),
        "str",
        "negotiate",
        "the OS endpoint's authentication",
        ("basic", "certificate", "negotiate", "kerberos", "ntlm", "credssp"),
    ),
    Option(
        "cert_validation",
        ("ansible_psrp_cert_validation",),
        "str",
        "validate",
        "TLS certificate validation (both endpoints)",
        ("validate", "ignore"),
    ),
    Option(
        "ca_cert",
        ("ansible_psrp_cert_trust_path", "ansible_psrp_ca_cert"),
        "path",
        None,
        "the CA bundle certificates are validated with",
    ),
    Option("certificate_pem", ("ansible_psrp_certificate_pem",), "path", None, "client certificate"),
    Option(
        "certificate_key_pem", ("ansible_psrp_certificate_key_pem",), "path", None, "client certificate's key"
    ),
    Option(
        "configuration_name",
        ("ansible_psrp_configuration_name",),
        "str",
        "Microsoft.PowerShell",
        "the OS endpoint's session configuration",
    ),
    Option("connection_timeout", ("ansible_psrp_connection_timeout",), "int", 30, "seconds to connect"),
    Option(
        "read_timeout",
        ("ansible_psrp_read_timeout",),
        "int",
        30,
        "seconds to wait for an HTTP answer (above the operation timeout)",
    ),
    Option("operation_timeout", ("ansible_psrp_operation_timeout",), "int", 20, "WSMan OperationTimeout"),
    Option(
        "message_encryption",
        ("ansible_psrp_message_encryption",),
        "str",
        "auto",
        "WSMan message encryption",
        ("auto", "always", "never"),
    ),
    Option("proxy", ("ansible_psrp_proxy",), "str", None, "HTTP proxy URL (both endpoints)"),
    Option(
        "ignore_proxy",
        ("ansible_psrp_ignore_proxy",),
        "bool",
        False,
        "ignore the environment's proxy settings (both endpoints)",
    ),
    Option("max_envelope_size", ("ansible_psrp_max_envelope_size",), "int", 153600, "WSMan envelope bytes"),
    Option(
        "negotiate_service",
        ("ansible_psrp_negotiate_service",),
        "str",
        "WSMAN",
        "Kerberos service name (OS endpoint)",
    ),
    Option(
        "negotiate_hostname_override",
        ("ansible_psrp_negotiate_hostname_override",),
        "str",
        None,
        "Kerberos host name, to connect by address (both endpoints)",
    ),
    Option(
        "negotiate_delegate",
        ("ansible_psrp_negotiate_delegate",),
        "bool",
        None,
        "Kerberos credential delegation",
    ),
    Option(
        "negotiate_send_cbt", ("ansible_psrp_negotiate_send_cbt",), "bool", True, "channel binding over https"
    ),
    Option(
        "credssp_auth_mechanism",
        ("ansible_psrp_credssp_auth_mechanism",),
        "str",
        "auto",
        "CredSSP's inner authentication",
        ("auto", "kerberos", "ntlm"),
    ),
    Option(
        "credssp_disable_tlsv1_2",
        ("ansible_psrp_credssp_disable_tlsv1_2",),
        "bool",
        False,
        "CredSSP without TLS 1.2",
    ),
    Option(
        "credssp_minimum_version",
        ("ansible_psrp_credssp_minimum_version",),
        "int",
        2,
        "CredSSP's minimum server version",
    ),
    Option("reconnection_retries", ("ansible_psrp_reconnection_retries",), "int", 0, ""),
    Option(
        "reconnection_backoff",
        ("ansible_psrp_connection_backoff", "ansible_psrp_reconnection_backoff"),
        "int",
        2,
        "",
    ),
)

WINRM_OPTIONS: tuple[Option, ...] = (
    Option("remote_addr", (*_ADDR, "ansible_winrm_host"), "str", None, "the OS endpoint's address"),
    Option("remote_user", ("ansible_user", "ansible_winrm_user"), "str", None, "the account"),
    Option("remote_password", _PASSWORD, "str", None, "the password (kept out of every output)"),
    Option("port", ("ansible_port", "ansible_winrm_port"), "int", 5986, "the OS endpoint's port"),
    Option("scheme", ("ansible_winrm_scheme",), "str", None, "http or https", ("http", "https")),
    Option("path", ("ansible_winrm_path",), "str", "/wsman", "the OS endpoint's URL path"),
    Option(
        "transport",
        ("ansible_winrm_transport",),
        "list",
        None,
        "authentication: one of basic, plaintext, ssl, ntlm, kerberos, credssp, certificate",
    ),
    Option(
        "connection_timeout",
        ("ansible_winrm_connection_timeout",),
        "int",
        None,
        "operation timeout, and read timeout 10 s above it",
    ),
    Option("kerberos_command", ("ansible_winrm_kinit_cmd",), "str", "kinit", ""),
    Option("kerberos_mode", ("ansible_winrm_kinit_mode",), "str", None, "", ("managed", "manual")),
    Option("kinit_args", ("ansible_winrm_kinit_args",), "str", None, ""),
    Option("kinit_env_vars", ("ansible_winrm_kinit_env_vars",), "list", [], ""),
)

# pywinrm Protocol arguments the winrm plugin passes through from ``ansible_winrm_<arg>``
# (pywinrm 0.5 ``winrm.protocol.Protocol.__init__``), with pywinrm's defaults.
WINRM_EXTRAS: tuple[Option, ...] = (
    Option(
        "server_cert_validation",
        ("ansible_winrm_server_cert_validation",),
        "str",
        "validate",
        "TLS certificate validation (both endpoints)",
        ("validate", "ignore"),
    ),
    Option(
        "ca_trust_path",
        ("ansible_winrm_ca_trust_path",),
        "str",
        None,
        "the CA bundle certificates are validated with",
    ),
    Option("cert_pem", ("ansible_winrm_cert_pem",), "str", None, "client certificate"),
    Option("cert_key_pem", ("ansible_winrm_cert_key_pem",), "str", None, "client certificate's key"),
    Option(
        "read_timeout_sec", ("ansible_winrm_read_timeout_sec",), "int", 30, "seconds to wait for an answer"
    ),
    Option(
        "operation_timeout_sec", ("ansible_winrm_operation_timeout_sec",), "int", 20, "WSMan OperationTimeout"
    ),
    Option(
        "message_encryption",
        ("ansible_winrm_message_encryption",),
        "str",
        "auto",
        "WSMan message encryption",
        ("auto", "always", "never"),
    ),
    Option("proxy", ("ansible_winrm_proxy",), "str", None, "HTTP proxy URL (both endpoints)"),
    Option("service", ("ansible_winrm_service",), "str", "HTTP", "Kerberos service name (OS endpoint)"),
    Option(
        "kerberos_hostname_override",
        ("ansible_winrm_kerberos_hostname_override",),
        "str",
        None,
        "Kerberos host name, to connect by address (both endpoints)",
    ),
    Option(
        "kerberos_delegation",
        ("ansible_winrm_kerberos_delegation",),
        "bool",
        False,
        "Kerberos credential delegation",
    ),
    Option("send_cbt", ("ansible_winrm_send_cbt",), "bool", True, "channel binding over https"),
    Option(
        "credssp_disable_tlsv1_2",
        ("ansible_winrm_credssp_disable_tlsv1_2",),
        "bool",
        False,
        "CredSSP without TLS 1.2",
    ),
    Option("realm", ("ansible_winrm_realm",), "str", None, ""),
    Option("keytab", ("ansible_winrm_keytab",), "str", None, ""),
)

_OWN = {
    PSRP: (PSRP_OPTIONS, "ansible_psrp_"),
    WINRM: ((*WINRM_OPTIONS, *WINRM_EXTRAS), "ansible_winrm_"),
}


@dataclass(frozen=True, slots=True)
class Resolved:
    """The options of one plugin for one host: value and where it was set (None: default)."""

    connection: str
    values: Mapping[str, tuple[Any, Origin | None, str | None]]  # name -> (value, origin, variable)

    def __getitem__(self, name: str) -> Any:
        return self.values[name][0]

    def set(self, name: str) -> bool:
        return self.values[name][1] is not None

    def origin(self, name: str) -> tuple[Origin | None, str | None]:
        _, origin, variable = self.values[name]
        return origin, variable


class OptionError(Exception):
    """A problem with one option's value, raised before the host is known."""

    def __init__(self, variable: str, origin: Origin | None, problem: str) -> None:
        super().__init__(problem)
        self.variable = variable
        self.origin = origin
        self.problem = problem


def resolve(
    connection: str, hostvars: Mapping[str, Written], *, skip: frozenset[str] = frozenset()
) -> Resolved:
    """Every option of ``connection``'s plugin for a host with ``hostvars`` (merged, with
    ``inventory_hostname``); the options in ``skip`` are left at their defaults (a password
    exfix takes from elsewhere is not read, vaulted or not). Raises OptionError."""
    options, _ = _OWN[connection]
    return Resolved(
        connection,
        {
            opt.name: (opt.default, None, None) if opt.name in skip else _option(opt, hostvars)
            for opt in options
        },
    )


def unused_variables(connection: str, hostvars: Mapping[str, Any]) -> list[str]:
    """The ``ansible_psrp_*`` and ``ansible_winrm_*`` variables of a host that exfix does not
    use with its ``connection`` (one of its options exfix has no use for, another plugin's
    variable, or one no plugin knows)."""
    options, _ = _OWN[connection]
    used = {var for opt in options if opt.use for var in opt.variables}
    return sorted(
        name
        for name, value in hostvars.items()
        if name.startswith(("ansible_psrp_", "ansible_winrm_")) and name not in used and value is not None
    )


def _option(opt: Option, hostvars: Mapping[str, Written]) -> tuple[Any, Origin | None, str | None]:
    value: Any = None
    origin: Origin | None = None
    variable: str | None = None
    for name in opt.variables:
        written = hostvars.get(name)
        if written is not None and written[0] is not None:
            value, origin = written
            variable = name
    if variable is None:
        return opt.default, None, None
    secret = opt.name == "remote_password"
    if isinstance(value, Unread):  # 0644, a date: YAML would not keep it as written
        raise OptionError(
            variable, origin, "is not a plain string: quote the password" if secret else value.problem
        )
    problem = vault_or_template(value)
    if problem is not None:
        raise OptionError(variable, origin, problem)
    try:
        converted = ensure_type(value, opt.type)
    except ValueError as exc:
        if secret:
            problem = "must be a string"
        elif opt.name == "port":
            problem = f"must be a port number between 1 and 65535, not {_shown(value)}"
        else:
            problem = str(exc)
        raise OptionError(variable, origin, problem) from None
    if opt.choices:
        items = converted if isinstance(converted, list) else [converted]
        bad = [item for item in items if item not in opt.choices]
        if bad:
            close = [c for c in opt.choices if isinstance(bad[0], str) and c.lower() == bad[0].lower()]
            hint = f"; did you mean {close[0]!r}? (Ansible's choices are case-sensitive)" if close else ""
            raise OptionError(variable, origin, f"{bad[0]!r} is not one of {', '.join(opt.choices)}{hint}")
    return converted, origin, variable


def ensure_type(value: Any, kind: str) -> Any:
    """``value`` converted as Ansible converts an option of type ``kind`` (its
    ``config.manager.ensure_type``). Raises ValueError; a boolean Ansible would read as
    false because it is not a word for true is refused here instead."""
    if kind == "str":
        if isinstance(value, str):
            return str(value)
        if isinstance(value, (bool, int, float)):
            return str(value)
    elif kind == "int":
        if isinstance(value, int):
            return int(value)
        if isinstance(value, (float, str)):
            try:
                number = decimal.Decimal(value)
                if number == int(number):
                    return int(number)
            except (decimal.DecimalException, ValueError, OverflowError):
                pass
        raise ValueError(f"must be a whole number, not {_shown(value)}")
    elif kind == "bool":
        if isinstance(value, bool):
            return value
        normalized = value.lower().strip() if isinstance(value, str) else value
        if normalized in _TRUE or normalized in (1, 1.0):
            return True
        if normalized in _FALSE or normalized in (0, 0.0):
            return False
        raise ValueError(f"must be true or false, not {_shown(value)}")
    elif kind == "path":
        if isinstance(value, str):
            return os.path.normpath(os.path.abspath(os.path.expandvars(os.path.expanduser(value))))
    elif kind == "list":
        if isinstance(value, list):
            return list(value)
        if isinstance(value, str):
            return [_unquote(part.strip()) for part in value.split(",")]
        if isinstance(value, tuple):
            return list(value)
    raise ValueError(f"must be {_KINDS[kind]}, not {_shown(value)}")


_KINDS = {
    "str": "a string",
    "int": "a whole number",
    "bool": "true or false",
    "path": "a path",
    "list": "a list",
}


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:59] + "…"


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def connection_error(source: str, host: str, exc: OptionError) -> InventoryError:
    """An OptionError as the one-line InventoryError, at the line that set the variable."""
    origin = exc.origin
    if exc.problem == "vault":
        problem = vault_refusal(exc.variable)
    elif exc.problem == "template":
        problem = template_refusal(exc.variable)
    else:
        problem = exc.problem
    if origin is None:
        return InventoryError(source, problem, host=host, key=exc.variable)
    return InventoryError(origin.source, problem, line=origin.at(), host=host, key=exc.variable)


def vault_refusal(variable: str) -> str:
    way = (
        "set exfix_password_env to the name of an environment variable holding it"
        if "pass" in variable
        else "write the value in the clear"
    )
    return (
        f"is encrypted with Ansible Vault, which exfix cannot decrypt: {way}, or let Ansible "
        "read the inventory with -i ansible:PATH (pip install 'exfix[ansible]')"
    )


def template_refusal(variable: str) -> str:
    way = (
        "set exfix_password_env to the name of an environment variable holding it"
        if "pass" in variable
        else "write the value it stands for"
    )
    return (
        "is a Jinja2 template ({{ }}), which only Ansible evaluates: "
        f"{way}, or let Ansible read the inventory with -i ansible:PATH (pip install 'exfix[ansible]')"
    )
