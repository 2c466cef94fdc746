"""EdgeTransport.exe.config replayed as it is: the scenario's file, served over real sockets
exactly as Get-Content -Raw returns it (malformed files included), and a file that does not load
keeping transport from starting again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pypsrp.powershell import PowerShell

from agent.transport.clixml import from_pypsrp
from lab._lab_client import Client, connect
from mock_remoting.exchange.scenario import SCENARIO_DIR, decode_like_get_content

pytestmark = pytest.mark.lab

SETUP = "HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v15\\Setup"
SHIPPED_FILE = SCENARIO_DIR / "files" / "edge-config-malformed.EdgeTransport.exe.config"


def _healthy_with(tmp_path: Path, edge_transport_config: dict[str, str]) -> Path:
    """The shipped healthy scenario, its EX01 given this EdgeTransport.exe.config."""
    data = yaml.safe_load((SCENARIO_DIR / "healthy.yaml").read_text(encoding="utf-8"))
    data["hosts"][0]["edge_transport_config"] = edge_transport_config
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _config_path(client: Client) -> str:
    (setup,) = client.os_("Get-ItemProperty", Path=SETUP)
    return str(setup.extended_properties["MsiInstallPath"]) + "Bin\\EdgeTransport.exe.config"


def _read(client: Client, **params: Any) -> list[Any]:
    """Get-Content as exfix reads it: the XML the server sent, through exfix's CLIXML reader."""
    return [obj for item in client.os_("Get-Content", LiteralPath=_config_path(client), **params)
            for obj in from_pypsrp(item)]  # fmt: skip


def test_the_shipped_malformed_file_is_served_byte_for_byte_as_get_content_raw_returns_it(
    lab: Callable[..., Any],
) -> None:
    raw = SHIPPED_FILE.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw  # a file as Windows tools write it
    with connect(lab("edge-config-malformed"), "EX02") as client:
        path = _config_path(client)
        (item,) = _read(client, Raw=True)
        # The text: decoded, the byte-order mark dropped, every CR LF kept.
        assert item.to_string == raw[3:].decode("utf-8") == decode_like_get_content(raw)
        assert "\u201dDnsFaultTolerance\u201d" in item.to_string
        # The note properties Get-Content attaches to what it writes.
        provider = "Microsoft.PowerShell.Core\\FileSystem"
        assert item.get("PSPath") == f"{provider}::{path}"
        assert item.get("PSChildName") == "EdgeTransport.exe.config"
        assert item.get("PSProvider") == provider and item.get("ReadCount") == 1
        # Without -Raw: one string per line, numbered by ReadCount, the line breaks gone.
        lines = _read(client)
        assert [line.to_string for line in lines] == item.to_string.split("\r\n")[:-1]
        assert [line.get("ReadCount") for line in lines] == list(range(1, len(lines) + 1))


def test_a_transport_restart_with_a_file_that_does_not_load_leaves_transport_stopped(
    lab: Callable[..., Any],
) -> None:
    running = lab("edge-config-malformed")
    with connect(running, "EX02") as client:
        before = {hop: q["MessageCount"] for hop, q in client.queues().items()}
        ps = PowerShell(client.os)
        ps.add_cmdlet("Restart-Service").add_parameter("Name", "MSExchangeTransport")
        ps.invoke()
        (failure,) = ps.streams.error
        assert failure.fq_error == "StartServiceFailed,Microsoft.PowerShell.Commands.RestartServiceCommand"
        assert "Failed to start service 'Microsoft Exchange Transport (MSExchangeTransport)'" in str(failure)
        (service,) = client.os_("Get-Service", Name="MSExchangeTransport")
        assert str(service.adapted_properties["Status"]) == "Stopped"
        client.retry_all()  # a stopped transport attempts nothing
        assert {hop: q["MessageCount"] for hop, q in client.queues().items()} == before
    with connect(running, "EX01") as client:  # the other server's file is fine
        client.os_("Restart-Service", Name="MSExchangeTransport")


def test_the_real_exchange_2016_file_is_served_as_it_is(
    lab: Callable[..., Any], fixtures_dir: Path, tmp_path: Path
) -> None:
    real = fixtures_dir / "real-clixml" / "E16" / "Exchange" / "EdgeTransport.exe.config"
    with connect(lab(_healthy_with(tmp_path, {"file": str(real)})), "EX01") as client:
        (item,) = _read(client, Raw=True)
        assert item.to_string == real.read_bytes().decode("utf-8-sig")
        client.os_("Restart-Service", Name="MSExchangeTransport")  # a real, valid file loads


def test_an_inline_file_is_served_as_written(lab: Callable[..., Any], tmp_path: Path) -> None:
    text = '<configuration>\n  <appSettings>\n    <add key="DnsFaultTolerance" value="Normal" />\n'
    # Cut short: never closed.
    with connect(lab(_healthy_with(tmp_path, {"text": text})), "EX01") as client:
        (item,) = _read(client, Raw=True)
        assert item.to_string == text
