"""Kerberos for the lab: the keytab its acceptor uses, and which service principal each host is.

A Windows server accepts a Kerberos ticket for any SPN registered on its computer account
(``setspn -L``): ``HOST/<fqdn>``, which AD's sPNMappings extends to ``HTTP/<fqdn>`` (the SPN
of IIS, so of Exchange's /PowerShell), and ``WSMAN/<fqdn>``, which the WinRM service registers
(the SPN Ansible's psrp plugin asks for by default). The lab's hosts are one process, so one
keytab holds every host's keys, and :meth:`KerberosKeytab.accepted` says which of them a host
may accept: a ticket for ``HTTP/ex02`` presented to ex01 is refused, as ex01 could not
decrypt it.

Why an environment variable: pyspnego's ``spnego.server`` takes no credential outside Windows
(its docstring: "It is only possible to specify a credential when running on Windows"), so the
MIT acceptor reads the default keytab, which ``KRB5_KTNAME`` names (MIT krb5 "Environment
variables" and krb5.conf ``default_keytab_name``). The variable is process-wide: while at least
one lab with Kerberos runs it names that lab's keytab (reference counted), and one process
serves one keytab at a time; the previous value is restored when the last one stops.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

_ENV = "KRB5_KTNAME"
_lock = threading.Lock()
_users = 0
_current: str | None = None
_previous: str | None = None

# The service classes a lab host accepts (see the module docstring); the first is required.
SERVICES = ("HTTP", "WSMAN")


class KeytabError(ValueError):
    """The keytab is missing, unreadable, or lacks a host's service principal."""


def kerberos_available() -> str | None:
    """None when the lab can accept Kerberos here, else why not (one line)."""
    try:
        import gssapi  # noqa: F401  # optional: pyspnego's Kerberos needs python-gssapi (pyspnego[kerberos])
        import krb5  # noqa: F401  # optional: and pykrb5, to read the keytab
    except ImportError as exc:
        return f"Kerberos needs pyspnego[kerberos] (python-gssapi and krb5): {exc}"
    return None


@dataclass(frozen=True, slots=True)
class KerberosKeytab:
    """The keytab the lab's acceptor decrypts tickets with, and the realm of its principals."""

    keytab: Path
    realm: str
    services: tuple[str, ...] = SERVICES

    def principal(self, host: str, service: str | None = None) -> str:
        return f"{service or self.services[0]}/{host.lower()}@{self.realm}"

    def accepted(self, host: str) -> frozenset[str]:
        """The service principals ``host`` (an FQDN) accepts tickets for, lower case."""
        return frozenset(self.principal(host, service).lower() for service in self.services)

    def principals(self) -> frozenset[str]:
        """Every principal the keytab holds a key for. Raises KeytabError."""
        reason = kerberos_available()
        if reason is not None:
            raise KeytabError(reason)
        import krb5  # optional: see kerberos_available

        if not self.keytab.is_file():
            raise KeytabError(f"keytab {self.keytab} does not exist")
        context = krb5.init_context()
        try:
            table = krb5.kt_resolve(context, f"FILE:{self.keytab}".encode())
            names = {krb5.unparse_name_flags(context, entry.principal).decode("utf-8") for entry in table}
        except krb5.Krb5Error as exc:
            raise KeytabError(f"keytab {self.keytab} cannot be read: {exc}") from None
        return frozenset(names)

    def check_hosts(self, hosts: tuple[str, ...]) -> None:
        """Raises KeytabError naming the first host whose HTTP/<fqdn> key the keytab lacks (the
        Exchange endpoint's; WSMAN/<fqdn> is accepted where the keytab holds it)."""
        held = {name.lower() for name in self.principals()}
        for host in hosts:
            wanted = self.principal(host)
            if wanted.lower() not in held:
                raise KeytabError(f"keytab {self.keytab} holds no key for {wanted} (host {host})")


def acquire(keytab: Path) -> None:
    """Point ``KRB5_KTNAME`` at ``keytab`` while a lab uses it. Raises KeytabError when another
    keytab is in use in this process."""
    global _users, _current, _previous
    name = f"FILE:{keytab.resolve()}"
    with _lock:
        if _users and name != _current:
            raise KeytabError(f"this process already serves keytab {_current}; one keytab per process")
        if _users == 0:
            _previous = os.environ.get(_ENV)
            _current = name
            os.environ[_ENV] = name
        _users += 1


def release() -> None:
    """Undo one :func:`acquire`; the last one restores the previous ``KRB5_KTNAME``."""
    global _users, _current, _previous
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users:
            return
        if _previous is None:
            os.environ.pop(_ENV, None)
        else:
            os.environ[_ENV] = _previous
        _current = None
        _previous = None
