"""A host exfix connects to, with every connection setting resolved.

The inventory (``agent.inventory``) builds these from Ansible variables; the transport
connects with them. They hold no secret: :class:`HostTarget` names where its credential comes
from with a :class:`~agent.model.credential.CredentialRef`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from agent.model.credential import CredentialRef
from agent.model.document import encode_object


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


# Kerberos service classes of the two endpoints' SPNs (<service>/<host name>). The Exchange
# endpoint is IIS: HTTP. The OS endpoint's default is Ansible's psrp plugin's
# (ansible_psrp_negotiate_service: WSMAN, the SPN the WinRM service registers).
EXCHANGE_SERVICE = "HTTP"
OS_SERVICE = "WSMAN"


class MessageEncryption(str, enum.Enum):
    """WSMan message encryption (pypsrp's and pywinrm's names): ``auto`` encrypts over http
    only, ``always`` over https too, ``never`` not at all."""

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


class OsTransport(str, enum.Enum):
    """How OS cmdlets reach the host: PSRP (pypsrp) or WinRS + powershell.exe (pywinrm)."""

    PSRP = "psrp"
    WINRM = "winrm"


class PsrpClient(str, enum.Enum):
    """Which client library speaks PSRP (both endpoints): pypsrp 0.9 (agent/transport/psrp.py)
    or psrpcore with exfix's own WSMan layer (agent/transport/psrpcore_session.py)."""

    PYPSRP = "pypsrp"
    PSRPCORE = "psrpcore"


@dataclass(frozen=True, slots=True)
class CredSSP:
    """CredSSP's options (Ansible's ``ansible_psrp_credssp_*``)."""

    auth_mechanism: str = "auto"  # auto | kerberos | ntlm
    disable_tlsv1_2: bool = False
    minimum_version: int = 2


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """One WSMan endpoint of a host, with every option the client libraries take for it.

    ``negotiate_service`` None: the client library's own default service name; ``proxy``
    None with ``ignore_proxy`` False: the environment's proxy settings, as Ansible's psrp and
    winrm plugins use them.
    """

    scheme: Scheme
    host: str
    port: int
    path: str
    auth: Auth
    configuration_name: str = "Microsoft.PowerShell"
    message_encryption: MessageEncryption = MessageEncryption.AUTO
    negotiate_service: str | None = None
    negotiate_hostname_override: str | None = None
    # The name the server's TLS certificate is checked against (and sent as SNI) instead of
    # ``host``: exfix_tls_server_name (agent/transport/tls.py). None: ``host``, as Ansible.
    tls_server_name: str | None = None
    negotiate_delegate: bool = False
    send_cbt: bool = True
    proxy: str | None = None
    ignore_proxy: bool = False
    max_envelope_size: int = 153600
    credssp: CredSSP = field(default_factory=CredSSP)

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
            "configuration_name": self.configuration_name,
            "message_encryption": self.message_encryption.value,
            "negotiate_service": self.negotiate_service,
            "negotiate_hostname_override": self.negotiate_hostname_override,
            "tls_server_name": self.tls_server_name,
            "negotiate_delegate": self.negotiate_delegate,
            "send_cbt": self.send_cbt,
            "proxy": self.proxy,
            "ignore_proxy": self.ignore_proxy,
            "max_envelope_size": self.max_envelope_size,
            "credssp": {
                "auth_mechanism": self.credssp.auth_mechanism,
                "disable_tlsv1_2": self.credssp.disable_tlsv1_2,
                "minimum_version": self.credssp.minimum_version,
            },
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
        return encode_object(self)


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
    connection: str = "psrp"  # the ansible_connection whose variables made ``os``: psrp | winrm
    psrp_client: PsrpClient | None = None  # exfix_psrp_client; None: the transport's default

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
            "connection": self.connection,
        }
