"""The OS endpoint over WinRS + powershell.exe (pywinrm), for ``exfix_os_transport: winrm``.

Each cmdlet runs as ``powershell -NoProfile -NonInteractive -OutputFormat XML
-EncodedCommand <base64 UTF-16LE script>`` in one WinRS shell that is opened once and reused.
The script is the cmdlet rendered by :func:`agent.pwsh.command`, the single audited quoting
filter: every value is a literal, never code. ``-OutputFormat XML`` makes powershell.exe print
CLIXML (``#< CLIXML`` then ``<Objs>``) for output on stdout and for error records on stderr;
both are read by the same converter as PSRP output (:mod:`agent.transport.clixml`).
A stream that is not readable CLIXML is reported as an error record of the command
(``clixml.UNREADABLE_OUTPUT_ID``), never as a traceback.

The receive loop is exfix's own (``get_command_output_raw`` against the deadline), because
pywinrm's ``get_command_output`` retries the operation-timeout fault forever.
"""

from __future__ import annotations

import base64
import logging
import math
from typing import Any

from winrm.exceptions import WinRMOperationTimeoutError
from winrm.protocol import Protocol

from agent.errors import CredentialError
from agent.model.command import CmdletCall, Endpoint
from agent.model.remote import RemoteError
from agent.model.target import Auth, Scheme
from agent.pwsh import command as render_command
from agent.transport._session import BudgetExhausted, RetryingSession
from agent.transport.base import CommandResult
from agent.transport.clixml import ClixmlError, error_from_text, parse_stream, unreadable_output
from agent.transport.deadline import Budget
from agent.transport.tls import check_server_name

log = logging.getLogger("agent.transport")

POLL_SECONDS = 5
STOP_GRACE_SECONDS = 3.0
UTF8_CODEPAGE = 65001

# pywinrm's names for the authentication methods. pywinrm has no "negotiate": NTLM is what
# Negotiate ends up as without a Kerberos ticket, and kerberos is asked for explicitly.
_PYWINRM_AUTH = {
    Auth.KERBEROS: "kerberos",
    Auth.NEGOTIATE: "ntlm",
    Auth.NTLM: "ntlm",
    Auth.CREDSSP: "credssp",
    Auth.CERTIFICATE: "certificate",
    Auth.BASIC: "basic",
}


def _check_server_name(protocol: Protocol, name: str) -> None:
    """Check the server's certificate against ``name`` (agent/transport/tls.py). pywinrm builds
    its session lazily and, with message_encryption always, sends a first request from inside
    ``build_session`` (``setup_encryption``): the name is set before that request too."""
    transport: Any = protocol.transport
    build, setup = transport.build_session, transport.setup_encryption

    def build_session() -> Any:
        fresh = transport.session is None
        session = build()
        if fresh:
            check_server_name(session, name)
        return session

    def setup_encryption(session: Any) -> None:
        check_server_name(session, name)
        setup(session)

    transport.build_session = build_session
    transport.setup_encryption = setup_encryption


def powershell_command_line(call: CmdletCall) -> str:
    """The WinRS command line that runs ``call`` (the script travels base64-encoded)."""
    script = render_command(call)
    encoded = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
    return f"powershell -NoProfile -NonInteractive -OutputFormat XML -EncodedCommand {encoded}"


class WinrmSession(RetryingSession):
    """The OS endpoint of one host over WinRS. See the module docstring."""

    transport_name = "winrm"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.endpoint is not Endpoint.OS:
            raise ValueError("WinRS carries OS cmdlets only: the Exchange endpoint is PSRP (NoLanguage)")
        self._protocol: Protocol | None = None
        self._shell_id: str | None = None
        method = _PYWINRM_AUTH[self.config.auth]
        if method in ("ntlm", "basic", "credssp") and self.credential.password is None:
            # pyspnego's Negotiate could use a Kerberos ticket here; pywinrm's NTLM cannot.
            raise CredentialError(
                f"{self.host}: exfix_os_transport winrm with {self.config.auth.value} authentication needs a "
                "password (set exfix_password_env or ansible_password, or pass --ask-pass)"
            )

    def _make_protocol(self) -> Protocol:
        config = self.config
        credential = self.credential
        timeouts = self.target.timeouts
        validation = self.target.cert_validation
        protocol = Protocol(
            endpoint=config.url,
            transport=_PYWINRM_AUTH[config.auth],  # type: ignore[arg-type]
            username=credential.username,
            password=credential.password.reveal() if credential.password else None,
            server_cert_validation="validate" if validation.verify else "ignore",
            ca_trust_path=validation.ca_path or "legacy_requests",
            cert_pem=credential.cert_pem,
            cert_key_pem=credential.cert_key_pem,
            read_timeout_sec=max(int(timeouts.read), timeouts.operation + 1),
            operation_timeout_sec=timeouts.operation,
            message_encryption="never"
            if config.auth is Auth.BASIC and config.scheme is Scheme.HTTP
            else config.message_encryption.value,
            # As Ansible's winrm plugin: pywinrm's "legacy_requests" is the environment's proxy.
            proxy=config.proxy if config.proxy else (None if config.ignore_proxy else "legacy_requests"),
            service=config.negotiate_service or "HTTP",
            kerberos_hostname_override=config.negotiate_hostname_override,
            kerberos_delegation=config.negotiate_delegate,
            send_cbt=config.send_cbt,
            credssp_disable_tlsv1_2=config.credssp.disable_tlsv1_2,
        )
        if config.tls_server_name is not None:
            _check_server_name(protocol, config.tls_server_name)
        return protocol

    def _bound(self, remaining: float, *, receive: bool) -> None:
        """Bound the next request: pywinrm reads both timeouts from the Protocol per request."""
        if remaining <= 0:
            raise BudgetExhausted()
        assert self._protocol is not None
        timeouts = self.target.timeouts
        if receive:
            # The server holds a Receive up to the operation timeout; the HTTP read waits 2s more.
            operation = max(1, min(POLL_SECONDS, timeouts.operation, math.ceil(remaining)))
            read = min(float(operation + 2), remaining)
        else:
            operation = timeouts.operation
            read = min(float(timeouts.read), remaining)
        self._protocol.operation_timeout_sec = operation
        self._protocol.transport.read_timeout_sec = max(0.05, read)  # type: ignore[assignment]

    def _open(self, budget: Budget) -> None:
        protocol = self._make_protocol()
        self._protocol = protocol
        try:
            self._bound(budget.remaining(), receive=False)
            self._shell_id = protocol.open_shell(codepage=UTF8_CODEPAGE, noprofile=True)
        except BaseException:
            self._protocol = None
            protocol.transport.close_session()
            raise

    def _discard(self, graceful: bool) -> None:
        protocol, shell_id = self._protocol, self._shell_id
        self._protocol = None
        self._shell_id = None
        if protocol is None:
            return
        try:
            if graceful and shell_id is not None:
                self._protocol = protocol
                try:
                    self._bound(max(STOP_GRACE_SECONDS, min(10.0, self.deadline.remaining())), receive=False)
                finally:
                    self._protocol = None
                protocol.close_shell(shell_id, close_session=False)
        finally:
            protocol.transport.close_session()

    def _execute(self, call: CmdletCall, budget: Budget) -> CommandResult:
        assert self._protocol is not None and self._shell_id is not None
        protocol, shell_id = self._protocol, self._shell_id
        self._bound(budget.remaining(), receive=False)
        command_id = protocol.run_command(shell_id, powershell_command_line(call))
        self._command_sent = True
        stdout: list[bytes] = []
        stderr: list[bytes] = []
        done = False
        rc = -1
        try:
            while not done:
                self._bound(budget.remaining(), receive=True)
                try:
                    out, err, rc, done = protocol.get_command_output_raw(shell_id, command_id)
                except WinRMOperationTimeoutError:
                    continue  # the long-poll expired with nothing new: ask again
                stdout.append(out)
                stderr.append(err)
        except BudgetExhausted:
            self._terminate(command_id)
            raise budget.timeout_error() from None
        try:
            self._bound(max(budget.remaining(), 1.0), receive=False)
            protocol.cleanup_command(shell_id, command_id)
        except Exception as exc:  # the results are in hand
            log.debug("%s: cleaning up %s failed: %s", self.host, call.cmdlet, type(exc).__name__)
        return _result(call, b"".join(stdout), b"".join(stderr), rc)

    def _terminate(self, command_id: str) -> None:
        protocol, shell_id = self._protocol, self._shell_id
        if protocol is None or shell_id is None:
            return
        try:
            self._bound(STOP_GRACE_SECONDS, receive=False)
            protocol.cleanup_command(shell_id, command_id)
        except Exception as exc:  # a host that does not answer is dropped
            log.debug("%s: terminating a command failed: %s", self.host, type(exc).__name__)
            self._drop(graceful=False)


def _result(call: CmdletCall, stdout: bytes, stderr: bytes, rc: int) -> CommandResult:
    out_text = stdout.decode("utf-8", errors="replace")
    err_text = stderr.decode("utf-8", errors="replace")
    errors: list[RemoteError] = []
    try:
        objects, out_errors, out_warnings = parse_stream(out_text)
    except ClixmlError as exc:
        objects, out_errors, out_warnings = (), (unreadable_output(call.cmdlet, exc),), ()
    try:
        _, err_errors, err_warnings = parse_stream(err_text)
    except ClixmlError as exc:
        err_errors, err_warnings = (unreadable_output(call.cmdlet, exc),), ()
    errors.extend(out_errors + err_errors)
    if not errors and "<Objs" not in err_text and err_text.strip():
        errors.append(error_from_text(err_text))  # plain text on stderr: still an error
    if rc != 0 and not errors:
        errors.append(
            RemoteError(
                f"{call.cmdlet}: powershell.exe exited with code {rc}",
                fully_qualified_error_id="NativeCommandExitCode",
            )
        )
    return CommandResult(objects=objects, errors=tuple(errors), warnings=out_warnings + err_warnings)
