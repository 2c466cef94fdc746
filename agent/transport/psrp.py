"""PSRP sessions over pypsrp: the Exchange endpoint, and the OS endpoint by default.

The second PSRP client, on psrpcore with exfix's own WSMan layer (psrpcore_session.py,
wsman.py; ``exfix_psrp_client: psrpcore``), keeps every promise below with the same constants
and sends the same WSMan requests; it saves one NTLM round trip per connection and most of
the client CPU (bench/README.md, "The psrpcore transport").

- One RunspacePool per endpoint, opened on the first command and reused for every command:
  Exchange limits remote PowerShell sessions per user (PowerShellMaxConcurrency, 18 in the
  2010 default throttling policy), so exfix holds one per endpoint and closes it at the end.
- Commands are sent with ``add_cmdlet``/``add_parameter`` only, never ``add_script``, and never
  through ``Client.execute_ps`` (it wraps the command in a script): since KB5001779 the
  Exchange endpoint runs in NoLanguage mode and refuses every script (pypsrp #103).
- Every request is bounded by the command's budget. ``invoke()`` is never used: pypsrp loops
  on it forever for a cmdlet that never finishes, because it swallows the operation-timeout
  fault 2150858793. exfix polls with ``poll_invoke(timeout=...)`` against its own deadline and
  stops the pipeline when it passes.
- Errors are read from ``ps.streams.error``: a non-terminating ErrorRecord leaves
  ``had_errors`` False.
- Round trips are the scarce resource of a fleet scan (EXCHANGE_FACTS "pypsrp behaviour"), so
  a completed pipeline is not terminated with a Signal of its own: Delete frees every pipeline
  of the pool. MS-WSMV 3.1.4.14 describes the Terminate signal as the client's acknowledgement
  that lets the service drop a finished command's cached output; pypsrp's own recordings show
  Command, Receive, Delete without it. What the server does count is finished-but-unterminated
  commands against MaxProcessesPerShell (15 on older WinRM and the PowerShell plugin, 25
  later; Ansible's psrp connection hit it, ansible/ansible#74985), so at most
  ``UNTERMINATED_PIPELINES`` stay unterminated; beyond that the oldest one is terminated.
- Pipeline output is parsed once. pypsrp deserializes every output message into its own
  objects (and re-serializes each nested element to keep its XML), then exfix parses that XML
  again (clixml.py). For output pypsrp would turn into a plain object anyway, the pool's
  serializer hands the message text through untouched and exfix parses it directly: the same
  RemoteObjects, a third less client CPU per command.
- Output that is not readable CLIXML (malformed, or hostile: clixml.py refuses a DTD) is
  reported as an error record of the command (``clixml.UNREADABLE_OUTPUT_ID``), as over WinRS:
  that command failed, the host's other fact areas are still collected.
- The HTTP session does not consult the environment on every request: pypsrp merges proxy
  and CA settings from it once when it builds the session, and ``requests`` would otherwise
  re-read every environment variable (proxy lookup) three times per request, which was a
  fifth of exfix's client CPU in a fleet scan. With ``no_proxy`` the result is the same.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Hashable
from typing import Any

from pypsrp.complex_objects import ComplexObject, PSInvocationState
from pypsrp.messages import CreatePipeline
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import Serializer
from pypsrp.wsman import WSMan

from agent.errors import HostError
from agent.model.command import CmdletCall, Endpoint, Switch
from agent.model.remote import RemoteError, RemoteObject
from agent.model.target import EXCHANGE_SERVICE, OS_SERVICE, Auth, Scheme
from agent.pwsh import check_cmdlet, check_parameter
from agent.transport._session import BudgetExhausted, RetryingSession
from agent.transport.base import CommandResult
from agent.transport.clixml import (
    ClixmlError,
    error_from_object,
    from_pypsrp,
    parse_clixml,
    unreadable_output,
)
from agent.transport.deadline import Budget
from agent.transport.tls import check_server_name

log = logging.getLogger("agent.transport")

CONFIGURATIONS = {
    Endpoint.EXCHANGE: "Microsoft.Exchange",
    Endpoint.OS: "Microsoft.PowerShell",
}

# Longest single Receive long-poll. Short enough to notice the deadline promptly, long enough
# not to flood the server with requests while a slow cmdlet runs.
POLL_SECONDS = 5
# Time allowed to tell the server to stop a pipeline whose deadline passed.
STOP_GRACE_SECONDS = 3.0
# Completed pipelines a pool keeps without a Terminate signal (see the module docstring): well
# under the smallest MaxProcessesPerShell default (15), leaving room for the running one.
UNTERMINATED_PIPELINES = 10


class _BoundedWSMan(WSMan):
    """pypsrp's WSMan with every request bounded by ``self.limit()`` seconds.

    It also turns off pypsrp's own retry of a Receive that timed out (5 attempts with growing
    sleeps, in ``WSMan.receive``): exfix retries itself, within the deadline.
    """

    def __init__(self, server: str, *, tls_server_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(server, **kwargs)
        self.limit: Callable[[], float] = lambda: math.inf
        self._connection_timeout = float(kwargs.get("connection_timeout", 30))
        self._read_timeout = float(kwargs.get("read_timeout", 30))
        # pypsrp gives a Receive an HTTP timeout of its operation timeout + 2s; near the
        # deadline that would overshoot it, so the transport's send is capped as well.
        send = self.transport.send

        def bounded_send(message: bytes, *, retries_on_read_timeout: int = 0, timeout: Any = None) -> bytes:
            if timeout is not None:
                timeout = max(0.05, min(float(timeout), self.limit()))
            return send(message, retries_on_read_timeout=0, timeout=timeout)

        self.transport.send = bounded_send  # type: ignore[method-assign]
        build_session = self.transport._build_session

        def quiet_session() -> Any:
            session = build_session()
            # pypsrp merged the environment's settings in already (module docstring).
            session.trust_env = False
            if tls_server_name is not None:
                check_server_name(session, tls_server_name)
            return session

        self.transport._build_session = quiet_session  # type: ignore[method-assign]

    def invoke(
        self,
        action: str,
        resource_uri: str,
        resource: Any,
        option_set: Any = None,
        selector_set: Any = None,
        timeout: int | None = None,
        *,
        retries_on_read_timeout: int = 0,
    ) -> Any:
        remaining = self.limit()
        if remaining <= 0:
            raise BudgetExhausted()
        transport: Any = self.transport
        transport.connection_timeout = max(0.05, min(self._connection_timeout, remaining))
        transport.read_timeout = max(0.05, min(self._read_timeout, remaining))
        if timeout:
            # The server holds a Receive for up to ``timeout`` seconds; pypsrp waits 2 more.
            timeout = max(1, min(int(timeout), int(remaining)))
        return super().invoke(
            action, resource_uri, resource, option_set, selector_set, timeout, retries_on_read_timeout=0
        )


class _PipelineCache:
    """Serialized CreatePipeline messages by (cmdlet call, protocol version), shared by every
    session: a fleet runs the same few dozen calls on every host. Bounded (the calls that vary
    per host, such as Resolve-DnsName of the host's own name, would otherwise grow it with the
    fleet); a full cache is emptied, which is cheap and keeps nothing stale."""

    LIMIT = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[Hashable, bytes] = {}

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            return self._known.get(key)

    def put(self, key: Hashable, packed: bytes) -> None:
        with self._lock:
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            self._known[key] = packed


_PIPELINES = _PipelineCache()


def _typed(value: Any) -> Hashable:
    # True == 1 and hash(True) == hash(1): without the type, -Server $false and -Server 0
    # would share one cached message, and one of them be sent as the other.
    if isinstance(value, tuple):
        return ("tuple", tuple(_typed(v) for v in value))
    return (type(value).__name__, value)


def pipeline_key(call: CmdletCall, protocol_version: Any) -> Hashable:
    """What a serialized CreatePipeline message depends on: the cmdlet, each parameter's name,
    value and the value's type, and the PSRP protocol version."""
    parameters = tuple((name, _typed(value)) for name, value in call.parameters)
    return (call.cmdlet, parameters, str(protocol_version))


class _RawOutput:
    """One PIPELINE_OUTPUT message, kept as the CLIXML text it came in."""

    __slots__ = ("xml",)

    def __init__(self, xml: str) -> None:
        self.xml = xml


# The head of a serialized object: its opening tag and type names (a TN block, or none).
_OBJECT_HEAD = re.compile(r"\s*(<Obj\b[^>]*>)\s*(<TN\b[^>]*>.*?</TN>)?", re.DOTALL)


class _OutputSerializer(Serializer):
    """pypsrp's serializer, except that plain output objects are passed through as text.

    pypsrp's ``Message.unpack`` deserializes a PIPELINE_OUTPUT message with no metadata (every
    other message names its type); only then does this class step in. Which Python value
    pypsrp makes of an object depends on its tag and type names alone, so deserializing just
    that head tells, cheaply, whether the result would be a ComplexObject, whose ``_xml`` is the
    whole message and is all exfix reads of it (``from_pypsrp``). Anything else (primitives,
    lists, dictionaries) takes pypsrp's ordinary path.

    Hostile or broken text never reaches pypsrp's parser, which expands a DTD's internal
    entities and turns XML it cannot parse into a string object: an output message with a DTD,
    or one that is not XML, is passed through for clixml.py to report as the command's error
    record; any other message with a DTD raises ClixmlError (the session makes it a HostError).
    """

    def __init__(self) -> None:
        super().__init__()
        self.pipeline_key: Hashable | None = None  # set by PsrpSession._execute per command

    def serialize(self, value: Any, metadata: Any = None, parent: Any = None, clear: bool = True) -> Any:
        """A CreatePipeline message the session announced (``pipeline_key``) comes from the
        cache of serialized pipelines when that cmdlet call was serialized before: the bytes
        depend on the call and the protocol version only (pypsrp numbers the RefIds of each
        message from 0 and sends no host information), and pypsrp deep-copies and walks the
        whole command tree for each one (issue 12: about a fifth of the client's CPU).
        ``Message.pack`` takes bytes as they are."""
        key, self.pipeline_key = self.pipeline_key, None
        if key is None or metadata is not None or parent is not None or not isinstance(value, CreatePipeline):
            return super().serialize(value, metadata, parent, clear)
        packed = _PIPELINES.get(key)
        if packed is None:
            element = super().serialize(value, metadata, parent, clear)
            assert element is not None  # a CreatePipeline always serializes to an <Obj>
            packed = ET.tostring(element, encoding="utf-8", method="xml")
            _PIPELINES.put(key, packed)
        return packed

    def deserialize(self, element: Any, metadata: Any = None, clear: bool = True) -> Any:
        if isinstance(element, str) and "<!DOCTYPE" in element:
            if metadata is None:
                return _RawOutput(element)
            raise ClixmlError("a PSRP message with a document type declaration (DTD) is refused")
        if metadata is None and isinstance(element, str):
            head = _OBJECT_HEAD.match(element)
            if head is not None:
                try:
                    probe = super().deserialize(f"{head.group(1)}{head.group(2) or ''}</Obj>")
                except Exception:  # a head pypsrp cannot read alone: the ordinary path decides
                    probe = None
                if isinstance(probe, ComplexObject):
                    return _RawOutput(element)
            value = super().deserialize(element, metadata, clear)
            # pypsrp hands back the text itself when it is not XML (logging it as a warning).
            return _RawOutput(element) if value is element else value
        return super().deserialize(element, metadata, clear)


def _output_objects(value: Any) -> tuple[RemoteObject, ...]:
    """Raises ClixmlError for an output message that is not readable."""
    if isinstance(value, _RawOutput):
        return parse_clixml(value.xml)
    return from_pypsrp(value)


def _read_output(cmdlet: str, output: list[Any]) -> tuple[tuple[RemoteObject, ...], tuple[RemoteError, ...]]:
    """Every output message as RemoteObjects; each message that is not readable is an error."""
    objects: list[RemoteObject] = []
    errors: list[RemoteError] = []
    for value in output:
        try:
            objects.extend(_output_objects(value))
        except ClixmlError as exc:
            errors.append(unreadable_output(cmdlet, exc))
    return tuple(objects), tuple(errors)


def _wire_value(value: Any) -> Any:
    if isinstance(value, Switch):
        return True  # PowerShell's AddParameter(name) binds a switch as present
    if isinstance(value, tuple):
        return list(value)
    return value


class PsrpSession(RetryingSession):
    """One PSRP endpoint (Exchange or OS) of one host. See the module docstring."""

    transport_name = "psrp"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wsman: _BoundedWSMan | None = None
        self._pool: RunspacePool | None = None
        # Completed pipelines not terminated yet, oldest first (freed by Delete at the latest).
        self._unterminated: list[PowerShell] = []

    def default_service(self) -> str:
        return EXCHANGE_SERVICE if self.endpoint is Endpoint.EXCHANGE else OS_SERVICE

    def _make_wsman(self) -> _BoundedWSMan:
        config = self.config
        credential = self.credential
        timeouts = self.target.timeouts
        kwargs: dict[str, Any] = {
            "port": config.port,
            "path": config.path,
            "ssl": config.scheme is Scheme.HTTPS,
            "auth": config.auth.value,
            "username": credential.username,
            "password": credential.password.reveal() if credential.password else None,
            "cert_validation": self.target.cert_validation.requests_verify,
            # Basic over http cannot be encrypted; the inventory only lets it through with
            # exfix_allow_insecure_basic or message_encryption never (checked again in
            # RetryingSession).
            "encryption": "never"
            if config.auth is Auth.BASIC and config.scheme is Scheme.HTTP
            else config.message_encryption.value,
            "connection_timeout": timeouts.connection,
            "read_timeout": timeouts.read,
            "operation_timeout": timeouts.operation,
            # As Ansible's psrp plugin: the environment's proxy unless ansible_psrp_proxy or
            # ansible_psrp_ignore_proxy say otherwise.
            "proxy": config.proxy,
            "no_proxy": config.ignore_proxy,
            "max_envelope_size": config.max_envelope_size,
            "negotiate_hostname_override": config.negotiate_hostname_override,
            "negotiate_delegate": config.negotiate_delegate,
            "negotiate_send_cbt": config.send_cbt,
            "credssp_auth_mechanism": config.credssp.auth_mechanism,
            "credssp_disable_tlsv1_2": config.credssp.disable_tlsv1_2,
            "credssp_minimum_version": config.credssp.minimum_version,
        }
        # Always given: pypsrp 0.9 documents WSMAN as its default, but an unset service reaches
        # HTTPNegotiateAuth as None and becomes its own default "host" (HOST/<name>), which is
        # neither what Ansible's psrp plugin asks for (WSMAN) nor the Exchange endpoint's (HTTP).
        kwargs["negotiate_service"] = config.negotiate_service or self.default_service()
        if config.auth is Auth.CERTIFICATE:
            kwargs["certificate_pem"] = credential.cert_pem
            kwargs["certificate_key_pem"] = credential.cert_key_pem
        return _BoundedWSMan(config.host, tls_server_name=config.tls_server_name, **kwargs)

    def _open(self, budget: Budget) -> None:
        wsman = self._make_wsman()
        wsman.limit = budget.remaining
        # The OS endpoint's configuration is the inventory's (ansible_psrp_configuration_name);
        # the Exchange endpoint's is always Microsoft.Exchange.
        configuration = (
            CONFIGURATIONS[Endpoint.EXCHANGE]
            if self.endpoint is Endpoint.EXCHANGE
            else self.config.configuration_name
        )
        pool = RunspacePool(wsman, configuration_name=configuration)
        # pypsrp 0.9 keeps the serializer in two places: the pool and its fragmenter.
        pool._serializer = pool._fragmenter.serializer = _OutputSerializer()
        self._wsman = wsman
        self._pool = pool
        try:
            pool.open()
        except BaseException as exc:
            self._pool = None
            self._wsman = None
            wsman.close()
            if isinstance(exc, ClixmlError):  # a message _OutputSerializer refused
                raise HostError(self.host, f"opening {self.config.url}: {exc}") from None
            raise

    def _discard(self, graceful: bool) -> None:
        pool, wsman = self._pool, self._wsman
        self._pool = None
        self._wsman = None
        self._unterminated = []
        try:
            if graceful and pool is not None and wsman is not None:
                # Delete the pool on the server: Exchange counts open sessions per user.
                end = time.monotonic() + max(STOP_GRACE_SECONDS, min(10.0, self.deadline.remaining()))
                wsman.limit = lambda: end - time.monotonic()
                pool.close()
        finally:
            if wsman is not None:
                wsman.close()

    def _execute(self, call: CmdletCall, budget: Budget) -> CommandResult:
        assert self._pool is not None and self._wsman is not None
        wsman = self._wsman
        wsman.limit = budget.remaining
        ps = PowerShell(self._pool)
        ps.add_cmdlet(check_cmdlet(call.cmdlet))
        for name, value in call.parameters:
            ps.add_parameter(check_parameter(name), _wire_value(value))
        serializer = self._pool._serializer
        if isinstance(serializer, _OutputSerializer):
            serializer.pipeline_key = pipeline_key(call, self._pool.protocol_version)
        ps.begin_invoke()
        self._command_sent = True
        try:
            while ps.state == PSInvocationState.RUNNING:
                remaining = budget.remaining()
                if remaining <= 0:
                    raise BudgetExhausted()
                ps.poll_invoke(timeout=max(1, min(POLL_SECONDS, math.ceil(remaining))))
        except BudgetExhausted:
            self._stop(ps)
            raise budget.timeout_error() from None
        except ClixmlError as exc:  # a message _OutputSerializer refused: the pool is suspect
            self._drop(graceful=False)
            raise HostError(self.host, f"{call.cmdlet}: {exc}") from None

        objects, unreadable = _read_output(call.cmdlet, ps.output)
        result = CommandResult(
            objects=objects,
            errors=tuple(_error(record) for record in ps.streams.error) + unreadable,
            warnings=tuple(_warning(record) for record in ps.streams.warning),
        )
        if ps.state == PSInvocationState.FAILED and not result.errors:
            result = CommandResult(
                result.objects, (RemoteError(f"{call.cmdlet}: the pipeline failed"),), result.warnings
            )
        ps.clear_streams()  # the results are converted; the pipeline object may live on a while
        self._unterminated.append(ps)
        if len(self._unterminated) > UNTERMINATED_PIPELINES:
            oldest = self._unterminated.pop(0)
            try:
                oldest.close()  # Signal terminate: frees that pipeline on the server
            except BudgetExhausted:
                pass
            except Exception as exc:  # the results are in hand; the pool is suspect
                log.debug("%s: terminating a pipeline failed: %s", self.host, type(exc).__name__)
                self._drop(graceful=False)
        return result

    def _stop(self, ps: PowerShell) -> None:
        """Ask the server to stop a pipeline whose deadline passed (a short grace period)."""
        wsman = self._wsman
        if wsman is None:
            return
        end = time.monotonic() + STOP_GRACE_SECONDS
        wsman.limit = lambda: end - time.monotonic()
        try:
            ps.stop()
        except Exception as exc:  # a host that does not answer the stop is dropped
            log.debug("%s: stopping a pipeline failed: %s", self.host, type(exc).__name__)
            self._drop(graceful=False)


def _error(record: Any) -> RemoteError:
    """A pypsrp ErrorRecord as RemoteError, read from the XML it came in (see clixml.py)."""
    xml = getattr(record, "_xml", None)
    if isinstance(xml, str):
        try:
            objects = parse_clixml(xml)
        except ClixmlError:
            objects = ()
        if objects:
            return error_from_object(objects[0])
    exception = getattr(record, "exception", None)
    message = getattr(exception, "adapted_properties", {}).get("Message") if exception is not None else None
    return RemoteError(
        message=str(message or getattr(record, "message", None) or record),
        fully_qualified_error_id=getattr(record, "fq_error", None),
        category=str(getattr(record, "reason", None) or "NotSpecified"),
        target=getattr(record, "target_name", None),
    )


def _warning(record: Any) -> str:
    message = getattr(record, "message", None)
    return str(message if message is not None else record)
