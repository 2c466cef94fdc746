"""exfix's own small WS-Management client for PSRP: one HTTP connection, its authentication and
sealing, and the six shell messages (MS-WSMV 3.1.4: Create, Command, Send, Receive, Signal,
Delete). Used by :mod:`agent.transport.psrpcore_session`; the pypsrp transport has its own.

- **One connection per session.** WinRM authenticates the TCP connection, not the request
  (MS-WSMV 2.2.9.1 and the lab's auth.py): the handshake runs once, on empty POSTs, and every
  later request of the session reuses the connection with no Authorization header. The first
  POST already carries the client's first token: the mechanism is the inventory's, so the
  anonymous POST pypsrp sends to learn the server's offer is a round trip saved per
  connection. A connection the server closed while idle (keep-alive expiry) is noticed before
  the next request (the socket reads as closed), or by the next send failing, and opened and
  authenticated again, the request sent on the new one; one that breaks after the request
  was sent raises, and the session's retry policy decides.
- **Sealing** (``message_encryption`` auto over http, or always): the NTLM or Kerberos session
  keys of pyspnego's context (``wrapping_winrm``) seal each SOAP message in the
  ``multipart/encrypted`` MIME framing of MS-WSMV 2.2.9.1.2.1 (the facts as pypsrp's
  ``encryption.py`` implements them: the 4-byte little-endian signature length, the signature,
  the sealed data; the OriginalContent length includes the padding pyspnego reports).
  Exchange's IIS writes ``-- Encrypted Boundary`` with a space; both forms are read.
- **Channel binding** over https (RFC 5929 ``tls-server-end-point``): the hash of the
  server's certificate, SHA-256 unless its signature hash is stronger, bound into the
  NTLM/Kerberos authenticator (``send_cbt``), as pypsrp's ``HTTPNegotiateAuth`` does.
- **TLS**: the certificate is checked as requests would (system/certifi CAs, the inventory's
  CA file, or not at all with ``cert_validation: ignore``), against ``exfix_tls_server_name``
  when given (sent as SNI too, agent/transport/tls.py), else the address connected to.
- **Envelopes** are text templates built once per shell and filled with the message id, the
  operation timeout and the payload; responses are parsed with one ``ET.fromstring`` and a
  few ``find`` calls. Errors are raised as pypsrp's exception types so that one mapping
  (agent/transport/_errors.py) serves both transports.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import math
import os
import random
import re
import select
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import pypsrp.exceptions as psrp_exc
import spnego
import spnego.channel_bindings
import spnego.exceptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from spnego._ntlm import NTLMProxy
from spnego._ntlm_raw.crypto import lmowfv1, ntowfv1
from spnego._ntlm_raw.messages import NegotiateFlags

__all__ = ["ConnectTimeout", "Connection", "ConnectionSettings", "ReceiveResult", "Shell"]

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmv": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
}
_S = "{" + NS["s"] + "}"
_RSP = "{" + NS["rsp"] + "}"

ACTION = {
    "Create": "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create",
    "Delete": "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete",
    "Command": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command",
    "Send": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send",
    "Receive": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive",
    "Signal": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal",
}
# MS-WSMV 2.2.4.38 Signal codes; MS-PSRP 3.1.5.3.9 uses its own code to stop a pipeline.
SIGNAL_TERMINATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/Terminate"
SIGNAL_PS_CTRL_C = "powershell/signal/ctrl_c"
COMMAND_DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
OPERATION_TIMEOUT_CODE = 2150858793  # the Receive long-poll expired with nothing to say

_BOUNDARY = b"--Encrypted Boundary"
_ENCRYPTED_PART = re.compile(rb"--\s*Encrypted Boundary\r\n")
_LENGTH = re.compile(rb"Length=(\d+)")
_CONTENT_BOUNDARY = re.compile(r'boundary="?([^";]+)"?')
_ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
# The HTTP scheme each mechanism's tokens travel under. WinRM and IIS offer Negotiate for all
# three (it accepts a bare NTLM or Kerberos token, RFC 4559 and RFC 4178 section 4.2), and it is
# what pypsrp sends whenever Negotiate is offered.
_AUTH_SCHEMES = {"ntlm": "Negotiate", "negotiate": "Negotiate", "kerberos": "Negotiate"}
_TOKEN = re.compile(r"(?:Negotiate|Kerberos|NTLM)\s+([A-Za-z0-9+/=]+)", re.I)


_NTLM_HASHES: dict[tuple[str, bytes], spnego.NTLMHash] = {}
_NTLM_LOCK = threading.Lock()


def _ntlm_credential(username: str, password: str) -> spnego.NTLMHash:
    """The password's LM and NT hashes (MS-NLMP 3.3.1: LMOWFv1, NTOWFv1) as pyspnego's
    NTLMHash credential, computed once per user and password: pyspnego derives them on every
    new context, and its pure-Python DES made that a tenth of a fleet scan's transport CPU.
    The same hashes it would compute, so every NTLM level behaves as with the password."""
    key = (username, hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest())
    with _NTLM_LOCK:
        found = _NTLM_HASHES.get(key)
    if found is None:
        found = spnego.NTLMHash(
            username, lm_hash=lmowfv1(password).hex().upper(), nt_hash=ntowfv1(password).hex().upper()
        )
        with _NTLM_LOCK:
            if len(_NTLM_HASHES) >= 256:
                _NTLM_HASHES.clear()
            _NTLM_HASHES[key] = found
    return found


# hashlib hashes a buffer of this many bytes or more without the GIL (CPython's
# HASHLIB_GIL_MINSIZE, Modules/hashlib.h), and cryptography's ciphers encrypt one so too
# (measured: an RC4 update of 2,048 bytes took 15 times one of 2,047 beside a busy thread).
# Taking the GIL back costs a wait behind the fleet's other threads for each sealed message,
# so sealing works in smaller pieces, under the GIL.
_HASH_KEEPS_GIL = 2048
_PIECE = _HASH_KEEPS_GIL - 1


def _pieces(data: bytes) -> Iterator[memoryview]:
    view = memoryview(data)
    for start in range(0, len(data), _PIECE):
        yield view[start : start + _PIECE]


def _rc4(handle: Any, data: bytes) -> bytes:
    """RC4 (a stream cipher: pieces encrypt as the whole would) through pyspnego's handle."""
    if len(data) < _HASH_KEEPS_GIL:
        return bytes(handle.update(data))
    return b"".join([handle.update(piece) for piece in _pieces(data)])


class _HmacMd5:
    """HMAC-MD5 (RFC 2104) under one fixed key, the key's inner and outer pads hashed once.

    NTLM signs every sealed message with the direction's signing key (MS-NLMP 3.4.4.2), so a
    session computes thousands of HMACs under two keys. ``hmac.digest`` sets up OpenSSL's HMAC
    for each call, which cost about twice the hashing of a typical WSMan message; copying the
    two prepared MD5 states is what RFC 2104 section 4 suggests implementations keep instead.
    tests/transport/test_psrpcore.py compares it with ``hmac.digest``."""

    __slots__ = ("_inner", "_outer")

    _BLOCK = 64  # MD5's block size (RFC 2104: B)

    def __init__(self, key: bytes) -> None:
        if len(key) > self._BLOCK:
            key = hashlib.md5(key).digest()
        key = key.ljust(self._BLOCK, b"\0")
        self._inner = hashlib.md5(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.md5(bytes(b ^ 0x5C for b in key))

    def digest(self, *parts: bytes) -> bytes:
        inner = self._inner.copy()
        for part in parts:
            if len(part) < _HASH_KEEPS_GIL:
                inner.update(part)
                continue
            for piece in _pieces(part):  # under the GIL (_HASH_KEEPS_GIL)
                inner.update(piece)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class _NtlmSeal:
    """NTLM sealing of WinRM messages with the session keys of a completed pyspnego context.

    MS-NLMP 3.4.3 (SEAL with extended session security): the message is RC4-encrypted with the
    direction's handle, then signed: version 1, the first 8 bytes of HMAC_MD5(signing key,
    sequence number + message) RC4-encrypted with the same handle when the key exchange flag
    is set, and the 4-byte sequence number, which counts each direction's messages from 0. It
    is what pyspnego's NTLMProxy.wrap/unwrap compute (and the lab's acceptor checks), without
    their per-message flag arithmetic and HMAC object set-up, which cost more than the
    cryptography itself: a sixth of the transport's CPU in a sealed fleet scan. Only a plain
    NTLM context with extended session security is taken over; anything else (Kerberos,
    Negotiate, NTLM without ESS) stays with pyspnego's own wrap_winrm/unwrap_winrm."""

    __slots__ = ("_in", "_key_exch", "_out", "_seq_in", "_seq_out", "_sign_in", "_sign_out")

    def __init__(self, context: NTLMProxy) -> None:
        flags = int(context._context_attr)
        self._key_exch = bool(flags & NegotiateFlags.key_exch)
        self._out: Any = context._handle_out
        self._in: Any = context._handle_in
        self._sign_out = _HmacMd5(bytes(context._sign_key_out or b""))
        self._sign_in = _HmacMd5(bytes(context._sign_key_in or b""))
        self._seq_out = self._seq_in = 0

    @classmethod
    def of(cls, context: Any) -> _NtlmSeal | None:
        if type(context) is not NTLMProxy or not context.complete:
            return None
        # NTLMProxy's session keys and handles are pyspnego's private attributes (the range in
        # pyproject.toml is the versions that have them): a version without them leaves the
        # context to pyspnego's own wrap_winrm/unwrap_winrm, which is slower and as correct.
        try:
            flags = int(context._context_attr)
            needed = NegotiateFlags.extended_session_security | NegotiateFlags.seal | NegotiateFlags.sign
            if flags & needed != needed or not context._handle_out or not context._handle_in:
                return None
            if not context._sign_key_out or not context._sign_key_in:
                return None
            return cls(context)
        except AttributeError:
            return None

    def _signature(self, handle: Any, key: _HmacMd5, seq: int, message: bytes) -> bytes:
        number = struct.pack("<I", seq)
        checksum = key.digest(number, message)[:8]
        if self._key_exch:
            checksum = handle.update(checksum)
        return b"\x01\x00\x00\x00" + checksum + number

    def wrap(self, message: bytes) -> tuple[bytes, bytes]:
        sealed = _rc4(self._out, message)
        signature = self._signature(self._out, self._sign_out, self._seq_out, message)
        self._seq_out += 1
        return signature, sealed

    def unwrap(self, signature: bytes, sealed: bytes) -> bytes:
        message = _rc4(self._in, sealed)
        expected = self._signature(self._in, self._sign_in, self._seq_in, message)
        self._seq_in += 1
        if not hmac.compare_digest(expected, signature):
            raise spnego.exceptions.BadMICError(context_msg="Invalid Message integrity Check (MIC) detected")
        return message


class ConnectTimeout(TimeoutError):
    """No TCP/TLS connection within the connect timeout (agent/transport/_errors.py)."""


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """What one connection needs (from the inventory's EndpointConfig and credential)."""

    https: bool
    host: str
    port: int
    path: str
    auth: str  # ntlm | negotiate | kerberos | basic
    username: str | None
    password: str | None
    seal: bool  # wrap every message (message encryption)
    verify: bool | str  # False, True (system CAs), or a CA bundle path
    tls_server_name: str | None = None
    service: str = "WSMAN"
    hostname_override: str | None = None
    delegate: bool = False
    send_cbt: bool = True
    connection_timeout: float = 30.0

    @property
    def url(self) -> str:
        scheme = "https" if self.https else "http"
        return f"{scheme}://{self.host}:{self.port}/{self.path.lstrip('/')}"


def _ca_bundle() -> str | None:
    # What requests uses when verify is True: the environment's bundle, else certifi's.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        value = os.environ.get(name)
        if value:
            return value
    try:
        import certifi  # optional: requests' own CA bundle, present wherever requests is

        return str(certifi.where())
    except ImportError:  # pragma: no cover - requests depends on certifi
        return None


def tls_context(verify: bool | str) -> ssl.SSLContext:
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=verify if isinstance(verify, str) else _ca_bundle())


def certificate_binding(der: bytes) -> bytes:
    """RFC 5929 section 4.1 ``tls-server-end-point`` application data for a DER certificate:
    its hash with the certificate's signature hash, SHA-256 when that is MD5 or SHA-1."""
    algorithm: Any = hashes.SHA256()
    try:
        signed_with = x509.load_der_x509_certificate(der).signature_hash_algorithm
    except Exception:  # an algorithm cryptography does not name (e.g. Ed25519): SHA-256
        signed_with = None
    if signed_with is not None and signed_with.name not in ("md5", "sha1"):
        algorithm = signed_with
    digest = hashes.Hash(algorithm)
    digest.update(der)
    return b"tls-server-end-point:" + digest.finalize()


class _Wire:
    """One TCP (or TLS) connection speaking just the HTTP/1.1 a WSMan client needs: a POST with
    a Content-Length, and a response with a Content-Length or chunked body. http.client reads
    every response's headers through the email package's parser, which was the largest single
    cost left in a fleet scan's profile.

    Over plain http on POSIX the socket blocks, and its time limits are the kernel's
    (SO_RCVTIMEO, SO_SNDTIMEO): a socket with a Python timeout polls before every send and
    receive, each one a system call that lets go of the GIL, and at fleet size each such
    release is a chance for one of the other hosts' threads to take the interpreter and for
    this one to wait for it back. A TLS socket keeps Python's timeout (the ssl module retries a
    blocking read that the kernel's limit ended, and would wait for ever), and so does every
    socket on Windows (below)."""

    def __init__(self, settings: ConnectionSettings, context: ssl.SSLContext | None, timeout: float) -> None:
        try:
            sock = socket.create_connection((settings.host, settings.port), timeout)
        except TimeoutError:
            raise ConnectTimeout(f"no connection to {settings.host}:{settings.port} in time") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.peer_certificate: bytes | None = None
        if context is not None:
            name = settings.tls_server_name or settings.host
            try:
                sock = context.wrap_socket(sock, server_hostname=name)
            except TimeoutError:
                sock.close()
                raise ConnectTimeout(
                    f"no TLS handshake with {settings.host}:{settings.port} in time"
                ) from None
            except BaseException:
                sock.close()
                raise
            self.peer_certificate = sock.getpeercert(True)
        self.sock = sock
        # Not on Windows: there a socket whose SO_RCVTIMEO ran out "should not be used" again
        # (Winsock's SOL_SOCKET options), and a receive may need to wait once more.
        self._kernel_timeouts = context is None and sys.platform != "win32"
        if self._kernel_timeouts:
            sock.settimeout(None)
        self._timeout: float | None = None
        self._deadline = 0.0
        self._answered = -math.inf  # when the last answer was read (time.monotonic)
        self._buffer = bytearray()  # received and not yet read
        self._pos = 0
        host = settings.host if ":" not in settings.host else f"[{settings.host}]"
        self._head = f"POST /{settings.path.lstrip('/')} HTTP/1.1\r\nHost: {host}:{settings.port}\r\n"

    def close(self) -> None:
        self.sock.close()

    def idle(self) -> bool:
        """True when the kept-alive connection can take the next request: nothing is left
        unread, and the socket does not read as closed (the server's keep-alive expiry) or
        carry data nobody asked for.

        A connection that answered under a second ago is not asked (the select is a system
        call, once a request): keep-alive expiries are minutes (the HTTP Server API that
        WinRM and IIS listen through times an idle connection out after 2 minutes by default:
        its IdleConnection timer), and a connection that is gone all the same fails the next send,
        which :class:`Connection` sends again on a new one (:class:`_Unsent`)."""
        if self._pos != len(self._buffer):
            return False
        if time.monotonic() - self._answered < _FRESH:
            return True
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def exchange(
        self, body: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[int, dict[str, str], bytes, bool]:
        """Send one POST; return the status, the headers (names in lower case, repeated ones
        joined with ", "), the body, and whether the server closes the connection after it."""
        try:
            return self._exchange(body, headers, timeout)
        except BlockingIOError:
            # EAGAIN from sending on a blocking socket: its SO_SNDTIMEO ran out (a receive's
            # SO_RCVTIMEO is _fill's to handle).
            raise TimeoutError("timed out") from None
        except ssl.SSLError as exc:
            # A TLS record error after the handshake is a broken connection (the peer went
            # away mid-stream), not a certificate problem: transient, like a reset.
            if isinstance(exc, ssl.SSLCertVerificationError):
                raise
            raise ConnectionResetError(f"the TLS connection broke: {exc}") from exc

    def _limit(self, timeout: float) -> None:
        """Bound the socket's waits by timeout, rounded up to the second above one second,
        when that is below its bound so far.

        A bound is a system call or two to set, and the requests of one connection alternate
        between two (a Receive's is its operation timeout and two seconds, a Command's the read
        timeout): so the socket keeps the lowest it was given, and a receive it ends with time
        left on its request waits again (:meth:`_fill`). A send stalled past that bound (the
        server reading nothing while its buffers are full) fails then, earlier than its
        request's time."""
        wanted = max(0.05, timeout) if timeout < 1 else float(math.ceil(timeout))
        if self._timeout is not None and wanted >= self._timeout:
            return
        if self._kernel_timeouts:
            limit = _timeval(wanted)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        else:
            self.sock.settimeout(wanted)
        self._timeout = wanted

    def _exchange(
        self, body: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[int, dict[str, str], bytes, bool]:
        self._limit(timeout)
        self._deadline = time.monotonic() + timeout
        lines = [self._head]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        try:
            self.sock.sendall("".join(lines).encode("latin-1") + body)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as exc:
            # The peer had closed or reset the connection: it took nothing of this request.
            raise _Unsent(str(exc)) from exc
        del self._buffer[: self._pos]
        self._pos = 0
        while True:
            status_line = self._line()
            if not status_line:
                raise http.client.RemoteDisconnected("Remote end closed connection without response")
            parts = status_line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
                raise http.client.BadStatusLine(status_line.decode("latin-1", "replace").strip())
            try:
                status = int(parts[1])
            except ValueError:
                raise http.client.BadStatusLine(status_line.decode("latin-1", "replace").strip()) from None
            response_headers: dict[str, str] = {}
            for _ in range(200):
                line = self._line()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                name = name.strip().lower()
                value = value.strip()
                known = response_headers.get(name)
                response_headers[name] = value if known is None else f"{known}, {value}"
            else:
                raise http.client.HTTPException("too many response headers")
            if status >= 200 or status == 101:
                break  # 1xx (100 Continue) precede the real response
        http10 = parts[0] == b"HTTP/1.0"
        connection = response_headers.get("connection", "").lower()
        will_close = "close" in connection or (http10 and "keep-alive" not in connection)
        if "chunked" in response_headers.get("transfer-encoding", "").lower():
            data = self._chunked()
        elif "content-length" in response_headers:
            try:
                length = int(response_headers["content-length"])
            except ValueError:
                raise http.client.HTTPException("a malformed Content-Length") from None
            data = self._read(length)
            if len(data) != length:
                raise http.client.IncompleteRead(data, length - len(data))
        elif status in (204, 304) or 100 <= status < 200:
            data = b""
        else:
            data = self._read(None)  # delimited by the connection's end
            will_close = True
        self._answered = time.monotonic()
        return status, response_headers, data, will_close

    def _chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size_line = self._line()
            if not size_line:
                raise http.client.IncompleteRead(b"".join(chunks))
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise http.client.HTTPException("a malformed chunk size") from None
            if size == 0:
                while self._line() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunk = self._read(size)
            if len(chunk) != size:
                raise http.client.IncompleteRead(chunk, size - len(chunk))
            chunks.append(chunk)
            self._line()  # the CRLF after each chunk

    # -- the receive buffer -----------------------------------------------------------------

    def _fill(self) -> bool:
        """Append what the socket has to the buffer (waiting for at least one byte, until the
        request's deadline); False at the connection's end."""
        while True:
            try:
                data = self.sock.recv(65536)
                break
            except (BlockingIOError, TimeoutError):
                # The socket's bound ran out (SO_RCVTIMEO's EAGAIN, or Python's timeout). A
                # receive may wait again: no byte was taken, and neither a poll timeout nor
                # the kernel's bound on POSIX disturbs the socket or its TLS state.
                left = self._deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("timed out") from None
                self._limit(left)
        self._buffer += data
        return bool(data)

    def _line(self) -> bytes:
        """The next line with its end, or what is left at the connection's end (b"" if
        nothing). A line is at most 64 KiB, as http.client allows."""
        while True:
            end = self._buffer.find(b"\n", self._pos, self._pos + _MAX_LINE)
            if end >= 0:
                line = bytes(self._buffer[self._pos : end + 1])
                self._pos = end + 1
                return line
            if len(self._buffer) - self._pos >= _MAX_LINE:
                raise http.client.LineTooLong("header line")
            if not self._fill():
                line = bytes(self._buffer[self._pos :])
                self._pos = len(self._buffer)
                return line

    def _read(self, size: int | None) -> bytes:
        """The next size bytes (fewer at the connection's end), or all up to the end."""
        while size is None or len(self._buffer) - self._pos < size:
            if not self._fill():
                break
        end = len(self._buffer) if size is None else self._pos + size
        data = bytes(self._buffer[self._pos : end])
        self._pos += len(data)
        return data


_MAX_LINE = 65536

# How long after an answer a kept-alive connection is reused without asking the socket
# (_Wire.idle).
_FRESH = 1.0


class _Unsent(ConnectionResetError):
    """Sending failed on a connection the peer had closed or reset: no server read the request,
    so it may be sent again."""


def _timeval(seconds: float) -> bytes:
    """SO_RCVTIMEO's and SO_SNDTIMEO's value on POSIX: a struct timeval."""
    whole = int(seconds)
    return struct.pack("@ll", whole, int((seconds - whole) * 1_000_000))


class Connection:
    """One authenticated (and, when asked, sealed) HTTP connection to one WSMan endpoint."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._context = tls_context(settings.verify) if settings.https else None
        self._wire: _Wire | None = None
        self._security: Any = None  # the pyspnego context once the handshake completed
        self._seal: _NtlmSeal | None = None  # its NTLM keys, when exfix seals itself
        self._protocol = ""  # the sealed content's protocol name (MS-WSMV 2.2.9.1.2.1)
        self._basic: str | None = None
        if settings.auth == "basic":
            pair = f"{settings.username or ''}:{settings.password or ''}".encode()
            self._basic = "Basic " + base64.b64encode(pair).decode("ascii")

    def close(self) -> None:
        wire, self._wire = self._wire, None
        self._security = self._seal = None
        if wire is not None:
            wire.close()

    # -- one request ------------------------------------------------------------------------

    def post(self, message: bytes, timeout: float) -> bytes:
        """Send one SOAP message; return the (unsealed) response body of a 200.

        Raises pypsrp's AuthenticationError (401), WSManFaultError (a SOAP fault),
        WinRMTransportError (another status), or the socket's own errors."""
        kept = self._ensure_connected(timeout)
        try:
            status, data = self._post(message, timeout)
        except _Unsent:
            if not kept:
                raise
            # The kept-alive connection was gone before the request reached a server: send it
            # again on a new, authenticated one (sealed with that one's keys).
            self._ensure_connected(timeout)
            status, data = self._post(message, timeout)
        if status == 200:
            return data
        if status == 401:
            self.close()  # the server forgot the connection's authentication
            raise psrp_exc.AuthenticationError(f"HTTP 401 from {self.settings.url}")
        text = data.decode("utf-8", "replace")
        if status == 500 and text.lstrip().startswith("<"):
            fault = parse_fault(text)
            if fault is not None:
                raise fault
        raise psrp_exc.WinRMTransportError("http", status, text)

    def _post(self, message: bytes, timeout: float) -> tuple[int, bytes]:
        """One POST of message on the connection (sealed when it seals); the unsealed answer."""
        headers = {"Accept-Encoding": "identity", "Connection": "Keep-Alive", "User-Agent": "exfix"}
        if self._basic is not None:
            headers["Authorization"] = self._basic
        if self._security is not None and self.settings.seal:
            body = self._wrap(message)
            headers["Content-Type"] = (
                f'multipart/encrypted;protocol="{self._protocol}";boundary="Encrypted Boundary"'
            )
        else:
            body = message
            headers["Content-Type"] = "application/soap+xml;charset=UTF-8"
        status, response_headers, data = self._request(body, headers, timeout)
        content_type = response_headers.get("content-type", "")
        if content_type.startswith(("multipart/encrypted", "multipart/x-multi-encrypted")):
            data = self._unwrap(data, content_type)
        return status, data

    def _request(
        self, body: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[int, dict[str, str], bytes]:
        wire = self._wire
        assert wire is not None
        try:
            status, response_headers, data, will_close = wire.exchange(body, headers, timeout)
        except BaseException:
            self.close()
            raise
        if will_close:
            # Connection: close (or HTTP/1.0): the next request needs a new, authenticated one.
            self.close()
        return status, response_headers, data

    # -- connection and handshake -----------------------------------------------------------

    def _ensure_connected(self, timeout: float) -> bool:
        """Connect and authenticate unless the connection can be kept; True when it was."""
        wire = self._wire
        if wire is not None and wire.idle():
            return True
        self.close()
        settings = self.settings
        wire = _Wire(settings, self._context, max(0.05, min(settings.connection_timeout, timeout)))
        self._wire = wire
        if settings.auth in _AUTH_SCHEMES:
            self._handshake(wire, timeout)
        return False

    def _handshake(self, wire: _Wire, timeout: float) -> None:
        settings = self.settings
        bindings = None
        if settings.send_cbt and wire.peer_certificate is not None:
            bindings = spnego.channel_bindings.GssChannelBindings(
                application_data=certificate_binding(wire.peer_certificate)
            )
        context_req = spnego.ContextReq.default
        if settings.delegate:
            context_req |= spnego.ContextReq.delegate
        username: Any = settings.username
        password = settings.password
        if settings.auth == "ntlm" and username and password is not None:
            username, password = _ntlm_credential(username, password), None
        context = spnego.client(
            username,
            password,
            hostname=settings.hostname_override or settings.host,
            service=settings.service,
            channel_bindings=bindings,
            context_req=context_req,
            protocol=settings.auth,
            options=spnego.NegotiateOptions.wrapping_winrm if settings.seal else spnego.NegotiateOptions.none,
        )
        scheme = _AUTH_SCHEMES[settings.auth]
        token = context.step()
        while token is not None:
            headers = {
                "Authorization": f"{scheme} {base64.b64encode(token).decode('ascii')}",
                "Connection": "Keep-Alive",
                "User-Agent": "exfix",
            }
            status, response_headers, _ = self._request(b"", headers, timeout)
            found = _TOKEN.search(response_headers.get("www-authenticate", ""))
            if status == 401 and (found is None or context.complete):
                self.close()
                raise psrp_exc.AuthenticationError(f"HTTP 401 from {settings.url}")
            if status not in (200, 401):
                self.close()
                raise psrp_exc.WinRMTransportError("http", status, "")
            if found is None:
                break
            token = context.step(base64.b64decode(found.group(1)))
            if status == 200 and token is None:
                break
        if not context.complete:
            self.close()
            raise psrp_exc.AuthenticationError(f"the {scheme} handshake with {settings.url} did not complete")
        self._security = context
        self._seal = _NtlmSeal.of(context) if settings.seal else None
        # MS-WSMV 2.2.9.1.2.1: under the Negotiate scheme the sealed content is SPNEGO's, for
        # an NTLM or Kerberos context alike (pypsrp names Kerberos' own protocol only when
        # the server offered the Kerberos scheme alone).
        self._protocol = "application/HTTP-SPNEGO-session-encrypted"

    # -- sealing ----------------------------------------------------------------------------

    def _wrap(self, message: bytes) -> bytes:
        if self._seal is not None:
            header, sealed = self._seal.wrap(message)
            padding = 0
        else:
            header, sealed, padding = self._security.wrap_winrm(message)
        return b"".join((
            _BOUNDARY,
            b"\r\n\tContent-Type: ",
            self._protocol.encode("ascii"),
            b"\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=",
            str(len(message) + padding).encode("ascii"),
            b"\r\n",
            _BOUNDARY,
            b"\r\n\tContent-Type: application/octet-stream\r\n",
            struct.pack("<i", len(header)),
            header,
            sealed,
            _BOUNDARY,
            b"--\r\n",
        ))  # fmt: skip

    def _unwrap(self, data: bytes, content_type: str) -> bytes:
        if self._security is None:
            raise psrp_exc.WinRMError("a sealed response on a connection without a security context")
        parts = [part for part in _ENCRYPTED_PART.split(data) if part]
        plain = bytearray()
        for index in range(0, len(parts) - 1, 2):
            length = _LENGTH.search(parts[index])
            payload = parts[index + 1]
            end = payload.rfind(b"--Encrypted Boundary--")
            if end < 0:
                end = payload.rfind(b"-- Encrypted Boundary--")
            if end >= 0:
                payload = payload[:end]
            payload = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"", 1)
            size = struct.unpack("<i", payload[:4])[0]
            signature, sealed = payload[4 : 4 + size], payload[4 + size :]
            if self._seal is not None:
                chunk = self._seal.unwrap(signature, sealed)
            else:
                chunk = self._security.unwrap_winrm(signature, sealed)
            if length is None or int(length.group(1)) != len(chunk):
                raise psrp_exc.WinRMError("the sealed response's length does not match its content")
            plain += chunk
        return bytes(plain)


def _literal(text: str) -> str:
    """XML-escaped, and safe inside the %-format header template."""
    return escape(text).replace("%", "%%")


# WS-Addressing asks a MessageID to be unique, not unpredictable, and so does PSRP of its pool
# and pipeline ids: version-4 UUIDs drawn from one generator seeded once from the system's
# randomness. uuid.uuid4() reads os.urandom for each, a system call that lets go of the GIL:
# sixty times a host, and each one a chance for another of the fleet's threads to take the
# interpreter and for this one to wait for it back.
_IDS = random.Random()
# A forked child seeds it again, or it would repeat its parent's ids (the random module does
# the same for its own generator). Windows has no fork.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_IDS.seed)


def new_id() -> uuid.UUID:
    """A version-4 UUID without a system call."""
    return uuid.UUID(int=_IDS.getrandbits(128), version=4)


def _message_id() -> str:
    return str(new_id()).upper()


def parse_fault(text: str) -> psrp_exc.WSManFaultError | None:
    """A SOAP fault body as pypsrp's WSManFaultError (code, machine, reason, provider...)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    fault = root.find("s:Body/s:Fault", NS)
    if fault is None:
        return None
    code: Any = None
    value = fault.find("s:Code/s:Subcode/s:Value", NS)
    if value is None:
        value = fault.find("s:Code/s:Value", NS)
    if value is not None:
        code = value.text
    reason_node = fault.find("s:Reason/s:Text", NS)
    reason = reason_node.text if reason_node is not None else None
    machine = provider = provider_path = provider_fault = None
    detail = fault.find("s:Detail/wsmanfault:WSManFault", NS)
    if detail is not None:
        code = detail.attrib.get("Code", code)
        machine = detail.attrib.get("Machine")
        message = detail.find("wsmanfault:Message", NS)
        if message is not None:
            reason = message.text or reason
            provider_node = message.find("wsmanfault:ProviderFault", NS)
            if provider_node is not None:
                provider = provider_node.attrib.get("provider")
                provider_path = provider_node.attrib.get("path")
                provider_fault = (provider_node.text or "").strip() or None
    with contextlib.suppress(TypeError, ValueError):
        code = int(code or "")
    return psrp_exc.WSManFaultError(
        code, machine, reason.strip() if reason else None, provider, provider_path, provider_fault
    )


# A ReceiveResponse read without building its tree (it carries most of the bytes of a session:
# the base64 output). Prefixes are whatever the server chose; anything unexpected (no
# RelatesTo, markup inside a stream) falls back to ElementTree.
_RELATES_TO = re.compile(rb"<(?:[\w.-]+:)?RelatesTo\b[^>]*>\s*([^<]*?)\s*<")
_STREAM = re.compile(rb"<(?:[\w.-]+:)?Stream\b([^>]*)>([^<]*)(?=<)")
_COMMAND_STATE = re.compile(rb"<(?:[\w.-]+:)?CommandState\b[^>]*?\bState=\"([^\"]*)\"")
_MARKUP = re.compile(rb"<!|<\?(?!xml )")  # comments, CDATA, a DTD, processing instructions


def _quick_receive(raw: bytes, message_id: str) -> ReceiveResult | None:
    if _MARKUP.search(raw):
        return None
    relates = _RELATES_TO.search(raw)
    if relates is None or relates.group(1) != f"uuid:{message_id}".encode("ascii"):
        return None
    chunks = [
        base64.b64decode(text)
        for attributes, text in _STREAM.findall(raw)
        if text and not attributes.endswith(b"/")
    ]
    state = _COMMAND_STATE.search(raw)
    return ReceiveResult(
        b"".join(chunks), state is not None and state.group(1) == COMMAND_DONE.encode("ascii")
    )


@dataclass(frozen=True, slots=True)
class ReceiveResult:
    data: bytes  # the stdout stream's bytes (PSRP fragments), in order
    done: bool  # CommandState Done: the command (pipeline) ended


class Shell:
    """The WSMan messages of one PSRP shell (runspace pool), as text templates.

    The header differs between messages only in the action, the message id, the operation
    timeout, the options and the selector (the ShellId once the shell exists), so it is one
    format string built once; bodies are small templates too."""

    def __init__(
        self,
        connection: Connection,
        resource_uri: str,
        *,
        max_envelope_size: int,
        operation_timeout: int,
        locale: str = "en-US",
    ) -> None:
        self.connection = connection
        self.resource_uri = resource_uri
        self.shell_id: str | None = None
        self.operation_timeout = operation_timeout
        self.max_envelope_size = max_envelope_size
        session_id = str(new_id()).upper()
        lang = quoteattr(locale)
        self._head = (
            '<s:Envelope xmlns:s="{s}" xmlns:wsa="{wsa}" xmlns:wsman="{wsman}" xmlns:wsmv="{wsmv}" '
            'xmlns:rsp="{rsp}"><s:Header>'
        ).format(**NS) + (
            '<wsa:Action s:mustUnderstand="true">%s</wsa:Action>'
            f'<wsmv:DataLocale s:mustUnderstand="false" xml:lang={lang}/>'
            f'<wsman:Locale s:mustUnderstand="false" xml:lang={lang}/>'
            f'<wsman:MaxEnvelopeSize s:mustUnderstand="true">{int(max_envelope_size)}</wsman:MaxEnvelopeSize>'
            "<wsa:MessageID>uuid:%s</wsa:MessageID>"
            "<wsman:OperationTimeout>PT%dS</wsman:OperationTimeout>"
            f'<wsa:ReplyTo><wsa:Address s:mustUnderstand="true">{_ANONYMOUS}</wsa:Address></wsa:ReplyTo>'
            f'<wsman:ResourceURI s:mustUnderstand="true">{_literal(resource_uri)}</wsman:ResourceURI>'
            f'<wsmv:SessionId s:mustUnderstand="false">uuid:{session_id}</wsmv:SessionId>'
            f"<wsa:To>{_literal(connection.settings.url)}</wsa:To>"
            "%s</s:Header><s:Body>"
        )
        self._selector = ""

    # The PSRP payload that fits one Create/Command/Send beside the envelope, in bytes before
    # base64 (pypsrp reserves the header's size plus 256 bytes the same way).
    @property
    def max_payload(self) -> int:
        overhead = len(self._head) + 1024
        return max(22, (self.max_envelope_size - overhead) // 4 * 3)

    def _envelope(
        self, action: str, body: str, options: str = "", timeout: int | None = None
    ) -> tuple[str, bytes]:
        message_id = _message_id()
        head = self._head % (
            ACTION[action],
            message_id,
            timeout or self.operation_timeout,
            options + self._selector,
        )
        return message_id, (head + body + "</s:Body></s:Envelope>").encode("utf-8")

    def _send(
        self, action: str, body: str, timeout: float, options: str = "", operation: int | None = None
    ) -> ET.Element:
        message_id, message = self._envelope(action, body, options, operation)
        return self._read(action, message_id, self.connection.post(message, timeout))

    def _send_only(self, action: str, body: str, timeout: float) -> None:
        """A request whose response body exfix does not read (Command, Send, Signal, Delete):
        only that it relates to the request is checked, by the pattern _quick_receive uses,
        without building its tree; a response the pattern does not read goes to ElementTree.
        (A fault is an HTTP 500, raised by Connection.post before this.)"""
        message_id, message = self._envelope(action, body)
        response = self.connection.post(message, timeout)
        if _MARKUP.search(response) is None:
            relates = _RELATES_TO.search(response)
            if relates is not None and relates.group(1) == f"uuid:{message_id}".encode("ascii"):
                return
        self._read(action, message_id, response)

    @staticmethod
    def _read(action: str, message_id: str, response: bytes) -> ET.Element:
        root = ET.fromstring(response)
        relates = root.find("s:Header/wsa:RelatesTo", NS)
        if relates is None or relates.text != f"uuid:{message_id}":
            raise psrp_exc.WinRMError(
                f"the {action} response does not relate to the request uuid:{message_id}"
            )
        body_node = root.find("s:Body", NS)
        return body_node if body_node is not None else ET.Element(_S + "Body")

    def create(self, shell_id: str, creation_xml: bytes, timeout: float) -> None:
        """Create the shell (MS-PSRP 3.1.5.3.1: the first fragments ride in creationXml)."""
        body = (
            f'<rsp:Shell ShellId="{shell_id}"><rsp:InputStreams>stdin pr</rsp:InputStreams>'
            "<rsp:OutputStreams>stdout</rsp:OutputStreams>"
            '<creationXml xmlns="http://schemas.microsoft.com/powershell">'
            f"{base64.b64encode(creation_xml).decode('ascii')}</creationXml></rsp:Shell>"
        )
        options = (
            '<wsman:OptionSet s:mustUnderstand="true">'
            '<wsman:Option Name="protocolversion" MustComply="true">2.3</wsman:Option></wsman:OptionSet>'
        )
        response = self._send("Create", body, timeout, options)
        created = response.find("rsp:Shell/rsp:ShellId", NS)
        self.shell_id = (created.text or shell_id) if created is not None else shell_id
        selector_names = response.find("wst:ResourceCreated/wsa:ReferenceParameters/wsman:SelectorSet", NS)
        selectors = (
            [(s.attrib.get("Name", ""), s.text or "") for s in selector_names]
            if selector_names is not None
            else []
        )
        if not selectors:
            selectors = [("ShellId", self.shell_id)]
        self._selector = (
            "<wsman:SelectorSet>"
            + "".join(
                f"<wsman:Selector Name={quoteattr(n)}>{escape(v)}</wsman:Selector>" for n, v in selectors
            )
            + "</wsman:SelectorSet>"
        )

    def command(self, command_id: str, arguments: bytes, timeout: float) -> None:
        body = (
            f'<rsp:CommandLine CommandId="{command_id}"><rsp:Command></rsp:Command>'
            f"<rsp:Arguments>{base64.b64encode(arguments).decode('ascii')}</rsp:Arguments></rsp:CommandLine>"
        )
        self._send_only("Command", body, timeout)

    def send(self, command_id: str | None, data: bytes, timeout: float) -> None:
        target = f' CommandId="{command_id}"' if command_id else ""
        body = (
            f'<rsp:Send><rsp:Stream Name="stdin"{target}>'
            f"{base64.b64encode(data).decode('ascii')}</rsp:Stream></rsp:Send>"
        )
        self._send_only("Send", body, timeout)

    _RECEIVE_OPTIONS = (
        '<wsman:OptionSet><wsman:Option Name="WSMAN_CMDSHELL_OPTION_KEEPALIVE">True</wsman:Option>'
        "</wsman:OptionSet>"
    )

    def receive(self, command_id: str | None, timeout: float, operation: int) -> ReceiveResult:
        """One Receive long-poll of at most ``operation`` seconds (the HTTP wait 2 more, capped
        at ``timeout``). The operation-timeout fault (nothing to say yet) is an empty result."""
        target = f' CommandId="{command_id}"' if command_id else ""
        body = f"<rsp:Receive><rsp:DesiredStream{target}>stdout</rsp:DesiredStream></rsp:Receive>"
        message_id, message = self._envelope("Receive", body, self._RECEIVE_OPTIONS, operation)
        try:
            raw = self.connection.post(message, min(timeout, operation + 2))
        except psrp_exc.WSManFaultError as fault:
            if fault.code == OPERATION_TIMEOUT_CODE:
                return ReceiveResult(b"", False)
            raise
        quick = _quick_receive(raw, message_id)
        if quick is not None:
            return quick
        response = self._read("Receive", message_id, raw)
        chunks: list[bytes] = []
        done = False
        receive = response.find("rsp:ReceiveResponse", NS)
        if receive is not None:
            for node in receive:
                if node.tag == _RSP + "Stream":
                    if node.text:
                        chunks.append(base64.b64decode(node.text))
                elif node.tag == _RSP + "CommandState":
                    done = node.attrib.get("State") == COMMAND_DONE
        return ReceiveResult(b"".join(chunks), done)

    def signal(self, command_id: str, code: str, timeout: float) -> None:
        body = f'<rsp:Signal CommandId="{command_id}"><rsp:Code>{escape(code)}</rsp:Code></rsp:Signal>'
        self._send_only("Signal", body, timeout)

    def delete(self, timeout: float) -> None:
        self._send_only("Delete", "", timeout)
