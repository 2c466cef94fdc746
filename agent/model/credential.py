"""Credentials as values: where a host's password comes from, and the password itself.

A host target carries only a :class:`CredentialRef`, which holds no secret. At connect time
the inventory's resolver (``agent.inventory.CredentialResolver``) turns it into a
:class:`Credential`, whose password is a :class:`Secret` that refuses to be printed, logged or
pickled.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass
from typing import Any, NoReturn


class CredentialSource(str, enum.Enum):
    ENV = "env"  # exfix_password_env names an environment variable
    INVENTORY = "inventory"  # ansible_password, in the clear, as Ansible allows
    KERBEROS_CACHE = "kerberos-cache"  # no password: the current Kerberos ticket is used
    CERTIFICATE = "certificate"  # client certificate files
    PROMPT = "prompt"  # needs --ask-pass


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
