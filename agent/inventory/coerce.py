"""Checks for the values of Ansible variables, as ``key(check=..., raw=True)`` runs them.

Ansible types variables loosely: an INI inventory, ``-e`` or a template gives ``"5986"`` for a
port and ``"yes"`` for a boolean, and inventories converted from those keep the strings. So
each check takes the value as written, whatever its type, returns it in its checked form, or
raises ValueError; the reader turns that into an :class:`~agent.errors.InventoryError` naming
the file, the line and the key.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from agent.model.document import each, kind, text

E = TypeVar("E", bound=enum.Enum)

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_URL_PATH = re.compile(r"^[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*$")
_HOST_PORT = re.compile(r"\[(?P<v6>[0-9A-Fa-f:.]+)\]:(?P<port>\d+)|(?P<host>[^:\[\]]+):(?P<port2>\d+)")
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9-]{1,63}\.?$"
)
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_printable = text(limit=None)


def as_str(value: Any, *, allow_empty: bool = False) -> str:
    """A scalar as text (Ansible reads ``ansible_password: 123456`` as the string)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"must be a string, not {kind(value)}")
    written = str(value)
    if not allow_empty and not written.strip():
        raise ValueError("must not be empty")
    return written


def as_printable(value: Any) -> str:
    return _printable(as_str(value))


def as_dns_name(value: Any) -> str:
    name = as_str(value)
    if not _DNS_NAME.match(name):
        raise ValueError(f"expected a DNS name, got {name!r}")
    return name.rstrip(".")


def as_port(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"must be a port number between 1 and 65535, not {value!r}")
    return value


def one_of(enum_type: type[E]) -> Callable[[Any], E]:
    """A check: one of the enum's values, in any case (Ansible's choices are lower case)."""

    def check(value: Any) -> E:
        written = as_str(value).strip().lower()
        for member in enum_type:
            if member.value == written:
                return member
        raise ValueError(f"{value!r} is not one of {', '.join(str(m.value) for m in enum_type)}")

    return check


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, int)) and str(value).strip().lower() in _TRUE | _FALSE:
        return str(value).strip().lower() in _TRUE
    raise ValueError(f"must be true or false, not {value!r}")


def as_seconds(value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"must be a number of seconds, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 86400:
        raise ValueError(f"must be a number of seconds between 0 and 86400, not {value!r}")
    return float(value)


def as_address(value: Any) -> str:
    written = as_str(value).strip()
    try:
        return str(ipaddress.ip_address(written))
    except ValueError:
        pass
    try:
        ascii_name = written.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{written!r} is not a valid host name or IP address") from None
    labels = ascii_name.rstrip(".").split(".")
    if len(ascii_name) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError(f"{written!r} is not a valid host name or IP address")
    return written


def as_ip(value: Any) -> str:
    written = as_str(value).strip()
    try:
        return str(ipaddress.ip_address(written))
    except ValueError:
        raise ValueError(f"{written!r} is not an IP address") from None


def as_host_port(value: Any) -> str:
    written = as_str(value).strip()
    match = _HOST_PORT.fullmatch(written)
    if match is None:
        raise ValueError(f"{written!r} is not host:port")
    as_address(match.group("v6") or match.group("host"))
    as_port(int(match.group("port") or match.group("port2")))
    return written


def as_path(value: Any) -> str:
    written = as_str(value).strip().strip("/")
    if not _URL_PATH.match(written):
        raise ValueError(f"{written!r} is not a URL path (letters, digits, . _ ~ - and /)")
    return written


def as_cert_validation(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    written = as_str(value).strip().lower()
    if written in ("validate", "ignore"):
        return written == "validate"
    raise ValueError(f"{value!r} is not one of validate, ignore")


def as_address_map(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping of DNS server address to host:port, not {kind(value)}")
    return tuple((as_ip(k), as_host_port(v)) for k, v in value.items())


_each_ip = each(as_ip)


def as_ip_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):  # Ansible's comma-separated form, as -e gives it
        value = [part for part in re.split(r"[,\s]+", value) if part]
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"must be a list of IP addresses, not {kind(value)}")
    return _each_ip(tuple(value))


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def as_env_name(value: Any) -> str:
    name = as_str(value).strip()
    if not _ENV_NAME.match(name):
        raise ValueError(f"{name!r} is not an environment variable name")
    return name
