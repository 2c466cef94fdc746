"""The seam between the lab's protocol server and its host emulation.

``mock_remoting.server`` speaks HTTP, WS-Management, PSRP and WinRS. It turns what a client
asked for into :class:`Command` values and hands them to a :class:`HostRuntime`, which is the
emulated Exchange host (``mock_remoting.exchange``). The runtime answers with an
:class:`InvocationResult`; the server serializes it the way a real server would.

Neither side reaches into the other: the server knows nothing of Exchange, and the emulation
knows nothing of sockets, envelopes or fragments.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class Endpoint(str, enum.Enum):
    """The two PSRP configurations a host serves."""

    EXCHANGE = "Microsoft.Exchange"  # http://<host>/PowerShell, NoLanguage mode, cmdlets only
    OS = "Microsoft.PowerShell"  # http://<host>:5985/wsman, the OS cmdlets


@dataclass(frozen=True)
class Parameter:
    """One parameter or argument of a command, in the order the client sent it.

    ``name`` is None for a positional argument. ``value`` is what psrpcore deserialized:
    str, int, bool, None, list, dict, or a psrpcore PSObject. A switch given without a value
    arrives as ``True``.
    """

    name: str | None
    value: Any


@dataclass(frozen=True)
class Command:
    """One command of a pipeline. When ``is_script`` is true, ``name`` holds the script text."""

    name: str
    is_script: bool = False
    parameters: tuple[Parameter, ...] = ()


@dataclass(frozen=True)
class RawClixml:
    """One ``<Obj>`` element, sent to the client exactly as given (replayed real captures)."""

    xml: str


@dataclass
class InvocationResult:
    """What a pipeline produced.

    ``output`` holds psrpcore PSObjects, primitives, or :class:`RawClixml`. ``errors`` are
    non-terminating ErrorRecords (psrpcore.types.ErrorRecord) that go to the error stream;
    the pipeline still ends Completed. ``failure`` is a terminating ErrorRecord: the pipeline
    ends Failed with it. ``exit_code`` is what powershell.exe would exit with (WinRS only).

    ``cache_key``, when the runtime sets it, is its promise that every result carrying the
    same key has the same ``output``: the server may then send the CLIXML it serialized for
    an earlier result with that key instead of serializing again (serialization is most of
    the lab's CPU). The runtime changes the key whenever the state behind the answer may have
    changed.
    """

    output: list[Any] = field(default_factory=list)
    errors: list[Any] = field(default_factory=list)
    failure: Any | None = None
    exit_code: int = 0
    cache_key: Hashable | None = None


class HostRuntime(Protocol):
    """One emulated host, as the protocol server sees it. Implementations are thread-safe."""

    @property
    def name(self) -> str:
        """The host's FQDN, used in counters and logs."""
        ...

    def invoke(
        self,
        endpoint: Endpoint,
        pipeline: Sequence[Command],
        cancel: threading.Event,
    ) -> InvocationResult:
        """Run a PSRP pipeline. May block (Start-Sleep); must return soon after ``cancel`` is set."""
        ...

    def run_script(self, script: str, cancel: threading.Event) -> InvocationResult:
        """Run the text given to ``powershell -EncodedCommand`` over WinRS (OS cmdlets only)."""
        ...


@runtime_checkable
class SessionRuntimes(Protocol):
    """A host whose account's rights depend on the session configuration (least privilege).

    ``configurations``: session configurations the host serves beyond the two standard ones
    (a JEA endpoint's name). ``session_runtime``: the runtime a shell of ``configuration``
    (``Microsoft.Exchange``, ``Microsoft.PowerShell``, a JEA name, or ``cmd`` for WinRS) runs
    on; None when the account may not open it, which the server answers "Access is denied."
    """

    def configurations(self) -> tuple[str, ...]: ...

    def session_runtime(self, configuration: str) -> HostRuntime | None: ...


# The attribute vouch_record sets on a record (object.__setattr__: psrpcore's PSObject takes
# any other attribute set on it for a property of the object).
_RECORD_KEY = "_exfix_lab_record_key"


def vouch_record(record: Any, key: Hashable) -> None:
    """The runtime's promise about one ErrorRecord, as ``InvocationResult.cache_key`` is about
    output: every record vouched for with an equal key is equal (and is not changed after),
    so the server may send the CLIXML it serialized for an earlier one. The key travels with
    the record wherever the runtime puts it (errors, a failure)."""
    object.__setattr__(record, _RECORD_KEY, key)


def record_key(record: Any) -> Hashable | None:
    """The key :func:`vouch_record` gave ``record``, or None."""
    try:
        key: Hashable = object.__getattribute__(record, _RECORD_KEY)
    except AttributeError:
        return None
    return key


@runtime_checkable
class QuickReads(Protocol):
    """A host that can tell which pipelines it answers at once from memory.

    ``answers_at_once`` is true for a pipeline that only reads the host's state: it neither
    waits (Start-Sleep) nor goes to the network (Resolve-DnsName) nor changes anything. The
    server runs such a pipeline on its event loop instead of handing it to a worker thread
    and back, which cost more CPU than most reads themselves (py-spy ``--gil`` on a
    mixed-fleet scan: ``ThreadPoolExecutor.submit`` alone was 7 % of the lab's CPU, 12 % once
    the serializer was cut).
    """

    def answers_at_once(self, endpoint: Endpoint, pipeline: Sequence[Command]) -> bool: ...
