"""HTTPS with certificates from a CA the test makes, and CredSSP over HTTPS, over real sockets.

The lab issues its host a certificate for ``ex01.contoso.local`` (and ``ex01``) from its own
throwaway CA and listens on 127.0.0.1: exfix trusts the CA file (``ansible_psrp_ca_cert``) and
checks the inventory name (``exfix_tls_server_name``) while connecting to the address.
"""

from __future__ import annotations

import base64
import re
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import requests_credssp.exceptions as credssp_exc
import spnego
import spnego.exceptions
from cryptography import x509

from agent.errors import EXIT_UNREACHABLE, AuthenticationError, HostTimeoutError, UnreachableError
from agent.model.command import CmdletCall, Endpoint
from agent.transport._errors import classify
from agent.transport.tls import check_server_name
from mock_remoting.credentials import LAB_PASSWORD, LAB_USERNAME
from mock_remoting.server.tls import LabAuthority
from transport.conftest import ServerHandle

GET_SERVER = CmdletCall(Endpoint.EXCHANGE, "Get-ExchangeServer")
GET_DNS_CLIENT = CmdletCall(Endpoint.OS, "Get-DnsClient")
NAME = "ex01.contoso.local"


@pytest.fixture
def https(transport_server: Any, tmp_path: Path) -> tuple[ServerHandle, Path]:
    handle: ServerHandle = transport_server(https=True)
    assert handle.server.authority is not None
    return handle, handle.server.authority.write_ca(tmp_path / "lab-ca.pem")


def _validating(handle: ServerHandle, ca: Path | None, **variables: Any) -> Any:
    settings: dict[str, Any] = {
        "ansible_psrp_cert_validation": "validate",
        "ansible_psrp_ca_cert": str(ca) if ca else None,
        "exfix_tls_server_name": NAME,
    }
    return handle.target(**{**settings, **variables})


def test_the_host_certificate_names_the_host_and_no_address(https: tuple[ServerHandle, Path]) -> None:
    handle, ca_path = https
    port = handle.server.endpoint(NAME).https_port
    assert port is not None
    pem = ssl.get_server_certificate(("127.0.0.1", port))
    cert = x509.load_pem_x509_certificate(pem.encode())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [NAME, "ex01"]
    assert sans.get_values_for_type(x509.IPAddress) == []
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    cert.verify_directly_issued_by(ca)  # raises if the lab's CA did not sign it


@pytest.mark.parametrize("os_transport", ["psrp", "winrm"])
def test_validation_passes_with_the_ca_and_the_inventory_name(
    https: tuple[ServerHandle, Path], os_transport: str
) -> None:
    handle, ca = https
    target = _validating(handle, ca, exfix_os_transport=os_transport)
    assert target.cert_validation.ca_path == str(ca)
    assert target.os.tls_server_name == NAME and target.exchange.tls_server_name == NAME
    with handle.connect(target) as conn:
        assert conn.exchange.run(GET_SERVER)[0].get("Name") == "EX01"
        assert len(conn.os.run(GET_DNS_CLIENT)) == 2


@pytest.mark.parametrize("os_transport", ["psrp", "winrm"])
def test_a_wrong_host_name_fails_once_with_the_name_checked(
    https: tuple[ServerHandle, Path], os_transport: str
) -> None:
    handle, ca = https
    target = _validating(
        handle, ca, exfix_os_transport=os_transport, exfix_tls_server_name="ex02.contoso.local"
    )
    sleeps: list[float] = []
    with handle.connect(target, sleeps=sleeps) as conn, pytest.raises(UnreachableError) as caught:
        conn.os.run(GET_DNS_CLIENT)
    message = str(caught.value)
    assert "\n" not in message and caught.value.exit_code == EXIT_UNREACHABLE
    assert "TLS failed: the server's certificate is not issued to 'ex02.contoso.local'" in message
    assert "exfix_tls_server_name" in message
    assert sleeps == []  # a certificate for another name will not change by retrying


def test_connecting_by_address_without_the_name_checks_the_address(https: tuple[ServerHandle, Path]) -> None:
    """Ansible's behaviour (no exfix_tls_server_name): the certificate must name the URL's host."""
    handle, ca = https
    target = _validating(handle, ca, exfix_tls_server_name=None)
    with (
        handle.connect(target) as conn,
        pytest.raises(UnreachableError, match=re.escape("not issued to '127.0.0.1'")),
    ):
        conn.exchange.run(GET_SERVER)


@pytest.mark.parametrize("os_transport", ["psrp", "winrm"])
def test_an_unknown_ca_fails_with_what_to_set(
    https: tuple[ServerHandle, Path], tmp_path: Path, os_transport: str
) -> None:
    handle, _ = https
    other = LabAuthority("another test CA").write_ca(tmp_path / "other-ca.pem")
    for ca in (other, None):  # another CA's file, and the system's CAs
        target = _validating(handle, ca, exfix_os_transport=os_transport)
        with handle.connect(target) as conn, pytest.raises(UnreachableError) as caught:
            conn.os.run(GET_DNS_CLIENT)
        message = str(caught.value)
        assert "\n" not in message
        assert "the server's certificate is not signed by a CA exfix trusts" in message
        assert "ansible_psrp_ca_cert" in message


def test_credssp_end_to_end_over_https(https: tuple[ServerHandle, Path]) -> None:
    handle, ca = https
    target = _validating(handle, ca, ansible_psrp_auth="credssp", exfix_exchange_auth="credssp")
    assert target.os.auth == "credssp" and target.exchange.auth == "credssp"
    with handle.connect(target) as conn:
        assert conn.exchange.run(GET_SERVER)[0].get("Name") == "EX01"
        assert len(conn.os.run(GET_DNS_CLIENT)) == 2
    assert handle.runtime.count("Get-DnsClient") == 1


def test_credssp_with_a_wrong_password_is_an_auth_error_without_retries(
    https: tuple[ServerHandle, Path],
) -> None:
    handle, ca = https
    target = _validating(handle, ca, ansible_psrp_auth="credssp", exfix_exchange_auth="credssp")
    sleeps: list[float] = []
    before = handle.count("http", "auth")
    with (
        handle.connect(target, credential=handle.credential(target, "wrong"), sleeps=sleeps) as conn,
        pytest.raises(AuthenticationError) as caught,
    ):
        conn.exchange.run(GET_SERVER)
    assert "SEC_E_LOGON_DENIED" in str(caught.value) and "(credssp)" in str(caught.value)
    assert sleeps == []
    # One handshake: the 401, the TLS tokens and the refused inner NTLM exchange, no more.
    assert handle.count("http", "auth") - before <= 6


def test_credssp_is_not_offered_over_http(transport_server: Any) -> None:
    handle: ServerHandle = transport_server()
    target = handle.target(exfix_exchange_auth="credssp", ansible_psrp_auth="credssp")
    with handle.connect(target) as conn, pytest.raises(AuthenticationError, match="credssp"):
        conn.exchange.run(GET_SERVER)


def _credssp_handshake(url: str, ca: Path, outer: spnego.ContextProxy) -> requests.Response:
    """Drive a CredSSP exchange by hand (the way requests-credssp does), with ``outer``."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would win over session.verify
    session.verify = str(ca)
    check_server_name(session, NAME)
    response = session.post(url, data=b"")
    assert "CredSSP" in response.headers.get("WWW-Authenticate", "")
    token = outer.step()
    while token is not None:
        response = session.post(
            url, data=b"", headers={"Authorization": "CredSSP " + base64.b64encode(token).decode()}
        )
        if response.status_code != 401:
            return response
        header = response.headers.get("WWW-Authenticate", "")
        if not header.startswith("CredSSP "):
            return response
        try:
            token = outer.step(base64.b64decode(header.split(" ", 1)[1]))
        except spnego.exceptions.SpnegoError:
            return response
    return response


def test_credssp_delegated_credentials_must_be_the_users(https: tuple[ServerHandle, Path]) -> None:
    """The inner NTLM exchange authenticates the lab user; the credentials CredSSP then delegates
    are another password: the lab refuses, as a server that logs on with them would."""
    handle, ca = https
    port = handle.server.endpoint(NAME).https_port
    url = f"https://127.0.0.1:{port}/wsman"

    def client(delegated_password: str) -> spnego.ContextProxy:
        inner = spnego.client(
            LAB_USERNAME, LAB_PASSWORD, hostname="127.0.0.1", service="HTTP", protocol="ntlm"
        )
        return spnego.client(
            LAB_USERNAME,
            delegated_password,
            hostname="127.0.0.1",
            service="HTTP",
            protocol="credssp",
            credssp_negotiate_context=inner,
        )

    assert _credssp_handshake(url, ca, client(LAB_PASSWORD)).status_code == 200
    assert _credssp_handshake(url, ca, client("not-the-password")).status_code == 401


def test_the_winrm_plugins_own_variables_validate(https: tuple[ServerHandle, Path], tmp_path: Path) -> None:
    """``ansible_connection: winrm``: pywinrm's ca_trust_path (ansible_winrm_ca_trust_path) is the
    CA file of both endpoints, and validation is pywinrm's default."""
    handle, ca = https
    winrm = {
        "ansible_connection": "winrm",
        "ansible_winrm_transport": "ntlm",
        "ansible_psrp_auth": None,
        "ansible_psrp_protocol": None,
        "ansible_psrp_cert_validation": None,
        "exfix_tls_server_name": NAME,
    }
    target = handle.target(**winrm, ansible_winrm_ca_trust_path=str(ca))
    assert target.connection == "winrm" and target.os_transport == "winrm" and target.cert_validation.verify
    with handle.connect(target) as conn:
        assert conn.exchange.run(GET_SERVER)[0].get("Name") == "EX01"
        assert len(conn.os.run(GET_DNS_CLIENT)) == 2
    other = LabAuthority("another test CA").write_ca(tmp_path / "other-ca.pem")
    target = handle.target(**winrm, ansible_winrm_ca_trust_path=str(other))
    with (
        handle.connect(target) as conn,
        pytest.raises(UnreachableError, match="not signed by a CA exfix trusts"),
    ):
        conn.os.run(GET_DNS_CLIENT)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (credssp_exc.NTStatusException(0xC000006D), "CredSSP error 0xC000006D (STATUS_LOGON_FAILURE"),
        (credssp_exc.NTStatusException(0xC0000123), "CredSSP error 0xC0000123"),
        (credssp_exc.AuthenticationException("The server did not response CredSSP"), "CredSSP: The server"),
        (spnego.exceptions.InvalidTokenError(context_msg="bad token"), "credssp authentication failed"),
    ],
)
def test_authentication_library_errors_are_auth_errors_never_retried(exc: Exception, expected: str) -> None:
    mapped = classify(exc, host=NAME, url="https://127.0.0.1:5986/wsman", username="svc", auth="credssp")
    assert mapped is not None and not mapped.transient
    assert isinstance(mapped.error, AuthenticationError) and expected in str(mapped.error)


def test_a_hung_host_over_https_ends_in_host_timeout_within_the_deadline(
    https: tuple[ServerHandle, Path],
) -> None:
    """A TLS socket keeps Python's own timeout (the ssl module would retry a read the kernel's
    limit ended, for ever): a host that stops answering still ends at its deadline."""
    handle, ca = https
    handle.server.inject(handle.name, {"fail": {"kind": "hang", "on": "Receive", "endpoint": "os"}})
    with handle.connect(_validating(handle, ca), seconds=3) as conn:
        started = time.monotonic()
        with pytest.raises(HostTimeoutError):
            conn.os.run(GET_DNS_CLIENT)
        elapsed = time.monotonic() - started
    assert elapsed < 3 + 3  # the deadline, and a margin for a loaded machine
