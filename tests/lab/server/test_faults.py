"""Injected faults surface on unmodified clients as the documented pypsrp/pywinrm errors."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
import winrm
import winrm.exceptions
from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool

from mock_remoting.credentials import LAB_PASSWORD, LAB_USERNAME
from mock_remoting.server.faults import FaultKind, FaultSpecError, HostFaults, parse_faults

pytestmark = pytest.mark.lab
EXCHANGE = "Microsoft.Exchange"


def _invoke(pool: RunspacePool) -> list[Any]:
    return PowerShell(pool).add_cmdlet("Get-ExchangeServer").invoke()  # type: ignore[no-any-return]


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_401_is_an_authentication_error(lab_server: Any, pypsrp_wsman: Any, auth: str) -> None:
    server = lab_server()
    name, port = server.endpoints[0].name, server.endpoints[0].port
    server.inject(name, {"fail": {"kind": "http-401", "on": "Command"}})
    pool = RunspacePool(pypsrp_wsman(port, auth=auth), configuration_name=EXCHANGE)
    pool.open()
    with pytest.raises(AuthenticationError):
        _invoke(pool)
    # (No close: after a 401 pypsrp's NTLM sealing keys are stale, as with a real server.)


def test_500_on_the_second_command_only(lab_server: Any, pypsrp_wsman: Any) -> None:
    server = lab_server()
    name, port = server.endpoints[0].name, server.endpoints[0].port
    server.inject(
        name, {"fail": {"kind": "http-500", "on": "Command", "endpoint": "exchange", "after": 1, "times": 1}}
    )
    with RunspacePool(pypsrp_wsman(port, auth="ntlm"), configuration_name=EXCHANGE) as pool:
        assert len(_invoke(pool)) == 1
        with pytest.raises(WinRMTransportError) as exc:
            _invoke(pool)
        assert exc.value.code == 500
        assert len(_invoke(pool)) == 1  # times: 1


def test_hang_is_a_read_timeout(lab_server: Any, pypsrp_wsman: Any) -> None:
    server = lab_server()
    name, port = server.endpoints[0].name, server.endpoints[0].port
    server.inject(name, {"fail": {"kind": "hang", "on": "Create"}})
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        RunspacePool(pypsrp_wsman(port, read_timeout=1), configuration_name=EXCHANGE).open()
    assert time.monotonic() - started < 10


def test_drop_is_a_connection_error(lab_server: Any, pypsrp_wsman: Any) -> None:
    server = lab_server()
    name, port = server.endpoints[0].name, server.endpoints[0].port
    server.inject(name, {"fail": {"kind": "drop", "on": "Command", "after": 1, "times": 1}})
    with RunspacePool(pypsrp_wsman(port), configuration_name=EXCHANGE) as pool:
        _invoke(pool)
        with pytest.raises(requests.exceptions.ConnectionError):
            _invoke(pool)


def test_quota_is_the_wsman_quota_fault(lab_server: Any, pypsrp_wsman: Any) -> None:
    server = lab_server()
    name, port = server.endpoints[0].name, server.endpoints[0].port
    server.inject(name, {"fail": {"kind": "quota", "on": "Create"}})
    with pytest.raises(WSManFaultError) as exc:
        RunspacePool(pypsrp_wsman(port), configuration_name=EXCHANGE).open()
    assert exc.value.code == 2150859173
    assert "maximum number of 18 concurrent shells" in str(exc.value.reason)


def test_slow_open_and_latency(lab_server: Any, pypsrp_wsman: Any) -> None:
    server = lab_server()
    name, port = server.endpoints[0].name, server.endpoints[0].port
    server.inject(name, {"open_delay_ms": 600})
    started = time.monotonic()
    with RunspacePool(pypsrp_wsman(port), configuration_name=EXCHANGE) as pool:
        assert time.monotonic() - started >= 0.6
        server.inject(name, {"latency_ms": 50})
        before = server.counters.get(name)
        started = time.monotonic()
        _invoke(pool)
        requests_made = server.counters.get(name) - before
        assert requests_made >= 2
        assert time.monotonic() - started >= 0.05 * requests_made  # a lower bound only


def test_pywinrm_sees_500_and_drop(lab_server: Any) -> None:
    server = lab_server()
    name, port = server.endpoints[0].name, server.endpoints[0].port

    def session() -> winrm.Session:
        return winrm.Session(
            f"http://127.0.0.1:{port}/wsman",
            auth=(LAB_USERNAME, LAB_PASSWORD),
            transport="ntlm",
            read_timeout_sec=10,
            operation_timeout_sec=5,
        )

    server.inject(name, {"fail": {"kind": "http-500", "on": "Command", "endpoint": "winrs", "times": 1}})
    first = session()
    with pytest.raises(winrm.exceptions.WinRMTransportError) as exc:
        first.run_ps("Write-Output x")
    assert exc.value.code == 500
    assert first.run_ps("Write-Output x").std_out == b"x\r\n"  # times: 1
    # A dropped connection takes pywinrm's NTLM sealing state with it: use a new session.
    server.inject(name, {"fail": {"kind": "drop", "on": "Receive", "endpoint": "winrs", "times": 1}})
    with pytest.raises(requests.exceptions.ConnectionError):
        session().run_ps("Write-Output x")
    assert session().run_ps("Write-Output x").std_out == b"x\r\n"


def test_rules_count_only_what_they_match() -> None:
    faults = HostFaults()
    faults.set(
        parse_faults(
            {
                "fail": [
                    {"kind": "drop", "on": "Command", "endpoint": "exchange", "after": 1, "times": 1},
                    {"kind": "quota", "on": "Create"},
                ]
            }
        )
    )
    decisions = [
        faults.decide(action, endpoint).kind
        for action, endpoint in [
            ("Command", "exchange"),
            ("Command", "os"),
            ("Receive", "exchange"),
            ("Command", "exchange"),
            ("Command", "exchange"),
            ("Create", "winrs"),
        ]
    ]
    assert decisions == [None, None, None, FaultKind.DROP, None, FaultKind.QUOTA]


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"latency": 1}, "latency"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"fail": {"kind": "explode"}}, "fail.kind"),
        ({"fail": {"kind": "drop", "on": "Teleport"}}, "fail.on"),
        ({"fail": [{"kind": "drop"}, {"kind": "hang", "times": "x"}]}, "fail[1].times"),
        ({"fail": {"kind": "drop", "endpoint": "smtp"}}, "fail.endpoint"),
        ({"fail": "drop"}, "fail"),
        ("nope", "faults"),
    ],
)
def test_bad_fault_mappings_name_the_key(raw: Any, key: str) -> None:
    with pytest.raises(FaultSpecError) as exc:
        parse_faults(raw)
    assert exc.value.key == key
