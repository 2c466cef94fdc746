"""The lab's two ways to listen: every host on 127.0.0.1 on free ports (``single``, what most
tests use), or each host on its own loopback address on the real ports (``per-host``), and
the file-descriptor budget that decides between two sockets per host and one."""

from __future__ import annotations

import errno
import random
import re
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pypsrp.exceptions import WinRMTransportError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from agent.errors import UsageError
from mock_remoting.credentials import LAB_PASSWORD, LAB_USERNAME
from mock_remoting.lab import Lab, host_addresses
from mock_remoting.server import ListenError, raise_descriptor_limit

pytestmark = pytest.mark.lab


def _wsman(address: str, port: int, path: str) -> WSMan:
    return WSMan(
        address,
        port=port,
        path=path,
        ssl=False,
        auth="ntlm",
        encryption="auto",
        username=LAB_USERNAME,
        password=LAB_PASSWORD,
        cert_validation=False,
        read_timeout=15,
        connection_timeout=5,
    )


def _network() -> str:
    """A /24 of 127.0.0.0/8 few others use: parallel test workers and other labs on the machine
    pick their own, and a collision is retried (see ``per_host_lab``)."""
    return f"127.{random.randint(64, 250)}.{random.randint(0, 255)}.0/24"


@pytest.fixture
def per_host_lab() -> Iterator[Callable[..., Lab]]:
    started: list[Lab] = []

    def make(scenario: str = "mixed-fleet", **kwargs: Any) -> Lab:
        for _ in range(8):
            lab = Lab(scenario, bind="per-host", addresses=_network(), **kwargs)
            try:
                lab.start()
            except UsageError as error:
                if "in use" in str(error):
                    continue
                raise
            started.append(lab)
            return lab
        pytest.fail("no free 127.x.y.0/24 after 8 tries")

    yield make
    for lab in started:
        lab.stop()


def _port_80_allowed() -> bool:
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        sock.close()
        sock = socket.socket()
        sock.bind((f"127.{random.randint(64, 250)}.0.7", 80))
    except PermissionError:
        return False
    except OSError:
        return True  # in use: binding as such is allowed
    finally:
        sock.close()
    return True


def test_addresses_skip_network_broadcast_and_well_known_loopback() -> None:
    assert host_addresses("127.20.0.0/16", 3) == ["127.20.0.1", "127.20.0.2", "127.20.0.3"]
    addresses = host_addresses("127.20.0.0/16", 300)
    assert "127.20.0.255" not in addresses and "127.20.1.0" not in addresses
    assert addresses[254] == "127.20.1.1"
    assert host_addresses("127.0.0.0/24", 2) == ["127.0.0.2", "127.0.0.3"]  # not 127.0.0.1
    assert "127.0.0.53" not in host_addresses("127.0.0.0/24", 100)
    with pytest.raises(UsageError, match=r"not inside 127\.0\.0\.0/8"):
        host_addresses("10.0.0.0/24", 1)
    with pytest.raises(UsageError, match="holds 254 host addresses, not 300"):
        host_addresses("127.9.9.0/24", 300)
    with pytest.raises(UsageError, match="not an IPv4 network"):
        host_addresses("127.9.9.0/33", 1)


def test_per_host_shared_serves_both_endpoints_on_5985(
    per_host_lab: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = per_host_lab(ports="shared")
    endpoints = lab.endpoints
    assert len({e.host for e in endpoints}) == len(endpoints) == 5
    assert all(e.port == e.exchange_port == 5985 and e.https_port is None for e in endpoints)
    first = endpoints[0]
    assert first.host.endswith(".1")
    inventory = yaml.safe_load(lab.write_inventory(tmp_path / "inv.yaml").read_text(encoding="utf-8"))
    variables = inventory["all"]["vars"]
    assert variables["ansible_port"] == variables["exfix_exchange_port"] == 5985
    hosts = inventory["all"]["children"]["exchange"]["hosts"]
    assert hosts[first.name] == {"ansible_host": first.host}
    exchange = _wsman(first.host, 5985, "PowerShell")
    with RunspacePool(exchange, configuration_name="Microsoft.Exchange") as pool:
        ps = PowerShell(pool).add_cmdlet("Get-ExchangeServer").add_parameter("Identity", "EX01")
        (server,) = ps.invoke()
    assert str(server.adapted_properties["Fqdn"]).lower() == first.name
    with RunspacePool(_wsman(first.host, 5985, "wsman")) as pool:
        assert PowerShell(pool).add_cmdlet("Get-DnsClientServerAddress").invoke()
    # The WSMan Create answer names the host's own address, as a real server's does.
    assert lab.counters.get(first.name, "exchange", "Create") == 1


@pytest.mark.skipif(not _port_80_allowed(), reason="binding port 80 needs root or CAP_NET_BIND_SERVICE")
def test_per_host_real_ports_keep_the_two_services_apart(per_host_lab: Callable[..., Lab]) -> None:
    lab = per_host_lab(ports="real", https=True)
    endpoint = lab.endpoints[1]
    assert (endpoint.exchange_port, endpoint.port) == (80, 5985)
    assert (endpoint.exchange_https_port, endpoint.https_port) == (443, 5986)
    inventory = lab.inventory()["all"]["vars"]
    assert (inventory["ansible_port"], inventory["exfix_exchange_port"]) == (5986, 443)
    exchange = _wsman(endpoint.host, 80, "PowerShell")
    with RunspacePool(exchange, configuration_name="Microsoft.Exchange") as pool:
        assert PowerShell(pool).add_cmdlet("Get-SendConnector").invoke()
    # IIS on 80 has no /wsman, and WinRM on 5985 no /PowerShell: HTTP 404.
    for port, path in ((80, "wsman"), (5985, "PowerShell")):
        with pytest.raises(WinRMTransportError, match="404"), RunspacePool(_wsman(endpoint.host, port, path)):
            pass


def test_per_host_address_in_use_is_a_one_line_usage_error(per_host_lab: Callable[..., Lab]) -> None:
    first = per_host_lab("healthy", ports="shared")
    taken = first.endpoints[0].host
    network = f"{taken.rsplit('.', 1)[0]}.0/24"
    second = Lab("healthy", bind="per-host", addresses=network, ports="shared")
    in_use = rf"cannot listen on {re.escape(taken)}:5985: it is in use .*another 127\.x range"
    with pytest.raises(UsageError, match=in_use):
        second.start()
    assert second.server is None
    # Nothing of the failed lab is left listening: the first one still answers alone.
    with RunspacePool(_wsman(taken, 5985, "wsman")) as pool:
        assert PowerShell(pool).add_cmdlet("Get-DnsClient").invoke()


def test_descriptor_limit_is_raised_to_the_hard_limit_and_refuses_beyond_it() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard limit on file descriptors")
    assert raise_descriptor_limit(10) == hard
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
    too_many = rf"needs {hard + 1} file descriptors and RLIMIT_NOFILE allows {hard}"
    with pytest.raises(ListenError, match=too_many) as info:
        raise_descriptor_limit(hard + 1)
    assert info.value.errno == errno.EMFILE


def _limited(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


def _serve(limit: int, hosts: int, network: str, tmp_path: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", "from agent.cli import main; main()", "lab", "serve", "--scenario",
               "healthy", "--hosts", str(hosts), "--bind", "per-host", "--addresses", network,
               "--inventory-out", str(tmp_path / "inv.yaml")]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_limited(limit))  # fmt: skip


def test_serve_falls_back_to_one_socket_per_host_then_refuses(tmp_path: Path) -> None:
    """300 hosts: two sockets each (600) and the 1,024 kept for connections do not fit in 1,500
    descriptors, one each does; under 1,300 not even that fits."""
    network = f"127.{random.randint(64, 250)}.{random.randint(0, 254)}.0/23"
    process = _serve(1500, 300, network, tmp_path)
    try:
        assert process.stdout is not None and process.stderr is not None
        line = process.stdout.readline()
        if not line:
            _, err = process.communicate(timeout=30)
            if "in use" in err:
                pytest.skip(f"{network} is taken by another lab: {err.strip()}")
            pytest.fail(err)
        note = process.stderr.readline()
        assert note.startswith("exfix lab: the Exchange endpoint shares port 5985 with /wsman: ")
        assert "for 300 hosts need 1624 file descriptors and RLIMIT_NOFILE allows 1500" in note
        inventory = yaml.safe_load((tmp_path / "inv.yaml").read_text(encoding="utf-8"))
        assert inventory["all"]["vars"]["exfix_exchange_port"] == 5985
        assert len(inventory["all"]["children"]["exchange"]["hosts"]) == 300
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    refused = _serve(1200, 300, network, tmp_path)
    out, err = refused.communicate(timeout=60)
    assert refused.returncode == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("exfix: error: lab: needs 1324 file descriptors and RLIMIT_NOFILE allows 1200")
