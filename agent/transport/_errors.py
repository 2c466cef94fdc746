"""Library exceptions (requests, pypsrp, pywinrm) -> agent.errors, and which are transient.

=====================================================  =========================  =========
raised by the libraries                                becomes                    transient
=====================================================  =========================  =========
HTTP 401 (pypsrp/pywinrm AuthenticationError)          AuthenticationError        never
CredSSP refusal (requests-credssp exceptions)          AuthenticationError        never
a failed Kerberos/SPNEGO/NTLM/CredSSP step (pyspnego)  AuthenticationError        never
TLS failure (requests SSLError)                        UnreachableError           no
refused / reset / closed / DNS (ConnectionError)       UnreachableError           yes
no answer in time (ConnectTimeout, ReadTimeout)        HostTimeoutError           yes
HTTP 5xx without a SOAP fault                          UnreachableError           yes
other HTTP status                                      UnreachableError           no
SOAP fault (WSManFaultError)                           WSManFaultError (code)     no
a PSRP state error                                     HostError                  no
=====================================================  =========================  =========

"Transient" only says a retry could help; whether a retry is allowed is the caller's call
(see :func:`agent.transport.base.is_safe_to_retry`).
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from dataclasses import dataclass

import pypsrp.exceptions as psrp_exc
import requests
import requests_credssp.exceptions as credssp_exc
import spnego.exceptions
import winrm.exceptions as winrm_exc

from agent.errors import (
    AuthenticationError,
    HostError,
    HostTimeoutError,
    UnreachableError,
    WSManFaultError,
    one_line,
)
from agent.transport.wsman import ConnectTimeout

# WSMan faults that mean the remote shell (runspace pool) is gone: it idled out (pypsrp #203:
# Exchange drops an idle pool after about 2 minutes) or the service restarted. The pool must
# be opened again; a read may then be re-sent.
SHELL_GONE_CODES = frozenset({
    0x8033805B,  # ERROR_WSMAN_UNEXPECTED_SELECTORS: the ShellId is no longer known
    0x803381A4,  # ERROR_WSMAN_SHELL_NOT_FOUND (not all servers use it)
})  # fmt: skip
OPERATION_TIMEOUT_CODE = 0x80338029  # 2150858793, the Receive long-poll expiring: not an error


@dataclass(frozen=True, slots=True)
class Mapped:
    error: HostError
    transient: bool
    shell_gone: bool = False


def _code(value: object) -> int | None:
    try:
        return int(str(value), 0) if isinstance(value, str) else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _describe_connection_error(exc: BaseException) -> str:
    text = str(exc)
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if "reset" in lowered:
        return "connection reset by the host"
    if "remotedisconnected" in lowered or "aborted" in lowered or "closed connection" in lowered:
        return "the host closed the connection without answering"
    if (
        "name or service not known" in lowered
        or "getaddrinfo" in lowered
        or "nodename nor servname" in lowered
        or "name resolution" in lowered
    ):
        return "the host name does not resolve"
    return one_line(text, 200)


# What GSSAPI's minor status says (MIT krb5's error table), and what to do about it. A
# Kerberos failure on the client never gets better by retrying: each attempt would ask the
# KDC again with the same ticket, clock and SPN.
_KERBEROS_HINTS = (
    (
        re.compile(r"ticket expired|credentials? (has|have) expired", re.I),
        "the Kerberos ticket has expired: run kinit again (or renew it with kinit -R)",
    ),
    (
        re.compile(r"clock skew too great", re.I),
        "this machine's clock and the KDC's differ by more than the realm allows (krb5.conf "
        "clockskew; 5 minutes in Active Directory): synchronize the clock",
    ),
    (
        re.compile(r"server (\S+) not found in kerberos database", re.I),
        "the KDC knows no service principal {0}: check the host name it is built from "
        "(ansible_psrp_negotiate_hostname_override) and the server's SPNs (setspn -L)",
    ),
    (
        re.compile(r"no kerberos credentials available|no credentials were supplied|credentials cache", re.I),
        "no Kerberos ticket: run kinit (or point KRB5CCNAME at a ticket cache)",
    ),
    (
        re.compile(r"no applicable credentials", re.I),
        "no Kerberos ticket and no password: run kinit, or give a password (exfix_password_env)",
    ),
)
_GSS_MINOR = re.compile(r"Minor \(\d+\): (.*?)(?:, Context: |$)")
# MIT's message names the ticket cache it looked in; the cache's location is the user's
# business and no part of an error exfix writes to JSON, journals and logs.
_CACHE_NAME = re.compile(r"\s*\((?:default )?cache: [^)]*\)", re.I)


def _kerberos_reason(exc: BaseException) -> str:
    text = str(exc)
    found = _GSS_MINOR.search(text)
    detail = _CACHE_NAME.sub("", found.group(1) if found else text).strip().rstrip(".")
    for pattern, hint in _KERBEROS_HINTS:
        match = pattern.search(detail)
        if match:
            return f"{detail}: {hint.format(*match.groups())}"
    return detail


# WSMan fault 5 at Create: the account may not open the session configuration it asked for.
# Microsoft.PowerShell needs an administrator; a least-privilege account has a JEA endpoint.
ACCESS_DENIED_HINT = (
    " (this account may not open the session configuration; without administrator rights, use"
    " the JEA endpoint `exfix rbac` writes: ansible_psrp_configuration_name)"
)


def classify(
    exc: BaseException, *, host: str, url: str, username: str | None, auth: str, spn: str | None = None
) -> Mapped | None:
    """The agent.errors equivalent of a library exception, or None when it is not one of theirs.

    ``spn``: the service principal a Kerberos client asks for (named in its 401 message)."""
    who = f"user {username!r}" if username else "the current Kerberos ticket"
    if isinstance(exc, HostError):
        return Mapped(exc, transient=False)
    if isinstance(exc, spnego.exceptions.SpnegoError):
        reason = one_line(_kerberos_reason(exc), 300)
        error = AuthenticationError(host, f"{url}: {auth} authentication failed: {reason}")
        return Mapped(error, transient=False)
    if isinstance(exc, (psrp_exc.AuthenticationError, winrm_exc.AuthenticationError)):
        return Mapped(AuthenticationError(host, _refused(url, who, auth, spn)), transient=False)
    if isinstance(exc, (credssp_exc.AuthenticationException, credssp_exc.NTStatusException)):
        # CredSSP (requests-credssp under pypsrp and pywinrm) reports a refusal in its own
        # TSRequest error code (MS-CSSP 2.2.1), not as HTTP 401.
        return Mapped(
            AuthenticationError(host, f"{url} refused {who} ({auth}): {_credssp_reason(exc)}"),
            transient=False,
        )
    # ssl.SSLError and ConnectTimeout: the psrpcore transport's sockets (agent/transport/wsman.py).
    if isinstance(exc, (requests.exceptions.SSLError, ssl.SSLError)):
        return Mapped(UnreachableError(host, f"{url}: TLS failed: {_tls_reason(exc)}"), transient=False)
    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout, socket.timeout)):
        what = (
            "connect" if isinstance(exc, (requests.exceptions.ConnectTimeout, ConnectTimeout)) else "answer"
        )
        return Mapped(HostTimeoutError(host, f"{url}: no {what} in time"), transient=True)
    if isinstance(exc, (requests.exceptions.ConnectionError, ConnectionError, http.client.HTTPException)):
        return Mapped(UnreachableError(host, f"{url}: {_describe_connection_error(exc)}"), transient=True)
    if isinstance(exc, (psrp_exc.WinRMTransportError, winrm_exc.WinRMTransportError)):
        code = _code(exc.code)
        if code == 401:
            return Mapped(AuthenticationError(host, _refused(url, who, auth, spn)), transient=False)
        transient = code is not None and 500 <= code <= 599
        return Mapped(UnreachableError(host, f"{url}: HTTP {code} from the server"), transient=transient)
    if isinstance(exc, psrp_exc.WSManFaultError):
        code = _code(exc.code)
        reason = one_line(str(exc.reason or exc.message), 300) + (ACCESS_DENIED_HINT if code == 5 else "")
        return Mapped(
            WSManFaultError(host, code, reason), transient=False, shell_gone=code in SHELL_GONE_CODES
        )
    if isinstance(exc, winrm_exc.WSManFaultError):
        code = _code(exc.wsman_fault_code)
        reason = one_line(str(exc.reason), 300) + (ACCESS_DENIED_HINT if code == 5 else "")
        return Mapped(
            WSManFaultError(host, code, reason), transient=False, shell_gone=code in SHELL_GONE_CODES
        )
    if isinstance(exc, winrm_exc.WinRMOperationTimeoutError):
        return Mapped(HostTimeoutError(host, f"{url}: the WSMan operation timed out"), transient=True)
    if isinstance(exc, (psrp_exc.WinRMError, winrm_exc.WinRMError)):
        return Mapped(HostError(host, f"{url}: {one_line(str(exc), 300)}"), transient=False)
    return None


def _refused(url: str, who: str, auth: str, spn: str | None) -> str:
    text = f"{url} refused {who} ({auth}): HTTP 401"
    if spn and auth in ("kerberos", "negotiate") and not who.startswith("user"):
        # The server could not accept the ticket: either it is for a principal whose key the
        # server does not hold (the SPN must be registered on the account the service runs
        # as) or its authenticator is outside the clock skew the server allows (Microsoft,
        # "Kerberos authentication troubleshooting guidance").
        text += (
            f"; the ticket was for {spn}: check that it is one of the server's SPNs (setspn -L) "
            "and that both clocks agree within the realm's skew"
        )
    return text


# The status codes a CredSSP server puts in its TSRequest (MS-CSSP 2.2.1 errorCode: an NTSTATUS
# or an SSPI HRESULT, MS-ERREF 2.1 and 2.3) for a refused logon.
_CREDSSP_STATUS = {
    0x8009030C: "SEC_E_LOGON_DENIED: the user name or password is wrong",
    0xC000006D: "STATUS_LOGON_FAILURE: the user name or password is wrong",
    0xC0000071: "STATUS_PASSWORD_EXPIRED",
    0xC0000072: "STATUS_ACCOUNT_DISABLED",
    0xC000006E: "STATUS_ACCOUNT_RESTRICTION",
}


def _credssp_reason(exc: BaseException) -> str:
    status = getattr(exc, "status", None) if isinstance(exc, credssp_exc.NTStatusException) else None
    if isinstance(status, int):
        name = _CREDSSP_STATUS.get(status & 0xFFFFFFFF)
        return f"CredSSP error 0x{status & 0xFFFFFFFF:08X}" + (f" ({name})" if name else "")
    return f"CredSSP: {one_line(str(exc), 200)}"


# OpenSSL's verify errors (x509_txt.c) as Python's ssl module words them, for a failed
# certificate check: the name (Python's own "Hostname mismatch" / "IP address mismatch",
# _ssl.c) or the chain (an unknown or self-signed CA).
_NAME_MISMATCH = re.compile(r"(?:Hostname|IP address) mismatch, certificate is not valid for '([^']*)'")
_UNTRUSTED = (
    "self-signed certificate",
    "self signed certificate",
    "unable to get local issuer certificate",
    "unable to get issuer certificate",
    "unable to verify the first certificate",
)


def _tls_reason(exc: BaseException) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" not in text and "certificate verify failed" not in text:
        return one_line(text, 200)
    name = _NAME_MISMATCH.search(text)
    if name is not None:
        return (
            f"the server's certificate is not issued to {name.group(1)!r}, the name checked "
            "(exfix_tls_server_name, else the address connected to): set it to a name the "
            "certificate carries"
        )
    detail = re.sub(r"^[\s:()'\"]+|[\s:()'\"]+$", "", text.split("certificate verify failed", 1)[-1])
    detail = re.sub(r"\s*\(_ssl\.c:\d+\)?", "", detail).rstrip(" .)'\"")
    if any(marker in detail for marker in _UNTRUSTED):
        reason = "is not signed by a CA exfix trusts"
    else:
        reason = "is not trusted"
    return (
        f"the server's certificate {reason}"
        + (f" ({one_line(detail, 120)})" if detail else "")
        + "; set ansible_psrp_ca_cert (ansible_winrm_ca_trust_path) to its CA's certificate, "
        "or cert validation to ignore for a lab"
    )
