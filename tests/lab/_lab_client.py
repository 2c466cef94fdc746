"""A pypsrp client for one host of a running Lab, opened the way exfix opens a host: the
Exchange endpoint (Microsoft.Exchange) and the OS endpoint, over real sockets on 127.0.0.1.
Shared by the tests that drive the shipped scenarios over the wire."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool

from mock_remoting.credentials import LAB_PASSWORD, LAB_USERNAME

EXCHANGE = "Microsoft.Exchange"


def _wsman(port: int, path: str) -> Any:
    from pypsrp.wsman import WSMan

    return WSMan(
        "127.0.0.1",
        port=port,
        path=path,
        ssl=False,
        auth="basic",
        encryption="never",
        username=LAB_USERNAME,
        password=LAB_PASSWORD,
        cert_validation=False,
        read_timeout=15,
        connection_timeout=5,
    )


class Client:
    """One host's two endpoints, as exfix opens them."""

    def __init__(self, exchange: RunspacePool, os_pool: RunspacePool) -> None:
        self.exchange = exchange
        self.os = os_pool

    @staticmethod
    def _run(pool: RunspacePool, cmdlet: str, params: dict[str, Any]) -> tuple[list[Any], PowerShell]:
        ps = PowerShell(pool)
        ps.add_cmdlet(cmdlet)
        for name, value in params.items():
            ps.add_parameter(name, value)
        output = ps.invoke()
        return output, ps

    def ex(self, cmdlet: str, **params: Any) -> list[Any]:
        output, ps = self._run(self.exchange, cmdlet, params)
        assert ps.state == PSInvocationState.COMPLETED, ps.streams.error
        assert not ps.streams.error, [str(e) for e in ps.streams.error]
        return output

    def os_(self, cmdlet: str, **params: Any) -> list[Any]:
        output, ps = self._run(self.os, cmdlet, params)
        assert ps.state == PSInvocationState.COMPLETED, ps.streams.error
        assert not ps.streams.error, [str(e) for e in ps.streams.error]
        return output

    def queues(self) -> dict[str, dict[str, Any]]:
        return {q.adapted_properties["NextHopDomain"]: q.adapted_properties for q in self.ex("Get-Queue")}

    def retry_all(self) -> None:
        for queue in self.ex("Get-Queue"):
            self.ex("Retry-Queue", Identity=queue.adapted_properties["Identity"])


@contextmanager
def connect(lab: Any, host: str) -> Iterator[Client]:
    port = lab.endpoint(host).port
    with (
        RunspacePool(_wsman(port, "PowerShell"), configuration_name=EXCHANGE) as exchange,
        RunspacePool(_wsman(port, "wsman")) as os_pool,
    ):
        yield Client(exchange, os_pool)
