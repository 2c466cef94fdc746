"""What the WSMan layer needs from a shell (PSRP runspace pool or WinRS cmd shell)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mock_remoting.backend import HostRuntime
from mock_remoting.server.clixml_cache import ClixmlCache, ParsedCache
from mock_remoting.server.wsman import Request, StreamChunk


@dataclass(frozen=True, slots=True)
class Poll:
    """What a Receive returns now: stream chunks, the command state (None: no CommandState
    element), and the exit code that goes with a Done state."""

    chunks: tuple[StreamChunk, ...]
    state: str | None
    exit_code: int | None = None


@dataclass
class ShellContext:
    """What every shell gets from the server: the host runtime, a thread pool for invocations,
    the event loop (to come back to it from worker threads) and a change notifier."""

    runtime: HostRuntime
    executor: concurrent.futures.Executor
    loop: asyncio.AbstractEventLoop
    notify: Callable[[], None]
    clixml: ClixmlCache | None = None  # serialized answers, shared by every host of the server
    parsed: ParsedCache | None = None  # deserialized CreatePipeline messages, likewise

    def run(
        self,
        work: Callable[[threading.Event], object],
        cancel: threading.Event,
        done: Callable[[object, BaseException | None], None],
        inline: bool = False,
    ) -> None:
        """Run ``work(cancel)`` on the pool; call ``done(result, error)`` back on the loop.
        ``inline``: the work is known to be short and not to block (``backend.QuickReads``):
        run it here, on the loop, and still call ``done`` from the loop's next turn, as a
        pooled result would be."""
        if inline:
            try:
                outcome, failure = work(cancel), None
            except Exception as error:
                outcome, failure = None, error
            self.loop.call_soon(self._complete, done, outcome, failure)
            return

        def finished(future: concurrent.futures.Future[object]) -> None:
            error = future.exception()
            result = None if error is not None else future.result()
            self.loop.call_soon_threadsafe(self._complete, done, result, error)

        future = self.executor.submit(work, cancel)
        future.add_done_callback(finished)

    def _complete(
        self,
        done: Callable[[object, BaseException | None], None],
        result: object,
        error: BaseException | None,
    ) -> None:
        done(result, error)
        self.notify()


class Shell(Protocol):
    shell_id: str
    resource_uri: str
    endpoint: str  # "exchange" | "os" | "winrs"
    input_streams: str
    output_streams: str

    def command(self, request: Request) -> str: ...

    def send(self, request: Request) -> str: ...

    def signal(self, request: Request) -> str: ...

    def poll(self, command_id: str | None, budget: int) -> Poll | None:
        """Output ready for a Receive, or None when there is nothing yet (the Receive waits)."""
        ...

    def after_receive(self, command_id: str | None) -> None:
        """Called once a Receive response with data has been built."""
        ...

    def close(self) -> None: ...


def take_chunks(queue: list[StreamChunk], budget: int) -> tuple[StreamChunk, ...]:
    """Pop chunks from the front of ``queue`` while their base64 text fits in ``budget``
    (at least one, so a single oversized chunk still moves)."""
    taken: list[StreamChunk] = []
    used = 0
    while queue:
        size = len(queue[0].data) + 160
        if taken and used + size > budget:
            break
        taken.append(queue.pop(0))
        used += size
    return tuple(taken)


def pack_fragment(object_id: int, fragment_id: int, data: bytes, end: bool) -> bytes:
    """MS-PSRP 2.2.4 fragment: object id, fragment id, start/end flags, length, data."""
    flags = (0x1 if fragment_id == 0 else 0) | (0x2 if end else 0)
    return struct.pack(">QQBI", object_id, fragment_id, flags, len(data)) + data


_XML_CONTROLS = re.compile(rb"[\x00-\x08\x0b-\x1f]")


def escape_xml_controls(xml: bytes) -> bytes:
    """Escape C0 control characters (and CR) the CLIXML way (``_x001B_``, ``_x000D_``).

    They cannot appear in XML 1.0 (and a raw CR is normalized away by every XML parser), and
    psrpcore 0.3.1 writes an object's ``<ToString>`` without escaping them: an ANSI escape in
    an error message would make the whole message unparsable for the client. Serializers never
    put these bytes in markup, only in text, and bytes >= 0x80 are untouched (UTF-8 intact).
    """
    return _XML_CONTROLS.sub(lambda m: b"_x%04X_" % m.group()[0], xml)


def escape_fragment(fragment: bytes) -> bytes:
    """:func:`escape_xml_controls` for one PSRP fragment, keeping its binary headers intact:
    the 21-byte fragment header, and the 40-byte message header in a start fragment."""
    flags = fragment[16]
    skip = 21 + (40 if flags & 0x1 else 0)
    body = fragment[skip:]
    if not _XML_CONTROLS.search(body):
        return fragment
    escaped = escape_xml_controls(body)
    header = bytearray(fragment[:skip])
    struct.pack_into(">I", header, 17, len(fragment) - 21 - len(body) + len(escaped))
    return bytes(header) + escaped
