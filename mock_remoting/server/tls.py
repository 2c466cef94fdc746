"""Certificates for the lab's HTTPS listeners.

Two ways to get one:

* :class:`LabAuthority`: a throwaway certificate authority made at start (never stored unless
  asked for with :meth:`LabAuthority.write_ca`), which issues each emulated host its own
  certificate naming its FQDN and short name, as an enterprise CA issues an Exchange server's
  WinRM/IIS certificate. A client that trusts the CA file (``ansible_psrp_ca_cert``) and
  checks the host's name validates it; one that checks another name, or does not trust the
  CA, fails as it would against a real server.
* :func:`load_certificate`: a chain and key the user gives (``exfix lab serve --tls-cert
  --tls-key``), served by every host, to try exfix against certificates of the user's own PKI.

The host certificates name DNS names only, no IP address: the lab listens on 127.0.0.1, and a
certificate that named 127.0.0.1 would validate for every host at once, so a test could never
see a certificate that belongs to another host. The client connects to 127.0.0.1 and checks
the inventory name through ``exfix_tls_server_name`` (agent/transport/tls.py says why that
is needed and how it is done). Binding each host to an address of its own (127.0.0.2, ...)
with that address in its certificate would also keep hosts apart, but then what is checked
is an address, not the name a real Exchange certificate carries; and resolving the names to
127.0.0.1 through /etc/hosts would change the machine the tests run on.

EC P-256 keys throughout: key generation and handshakes are far cheaper than RSA, which
matters when a fleet of 200 HTTPS hosts is started.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_LIFETIME = datetime.timedelta(days=1)
_SKEW = datetime.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class LabCertificate:
    """A server context and its leaf certificate. ``channel_binding_data`` is RFC 5929's
    ``tls-server-end-point``: the hash of the certificate with its signature's hash algorithm,
    SHA-256 for MD5/SHA-1 (RFC 5929 section 4.1). NTLM and CredSSP clients over HTTPS (pypsrp,
    requests-ntlm) bind to it; computed once, as every connection needs it."""

    context: ssl.SSLContext
    der: bytes
    channel_binding_data: bytes

    @classmethod
    def of(cls, context: ssl.SSLContext, der: bytes) -> LabCertificate:
        algorithm = x509.load_der_x509_certificate(der).signature_hash_algorithm
        name = algorithm.name if algorithm is not None else "sha256"
        if name in ("md5", "sha1"):
            name = "sha256"
        return cls(context, der, b"tls-server-end-point:" + hashlib.new(name, der).digest())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _context(chain_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # ssl can only load a chain from files: write both to a private temp dir and drop it at once.
    with tempfile.TemporaryDirectory(prefix="exfix-lab-tls-") as tmp:
        cert_path = Path(tmp) / "cert.pem"
        key_path = Path(tmp) / "key.pem"
        cert_path.write_bytes(chain_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key_pem)
        context.load_cert_chain(str(cert_path), str(key_path))
    return context


def _builder(
    subject: str, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _SKEW)
        .not_valid_after(now + _LIFETIME)
    )


class LabAuthority:
    """A throwaway CA that issues one certificate per host name. See the module docstring."""

    def __init__(self, common_name: str = "exfix lab test CA") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        public = self._key.public_key()
        self._cert = (
            _builder(common_name, self._name, public)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self._key, hashes.SHA256())
        )

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate (no key), what a client is given to trust."""
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def write_ca(self, path: Path) -> Path:
        """Write :attr:`ca_pem` to ``path`` (created or replaced, mode 0644: it is public)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(self.ca_pem)
        tmp.replace(path)
        return path

    def issue(self, names: Iterable[str], *, addresses: Iterable[str] = ()) -> LabCertificate:
        """A server certificate for ``names`` (DNS SANs, the first also the subject CN) and
        ``addresses`` (IP SANs), signed by this CA, with its server context (leaf + CA chain).

        RFC 6125 6.4.4: a client checks the SANs, not the CN, when SANs are present."""
        dns = list(dict.fromkeys(n for n in names if n))
        if not dns:
            raise ValueError("a host certificate needs at least one name")
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
        sans.extend(x509.IPAddress(ipaddress.ip_address(a)) for a in addresses)
        cert = (
            _builder(dns[0], self._name, key.public_key())
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        chain = cert.public_bytes(serialization.Encoding.PEM) + self.ca_pem
        return LabCertificate.of(
            _context(chain, _pem_key(key)), cert.public_bytes(serialization.Encoding.DER)
        )


def load_certificate(chain_path: Path, key_path: Path) -> LabCertificate:
    """The server certificate in ``chain_path`` (PEM: the leaf first, then its intermediates)
    with its unencrypted key in ``key_path``. Raises ValueError with a one-line reason."""
    try:
        chain_pem = Path(chain_path).read_bytes()
        key_pem = Path(key_path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {exc.filename}: {exc.strerror}") from None
    try:
        leaf = x509.load_pem_x509_certificate(chain_pem)
    except ValueError:
        raise ValueError(f"{chain_path}: no PEM certificate at the start of the file") from None
    try:
        context = _context(chain_pem, key_pem)
    except ssl.SSLError as exc:
        raise ValueError(
            f"{key_path} is not the unencrypted key of {chain_path}'s first certificate ({exc.reason})"
        ) from None
    return LabCertificate.of(context, leaf.public_bytes(serialization.Encoding.DER))
