"""The request budget of one session, counted by the lab: the protocol minimum exfix claims
(bench/README.md). Opening a pool: Create + 2 Receives; each cmdlet: Command + Receive; no
Signal for a completed pipeline until a pool holds 10 of them; one Delete at the end. Both PSRP
clients send the same WSMan requests; they differ in the NTLM handshake of each connection:
pypsrp sends an anonymous POST first to learn the server's offer (3 requests), the psrpcore
transport starts with the inventory's mechanism (2 requests).

Each test pins its client with EXFIX_PSRP_CLIENT, whatever the run's own setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.inventory import load_inventory
from agent.model.command import CmdletCall, Endpoint
from agent.transport import HostConnection, HostDeadline
from agent.transport.connection import PSRP_CLIENT_ENV
from agent.transport.psrp import PsrpSession
from agent.transport.psrpcore_session import PsrpcoreSession

pytestmark = pytest.mark.lab

GET_DNS_CLIENT = CmdletCall(Endpoint.OS, "Get-DnsClient")
GET_EXCHANGE_SERVER = CmdletCall(Endpoint.EXCHANGE, "Get-ExchangeServer")
SESSIONS = {"pypsrp": PsrpSession, "psrpcore": PsrpcoreSession}
# HTTP requests of one connection's NTLM handshake (the lab's "http auth" counter).
NTLM_HANDSHAKE = {"pypsrp": 3, "psrpcore": 2}


@pytest.mark.parametrize("client", sorted(SESSIONS))
@pytest.mark.parametrize(("cmdlets", "signals"), [(3, 0), (10, 0), (13, 3)])
def test_requests_per_session_are_the_protocol_minimum(
    lab: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: str, cmdlets: int, signals: int
) -> None:
    monkeypatch.setenv(PSRP_CLIENT_ENV, client)
    running = lab("healthy", auth="basic")
    inventory = load_inventory(running.write_inventory(tmp_path / "inventory.yaml"))
    target = inventory.select(None)[0]
    credential = inventory.credentials().resolve(target)
    with HostConnection(target, credential, HostDeadline(target.name, 60)) as conn:
        assert type(conn.os) is SESSIONS[client]
        for _ in range(cmdlets):
            assert conn.os.run(GET_DNS_CLIENT)
    counters = running.counters
    host = running.host_name(target.name)

    def count(action: str) -> int:
        return int(counters.get(host, endpoint="os", action=action))

    assert count("Create") == 1
    assert count("Command") == cmdlets
    assert count("Receive") == 2 + cmdlets
    assert count("Signal") == signals
    assert count("Delete") == 1
    assert counters.get(host, endpoint="exchange") == 0  # an endpoint never used is never opened
    assert counters.get(host, endpoint="http") == 0  # basic: no handshake requests


@pytest.mark.parametrize("client", sorted(SESSIONS))
def test_a_sealed_ntlm_host_costs_one_handshake_per_endpoint(
    lab: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: str
) -> None:
    """Both endpoints over NTLM with message encryption (http): each connection authenticates
    once and is kept for every request of the host."""
    monkeypatch.setenv(PSRP_CLIENT_ENV, client)
    running = lab("healthy")  # ntlm, http: sealed
    inventory = load_inventory(running.write_inventory(tmp_path / "inventory.yaml"))
    target = inventory.select(None)[0]
    credential = inventory.credentials().resolve(target)
    with HostConnection(target, credential, HostDeadline(target.name, 60)) as conn:
        assert type(conn.exchange) is SESSIONS[client] and type(conn.os) is SESSIONS[client]
        for _ in range(3):
            assert conn.os.run(GET_DNS_CLIENT)
            assert conn.exchange.run(GET_EXCHANGE_SERVER)
    counters = running.counters
    host = running.host_name(target.name)
    assert counters.get(host, endpoint="http") == 2 * NTLM_HANDSHAKE[client]
    for endpoint in ("os", "exchange"):
        assert counters.get(host, endpoint=endpoint, action="Create") == 1
        assert counters.get(host, endpoint=endpoint, action="Command") == 3
        assert counters.get(host, endpoint=endpoint, action="Receive") == 2 + 3
        assert counters.get(host, endpoint=endpoint, action="Delete") == 1
    assert running.server.authentications.get(host, "sealed", "ntlm") > 0  # every message sealed
