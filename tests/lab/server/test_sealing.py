"""The lab's sealed messages (mock_remoting/server/sealing.py) against pypsrp's and pyspnego's.

A real NTLM handshake between pyspnego's initiator and the lab's acceptor (ConnectionAuth),
then messages both ways: pypsrp's ``WinRMEncryption`` on the client side must read what the
lab seals and seal what the lab reads, message after message (each side's RC4 stream and
sequence number move on with every message, so one wrong step fails every later one).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import spnego
import spnego.exceptions
from pypsrp.encryption import WinRMEncryption
from pypsrp.exceptions import WinRMError

from mock_remoting.credentials import LAB_PASSWORD, LAB_USERNAME
from mock_remoting.server import ntlm_store
from mock_remoting.server.auth import AuthState, ConnectionAuth
from mock_remoting.server.sealing import NtlmSeal, SealedMessages, SealError

MESSAGES = (
    b"<s:Envelope>first</s:Envelope>",
    b"",
    "<s:Envelope>\u00e9\u4e2d--Encrypted Boundary\r\n inside the text</s:Envelope>".encode(),
    bytes(range(256)) * 40,
    b"x" * 70000,
    bytes(range(256)) * 8 + b"y" * 47,  # the lab encrypts in pieces of 2,047 bytes: one and one more
    b"z" * 2047,
)


@pytest.fixture
def ntlm_users() -> Iterator[None]:
    ntlm_store.acquire()
    yield
    ntlm_store.release()


def handshake(scheme: str) -> tuple[Any, ConnectionAuth]:
    """A completed client context and the lab connection that accepted it."""
    protocol = "ntlm" if scheme == "NTLM" else "negotiate"
    client = spnego.client(
        LAB_USERNAME,
        LAB_PASSWORD,
        hostname="ex01",
        protocol=protocol,
        options=spnego.NegotiateOptions.wrapping_winrm,
    )
    server = ConnectionAuth()
    token = client.step()
    for _ in range(4):
        assert token is not None
        result = server.check(f"{scheme} {base64.b64encode(token).decode()}")
        reply = dict(result.headers).get("WWW-Authenticate")
        answer = base64.b64decode(reply.split(" ", 1)[1]) if reply is not None else None
        if result.state is AuthState.OK:
            if answer is not None and not client.complete:
                client.step(answer)  # SPNEGO's mechListMIC
            break
        assert result.state is AuthState.CONTINUE
        token = client.step(answer)
    assert server.negotiated and client.complete and server.encryption is not None
    return client, server


@pytest.mark.parametrize("scheme", ["Negotiate", "NTLM"])
def test_sealed_both_ways_with_pypsrp(ntlm_users: None, scheme: str) -> None:
    client, server = handshake(scheme)
    assert server.encryption is not None
    assert NtlmSeal.of(server.encryption.context) is not None  # the lab's own NTLM sealing
    theirs = WinRMEncryption(client, WinRMEncryption.SPNEGO)
    for message in MESSAGES * 2:
        _, sealed = theirs.wrap_message(message)
        assert server.encryption.unwrap_message(sealed, "Encrypted Boundary") == message
        content_type, answer = server.encryption.wrap_message(message[::-1])
        assert content_type == "multipart/encrypted"
        assert theirs.unwrap_message(answer, "Encrypted Boundary") == message[::-1]


def test_tampered_or_replayed_messages_are_refused(ntlm_users: None) -> None:
    client, server = handshake("Negotiate")
    assert server.encryption is not None
    theirs = WinRMEncryption(client, WinRMEncryption.SPNEGO)
    _, first = theirs.wrap_message(b"<one/>")
    assert server.encryption.unwrap_message(first, "Encrypted Boundary") == b"<one/>"
    with pytest.raises(spnego.exceptions.BadMICError):  # the same message again: old sequence number
        server.encryption.unwrap_message(first, "Encrypted Boundary")
    client2, server2 = handshake("Negotiate")
    assert server2.encryption is not None
    _, sealed = WinRMEncryption(client2, WinRMEncryption.SPNEGO).wrap_message(b"<two/>")
    flipped = bytearray(sealed)
    flipped[-30] ^= 0x01  # a bit of the sealed message
    with pytest.raises(spnego.exceptions.BadMICError):
        server2.encryption.unwrap_message(bytes(flipped), "Encrypted Boundary")
    client3, server3 = handshake("Negotiate")
    assert server3.encryption is not None
    _, sealed = WinRMEncryption(client3, WinRMEncryption.SPNEGO).wrap_message(b"<three/>")
    with pytest.raises(SealError):
        server3.encryption.unwrap_message(sealed.replace(b"Length=8", b"Length=9"), "Encrypted Boundary")
    with pytest.raises(SealError):
        server3.encryption.unwrap_message(b"--Encrypted Boundary\r\n\tType: x\r\n", "Encrypted Boundary")


class _Reversing:
    """A security context that is not NTLM (what a Kerberos context is to SealedMessages): its
    wrap_winrm reverses the bytes and reports padding, so the framing is all that differs."""

    def wrap_winrm(self, data: bytes) -> tuple[bytes, bytes, int]:
        return b"HDR!" * 4, data[::-1], 3

    def unwrap_winrm(self, header: bytes, data: bytes) -> bytes:
        assert header == b"HDR!" * 4
        return data[::-1]


def test_framing_is_pypsrps_byte_for_byte() -> None:
    ours = SealedMessages(_Reversing())
    theirs = WinRMEncryption(_Reversing(), WinRMEncryption.SPNEGO)
    for message in MESSAGES:
        assert ours.wrap_message(message) == theirs.wrap_message(message)
    # Exchange writes "-- Encrypted Boundary" (a space after the dashes); pypsrp reads both.
    _, framed = theirs.wrap_message(b"abc")
    spaced = framed.replace(b"--Encrypted Boundary", b"-- Encrypted Boundary")
    with pytest.raises(WinRMError):  # the padding of 3 makes the reported length 6, not 3
        theirs.unwrap_message(spaced, "Encrypted Boundary")
    with pytest.raises(SealError):
        ours.unwrap_message(spaced, "Encrypted Boundary")
    unpadded = spaced.replace(b"Length=6", b"Length=3")
    assert (
        ours.unwrap_message(unpadded, "Encrypted Boundary")
        == theirs.unwrap_message(unpadded, "Encrypted Boundary")
        == b"abc"
    )
