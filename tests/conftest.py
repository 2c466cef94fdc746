"""Shared fixtures. The network guard here applies to every test in the suite.

Layout: tests/<package>/ tests agent/<package>/ and tests/test_<module>.py tests
agent/<module>.py; tests/lab/ tests mock_remoting/ (server/, exchange/, dns/ below it) and
tests/e2e/ runs the whole CLI over the lab. Helpers are never named test_*: a folder's own
helpers are _name.py beside its tests, and helpers several folders use live in tests/support/.

Imports: tests/ is the import root of the test code. It has no __init__.py, so pytest (its
default "prepend" import mode) puts tests/ itself on sys.path, and every test folder is a
package imported by its path from there: ``from support.facts_builders import host``,
``from lab.server._fake_runtime import FakeRuntime``. An __init__.py in tests/ would put the
repository root on sys.path instead, and plain ``pytest`` (the README's command, after a
non-editable ``pip install '.[test]'``) would then test the source tree rather than the
installed package.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"


class NetworkGuardViolation(AssertionError):
    """A test (or the lab it started) tried to reach an address outside 127.0.0.0/8."""


_violations: list[str] = []


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths and the like never leave the machine
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a name that is not localhost would need a lookup: refuse it
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _check(sock: socket.socket, address: Any, what: str) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        message = f"network guard: {what} to {address!r} is outside 127.0.0.0/8"
        _violations.append(message)
        raise NetworkGuardViolation(message)


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_sendto = socket.socket.sendto


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check(self, address, "connect")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(self, address, "connect")
    return _real_connect_ex(self, address)


def _guarded_sendto(self: socket.socket, data: Any, *args: Any) -> int:
    _check(self, args[-1], "sendto")
    return _real_sendto(self, data, *args)  # type: ignore[arg-type]


# exfix honours the environment's proxy, as Ansible's psrp and winrm plugins do; a proxy set on
# the machine that runs the tests would send lab traffic (127.0.0.1) to it, and the exfix
# subprocesses the end-to-end tests start are beyond the socket guard below. The suite talks
# to 127.0.0.0/8 only, so it runs without them.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def pytest_configure(config: pytest.Config) -> None:
    for name in PROXY_VARIABLES:
        os.environ.pop(name, None)
    # Installed for the whole session, so threads the lab starts are covered too.
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = _guarded_sendto  # type: ignore[method-assign,assignment]


def pytest_report_header(config: pytest.Config) -> str:
    """Which PSRP client the run's transport tests use (.ci/run runs them on each)."""
    from agent.transport.connection import DEFAULT_PSRP_CLIENT, PSRP_CLIENT_ENV

    chosen = os.environ.get(PSRP_CLIENT_ENV) or f"{DEFAULT_PSRP_CLIENT.value} (the default)"
    return f"exfix PSRP client: {chosen} ({PSRP_CLIENT_ENV})"


@pytest.fixture(autouse=True)
def network_guard() -> Iterator[None]:
    """Fails the test if anything, in any thread, tried a non-loopback connection during it."""
    start = len(_violations)
    yield
    new = _violations[start:]
    if new:
        pytest.fail("; ".join(new), pytrace=False)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``../shared/fixtures``, read in place. Tests that need it skip where it is absent."""
    if not FIXTURES.is_dir():
        pytest.skip(f"real-data fixtures not found at {FIXTURES} (../shared is absent beside the checkout)")
    return FIXTURES


@pytest.fixture
def lab() -> Iterator[Callable[..., Any]]:
    """``lab(scenario, **options)`` starts a :class:`mock_remoting.lab.Lab` on 127.0.0.1
    (port 0) and stops every lab it started when the test ends."""
    from mock_remoting.lab import Lab

    labs: list[Any] = []

    def make(scenario: str | Path, **kwargs: Any) -> Any:
        instance = Lab(scenario, **kwargs)
        instance.start()
        labs.append(instance)
        return instance

    yield make
    for instance in labs:
        instance.stop()
