"""The lab: a scenario's emulated Exchange fleet served over real sockets on 127.0.0.1.

``Lab`` puts the parts together: the scenario (``mock_remoting.exchange``), its DNS world and
loopback responders (``mock_remoting.dns``), the emulated hosts (``Fleet``), and the protocol
server (``mock_remoting.server``) serving ``/PowerShell`` (Microsoft.Exchange) and ``/wsman``
(Microsoft.PowerShell and the WinRS cmd shell). Two ways to listen (``bind``):

* ``single`` (the default): every host on 127.0.0.1, one free port each for both endpoints.
  What tests use: any number of labs and test workers run side by side.
* ``per-host``: each host on its own loopback address taken from ``addresses`` (127.0.0.0/8
  is all loopback on Linux) on the real ports: /PowerShell on 80 (443 with TLS) as IIS serves
  it, /wsman on 5985 (5986) as WinRM does, so the inventory reads like one of real servers.
  ``ports="auto"`` falls back to one socket per host on 5985/5986 for both endpoints when
  ports below 1024 may not be bound or two sockets per host do not fit in RLIMIT_NOFILE
  (``notes`` says which); ``real`` and ``shared`` force one plan.

    with Lab("mixed-fleet") as lab:
        lab.write_inventory(path)        # the Ansible-style inventory exfix reads
        lab.inject("ex01", {"fail": {"kind": "http-500", "on": "Command", "after": 1}})
        lab.counters.get("ex01.contoso.local", "exchange", "Command")

Kerberos: ``Lab(scenario, auth="kerberos", keytab=PATH)`` (or ``auth="negotiate"``) accepts
tickets for ``HTTP/<host fqdn>@<realm>`` with the keys in the keytab (default: the file
``KRB5_KTNAME`` names; realm default: the scenario's AD domain in capitals, as AD names its
realm). The inventory it writes then has no password: the client's ticket cache is the
credential, and each host's ``ansible_psrp_negotiate_hostname_override`` is its FQDN, because
exfix connects to 127.0.0.1 while the ticket must be for the host's name (as through a load
balancer or an alias).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from agent.errors import ScenarioError, UsageError
from mock_remoting.credentials import LAB_PASSWORD, LAB_USERNAME
from mock_remoting.server import (
    RESERVED_DESCRIPTORS,
    FaultSpecError,
    LabServer,
    Listener,
    ListenError,
    RequestCounters,
    parse_faults,
    raise_descriptor_limit,
)
from mock_remoting.server.kerberos import KerberosKeytab, KeytabError, kerberos_available
from mock_remoting.server.tls import load_certificate

if TYPE_CHECKING:
    from collections.abc import Mapping

AUTH_MODES = ("ntlm", "basic", "credssp", "kerberos", "negotiate")
KERBEROS_MODES = ("kerberos", "negotiate")
BIND_MODES = ("single", "per-host")
PORT_PLANS = ("auto", "real", "shared")
# Away from 127.0.0.1 (single-mode labs, the DNS responders, most local services) and
# 127.0.0.53 (systemd-resolved); a /16 holds 65,024 hosts once .0 and .255 are skipped.
DEFAULT_ADDRESSES = "127.20.0.0/16"
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
EXCHANGE_PORTS = (80, 443)  # IIS: http://server/PowerShell, https://server/PowerShell
WINRM_PORTS = (5985, 5986)  # WinRM's HTTP and HTTPS listeners
# The lab account's rights: "full" (an administrator), or only the least-privilege roles
# `exfix rbac` writes for scanning or for remediating (agent/permissions). The environment
# variable sets the default, so a whole test run can go under the restricted account.
ACCOUNTS = ("full", "scan", "remediate")
ACCOUNT_VARIABLE = "EXFIX_LAB_ACCOUNT"
EXTERNAL_DNS_VARIABLE = "exfix_external_dns_servers"


@dataclass(frozen=True, slots=True)
class LabEndpoint:
    """Where one host listens: ``host`` (its address), ``port`` and ``https_port`` (None
    without --https) for /wsman, ``exchange_port`` and ``exchange_https_port`` for
    /PowerShell (the same as the /wsman ones when one socket serves both)."""

    name: str
    port: int
    https_port: int | None
    host: str = "127.0.0.1"
    exchange_port: int | None = None
    exchange_https_port: int | None = None


def host_addresses(network: str, count: int) -> list[str]:
    """``count`` loopback addresses from ``network`` in order, skipping .0 and .255 (valid
    inside a larger prefix, but they read as network and broadcast addresses), 127.0.0.1 and
    127.0.0.53. Raises UsageError for a network outside 127.0.0.0/8 or too small."""
    try:
        net = ipaddress.IPv4Network(network, strict=False)
    except ValueError as exc:
        raise UsageError(f"--addresses {network!r} is not an IPv4 network: {exc}") from None
    if not net.subnet_of(LOOPBACK):
        raise UsageError(f"--addresses {network} is not inside 127.0.0.0/8: the lab listens on loopback only")
    addresses: list[str] = []
    first, last = int(net.network_address), int(net.broadcast_address)
    skip = {int(ipaddress.IPv4Address("127.0.0.1")), int(ipaddress.IPv4Address("127.0.0.53"))}
    value = first
    while len(addresses) < count and value <= last:
        if value & 0xFF not in (0, 255) and value not in skip:
            addresses.append(str(ipaddress.IPv4Address(value)))
        value += 1
    if len(addresses) < count:
        raise UsageError(f"--addresses {network} holds {len(addresses)} host addresses, not {count}")
    return addresses


class Lab:
    """A running lab. Context manager; ``start()`` / ``stop()`` also work directly.

    Raises (from ``__init__``): :class:`agent.errors.ScenarioError` for a bad scenario (also a
    bad ``faults`` mapping of a host), :class:`agent.errors.UsageError` for a bad option.
    """

    def __init__(
        self,
        scenario: str | Path,
        *,
        hosts: int | None = None,
        auth: str = "ntlm",
        https: bool = False,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        latency_ms: float = 0.0,
        workers: int = 16,
        bind: str = "single",
        addresses: str = DEFAULT_ADDRESSES,
        ports: str = "auto",
        cache_answers: bool = True,
        keytab: str | Path | None = None,
        realm: str | None = None,
        account: str | None = None,
    ) -> None:
        from mock_remoting.dns.world import DnsWorld
        from mock_remoting.exchange import load_scenario

        if auth not in AUTH_MODES:
            raise UsageError(f"lab auth must be one of {', '.join(AUTH_MODES)}, not {auth!r}")
        if auth == "credssp" and not https:
            raise UsageError("--auth credssp needs --https: the lab offers CredSSP over TLS only")
        if hosts is not None and hosts < 1:
            raise UsageError(f"--hosts must be at least 1, not {hosts}")
        if bind not in BIND_MODES:
            raise UsageError(f"lab bind must be one of {', '.join(BIND_MODES)}, not {bind!r}")
        if ports not in PORT_PLANS:
            raise UsageError(f"lab ports must be one of {', '.join(PORT_PLANS)}, not {ports!r}")
        self.bind = bind
        self.ports = ports
        self.addresses = addresses
        # Why the lab listens as it does, when it could not do what was asked (one line each).
        self.notes: list[str] = []
        account = account if account is not None else os.environ.get(ACCOUNT_VARIABLE, "full")
        if account not in ACCOUNTS:
            raise UsageError(f"lab account must be one of {', '.join(ACCOUNTS)}, not {account!r}")
        self.account = account
        if (tls_cert is None) != (tls_key is None):
            raise UsageError("--tls-cert and --tls-key go together: the certificate chain and its key")
        if tls_cert is not None and not https:
            raise UsageError("--tls-cert needs --https")
        self.certificate: Any = None
        if tls_cert is not None and tls_key is not None:
            try:
                self.certificate = load_certificate(tls_cert, tls_key)
            except ValueError as exc:
                raise UsageError(f"--tls-cert/--tls-key: {exc}") from None
        self.auth = auth
        self.https = https
        self.latency_ms = latency_ms
        self.scenario: Any = load_scenario(scenario, hosts=hosts)
        self._fqdn_of: dict[str, str] = {}
        for spec in self.scenario.hosts:
            self._fqdn_of[spec.name.lower()] = spec.fqdn
            self._fqdn_of[spec.fqdn.lower()] = spec.fqdn
        if bind == "per-host":
            host_addresses(addresses, len(self.scenario.hosts))  # a bad --addresses fails here
        source = str(self.scenario.source)
        self.world: Any = DnsWorld.from_scenario(self.scenario.dns, self.scenario.organization, source=source)
        for index, spec in enumerate(self.scenario.hosts):
            try:
                parse_faults(spec.faults or None)
            except FaultSpecError as exc:
                raise ScenarioError(
                    source, exc.problem, key=f"hosts.{index}.faults.{exc.key}", host=spec.name
                ) from None
        self.kerberos = self._kerberos(keytab, realm)
        self._workers = workers
        self._cache_answers = cache_answers
        self.fleet: Any = None
        self.dns_address_map: dict[str, str] = {}
        self.server: LabServer | None = None
        self._responders: Any = None

    def _kerberos(self, keytab: str | Path | None, realm: str | None) -> KerberosKeytab | None:
        """The keytab to accept tickets with: given, or ``KRB5_KTNAME``; None without either
        (then only NTLM and Basic are accepted). Raises UsageError for a Kerberos mode without
        one, or where python-gssapi is missing."""
        if keytab is None and self.auth in KERBEROS_MODES:
            named = os.environ.get("KRB5_KTNAME", "")
            keytab = named.removeprefix("FILE:") or None
        if keytab is None:
            if self.auth in KERBEROS_MODES:
                raise UsageError(
                    f"lab auth {self.auth} needs a keytab with HTTP/<host> keys: --keytab PATH or KRB5_KTNAME"
                )
            return None
        reason = kerberos_available()
        if reason is not None:
            raise UsageError(f"lab Kerberos: {reason}")
        domain = str(self.scenario.organization.get("ad_domain") or "")
        name = realm or domain.upper()
        if not name:
            raise UsageError("lab Kerberos needs a realm: --realm, or organization.ad_domain in the scenario")
        kerberos = KerberosKeytab(Path(keytab), name)
        try:
            # Before anything starts: a host without its key could never authenticate a client.
            kerberos.check_hosts(tuple(str(spec.fqdn) for spec in self.scenario.hosts))
        except KeytabError as exc:
            raise UsageError(f"lab Kerberos: {exc}") from None
        return kerberos

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> Lab:
        if self.server is not None:
            return self
        from mock_remoting.dns.responder import DnsResponders
        from mock_remoting.exchange import Fleet

        self._responders = DnsResponders(self.world)
        try:
            self.dns_address_map = dict(self._responders.start())
            self.fleet = Fleet(self.scenario, self.world, self.dns_address_map)
            grant = self.grant
            for spec in self.scenario.hosts:
                self.fleet.host(spec.fqdn).grant = grant
            server = LabServer(
                https=self.https,
                certificate=self.certificate,
                latency_ms=self.latency_ms,
                workers=self._workers,
                cache_answers=self._cache_answers,
                kerberos=self.kerberos,
            )
            if self.bind == "per-host":
                addresses = host_addresses(self.addresses, len(self.scenario.hosts))
                listeners = self._listeners(addresses[0])
                for spec, address in zip(self.scenario.hosts, addresses, strict=True):
                    server.add_host(
                        self.fleet.host(spec.fqdn), spec.faults or None, address=address, listeners=listeners
                    )
            else:
                for spec in self.scenario.hosts:
                    server.add_host(self.fleet.host(spec.fqdn), spec.faults or None)
            try:
                server.start()
            except ListenError as exc:
                in_use = self.bind == "per-host" and exc.errno == errno.EADDRINUSE
                hint = " (give --addresses another 127.x range)" if in_use else ""
                raise UsageError(f"lab: {exc.strerror}{hint}") from None
            except KeytabError as exc:
                raise UsageError(f"lab Kerberos: {exc}") from None
        except BaseException:
            self._responders.stop()
            self._responders = None
            raise
        self.server = server
        return self

    def _listeners(self, probe_address: str) -> tuple[Listener, ...]:
        """The sockets of every host in per-host mode (see the module docstring)."""
        tls = (False, True) if self.https else (False,)
        real = tuple(
            Listener(ports[secure], secure, (kind,))
            for secure in tls
            for kind, ports in (("exchange", EXCHANGE_PORTS), ("wsman", WINRM_PORTS))
        )
        shared = tuple(Listener(WINRM_PORTS[secure], secure, ("exchange", "wsman")) for secure in tls)
        if self.ports != "auto":
            return real if self.ports == "real" else shared
        count = len(self.scenario.hosts)
        try:
            limit = raise_descriptor_limit(0)
        except ListenError:  # needed=0 always fits
            limit = 0
        needed = count * len(real) + RESERVED_DESCRIPTORS
        if needed > limit:
            self.notes.append(
                f"the Exchange endpoint shares port {WINRM_PORTS[0]} with /wsman: separate sockets on "
                f"{EXCHANGE_PORTS[0]} and {WINRM_PORTS[0]} for {count} hosts need {needed} file "
                f"descriptors and RLIMIT_NOFILE allows {limit}"
            )
            return shared
        try:
            _probe(probe_address, EXCHANGE_PORTS[0])
        except PermissionError:
            self.notes.append(
                f"the Exchange endpoint shares port {WINRM_PORTS[0]} with /wsman: port "
                f"{EXCHANGE_PORTS[0]} needs root or CAP_NET_BIND_SERVICE"
            )
            return shared
        except OSError:
            pass  # in use or unavailable: start() names the address
        return real

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self._responders is not None:
            self._responders.stop()
            self._responders = None

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- queries ----------------------------------------------------------------------------

    @property
    def grant(self) -> Any:
        """The account's least-privilege grant (agent.permissions.Grant); None for "full"."""
        if self.account == "full":
            return None
        from agent.model.catalogue import Access
        from agent.permissions import grant

        return grant(Access.READ if self.account == "scan" else Access.CHANGE)

    def _server(self) -> LabServer:
        if self.server is None:
            raise RuntimeError("the lab is not running: call start() first")
        return self.server

    def host_name(self, host: str) -> str:
        """The FQDN of a host given by FQDN or short name (case-insensitive). KeyError if none."""
        found = self._fqdn_of.get(host.lower())
        if found is None:
            raise KeyError(f"no host {host!r} in scenario {self.scenario.name!r}")
        return str(found)

    def endpoint(self, host: str) -> LabEndpoint:
        found = self._server().endpoint(self.fleet.host(self.host_name(host)).name)
        return LabEndpoint(
            found.name,
            found.port,
            found.https_port,
            found.host,
            found.exchange_port if found.exchange_port is not None else found.port,
            found.exchange_https_port if found.exchange_https_port is not None else found.https_port,
        )

    @property
    def endpoints(self) -> tuple[LabEndpoint, ...]:
        return tuple(self.endpoint(spec.fqdn) for spec in self.scenario.hosts)

    @property
    def counters(self) -> RequestCounters:
        return self._server().counters

    def inject(self, host: str, fault: Mapping[str, Any]) -> None:
        """Replace a host's faults at run time (schema: mock_remoting/server/faults.py).
        Raises FaultSpecError (a ValueError) naming the bad key."""
        self._server().inject(self.endpoint(host).name, fault)

    def clear_faults(self, host: str) -> None:
        self._server().clear_faults(self.endpoint(host).name)

    # -- inventory --------------------------------------------------------------------------

    def write_ca(self, path: Path) -> Path:
        """Write the CA certificate the lab signed its hosts' certificates with (see
        mock_remoting/server/tls.py). Raises UsageError when the hosts serve a given chain."""
        authority = self._server().authority
        if authority is None:
            raise UsageError(
                "the lab serves the --tls-cert chain, which it did not sign: trust that chain's CA instead"
            )
        return Path(authority.write_ca(Path(path)))

    def inventory(self, ca_cert: Path | None = None) -> dict[str, Any]:
        """The Ansible-style inventory exfix reads (contract 5 of the team brief).

        Over https the certificates are checked when the lab serves a given chain (against
        the system's CAs) or when ``ca_cert`` names the CA file :meth:`write_ca` wrote; each
        host is then checked by its inventory name while exfix connects to 127.0.0.1
        (``exfix_tls_server_name``, agent/transport/tls.py). Otherwise validation is off."""
        validate = self.https and (ca_cert is not None or self.certificate is not None)
        protocol = "https" if self.https else "http"
        kerberos = self.auth in KERBEROS_MODES
        # With Kerberos the ticket cache is the credential (KRB5CCNAME): no user, no password.
        credentials = {} if kerberos else {"ansible_user": LAB_USERNAME, "ansible_password": LAB_PASSWORD}
        variables: dict[str, Any] = {
            **credentials,
            "ansible_psrp_protocol": protocol,
            "ansible_psrp_auth": self.auth,
            # The lab listens on 127.0.0.1 only: an HTTP(S)_PROXY in the environment (which
            # exfix honours, as Ansible's psrp plugin does) must not carry its traffic away.
            "ansible_psrp_ignore_proxy": True,
        }
        if validate and ca_cert is not None:
            variables["ansible_psrp_ca_cert"] = str(Path(ca_cert).resolve())
        elif self.https and not validate:
            # The lab's CA is trusted by nothing until written out (--tls-ca-out).
            variables["ansible_psrp_cert_validation"] = "ignore"
        variables["exfix_exchange_auth"] = self.auth
        if self.account != "full":
            # The restricted account may not open Microsoft.PowerShell: only the JEA endpoint.
            variables["ansible_psrp_configuration_name"] = self.grant.configuration_name
        if self.auth == "basic" and not self.https:
            variables["exfix_allow_insecure_basic"] = True
        variables["exfix_dns_address_map"] = dict(self.dns_address_map)
        variables["exfix_lab_scenario"] = self.scenario.name
        # The probes' public name must exist in the lab internet, or every resolver would
        # look broken: the first zone the scenario defines stands for "the internet".
        if self.world.internet_zones:
            variables["exfix_probe_public_name"] = self.world.internet_zones[0]
        # What an admin gives the planner for transport's internet lookups: here the lab's
        # working public resolvers (EXTERNAL_DNS_COMMENT says so in the written file).
        if self.world.public_resolvers:
            variables[EXTERNAL_DNS_VARIABLE] = list(self.world.public_resolvers)
        hosts: dict[str, Any] = {}
        endpoints = self.endpoints
        if self.bind == "per-host" and endpoints:
            # Every host on the same ports, as in a real fleet: they are group variables, and
            # a host is its name and address.
            first = endpoints[0]
            variables["ansible_port"] = first.https_port if self.https else first.port
            variables["ansible_psrp_path"] = "wsman"
            exchange_port = first.exchange_https_port if self.https else first.exchange_port
            variables["exfix_exchange_port"] = exchange_port
            variables["exfix_exchange_path"] = "PowerShell"
            variables["exfix_exchange_protocol"] = protocol
            for endpoint in endpoints:
                hosts[endpoint.name] = {"ansible_host": endpoint.host}
                if validate:  # the certificate names the host; exfix connects by address
                    hosts[endpoint.name]["exfix_tls_server_name"] = endpoint.name
            return {"all": {"vars": variables, "children": {"exchange": {"hosts": hosts}}}}
        for endpoint in endpoints:
            port = endpoint.https_port if self.https and endpoint.https_port else endpoint.port
            exchange = endpoint.exchange_https_port if self.https else endpoint.exchange_port
            hosts[endpoint.name] = {
                "ansible_host": endpoint.host,
                "ansible_port": port,
                "ansible_psrp_path": "wsman",
                "exfix_exchange_port": exchange if exchange is not None else port,
                "exfix_exchange_path": "PowerShell",
                "exfix_exchange_protocol": protocol,
            }
            if validate:
                hosts[endpoint.name]["exfix_tls_server_name"] = endpoint.name
            if kerberos:
                # The ticket is for HTTP/<fqdn>, not for the address connected to (pypsrp
                # builds the SPN from the URL's host otherwise: HTTP/127.0.0.1).
                hosts[endpoint.name]["ansible_psrp_negotiate_hostname_override"] = endpoint.name
        return {"all": {"vars": variables, "children": {"exchange": {"hosts": hosts}}}}

    def write_inventory(self, path: Path, ca_cert: Path | None = None) -> Path:
        """The inventory as YAML (``ca_cert``: see :meth:`inventory`), with a comment above
        ``exfix_external_dns_servers`` saying what those servers are (YAML comments cannot be
        dumped, so it is put in beside the key)."""
        path = Path(path)
        # libyaml's emitter when PyYAML has it: the pure-Python one took a fifth of a
        # 10,000-host start-up (py-spy); the output is the same YAML.
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        text = yaml.dump(self.inventory(ca_cert), Dumper=dumper, sort_keys=False, allow_unicode=True)
        lines: list[str] = []
        for line in text.splitlines(keepends=True):
            if line.lstrip().startswith(f"{EXTERNAL_DNS_VARIABLE}:"):
                indent = line[: len(line) - len(line.lstrip())]
                lines.extend(f"{indent}# {comment}\n" for comment in self.external_dns_comment())
            lines.append(line)
        path.write_text("".join(lines), encoding="utf-8")
        return path

    def external_dns_comment(self) -> tuple[str, ...]:
        """What the lab's ``exfix_external_dns_servers`` are, as comment lines."""
        servers = ", ".join(self.world.public_resolvers)
        return (
            f"{servers}: the lab's working public resolver(s) (kind 'public' in scenario "
            f"{self.scenario.name!r}),",
            "answered on 127.0.0.1 through exfix_dns_address_map. The servers exfix may give transport",
            "for internet names (set-transport-external-dns); in your own inventory, your forwarders",
            "or your provider's resolvers.",
        )


def _probe(address: str, port: int) -> None:
    """Bind and close a socket on ``address:port``: raises PermissionError when the port is
    privileged for this process (OSError for other reasons)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
    finally:
        sock.close()
