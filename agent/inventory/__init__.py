"""Ansible-style YAML inventory -> typed, validated host targets.

The format is Ansible's YAML inventory (``all`` / ``children`` / ``hosts`` / ``vars``), so
admins can point exfix at the inventories they already have:

- variables take precedence host over group over ``all``; among groups a deeper child beats
  its parent, and groups at the same depth apply in name order (Ansible's rule);
- a host may be listed in several groups and defined (with variables) in any of them;
- ``ex[01:03].contoso.local`` host ranges expand as Ansible's do.

Unknown ``ansible_*`` variables are ignored (inventories carry more than exfix needs); an
unknown ``exfix_*`` variable is an error, because it is almost certainly a typo. Every problem
is one :class:`~agent.errors.InventoryError` naming the file, the line, the host and the key.

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

Secrets never live in a :class:`HostTarget`: it carries a :class:`CredentialRef` saying where
the password comes from. :meth:`Inventory.credentials` turns that into a :class:`Credential`
whose password is a :class:`Secret` that refuses to be printed, logged or pickled.
"""

from __future__ import annotations

import difflib
import enum
import fnmatch
import hmac
import ipaddress
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from agent.errors import CredentialError, InventoryError, UsageError

log = logging.getLogger(__name__)

__all__ = [
    "Auth",
    "CertValidation",
    "Credential",
    "CredentialRef",
    "CredentialResolver",
    "CredentialSource",
    "EndpointConfig",
    "HostTarget",
    "Inventory",
    "OsTransport",
    "PasswordPrompt",
    "Scheme",
    "Secret",
    "Timeouts",
    "inventory_from_mapping",
    "load_inventory",
    "select_hosts",
]


# --- closed sets ----------------------------------------------------------------------------


class Scheme(str, enum.Enum):
    HTTP = "http"
    HTTPS = "https"


class Auth(str, enum.Enum):
    """WSMan authentication (pypsrp's names). Kerberos is what Exchange really supports."""

    KERBEROS = "kerberos"
    NEGOTIATE = "negotiate"
    NTLM = "ntlm"
    CREDSSP = "credssp"
    CERTIFICATE = "certificate"
    BASIC = "basic"


class OsTransport(str, enum.Enum):
    """How OS cmdlets reach the host: PSRP (pypsrp) or WinRS + powershell.exe (pywinrm)."""

    PSRP = "psrp"
    WINRM = "winrm"


class CredentialSource(str, enum.Enum):
    ENV = "env"  # exfix_password_env names an environment variable
    INVENTORY = "inventory"  # ansible_password, in the clear, as Ansible allows
    KERBEROS_CACHE = "kerberos-cache"  # no password: the current Kerberos ticket is used
    CERTIFICATE = "certificate"  # client certificate files
    PROMPT = "prompt"  # needs --ask-pass


# --- secrets --------------------------------------------------------------------------------


class Secret:
    """A password. Shows as ``********`` everywhere; :meth:`reveal` is the only way out."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode("utf-8"), other._value.encode("utf-8"))

    def __hash__(self) -> int:
        return hash(Secret)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> NoReturn:
        # Nothing exfix writes (facts, plans, the journal) may carry a password, even by accident.
        raise TypeError("a Secret cannot be pickled or copied to disk")


@dataclass(frozen=True, slots=True, repr=False)
class Credential:
    """What a session authenticates with. Never logged; its repr hides the password."""

    source: CredentialSource
    username: str | None = None
    password: Secret | None = None
    cert_pem: str | None = None
    cert_key_pem: str | None = None

    def __repr__(self) -> str:
        shown = "********" if self.password else "None"
        return f"Credential(source={self.source.value!r}, username={self.username!r}, password={shown})"

    __str__ = __repr__


PasswordPrompt = Callable[[str | None, str], str]
"""``prompt(username, host) -> password``: what ``--ask-pass`` gives the resolver."""


# --- targets --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """One WSMan endpoint of a host."""

    scheme: Scheme
    host: str
    port: int
    path: str
    auth: Auth

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme.value}://{host}:{self.port}/{self.path}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme.value,
            "host": self.host,
            "port": self.port,
            "path": self.path,
            "auth": self.auth.value,
            "url": self.url,
        }


@dataclass(frozen=True, slots=True)
class CertValidation:
    """TLS server certificate validation: on by default; ``ca_path`` a CA bundle to trust."""

    verify: bool = True
    ca_path: str | None = None

    @property
    def requests_verify(self) -> bool | str:
        """The value ``requests``/pypsrp take: False, True, or the CA bundle path."""
        if not self.verify:
            return False
        return self.ca_path if self.ca_path else True


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``command`` bounds one cmdlet; ``host`` bounds everything done to one host."""

    connection: float = 30.0
    read: float = 30.0
    operation: int = 20
    command: float = 120.0
    host: float = 900.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "read": self.read,
            "operation": self.operation,
            "command": self.command,
            "host": self.host,
        }


@dataclass(frozen=True, slots=True)
class CredentialRef:
    """Where a host's credential comes from. Holds no secret."""

    source: CredentialSource
    username: str | None = None
    env_var: str | None = None
    cert_pem: str | None = None
    cert_key_pem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.value,
            "username": self.username,
            "env_var": self.env_var,
            "cert_pem": self.cert_pem,
            "cert_key_pem": self.cert_key_pem,
        }


@dataclass(frozen=True, slots=True)
class HostTarget:
    """One Exchange host exfix can connect to, with every connection setting resolved."""

    name: str  # the inventory name (usually the FQDN)
    address: str  # ansible_host: what the OS endpoint connects to
    groups: tuple[str, ...]
    os: EndpointConfig  # WinRM: /wsman, Microsoft.PowerShell
    exchange: EndpointConfig  # /PowerShell, Microsoft.Exchange
    os_transport: OsTransport
    cert_validation: CertValidation
    credential: CredentialRef
    allow_insecure_basic: bool = False
    dns_address_map: tuple[tuple[str, str], ...] = ()  # DNS server address -> "host:port" really queried
    external_dns_servers: tuple[str, ...] = ()
    timeouts: Timeouts = field(default_factory=Timeouts)
    lab_scenario: str | None = None
    probe_public_name: str | None = None  # None: the collector's default
    source: str = ""  # the inventory file

    @property
    def address_map(self) -> dict[str, str]:
        return dict(self.dns_address_map)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; safe to log or write (no secret is ever in a target)."""
        return {
            "name": self.name,
            "address": self.address,
            "groups": list(self.groups),
            "os": self.os.to_dict(),
            "exchange": self.exchange.to_dict(),
            "os_transport": self.os_transport.value,
            "cert_validation": {
                "verify": self.cert_validation.verify,
                "ca_path": self.cert_validation.ca_path,
            },
            "credential": self.credential.to_dict(),
            "allow_insecure_basic": self.allow_insecure_basic,
            "dns_address_map": dict(self.dns_address_map),
            "external_dns_servers": list(self.external_dns_servers),
            "timeouts": self.timeouts.to_dict(),
            "lab_scenario": self.lab_scenario,
            "probe_public_name": self.probe_public_name,
            "source": self.source,
        }


# --- variables ------------------------------------------------------------------------------

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

_GROUP_KEYS = ("hosts", "vars", "children")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_URL_PATH = re.compile(r"^[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*$")
_RANGE = re.compile(
    r"^(?P<head>[^\[\]]*)\[(?P<start>[0-9]+|[a-z]):(?P<end>[0-9]+|[a-z])(?::(?P<step>[0-9]+))?\](?P<tail>.*)$"
)
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


class _Map(dict[Any, Any]):
    """A YAML mapping that remembers the line of each key (1-based)."""

    __slots__ = ("line", "lines")

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}
        self.line: int | None = None


class _Bad(Exception):
    """A value problem, turned into an InventoryError by whoever knows the host/key/line."""


def _make_loader(source: str) -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> _Map:
        loader.flatten_mapping(node)
        result = _Map()
        result.line = node.start_mark.line + 1
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (dict, list)):
                raise InventoryError(source, "a mapping key must be a plain value", line=line)
            if key in result:
                raise InventoryError(source, f"duplicate key {key!r}", line=line)
            result[key] = loader.construct_object(value_node, deep=True)
            result.lines[key] = line
        return result

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return Loader


@dataclass
class _Var:
    value: Any
    line: int | None


@dataclass
class _Group:
    name: str
    vars: dict[str, _Var] = field(default_factory=dict)
    hosts: dict[str, None] = field(default_factory=dict)  # ordered set
    children: list[str] = field(default_factory=list)


class _Builder:
    """Walks the YAML tree into groups and host variables, remembering where each came from."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.groups: dict[str, _Group] = {"all": _Group("all")}
        self.host_vars: dict[str, dict[str, _Var]] = {}
        self.host_order: list[str] = []

    def error(
        self, problem: str, *, line: int | None = None, host: str | None = None, key: str | None = None
    ) -> InventoryError:
        return InventoryError(self.source, problem, line=line, host=host, key=key)

    def top(self, data: Any) -> None:
        if data is None:
            raise self.error("the inventory is empty")
        if not isinstance(data, Mapping):
            raise self.error(
                f"the top level must be a mapping of groups (all: ...), not {_kind(data)}", line=1
            )
        for name, body in data.items():
            group = self._group_name(name, _line_of(data, name))
            self.group(group, body, _line_of(data, name))
            if group != "all":
                self._link("all", group)

    def group(self, name: str, body: Any, line: int | None) -> None:
        group = self.groups.setdefault(name, _Group(name))
        if body is None:
            return
        if not isinstance(body, Mapping):
            raise self.error(
                f"group {name!r} must be a mapping with hosts/vars/children, not {_kind(body)}", line=line
            )
        for key in body:
            if key not in _GROUP_KEYS:
                hint = _hint(str(key), _GROUP_KEYS)
                raise self.error(
                    f"group {name!r} has unknown key {key!r}{hint} (expected hosts, vars, children)",
                    line=_line_of(body, key),
                    key=str(key),
                )
        for key in body:  # in file order, so hosts keep the order the file lists them in
            if key == "vars" and body[key] is not None:
                where = f"vars of group {name!r}"
                group.vars.update(self.variables(body[key], _line_of(body, key), where=where))
            elif key == "hosts" and body[key] is not None:
                self._hosts(group, body[key], _line_of(body, key))
            elif key == "children" and body[key] is not None:
                self._children(group, body[key], _line_of(body, key))

    def _hosts(self, group: _Group, hosts: Any, line: int | None) -> None:
        if not isinstance(hosts, Mapping):
            raise self.error(
                f"hosts of group {group.name!r} must be a mapping of host names, not {_kind(hosts)}",
                line=line,
                key="hosts",
            )
        for raw_name, host_body in hosts.items():
            host_line = _line_of(hosts, raw_name)
            for host in self._host_names(raw_name, host_line):
                if host not in self.host_vars:
                    self.host_vars[host] = {}
                    self.host_order.append(host)
                group.hosts.setdefault(host, None)
                if host_body is not None:
                    self.host_vars[host].update(
                        self.variables(host_body, host_line, where=f"host {host!r}", host=host)
                    )

    def _children(self, group: _Group, children: Any, line: int | None) -> None:
        if not isinstance(children, Mapping):
            raise self.error(
                f"children of group {group.name!r} must be a mapping of groups, not {_kind(children)}",
                line=line,
                key="children",
            )
        for raw_child, child_body in children.items():
            child_line = _line_of(children, raw_child)
            child = self._group_name(raw_child, child_line)
            if child == "all":
                raise self.error("group 'all' cannot be a child", line=child_line)
            self.group(child, child_body, child_line)
            self._link(group.name, child)

    def _link(self, parent: str, child: str) -> None:
        if child not in self.groups[parent].children:
            self.groups[parent].children.append(child)

    def variables(
        self, body: Any, line: int | None, *, where: str, host: str | None = None
    ) -> dict[str, _Var]:
        if not isinstance(body, Mapping):
            raise self.error(
                f"{where} must be a mapping of variables, not {_kind(body)}", line=line, host=host
            )
        out: dict[str, _Var] = {}
        for key, value in body.items():
            key_line = _line_of(body, key) or line
            if not isinstance(key, str):
                raise self.error(f"variable names must be strings, not {key!r}", line=key_line, host=host)
            if key.startswith("exfix_") and key not in EXFIX_VARIABLES:
                raise self.error(
                    f"unknown exfix variable{_hint(key, EXFIX_VARIABLES)}", line=key_line, host=host, key=key
                )
            out[key] = _Var(value, key_line)
        return out

    def _group_name(self, raw: Any, line: int | None) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise self.error(f"group names must be non-empty strings, not {raw!r}", line=line)
        if not raw.isprintable() or any(ch.isspace() for ch in raw):
            raise self.error(f"group name {raw!r} contains spaces or unprintable characters", line=line)
        return raw

    def _host_names(self, raw: Any, line: int | None) -> list[str]:
        if isinstance(raw, bool) or raw is None or not isinstance(raw, (str, int, float)):
            raise self.error(f"host names must be strings, not {raw!r}", line=line)
        name = str(raw)
        if not name.strip():
            raise self.error("a host name is empty", line=line)
        if not name.isprintable() or any(ch.isspace() for ch in name):
            raise self.error(f"host name {name!r} contains spaces or unprintable characters", line=line)
        if len(name) > 255:
            raise self.error(f"host name {name[:40]!r}... is longer than 255 characters", line=line)
        try:
            return _expand_range(name)
        except _Bad as exc:
            raise self.error(str(exc), line=line, host=name) from None

    def ancestry(self) -> dict[str, int]:
        """Each group's depth (longest path from all), checking that children form no cycle."""
        depth: dict[str, int] = {}
        visiting: set[str] = set()

        def walk(name: str, level: int, path: tuple[str, ...]) -> None:
            if name in visiting:
                cycle = " -> ".join((*path, name))
                raise self.error(f"groups form a cycle: {cycle}")
            if depth.get(name, -1) >= level:
                return
            depth[name] = level
            visiting.add(name)
            for child in self.groups[name].children:
                walk(child, level + 1, (*path, name))
            visiting.discard(name)

        walk("all", 0, ())
        return depth


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"


def _line_of(mapping: Any, key: Any) -> int | None:
    if isinstance(mapping, _Map):
        return mapping.lines.get(key, mapping.line)
    return None


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _expand_range(name: str) -> list[str]:
    """Ansible host ranges: ``ex[01:03].x`` -> ex01.x, ex02.x, ex03.x; ``[a:c]`` letters."""
    match = _RANGE.match(name)
    if match is None:
        if "[" in name or "]" in name:
            raise _Bad(f"host name {name!r} has a malformed [start:end] range")
        return [name]
    start, end, step_text = match.group("start"), match.group("end"), match.group("step")
    step = int(step_text) if step_text else 1
    if step < 1:
        raise _Bad(f"host range in {name!r} has a step below 1")
    if start.isdigit() != end.isdigit():
        raise _Bad(f"host range in {name!r} mixes letters and numbers")
    if start.isdigit():
        first, last = int(start), int(end)
        width = len(start) if start.startswith("0") and len(start) > 1 else 0
        items = [str(n).zfill(width) for n in range(first, last + 1, step)]
    else:
        items = [chr(c) for c in range(ord(start), ord(end) + 1, step)]
    if not items:
        raise _Bad(f"host range in {name!r} is empty")
    if len(items) > 10000:
        raise _Bad(f"host range in {name!r} expands to more than 10000 hosts")
    out: list[str] = []
    for item in items:
        out.extend(_expand_range(match.group("head") + item + match.group("tail")))
    return out


# --- value checks ---------------------------------------------------------------------------


def _as_str(value: Any, *, allow_empty: bool = False) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, (Mapping, list, tuple)):
        raise _Bad(f"must be a string, not {_kind(value)}")
    text = str(value)
    if not allow_empty and not text.strip():
        raise _Bad("must not be empty")
    return text


def _as_printable(value: Any) -> str:
    text = _as_str(value)
    if not text.isprintable():
        raise _Bad(f"{text!r} contains unprintable characters")
    return text


_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9-]{1,63}\.?$"
)


def _as_dns_name(value: Any) -> str:
    text = _as_str(value)
    if not _DNS_NAME.match(text):
        raise _Bad(f"expected a DNS name, got {text!r}")
    return text.rstrip(".")


def _as_port(value: Any) -> int:
    if isinstance(value, bool):
        raise _Bad(f"must be a port number, not {value!r}")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not 1 <= value <= 65535:
        raise _Bad(f"must be a port number between 1 and 65535, not {value!r}")
    return value


def _as_enum(value: Any, enum_type: type[enum.Enum]) -> Any:
    text = _as_str(value).strip().lower()
    for member in enum_type:
        if member.value == text:
            return member
    allowed = ", ".join(str(m.value) for m in enum_type)
    raise _Bad(f"{value!r} is not one of {allowed}")


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, int)) and str(value).strip().lower() in _TRUE | _FALSE:
        return str(value).strip().lower() in _TRUE
    raise _Bad(f"must be true or false, not {value!r}")


def _as_seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise _Bad(f"must be a number of seconds, not {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise _Bad(f"must be a number of seconds, not {value!r}") from None
    if not isinstance(value, (int, float)) or not 0 < value <= 86400:
        raise _Bad(f"must be a number of seconds between 0 and 86400, not {value!r}")
    return float(value)


def _as_address(value: Any) -> str:
    text = _as_str(value).strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        ascii_name = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise _Bad(f"{text!r} is not a valid host name or IP address") from None
    labels = ascii_name.rstrip(".").split(".")
    if len(ascii_name) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise _Bad(f"{text!r} is not a valid host name or IP address")
    return text


def _as_ip(value: Any) -> str:
    text = _as_str(value).strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise _Bad(f"{text!r} is not an IP address") from None


def _as_host_port(value: Any) -> str:
    text = _as_str(value).strip()
    match = re.fullmatch(r"\[(?P<v6>[0-9A-Fa-f:.]+)\]:(?P<port>\d+)|(?P<host>[^:\[\]]+):(?P<port2>\d+)", text)
    if match is None:
        raise _Bad(f"{text!r} is not host:port")
    host = match.group("v6") or match.group("host")
    port = match.group("port") or match.group("port2")
    _as_address(host)
    _as_port(int(port))
    return text


def _as_path(value: Any) -> str:
    text = _as_str(value).strip().strip("/")
    if not _URL_PATH.match(text):
        raise _Bad(f"{text!r} is not a URL path (letters, digits, . _ ~ - and /)")
    return text


# --- building targets -----------------------------------------------------------------------


class _HostVars:
    """The merged variables of one host, with checked getters that report host/key/line."""

    def __init__(self, source: str, host: str, merged: dict[str, _Var]) -> None:
        self.source = source
        self.host = host
        self.merged = merged

    def has(self, key: str) -> bool:
        return key in self.merged and self.merged[key].value is not None

    def line(self, key: str) -> int | None:
        var = self.merged.get(key)
        return var.line if var else None

    def error(self, key: str | None, problem: str) -> InventoryError:
        return InventoryError(
            self.source, problem, line=self.line(key) if key else None, host=self.host, key=key
        )

    def get(self, key: str, check: Callable[[Any], Any], default: Any = None) -> Any:
        if not self.has(key):
            return default
        try:
            return check(self.merged[key].value)
        except _Bad as exc:
            raise self.error(key, str(exc)) from None


def _target(
    source: str, name: str, groups: tuple[str, ...], merged: dict[str, _Var], passwords: dict[str, Secret]
) -> HostTarget:
    v = _HostVars(source, name, merged)
    address = v.get("ansible_host", _as_address, None) or _address_from_name(v, name)

    os_port = v.get("ansible_port", _as_port)
    os_scheme = v.get("ansible_psrp_protocol", lambda x: _as_enum(x, Scheme))
    if os_scheme is None:
        os_scheme = Scheme.HTTPS if os_port == 5986 else Scheme.HTTP
    os_endpoint = EndpointConfig(
        scheme=os_scheme,
        host=address,
        port=os_port or (5986 if os_scheme is Scheme.HTTPS else 5985),
        path=v.get("ansible_psrp_path", _as_path, "wsman"),
        auth=v.get("ansible_psrp_auth", lambda x: _as_enum(x, Auth), Auth.NEGOTIATE),
    )

    ex_port = v.get("exfix_exchange_port", _as_port)
    ex_scheme = v.get("exfix_exchange_protocol", lambda x: _as_enum(x, Scheme))
    if ex_scheme is None:
        ex_scheme = Scheme.HTTPS if ex_port == 443 else Scheme.HTTP
    exchange_endpoint = EndpointConfig(
        scheme=ex_scheme,
        host=v.get("exfix_exchange_host", _as_address, address),
        port=ex_port or (443 if ex_scheme is Scheme.HTTPS else 80),
        path=v.get("exfix_exchange_path", _as_path, "PowerShell"),
        auth=v.get("exfix_exchange_auth", lambda x: _as_enum(x, Auth), Auth.KERBEROS),
    )

    allow_basic = v.get("exfix_allow_insecure_basic", _as_bool, False)
    os_transport = v.get("exfix_os_transport", lambda x: _as_enum(x, OsTransport), OsTransport.PSRP)
    for endpoint, key in ((os_endpoint, "ansible_psrp_auth"), (exchange_endpoint, "exfix_exchange_auth")):
        if endpoint.auth is Auth.BASIC and endpoint.scheme is Scheme.HTTP and not allow_basic:
            raise v.error(
                key,
                "basic authentication over plain HTTP sends the password readable on the "
                "network; use https, or set exfix_allow_insecure_basic: true to accept that",
            )
        if endpoint.auth is Auth.CERTIFICATE and endpoint.scheme is Scheme.HTTP:
            raise v.error(key, "certificate authentication needs https")

    validation = v.get("ansible_psrp_cert_validation", _cert_validation, True)
    ca_path = v.get("ansible_psrp_ca_cert", _as_printable)
    cert_validation = CertValidation(verify=validation, ca_path=ca_path if validation else None)

    address_map = v.get("exfix_dns_address_map", _address_map, ())
    external = v.get("exfix_external_dns_servers", _ip_list, ())

    defaults = Timeouts()
    timeouts = Timeouts(
        connection=v.get("exfix_connection_timeout", _as_seconds, defaults.connection),
        read=v.get("exfix_read_timeout", _as_seconds, defaults.read),
        operation=int(v.get("exfix_operation_timeout", _as_seconds, defaults.operation)),
        command=v.get("exfix_command_timeout", _as_seconds, defaults.command),
        host=v.get("exfix_host_timeout", _as_seconds, defaults.host),
    )
    if timeouts.operation < 1 or timeouts.read <= timeouts.operation:
        key = "exfix_read_timeout" if v.has("exfix_read_timeout") else "exfix_operation_timeout"
        raise v.error(
            key,
            f"the read timeout ({timeouts.read:g}s) must exceed the WSMan operation timeout "
            f"({timeouts.operation}s), which must be at least 1s",
        )

    credential = _credential_ref(v, os_endpoint, exchange_endpoint, passwords)

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
        lab_scenario=v.get("exfix_lab_scenario", _as_printable),
        probe_public_name=v.get("exfix_probe_public_name", _as_dns_name),
        source=source,
    )


def _address_from_name(v: _HostVars, name: str) -> str:
    try:
        return _as_address(name)
    except _Bad:
        raise v.error(None, f"the host name {name!r} is not an address: set ansible_host") from None


def _cert_validation(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _as_str(value).strip().lower()
    if text == "validate":
        return True
    if text == "ignore":
        return False
    raise _Bad(f"{value!r} is not one of validate, ignore")


def _address_map(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise _Bad(f"must be a mapping of DNS server address to host:port, not {_kind(value)}")
    return tuple((_as_ip(k), _as_host_port(v)) for k, v in value.items())


def _ip_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in re.split(r"[,\s]+", value) if part]
    if not isinstance(value, (list, tuple)):
        raise _Bad(f"must be a list of IP addresses, not {_kind(value)}")
    return tuple(_as_ip(item) for item in value)


def _credential_ref(
    v: _HostVars, os_endpoint: EndpointConfig, exchange_endpoint: EndpointConfig, passwords: dict[str, Secret]
) -> CredentialRef:
    username = v.get("ansible_user", _as_printable)
    cert_pem = v.get("exfix_cert_pem", _as_printable)
    cert_key_pem = v.get("exfix_cert_key_pem", _as_printable)
    auths = {os_endpoint.auth, exchange_endpoint.auth}
    if Auth.CERTIFICATE in auths and not (cert_pem and cert_key_pem):
        key = "ansible_psrp_auth" if os_endpoint.auth is Auth.CERTIFICATE else "exfix_exchange_auth"
        raise v.error(key, "certificate authentication needs exfix_cert_pem and exfix_cert_key_pem")
    if v.has("exfix_password_env"):
        env_var = v.get("exfix_password_env", _as_str).strip()
        if not _ENV_NAME.match(env_var):
            raise v.error("exfix_password_env", f"{env_var!r} is not an environment variable name")
        return CredentialRef(
            CredentialSource.ENV, username, env_var=env_var, cert_pem=cert_pem, cert_key_pem=cert_key_pem
        )
    if v.has("ansible_password"):
        try:
            # Ansible allows a plain password here (the lab's inventory uses one). It goes
            # to the inventory's private store, never into the target.
            passwords[v.host] = Secret(_as_str(v.merged["ansible_password"].value, allow_empty=True))
        except _Bad:
            raise v.error("ansible_password", "must be a string") from None
        return CredentialRef(
            CredentialSource.INVENTORY, username, cert_pem=cert_pem, cert_key_pem=cert_key_pem
        )
    if auths <= {Auth.CERTIFICATE}:
        return CredentialRef(
            CredentialSource.CERTIFICATE, username, cert_pem=cert_pem, cert_key_pem=cert_key_pem
        )
    if auths <= {Auth.KERBEROS, Auth.NEGOTIATE, Auth.CERTIFICATE}:
        return CredentialRef(
            CredentialSource.KERBEROS_CACHE, username, cert_pem=cert_pem, cert_key_pem=cert_key_pem
        )
    return CredentialRef(CredentialSource.PROMPT, username, cert_pem=cert_pem, cert_key_pem=cert_key_pem)


# --- the inventory --------------------------------------------------------------------------


@dataclass(frozen=True)
class Inventory:
    """A parsed inventory: its hosts in file order and its group membership."""

    source: str
    hosts: tuple[HostTarget, ...]
    groups: Mapping[str, tuple[str, ...]]  # group -> host names (children's hosts included)
    _passwords: Mapping[str, Secret] = field(default_factory=dict, repr=False, compare=False)

    def host(self, name: str) -> HostTarget:
        for target in self.hosts:
            if target.name.lower() == name.lower():
                return target
        raise UsageError(f"{self.source}: no host {name!r} in the inventory")

    def select(self, limit: str | None = None) -> tuple[HostTarget, ...]:
        """The hosts ``--limit`` selects (all of them when it is None or empty)."""
        return select_hosts(self, limit)

    def credentials(
        self, prompt: PasswordPrompt | None = None, environ: Mapping[str, str] | None = None
    ) -> CredentialResolver:
        """A resolver turning each target's :class:`CredentialRef` into a :class:`Credential`."""
        return CredentialResolver(self._passwords, prompt=prompt, environ=environ)


class CredentialResolver:
    """Resolves credentials, asking the ``--ask-pass`` prompt at most once per user. Thread-safe.

    Precedence follows Ansible (inventory variables beat the command line): the variable
    exfix_password_env names, then ansible_password, then the prompt, then the Kerberos cache
    (kerberos/negotiate with no password) or the client certificate.
    """

    def __init__(
        self,
        passwords: Mapping[str, Secret],
        *,
        prompt: PasswordPrompt | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._passwords = passwords
        self._prompt = prompt
        self._environ = environ if environ is not None else os.environ
        self._prompted: dict[str | None, Secret] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CredentialResolver(prompt={'yes' if self._prompt else 'no'})"

    def resolve(self, target: HostTarget) -> Credential:
        """Raises CredentialError (naming the variable or what to do, never a value)."""
        ref = target.credential
        certs = {"cert_pem": ref.cert_pem, "cert_key_pem": ref.cert_key_pem}
        if ref.source is CredentialSource.ENV:
            assert ref.env_var is not None
            value = self._environ.get(ref.env_var)
            if not value:
                raise CredentialError(
                    f"{target.name}: the environment variable {ref.env_var} (exfix_password_env) is not set"
                )
            return Credential(CredentialSource.ENV, ref.username, Secret(value), **certs)
        if ref.source is CredentialSource.INVENTORY:
            return Credential(
                CredentialSource.INVENTORY, ref.username, self._passwords.get(target.name), **certs
            )
        if self._prompt is not None and ref.source in (
            CredentialSource.PROMPT,
            CredentialSource.KERBEROS_CACHE,
        ):
            return Credential(
                CredentialSource.PROMPT, ref.username, self._ask(ref.username, target.name), **certs
            )
        if ref.source is CredentialSource.PROMPT:
            raise CredentialError(
                f"{target.name}: no password for {ref.username or 'the connection'}: set exfix_password_env "
                "or ansible_password in the inventory, or pass --ask-pass"
            )
        return Credential(ref.source, ref.username, None, **certs)

    def _ask(self, username: str | None, host: str) -> Secret:
        assert self._prompt is not None
        with self._lock:
            if username not in self._prompted:
                self._prompted[username] = Secret(self._prompt(username, host))
            return self._prompted[username]


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory file. Raises InventoryError (one line, names the file)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InventoryError(source, "no such file") from None
    except UnicodeDecodeError:
        raise InventoryError(source, "not UTF-8 text") from None
    except OSError as exc:
        raise InventoryError(source, f"cannot read: {exc.strerror or exc}") from None
    return parse_inventory(text, source)


def parse_inventory(text: str, source: str = "<inventory>") -> Inventory:
    """Parse inventory YAML text. ``source`` names it in errors."""
    try:
        data = yaml.load(text, Loader=_make_loader(source))  # a SafeLoader subclass
    except InventoryError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise InventoryError(source, f"not valid YAML: {exc.problem or exc.context}", line=line) from None
    except yaml.YAMLError as exc:
        raise InventoryError(source, f"not valid YAML: {exc}") from None
    return inventory_from_mapping(data, source)


def inventory_from_mapping(data: Any, source: str = "<inventory>") -> Inventory:
    """An inventory from already-loaded data (e.g. the lab's ``Lab.inventory()``)."""
    builder = _Builder(source)
    builder.top(data)
    depth = builder.ancestry()

    # Which groups each host is in, directly or through children.
    parents: dict[str, set[str]] = {name: set() for name in builder.groups}
    for group in builder.groups.values():
        for child in group.children:
            parents[child].add(group.name)

    def ancestors(group: str) -> set[str]:
        seen: set[str] = set()
        stack = [group]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            stack.extend(parents.get(current, ()))
        return seen

    membership: dict[str, set[str]] = {host: {"all"} for host in builder.host_order}
    for group in builder.groups.values():
        for host in group.hosts:
            membership[host] |= ancestors(group.name)
    for groups in membership.values():
        if groups == {"all"}:
            groups.add("ungrouped")

    passwords: dict[str, Secret] = {}
    targets: list[HostTarget] = []
    for host in builder.host_order:
        merged: dict[str, _Var] = {}
        ordered = sorted(
            (g for g in membership[host] if g in builder.groups), key=lambda g: (depth.get(g, 0), g)
        )
        for group_name in ordered:
            merged.update(builder.groups[group_name].vars)
        merged.update(builder.host_vars[host])
        visible = tuple(sorted(g for g in membership[host] if g != "all"))
        targets.append(_target(source, host, visible, merged, passwords))

    group_hosts: dict[str, tuple[str, ...]] = {}
    for name in [*builder.groups, "ungrouped"]:
        group_hosts[name] = tuple(h for h in builder.host_order if name in membership[h])
    return Inventory(source=source, hosts=tuple(targets), groups=group_hosts, _passwords=passwords)


# --- --limit --------------------------------------------------------------------------------


def _split_pattern(pattern: str) -> list[str]:
    # Ansible: commas separate terms; without a comma, colons do (unless it is an IPv6 address).
    if "," in pattern:
        parts = pattern.split(",")
    else:
        try:
            ipaddress.IPv6Address(pattern.strip().lstrip("!&"))
            parts = [pattern]
        except ValueError:
            parts = pattern.split(":")
    return [part.strip() for part in parts if part.strip()]


def _match_term(inventory: Inventory, term: str) -> list[str]:
    """Host names one term selects: a group or host name, with fnmatch wildcards or ~regex."""
    names = [t.name for t in inventory.hosts]
    if term.startswith("~"):
        try:
            regex = re.compile(term[1:])
        except re.error as exc:
            raise UsageError(f"--limit {term!r}: not a valid regular expression: {exc}") from None
        groups = [g for g in inventory.groups if regex.search(g)]
        hosts = [n for n in names if regex.search(n)]
    else:
        lowered = term.lower()
        groups = [g for g in inventory.groups if fnmatch.fnmatchcase(g.lower(), lowered)]
        hosts = [n for n in names if fnmatch.fnmatchcase(n.lower(), lowered)]
    selected = set(hosts)
    for group in groups:
        selected.update(inventory.groups[group])
    return [n for n in names if n in selected]


def select_hosts(inventory: Inventory, limit: str | None) -> tuple[HostTarget, ...]:
    """Ansible's ``--limit``: ``a,b`` or ``a:b`` union, ``&x`` intersection, ``!x`` exclusion.

    Raises:
        UsageError: no host matches the whole pattern.
    """
    if limit is None or not limit.strip():
        return inventory.hosts
    terms = _split_pattern(limit)
    positive = [t for t in terms if not t.startswith(("!", "&"))]
    intersect = [t[1:] for t in terms if t.startswith("&")]
    exclude = [t[1:] for t in terms if t.startswith("!")]
    if not positive:
        positive = ["all"]
    chosen: list[str] = []
    seen: set[str] = set()
    for term in positive:
        matched = _match_term(inventory, term)
        if not matched:
            log.warning("--limit term %r matches no host or group; ignoring it", term)
        for name in matched:
            if name not in seen:
                seen.add(name)
                chosen.append(name)
    for term in intersect:
        keep = set(_match_term(inventory, term))
        chosen = [n for n in chosen if n in keep]
    for term in exclude:
        drop = set(_match_term(inventory, term))
        chosen = [n for n in chosen if n not in drop]
    if not chosen:
        raise UsageError(f"no hosts match --limit {limit!r}")
    wanted = set(chosen)
    return tuple(t for t in inventory.hosts if t.name in wanted)
