"""Loopback DNS servers that serve a :class:`~mock_remoting.dns.world.DnsWorld` over real sockets.

Each DNS server address of the scenario ("10.0.0.10", "8.8.8.8", ...) gets one port on
127.0.0.1, with a UDP and a TCP listener on the same port number, as a real server listens on
53/udp and 53/tcp. :meth:`DnsResponders.start` returns the address map that exfix reads from
the inventory (``exfix_dns_address_map``) and the emulated hosts use for ``Resolve-DnsName``.

One thread runs a selector loop over every socket; the answers come from
:meth:`DnsWorld.answer`, so the sockets add only what the wire needs: message ids, flags,
EDNS, truncation, and silence for servers that do not reply.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from mock_remoting.dns.world import NO_REPLY, DnsAnswer, DnsRecord, DnsWorld, normalize_name

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# Plain DNS over UDP is limited to 512 bytes (RFC 1035 4.2.1); with EDNS we advertise 1232,
# the size the 2020 DNS flag day settled on to avoid IP fragmentation.
CLASSIC_UDP_SIZE = 512
EDNS_UDP_SIZE = 1232
_MAX_TCP_BUFFER = 2 * (65535 + 2)
_MAX_TCP_CONNECTIONS = 512
_HEADER_SIZE = 12
# Query texts and replies kept by DnsResponders._respond (each a few hundred bytes); beyond
# this many, new ones are answered without being kept.
_MAX_KEPT = 8192

_RCODES = {
    "NOERROR": dns.rcode.NOERROR,
    "NXDOMAIN": dns.rcode.NXDOMAIN,
    "SERVFAIL": dns.rcode.SERVFAIL,
}


@dataclass(eq=False)
class _TcpConnection:
    sock: socket.socket
    server: str
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)
    last_activity: float = field(default_factory=time.monotonic)
    closing: bool = False  # the peer has finished sending: close once outbuf is flushed


class DnsResponders:
    """Every DNS server of a :class:`DnsWorld`, listening on 127.0.0.1. A context manager.

    ``tcp_idle_timeout`` is how long a TCP connection may sit without a complete exchange
    before the server closes it; a server that does not reply keeps the connection open and
    silent until then (or until :meth:`stop`), so the client's own timeout fires first.
    """

    def __init__(self, world: DnsWorld, *, tcp_idle_timeout: float = 10.0) -> None:
        self.world = world
        self.tcp_idle_timeout = tcp_idle_timeout
        self._address_map: dict[str, str] = {}
        self._udp: dict[socket.socket, str] = {}
        self._tcp_listeners: dict[socket.socket, str] = {}
        self._connections: dict[socket.socket, _TcpConnection] = {}
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._counts_lock = threading.Lock()
        self._selector: selectors.BaseSelector | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        # Loop thread only: see _respond.
        self._questions: dict[bytes, tuple[str, str, dns.name.Name]] = {}
        self._replies: dict[tuple[bytes, bool, DnsAnswer, bool], bytes] = {}

    # --- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> DnsResponders:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> dict[str, str]:
        """Bind every server address to its own loopback port and start serving.

        Returns the address map ``{"10.0.0.10": "127.0.0.1:53123", ...}``.
        """
        if self._thread is not None:
            raise RuntimeError("DNS responders are already running")
        self._stopping.clear()
        selector = selectors.DefaultSelector()
        self._selector = selector
        try:
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            selector.register(self._wake_r, selectors.EVENT_READ)
            for server in self.world.server_addresses:
                udp, tcp = _bind_pair()
                self._udp[udp] = server
                self._tcp_listeners[tcp] = server
                selector.register(udp, selectors.EVENT_READ)
                selector.register(tcp, selectors.EVENT_READ)
                self._address_map[server] = f"{LOOPBACK}:{udp.getsockname()[1]}"
        except BaseException:
            self._close_all()
            raise
        self._thread = threading.Thread(target=self._run, name="lab-dns", daemon=True)
        self._thread.start()
        return dict(self._address_map)

    def stop(self) -> None:
        """Stop serving and close every socket. Safe to call twice or before start()."""
        thread = self._thread
        if thread is not None:
            self._stopping.set()
            if self._wake_w is not None:
                with contextlib.suppress(OSError):
                    self._wake_w.send(b"\0")
            thread.join(timeout=10)
            self._thread = None
        self._close_all()

    @property
    def address_map(self) -> dict[str, str]:
        """Server address -> ``"127.0.0.1:port"`` (empty when not running)."""
        return dict(self._address_map)

    @property
    def counters(self) -> dict[str, dict[str, int]]:
        """Queries received so far, per server address and query type (``{"10.0.0.10":
        {"A": 3, "SRV": 1}}``), whether or not the server answered them."""
        result: dict[str, dict[str, int]] = {}
        with self._counts_lock:
            for (server, rdtype), count in self._counts.items():
                result.setdefault(server, {})[rdtype] = count
        return result

    def query_count(self, server: str, rdtype: str | None = None) -> int:
        """Queries ``server`` received, of one type or of all types."""
        with self._counts_lock:
            return sum(count for (name, kind), count in self._counts.items()
                       if name == server and (rdtype is None or kind == rdtype.upper()))

    def reset_counters(self) -> None:
        with self._counts_lock:
            self._counts.clear()

    # --- the loop -----------------------------------------------------------------------

    def _run(self) -> None:
        selector = self._selector
        assert selector is not None
        while not self._stopping.is_set():
            try:
                events = selector.select(timeout=0.5)
            except OSError:  # a socket closed under us while stopping
                if self._stopping.is_set():
                    break
                raise
            for key, mask in events:
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    self._dispatch(sock, mask)
                except Exception:  # one bad packet or peer must never stop the server
                    log.exception("lab DNS: error while serving %s", sock)
                    if sock in self._connections:
                        self._drop(sock)
            self._expire_idle()

    def _dispatch(self, sock: socket.socket, mask: int) -> None:
        if sock is self._wake_r:
            with contextlib.suppress(OSError):
                sock.recv(64)
        elif sock in self._udp:
            self._serve_udp(sock, self._udp[sock])
        elif sock in self._tcp_listeners:
            self._accept(sock, self._tcp_listeners[sock])
        elif sock in self._connections:
            connection = self._connections[sock]
            if mask & selectors.EVENT_READ:
                self._read_tcp(connection)
            if sock in self._connections and mask & selectors.EVENT_WRITE:
                self._flush(connection)

    def _serve_udp(self, sock: socket.socket, server: str) -> None:
        try:
            wire, peer = sock.recvfrom(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # e.g. ICMP port unreachable reported on Linux from an earlier reply
            return
        reply = self._respond(server, wire, udp=True)
        if reply is not None:
            try:
                sock.sendto(reply, peer)
            except OSError as error:
                log.debug("lab DNS: cannot reply to %s: %s", peer, error)

    def _accept(self, listener: socket.socket, server: str) -> None:
        try:
            sock, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if len(self._connections) >= _MAX_TCP_CONNECTIONS:
            sock.close()
            return
        sock.setblocking(False)
        self._connections[sock] = _TcpConnection(sock, server)
        assert self._selector is not None
        self._selector.register(sock, selectors.EVENT_READ)

    def _read_tcp(self, connection: _TcpConnection) -> None:
        try:
            data = connection.sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(connection.sock)
            return
        if not data:
            connection.closing = True
            if not connection.outbuf:
                self._drop(connection.sock)
            return
        connection.last_activity = time.monotonic()
        connection.inbuf += data
        if len(connection.inbuf) > _MAX_TCP_BUFFER:
            self._drop(connection.sock)
            return
        # RFC 1035 4.2.2: each message is preceded by its two-byte length.
        while len(connection.inbuf) >= 2:
            size = int.from_bytes(connection.inbuf[:2], "big")
            if len(connection.inbuf) < 2 + size:
                break
            wire = bytes(connection.inbuf[2 : 2 + size])
            del connection.inbuf[: 2 + size]
            reply = self._respond(connection.server, wire, udp=False)
            if reply is not None:
                connection.outbuf += len(reply).to_bytes(2, "big") + reply
        if connection.outbuf:
            self._flush(connection)

    def _flush(self, connection: _TcpConnection) -> None:
        try:
            sent = connection.sock.send(connection.outbuf)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop(connection.sock)
            return
        del connection.outbuf[:sent]
        connection.last_activity = time.monotonic()
        if not connection.outbuf and connection.closing:
            self._drop(connection.sock)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if connection.outbuf else 0)
        assert self._selector is not None
        self._selector.modify(connection.sock, events)

    def _expire_idle(self) -> None:
        deadline = time.monotonic() - self.tcp_idle_timeout
        for sock, connection in list(self._connections.items()):
            if connection.last_activity < deadline:
                self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        self._connections.pop(sock, None)
        if self._selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
        sock.close()

    def _close_all(self) -> None:
        sockets = [*self._connections, *self._udp, *self._tcp_listeners, self._wake_r, self._wake_w]
        self._connections.clear()
        self._address_map.clear()
        self._udp.clear()
        self._tcp_listeners.clear()
        self._wake_r = self._wake_w = None
        for sock in sockets:
            if sock is not None:
                sock.close()
        if self._selector is not None:
            self._selector.close()
            self._selector = None

    # --- messages -----------------------------------------------------------------------

    def _respond(self, server: str, wire: bytes, *, udp: bool) -> bytes | None:
        """The wire reply to one query, or None to stay silent.

        Every query is counted and asked of the world (:meth:`DnsWorld.serve` counts the
        queries of an intermittent server, and a test may change a server between queries);
        what is kept is the work around it. A query's text after its 2-byte id is all that
        decides how it parses, and together with the world's answer all that decides the
        reply's bytes after the id: both are kept per text (a 200-host scan asks about 2,400
        queries of 260 texts), and the reply goes out with the query's own id. dnspython shuffles
        an RRset's records each time it renders one; a kept reply repeats the order of its first
        rendering, which carries no meaning either way (RFC 2181 section 5: an RRset is a set)."""
        body = wire[2:]
        known = self._questions.get(body)
        if known is None:
            return self._respond_parsed(server, wire, udp=udp)
        rdtype, qname, name = known
        self._count(server, rdtype)
        answer = self.world.serve(server, qname, rdtype)
        if answer.rcode == NO_REPLY:
            return None
        authoritative = self.world.is_authoritative(server, qname)
        key = (body, udp, answer, authoritative)
        reply = self._replies.get(key)
        if reply is None:
            reply = self._reply(dns.message.from_wire(wire), name, answer, authoritative, udp)
            self._keep_reply(key, reply)
        return wire[:2] + reply[2:]

    def _respond_parsed(self, server: str, wire: bytes, *, udp: bool) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            # Unparseable: answer FORMERR when there is at least a header to echo (RFC 1035
            # 4.1.1), never for something that claims to be a response (no reflection loops).
            if len(wire) < _HEADER_SIZE or wire[2] & 0x80:
                return None
            flags = dns.flags.QR | (int.from_bytes(wire[2:4], "big") & dns.flags.RD)
            return wire[:2] + (flags | dns.rcode.FORMERR).to_bytes(2, "big") + bytes(8)
        if query.flags & dns.flags.QR:
            return None

        response = dns.message.make_response(query, recursion_available=True,
                                             our_payload=EDNS_UDP_SIZE)
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return self._render(response, query, udp)
        if query.edns > 0:
            # RFC 6891 6.1.3: only EDNS version 0 exists.
            response.set_rcode(dns.rcode.BADVERS)
            return self._render(response, query, udp)
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return self._render(response, query, udp)

        question = query.question[0]
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self._count(server, rdtype)
        if question.rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)
            return self._render(response, query, udp)

        qname = question.name.to_text(omit_final_dot=True)
        if len(self._questions) < _MAX_KEPT:
            self._questions[wire[2:]] = (rdtype, qname, question.name)
        answer = self.world.serve(server, qname, rdtype)
        if answer.rcode == NO_REPLY:
            return None
        authoritative = self.world.is_authoritative(server, qname)
        reply = self._reply(query, question.name, answer, authoritative, udp)
        self._keep_reply((wire[2:], udp, answer, authoritative), reply)
        return reply

    def _reply(self, query: dns.message.Message, name: dns.name.Name, answer: DnsAnswer,
               authoritative: bool, udp: bool) -> bytes:
        """The reply to a standard query (one IN question) that the world answered."""
        response = dns.message.make_response(query, recursion_available=True,
                                             our_payload=EDNS_UDP_SIZE)
        if authoritative:
            response.flags |= dns.flags.AA
        try:
            _fill(response, name, answer)
        except Exception:
            log.exception("lab DNS: cannot encode the answer to %s %s", name, answer)
            response.answer = []
            response.set_rcode(dns.rcode.SERVFAIL)
        return self._render(response, query, udp)

    def _keep_reply(self, key: tuple[bytes, bool, DnsAnswer, bool], reply: bytes) -> None:
        if len(self._replies) < _MAX_KEPT:
            self._replies[key] = reply

    def _count(self, server: str, rdtype: str) -> None:
        with self._counts_lock:
            self._counts[(server, rdtype)] += 1

    @staticmethod
    def _render(response: dns.message.Message, query: dns.message.Message, udp: bool) -> bytes:
        if not udp:
            return response.to_wire(max_size=65535)
        limit = CLASSIC_UDP_SIZE if query.edns < 0 else max(CLASSIC_UDP_SIZE, min(query.payload,
                                                                               EDNS_UDP_SIZE))
        # Too big for the client's buffer: send what fits with TC set, and the client retries
        # over TCP (RFC 1035 4.2.1, RFC 7766).
        return response.to_wire(max_size=limit, prefer_truncation=True)


def _fill(response: dns.message.Message, qname: dns.name.Name, answer: DnsAnswer) -> None:
    response.set_rcode(_RCODES[answer.rcode])
    wanted = normalize_name(qname.to_text())
    for (owner, rdtype), records in _group(answer.records):
        # Echo the owner name as the client spelled it when it is the question (0x20 mixing).
        name = qname if normalize_name(owner) == wanted else dns.name.from_text(owner)
        rrset = dns.rrset.from_text_list(name, min(r.ttl for r in records), dns.rdataclass.IN,
                                         rdtype, [r.data for r in records])
        response.answer.append(rrset)


def _group(records: tuple[DnsRecord, ...]) -> Iterator[tuple[tuple[str, str], list[DnsRecord]]]:
    groups: dict[tuple[str, str], list[DnsRecord]] = {}
    for record in records:
        groups.setdefault((record.name, record.rdtype), []).append(record)
    yield from groups.items()


def _bind_pair(attempts: int = 50) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on the same free loopback port."""
    last_error: OSError | None = None
    for _ in range(attempts):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind((LOOPBACK, 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((LOOPBACK, port))
                tcp.listen(64)
            except OSError as error:  # the TCP port is taken: try another UDP port
                tcp.close()
                raise error
        except OSError as error:
            udp.close()
            last_error = error
            continue
        udp.setblocking(False)
        tcp.setblocking(False)
        return udp, tcp
    raise OSError(f"no free loopback port for a UDP+TCP DNS listener: {last_error}")
