"""A temporary MIT Kerberos realm for the tests: a real KDC on 127.0.0.1, made with k5test.

k5test (the helper python-gssapi and pyspnego test with) writes krb5.conf and kdc.conf in a
temporary directory, creates the database and starts ``krb5kdc``. Its defaults are changed
where they would leave loopback or depend on the machine:

* the KDC listens on 127.0.0.1 only (``kdc_listen``/``kdc_tcp_listen``, MIT krb5 1.15 and
  later; k5test's ``kdc_ports`` would bind every address), on a port free at start, so every
  pytest-xdist worker runs its own realm;
* clients find it at 127.0.0.1, never by DNS (``dns_lookup_kdc``/``dns_lookup_realm`` false),
  and never canonicalize a service's host name by DNS (``dns_canonicalize_hostname`` and
  ``rdns`` false): ``HTTP/ex01.contoso.local`` stays that name, with no lookup leaving the
  machine (MIT krb5.conf [libdefaults]);
* TCP only (``udp_preference_limit = 1``), and a fixed ``clockskew`` (300 s, the Windows
  default "Maximum tolerance for computer clock synchronization", 5 minutes) the skew test
  goes beyond.

Principals: ``user@CONTOSO.LOCAL`` (password; the realm's ticket cache is kinit'd for it),
``svc-exfix@CONTOSO.LOCAL`` (keys in a client keytab, as a service account has), and
``HTTP/<fqdn>`` and ``WSMAN/<fqdn>`` for each lab host in the service keytab the lab accepts
tickets with.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REALM = "CONTOSO.LOCAL"
USER = f"user@{REALM}"
KEYTAB_USER = f"svc-exfix@{REALM}"
CLOCKSKEW_SECONDS = 300
TICKET_LIFETIME = "10h"
_BINARIES = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit", "klist")
_SBIN = ("/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin")
# libfaketime (Debian package libfaketime), to run a client whose clock is wrong.
FAKETIME_LIBRARIES = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)


def _which(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in _SBIN:
        path = Path(directory) / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def missing() -> str | None:
    """Why a realm cannot be made here (one line), or None."""
    absent = [name for name in _BINARIES if _which(name) is None]
    if absent:
        return (
            f"MIT Kerberos programs not found ({', '.join(absent)}): install krb5-kdc, "
            "krb5-admin-server and krb5-user (Debian); .ci/run does"
        )
    try:
        import gssapi  # noqa: F401  # optional: the client's Kerberos (pyspnego[kerberos])
        import k5test  # noqa: F401  # optional: the realm helper (the [test] extra)
        import krb5  # noqa: F401  # optional: the lab reads its keytab with it
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install '.[test]'; gssapi builds against libkrb5-dev)"
    return None


def faketime_library() -> str | None:
    return next((path for path in FAKETIME_LIBRARIES if Path(path).is_file()), None)


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (the KDC binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port for the KDC on 127.0.0.1")


@dataclass
class TestRealm:
    """A running realm. ``client_env()`` is what a client process needs to use it."""

    __test__ = False  # not a test class, despite the name

    realm: Any  # k5test.K5Realm
    port: int
    services: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return REALM

    @property
    def directory(self) -> Path:
        return Path(self.realm.tmpdir)

    @property
    def krb5_conf(self) -> Path:
        return Path(self.realm.env["KRB5_CONFIG"])

    @property
    def service_keytab(self) -> Path:
        """The keys of the lab hosts' HTTP/<fqdn> principals (what the lab accepts with)."""
        return Path(self.realm.keytab)

    @property
    def client_keytab(self) -> Path:
        """The keys of :data:`KEYTAB_USER`."""
        return Path(self.realm.client_keytab)

    @property
    def user_ccache(self) -> Path:
        """The cache kinit filled for :data:`USER` when the realm started."""
        return Path(self.realm.ccache)

    @property
    def kdc_log(self) -> Path:
        return self.directory / "kdc.log"

    def user_password(self) -> str:
        return str(self.realm.password("user"))

    def add_services(self, hosts: tuple[str, ...] | list[str]) -> None:
        """``HTTP/<host>`` and ``WSMAN/<host>`` principals (random keys) in the service keytab:
        what a Windows computer account carries (mock_remoting/server/kerberos.py)."""
        for host in hosts:
            for service in ("HTTP", "WSMAN"):
                principal = f"{service}/{host.lower()}@{REALM}"
                if principal in self.services:
                    continue
                self.realm.run_kadminl(f"addprinc -randkey {principal}")
                self.realm.extract_keytab(principal, self.realm.keytab)
                self.services.add(principal)

    def add_principal(self, principal: str) -> None:
        """A service principal the KDC knows but no lab keytab holds (for wrong-SPN tests)."""
        self.realm.run_kadminl(f"addprinc -randkey {principal}")

    def kinit(self, ccache: Path, *, lifetime: str | None = None, keytab: bool = False) -> None:
        """A new ticket cache: for :data:`USER` with its password, or for :data:`KEYTAB_USER`
        from the client keytab (``keytab=True``). ``lifetime`` as kinit's ``-l`` (``3s``)."""
        flags = ["-c", f"FILE:{ccache}"]
        if lifetime is not None:
            flags += ["-l", lifetime]
        if keytab:
            self.realm.kinit(KEYTAB_USER, flags=[*flags, "-k", "-t", str(self.client_keytab)])
        else:
            self.realm.kinit(USER, self.user_password(), flags=flags)

    def klist(self, ccache: Path) -> str:
        return bytes(self.realm.run([self.realm._klist, "-c", f"FILE:{ccache}"], expected_code=0)).decode()

    def client_env(self, ccache: Path | None = None, **extra: str) -> dict[str, str]:
        """KRB5_CONFIG and KRB5CCNAME for a client (the user's cache unless ``ccache``)."""
        env = {
            "KRB5_CONFIG": str(self.krb5_conf),
            "KRB5CCNAME": f"FILE:{ccache or self.user_ccache}",
            # Nothing from the machine: no default client keytab, the realm's replay cache dir.
            "KRB5_CLIENT_KTNAME": str(self.directory / "no-client-keytab"),
            "KRB5RCACHEDIR": str(self.directory),
        }
        env.update(extra)
        return env

    def kdc_listening(self) -> list[str]:
        """The addresses the KDC process has sockets bound to (from /proc/net), as host:port."""
        found: list[str] = []
        for table in ("/proc/net/tcp", "/proc/net/udp"):
            with contextlib.suppress(OSError):
                for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
                    local = line.split()[1]
                    address, port_hex = local.split(":")
                    if int(port_hex, 16) != self.port:
                        continue
                    octets = [str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)]
                    found.append(f"{'.'.join(octets)}:{self.port}")
        return found

    def stop(self) -> None:
        self.realm.stop()


def start_realm(hosts: tuple[str, ...] = ()) -> TestRealm:
    """Create and start a realm (see the module docstring). Raises RuntimeError from k5test."""
    from k5test import K5Realm  # optional: the [test] extra; callers check missing() first

    port = _free_port()
    paths = {name: path for name in _BINARIES if (path := _which(name))}
    realm = K5Realm(
        realm=REALM,
        portbase=port,
        create_host=False,
        krb5_conf={
            "libdefaults": {
                "dns_lookup_kdc": "false",
                "dns_lookup_realm": "false",
                "dns_canonicalize_hostname": "false",
                "rdns": "false",
                "udp_preference_limit": "1",
                "clockskew": str(CLOCKSKEW_SECONDS),
                "ticket_lifetime": TICKET_LIFETIME,
                "forwardable": "false",
            },
            "realms": {"$realm": {"kdc": "127.0.0.1:$port0", "admin_server": None, "kpasswd_server": None}},
            "domain_realm": {".contoso.local": "$realm", "contoso.local": "$realm"},
        },
        kdc_conf={
            "realms": {
                "$realm": {
                    "kdc_ports": None,
                    "kdc_tcp_ports": None,
                    "kdc_listen": "127.0.0.1:$port0",
                    "kdc_tcp_listen": "127.0.0.1:$port0",
                    "max_life": "1d",
                }
            }
        },
        **paths,
    )
    test_realm = TestRealm(realm, port)
    try:
        realm.addprinc(KEYTAB_USER)
        realm.run_kadminl(f"ktadd -k {realm.client_keytab} {KEYTAB_USER}")
        test_realm.add_services(hosts)
    except (Exception, subprocess.SubprocessError):
        realm.stop()
        raise
    return test_realm
