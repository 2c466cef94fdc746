"""The Session interface every transport implements, and what a command returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from agent.model.command import CmdletCall, Endpoint
from agent.model.remote import RemoteError, RemoteObject

__all__ = ["READ_ONLY_CMDLETS", "CommandResult", "Session", "is_safe_to_retry"]


@dataclass(frozen=True, slots=True)
class CommandResult:
    """Everything one cmdlet produced: its output objects, its error records, its warnings.

    A non-terminating error leaves the pipeline "Completed" (pypsrp's ``had_errors`` stays
    False), so ``errors`` is read from the error stream itself and is the only thing to check.
    """

    objects: tuple[RemoteObject, ...] = ()
    errors: tuple[RemoteError, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "objects": len(self.objects),
            "errors": [error.to_dict() for error in self.errors],
            "warnings": list(self.warnings),
        }


class Session(Protocol):
    """One endpoint of one host. Opened lazily on the first command, reused, closed once.

    Not thread-safe: a host belongs to one worker at a time.
    """

    host: str
    endpoint: Endpoint

    def invoke(self, call: CmdletCall, *, timeout: float | None = None) -> CommandResult:
        """Run one cmdlet within ``min(timeout, the host's remaining time)``.

        Raises agent.errors HostError subclasses for transport failures (UnreachableError,
        HostTimeoutError, AuthenticationError, WSManFaultError); error records the cmdlet
        wrote are returned in ``CommandResult.errors``, not raised.
        """
        ...

    def run(self, call: CmdletCall, *, timeout: float | None = None) -> tuple[RemoteObject, ...]:
        """Like :meth:`invoke`, but raises CmdletError for the first error record."""
        ...

    def close(self) -> None:
        """Release the remote runspace pool / shell. Idempotent; never raises."""
        ...


# Reads that may be sent again after a transport failure: running them twice changes nothing.
# Everything else (Set-*, New-*, Restart-Service, Register-DnsClient, Retry-Queue, ...) is
# never re-sent blindly: once the request may have reached the host, a second run could apply a
# change twice, and apply must run exactly what was planned, once.
READ_ONLY_CMDLETS = frozenset({"resolve-dnsname"})


def is_safe_to_retry(call: CmdletCall) -> bool:
    """True for reads (``Get-*``, ``Resolve-DnsName``)."""
    name = call.cmdlet.lower()
    return name.startswith("get-") or name in READ_ONLY_CMDLETS
