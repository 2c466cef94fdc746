"""HTTP authentication for one connection: Basic, and NTLM/Negotiate with message encryption.

WinRM authenticates connections, not requests: once an NTLM handshake completes on a TCP
connection, later requests on it carry no Authorization header, and the NTLM session keys
seal every message (MS-WSMV 2.2.9.1, ``multipart/encrypted``). Basic authenticates each
request. Both are offered in every challenge, as a WinRM listener with Basic enabled does.

The NTLM acceptor is pyspnego's ``spnego.server``; it reads the accepted credentials from
``NTLM_USER_FILE`` (see ntlm_store.py). pypsrp's ``WinRMEncryption`` implements the MIME
framing of sealed messages for any context that offers ``wrap_winrm``/``unwrap_winrm``, which
the server-side context does too, so it is used here for both directions.

CredSSP (MS-CSSP) is offered on HTTPS connections only: the lab does not implement CredSSP's
message encryption over http (``application/HTTP-CredSSP-session-encrypted``, which pypsrp
and pywinrm do implement), and CredSSP hands the user's password to the server, which is
what https is for. pyspnego has a CredSSP acceptor
(``spnego/_credssp.py``, ``CredSSPProxy._step_accept``: TLS handshake inside the tokens, the
inner Negotiate/NTLM exchange, the public-key binding of CVE-2018-0886's fix, and then the
delegated TSCredentials). Its docstring calls the acceptor "mostly done as a proof of
concept and for use with testing", which is what the lab uses it for. After the exchange the
lab also checks the delegated user name and password, which a real server logs on with.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
from dataclasses import dataclass
from typing import Any

import spnego
import spnego.channel_bindings
import spnego.exceptions
from pypsrp.encryption import WinRMEncryption

from mock_remoting.credentials import LAB_DOMAIN, LAB_PASSWORD, LAB_USERNAME

CHALLENGES = ("Negotiate", 'Basic realm="WSMAN"')
CREDSSP_CHALLENGE = "CredSSP"
ENCRYPTED_PROTOCOL = WinRMEncryption.SPNEGO
_ACCEPTED_USERS = {LAB_USERNAME.lower(), f"{LAB_DOMAIN}\\{LAB_USERNAME}".lower()}


class AuthState(enum.Enum):
    OK = "ok"  # serve the request
    CONTINUE = "continue"  # 401 carrying the next handshake token
    DENIED = "denied"  # 401 with fresh challenges


@dataclass(frozen=True, slots=True)
class AuthResult:
    state: AuthState
    headers: tuple[tuple[str, str], ...] = ()


def challenge_headers(*, credssp: bool = False) -> tuple[tuple[str, str], ...]:
    offered = (*CHALLENGES, CREDSSP_CHALLENGE) if credssp else CHALLENGES
    return tuple(("WWW-Authenticate", value) for value in offered)


def _delegated_ok(credential: Any) -> bool:
    """Whether CredSSP's delegated TSPasswordCreds are the lab user's (constant-time)."""
    user = str(getattr(credential, "username", "") or "")
    domain = str(getattr(credential, "domain_name", "") or "")
    password = str(getattr(credential, "password", "") or "")
    names = {user.lower(), f"{domain}\\{user}".lower()} if domain else {user.lower()}
    return bool(names & _ACCEPTED_USERS) and hmac.compare_digest(password, LAB_PASSWORD)


def _basic_ok(token: str) -> bool:
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, sep, password = decoded.partition(":")
    # compare_digest keeps the check constant-time even for throwaway lab credentials.
    return bool(sep) and user.lower() in _ACCEPTED_USERS and hmac.compare_digest(password, LAB_PASSWORD)


class ConnectionAuth:
    """Authentication and message-encryption state of one TCP connection."""

    def __init__(self, channel_binding_data: bytes | None = None, *, credssp: bool = False) -> None:
        self._cbt = channel_binding_data
        self._credssp = credssp
        self._context: Any = None
        self.encryption: WinRMEncryption | None = None
        self.negotiated = False
        self._refuse = False

    def refuse_next_handshake(self) -> None:
        """An injected 401: forget the session and refuse the client's next handshake, so that
        a client which re-authenticates on a 401 (pypsrp does) still ends with a 401."""
        self._fail()
        self._refuse = True

    def challenges(self) -> tuple[tuple[str, str], ...]:
        """What this connection's 401 offers (CredSSP only over TLS)."""
        return challenge_headers(credssp=self._credssp)

    def check(self, authorization: str | None) -> AuthResult:
        """Decide about one request from its ``Authorization`` header (None when absent)."""
        if authorization is None:
            return (
                AuthResult(AuthState.OK)
                if self.negotiated
                else AuthResult(AuthState.DENIED, self.challenges())
            )
        scheme, _, token = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            if _basic_ok(token.strip()):
                return AuthResult(AuthState.OK)
            return AuthResult(AuthState.DENIED, self.challenges())
        if scheme in ("negotiate", "ntlm"):
            return self._negotiate(scheme, token.strip())
        if scheme == "credssp" and self._credssp:
            return self._credssp_step(token.strip())
        return AuthResult(AuthState.DENIED, self.challenges())

    def _negotiate(self, scheme: str, token: str) -> AuthResult:
        if self._refuse:
            self._refuse = False
            return self._fail()
        try:
            in_token = base64.b64decode(token, validate=True)
        except binascii.Error:
            return self._fail()
        if self._context is None or self._context.complete:
            # A new handshake (also after a completed one: a client may re-authenticate).
            bindings = (
                spnego.channel_bindings.GssChannelBindings(application_data=self._cbt) if self._cbt else None
            )
            self._context = spnego.server(protocol="negotiate", channel_bindings=bindings)
            self.negotiated = False
            self.encryption = None
        try:
            out_token = self._context.step(in_token)
        except (spnego.exceptions.SpnegoError, ValueError, KeyError):
            # Wrong password, bad channel binding or a garbled token: the same 401 a server sends.
            return self._fail()
        prefix = "Negotiate" if scheme == "negotiate" else "NTLM"
        headers: tuple[tuple[str, str], ...] = ()
        if out_token:
            headers = (("WWW-Authenticate", f"{prefix} {base64.b64encode(out_token).decode()}"),)
        if not self._context.complete:
            return AuthResult(AuthState.CONTINUE, headers)
        self.negotiated = True
        self.encryption = WinRMEncryption(self._context, ENCRYPTED_PROTOCOL)
        return AuthResult(AuthState.OK, headers)

    def _credssp_step(self, token: str) -> AuthResult:
        if self._refuse:
            self._refuse = False
            return self._fail()
        try:
            in_token = base64.b64decode(token, validate=True)
        except binascii.Error:
            return self._fail()
        if (
            self._context is None
            or self._context.complete
            or getattr(self._context, "protocol", "") != "credssp"
        ):
            self._context = spnego.server(protocol="credssp")
            self.negotiated = False
            self.encryption = None
        try:
            out_token = self._context.step(in_token)
        except (spnego.exceptions.SpnegoError, ValueError, KeyError):
            return self._fail()
        if not self._context.complete:
            if out_token is None:
                # The acceptor ended without completing (pyspnego returns after sending the
                # client its error TSRequest): the handshake failed.
                return self._fail()
            value = f"{CREDSSP_CHALLENGE} {base64.b64encode(out_token).decode()}"
            return AuthResult(AuthState.CONTINUE, (("WWW-Authenticate", value),))
        if not _delegated_ok(self._context.get_extra_info("client_credential")):
            return self._fail()
        # Over https the messages are not sealed (the TLS channel protects them), as with
        # pypsrp's and pywinrm's message_encryption "auto".
        self.negotiated = True
        return AuthResult(AuthState.OK)

    def _fail(self) -> AuthResult:
        self._context = None
        self.negotiated = False
        self.encryption = None
        return AuthResult(AuthState.DENIED, self.challenges())
