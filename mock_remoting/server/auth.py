"""HTTP authentication for one connection: Basic, and Negotiate (Kerberos or NTLM) with message
encryption.

WinRM authenticates connections, not requests: once an NTLM handshake completes on a TCP
connection, later requests on it carry no Authorization header, and the NTLM session keys
seal every message (MS-WSMV 2.2.9.1, ``multipart/encrypted``). Basic authenticates each
request. Both are offered in every challenge, as a WinRM listener with Basic enabled does.

The NTLM acceptor is pyspnego's ``spnego.server``; it reads the accepted credentials from
``NTLM_USER_FILE`` (see ntlm_store.py). pypsrp's ``WinRMEncryption`` implements the MIME
framing of sealed messages for any context that offers ``wrap_winrm``/``unwrap_winrm``, which
the server-side context does too; the lab reads and writes that framing itself, byte for byte
the same, and seals NTLM with the context's keys (sealing.py: pyspnego's per-message overhead
was a seventh of the lab's CPU).

Kerberos: with a keytab (kerberos.py) the same Negotiate acceptor takes a Kerberos ticket,
wrapped in SPNEGO (``auth: negotiate``) or bare under the Negotiate or Kerberos scheme
(``auth: kerberos``; an SPNEGO acceptor accepts a raw mechanism token, RFC 4178 section 4.2
and pyspnego's ``NegotiateProxy``). The session keys of the Kerberos context then seal the
messages, over HTTP as over HTTPS (where the ticket's authenticator also carries the TLS
channel binding, RFC 4121 section 4.1.1.2). The ticket must be for this host's own service
principal: the acceptor would decrypt a ticket for any principal in the shared keytab, so the
principal it was for is compared once the context completes.

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
import logging
from dataclasses import dataclass
from typing import Any

import spnego
import spnego.channel_bindings
import spnego.exceptions

from mock_remoting.credentials import LAB_DOMAIN, LAB_PASSWORD, LAB_USERNAME
from mock_remoting.server.sealing import PROTOCOL, SealedMessages

log = logging.getLogger("mock_remoting.auth")

CHALLENGES = ("Negotiate", 'Basic realm="WSMAN"')
CREDSSP_CHALLENGE = "CredSSP"
ENCRYPTED_PROTOCOL = PROTOCOL
_ACCEPTED_USERS = {LAB_USERNAME.lower(), f"{LAB_DOMAIN}\\{LAB_USERNAME}".lower()}


class AuthState(enum.Enum):
    OK = "ok"  # serve the request
    CONTINUE = "continue"  # 401 carrying the next handshake token
    DENIED = "denied"  # 401 with fresh challenges


@dataclass(frozen=True, slots=True)
class AuthResult:
    state: AuthState
    headers: tuple[tuple[str, str], ...] = ()
    refused: str | None = None  # DENIED after a handshake: why (counted by the server)
    completed: str | None = None  # OK ending a handshake: the mechanism, "kerberos" or "ntlm"


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

    def __init__(
        self,
        channel_binding_data: bytes | None = None,
        kerberos_principals: frozenset[str] = frozenset(),
        *,
        credssp: bool = False,
    ) -> None:
        """``kerberos_principals``: the service principals this host accepts tickets for, lower
        case (``http/ex01.contoso.local@CONTOSO.LOCAL``); empty when the lab has no keytab.
        ``credssp``: offer CredSSP too (an https connection)."""
        self._cbt = channel_binding_data
        self._credssp = credssp
        self._principals = frozenset(name.lower() for name in kerberos_principals)
        self.mechanism: str | None = None  # "kerberos" or "ntlm" once a handshake completed
        self.client_principal: str | None = None
        self.service_principal: str | None = None  # the SPN a Kerberos ticket was for
        self._context: Any = None
        self.encryption: SealedMessages | None = None
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
        if scheme in ("negotiate", "ntlm", "kerberos"):
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
        except Exception as exc:
            # Wrong password, bad channel binding, a garbled token, a ticket for a key the
            # keytab lacks: the same 401 a server sends. Not only SpnegoError: for a ticket
            # whose authenticator is outside the clock skew, MIT's acceptor hands back a
            # KRB-ERROR token without failing and pyspnego then raises AttributeError reading
            # the flags of the unestablished context.
            log.info("refused a handshake: %s", type(exc).__name__)
            return self._fail("handshake")
        prefix = {"negotiate": "Negotiate", "ntlm": "NTLM", "kerberos": "Kerberos"}[scheme]
        headers: tuple[tuple[str, str], ...] = ()
        if out_token:
            headers = (("WWW-Authenticate", f"{prefix} {base64.b64encode(out_token).decode()}"),)
        if not self._context.complete:
            return AuthResult(AuthState.CONTINUE, headers)
        mechanism = str(self._context.negotiated_protocol or "")
        if mechanism == "kerberos":
            target = _kerberos_target(self._context)
            if target is None or target.lower() not in self._principals:
                log.info("refused a Kerberos ticket for %s (this host: %s)", target, sorted(self._principals))
                return self._fail("wrong-principal")
            self.service_principal = target
        self.mechanism = mechanism
        self.client_principal = self._context.client_principal
        self.negotiated = True
        self.encryption = SealedMessages(self._context)
        return AuthResult(AuthState.OK, headers, completed=mechanism)

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

    def _fail(self, refused: str | None = None) -> AuthResult:
        self._context = None
        self.negotiated = False
        self.encryption = None
        self.mechanism = None
        self.client_principal = None
        self.service_principal = None
        return AuthResult(AuthState.DENIED, self.challenges(), refused)


def _kerberos_target(context: Any) -> str | None:
    """The service principal a completed Kerberos context was for (the ticket's sname@realm).

    GSSAPI reports it as the context's target name on the acceptor side (RFC 2744
    ``gss_inquire_context`` targ_name; python-gssapi ``SecurityContext.target_name``). pyspnego
    keeps the chosen mechanism's context in ``_context`` (NegotiateProxy) and the python-gssapi
    context in ``_context`` (GSSAPIProxy); it has no public accessor for the target.
    """
    inner = getattr(context, "_context", None)
    inner = getattr(inner, "_context", inner)
    name = getattr(inner, "target_name", None)
    if name is None:
        return None
    return str(name).rstrip("\x00")
