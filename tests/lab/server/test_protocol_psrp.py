"""Unmodified pypsrp against the lab's PSRP endpoints, over real sockets on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pypsrp.exceptions import AuthenticationError, WSManFaultError
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool
from pypsrp.shell import WinRS

from lab.server._fake_runtime import NO_LANGUAGE, RAW_SERVER, FakeRuntime
from mock_remoting.backend import Endpoint

pytestmark = pytest.mark.lab

EXCHANGE = "Microsoft.Exchange"


@pytest.mark.parametrize(
    ("auth", "ssl", "encryption"),
    [
        ("basic", False, "never"),
        ("ntlm", False, "auto"),
        ("ntlm", True, "auto"),
        ("basic", True, "auto"),
        ("ntlm", True, "always"),
    ],
)
def test_exchange_endpoint_returns_typed_objects(
    lab_server: Any, pypsrp_wsman: Any, auth: str, ssl: bool, encryption: str
) -> None:
    server = lab_server(https=True)
    endpoint = server.endpoints[0]
    port = endpoint.https_port if ssl else endpoint.port
    wsman = pypsrp_wsman(port, auth=auth, ssl=ssl, encryption=encryption)
    with RunspacePool(wsman, configuration_name=EXCHANGE) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-ExchangeServer")
        output = ps.invoke()
    assert ps.state == PSInvocationState.COMPLETED and not ps.had_errors
    assert len(output) == 1
    server_obj = output[0]
    assert server_obj.types[0] == "Deserialized.Microsoft.Exchange.Data.Directory.Management.ExchangeServer"
    assert server_obj.extended_properties["Fqdn"] == "ex01.contoso.local"
    assert str(server_obj) == "EX01"


def test_message_encryption_is_really_used(lab_server: Any, pypsrp_wsman: Any) -> None:
    seen: list[bytes] = []
    server = lab_server(recorder=lambda exchange: seen.append(exchange.request))
    wsman = pypsrp_wsman(server.endpoints[0].port, auth="ntlm")
    with RunspacePool(wsman, configuration_name=EXCHANGE) as pool:
        PowerShell(pool).add_cmdlet("Get-ExchangeServer").invoke()
    assert wsman.transport.encryption is not None  # pypsrp sealed every message
    assert seen and all(b"<s:Envelope" in request for request in seen)  # and the server unsealed them


def test_scripts_are_refused_on_the_exchange_endpoint(lab_server: Any, pypsrp_wsman: Any) -> None:
    server = lab_server()
    with RunspacePool(pypsrp_wsman(server.endpoints[0].port), configuration_name=EXCHANGE) as pool:
        ps = PowerShell(pool)
        ps.add_script("Get-ExchangeServer | Select-Object Name")
        output = ps.invoke()
    assert output == []
    assert ps.state == PSInvocationState.FAILED and ps.had_errors
    assert [str(error) for error in ps.streams.error] == [NO_LANGUAGE]
    assert ps.streams.error[0].fq_error == "ScriptsNotAllowed"


def test_os_endpoint_runs_scripts(lab_server: Any, pypsrp_wsman: Any) -> None:
    runtime = FakeRuntime()
    server = lab_server(runtime)
    wsman = pypsrp_wsman(server.endpoints[0].port, path="wsman", auth="ntlm")
    with RunspacePool(wsman) as pool:  # Microsoft.PowerShell
        ps = PowerShell(pool)
        ps.add_script("Write-Output hello")
        assert ps.invoke() == ["hello"]
    assert runtime.calls[-1][0] is Endpoint.OS or runtime.calls[-1][0] == "script"


def test_configurations_live_at_their_paths(lab_server: Any, pypsrp_wsman: Any) -> None:
    server = lab_server()
    port = server.endpoints[0].port
    with pytest.raises(WSManFaultError) as exc:
        RunspacePool(pypsrp_wsman(port, path="wsman"), configuration_name=EXCHANGE).open()
    assert exc.value.code == 2150858811
    with pytest.raises(WSManFaultError) as exc:
        RunspacePool(pypsrp_wsman(port, path="PowerShell")).open()
    assert exc.value.code == 2150858811


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_wrong_password_is_an_authentication_error(lab_server: Any, pypsrp_wsman: Any, auth: str) -> None:
    server = lab_server()
    wsman = pypsrp_wsman(server.endpoints[0].port, auth=auth, password="not-the-password")
    with pytest.raises(AuthenticationError):
        RunspacePool(wsman, configuration_name=EXCHANGE).open()
    assert server.open_shells(server.endpoints[0].name) == 0


def test_parameters_arrive_in_order_with_hostile_values(lab_server: Any, pypsrp_wsman: Any) -> None:
    runtime = FakeRuntime()
    server = lab_server(runtime)
    hostile = "a'b\"c $(whoami) `n; rm -rf / \r\n\x1b[31mred\x1b[0m ünï ☃ <x/> &amp;"
    with RunspacePool(pypsrp_wsman(server.endpoints[0].port), configuration_name=EXCHANGE) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Failure").add_parameter("Message", hostile).add_parameter("Zeta", 1)
        ps.add_parameter("Alpha", True).add_argument("positional")
        output = ps.invoke()
    assert output == ["before"]
    assert ps.state == PSInvocationState.FAILED
    assert str(ps.streams.error[0]) == hostile
    _, pipeline = runtime.calls[-1]
    assert [(p.name, p.value) for p in pipeline[0].parameters] == [
        ("Message", hostile),
        ("Zeta", 1),
        ("Alpha", True),
        (None, "positional"),
    ]


def test_non_terminating_errors_keep_the_pipeline_completed(lab_server: Any, pypsrp_wsman: Any) -> None:
    server = lab_server()
    with RunspacePool(pypsrp_wsman(server.endpoints[0].port), configuration_name=EXCHANGE) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Mixed")
        assert ps.invoke() == ["before", "after"]
    assert ps.state == PSInvocationState.COMPLETED
    assert [str(e) for e in ps.streams.error] == ["soft error"]


def test_raw_clixml_reaches_the_client_verbatim(lab_server: Any, pypsrp_wsman: Any) -> None:
    responses: list[bytes] = []
    server = lab_server(recorder=lambda exchange: responses.append(exchange.response))
    with RunspacePool(pypsrp_wsman(server.endpoints[0].port), configuration_name=EXCHANGE) as pool:
        output = PowerShell(pool).add_cmdlet("Get-RawCapture").invoke()
    assert output[0].adapted_properties["Note"] == "ünïcødé & <tags> \n"
    assert output[0].types[0].endswith("ExchangeServer")
    import base64
    import re
    import struct

    messages = []
    for response in responses:
        for data in re.findall(rb'<rsp:Stream Name="stdout"[^>]*>([^<]+)<', response):
            raw = base64.b64decode(data)
            _oid, _fid, _flags, length = struct.unpack_from(">QQBI", raw)
            messages.append(raw[21 + 40 : 21 + length])
    assert RAW_SERVER.encode("utf-8") in messages


def test_stop_cancels_the_runtime_and_ends_stopped(lab_server: Any, pypsrp_wsman: Any) -> None:
    runtime = FakeRuntime()
    server = lab_server(runtime)
    with RunspacePool(pypsrp_wsman(server.endpoints[0].port), configuration_name=EXCHANGE) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Start-Sleep").add_parameter("Seconds", 60)
        ps.begin_invoke()
        started = time.monotonic()
        ps.stop()
        assert runtime.cancelled.wait(10)
        assert time.monotonic() - started < 10
        # The pool is still usable afterwards.
        assert PowerShell(pool).add_cmdlet("Write-Output").add_parameter("InputObject", "x").invoke() == ["x"]


def test_terminate_signal_on_a_running_pipeline_reports_stopped(lab_server: Any, pypsrp_wsman: Any) -> None:
    runtime = FakeRuntime()
    server = lab_server(runtime)
    with RunspacePool(pypsrp_wsman(server.endpoints[0].port), configuration_name=EXCHANGE) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Start-Sleep").add_parameter("Seconds", 60)
        ps.begin_invoke()
        from pypsrp.shell import SignalCode

        pool.shell.signal(SignalCode.TERMINATE, str(ps.id).upper())
        assert runtime.cancelled.wait(10)


def test_long_running_cmdlet_is_held_as_a_long_poll(lab_server: Any, pypsrp_wsman: Any) -> None:
    server = lab_server()
    wsman = pypsrp_wsman(server.endpoints[0].port, operation_timeout=1)
    with RunspacePool(wsman, configuration_name=EXCHANGE) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Start-Sleep").add_parameter("Milliseconds", 2300)
        ps.add_statement().add_cmdlet("Write-Output").add_parameter("InputObject", "hi")
        assert ps.invoke() == ["hi"]
    name = server.endpoints[0].name
    # Two operation-timeout faults were answered and pypsrp silently polled again.
    assert server.counters.get(name, "exchange", "Receive") >= 4


def test_small_max_envelope_size_is_honoured(lab_server: Any, pypsrp_wsman: Any) -> None:
    sizes: list[int] = []
    server = lab_server(recorder=lambda exchange: sizes.append(len(exchange.response)))
    wsman = pypsrp_wsman(server.endpoints[0].port, max_envelope_size=10240)
    big = "x" * 60000
    with RunspacePool(wsman, configuration_name=EXCHANGE) as pool:
        output = PowerShell(pool).add_cmdlet("Write-Output").add_parameter("InputObject", big).invoke()
    assert output == [big]
    assert max(sizes) <= 10240


def test_delete_aborts_a_pending_receive(lab_server: Any, pypsrp_wsman: Any) -> None:
    server = lab_server()
    port = server.endpoints[0].port
    pool = RunspacePool(pypsrp_wsman(port, operation_timeout=30), configuration_name=EXCHANGE)
    pool.open()
    ps = PowerShell(pool)
    ps.add_cmdlet("Start-Sleep").add_parameter("Seconds", 60)
    ps.begin_invoke()
    outcome: list[BaseException | None] = []

    def poll() -> None:
        try:
            ps.poll_invoke()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=poll)
    waiter.start()
    time.sleep(0.3)
    closer = WinRS(
        pypsrp_wsman(port, operation_timeout=30), resource_uri=pool.shell.resource_uri, id=pool.shell.id
    )
    closer._selector_set = pool.shell._selector_set
    closer.opened = True
    started = time.monotonic()
    closer.close()
    waiter.join(10)
    assert not waiter.is_alive() and time.monotonic() - started < 10
    assert isinstance(outcome[0], WSManFaultError) and outcome[0].code == 995
    with pytest.raises(WSManFaultError) as exc:
        ps.poll_invoke()
    assert exc.value.code == 2150858843  # the shell is gone


def test_shell_quota_is_enforced(lab_server: Any, pypsrp_wsman: Any) -> None:
    server = lab_server()
    wsman = pypsrp_wsman(server.endpoints[0].port)
    pools = []
    try:
        for _ in range(18):
            pool = RunspacePool(wsman, configuration_name=EXCHANGE)
            pool.open()
            pools.append(pool)
        with pytest.raises(WSManFaultError) as exc:
            RunspacePool(wsman, configuration_name=EXCHANGE).open()
        assert exc.value.code == 2150859173
    finally:
        for pool in pools:
            pool.close()
    assert server.open_shells(server.endpoints[0].name) == 0
