"""What only the psrpcore transport has: its CreatePipeline templates, its cached pool-opening
messages, its HTTP/1.1 reader, its reconnect, and which hosts it serves (the others keep
pypsrp). Everything the two transports share is tested by the rest of tests/transport and
tests/e2e, which .ci/run runs on both (EXFIX_PSRP_CLIENT)."""

from __future__ import annotations

import contextlib
import hmac
import itertools
import os
import re
import socket
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import pypsrp.exceptions as psrp_exc
import pytest
import spnego
import spnego.exceptions
from hypothesis import given, settings
from hypothesis import strategies as st
from psrpcore import ClientPowerShell, ClientRunspacePool, PSRPCoreError, ServerRunspacePool
from psrpcore._base import RunspacePool
from psrpcore._payload import PSRPMessage, PSRPPayload, StreamType, create_fragment, create_message
from psrpcore.types import (
    InitRunspacePool,
    PipelineState,
    PSInvocationState,
    PSRPMessageType,
    SessionCapability,
    serialize,
)

from agent.errors import UsageError
from agent.model.command import SWITCH, CmdletCall, Endpoint
from agent.model.target import PsrpClient
from agent.transport import clixml, psrpcore_session, wsman
from agent.transport.clixml import ClixmlError
from agent.transport.connection import (
    DEFAULT_PSRP_CLIENT,
    PSRP_CLIENT_ENV,
    chosen_psrp_client,
    psrp_session_class,
)
from agent.transport.psrp import PsrpSession, _wire_value
from agent.transport.psrpcore_session import PsrpcoreSession
from agent.transport.wsman import ConnectionSettings, _Wire
from mock_remoting.credentials import LAB_PASSWORD, LAB_USERNAME
from mock_remoting.server import ntlm_store
from transport.conftest import ServerHandle

GET_DNS_CLIENT = CmdletCall(Endpoint.OS, "Get-DnsClient")
WRAPPING = spnego.NegotiateOptions.wrapping_winrm


def _direct(call: CmdletCall) -> bytes:
    """The CreatePipeline message psrpcore itself serializes for ``call``."""
    pool = psrpcore_session._Pool()
    ps = ClientPowerShell(pool)
    ps.add_command(call.cmdlet)
    for name, value in call.parameters:
        ps.add_parameter(name, _wire_value(value))
    element = serialize(ps.metadata, None, our_capability=pool.our_capability, their_capability=None)
    return bytes(ET.tostring(element, encoding="utf-8", method="xml"))


def _templated(shape_of: CmdletCall, call: CmdletCall) -> bytes:
    """``call``'s message filled into the template made from another call of its shape."""
    key, values = psrpcore_session._shape(shape_of, "2.3")
    pool = psrpcore_session._Pool()
    ps = ClientPowerShell(pool)
    ps.add_command(shape_of.cmdlet)
    counter = [0]
    for name, value in shape_of.parameters:
        ps.add_parameter(name, _wire_value(psrpcore_session._slotted(value, counter)))
    element = serialize(ps.metadata, None, our_capability=pool.our_capability, their_capability=None)
    template = psrpcore_session._Template(ET.tostring(element, encoding="utf-8", method="xml"), len(values))
    call_key, call_values = psrpcore_session._shape(call, "2.3")
    assert call_key == key
    return template.fill(call_values)


def _resolve(name: str, server: str) -> CmdletCall:
    return CmdletCall(
        Endpoint.OS,
        "Resolve-DnsName",
        (("Name", name), ("Server", ("10.0.0.10", server)), ("Type", "A"), ("DnsOnly", SWITCH), ("Port", 53)),
    )


# CLIXML's own escapes (_xHHHH_, and an underscore before x), XML's, control characters,
# astral-plane characters (UTF-16 surrogate pairs) and the template's own slot marker.
TRICKY = [
    "a&b<c>d]]>",
    "_x0041_ and _X",
    "tab\there\nnl\r",
    "café \U0001f600",
    "\"q' ",
    "EXFIXSLOT0000Q",
    "x",
]


@pytest.mark.parametrize("value", TRICKY)
def test_a_template_fills_in_what_psrpcore_would_serialize(value: str) -> None:
    assert _templated(_resolve("a", "b"), _resolve(value, value)) == _direct(_resolve(value, value))


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_a_template_matches_psrpcore_for_any_strings(name: str, server: str) -> None:
    assert _templated(_resolve("a", "b"), _resolve(name, server)) == _direct(_resolve(name, server))


def test_values_that_change_the_message_shape_are_part_of_the_key() -> None:
    def key(*parameters: Any) -> Any:
        return psrpcore_session._shape(CmdletCall(Endpoint.OS, "Get-Item", tuple(parameters)), "2.3")[0]

    assert key(("Path", "a")) == key(("Path", "b"))
    assert key(("Path", "a")) != key(("Path", ""))  # written as an empty element
    assert key(("Path", ("a", "b"))) != key(("Path", ("a",)))
    assert key(("Force", True)) != key(("Force", 1))  # True == 1, but <B> is not <I32>
    assert key(("Force", SWITCH)) != key(("Force", False))


def test_every_pool_opens_with_the_same_two_messages() -> None:
    """What makes caching them sound: nothing in them is per pool."""
    first, second = psrpcore_session._Pool(), psrpcore_session._Pool()
    for kind in (SessionCapability, InitRunspacePool):
        texts = []
        for pool in (first, second):
            pool.open() if pool.state.name == "BeforeOpen" else None
            message = next(m for m in pool._send_buffer if m.message_type.name == kind.__name__)
            texts.append(bytes(message.data)[40:])  # past the message header (MS-PSRP 2.2.1)
        assert texts[0] == texts[1]


# -- which hosts it serves ---------------------------------------------------------------


def test_the_environment_overrides_the_inventory(
    transport_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle: ServerHandle = transport_server()
    target = handle.target(exfix_psrp_client="psrpcore")
    assert target.psrp_client is PsrpClient.PSRPCORE
    monkeypatch.delenv(PSRP_CLIENT_ENV, raising=False)
    assert chosen_psrp_client(target) is PsrpClient.PSRPCORE
    assert chosen_psrp_client(handle.target()) is DEFAULT_PSRP_CLIENT
    assert chosen_psrp_client(handle.target(exfix_psrp_client="pypsrp")) is PsrpClient.PYPSRP
    monkeypatch.setenv(PSRP_CLIENT_ENV, "pypsrp")
    assert psrp_session_class(target, Endpoint.OS) is PsrpSession
    monkeypatch.setenv(PSRP_CLIENT_ENV, "nonsense")
    with pytest.raises(UsageError, match=PSRP_CLIENT_ENV):
        chosen_psrp_client(target)


@pytest.mark.parametrize(
    ("variables", "served"),
    [
        ({}, True),
        ({"ansible_psrp_auth": "basic", "exfix_allow_insecure_basic": True}, True),
        ({"ansible_psrp_auth": "kerberos"}, True),
        ({"ansible_psrp_auth": "credssp"}, False),
        (
            {
                "ansible_psrp_auth": "certificate",
                "ansible_psrp_protocol": "https",
                "ansible_psrp_certificate_pem": "client.pem",
                "ansible_psrp_certificate_key_pem": "client.key",
            },
            False,
        ),
        ({"ansible_psrp_proxy": "http://127.0.0.1:3128"}, False),
    ],
)
def test_what_the_psrpcore_transport_does_not_do_stays_on_pypsrp(
    transport_server: Any, monkeypatch: pytest.MonkeyPatch, variables: dict[str, Any], served: bool
) -> None:
    monkeypatch.setenv(PSRP_CLIENT_ENV, "psrpcore")
    handle: ServerHandle = transport_server()
    target = handle.target(**variables)
    expected = PsrpcoreSession if served else PsrpSession
    assert psrp_session_class(target, Endpoint.OS) is expected


def test_the_environments_proxy_keeps_pypsrp_unless_ignored(
    transport_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PSRP_CLIENT_ENV, "psrpcore")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    handle: ServerHandle = transport_server()
    target = handle.target(ansible_host="ex01.contoso.local")
    assert psrp_session_class(target, Endpoint.OS) is PsrpSession
    ignoring = handle.target(ansible_host="ex01.contoso.local", ansible_psrp_ignore_proxy=True)
    assert psrp_session_class(ignoring, Endpoint.OS) is PsrpcoreSession


# -- the connection ----------------------------------------------------------------------


@pytest.mark.parametrize("noticed", ["by its failed send", "before sending"])
def test_a_lost_connection_is_authenticated_again_and_keeps_the_pool(
    transport_server: Any, monkeypatch: pytest.MonkeyPatch, noticed: str
) -> None:
    """A keep-alive connection the server (or a middlebox) closed between two commands: the
    next command opens and authenticates a new connection and goes on in the same pool. A
    connection that answered under a second ago is not asked before the send (its send fails
    and is made again on the new one); an older one is."""
    monkeypatch.setenv(PSRP_CLIENT_ENV, "psrpcore")
    if noticed == "before sending":
        monkeypatch.setattr(wsman, "_FRESH", 0.0)
    handle: ServerHandle = transport_server()
    with handle.connect() as conn:
        session = conn.os
        assert isinstance(session, PsrpcoreSession)
        assert session.run(GET_DNS_CLIENT)
        handshakes = handle.count("http")
        assert session._connection is not None and session._connection._wire is not None
        session._connection._wire.sock.shutdown(socket.SHUT_RDWR)  # the peer sees it closed
        assert session.run(GET_DNS_CLIENT)
        assert session.opens == 1
        assert handle.count("http") == handshakes + 2  # NTLM: NEGOTIATE, AUTHENTICATE
    assert handle.count("os", "Create") == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_ids_are_version_4_and_a_forked_child_draws_other_ones() -> None:
    """Message, pool and pipeline ids come from one generator seeded once (no system call per
    id); a forked child seeds its copy again rather than repeat its parent's ids."""
    ids = {wsman.new_id() for _ in range(1000)}
    assert len(ids) == 1000 and {i.version for i in ids} == {4}
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, wsman.new_id().bytes)
        os._exit(0)
    os.close(write)
    child = uuid.UUID(bytes=os.read(read, 16))
    os.close(read)
    os.waitpid(pid, 0)
    assert child != wsman.new_id()


@contextlib.contextmanager
def _serving(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback server for one connection, which handle answers; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve() -> None:
        conn, _ = listener.accept()
        accepted.append(conn)
        handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(4096)


def _plain_wire(port: int) -> _Wire:
    settings = ConnectionSettings(
        https=False, host="127.0.0.1", port=port, path="wsman", auth="basic",
        username="u", password="p", seal=False, verify=False,
    )  # fmt: skip
    return _Wire(settings, None, 5.0)


@pytest.fixture
def chunked_server() -> Iterator[int]:
    """A one-shot HTTP server that answers with a chunked body and two WWW-Authenticate lines."""

    def answer(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nWWW-Authenticate: Negotiate\r\n"
            b'WWW-Authenticate: Basic realm="WSMAN"\r\n\r\n'
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
        )

    with _serving(answer) as port:
        yield port


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A server that takes the connection and the request and never answers."""
    with _serving(_read_request) as port:
        yield port


def test_a_silent_server_ends_the_plain_http_read_at_its_time_limit(silent_server: int) -> None:
    """Over http the socket blocks and the kernel bounds the read (SO_RCVTIMEO): its EAGAIN is
    a TimeoutError, as a Python socket timeout would be, and it comes in time."""
    wire = _plain_wire(silent_server)
    try:
        assert wire.sock.gettimeout() is None  # blocking: no poll before each receive
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            wire.exchange(b"<x/>", {"Content-Type": "application/soap+xml"}, 0.3)
        assert 0.25 < time.monotonic() - started < 3
    finally:
        wire.close()


@pytest.fixture
def slow_second_answer() -> Iterator[int]:
    """A server that answers its connection's first request at once and its second after
    1.2 seconds."""

    def answer(conn: socket.socket) -> None:
        for delay in (0.0, 1.2):
            _read_request(conn)
            time.sleep(delay)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    with _serving(answer) as port:
        yield port


def test_a_request_with_more_time_than_the_socket_s_bound_waits_on(slow_second_answer: int) -> None:
    """The socket keeps the lowest bound its requests asked for (setting one is a system
    call): a later request given more time waits through it, to its own deadline."""
    wire = _plain_wire(slow_second_answer)
    try:
        assert wire.exchange(b"<x/>", {}, 0.3)[2] == b"ok"
        started = time.monotonic()
        assert wire.exchange(b"<x/>", {}, 5.0)[2] == b"ok"
        assert time.monotonic() - started >= 1.0  # it waited past the socket's 0.3 s
    finally:
        wire.close()


def test_the_http_reader_takes_chunked_bodies_and_repeated_headers(chunked_server: int) -> None:
    wire = _plain_wire(chunked_server)
    try:
        status, headers, body, will_close = wire.exchange(
            b"<x/>", {"Content-Type": "application/soap+xml"}, 5.0
        )
    finally:
        wire.close()
    assert (status, body, will_close) == (200, b"hello world", False)
    assert headers["www-authenticate"] == 'Negotiate, Basic realm="WSMAN"'
    assert "x-trailer" not in headers


def _receive_response(relates: str, streams: str, state: str = "Running") -> bytes:
    return (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header>'
        f"<a:RelatesTo>{relates}</a:RelatesTo></s:Header><s:Body><rsp:ReceiveResponse>{streams}"
        f'<rsp:CommandState CommandId="C" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/'
        f'CommandState/{state}"/></rsp:ReceiveResponse></s:Body></s:Envelope>'
    ).encode()


def test_a_receive_response_is_read_without_a_tree_and_the_same() -> None:
    streams = (
        '<rsp:Stream Name="stdout" CommandId="C">aGVsbG8g</rsp:Stream>'
        '<rsp:Stream Name="stdout" CommandId="C" End="true"/>'
        '<rsp:Stream Name="stdout" CommandId="C">d29ybGQ=</rsp:Stream>'
    )
    quick = wsman._quick_receive(_receive_response("uuid:M", streams, "Done"), "M")
    assert quick == wsman.ReceiveResult(b"hello world", True)
    assert wsman._quick_receive(_receive_response("uuid:M", streams), "M") == wsman.ReceiveResult(
        b"hello world", False
    )
    # Another request's answer, or markup the patterns do not read: ElementTree decides.
    assert wsman._quick_receive(_receive_response("uuid:OTHER", streams), "M") is None
    commented = _receive_response("uuid:M", "<!-- x -->" + streams)
    assert wsman._quick_receive(commented, "M") is None


def test_exfix_seals_ntlm_messages_as_pyspnego_does() -> None:
    """Against pyspnego's acceptor: what exfix seals, pyspnego unwraps (checking each MIC), and
    what pyspnego seals, exfix unwraps; sequence numbers advance on both sides alike."""
    store = ntlm_store.acquire()
    try:
        assert store.is_file()
        client = spnego.client(LAB_USERNAME, LAB_PASSWORD, protocol="ntlm", options=WRAPPING)
        server = spnego.server(protocol="ntlm", options=WRAPPING)
        token = client.step()
        token = client.step(server.step(token))
        server.step(token)
    finally:
        ntlm_store.release()
    seal = wsman._NtlmSeal.of(client)
    assert seal is not None
    for size in (0, 1, 2047, 2048, 4095, 70000):  # around the pieces sealing works in
        message = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        signature, sealed = seal.wrap(message)
        assert server.unwrap_winrm(signature, sealed) == message  # pyspnego verifies the MIC
        answer = server.wrap_winrm(message[::-1])
        assert seal.unwrap(answer.header, answer.data) == message[::-1]
    forged = server.wrap_winrm(b"reply")
    checksum_byte = forged.header[5] ^ 0xFF  # inside the 8-byte checksum
    with pytest.raises(spnego.exceptions.BadMICError):
        seal.unwrap(forged.header[:5] + bytes([checksum_byte]) + forged.header[6:], forged.data)


def test_a_sealed_ntlm_session_uses_exfix_sealing(
    transport_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PSRP_CLIENT_ENV, "psrpcore")
    handle: ServerHandle = transport_server()
    with handle.connect() as conn:
        session = conn.os
        assert isinstance(session, PsrpcoreSession)
        assert session.run(GET_DNS_CLIENT)
        assert session._connection is not None and session._connection._seal is not None
    assert handle.server.authentications.get(handle.name, "sealed", "ntlm") > 0


@settings(max_examples=200, deadline=None)
@given(
    key=st.binary(max_size=130),
    parts=st.lists(st.one_of(st.binary(max_size=300), st.binary(min_size=2040, max_size=6200)), max_size=4),
)
def test_the_prepared_hmac_is_hmac_md5(key: bytes, parts: list[bytes]) -> None:
    """Keys shorter than, equal to and longer than MD5's 64-byte block, messages in pieces,
    pieces below and beyond the size hashlib hashes without the GIL (hashed in smaller ones)."""
    assert wsman._HmacMd5(key).digest(*parts) == hmac.digest(key, b"".join(parts), "md5")


# -- pipeline states read by one match ------------------------------------------------------


@pytest.mark.parametrize("state", list(PSInvocationState))
def test_a_plain_pipeline_state_is_read_by_the_match_as_the_whole_reader_reads_it(
    state: PSInvocationState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psrpcore's serialization of a state without a reason is what the match reads (with no
    CLIXML parsed); the same state written another way goes through the whole reader."""
    text = ET.tostring(serialize(PipelineState(PipelineState=state), None), encoding="unicode")
    parsed: list[str] = []
    real_parse = clixml.parse_clixml

    def parse(document: str) -> Any:
        parsed.append(document)
        return real_parse(document)

    monkeypatch.setattr(psrpcore_session, "parse_clixml", parse)
    fast = psrpcore_session._Collected("Get-DnsClient")
    assert fast.take(PSRPMessageType.PipelineState, text.encode())
    assert fast.state is state and parsed == []
    spaced = text.replace("<MS>", "<MS>\n  ")
    whole = psrpcore_session._Collected("Get-DnsClient")
    assert whole.take(PSRPMessageType.PipelineState, spaced.encode())
    assert whole.state is state and parsed == [spaced]


def test_a_pipeline_state_with_an_unknown_number_is_unreadable() -> None:
    collected = psrpcore_session._Collected("Get-DnsClient")
    unknown = b'<Obj RefId="0"><MS><I32 N="PipelineState">99</I32></MS></Obj>'
    with pytest.raises(ClixmlError, match="without a readable state"):
        collected.take(PSRPMessageType.PipelineState, unknown)


# -- PSRP fragments read in place, against psrpcore's own reader -----------------------------

_MESSAGE_KINDS = (
    PSRPMessageType.PipelineOutput,
    PSRPMessageType.ErrorRecord,
    PSRPMessageType.PipelineState,
    PSRPMessageType.RunspacePoolState,
)


def _read_back(pool: psrpcore_session._Pool, reader: Any, chunks: list[bytes]) -> list[tuple[Any, ...]]:
    """Every message ``reader`` hands to _process_message, fed ``chunks`` one Receive at a time."""
    seen: list[tuple[Any, ...]] = []

    def record(message: PSRPMessage) -> object:
        seen.append((
            message.message_type, type(message.data), bytes(message.data), message.runspace_pool_id,
            message.pipeline_id, message.object_id, message.stream_type,
        ))  # fmt: skip
        return message

    pool._process_message = record  # type: ignore[method-assign]
    for chunk in chunks:
        reader(pool, chunk)
        while pool.next_event() is not None:
            pass
    return seen


def _psrpcore_reads(pool: psrpcore_session._Pool, chunk: bytes) -> None:
    pool.receive_data(PSRPPayload(chunk, StreamType.default, None))
    pool.next_event = lambda: RunspacePool.next_event(pool)  # type: ignore[method-assign]


@settings(max_examples=150, deadline=None)
@given(
    messages=st.lists(
        st.tuples(
            st.sampled_from(_MESSAGE_KINDS),
            st.binary(max_size=200),
            st.booleans(),  # a byte order mark before the data
            st.sampled_from([None, uuid.UUID(int=7), uuid.UUID("0f0e0d0c-0b0a-0908-0706-050403020100")]),
            st.integers(min_value=1, max_value=90),  # blob size of its fragments
        ),
        min_size=1,
        max_size=8,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=4),
)
def test_fragments_read_in_place_are_the_messages_psrpcore_reads(
    messages: list[tuple[PSRPMessageType, bytes, bool, uuid.UUID | None, int]], cuts: list[int]
) -> None:
    """Single- and multi-fragment messages, with and without a BOM, for the pool and for
    pipelines, split into Receives at fragment boundaries (a message may span Receives)."""
    rpid = uuid.UUID(int=0x1234)
    fragments: list[bytes] = []
    for object_id, (kind, data, bom, pid, blob) in enumerate(messages, start=1):
        body = create_message(False, kind, (b"\xef\xbb\xbf" if bom else b"") + data, rpid, pid)
        pieces = [body[i : i + blob] for i in range(0, len(body), blob)]
        for index, piece in enumerate(pieces):
            fragments.append(create_fragment(object_id, index, piece, end=index == len(pieces) - 1))
    bounds = sorted({min(c, len(fragments)) for c in cuts} | {0, len(fragments)})
    chunks = [b"".join(fragments[a:b]) for a, b in itertools.pairwise(bounds)]

    ours = _read_back(psrpcore_session._Pool(), lambda pool, chunk: pool.feed(chunk), chunks)
    theirs = _read_back(psrpcore_session._Pool(), _psrpcore_reads, chunks)
    assert ours == theirs
    assert len(ours) == len(messages)


def test_a_fragment_out_of_sequence_or_cut_short_is_an_error() -> None:
    body = create_message(False, PSRPMessageType.PipelineOutput, b"<S>x</S>", uuid.UUID(int=1))
    pool = psrpcore_session._Pool()
    with pytest.raises(PSRPCoreError, match="fragment id of 0 not 1"):
        pool.feed(create_fragment(1, 1, body))
    with pytest.raises(PSRPCoreError, match="longer than the data"):
        psrpcore_session._Pool().feed(create_fragment(1, 0, body)[:-1])
    with pytest.raises(PSRPCoreError, match="shorter than its header"):
        psrpcore_session._Pool().feed(create_fragment(1, 0, body)[:10])


def _server_opening() -> list[bytes]:
    """What psrpcore's own server answers a client pool's opening: SessionCapability,
    ApplicationPrivateData and RunspacePoolState, as the stdout of Receives."""
    client = psrpcore_session._Pool()
    client.open()
    server = ServerRunspacePool()
    opening = client.data_to_send()
    assert opening is not None
    server.receive_data(opening)
    while server.next_event() is not None:
        pass
    chunks = []
    while (answer := server.data_to_send()) is not None:
        chunks.append(bytes(answer.data))
    return chunks


def _opened(pool: psrpcore_session._Pool, chunks: list[bytes]) -> tuple[Any, ...]:
    pool.open()
    pool.data_to_send()
    kinds = []
    for chunk in chunks:
        pool.feed(chunk)
        while (event := pool.next_event()) is not None:
            kinds.append(type(event).__name__)
    their = pool.their_capability
    assert their is not None
    return (
        kinds, pool.state, str(their.protocolversion), str(their.PSVersion), str(their.SerializationVersion),
        pool.application_private_data, pool._min_runspaces, pool._max_runspaces,
    )  # fmt: skip


def test_a_pools_opening_is_deserialized_once_and_read_as_psrpcore_reads_it() -> None:
    chunks = _server_opening()
    reference = psrpcore_session._Pool()
    reference._process_message = (  # type: ignore[method-assign]
        lambda message: ClientRunspacePool._process_message(reference, message)
    )
    theirs = _opened(reference, chunks)
    psrpcore_session._POOL_MESSAGES._known.clear()
    first = _opened(psrpcore_session._Pool(), chunks)
    cached = dict(psrpcore_session._POOL_MESSAGES._known)
    second = _opened(psrpcore_session._Pool(), chunks)
    assert first == second == theirs
    assert theirs[0] == ["SessionCapabilityEvent", "ApplicationPrivateDataEvent", "RunspacePoolStateEvent"]
    assert {kind for kind, _, _ in cached} == {
        PSRPMessageType.SessionCapability,
        PSRPMessageType.ApplicationPrivateData,
        PSRPMessageType.RunspacePoolState,
    }
    assert psrpcore_session._POOL_MESSAGES._known == cached  # the second pool added nothing


class _Answers:
    """A Connection stand-in for Shell: answers each post with the text ``reply`` makes of
    the request's message id."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.settings = ConnectionSettings(
            https=False, host="127.0.0.1", port=1, path="wsman", auth="ntlm", username=None,
            password=None, seal=False, verify=False,
        )  # fmt: skip

    def post(self, message: bytes, timeout: float) -> bytes:
        found = re.search(rb"<wsa:MessageID>uuid:([^<]+)</wsa:MessageID>", message)
        assert found is not None
        return bytes(self.reply(found.group(1).decode()))


@pytest.mark.parametrize(
    "reply",
    [
        lambda mid: _receive_response(f"uuid:{mid}", ""),  # read by the pattern
        lambda mid: _receive_response(f"uuid:{mid}", "<!-- x -->"),  # by ElementTree
    ],
)
def test_a_response_that_is_not_read_must_still_relate_to_its_request(reply: Any) -> None:
    shell = wsman.Shell(_Answers(reply), "http://x", max_envelope_size=153600, operation_timeout=20)  # type: ignore[arg-type]
    shell.command("C", b"args", 5.0)
    shell.signal("C", wsman.SIGNAL_TERMINATE, 5.0)
    shell.send("C", b"data", 5.0)
    shell.delete(5.0)
    for other in (
        _Answers(lambda mid: _receive_response("uuid:OTHER", "")),
        _Answers(lambda mid: _receive_response("uuid:OTHER", "<!-- x -->")),
    ):
        stray = wsman.Shell(other, "http://x", max_envelope_size=153600, operation_timeout=20)  # type: ignore[arg-type]
        with pytest.raises(psrp_exc.WinRMError, match="does not relate"):
            stray.command("C", b"args", 5.0)
        with pytest.raises(psrp_exc.WinRMError, match="does not relate"):
            stray.signal("C", wsman.SIGNAL_TERMINATE, 5.0)
        with pytest.raises(psrp_exc.WinRMError, match="does not relate"):
            stray.delete(5.0)
