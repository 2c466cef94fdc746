"""One host's two sessions (Exchange and OS), opened lazily and closed together."""

from __future__ import annotations

import logging
import os
import random
import time
import urllib.request
from collections.abc import Callable
from types import TracebackType

from agent.errors import UsageError
from agent.model import catalogue
from agent.model.command import CmdletCall, Endpoint
from agent.model.credential import Credential
from agent.model.remote import RemoteObject
from agent.model.target import Auth, EndpointConfig, HostTarget, OsTransport, PsrpClient, Scheme
from agent.transport._session import RetryingSession
from agent.transport.base import CommandResult, Session
from agent.transport.deadline import HostDeadline
from agent.transport.psrp import PsrpSession
from agent.transport.psrpcore_session import PsrpcoreSession
from agent.transport.retry import RetryPolicy
from agent.transport.winrm import WinrmSession

log = logging.getLogger("agent.transport")

__all__ = ["DEFAULT_PSRP_CLIENT", "PSRP_CLIENT_ENV", "HostConnection", "connect", "psrp_session_class"]

# The PSRP client a host gets when neither the environment nor the inventory names one:
# psrpcore, since it passed every transport, end-to-end and request-budget test and took about
# a third of pypsrp's client CPU per host in bench/fleet_scan.py (bench/README.md). pypsrp
# stays for what psrpcore_unsupported() names, and for ``exfix_psrp_client: pypsrp``.
DEFAULT_PSRP_CLIENT = PsrpClient.PSRPCORE
# Overrides exfix_psrp_client for every host: how the test suite runs each transport test on
# both clients (.ci/run).
PSRP_CLIENT_ENV = "EXFIX_PSRP_CLIENT"


def chosen_psrp_client(target: HostTarget) -> PsrpClient:
    """EXFIX_PSRP_CLIENT, else the host's exfix_psrp_client, else DEFAULT_PSRP_CLIENT."""
    value = os.environ.get(PSRP_CLIENT_ENV, "").strip().lower()
    if value:
        try:
            return PsrpClient(value)
        except ValueError:
            choices = ", ".join(c.value for c in PsrpClient)
            raise UsageError(f"{PSRP_CLIENT_ENV}={value!r}: expected one of {choices}") from None
    return target.psrp_client or DEFAULT_PSRP_CLIENT


def psrpcore_unsupported(target: HostTarget, config: EndpointConfig) -> str | None:
    """Why the psrpcore transport cannot serve this endpoint (the host then keeps pypsrp), or
    None. Not built there: CredSSP and certificate authentication (pypsrp takes them from
    requests-credssp and requests' client certificates), and HTTP proxies."""
    if config.auth in (Auth.CREDSSP, Auth.CERTIFICATE):
        return f"{config.auth.value} authentication"
    if config.proxy:
        return "an HTTP proxy (ansible_psrp_proxy)"
    if not config.ignore_proxy:
        scheme = "https" if config.scheme is Scheme.HTTPS else "http"
        # The environment's proxy, as requests reads it for pypsrp (urllib's own functions).
        if urllib.request.getproxies().get(scheme) and not urllib.request.proxy_bypass(config.host):
            return "the environment's HTTP proxy"
    return None


def psrp_session_class(target: HostTarget, endpoint: Endpoint) -> type[RetryingSession]:
    """The PSRP session class for one endpoint of ``target`` (see :func:`chosen_psrp_client`)."""
    if chosen_psrp_client(target) is PsrpClient.PSRPCORE:
        config = target.exchange if endpoint is Endpoint.EXCHANGE else target.os
        reason = psrpcore_unsupported(target, config)
        if reason is None:
            return PsrpcoreSession
        log.debug(
            "%s: %s uses pypsrp: the psrpcore transport does not do %s", target.name, config.url, reason
        )
    return PsrpSession


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
        exchange_class = psrp_session_class(target, Endpoint.EXCHANGE)
        self.exchange: RetryingSession = exchange_class(
            target, Endpoint.EXCHANGE, credential, self.deadline, retry=retry, sleep=sleep, rand=rand
        )
        os_class = (
            WinrmSession
            if target.os_transport is OsTransport.WINRM
            else psrp_session_class(target, Endpoint.OS)
        )
        self.os: RetryingSession = os_class(
            target, Endpoint.OS, credential, self.deadline, retry=retry, sleep=sleep, rand=rand
        )

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
