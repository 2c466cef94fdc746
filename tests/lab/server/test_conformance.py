"""The lab's WSMan conversation matches what real Windows servers said to pypsrp.

The recordings (../shared/fixtures/pypsrp-recordings, from pypsrp's own test suite) hold the
request/response pairs of real sessions. Here the same client calls run against the lab, the
server records what it saw, and both conversations are reduced to what must match: the
sequence of WSMan actions, the selectors each request named, the response action, the stream
names (consecutive repeats folded: how many PSRP messages a server sends depends on the
content, e.g. Windows adds a progress record to scripts), the CommandState values and the
fault codes. Ids are not compared (the fixtures normalise them).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool
from pypsrp.shell import Process, SignalCode, WinRS

from lab.server._fake_runtime import FakeRuntime
from mock_remoting.server import Exchange

pytestmark = pytest.mark.lab

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}

Step = tuple[str, tuple[str, ...], str, tuple[str, ...], tuple[str, ...], tuple[str, ...], str]


def _last(uri: str | None) -> str:
    return (uri or "").rstrip("/").rsplit("/", 1)[-1]


def summarize(request: str | bytes, response: str | bytes) -> Step:
    req = ElementTree.fromstring(request)
    resp = ElementTree.fromstring(response)
    action = _last(req.findtext("s:Header/a:Action", namespaces=NS))
    selectors = tuple(
        sorted(s.get("Name", "") for s in req.iterfind("s:Header/w:SelectorSet/w:Selector", NS))
    )
    signal = _last(req.findtext("s:Body/rsp:Signal/rsp:Code", namespaces=NS)).lower()
    response_action = _last(resp.findtext("s:Header/a:Action", namespaces=NS))
    streams: list[str] = []
    for stream in resp.iterfind("s:Body/rsp:ReceiveResponse/rsp:Stream", NS):
        name = stream.get("Name", "")
        if not streams or streams[-1] != name:
            streams.append(name)
    states = tuple(
        _last(s.get("State")) for s in resp.iterfind("s:Body/rsp:ReceiveResponse/rsp:CommandState", NS)
    )
    faults = tuple(f.get("Code", "") for f in resp.iterfind("s:Body/s:Fault/s:Detail/f:WSManFault", NS))
    return action, selectors, response_action, tuple(streams), states, faults, signal


def recorded(fixtures_dir: Path, name: str) -> list[Step]:
    data = yaml.safe_load((fixtures_dir / "pypsrp-recordings" / f"{name}.yml").read_text(encoding="utf-8"))
    return [summarize(m["request"], m["response"]) for m in data["messages"]]


class Trace:
    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def __call__(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)

    def steps(self) -> list[Step]:
        return [summarize(e.request, e.response) for e in self.exchanges]


@pytest.fixture
def traced(lab_server: Any, pypsrp_wsman: Any) -> Any:
    def make(path: str = "wsman", **kwargs: Any) -> tuple[Trace, Any]:
        trace = Trace()
        server = lab_server(FakeRuntime(), recorder=trace)
        return trace, pypsrp_wsman(server.endpoints[0].port, path=path, auth="ntlm", **kwargs)

    return make


def test_open_runspace(fixtures_dir: Path, traced: Any) -> None:
    trace, wsman = traced()
    pool = RunspacePool(wsman)
    pool.open()
    assert pool.application_private_data is not None
    pool.close()
    assert trace.steps() == recorded(fixtures_dir, "test_psrp_open_runspace")


def test_multiple_invocations(fixtures_dir: Path, traced: Any) -> None:
    trace, wsman = traced()
    with RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Write-Output").add_parameter("InputObject", "hi")
        assert ps.invoke() == ["hi"]
        ps.close()
        assert ps.invoke() == ["hi", "hi"]  # pypsrp keeps the first invocation's output
        ps.close()
    assert trace.steps() == recorded(fixtures_dir, "test_psrp_multiple_invocations")


def test_failed_pipeline(fixtures_dir: Path, traced: Any) -> None:
    trace, wsman = traced()
    with RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Failure").add_parameter("Message", "error")
        assert ps.invoke() == ["before"]
    assert ps.state == PSInvocationState.FAILED and [str(e) for e in ps.streams.error] == ["error"]
    assert trace.steps() == recorded(fixtures_dir, "test_psrp_error_failed")


def test_long_running_cmdlet(fixtures_dir: Path, traced: Any) -> None:
    # The recording used a 5 s OperationTimeout and a 10 s sleep: two timeout faults, then the
    # output. Scaled down to 1 s and 2.5 s, with half a second of margin either side.
    trace, wsman = traced(operation_timeout=1)
    with RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Start-Sleep").add_parameter("Milliseconds", 2500)
        ps.add_statement().add_cmdlet("Write-Output").add_parameter("InputObject", "hi")
        assert ps.invoke() == ["hi"]
    assert trace.steps() == recorded(fixtures_dir, "test_psrp_long_running_cmdlet")


def test_winrs_standard(fixtures_dir: Path, traced: Any) -> None:
    trace, wsman = traced()
    script = base64.b64encode("Write-Output hi".encode("utf-16-le")).decode()
    with WinRS(wsman) as shell:
        process = Process(shell, "powershell.exe", ["-EncodedCommand", script])
        process.invoke()
        process.signal(SignalCode.CTRL_C)
    assert (process.rc, process.stdout, process.stderr) == (0, b"hi\r\n", b"")
    assert trace.steps() == recorded(fixtures_dir, "test_winrs_standard")


def test_the_comparison_can_fail(fixtures_dir: Path) -> None:
    """The reduced form still tells conversations apart (a guard against a vacuous summary)."""
    names = [
        "test_psrp_open_runspace",
        "test_psrp_multiple_invocations",
        "test_psrp_error_failed",
        "test_psrp_long_running_cmdlet",
        "test_winrs_standard",
    ]
    summaries = [recorded(fixtures_dir, name) for name in names]
    assert all(a != b for i, a in enumerate(summaries) for b in summaries[i + 1 :])
    failed = recorded(fixtures_dir, "test_psrp_error_failed")
    assert ("Receive", ("ShellId",), "ReceiveResponse", ("stdout",), ("Done",), (), "") in failed
    assert any(step[5] == ("2150858793",) for step in recorded(fixtures_dir, "test_psrp_long_running_cmdlet"))
