"""A PSRP shell: one psrpcore ``ServerRunspacePool`` behind a WSMan shell.

psrpcore is sans-IO: bytes go in with ``receive_data``/``next_event`` and come out of
``data_to_send``. This module owns the routing between the two sides:

* every PSRP message the pool produces is drained at once and split per message, so each
  becomes its own ``rsp:Stream`` element (as Windows sends them; see the pypsrp recordings),
  and queued for the runspace pool or for the pipeline it belongs to;
* a ``ServerPipeline`` is registered before its CreatePipeline fragment is fed, because
  psrpcore's ``_process_CreatePipeline`` looks the pipeline up in the pool's table;
* the pipeline's commands become ``backend.Command`` values and run on a worker thread
  through ``HostRuntime.invoke``; the result comes back to the loop and is written with the
  pipeline's public methods, except failing it (see :func:`_fail_pipeline`).
"""

from __future__ import annotations

import base64
import enum
import struct
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import psrpcore
from psrpcore._payload import PSRPMessage, StreamType, create_message
from psrpcore.types import (
    ApplicationPrivateData,
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PipelineState,
    PSCryptoProvider,
    PSInvocationState,
    PSObject,
    PSRPMessageType,
    PSVersion,
    RunspacePoolInitData,
    RunspacePoolState,
    RunspacePoolStateMsg,
    SessionCapability,
    deserialize,
    serialize,
)

from mock_remoting.backend import Endpoint, InvocationResult, QuickReads, RawClixml, record_key
from mock_remoting.server import wsman
from mock_remoting.server.clixml_cache import ParsedCache
from mock_remoting.server.fastclixml import to_clixml
from mock_remoting.server.pipelines import Statements, to_commands
from mock_remoting.server.shells import Poll, ShellContext, escape_fragment, pack_fragment, take_chunks
from mock_remoting.server.wsman import Request, StreamChunk, WSManFault

_DONE_STATES = (PSInvocationState.Completed, PSInvocationState.Failed, PSInvocationState.Stopped)
_STOP_CODES = ("powershell/signal/ctrl_c", "signal/ctrl_c", "signal/terminate")


def _fail_pipeline(pipeline: psrpcore.ServerPipeline, error: ErrorRecord) -> None:
    """End a running pipeline Failed with its terminating ErrorRecord.

    psrpcore 0.3.1 has public ``complete()`` and ``stop()`` but nothing for Failed, so this
    calls the private ``_change_state``; it emits the PipelineState message with
    ``ExceptionAsErrorRecord`` exactly as ``stop()`` does for Stopped. psrpcore is pinned
    (==0.3.1) in pyproject.toml because of this call and of the other private parts this
    module mirrors or overrides for speed (``_process_message``, ``_process_InitRunspacePool``,
    ``_send_buffer``, the pipeline's ``_change_state``: see :class:`_Pool`, :class:`_Pipeline`).
    """
    pipeline._change_state(PSInvocationState.Failed, error)


# The cipher for cached answers: PSCryptoProvider's methods raise NotImplementedError, so an
# answer holding a SecureString (encrypted with one pool's session key) is never cached.
_NO_SECRETS = PSCryptoProvider()


def lab_error(message: str, fqid: str = "ExfixLabInternalError") -> ErrorRecord:
    """An ErrorRecord for failures of the lab itself (never of the emulated host)."""
    return ErrorRecord(
        Exception=NETException(Message=message),
        CategoryInfo=ErrorCategoryInfo(Category=ErrorCategory.NotSpecified, Reason="LabError"),
        FullyQualifiedErrorId=fqid,
    )


def _pack_message(
    message_type: PSRPMessageType, rpid: uuid.UUID, pid: uuid.UUID | None, data: bytes
) -> bytes:
    """MS-PSRP 2.2.1 message from the server (destination 1 = client)."""
    empty = uuid.UUID(int=0)
    return struct.pack("<iI", 1, message_type.value) + rpid.bytes_le + (pid or empty).bytes_le + data


def _split_fragments(data: bytes) -> list[tuple[int, bool, int | None, bytes]]:
    """Split a psrpcore payload into (object_id, end, message_type or None, fragment bytes)."""
    parts: list[tuple[int, bool, int | None, bytes]] = []
    offset = 0
    while offset + 21 <= len(data):
        object_id, _fragment_id, flags, length = struct.unpack_from(">QQBI", data, offset)
        end = offset + 21 + length
        chunk = data[offset:end]
        message_type = None
        if flags & 0x1 and length >= 8:
            message_type = struct.unpack_from("<I", data, offset + 21 + 4)[0]
        parts.append((object_id, bool(flags & 0x2), message_type, chunk))
        offset = end
    return parts


# The client messages every host gets in the same text: SessionCapability and InitRunspacePool
# (the client's versions, host information and application arguments, once per pool) and
# CreatePipeline (once per cmdlet).
_SHARED_TEXTS = frozenset(
    {PSRPMessageType.CreatePipeline, PSRPMessageType.InitRunspacePool, PSRPMessageType.SessionCapability}
)


# PipelineState messages without an error, by state: psrpcore builds a PipelineState object and
# serializes it for every start() and complete(); the text is the same every time (MS-PSRP
# 2.2.2.21: only the state; the pipeline's id is in the message header).
_STATE_TEXTS: dict[int, bytes] = {}


def _versions(capability: Any) -> tuple[str, str, str] | None:
    """The client's versions, which psrpcore hands to the objects that shape their CLIXML by
    them (``ToPSObjectForRemoting``): part of every key of serialized text."""
    if capability is None:
        return None
    return (str(capability.protocolversion), str(capability.PSVersion), str(capability.SerializationVersion))


def _state_text(state: PSInvocationState) -> bytes:
    text = _STATE_TEXTS.get(int(state))
    if text is None:
        element = serialize(PipelineState(PipelineState=int(state)), _NO_SECRETS)
        text = _STATE_TEXTS[int(state)] = ET.tostring(element, encoding="utf-8", method="xml")
    return text


# The runspace pool's own messages while it opens (MS-PSRP 2.2.2.1 SESSION_CAPABILITY, 2.2.2.13
# APPLICATION_PRIVATE_DATA, 2.2.2.9 RUNSPACEPOOL_STATE, 2.2.2.12 RUNSPACEPOOL_INIT_DATA): the
# same few values for every pool, serialized once per value (py-spy: 6.5 % of the lab's CPU
# on a mixed-fleet scan was psrpcore serializing these for every pool).
_POOL_MESSAGES = frozenset(
    {SessionCapability, ApplicationPrivateData, RunspacePoolStateMsg, RunspacePoolInitData}
)
_POOL_TEXTS: dict[Any, bytes] = {}


def _plain_key(value: Any) -> Any:
    """``value`` as a hashable key that tells apart everything its CLIXML shows, or None when
    it holds anything else (an ErrorRecord, an object with properties of its own)."""
    if value is None or type(value) in (bool, int, float, str):
        return (type(value).__name__, value)
    if isinstance(value, PSObject) and (
        object.__getattribute__(value, "PSObject").adapted_properties
        or object.__getattribute__(value, "PSObject").extended_properties
    ):
        return None
    if isinstance(value, PSVersion):
        return ("PSVersion", str(value))
    if isinstance(value, PSObject) and isinstance(value, (int, str)) and not isinstance(value, enum.Enum):
        return (type(value).__name__, int(value) if isinstance(value, int) else str(value))
    if isinstance(value, dict):
        items = tuple((_plain_key(k), _plain_key(v)) for k, v in value.items())
        if any(k is None or v is None for k, v in items):
            return None
        return (type(value).__name__, items)
    return None


def _pool_message_key(message: Any, their_versions: Any) -> Any:
    meta = message.PSObject
    fields = []
    for prop in (*meta.adapted_properties, *meta.extended_properties):
        key = _plain_key(prop.get_value(message))
        if key is None:
            return None
        fields.append((prop.name, key))
    return (type(message), tuple(fields), their_versions)


class _Pool(psrpcore.ServerRunspacePool):
    """psrpcore's server pool, deserializing each distinct text of :data:`_SHARED_TEXTS` once.

    ``_process_message`` is psrpcore's (private, 0.3.1 is pinned, see :func:`_fail_pipeline`):
    for such a message whose text was seen before, the object deserialized then is handed to
    the same event and handler psrpcore would use. The object is shared between pools and
    pipelines; psrpcore only reads it (``PowerShell.FromPSObjectForRemoting`` builds new
    objects, ``_process_InitRunspacePool`` copies its fields), and the emulation only reads
    parameter values. A text holding a SecureString (``<SS>``, encrypted with this pool's
    key) is deserialized every time.
    """

    def __init__(self, parsed: ParsedCache | None) -> None:
        super().__init__()
        self._parsed = parsed
        self._versions: tuple[str, str, str] | None = None

    @property
    def client_versions(self) -> tuple[str, str, str] | None:
        """:func:`_versions` of the client's capability, read once it is known (each read of a
        psrpcore object's attribute costs a dictionary of all its properties)."""
        if self._versions is None and self.their_capability is not None:
            self._versions = _versions(self.their_capability)
        return self._versions

    def queue_clixml(self, message_type: PSRPMessageType, data: bytes, pipeline_id: uuid.UUID | None) -> None:
        """Queue a message whose CLIXML is ready, as psrpcore's ``prepare_message`` queues one
        it serialized (same header, next object id, same fragmenting in ``data_to_send``)."""
        b_msg = create_message(False, message_type, data, self.runspace_pool_id, pipeline_id)
        self._send_buffer.append(
            PSRPMessage(
                message_type,
                bytearray(b_msg),
                self.runspace_pool_id,
                pipeline_id,
                self._fragment_counter,
                StreamType.default,
            )
        )

    def prepare_message(
        self,
        message: Any,
        message_type: PSRPMessageType | None = None,
        pipeline_id: uuid.UUID | None = None,
        stream_type: StreamType = StreamType.default,
    ) -> None:
        """psrpcore's, with pipeline output written by :mod:`fastclixml` where it can and the
        pool's own messages (:data:`_POOL_MESSAGES`) from :data:`_POOL_TEXTS`."""
        if message_type is None and pipeline_id is None and type(message) in _POOL_MESSAGES:
            key = _pool_message_key(message, self.client_versions)
            if key is not None:
                text = _POOL_TEXTS.get(key)
                if text is None:
                    element = serialize(
                        message,
                        self._cipher,
                        our_capability=self.our_capability,
                        their_capability=self.their_capability,
                    )
                    text = ET.tostring(element, encoding="utf-8", method="xml")
                    if len(_POOL_TEXTS) < 256:
                        _POOL_TEXTS[key] = text
                self.queue_clixml(PSRPMessageType.get_message_id(type(message)), text, None)
                return
        if (
            message_type is PSRPMessageType.PipelineOutput
            and message is not None
            and stream_type is StreamType.default
        ):
            data = to_clixml(message)
            if data is not None:
                self.queue_clixml(message_type, data, pipeline_id)
                return
        super().prepare_message(message, message_type, pipeline_id, stream_type)

    def _deserialize(self, text: bytes) -> Any:
        return deserialize(
            ET.fromstring(text),
            cipher=self._cipher,
            our_capability=self.our_capability,
            their_capability=self.their_capability,
        )

    def _process_message(self, message: Any) -> psrpcore.PSRPEvent[Any, Any]:
        cache = self._parsed
        if cache is None or message.message_type not in _SHARED_TEXTS:
            return super()._process_message(message)
        text = bytes(message.data)
        if b"<SS" in text:
            return super()._process_message(message)
        if message.message_type is PSRPMessageType.CreatePipeline:
            return self._create_pipeline(message, text, cache)
        if message.message_type is PSRPMessageType.SessionCapability:
            # psrpcore's own path with the deserialized object kept per text: its handler
            # copies the three versions into a SessionCapability of this pool's own.
            key = b"C" + text
            parsed = cache.get(key)
            if parsed is None:
                parsed = self._deserialize(text)
                cache.put(key, parsed)
            event = psrpcore.PSRPEvent.create(
                message.message_type, parsed, message.runspace_pool_id, message.pipeline_id
            )
            assert isinstance(event, psrpcore.SessionCapabilityEvent)
            self._process_SessionCapability(event)
            return event
        return self._init_runspace_pool(message, text, cache)

    def _init_runspace_pool(
        self, message: Any, text: bytes, cache: ParsedCache
    ) -> psrpcore.PSRPEvent[Any, Any]:
        """psrpcore 0.3.1's ``ServerRunspacePool._process_InitRunspacePool`` with the values it
        reads off the event kept per text: each read of ``event.host_info`` builds a HostInfo
        from the message again (4 % of the lab's CPU on a mixed-fleet scan). The values are
        shared between pools; psrpcore keeps them and the server only reads them."""
        key = b"I" + text
        found = cache.get(key)
        if found is None:
            parsed = self._deserialize(text)
            event = psrpcore.PSRPEvent.create(message.message_type, parsed, message.runspace_pool_id, None)
            assert isinstance(event, psrpcore.InitRunspacePoolEvent)
            fields = (
                event.apartment_state,
                event.application_arguments,
                event.host_info,
                event.ps_thread_options,
                event.max_runspaces,
                event.min_runspaces,
            )
            found = (parsed, fields)
            cache.put(key, found)
        parsed, fields = found
        (
            self.apartment_state,
            self.application_arguments,
            self.host,
            self.thread_options,
            self._max_runspaces,
            self._min_runspaces,
        ) = fields
        self.prepare_message(ApplicationPrivateData(ApplicationPrivateData=self.application_private_data))
        self._change_state(RunspacePoolState.Opened)
        pool_id = message.runspace_pool_id
        return psrpcore.PSRPEvent.create(message.message_type, parsed, pool_id, message.pipeline_id)

    def _create_pipeline(self, message: Any, text: bytes, cache: ParsedCache) -> psrpcore.PSRPEvent[Any, Any]:
        """A CreatePipeline as psrpcore's ``_process_CreatePipeline`` takes it, except that the
        pipeline gets its commands (``_Pipeline.statements``) from the cache by text, or from
        the recipe of the text's shape (mock_remoting/server/pipelines.py), or else from
        psrpcore's deserializer; ``metadata`` (psrpcore's PowerShell object, which only this
        module reads) is then left unset. The event carries the deserialized object only when
        there is one: nothing reads it but :meth:`PsrpShell._on_event`, for the pipeline id."""
        pipeline = self.pipeline_table.get(message.pipeline_id)
        if not isinstance(pipeline, _Pipeline):
            return super()._process_message(message)  # psrpcore's own error for an unknown id
        key = b"P" + text
        found = cache.get(key)
        if found is None:
            parsed = None
            statements = cache.recipes.statements(text, self._deserialize)
            if statements is None:
                parsed = self._deserialize(text)
                statements = to_commands(psrpcore.PowerShell.FromPSObjectForRemoting(parsed))
            found = (parsed, statements)
            cache.put(key, found)
        parsed, pipeline.statements = found
        return psrpcore.PSRPEvent.create(
            message.message_type, parsed, message.runspace_pool_id, message.pipeline_id
        )


class _Pipeline(psrpcore.ServerPipeline):
    """psrpcore's server pipeline, queuing the PipelineState text of :func:`_state_text`
    instead of serializing a new PipelineState object at each state change without an error
    (a Failed or Stopped state carries its ErrorRecord and goes through psrpcore)."""

    runspace_pool: _Pool
    # The commands of the CreatePipeline, when _Pool took them from its caches.
    statements: Statements | None = None

    def _change_state(
        self, state: PSInvocationState, error: ErrorRecord | None = None, emit: bool = True
    ) -> None:
        if emit and error is None:
            text = _state_text(state)
            self.runspace_pool.queue_clixml(PSRPMessageType.PipelineState, text, self.pipeline_id)
            emit = False
        super()._change_state(state, error, emit)


@dataclass
class _Pipe:
    pipeline: _Pipeline
    cancel: threading.Event = field(default_factory=threading.Event)
    queue: list[StreamChunk] = field(default_factory=list)
    started: bool = False
    finished: bool = False
    stop_requested: bool = False
    terminated: bool = False


class PsrpShell:
    """One runspace pool (``Microsoft.Exchange`` or ``Microsoft.PowerShell``)."""

    input_streams = "stdin pr"
    output_streams = "stdout"

    def __init__(
        self, ctx: ShellContext, shell_id: str, resource_uri: str, endpoint: Endpoint, max_envelope_size: int
    ) -> None:
        self.ctx = ctx
        self.shell_id = shell_id
        self.resource_uri = resource_uri
        self.backend_endpoint = endpoint
        self.endpoint = "exchange" if endpoint is Endpoint.EXCHANGE else "os"
        self.fragment_size = max(wsman.stream_budget(max_envelope_size) * 3 // 4, 1024)
        self.pool = _Pool(ctx.parsed)
        self.pool_queue: list[StreamChunk] = []
        self._held: list[StreamChunk] = []
        self.pipes: dict[uuid.UUID, _Pipe] = {}
        self.closed = False
        self._quick = ctx.runtime if isinstance(ctx.runtime, QuickReads) else None

    # -- psrpcore plumbing ------------------------------------------------------------------

    def _feed(self, data: bytes, pipeline_id: uuid.UUID | None = None) -> None:
        try:
            self.pool.receive_data(psrpcore.PSRPPayload(data, psrpcore.StreamType.default, pipeline_id))
            while True:
                event = self.pool.next_event()
                if event is None:
                    break
                self._on_event(event)
                self._drain()
        except psrpcore.PSRPCoreError as exc:
            raise WSManFault(None, "w:InternalError", f"PSRP error: {exc}") from None
        self._drain()

    def _drain(self, drop_type: PSRPMessageType | None = None) -> None:
        while True:
            payload = self.pool.data_to_send(self.fragment_size)
            if payload is None:
                return
            target = self.pool_queue if payload.pipeline_id is None else None
            if payload.pipeline_id is not None:
                pipe = self.pipes.get(payload.pipeline_id)
                if pipe is None:
                    continue  # the pipeline was terminated: nobody will read this
                target = pipe.queue
            assert target is not None
            for _oid, _end, message_type, fragment in _split_fragments(payload.data):
                if drop_type is not None and message_type == drop_type.value:
                    continue
                fragment = escape_fragment(fragment)
                target.append(StreamChunk("stdout", base64.b64encode(fragment).decode("ascii")))

    def _on_event(self, event: psrpcore.PSRPEvent[Any, Any]) -> None:
        if isinstance(event, psrpcore.CreatePipelineEvent):
            self._start(event.pipeline_id)
        elif isinstance(event, psrpcore.GetCommandMetadataEvent):
            pipe = self.pipes.get(event.pipeline_id)
            if pipe is not None:
                pipe.pipeline.start()
                pipe.started = True
                self._drain(drop_type=PSRPMessageType.PipelineState)
                _fail_pipeline(
                    pipe.pipeline,
                    lab_error(
                        "Get-Command metadata is not emulated by the exfix lab.",
                        "CommandMetadataNotSupported",
                    ),
                )
                pipe.finished = True
        elif isinstance(
            event,
            (psrpcore.SetMaxRunspacesEvent, psrpcore.SetMinRunspacesEvent, psrpcore.ResetRunspaceStateEvent),
        ):
            self.pool.runspace_availability_response(event.ci, True)
        elif isinstance(event, psrpcore.GetAvailableRunspacesEvent):
            self.pool.runspace_availability_response(event.ci, self.pool.max_runspaces)
        # Pipeline input, host responses, key exchange and the rest need no answer here
        # (psrpcore answers the key exchange itself).

    # -- WSMan actions ----------------------------------------------------------------------

    def open(self, creation_xml: str) -> None:
        try:
            data = base64.b64decode(creation_xml, validate=True)
        except ValueError:
            raise wsman.invalid_request("creationXml is not base64") from None
        self._feed(data)
        # Windows answers the first Receive with the negotiation (SessionCapability and
        # ApplicationPrivateData) and the next one with RunspacePoolState Opened, because the
        # runspace finishes opening after that reply (pypsrp recordings test_psrp_open_runspace,
        # test_psrp_error_failed, ...). Hold the state back until the first reply has gone out.
        keep: list[StreamChunk] = []
        for chunk in self.pool_queue:
            raw = base64.b64decode(chunk.data)
            (message_type,) = struct.unpack_from("<I", raw, 21 + 4) if len(raw) >= 29 else (None,)
            (self._held if message_type == PSRPMessageType.RunspacePoolState.value else keep).append(chunk)
        self.pool_queue = keep

    def command(self, request: Request) -> str:
        body = request.require_body("Command without rsp:CommandLine")
        args = wsman.children(body, "rsp", "Arguments")
        if not args or not (args[0].text or "").strip():
            raise wsman.invalid_request("PSRP Command without a CreatePipeline fragment")
        try:
            data = base64.b64decode(args[0].text or "", validate=True)
        except ValueError:
            raise wsman.invalid_request("Command arguments are not base64") from None
        command_id = body.get("CommandId")
        try:
            pipeline_id = uuid.UUID(command_id) if command_id else self._pipeline_id_of(data)
        except ValueError:
            raise wsman.invalid_request(f"CommandId {command_id!r} is not a GUID") from None
        old = self.pipes.get(pipeline_id)
        if old is not None and not old.finished:
            raise WSManFault(None, "w:AlreadyExists", f"The command {pipeline_id} is still running.")
        if old is not None:
            old.pipeline.close()
        pipeline = _Pipeline(self.pool, pipeline_id)  # registers itself in the table
        self.pipes[pipeline_id] = _Pipe(pipeline)
        self._feed(data, pipeline_id)
        return wsman.command_body(command_id if command_id else str(pipeline_id).upper())

    @staticmethod
    def _pipeline_id_of(fragment: bytes) -> uuid.UUID:
        # fragment header (21) + destination (4) + type (4) + RPID (16) + PID (16)
        if len(fragment) < 61:
            raise ValueError("short fragment")
        return uuid.UUID(bytes_le=bytes(fragment[45:61]))

    def send(self, request: Request) -> str:
        body = request.require_body("Send without rsp:Send")
        for stream in wsman.children(body, "rsp", "Stream"):
            command_id = stream.get("CommandId")
            try:
                data = base64.b64decode(stream.text or "", validate=True)
                pid = uuid.UUID(command_id) if command_id else None
            except ValueError:
                raise wsman.invalid_request("bad Send stream") from None
            self._feed(data, pid)
        return "<rsp:SendResponse/>"

    def signal(self, request: Request) -> str:
        command_id, code = request.signal()
        pipe = None
        if command_id:
            try:
                pipe = self.pipes.get(uuid.UUID(command_id))
            except ValueError:
                pipe = None
        if pipe is not None and code.endswith(_STOP_CODES):
            terminate = code.endswith("signal/terminate")
            if not pipe.finished:
                # Stop: the runtime sees the cancel event; the pipeline ends Stopped when it returns.
                # (No Stopping state message: psrpcore's begin_stop() would emit one that Windows
                # does not send.)
                pipe.cancel.set()
                pipe.stop_requested = True
            if terminate:
                pipe.terminated = True
                if pipe.finished:
                    self._forget(pipe)
        return "<rsp:SignalResponse/>"

    def poll(self, command_id: str | None, budget: int) -> Poll | None:
        if command_id is None:
            chunks = take_chunks(self.pool_queue, budget)
            return Poll(chunks, None) if chunks else None
        try:
            pipe = self.pipes.get(uuid.UUID(command_id))
        except ValueError:
            pipe = None
        if pipe is None:
            raise WSManFault(
                None,
                "w:InvalidSelectors",
                f"The command with CommandId {command_id} was not found.",
                sender=True,
            )
        chunks = take_chunks(pipe.queue, budget)
        if pipe.finished and not pipe.queue:
            return Poll(chunks, "Done", 0)
        return Poll(chunks, "Running") if chunks else None

    def after_receive(self, command_id: str | None) -> None:
        if command_id is None and self._held:
            self.pool_queue.extend(self._held)
            self._held.clear()
            self.ctx.notify()

    def close(self) -> None:
        self.closed = True
        for pipe in list(self.pipes.values()):
            pipe.cancel.set()
        self.pipes.clear()

    # -- invocation -------------------------------------------------------------------------

    def _forget(self, pipe: _Pipe) -> None:
        self.pipes.pop(pipe.pipeline.pipeline_id, None)
        if pipe.pipeline.state in _DONE_STATES or pipe.pipeline.state == PSInvocationState.NotStarted:
            pipe.pipeline.close()

    def _start(self, pipeline_id: uuid.UUID) -> None:
        pipe = self.pipes.get(pipeline_id)
        if pipe is None or pipe.started:
            return
        pipe.pipeline.start()
        pipe.started = True
        # psrpcore emits PipelineState Running on start(); Windows does not send it (the
        # recordings go straight from Command to output and Completed), so it is dropped.
        self._drain(drop_type=PSRPMessageType.PipelineState)
        statements = pipe.pipeline.statements
        if statements is None:
            statements = to_commands(pipe.pipeline.metadata)
        runtime = self.ctx.runtime
        endpoint = self.backend_endpoint

        def work(cancel: threading.Event) -> InvocationResult:
            if len(statements) == 1:
                return runtime.invoke(endpoint, statements[0], cancel)  # with its cache_key
            total = InvocationResult()
            for statement in statements:
                if cancel.is_set():
                    break
                result = runtime.invoke(endpoint, statement, cancel)
                total.output.extend(result.output)
                total.errors.extend(result.errors)
                if result.failure is not None:
                    total.failure = result.failure
                    break
            return total

        quick = self._quick
        inline = quick is not None and all(quick.answers_at_once(endpoint, s) for s in statements)
        self.ctx.run(work, pipe.cancel, lambda result, error: self._finish(pipe, result, error), inline)

    def _finish(self, pipe: _Pipe, result: object, error: BaseException | None) -> None:
        if self.closed or pipe.finished:
            return
        pipeline = pipe.pipeline
        try:
            if pipe.stop_requested or pipe.cancel.is_set():
                pipeline.stop()
            elif error is not None:
                _fail_pipeline(
                    pipeline, lab_error(f"The host emulation failed: {type(error).__name__}: {error}")
                )
            else:
                assert isinstance(result, InvocationResult)
                self._write_result(pipe, result)
        except Exception as exc:
            if pipeline.state == PSInvocationState.Running:
                self._drain()
                _fail_pipeline(
                    pipeline, lab_error(f"The lab could not send the result: {type(exc).__name__}: {exc}")
                )
        pipe.finished = True
        self._drain()
        if pipe.terminated:
            self._forget(pipe)

    def _write_result(self, pipe: _Pipe, result: InvocationResult) -> None:
        pipeline = pipe.pipeline
        serialized = self._serialized(result)
        if serialized is not None:
            for data in serialized:
                self._write_raw(pipe, data)
        else:
            for value in result.output:
                if isinstance(value, RawClixml):
                    self._write_raw(pipe, value.xml)
                else:
                    pipeline.write_output(value)
                self._drain()
        for record in result.errors:
            text = self._record_text(record)
            if text is not None:
                self.pool.queue_clixml(PSRPMessageType.ErrorRecord, text, pipeline.pipeline_id)
            else:
                pipeline.prepare_message(record, message_type=PSRPMessageType.ErrorRecord)
            self._drain()
        if result.failure is not None:
            _fail_pipeline(pipeline, result.failure)
        else:
            pipeline.complete()

    def _serialized(self, result: InvocationResult) -> tuple[bytes, ...] | None:
        """The output as CLIXML from the cache, or serialized now and kept; None when the
        result is not to be cached (no key, replayed captures, a null, a SecureString, which
        is encrypted with this pool's session key)."""
        cache = self.ctx.clixml
        if cache is None or result.cache_key is None:
            return None
        # The client's versions go into the key: psrpcore hands the capabilities to the
        # objects that shape their CLIXML by them (ToPSObjectForRemoting).
        theirs = self.pool.their_capability
        key = (result.cache_key, self.pool.client_versions)
        found = cache.get(key)
        if found is not None:
            return found
        items: list[bytes] = []
        for value in result.output:
            if value is None or isinstance(value, RawClixml):
                return None
            fast = to_clixml(value)
            if fast is not None:
                items.append(fast)
                continue
            # What psrpcore's RunspacePool.prepare_message does for a PipelineOutput message.
            try:
                element = serialize(
                    value, _NO_SECRETS, our_capability=self.pool.our_capability, their_capability=theirs
                )
            except NotImplementedError:  # a SecureString: psrpcore's own path encrypts it
                return None
            items.append(ET.tostring(element, encoding="utf-8", method="xml"))
        serialized = tuple(items)
        cache.put(key, serialized)
        return serialized

    def _record_text(self, record: Any) -> bytes | None:
        """The CLIXML of an ErrorRecord the runtime vouched for (``backend.vouch_record``),
        serialized as psrpcore's ``prepare_message`` does once per key and client version and
        kept; None for any other record, which psrpcore serializes itself."""
        cache = self.ctx.clixml
        vouched = record_key(record)
        if cache is None or vouched is None:
            return None
        key = ("ErrorRecord", vouched, self.pool.client_versions)
        found = cache.get(key)
        if found is not None:
            text: bytes = found[0]
            return text
        try:
            element = serialize(
                record,
                _NO_SECRETS,
                our_capability=self.pool.our_capability,
                their_capability=self.pool.their_capability,
            )
        except NotImplementedError:  # a SecureString: psrpcore's own path encrypts it
            return None
        text = ET.tostring(element, encoding="utf-8", method="xml")
        cache.put(key, (text,))
        return text

    def _write_raw(self, pipe: _Pipe, xml: str | bytes) -> None:
        """Send one captured ``<Obj>`` element verbatim as a PipelineOutput message.

        psrpcore serializes everything it queues, so a placeholder output is queued to take the
        next object id in order, and its fragments are replaced by ones carrying the raw XML.
        """
        pipe.pipeline.write_output(None)
        payload = self.pool.data_to_send()
        assert payload is not None
        object_id = struct.unpack_from(">Q", payload.data, 0)[0]
        message = _pack_message(
            PSRPMessageType.PipelineOutput,
            self.pool.runspace_pool_id,
            pipe.pipeline.pipeline_id,
            xml if isinstance(xml, bytes) else xml.strip().encode("utf-8"),
        )
        size = self.fragment_size - 21
        pieces = [message[i : i + size] for i in range(0, len(message), size)] or [b""]
        for index, piece in enumerate(pieces):
            fragment = pack_fragment(object_id, index, piece, index == len(pieces) - 1)
            pipe.queue.append(StreamChunk("stdout", base64.b64encode(fragment).decode("ascii")))
