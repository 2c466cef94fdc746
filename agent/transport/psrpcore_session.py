"""PSRP sessions on psrpcore (the sans-IO PSRP core pypsrp 1.0 is built on) and exfix's own
WSMan layer (agent/transport/wsman.py): the lean second transport of issue 12.

Selected per host by ``exfix_psrp_client: psrpcore`` (or ``EXFIX_PSRP_CLIENT``), see
:func:`agent.transport.connection.psrp_session_class`. Everything the pypsrp session
(agent/transport/psrp.py) promises holds here too, and for the same reasons: one runspace
pool per endpoint, cmdlets and parameters only (NoLanguage mode, never a script), every
request bounded by the command's budget with exfix's own Receive polling, no Terminate signal
for a completed pipeline until ``UNTERMINATED_PIPELINES`` of them are open, output parsed once.
Retries, deadlines and error mapping are RetryingSession's.

Where the client CPU went with pypsrp 0.9 (py-spy, bench/README.md) and what replaces it:

- requests/urllib3 per request (a session, headers, hooks, a pool lookup): one
  ``http.client`` connection per session, opened and authenticated once;
- building each envelope as an ElementTree and serializing it: text templates (wsman.Shell);
- pypsrp's message objects and serializer: psrpcore's state machine, with the CreatePipeline
  message of each cmdlet call serialized once per process (the same bounded cache as the
  pypsrp session, keyed by the call and the peer's protocol version);
- psrpcore would deserialize every pipeline message into its PSObject model (several times
  slower than clixml.py, see its docstring): the pool hands pipeline messages (output, error
  and warning records, the pipeline's state) to clixml.py as text instead, and only the few
  runspace-pool messages go through psrpcore's deserializer, once per text (_POOL_MESSAGES);
- psrpcore's fragment reader copies the rest of its buffer for every fragment: _Pool.feed
  reads fragments and messages by offset (MS-PSRP 2.2.4, 2.2.1).

Not built here (the host keeps the pypsrp transport, which
``psrp_session_class`` says in the debug log): CredSSP and certificate authentication, and
connections through an HTTP proxy (ansible_psrp_proxy or the environment's).
"""

from __future__ import annotations

import math
import re
import struct
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from typing import Any

from psrpcore import ClientPowerShell, ClientRunspacePool, PSRPCoreError, PSRPEvent
from psrpcore._client import _ClientPipeline
from psrpcore._payload import EMPTY_UUID, PSRPMessage, StreamType, create_message
from psrpcore.types import (
    InitRunspacePool,
    PSInvocationState,
    PSRPMessageType,
    RunspacePoolState,
    SessionCapability,
    deserialize,
    serialize,
)
from psrpcore.types._serializer import _serialize_string

from agent.errors import HostError
from agent.model.command import CmdletCall, Endpoint, ParamValue
from agent.model.remote import RemoteError, RemoteObject
from agent.model.target import EXCHANGE_SERVICE, OS_SERVICE, Auth, MessageEncryption, Scheme
from agent.pwsh import check_cmdlet, check_parameter
from agent.transport._session import BudgetExhausted, RetryingSession
from agent.transport.base import CommandResult
from agent.transport.clixml import ClixmlError, error_from_object, parse_clixml, unreadable_output
from agent.transport.deadline import Budget
from agent.transport.psrp import (
    CONFIGURATIONS,
    POLL_SECONDS,
    STOP_GRACE_SECONDS,
    UNTERMINATED_PIPELINES,
    _typed,
    _wire_value,
)
from agent.transport.wsman import (
    SIGNAL_PS_CTRL_C,
    SIGNAL_TERMINATE,
    Connection,
    ConnectionSettings,
    Shell,
    new_id,
)

__all__ = ["PsrpcoreSession"]

_RESOURCE_URI = "http://schemas.microsoft.com/powershell/%s"
# Pipeline messages read by clixml.py instead of psrpcore's deserializer.
_OUTPUT = PSRPMessageType.PipelineOutput
_IGNORED = frozenset({
    PSRPMessageType.VerboseRecord,
    PSRPMessageType.DebugRecord,
    PSRPMessageType.ProgressRecord,
    PSRPMessageType.InformationRecord,
})  # fmt: skip


class _Handled:
    """What ``next_event`` returns for a message the pool read itself (never None: None means
    "no more messages")."""

    __slots__ = ()


_HANDLED = _Handled()


def _text(data: bytes) -> str:
    return data.decode("utf-8-sig")


# -- CreatePipeline messages, serialized once per cmdlet shape -------------------------------

# What stands for a string parameter value while a shape is serialized: no underscore (so
# psrpcore's _xHHHH_ escaping leaves it alone) and nothing XML escapes.
_SLOT = "EXFIXSLOT%04dQ"


def _shape(call: CmdletCall, protocol: str) -> tuple[Any, list[str]]:
    """The cmdlet call without its string values (the key of its template), and those values
    in order. A non-empty string value, or each string of a list of non-empty strings, is a
    slot; any other value (switches, numbers, booleans, "", which ElementTree writes as an
    empty element) is part of the key, with its type (``_typed``: True == 1)."""
    key: list[Any] = [call.cmdlet, protocol]
    values: list[str] = []
    for name, value in call.parameters:
        if _is_slot(value):
            key.append((name, "S"))
            values.append(value)  # type: ignore[arg-type]  # _is_slot: a str
        elif _is_slots(value):
            key.append((name, "L", len(value)))  # type: ignore[arg-type]  # _is_slots: a tuple
            values.extend(value)  # type: ignore[arg-type]  # checked: every item is a str
        else:
            key.append((name, _typed(value)))
    return tuple(key), values


def _is_slot(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _is_slots(value: object) -> bool:
    return isinstance(value, tuple) and bool(value) and all(_is_slot(v) for v in value)


def _slotted(value: ParamValue, counter: list[int]) -> ParamValue:
    def slot() -> str:
        counter[0] += 1
        return _SLOT % (counter[0] - 1)

    if _is_slot(value):
        return slot()
    if _is_slots(value):
        return tuple(slot() for _ in value)  # type: ignore[union-attr]  # _is_slots: a tuple
    return value


def _clixml_string(value: str) -> bytes:
    # A <S> element's text as psrpcore writes it: its _xHHHH_ escaping, then ElementTree's.
    text = _serialize_string(value)
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.encode("utf-8")


class _Template:
    """A serialized CreatePipeline message cut at its string values' slots."""

    __slots__ = ("parts",)

    def __init__(self, serialized: bytes, slots: int) -> None:
        parts: list[bytes] = []
        rest = serialized
        for index in range(slots):
            marker = (_SLOT % index).encode("ascii")
            if rest.count(marker) != 1:
                raise ValueError("a slot marker is not in the serialized pipeline exactly once")
            head, rest = rest.split(marker)
            parts.append(head)
        parts.append(rest)
        self.parts = tuple(parts)

    def fill(self, values: list[str]) -> bytes:
        parts = self.parts
        out = [parts[0]]
        for value, part in zip(values, parts[1:], strict=True):
            out.append(_clixml_string(value))
            out.append(part)
        return b"".join(out)


class _TemplateCache:
    """Templates by cmdlet shape, shared by every session (a fleet runs a few dozen shapes).
    Bounded like psrp.py's pipeline cache; a full cache is emptied."""

    LIMIT = 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[Any, _Template] = {}

    def get(self, key: Any) -> _Template | None:
        with self._lock:
            return self._known.get(key)

    def put(self, key: Any, template: _Template) -> None:
        with self._lock:
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            self._known[key] = template


_TEMPLATES = _TemplateCache()
# The two messages that open a pool (MS-PSRP 3.1.4.1: SESSION_CAPABILITY, INIT_RUNSPACEPOOL)
# are the same for every pool exfix opens (no host, no application arguments, one runspace),
# so each is serialized once per process.
_OPEN_MESSAGES: dict[type, bytes] = {}


# -- PSRP fragments and messages, read in place ---------------------------------------------

# MS-PSRP 2.2.4 Packet Fragment: ObjectId (8 bytes) and FragmentId (8 bytes), big-endian; one
# byte whose bit 0 is S (the first fragment of its message) and bit 1 is E (the last); the blob's
# length (4 bytes, big-endian); then the blob. A message's blobs, joined in FragmentId order, are
# one MS-PSRP 2.2.1 message: Destination and MessageType (4 bytes each, little-endian), the
# RPID and PID GUIDs (16 bytes each, in the little-endian GUID layout), then the data, which
# may begin with a UTF-8 byte order mark.
_FRAGMENT = struct.Struct(">QQBI")
_MESSAGE = struct.Struct("<II16s16s")
_FRAGMENT_END = 0x2
_BOM = b"\xef\xbb\xbf"
_MESSAGE_TYPES = {int(t.value): t for t in PSRPMessageType}


class _Deserialized:
    """Objects psrpcore deserialized, by message type, peer protocol and text; bounded like
    the template cache (a full cache is emptied)."""

    LIMIT = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[tuple[PSRPMessageType, str, bytes], Any] = {}

    def get(self, key: tuple[PSRPMessageType, str, bytes]) -> Any:
        with self._lock:
            return self._known.get(key)

    def put(self, key: tuple[PSRPMessageType, str, bytes], value: Any) -> None:
        with self._lock:
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            self._known[key] = value


# The server's answers to a pool's opening (MS-PSRP 3.1.4.1: SESSION_CAPABILITY,
# APPLICATION_PRIVATE_DATA, RUNSPACEPOOL_INIT_DATA, RUNSPACEPOOL_STATE) are the same text for
# every pool of servers of one version, and psrpcore's deserializer (its PSObject model) made
# them the largest part of a pool's opening. Each is deserialized once per text: psrpcore's
# handlers only read the object (their capability, the private data, the state and runspace
# counts), so pools share it. A message with a SecureString is never shared.
_POOL_MESSAGE_TYPES = frozenset({
    PSRPMessageType.SessionCapability,
    PSRPMessageType.ApplicationPrivateData,
    PSRPMessageType.RunspacePoolInitData,
    PSRPMessageType.RunspacePoolState,
})  # fmt: skip
_POOL_MESSAGES = _Deserialized()


# A PipelineState message that carries only the state (MS-PSRP 2.2.2.21), as PowerShell
# serializes it: no reason, no other member.
_PLAIN_STATE = re.compile(r'<Obj RefId="\d+"><MS><I32 N="PipelineState">(\d+)</I32></MS></Obj>')


def _state(value: Any) -> PSInvocationState:
    try:
        return PSInvocationState(int(value))
    except (TypeError, ValueError):
        raise ClixmlError("a PipelineState message without a readable state") from None


class _Collected:
    """What one pipeline produced, read from the messages' CLIXML (clixml.py)."""

    __slots__ = ("cmdlet", "errors", "objects", "state", "warnings")

    def __init__(self, cmdlet: str) -> None:
        self.cmdlet = cmdlet
        self.objects: list[RemoteObject] = []
        self.errors: list[RemoteError] = []
        self.warnings: list[str] = []
        self.state = PSInvocationState.Running

    def take(self, message_type: PSRPMessageType, data: bytes) -> bool:
        """Read one pipeline message; False for one psrpcore should handle (a host call).

        Raises ClixmlError for an error, warning or state message that is not readable (the
        pool is then suspect); unreadable output is the command's error record instead."""
        if message_type is _OUTPUT:
            if data:
                try:
                    self.objects.extend(parse_clixml(_text(data)))
                except ClixmlError as exc:
                    self.errors.append(unreadable_output(self.cmdlet, exc))
            return True
        if message_type is PSRPMessageType.ErrorRecord:
            self.errors.extend(error_from_object(record) for record in parse_clixml(_text(data)))
            return True
        if message_type is PSRPMessageType.WarningRecord:
            for record in parse_clixml(_text(data)):
                message = record.get("InformationalRecord_Message")
                self.warnings.append(str(message if message is not None else record.to_string or ""))
            return True
        if message_type is PSRPMessageType.PipelineState:
            text = _text(data)
            # Half of a host's messages are a pipeline's final state with no reason (Completed):
            # read by one match instead of the whole CLIXML reader. Anything else is read whole.
            plain = _PLAIN_STATE.fullmatch(text)
            if plain is not None:
                self.state = _state(plain.group(1))
                return True
            for record in parse_clixml(text):
                self.state = _state(record.get("PipelineState"))
                reason = record.get("ExceptionAsErrorRecord")
                if isinstance(reason, RemoteObject):
                    self.errors.append(error_from_object(reason))
            return True
        return message_type in _IGNORED


class _Pool(ClientRunspacePool):
    """psrpcore's client pool with two changes (psrpcore is pinned exactly, pyproject):
    CreatePipeline messages come from the serialized-pipeline cache, and messages of a
    pipeline exfix runs are read by :class:`_Collected`, not by psrpcore's object model."""

    def __init__(self) -> None:
        super().__init__(runspace_pool_id=new_id())
        self.collected: dict[uuid.UUID, _Collected] = {}
        # The GUIDs of message headers by their 16 bytes: the pool's own and its pipelines'
        # (psrpcore makes a new UUID object for both of every message).
        self._guids: dict[bytes, uuid.UUID | None] = {EMPTY_UUID.bytes_le: None}
        # Set by the session just before ClientPowerShell.start(): the shape's key, the string
        # values, and the shape's template when it was serialized before (else the message's
        # commands hold slot markers, and its serialization becomes the template).
        self.next_pipeline: tuple[Any, list[str], _Template | None] | None = None

    def prepare_message(
        self,
        message: Any,
        message_type: PSRPMessageType | None = None,
        pipeline_id: uuid.UUID | None = None,
        stream_type: StreamType = StreamType.default,
    ) -> None:
        pending, self.next_pipeline = self.next_pipeline, None
        kind = type(message)
        if message_type is None and pipeline_id is None and kind in (SessionCapability, InitRunspacePool):
            data = _OPEN_MESSAGES.get(kind)
            if data is None:
                data = _OPEN_MESSAGES[kind] = self._serialize(message)
            self._queue(PSRPMessageType.get_message_id(kind), data, pipeline_id, stream_type)
            return
        if message_type is not PSRPMessageType.CreatePipeline or pending is None:
            super().prepare_message(message, message_type, pipeline_id, stream_type)
            return
        key, values, template = pending
        if template is None:
            template = _Template(self._serialize(message), len(values))
            _TEMPLATES.put(key, template)
        self._queue(message_type, template.fill(values), pipeline_id, stream_type)

    def _serialize(self, message: Any) -> bytes:
        element = serialize(
            message, self._cipher, our_capability=self.our_capability, their_capability=self.their_capability
        )
        return bytes(ET.tostring(element, encoding="utf-8", method="xml"))

    def _queue(
        self,
        message_type: PSRPMessageType,
        data: bytes,
        pipeline_id: uuid.UUID | None,
        stream_type: StreamType,
    ) -> None:
        packed = create_message(True, message_type, data, self.runspace_pool_id, pipeline_id)
        self._send_buffer.append(
            PSRPMessage(
                message_type,
                bytearray(packed),
                self.runspace_pool_id,
                pipeline_id,
                self._fragment_counter,
                stream_type,
            )
        )

    # psrpcore's next_event slices each fragment, and then the whole rest of its receive buffer,
    # off the front of that buffer (so a Receive of n fragments copies O(n^2) bytes), joins the
    # blobs, copies them into a bytearray and slices the data off the header again. The same
    # fragments and messages are read here with offsets into the bytes as received: one copy of
    # each message's data (tests/transport/test_psrpcore.py compares both on the same bytes).

    def feed(self, data: bytes) -> None:
        """Read the fragments of one Receive's stdout (whole fragments, MS-PSRP 2.2.4): each
        complete message is queued for :meth:`next_event`, a message's earlier fragments wait
        for the rest. Raises PSRPCoreError for a fragment out of sequence (as psrpcore does) or
        one cut short (psrpcore would read a short blob, or fail in struct)."""
        view = memoryview(data)
        size = len(data)
        offset = 0
        partial = self._incoming_fragments
        messages = self._incoming_messages
        while offset < size:
            if size - offset < _FRAGMENT.size:
                raise PSRPCoreError("a PSRP fragment shorter than its header")
            object_id, fragment_id, flags, length = _FRAGMENT.unpack_from(data, offset)
            start = offset + _FRAGMENT.size
            offset = start + length
            if offset > size:
                raise PSRPCoreError("a PSRP fragment longer than the data received")
            parts = partial.get(object_id)
            expected = len(parts) if parts is not None else 0
            if fragment_id != expected:
                raise PSRPCoreError(f"Expecting fragment with a fragment id of {expected} not {fragment_id}")
            if not flags & _FRAGMENT_END:
                if parts is None:
                    parts = partial[object_id] = []
                parts.append(bytearray(view[start:offset]))
                continue
            if parts is None:  # a message in one fragment, the usual case: read in place
                messages[object_id] = self._message(data, start, offset, object_id)
            else:
                parts.append(bytearray(view[start:offset]))
                del partial[object_id]
                whole = b"".join(parts)
                messages[object_id] = self._message(whole, 0, len(whole), object_id)

    def _message(self, data: bytes, start: int, end: int, object_id: int) -> PSRPMessage:
        if end - start < _MESSAGE.size:
            raise PSRPCoreError("a PSRP message shorter than its header")
        _, kind, rpid, pid = _MESSAGE.unpack_from(data, start)
        message_type = _MESSAGE_TYPES.get(kind) or PSRPMessageType(kind)  # ValueError, as psrpcore
        begin = start + _MESSAGE.size
        if data.startswith(_BOM, begin):
            begin += len(_BOM)
        return PSRPMessage(
            message_type,
            bytearray(memoryview(data)[begin:end]),
            self._guid(rpid) or EMPTY_UUID,  # psrpcore keeps a zero RPID as a GUID, a zero PID as None
            self._guid(pid),
            object_id,
        )

    def _guid(self, raw: bytes) -> uuid.UUID | None:
        guids = self._guids
        if raw in guids:
            return guids[raw]
        found = uuid.UUID(bytes_le=raw)
        if len(guids) < 4096:  # a pool runs a few dozen pipelines; never unbounded
            guids[raw] = found
        return found

    def next_event(self) -> Any:
        """psrpcore's next_event over :meth:`feed`: the next queued message's event, or None."""
        pending = self._receive_buffer
        if pending:  # what psrpcore's receive_data buffered
            self._receive_buffer = bytearray()
            self.feed(bytes(pending))
        messages = self._incoming_messages
        if not messages:
            return None
        return self._process_message(messages.pop(next(iter(messages))))

    def _process_message(self, message: PSRPMessage) -> Any:
        pipeline_id = message.pipeline_id
        if pipeline_id is not None:
            collected = self.collected.get(pipeline_id)
            if collected is not None and collected.take(message.message_type, message.data):
                return _HANDLED
        elif message.message_type in _POOL_MESSAGE_TYPES:
            return self._pool_message(message)
        return super()._process_message(message)

    def _pool_message(self, message: PSRPMessage) -> Any:
        """psrpcore's _process_message for the messages that open a pool, with the object
        deserialized once per text (see _POOL_MESSAGES); the event is the pool's own."""
        data = bytes(message.data)
        their = self.protocol_version
        key = (message.message_type, their, data)
        ps_object = _POOL_MESSAGES.get(key)
        if ps_object is None:
            ps_object = deserialize(
                ET.fromstring(data),
                cipher=self._cipher,
                our_capability=self.our_capability,
                their_capability=self.their_capability,
            )
            if b"<SS" not in data:  # a SecureString is the pool's own (its session key)
                _POOL_MESSAGES.put(key, ps_object)
        event = PSRPEvent.create(message.message_type, ps_object, message.runspace_pool_id, None)
        getattr(self, f"_process_{message.message_type.name}")(event)
        return event

    @property
    def protocol_version(self) -> str:
        their = self.their_capability
        return str(getattr(their, "protocolversion", "")) if their is not None else ""


class PsrpcoreSession(RetryingSession):
    """One PSRP endpoint (Exchange or OS) of one host over psrpcore. See the module docstring."""

    transport_name = "psrpcore"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connection: Connection | None = None
        self._shell: Shell | None = None
        self._pool: _Pool | None = None
        # Command ids of completed pipelines not terminated yet, oldest first.
        self._unterminated: list[str] = []

    def default_service(self) -> str:
        return EXCHANGE_SERVICE if self.endpoint is Endpoint.EXCHANGE else OS_SERVICE

    def _settings(self) -> ConnectionSettings:
        config = self.config
        credential = self.credential
        https = config.scheme is Scheme.HTTPS
        encryption = config.message_encryption
        seal = config.auth is not Auth.BASIC and (
            encryption is MessageEncryption.ALWAYS or (encryption is MessageEncryption.AUTO and not https)
        )
        return ConnectionSettings(
            https=https,
            host=config.host,
            port=config.port,
            path=config.path,
            auth=config.auth.value,
            username=credential.username,
            password=credential.password.reveal() if credential.password else None,
            seal=seal,
            verify=self.target.cert_validation.requests_verify,
            tls_server_name=config.tls_server_name,
            service=config.negotiate_service or self.default_service(),
            hostname_override=config.negotiate_hostname_override,
            delegate=config.negotiate_delegate,
            send_cbt=config.send_cbt,
            connection_timeout=self.target.timeouts.connection,
        )

    def _limit(self, budget: Budget | None, end: float | None = None) -> float:
        """The HTTP timeout of one request: the read timeout, cut to what the budget leaves."""
        remaining = budget.remaining() if budget is not None else (end or 0.0) - time.monotonic()
        if remaining <= 0:
            raise BudgetExhausted()
        return min(self.target.timeouts.read, remaining)

    def _open(self, budget: Budget) -> None:
        configuration = (
            CONFIGURATIONS[Endpoint.EXCHANGE]
            if self.endpoint is Endpoint.EXCHANGE
            else self.config.configuration_name
        )
        connection = Connection(self._settings())
        shell = Shell(
            connection,
            _RESOURCE_URI % configuration,
            max_envelope_size=self.config.max_envelope_size,
            operation_timeout=self.target.timeouts.operation,
        )
        pool = _Pool()
        self._connection, self._shell, self._pool = connection, shell, pool
        try:
            pool.open()
            first = pool.data_to_send(shell.max_payload)
            assert first is not None  # SessionCapability and InitRunspacePool
            shell.create(str(pool.runspace_pool_id).upper(), first.data, self._limit(budget))
            while (more := pool.data_to_send(shell.max_payload)) is not None:
                shell.send(None, more.data, self._limit(budget))
            while pool.state is not RunspacePoolState.Opened:
                if pool.state in (RunspacePoolState.Broken, RunspacePoolState.Closed):
                    raise HostError(
                        self.host, f"opening {self.config.url}: the runspace pool is {pool.state.name}"
                    )
                self._receive(None, budget)
        except BaseException as exc:
            self._connection = self._shell = self._pool = None
            connection.close()
            if isinstance(exc, ClixmlError):
                raise HostError(self.host, f"opening {self.config.url}: {exc}") from None
            raise

    def _receive(self, command_id: str | None, budget: Budget) -> bool:
        """One Receive; feeds the pool. True when the server said the command is done."""
        assert self._shell is not None and self._pool is not None
        remaining = budget.remaining()
        if remaining <= 0:
            raise BudgetExhausted()
        operation = max(1, min(POLL_SECONDS, math.ceil(remaining)))
        result = self._shell.receive(command_id, remaining, operation)
        if result.data:
            pool = self._pool
            pool.feed(result.data)
            while pool.next_event() is not None:
                pass
        return result.done

    def _discard(self, graceful: bool) -> None:
        connection, shell = self._connection, self._shell
        self._connection = self._shell = self._pool = None
        self._unterminated = []
        try:
            if graceful and shell is not None and shell.shell_id is not None:
                # Delete the pool on the server: Exchange counts open sessions per user.
                end = time.monotonic() + max(STOP_GRACE_SECONDS, min(10.0, self.deadline.remaining()))
                shell.delete(self._limit(None, end))
        finally:
            if connection is not None:
                connection.close()

    def _execute(self, call: CmdletCall, budget: Budget) -> CommandResult:
        pool, shell = self._pool, self._shell
        assert pool is not None and shell is not None
        cmdlet = check_cmdlet(call.cmdlet)
        parameters = [(check_parameter(name), value) for name, value in call.parameters]
        key, values = _shape(call, pool.protocol_version)
        template = _TEMPLATES.get(key)
        ps: _ClientPipeline
        if template is not None:
            # The template is the whole message: psrpcore's pipeline object needs no commands
            # (and ClientPowerShell's PSObject metadata would be built for nothing).
            ps = _ClientPipeline(pool, new_id())
            ps._message_type = PSRPMessageType.CreatePipeline
        else:
            power = ClientPowerShell(pool, pipeline_id=new_id())
            power.add_command(cmdlet)
            counter = [0]
            for name, value in parameters:
                power.add_parameter(name, _wire_value(_slotted(value, counter)))
            ps = power
        collected = _Collected(call.cmdlet)
        pool.collected[ps.pipeline_id] = collected
        command_id = str(ps.pipeline_id).upper()
        try:
            pool.next_pipeline = (key, values, template)
            ps.start()
            first = pool.data_to_send(shell.max_payload)
            assert first is not None
            shell.command(command_id, first.data, self._limit(budget))
            self._command_sent = True
            while (more := pool.data_to_send(shell.max_payload)) is not None:
                shell.send(command_id, more.data, self._limit(budget))
            try:
                while collected.state is PSInvocationState.Running:
                    if self._receive(command_id, budget) and collected.state is PSInvocationState.Running:
                        collected.state = PSInvocationState.Completed  # Done without a state message
            except BudgetExhausted:
                self._stop(command_id)
                raise budget.timeout_error() from None
            except ClixmlError as exc:  # an error/state message that is not readable: suspect
                self._drop(graceful=False)
                raise HostError(self.host, f"{call.cmdlet}: {exc}") from None
        finally:
            pool.collected.pop(ps.pipeline_id, None)
            pool.pipeline_table.pop(ps.pipeline_id, None)

        errors = tuple(collected.errors)
        if collected.state is PSInvocationState.Failed and not errors:
            errors = (RemoteError(f"{call.cmdlet}: the pipeline failed"),)
        result = CommandResult(tuple(collected.objects), errors, tuple(collected.warnings))
        self._unterminated.append(command_id)
        if len(self._unterminated) > UNTERMINATED_PIPELINES:
            oldest = self._unterminated.pop(0)
            try:
                shell.signal(oldest, SIGNAL_TERMINATE, self._limit(budget))
            except BudgetExhausted:
                pass
            except Exception:  # the results are in hand; the pool is suspect
                self._drop(graceful=False)
        return result

    def _stop(self, command_id: str) -> None:
        """Ask the server to stop a pipeline whose deadline passed (a short grace period)."""
        shell = self._shell
        if shell is None:
            return
        end = time.monotonic() + STOP_GRACE_SECONDS
        try:
            shell.signal(command_id, SIGNAL_PS_CTRL_C, self._limit(None, end))
        except Exception:  # a host that does not answer the stop is dropped
            self._drop(graceful=False)
