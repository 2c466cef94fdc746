"""Checks that turn a raw inventory value into a typed one, and a host's variables read through them.

Each ``as_*`` check returns the value in its checked form or raises :class:`BadValue`, which
knows nothing of files or hosts. :class:`HostVars` applies a check to one of a host's merged
variables and turns a BadValue into an :class:`~agent.errors.InventoryError` naming the file,
the line, the host and the key.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.errors import InventoryError

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_URL_PATH = re.compile(r"^[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*$")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


class BadValue(Exception):
    """A value problem, turned into an InventoryError by whoever knows the host/key/line."""


def kind(value: Any) -> str:
    """What a value is, for an error message: "a mapping", "a list", "nothing", "int 5"."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"


def as_str(value: Any, *, allow_empty: bool = False) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, (Mapping, list, tuple)):
        raise BadValue(f"must be a string, not {kind(value)}")
    text = str(value)
    if not allow_empty and not text.strip():
        raise BadValue("must not be empty")
    return text


def as_printable(value: Any) -> str:
    text = as_str(value)
    if not text.isprintable():
        raise BadValue(f"{text!r} contains unprintable characters")
    return text


_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9-]{1,63}\.?$"
)


def as_dns_name(value: Any) -> str:
    text = as_str(value)
    if not _DNS_NAME.match(text):
        raise BadValue(f"expected a DNS name, got {text!r}")
    return text.rstrip(".")


def as_port(value: Any) -> int:
    if isinstance(value, bool):
        raise BadValue(f"must be a port number, not {value!r}")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not 1 <= value <= 65535:
        raise BadValue(f"must be a port number between 1 and 65535, not {value!r}")
    return value


def as_enum(value: Any, enum_type: type[enum.Enum]) -> Any:
    text = as_str(value).strip().lower()
    for member in enum_type:
        if member.value == text:
            return member
    allowed = ", ".join(str(m.value) for m in enum_type)
    raise BadValue(f"{value!r} is not one of {allowed}")


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, int)) and str(value).strip().lower() in _TRUE | _FALSE:
        return str(value).strip().lower() in _TRUE
    raise BadValue(f"must be true or false, not {value!r}")


def as_seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise BadValue(f"must be a number of seconds, not {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise BadValue(f"must be a number of seconds, not {value!r}") from None
    if not isinstance(value, (int, float)) or not 0 < value <= 86400:
        raise BadValue(f"must be a number of seconds between 0 and 86400, not {value!r}")
    return float(value)


def as_address(value: Any) -> str:
    text = as_str(value).strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        ascii_name = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise BadValue(f"{text!r} is not a valid host name or IP address") from None
    labels = ascii_name.rstrip(".").split(".")
    if len(ascii_name) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise BadValue(f"{text!r} is not a valid host name or IP address")
    return text


def as_ip(value: Any) -> str:
    text = as_str(value).strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise BadValue(f"{text!r} is not an IP address") from None


def as_host_port(value: Any) -> str:
    text = as_str(value).strip()
    match = re.fullmatch(r"\[(?P<v6>[0-9A-Fa-f:.]+)\]:(?P<port>\d+)|(?P<host>[^:\[\]]+):(?P<port2>\d+)", text)
    if match is None:
        raise BadValue(f"{text!r} is not host:port")
    host = match.group("v6") or match.group("host")
    port = match.group("port") or match.group("port2")
    as_address(host)
    as_port(int(port))
    return text


def as_path(value: Any) -> str:
    text = as_str(value).strip().strip("/")
    if not _URL_PATH.match(text):
        raise BadValue(f"{text!r} is not a URL path (letters, digits, . _ ~ - and /)")
    return text


def as_cert_validation(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = as_str(value).strip().lower()
    if text == "validate":
        return True
    if text == "ignore":
        return False
    raise BadValue(f"{value!r} is not one of validate, ignore")


def as_address_map(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise BadValue(f"must be a mapping of DNS server address to host:port, not {kind(value)}")
    return tuple((as_ip(k), as_host_port(v)) for k, v in value.items())


def as_ip_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in re.split(r"[,\s]+", value) if part]
    if not isinstance(value, (list, tuple)):
        raise BadValue(f"must be a list of IP addresses, not {kind(value)}")
    return tuple(as_ip(item) for item in value)


@dataclass
class Var:
    """One variable's raw value and the line it was set on."""

    value: Any
    line: int | None


class HostVars:
    """The merged variables of one host, with checked getters that report host/key/line."""

    def __init__(self, source: str, host: str, merged: dict[str, Var]) -> None:
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
        except BadValue as exc:
            raise self.error(key, str(exc)) from None
