"""Sealed WinRM messages (MS-WSMV 2.2.9.1, ``multipart/encrypted``) on the server side.

:class:`SealedMessages` reads and writes the MIME framing exactly as pypsrp's
``WinRMEncryption`` does for the SPNEGO protocol (the lab used it before; its output, byte for
byte, and the same leniency on input: a space between ``--`` and the boundary, as Exchange
writes it), with the regular expressions compiled once per boundary instead of on every
message.

The sealing itself: for an NTLM context with extended session security (what every NTLM
client the lab sees negotiates) :class:`NtlmSeal` computes it with the context's session keys;
anything else (Kerberos, NTLM without ESS) goes to the context's own ``wrap_winrm`` /
``unwrap_winrm``. py-spy of the lab during a 200-host scan: pyspnego's per-message flag
arithmetic, its property-based sequence counters and a new HMAC object per signature cost more
than RC4 and MD5 themselves, 13 % of the lab's CPU for two sealing calls per request.

exfix's own client seals the same way (agent/transport/wsman.py ``_NtlmSeal``); the lab keeps
an implementation of its own on purpose: a client tested against a server that shares its
sealing code would pass with a bug both share. Each side is checked against pyspnego instead.
"""

from __future__ import annotations

import hmac
import re
import struct
from typing import Any

import spnego.exceptions
from spnego._negotiate import NegotiateProxy
from spnego._ntlm import NTLMProxy
from spnego._ntlm_raw.messages import NegotiateFlags

PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
_BOUNDARY = "--Encrypted Boundary"
_PART_HEAD = (
    f"{_BOUNDARY}\r\n\tContent-Type: {PROTOCOL}\r\n"
    "\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
).encode("ascii")
_PART_DATA = f"\r\n{_BOUNDARY}\r\n\tContent-Type: application/octet-stream\r\n".encode("ascii")
_END = f"{_BOUNDARY}--\r\n".encode("ascii")
_OCTET_STREAM = b"\tContent-Type: application/octet-stream\r\n"


# cryptography's ciphers encrypt 2,048 bytes or more without the GIL; taking it back means a
# wait behind the lab's other threads for every large message. RC4 is a stream cipher, so the
# lab encrypts in smaller pieces, under the GIL. (hmac.digest keeps the GIL at any size.)
_PIECE = 2047


def _rc4(handle: Any, data: bytes) -> bytes:
    if len(data) <= _PIECE:
        return bytes(handle.update(data))
    return b"".join([handle.update(data[start : start + _PIECE]) for start in range(0, len(data), _PIECE)])


class SealError(ValueError):
    """A sealed message that does not unseal: bad framing, a wrong length or a bad signature."""


class NtlmSeal:
    """MS-NLMP 3.4.3 SEAL with extended session security, one connection's both directions.

    The message is RC4-encrypted with the direction's handle, then signed: version 1, the
    first 8 bytes of HMAC_MD5(signing key, sequence number + message), RC4-encrypted with the
    same handle when the key exchange flag is set, and the 4-byte sequence number. These are
    the values pyspnego's ``NTLMProxy.wrap``/``unwrap_winrm`` compute from the same handles
    and keys, which it keeps in private attributes (pyproject.toml bounds the pyspnego
    versions that have them); :meth:`of` leaves any context it does not recognize to pyspnego.

    The sequence numbers continue from the context's: SPNEGO's mechListMIC exchange signs
    with sequence number 0 (and resets the RC4 handles), so the first message after a
    Negotiate handshake is number 1, after a bare NTLM one number 0.
    """

    __slots__ = ("_in", "_key_exch", "_out", "_seq_in", "_seq_out", "_sign_in", "_sign_out")

    def __init__(self, context: NTLMProxy) -> None:
        flags = int(context._context_attr)
        self._key_exch = bool(flags & NegotiateFlags.key_exch)
        self._out: Any = context._handle_out
        self._in: Any = context._handle_in
        self._sign_out = bytes(context._sign_key_out or b"")
        self._sign_in = bytes(context._sign_key_in or b"")
        # The counters behind NTLMProxy's _seq_num_in/_seq_num_out properties (each read of
        # which increments them), read without incrementing.
        self._seq_in = int(context._NTLMProxy__seq_num_in)  # type: ignore[attr-defined]
        self._seq_out = int(context._NTLMProxy__seq_num_out)  # type: ignore[attr-defined]

    @classmethod
    def of(cls, context: Any) -> NtlmSeal | None:
        """The seal of a completed NTLM context (bare or inside SPNEGO), or None."""
        inner = context._context if isinstance(context, NegotiateProxy) else context
        if type(inner) is not NTLMProxy or not inner.complete:
            return None
        try:
            flags = int(inner._context_attr)
            needed = NegotiateFlags.extended_session_security | NegotiateFlags.seal | NegotiateFlags.sign
            if flags & needed != needed or not inner._handle_out or not inner._handle_in:
                return None
            if not inner._sign_key_out or not inner._sign_key_in:
                return None
            return cls(inner)
        except AttributeError:
            return None

    def _signature(self, handle: Any, key: bytes, seq: int, message: bytes) -> bytes:
        number = struct.pack("<I", seq)
        checksum = hmac.digest(key, number + message, "md5")[:8]
        if self._key_exch:
            checksum = handle.update(checksum)
        return b"\x01\x00\x00\x00" + checksum + number

    def wrap(self, message: bytes) -> tuple[bytes, bytes]:
        """(signature, sealed message)."""
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


_SPLITTERS: dict[str, tuple[re.Pattern[bytes], re.Pattern[bytes]]] = {}


def _splitters(boundary: str) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    found = _SPLITTERS.get(boundary)
    if found is None:
        literal = re.escape(boundary.encode("utf-8"))
        found = (re.compile(rb"--\s*" + literal + rb"\r\n"), re.compile(rb"--\s*" + literal + rb"--\r\n$"))
        if len(_SPLITTERS) < 64:
            _SPLITTERS[boundary] = found
    return found


class SealedMessages:
    """Seal and unseal one connection's messages with its completed security context."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self._ntlm = NtlmSeal.of(context)

    def wrap_message(self, message: bytes) -> tuple[str, bytes]:
        """(content type, body): pypsrp's ``WinRMEncryption.wrap_message`` for SPNEGO."""
        if self._ntlm is not None:
            header, sealed = self._ntlm.wrap(message)
            padding = 0
        else:
            header, sealed, padding = self.context.wrap_winrm(message)
        body = b"".join((
            _PART_HEAD,
            str(len(message) + padding).encode("ascii"),
            _PART_DATA,
            struct.pack("<i", len(header)),
            header,
            sealed,
            _END,
        ))  # fmt: skip
        return "multipart/encrypted", body

    def unwrap_message(self, message: bytes, boundary: str) -> bytes:
        """The plain message; the parts are read as pypsrp's ``unwrap_message`` reads them.
        Raises SealError (or pyspnego's error for a bad signature)."""
        split, end = _splitters(boundary)
        parts = [part for part in split.split(message) if part]
        if len(parts) % 2:
            raise SealError("a sealed part without its payload")
        plain = bytearray()
        for index in range(0, len(parts), 2):
            head = parts[index].strip()
            _, sep, length_text = head.partition(b"Length=")
            if not sep:
                raise SealError("a sealed part without its length")
            try:
                expected = int(length_text.split(b"Length=", 1)[0])
            except ValueError:
                raise SealError("a sealed part with a bad length") from None
            payload = end.sub(b"", parts[index + 1])
            wrapped = payload.replace(_OCTET_STREAM, b"")
            if len(wrapped) < 4:
                raise SealError("a sealed part too short for its header")
            size = struct.unpack_from("<i", wrapped)[0]
            if size < 0 or 4 + size > len(wrapped):
                raise SealError("a sealed part with a bad header length")
            signature, sealed = wrapped[4 : 4 + size], wrapped[4 + size :]
            if self._ntlm is not None:
                chunk = self._ntlm.unwrap(signature, sealed)
            else:
                chunk = self.context.unwrap_winrm(signature, sealed)
            if len(chunk) != expected:
                raise SealError(f"the sealed length is {expected}, the content {len(chunk)} bytes")
            plain += chunk
        return bytes(plain)
