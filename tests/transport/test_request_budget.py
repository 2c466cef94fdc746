"""The request budget of one session, counted by the lab: the protocol minimum exfix claims
(bench/README.md). Opening a pool: Create + 2 Receives; each cmdlet: Command + Receive; no
Signal for a completed pipeline until a pool holds 10 of them; one Delete at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.inventory import load_inventory
from agent.model.command import CmdletCall, Endpoint
from agent.transport import HostConnection, HostDeadline

pytestmark = pytest.mark.lab

GET_DNS_CLIENT = CmdletCall(Endpoint.OS, "Get-DnsClient")


@pytest.mark.parametrize(("cmdlets", "signals"), [(3, 0), (10, 0), (13, 3)])
def test_requests_per_session_are_the_protocol_minimum(
    lab: Any, tmp_path: Path, cmdlets: int, signals: int
) -> None:
    running = lab("healthy", auth="basic")
    inventory = load_inventory(running.write_inventory(tmp_path / "inventory.yaml"))
    target = inventory.select(None)[0]
    credential = inventory.credentials().resolve(target)
    with HostConnection(target, credential, HostDeadline(target.name, 60)) as conn:
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
