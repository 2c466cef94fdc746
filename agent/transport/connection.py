"""One host's two sessions (Exchange and OS), opened lazily and closed together."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from types import TracebackType

from agent.model import catalogue
from agent.model.command import CmdletCall, Endpoint
from agent.model.credential import Credential
from agent.model.remote import RemoteObject
from agent.model.target import HostTarget, OsTransport
from agent.transport._session import RetryingSession
from agent.transport.base import CommandResult, Session
from agent.transport.deadline import HostDeadline
from agent.transport.psrp import PsrpSession
from agent.transport.retry import RetryPolicy
from agent.transport.winrm import WinrmSession

log = logging.getLogger("agent.transport")

__all__ = ["HostConnection", "connect"]


class HostConnection:
    """``.exchange`` and ``.os`` sessions of one host, under one :class:`HostDeadline`.

    Nothing touches the network until the first command on a session. Use as a context
    manager so both remote sessions are removed when the host is done::

        with connect(target, credential) as conn:
            servers = conn.exchange.run(CmdletCall(Endpoint.EXCHANGE, "Get-ExchangeServer"))
            clients = conn.os.run(CmdletCall(Endpoint.OS, "Get-DnsClient"))
    """

    def __init__(
        self,
        target: HostTarget,
        credential: Credential,
        deadline: HostDeadline | None = None,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.target = target
        self.deadline = deadline or HostDeadline(target.name, target.timeouts.host)
        options = {"retry": retry, "sleep": sleep, "rand": rand}
        self.exchange: RetryingSession = PsrpSession(
            target, Endpoint.EXCHANGE, credential, self.deadline, **options
        )
        os_class = WinrmSession if target.os_transport is OsTransport.WINRM else PsrpSession
        self.os: RetryingSession = os_class(target, Endpoint.OS, credential, self.deadline, **options)

    def __repr__(self) -> str:
        return f"<HostConnection {self.target.name} exchange={self.exchange!r} os={self.os!r}>"

    @property
    def host(self) -> str:
        return self.target.name

    def session(self, endpoint: Endpoint) -> Session:
        """The session ``endpoint`` names (typed as the Session protocol both implement)."""
        return self.exchange if endpoint is Endpoint.EXCHANGE else self.os

    def invoke(self, call: CmdletCall, *, timeout: float | None = None) -> CommandResult:
        """Run ``call`` on the session its endpoint names.

        Every command exfix sends to a host passes here, and only what the command catalogue
        declares goes out: what `exfix rbac` grants is then exactly what exfix can send
        (:class:`agent.model.catalogue.UndeclaredCommand`, a ValueError: a bug, not a host fault).
        The sessions themselves stay general clients."""
        catalogue.check(call)
        return self.session(call.endpoint).invoke(call, timeout=timeout)

    def run(self, call: CmdletCall, *, timeout: float | None = None) -> tuple[RemoteObject, ...]:
        catalogue.check(call)
        return self.session(call.endpoint).run(call, timeout=timeout)

    def close(self) -> None:
        """Close both sessions (removing the remote runspace pools). Never raises."""
        for session in (self.exchange, self.os):
            session.close()

    def __enter__(self) -> HostConnection:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def connect(
    target: HostTarget,
    credential: Credential,
    deadline: HostDeadline | None = None,
    *,
    retry: RetryPolicy | None = None,
) -> HostConnection:
    """A :class:`HostConnection` for ``target`` (lazily opened; see its docstring).

    ``deadline`` defaults to the target's ``exfix_host_timeout``.
    """
    return HostConnection(target, credential, deadline, retry=retry)
