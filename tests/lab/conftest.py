"""Lab fixtures shared by the lab tests (and by any integration test that needs a lab).

``lab``         factory: ``lab(scenario, hosts=None, auth="ntlm", https=False, latency_ms=0)``
                starts a :class:`mock_remoting.lab.Lab` from a scenario (the real emulation) and
                stops it after the test.
``lab_server``  factory: ``lab_server(*runtimes, https=False, recorder=None)`` starts the bare
                protocol server for the given HostRuntime objects (default: one FakeRuntime).
``pypsrp_wsman``helper: a pypsrp WSMan for a lab endpoint with the lab credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lab.server._fake_runtime import FakeRuntime
from mock_remoting.credentials import LAB_PASSWORD, LAB_USERNAME
from mock_remoting.server import LabServer

pytestmark = pytest.mark.lab


@pytest.fixture
def lab_server() -> Iterator[Callable[..., LabServer]]:
    started: list[LabServer] = []

    def make(*runtimes: Any, https: bool = False, recorder: Any = None, latency_ms: float = 0.0) -> LabServer:
        server = LabServer(https=https, recorder=recorder, latency_ms=latency_ms, workers=8)
        for runtime in runtimes or (FakeRuntime(),):
            server.add_host(runtime)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def wsman_for(
    port: int,
    *,
    path: str = "PowerShell",
    auth: str = "basic",
    ssl: bool = False,
    encryption: str | None = None,
    password: str = LAB_PASSWORD,
    **kwargs: Any,
) -> Any:
    """A pypsrp WSMan for a lab port (Basic over HTTP needs encryption='never')."""
    from pypsrp.wsman import WSMan

    if encryption is None:
        encryption = "never" if auth == "basic" and not ssl else "auto"
    kwargs.setdefault("read_timeout", 15)
    kwargs.setdefault("connection_timeout", 5)
    return WSMan(
        "127.0.0.1",
        port=port,
        path=path,
        ssl=ssl,
        auth=auth,
        encryption=encryption,
        username=LAB_USERNAME,
        password=password,
        cert_validation=False,
        **kwargs,
    )


@pytest.fixture
def pypsrp_wsman() -> Callable[..., Any]:
    return wsman_for
