"""Fixtures for the transport tests: the lab's protocol server on 127.0.0.1 port 0.

``transport_server(https=False)`` starts mock_remoting.server.LabServer with one
:class:`TransportRuntime` host and returns a :class:`ServerHandle`; ``handle.target(**vars)``
builds the HostTarget exfix's inventory code makes for it (lab credentials, lab ports), with
inventory variables overridden by ``vars``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from agent.inventory import inventory_from_mapping
from agent.model.credential import Credential, CredentialSource, Secret
from agent.model.target import HostTarget
from agent.transport import HostConnection, HostDeadline, RetryPolicy
from mock_remoting.credentials import LAB_PASSWORD, LAB_USERNAME
from mock_remoting.server import LabServer
from transport._runtime import TransportRuntime

# Retries without real waiting: the backoff schedule is unit-tested on its own.
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


@dataclass
class ServerHandle:
    server: LabServer
    runtime: TransportRuntime

    @property
    def name(self) -> str:
        return self.runtime.name

    def target(self, **variables: Any) -> HostTarget:
        endpoint = self.server.endpoint(self.name)
        https = bool(self.server.https)
        port = endpoint.https_port if https else endpoint.port
        host_vars: dict[str, Any] = {
            "ansible_host": "127.0.0.1",
            "ansible_port": port,
            "ansible_user": LAB_USERNAME,
            "ansible_password": LAB_PASSWORD,
            "ansible_psrp_auth": "ntlm",
            "ansible_psrp_protocol": "https" if https else "http",
            "ansible_psrp_cert_validation": "ignore",
            "exfix_exchange_port": port,
            "exfix_exchange_protocol": "https" if https else "http",
            "exfix_exchange_auth": "ntlm",
            "exfix_command_timeout": 20,
            "exfix_host_timeout": 60,
        }
        host_vars.update(variables)
        host_vars = {k: v for k, v in host_vars.items() if v is not None}
        inventory = inventory_from_mapping({"all": {"hosts": {self.name: host_vars}}}, "<transport tests>")
        return inventory.hosts[0]

    def credential(self, target: HostTarget, password: str = LAB_PASSWORD) -> Credential:
        return Credential(CredentialSource.INVENTORY, target.credential.username, Secret(password))

    def connect(
        self,
        target: HostTarget | None = None,
        *,
        seconds: float | None = 60,
        retry: RetryPolicy = FAST_RETRY,
        credential: Credential | None = None,
        sleeps: list[float] | None = None,
    ) -> HostConnection:
        target = target or self.target()
        record = sleeps if sleeps is not None else []
        return HostConnection(
            target,
            credential or self.credential(target),
            HostDeadline(target.name, seconds),
            retry=retry,
            sleep=record.append,
        )

    def count(self, endpoint: str | None = None, action: str | None = None) -> int:
        return self.server.counters.get(self.name, endpoint, action)


@pytest.fixture
def transport_server() -> Iterator[Callable[..., ServerHandle]]:
    started: list[LabServer] = []

    def make(*, https: bool = False) -> ServerHandle:
        runtime = TransportRuntime()
        server = LabServer(https=https, workers=8)
        server.add_host(runtime)
        server.start()
        started.append(server)
        return ServerHandle(server, runtime)

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
