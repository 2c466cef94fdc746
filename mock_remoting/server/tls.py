"""A self-signed certificate for the lab's HTTPS listeners, generated at start (never stored)."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True, slots=True)
class LabCertificate:
    context: ssl.SSLContext
    der: bytes

    @property
    def channel_binding_data(self) -> bytes:
        """RFC 5929 ``tls-server-end-point`` data: the SHA-256 of the certificate (its signature
        hash is SHA-256). NTLM clients over HTTPS (pypsrp, requests-ntlm) bind to it."""
        return b"tls-server-end-point:" + hashlib.sha256(self.der).digest()


def make_certificate(common_name: str = "exfix-lab") -> LabCertificate:
    """A one-day certificate for 127.0.0.1/localhost and a server SSLContext using it.

    EC P-256 rather than RSA: key generation and handshakes are far cheaper, which matters when
    a fleet of 200 HTTPS hosts is started.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # ssl can only load a chain from files: write both to a private temp dir and drop it at once.
    with tempfile.TemporaryDirectory(prefix="exfix-lab-tls-") as tmp:
        cert_path = Path(tmp) / "cert.pem"
        key_path = Path(tmp) / "key.pem"
        cert_path.write_bytes(cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key_pem)
        context.load_cert_chain(str(cert_path), str(key_path))
    return LabCertificate(context, cert.public_bytes(serialization.Encoding.DER))
