"""The lab's protocol server: every host's listeners on one asyncio event loop.

One loop thread serves all listening sockets and connections of all hosts (200 hosts means
200-400 listeners, not 200 threads); invocations run on a small thread pool so that a
``Start-Sleep`` or a slow emulated cmdlet never blocks other hosts. Per host the server keeps
its shells, its fault state and a notifier that wakes the Receives waiting on it.

HTTP details that matter to real clients:

* keep-alive: NTLM authenticates the TCP connection and its session keys seal the messages,
  so connections are never closed by the server while a client keeps them;
* each response (status line, headers, body) goes out in one ``write`` on a socket with
  TCP_NODELAY; a response split over two segments waits for the client's delayed ACK
  (~40 ms on Linux) before the second one leaves;
* listen backlog 512 (not 5): a fleet scan opens hundreds of connections at once;
* bind loopback only: 127.0.0.1 on free ports (the default, what parallel tests need), or
  one 127.x.y.z address per host on the real ports (:class:`Listener`, chosen by
  ``mock_remoting.lab``), so that an inventory looks like one of real servers.

File descriptors: one per listening socket, one per open connection, a few for the loop and
the DNS responders. :func:`raise_descriptor_limit` raises RLIMIT_NOFILE's soft limit to the
hard one before binding and refuses, with the numbers, a plan that cannot fit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import errno
import ipaddress
import re
import resource
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from mock_remoting.backend import Endpoint, HostRuntime, SessionRuntimes
from mock_remoting.server import kerberos as kerberos_store
from mock_remoting.server import ntlm_store, wsman
from mock_remoting.server.auth import AuthState, ConnectionAuth
from mock_remoting.server.clixml_cache import ClixmlCache, ParsedCache
from mock_remoting.server.counters import RequestCounters
from mock_remoting.server.faults import FaultKind, FaultSpec, HostFaults, parse_faults
from mock_remoting.server.kerberos import KerberosKeytab
from mock_remoting.server.psrp import PsrpShell
from mock_remoting.server.shells import Shell, ShellContext
from mock_remoting.server.tls import LabAuthority, LabCertificate
from mock_remoting.server.winrs import WinrsShell
from mock_remoting.server.wsman import Request, WSManFault

BIND = "127.0.0.1"
EXCHANGE_URI = "http://schemas.microsoft.com/powershell/Microsoft.Exchange"
OS_URI = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
CMD_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
PS_URI_PREFIX = "http://schemas.microsoft.com/powershell/"
RESOURCE_ENDPOINTS = {EXCHANGE_URI.lower(): "exchange", OS_URI.lower(): "os", CMD_URI.lower(): "winrs"}
PATHS = {"/powershell": "exchange", "/wsman": "wsman"}

# Concurrent shells per user before the quota fault: Exchange's default throttling policy
# allows 18 (PowerShellMaxConcurrency); WinRM's MaxShellsPerUser defaults to 30 since 2012.
SHELL_QUOTA = {"exchange": 18, "wsman": 30}

_MAX_BODY = 32 * 1024 * 1024
_MAX_RECEIVE_WAIT = 3600.0
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_ENCRYPTED_CT = (
    'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"'
)
_SOAP_CT = "application/soap+xml;charset=UTF-8"
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
}


# Descriptors kept free beyond the listening sockets: the connections of a scan (two per host
# in flight, hundreds with many forks), the DNS responders, the event loop, log files.
RESERVED_DESCRIPTORS = 1024


class ListenError(OSError):
    """A listening socket could not be opened; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Listener:
    """One listening socket of a host: ``port`` (0: a free one), TLS or not, and the
    endpoints it serves (``"exchange"`` for /PowerShell, ``"wsman"`` for /wsman). A real
    server serves /PowerShell from IIS on 80/443 and /wsman from WinRM on 5985/5986; the lab
    can also serve both from one socket."""

    port: int = 0
    tls: bool = False
    paths: tuple[str, ...] = ("exchange", "wsman")


def _serves(runtime: SessionRuntimes, uri: str) -> bool:
    if not uri.lower().startswith(PS_URI_PREFIX):
        return False
    return uri[len(PS_URI_PREFIX):].lower() in {c.lower() for c in runtime.configurations()}


@dataclass(frozen=True, slots=True)
class HostEndpoint:
    """Where one emulated host listens: ``host`` (its address), ``port`` / ``https_port`` for
    /wsman and ``exchange_port`` / ``exchange_https_port`` for /PowerShell (the same ports when
    one socket serves both). The HTTPS ports are None when HTTPS is off."""

    name: str
    port: int
    https_port: int | None = None
    host: str = BIND
    exchange_port: int | None = None
    exchange_https_port: int | None = None


def raise_descriptor_limit(needed: int) -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit (an unprivileged process may) and
    return it. Raises ListenError when ``needed`` descriptors do not fit under the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = soft if soft != resource.RLIM_INFINITY else 1 << 20
    if needed > limit:
        raise ListenError(
            errno.EMFILE,
            f"needs {needed} file descriptors and RLIMIT_NOFILE allows {limit} (hard limit {hard}); "
            "raise the hard limit (ulimit -Hn, LimitNOFILE=) or serve fewer hosts or sockets",
        )
    return limit


@dataclass(frozen=True, slots=True)
class Exchange:
    """One WSMan request and its answer as the server saw them (decrypted), for recorders."""

    host: str
    path: str
    status: int
    request: bytes
    response: bytes


Recorder = Callable[[Exchange], None]


class _Notifier:
    """Wakes every coroutine waiting on a host. Loop thread only."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


@dataclass
class _Host:
    runtime: HostRuntime
    name: str
    faults: HostFaults
    shells: dict[str, Shell] = field(default_factory=dict)
    notifier: _Notifier | None = None
    address: str = BIND
    listeners: tuple[Listener, ...] = ()
    bound: dict[tuple[bool, str], int] = field(default_factory=dict)  # (tls, path kind) -> port
    ctx: ShellContext | None = None
    cert: LabCertificate | None = None


def _host_names(fqdn: str) -> tuple[str, ...]:
    """The names a host's certificate carries: its FQDN and its short name, as an Exchange
    server's certificate from an enterprise CA usually does."""
    short = fqdn.split(".", 1)[0]
    return (fqdn, short) if short != fqdn else (fqdn,)


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = _SOAP_CT
    drop: bool = False
    hang: bool = False
    close: bool = False


class LabServer:
    """WS-Management/PSRP/WinRS server for a set of emulated hosts.

    Usage: ``add_host`` for each runtime, then ``start()``; ``endpoint(name)`` says where a
    host listens; ``stop()`` ends everything. Thread-safe from the caller's side.
    """

    def __init__(
        self,
        *,
        https: bool = False,
        authority: LabAuthority | None = None,
        certificate: LabCertificate | None = None,
        latency_ms: float = 0.0,
        workers: int = 16,
        recorder: Recorder | None = None,
        cache_answers: bool = True,
        kerberos: KerberosKeytab | None = None,
    ) -> None:
        """``kerberos``: accept Kerberos tickets for ``HTTP/<host>`` with this keytab (NTLM and
        Basic are accepted either way)."""
        self.https = https
        # Serialized answers the host runtimes vouch for (clixml_cache.py); off, every answer
        # is serialized anew (the A/B of bench/lab_throughput.py --no-cache).
        self.clixml: ClixmlCache | None = ClixmlCache() if cache_answers else None
        self.parsed: ParsedCache | None = ParsedCache() if cache_answers else None
        # HTTPS: ``certificate`` is served by every host when given; otherwise each host gets
        # its own from ``authority`` (a fresh LabAuthority when none is given), see tls.py.
        if https and certificate is None and authority is None:
            authority = LabAuthority()
        self.authority = authority
        self._certificate = certificate
        self.latency_ms = latency_ms
        self.kerberos = kerberos
        self.counters = RequestCounters()
        # Completed and refused handshakes (host, "auth", "kerberos" | "ntlm" | "refused-..."),
        # who authenticated (host, "client", principal), the SPN a ticket was for per path
        # (host, "spn-exchange" | "spn-wsman", principal), and requests that came sealed (host,
        # "sealed", mechanism). Apart from ``counters``,
        # which count requests.
        self.authentications = RequestCounters()
        self.recorder = recorder
        self._workers = workers
        self._hosts: dict[str, _Host] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._stopping: asyncio.Event | None = None
        self._ntlm = False
        self._keytab = False

    # -- set-up -----------------------------------------------------------------------------

    def add_host(
        self,
        runtime: HostRuntime,
        faults: Mapping[str, Any] | None = None,
        *,
        address: str = BIND,
        listeners: tuple[Listener, ...] | None = None,
    ) -> None:
        """Register a host (before :meth:`start`) on ``address`` (a loopback address) with its
        ``listeners`` (default: one free port for both endpoints, another for TLS with
        ``https``). Raises FaultSpecError for a bad fault mapping."""
        if self._loop is not None:
            raise RuntimeError("add hosts before start()")
        name = runtime.name
        if name.lower() in self._hosts:
            raise ValueError(f"host {name!r} is registered twice")
        if not ipaddress.IPv4Address(address).is_loopback:
            raise ValueError(f"the lab listens on loopback only, not on {address}")
        if listeners is None:
            listeners = (Listener(),) + ((Listener(tls=True),) if self.https else ())
        if any(listener.tls for listener in listeners) and not self.https:
            raise ValueError("a TLS listener needs LabServer(https=True)")
        host = _Host(runtime, name, HostFaults(self.latency_ms), address=address, listeners=listeners)
        host.faults.set(parse_faults(faults))
        self._hosts[name.lower()] = host

    @property
    def listener_count(self) -> int:
        return sum(len(host.listeners) for host in self._hosts.values())

    def start(self, timeout: float = 60.0) -> None:
        """Open every listener. Raises ListenError (address in use, no permission for a port
        below 1024, too few file descriptors) with nothing left open."""
        if self._loop is not None:
            return
        raise_descriptor_limit(self.listener_count + RESERVED_DESCRIPTORS)
        if self.kerberos is not None:
            # KeytabError (a ValueError) before anything listens: a host without its key
            # could never authenticate a Kerberos client.
            self.kerberos.check_hosts(tuple(host.name for host in self._hosts.values()))
            kerberos_store.acquire(self.kerberos.keytab)
            self._keytab = True
        ntlm_store.acquire()
        self._ntlm = True
        self._executor = concurrent.futures.ThreadPoolExecutor(
            self._workers, thread_name_prefix="exfix-lab-run"
        )
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="exfix-lab-loop", daemon=True)
        self._thread.start()
        ready.wait(timeout)
        try:
            sockets = self._bind_all()
            # Registering 10,000 listeners with the loop takes about a second, and ten times
            # that on a loaded machine: the limit grows with the count (a fixed 30 s made a
            # 10,000-host lab fail to start at load average 12).
            limit = timeout + 0.01 * len(sockets)
            asyncio.run_coroutine_threadsafe(self._listen(sockets), loop).result(limit)
        except BaseException:
            self.stop()
            raise

    def _bind_all(self) -> list[tuple[_Host, Listener, socket.socket]]:
        """Bind and listen on every socket, in the caller's thread (plain system calls: for
        10,000 hosts this is the bulk of start-up, and asyncio's start_server per socket would
        add name resolution and a task per call). On any failure every socket is closed."""
        opened: list[tuple[_Host, Listener, socket.socket]] = []
        try:
            for host in self._hosts.values():
                for listener in host.listeners:
                    opened.append((host, listener, _listening_socket(host.address, listener.port)))
        except BaseException:
            for _, _, sock in opened:
                sock.close()
            raise
        return opened

    async def _listen(self, sockets: list[tuple[_Host, Listener, socket.socket]]) -> None:
        self._stopping = asyncio.Event()
        assert self._loop is not None and self._executor is not None
        for host in self._hosts.values():
            host.notifier = _Notifier()
            host.ctx = ShellContext(
                host.runtime, self._executor, self._loop, host.notifier.notify, self.clixml, self.parsed
            )
        for host in self._hosts.values():
            if self.https and any(listener.tls for listener in host.listeners):
                if self._certificate is not None:
                    host.cert = self._certificate
                else:
                    assert self.authority is not None
                    host.cert = self.authority.issue(_host_names(host.name))
        pending = list(sockets)
        try:
            while pending:
                host, listener, sock = pending.pop(0)
                context = host.cert.context if listener.tls and host.cert is not None else None
                server = await asyncio.start_server(
                    partial(self._serve, host, listener),
                    sock=sock,
                    backlog=512,
                    ssl=context,
                    limit=1 << 20,
                )
                self._servers.append(server)
                port = sock.getsockname()[1]
                for kind in listener.paths:
                    host.bound[(listener.tls, kind)] = port
        finally:
            for _, _, sock in pending:
                sock.close()

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        if loop.is_running():
            with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        if not loop.is_running():
            loop.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._loop = None
        self._thread = None
        if self._ntlm:
            ntlm_store.release()
            self._ntlm = False
        if self._keytab:
            kerberos_store.release()
            self._keytab = False

    async def _shutdown(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        for server in self._servers:
            server.close()
        for host in self._hosts.values():
            for shell in host.shells.values():
                shell.close()
            host.shells.clear()
            if host.notifier is not None:
                host.notifier.notify()
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.sleep(0)
        self._servers.clear()

    def __enter__(self) -> LabServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- queries and run-time control -------------------------------------------------------

    def _host(self, name: str) -> _Host:
        try:
            return self._hosts[name.lower()]
        except KeyError:
            raise KeyError(f"no lab host named {name!r}") from None

    def endpoint(self, name: str) -> HostEndpoint:
        return self._endpoint(self._host(name))

    @staticmethod
    def _endpoint(host: _Host) -> HostEndpoint:
        bound = host.bound
        return HostEndpoint(
            host.name,
            bound.get((False, "wsman"), 0),
            bound.get((True, "wsman")),
            host.address,
            bound.get((False, "exchange")),
            bound.get((True, "exchange")),
        )

    @property
    def endpoints(self) -> tuple[HostEndpoint, ...]:
        return tuple(self._endpoint(h) for h in self._hosts.values())

    def inject(self, name: str, fault: Mapping[str, Any]) -> None:
        """Replace a host's faults (schema: faults.py). Raises FaultSpecError."""
        self._host(name).faults.set(parse_faults(fault))

    def clear_faults(self, name: str) -> None:
        self._host(name).faults.clear()

    def faults(self, name: str) -> FaultSpec:
        return self._host(name).faults.spec

    def open_shells(self, name: str) -> int:
        return len(self._host(name).shells)

    # -- HTTP -------------------------------------------------------------------------------

    async def _serve(
        self, host: _Host, listener: Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        tls = listener.tls
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._writers.add(writer)
        auth = ConnectionAuth(
            host.cert.channel_binding_data if tls and host.cert else None,
            self.kerberos.accepted(host.name) if self.kerberos is not None else frozenset(),
            credssp=tls and host.cert is not None,
        )
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (
                    asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError,
                    ConnectionError,
                    ssl.SSLError,
                ):
                    return
                request_line, _, header_text = head.decode("latin-1").partition("\r\n")
                parts = request_line.split(" ")
                if len(parts) != 3:
                    await self._write(writer, _Reply(400, close=True))
                    return
                method, target, _version = parts
                headers: dict[str, str] = {}
                for line in header_text.split("\r\n"):
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    await self._write(writer, _Reply(411, close=True))
                    return
                try:
                    length = int(headers.get("content-length", "0"))
                except ValueError:
                    length = -1
                if length < 0 or length > _MAX_BODY:
                    await self._write(writer, _Reply(413, close=True))
                    return
                try:
                    body = await reader.readexactly(length)
                except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                    return
                reply = await self._handle(host, listener, auth, method, target, headers, body)
                if reply.drop:
                    writer.transport.abort()
                    return
                if reply.hang:
                    assert self._stopping is not None
                    await self._stopping.wait()
                    return
                close = reply.close or headers.get("connection", "").lower() == "close"
                await self._write(writer, reply, close)
                if close:
                    return
        except (ConnectionError, ssl.SSLError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, reply: _Reply, close: bool = False) -> None:
        lines = [
            f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Error')}",
            "Server: Microsoft-HTTPAPI/2.0",
        ]
        if reply.content_type and reply.body:
            lines.append(f"Content-Type: {reply.content_type}")
        lines.extend(f"{name}: {value}" for name, value in reply.headers)
        lines.append(f"Content-Length: {len(reply.body)}")
        if close:
            lines.append("Connection: close")
        # One write: head and body leave in the same segment(s); see the module docstring.
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body)
        await writer.drain()

    async def _handle(
        self,
        host: _Host,
        listener: Listener,
        auth: ConnectionAuth,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
    ) -> _Reply:
        tls = listener.tls
        path = target.split("?", 1)[0].rstrip("/").lower()
        if method != "POST":
            return _Reply(405, headers=(("Allow", "POST"),))
        # A path this socket does not serve is not there: IIS on port 80 has no /wsman, and
        # WinRM on 5985 no /PowerShell.
        if path not in PATHS or PATHS[path] not in listener.paths:
            return _Reply(404)
        result = auth.check(headers.get("authorization"))
        if result.refused is not None:
            self.authentications.add(host.name, "auth", f"refused-{result.refused}")
        elif result.completed is not None:
            self.authentications.add(host.name, "auth", result.completed)
            self.authentications.add(host.name, "client", auth.client_principal or "?")
            if auth.service_principal is not None:
                self.authentications.add(host.name, f"spn-{PATHS[path]}", auth.service_principal)
        if result.state is not AuthState.OK:
            self.counters.add(host.name, "http", "auth")
            return _Reply(401, headers=result.headers)
        if not body:
            # The empty POST pypsrp sends to set up message encryption, or a bare handshake.
            self.counters.add(host.name, "http", "auth")
            return _Reply(200, headers=result.headers)
        content_type = headers.get("content-type", "")
        encrypted = content_type.lower().startswith("multipart/encrypted")
        if encrypted:
            match = _BOUNDARY.search(content_type)
            if auth.encryption is None or match is None:
                return _Reply(400, close=True)
            try:
                plain = auth.encryption.unwrap_message(body, match.group(1))
            except Exception:
                return _Reply(400, close=True)
            self.authentications.add(host.name, "sealed", auth.mechanism or "unknown")
        elif content_type.lower().startswith("multipart/"):
            return _Reply(415)
        else:
            plain = body
        status, response, action = await self._wsman(host, tls, auth, PATHS[path], plain)
        if action is not None:
            return action
        if self.recorder is not None:
            self.recorder(Exchange(host.name, path, status, plain, response))
        if encrypted and auth.encryption is not None:
            _, sealed = auth.encryption.wrap_message(response)
            return _Reply(status, sealed, result.headers, _ENCRYPTED_CT)
        return _Reply(status, response, result.headers)

    # -- WS-Management ----------------------------------------------------------------------

    async def _wsman(
        self, host: _Host, tls: bool, auth: ConnectionAuth, path_kind: str, data: bytes
    ) -> tuple[int, bytes, _Reply | None]:
        try:
            request = wsman.parse_request(data)
        except WSManFault as fault:
            self.counters.add(host.name, "http", "invalid")
            return 500, wsman.fault_response("", fault), None
        shell = host.shells.get((request.shell_id or "").upper()) if request.shell_id else None
        if shell is not None:
            endpoint = shell.endpoint
        elif isinstance(host.runtime, SessionRuntimes) and _serves(host.runtime, request.resource_uri):
            endpoint = "os"  # a JEA configuration: the OS endpoint, for counters and faults
        else:
            endpoint = RESOURCE_ENDPOINTS.get(request.resource_uri.lower(), "unknown")
        action = request.action or request.action_uri.rsplit("/", 1)[-1] or "unknown"
        self.counters.add(host.name, endpoint, action)
        decision = host.faults.decide(action, endpoint)
        if decision.delay_s > 0:
            await asyncio.sleep(decision.delay_s)
        if decision.kind is FaultKind.HTTP_401:
            auth.refuse_next_handshake()
            return 0, b"", _Reply(401, headers=auth.challenges())
        if decision.kind is FaultKind.HTTP_500:
            return 0, b"", _Reply(500)
        if decision.kind is FaultKind.HANG:
            return 0, b"", _Reply(hang=True)
        if decision.kind is FaultKind.DROP:
            return 0, b"", _Reply(drop=True)
        try:
            if decision.kind is FaultKind.QUOTA:
                raise wsman.quota_exceeded(SHELL_QUOTA["exchange" if path_kind == "exchange" else "wsman"])
            if request.size > wsman.SERVER_MAX_ENVELOPE:
                raise wsman.envelope_too_large(wsman.SERVER_MAX_ENVELOPE)
            body = await self._dispatch(host, tls, path_kind, request)
            return 200, wsman.response(request, body), None
        except WSManFault as fault:
            return 500, wsman.fault_response(request.message_id, fault), None

    async def _dispatch(self, host: _Host, tls: bool, path_kind: str, request: Request) -> str:
        if request.action is None:
            raise wsman.action_not_supported(request.action_uri)
        if request.action == "Create":
            return self._create(host, tls, path_kind, request)
        shell_id = request.shell_id or ""
        shell = host.shells.get(shell_id.upper())
        if shell is None:
            raise wsman.unknown_shell(shell_id)
        assert host.notifier is not None
        if request.action == "Command":
            body = shell.command(request)
        elif request.action == "Send":
            body = shell.send(request)
        elif request.action == "Signal":
            body = shell.signal(request)
        elif request.action == "Receive":
            body = await self._receive(host, shell, request)
        else:  # Delete: pending Receives on the shell are answered (aborted) at once
            shell.close()
            host.shells.pop(shell_id.upper(), None)
            body = ""
        host.notifier.notify()
        return body

    def _create(self, host: _Host, tls: bool, path_kind: str, request: Request) -> str:
        uri = request.resource_uri
        kind = RESOURCE_ENDPOINTS.get(uri.lower())
        runtime = host.runtime
        # A JEA session configuration is one more PowerShell resource at /wsman.
        if kind is None and isinstance(runtime, SessionRuntimes) and _serves(runtime, uri):
            kind = "os"
        allowed = ("exchange",) if path_kind == "exchange" else ("os", "winrs")
        if kind not in allowed:
            raise wsman.unknown_resource(uri)
        assert host.ctx is not None
        ctx = host.ctx
        if isinstance(runtime, SessionRuntimes):
            configuration = "cmd" if kind == "winrs" else uri[len(PS_URI_PREFIX):]
            session = runtime.session_runtime(configuration)
            if session is None:
                raise wsman.access_denied()
            ctx = dataclasses.replace(ctx, runtime=session)
        group = "exchange" if path_kind == "exchange" else "wsman"
        in_group = sum(1 for s in host.shells.values() if (s.endpoint == "exchange") == (group == "exchange"))
        if in_group >= SHELL_QUOTA[group]:
            raise wsman.quota_exceeded(SHELL_QUOTA[group])
        body = request.require_body("Create without rsp:Shell")
        shell_id = (body.get("ShellId") or str(uuid.uuid4())).upper()
        if shell_id in host.shells:
            raise WSManFault(
                None, "w:AlreadyExists", f"A shell with ShellId {shell_id} already exists.", sender=True
            )
        inputs = body.findtext("rsp:InputStreams", "", wsman.NS).strip()
        outputs = body.findtext("rsp:OutputStreams", "", wsman.NS).strip()
        shell: Shell
        if kind == "winrs":
            shell = WinrsShell(ctx, shell_id, inputs, outputs)
        else:
            creation = wsman.child(body, "pwsh", "creationXml")
            if creation is None or not (creation.text or "").strip():
                raise wsman.invalid_request("PSRP Create without creationXml")
            endpoint = Endpoint.EXCHANGE if kind == "exchange" else Endpoint.OS
            psrp = PsrpShell(ctx, shell_id, uri, endpoint, request.max_envelope_size)
            psrp.open(creation.text or "")
            shell = psrp
        host.shells[shell_id] = shell
        scheme = "https" if tls else "http"
        port = host.bound.get((tls, path_kind), 0)
        address = f"{scheme}://{host.address}:{port}/{'PowerShell' if path_kind == 'exchange' else 'wsman'}"
        return wsman.create_body(address, uri, shell_id, shell.input_streams, shell.output_streams)

    async def _receive(self, host: _Host, shell: Shell, request: Request) -> str:
        body = request.body
        desired = wsman.child(body, "rsp", "DesiredStream") if body is not None else None
        command_id = desired.get("CommandId") if desired is not None else None
        budget = wsman.stream_budget(request.max_envelope_size)
        deadline = time.monotonic() + min(request.operation_timeout, _MAX_RECEIVE_WAIT)
        assert host.notifier is not None
        while True:
            if host.shells.get(shell.shell_id) is not shell:
                raise wsman.operation_aborted()
            poll = shell.poll(command_id, budget)
            if poll is not None:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise wsman.operation_timeout()
            await host.notifier.wait(remaining)
        shell.after_receive(command_id)
        return wsman.receive_body(command_id, poll.chunks, poll.state, poll.exit_code)


def _listening_socket(address: str, port: int) -> socket.socket:
    """A non-blocking TCP socket listening on ``address:port``. SO_REUSEADDR lets a restarted
    lab bind over its old connections' TIME_WAIT, and on Linux still refuses a port another
    socket listens on. Raises ListenError naming the address."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(512)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            why = "is in use (another lab or service listens there)"
        elif exc.errno == errno.EACCES:
            why = "needs privilege (a port below 1024: root or CAP_NET_BIND_SERVICE)"
        elif exc.errno == errno.EADDRNOTAVAIL:
            why = "is not an address of this machine"
        else:
            why = exc.strerror or str(exc)
        raise ListenError(exc.errno, f"cannot listen on {address}:{port}: it {why}") from None
    return sock
