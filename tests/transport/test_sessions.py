"""The sessions against the lab's real protocol server, over sockets, with unmodified pypsrp/pywinrm.

The host behind the server is tests/transport/_runtime.py, so each test controls exactly
what the host does. The full Exchange emulation is exercised in test_lab.py.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.errors import (
    AuthenticationError,
    CmdletError,
    HostTimeoutError,
    UnreachableError,
    UsageError,
    WSManFaultError,
)
from agent.model.command import SWITCH, CmdletCall, Endpoint
from agent.model.remote import RemoteObject
from agent.transport import HostDeadline, RetryPolicy
from agent.transport.psrpcore_session import PsrpcoreSession
from mock_remoting.credentials import LAB_PASSWORD
from transport.conftest import ServerHandle

pytestmark = pytest.mark.lab

GET_SERVER = CmdletCall(Endpoint.EXCHANGE, "Get-ExchangeServer")
GET_DNS_CLIENT = CmdletCall(Endpoint.OS, "Get-DnsClient")
SET_DNS_CLIENT = CmdletCall(
    Endpoint.OS, "Set-DnsClient", (("InterfaceIndex", 5), ("RegisterThisConnectionsAddress", True))
)

HOSTILE = [
    "Ethernet0'; Remove-Item C:\\ -Recurse; '",
    "conn $(Stop-Service MSExchangeTransport)",
    "tick`$env:PATH`n",
    "line1\nline2\r\n",
    "\x1b[31mred\x1b[0m",
    "smart \u2018quoted\u2019 \u201alow\u201b",
    "rtl\u202eexe.ps1",
    "emoji ✉️ 📬 and 名前",
    "",
    "'",
    "semi; colon | pipe & amp",
    '<Obj RefId="0">not xml</Obj> _x000A_',
]


def test_exchange_endpoint_returns_remote_objects(transport_server: Any) -> None:
    handle: ServerHandle = transport_server()
    with handle.connect() as conn:
        (server,) = conn.exchange.run(GET_SERVER)
        (transport,) = conn.exchange.run(CmdletCall(Endpoint.EXCHANGE, "Get-TransportService"))
    assert isinstance(server, RemoteObject)
    assert server.is_a("Microsoft.Exchange.Data.Directory.Management.ExchangeServer")
    assert server.get("fqdn") == "ex01.contoso.local"
    assert server.to_string == "EX01"
    # A MultiValuedProperty (unknown to pypsrp's own object model) arrives as a tuple...
    assert transport.get("ExternalDNSServers") == ("10.0.0.10", "10.0.0.11")
    # ...and an enum as its string.
    assert transport.get("ExternalDNSProtocolOption") == "Any"
    assert transport.get("ExternalDNSAdapterEnabled") is False


def test_one_pool_per_endpoint_reused_and_removed_at_close(transport_server: Any) -> None:
    handle: ServerHandle = transport_server()
    with handle.connect() as conn:
        for _ in range(3):
            conn.exchange.run(GET_SERVER)
            conn.os.run(GET_DNS_CLIENT)
        assert handle.server.open_shells(handle.name) == 2
        assert conn.exchange.opens == 1 and conn.os.opens == 1
    assert handle.count("exchange", "Create") == 1
    assert handle.count("os", "Create") == 1
    assert handle.server.open_shells(handle.name) == 0  # Delete sent: no session left behind


def test_nothing_is_opened_until_the_first_command(transport_server: Any) -> None:
    handle: ServerHandle = transport_server()
    with handle.connect():
        pass
    assert handle.count() == 0


def test_exchange_endpoint_only_ever_gets_cmdlets(transport_server: Any) -> None:
    handle: ServerHandle = transport_server()
    with handle.connect() as conn:
        conn.exchange.run(GET_SERVER)
        for value in HOSTILE:
            result = conn.exchange.invoke(
                CmdletCall(Endpoint.EXCHANGE, "Get-ExchangeServer", (("Identity", value),))
            )
            assert result.ok
    assert handle.runtime.scripts == []  # NoLanguage would refuse a script: none was ever sent
    assert handle.runtime.count("Get-ExchangeServer") == 1 + len(HOSTILE)


@pytest.mark.parametrize("os_transport", ["psrp", "winrm"])
def test_os_endpoint_get_dnsclient(transport_server: Any, os_transport: str) -> None:
    handle: ServerHandle = transport_server()
    with handle.connect(handle.target(exfix_os_transport=os_transport)) as conn:
        clients = conn.os.run(GET_DNS_CLIENT)
    assert [c.get("InterfaceAlias") for c in clients] == ["Ethernet0", "Replication"]
    first = clients[0]
    assert first.is_a("Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_DNSClient")
    assert first.get("InterfaceIndex") == 5
    assert first.get("RegisterThisConnectionsAddress") is False
    assert first.get("ConnectionSpecificSuffixSearchList") == ("contoso.local", "corp.contoso.local")


def test_psrp_and_winrm_give_the_same_objects(transport_server: Any) -> None:
    handle: ServerHandle = transport_server()
    with handle.connect(handle.target(exfix_os_transport="psrp")) as conn:
        via_psrp = conn.os.run(GET_DNS_CLIENT)
    with handle.connect(handle.target(exfix_os_transport="winrm")) as conn:
        via_winrm = conn.os.run(GET_DNS_CLIENT)
    assert via_psrp == via_winrm
    assert handle.count("winrs", "Command") == 1


@pytest.mark.parametrize("os_transport", ["psrp", "winrm"])
def test_hostile_values_arrive_exactly(transport_server: Any, os_transport: str) -> None:
    handle: ServerHandle = transport_server()
    params = tuple((f"P{i}", value) for i, value in enumerate(HOSTILE))
    call = CmdletCall(
        Endpoint.OS,
        "Get-Echo",
        (*params, ("List", ("a'b", "$(c)")), ("Flag", SWITCH), ("Number", 42), ("Off", False)),
    )
    with handle.connect(handle.target(exfix_os_transport=os_transport)) as conn:
        (echo,) = conn.os.run(call)
    for name, value in params:
        assert echo.get(name) == value
    assert echo.get("List") == ("a'b", "$(c)")
    assert echo.get("Flag") is True
    assert echo.get("Number") == 42
    assert echo.get("Off") is False


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_string_survives_winrs(transport_server: Any, value: str) -> None:
    handle: ServerHandle = transport_server()
    with handle.connect(handle.target(exfix_os_transport="winrm")) as conn:
        (echo,) = conn.os.run(CmdletCall(Endpoint.OS, "Get-Echo", (("Value", value),)))
    assert echo.get("Value") == value


@pytest.mark.parametrize("os_transport", ["psrp", "winrm"])
def test_unknown_parameter_is_a_cmdlet_error_with_its_id(transport_server: Any, os_transport: str) -> None:
    handle: ServerHandle = transport_server()
    call = CmdletCall(Endpoint.OS, "Get-DnsClient", (("Bogus", "x"),))
    with handle.connect(handle.target(exfix_os_transport=os_transport)) as conn:
        result = conn.os.invoke(call)
        assert result.errors and not result.objects
        error = result.errors[0]
        assert error.fully_qualified_error_id == "NamedParameterNotFound,Get-DnsClient"
        assert error.category == "InvalidArgument"
        assert "Bogus" in error.message
        with pytest.raises(CmdletError) as caught:
            conn.os.run(call)
    assert caught.value.fully_qualified_error_id == "NamedParameterNotFound,Get-DnsClient"
    assert caught.value.cmdlet == "Get-DnsClient"


def test_exchange_unknown_parameter_is_a_cmdlet_error(transport_server: Any) -> None:
    handle: ServerHandle = transport_server()
    with handle.connect() as conn, pytest.raises(CmdletError) as caught:
        conn.exchange.run(CmdletCall(Endpoint.EXCHANGE, "Get-ExchangeServer", (("Bogus", 1),)))
    assert caught.value.fully_qualified_error_id == "NamedParameterNotFound,Get-ExchangeServer"


@pytest.mark.parametrize("os_transport", ["psrp", "winrm"])
def test_non_terminating_errors_come_with_the_output(transport_server: Any, os_transport: str) -> None:
    handle: ServerHandle = transport_server()
    call = CmdletCall(Endpoint.OS, "Get-DnsClient", (("InterfaceAlias", "Missing"),))
    with handle.connect(handle.target(exfix_os_transport=os_transport)) as conn:
        result = conn.os.invoke(call)
    assert len(result.objects) == 2
    (error,) = result.errors
    assert error.fully_qualified_error_id == "CmdletizationQuery_NotFound_InterfaceAlias,Get-DnsClient"
    assert error.category == "ObjectNotFound"


def test_wrong_password_is_an_authentication_error_and_not_retried(transport_server: Any) -> None:
    handle: ServerHandle = transport_server()
    target = handle.target()
    sleeps: list[float] = []
    with handle.connect(
        target,
        credential=handle.credential(target, "wrong"),
        sleeps=sleeps,
        retry=RetryPolicy(attempts=5, base_delay=0.01),
    ) as conn:
        with pytest.raises(AuthenticationError) as caught:
            conn.exchange.run(GET_SERVER)
        first_try = handle.count()
        with pytest.raises(AuthenticationError):
            conn.exchange.run(GET_SERVER)
    assert sleeps == []
    assert handle.count() == 2 * first_try  # the second call repeats one handshake, nothing more
    assert "wrong" not in str(caught.value)


def test_injected_401_is_not_retried(transport_server: Any) -> None:
    handle: ServerHandle = transport_server()
    handle.server.inject(handle.name, {"fail": {"kind": "http-401", "on": "Create", "endpoint": "exchange"}})
    sleeps: list[float] = []
    retry = RetryPolicy(attempts=5, base_delay=0.01)
    with handle.connect(retry=retry, sleeps=sleeps) as conn, pytest.raises(AuthenticationError):
        conn.exchange.run(GET_SERVER)
    assert sleeps == []
    assert handle.count("exchange", "Create") == 1


def test_dropped_connection_during_a_read_is_retried(transport_server: Any) -> None:
    handle: ServerHandle = transport_server()
    handle.server.inject(
        handle.name, {"fail": {"kind": "drop", "on": "Command", "endpoint": "exchange", "times": 1}}
    )
    sleeps: list[float] = []
    with handle.connect(sleeps=sleeps) as conn:
        (server,) = conn.exchange.run(GET_SERVER)
        assert conn.exchange.opens == 2  # the broken pool was dropped and a new one opened
    assert server.get("Name") == "EX01"
    assert len(sleeps) == 1
    assert handle.count("exchange", "Command") == 2
    assert handle.server.open_shells(handle.name) <= 1  # the broken pool may linger server-side


@pytest.mark.parametrize("os_transport", ["psrp", "winrm"])
def test_dropped_connection_during_a_change_is_not_resent(transport_server: Any, os_transport: str) -> None:
    handle: ServerHandle = transport_server()
    endpoint = "winrs" if os_transport == "winrm" else "os"
    handle.server.inject(
        handle.name, {"fail": {"kind": "drop", "on": "Command", "endpoint": endpoint, "times": 1}}
    )
    sleeps: list[float] = []
    with handle.connect(handle.target(exfix_os_transport=os_transport), sleeps=sleeps) as conn:
        with pytest.raises(UnreachableError):
            conn.os.run(SET_DNS_CLIENT)
        assert handle.count(endpoint, "Command") == 1
        assert sleeps == []
        # The session recovers for the next command.
        assert len(conn.os.run(GET_DNS_CLIENT)) == 2


def test_http_500_on_open_is_retried(transport_server: Any) -> None:
    handle: ServerHandle = transport_server()
    handle.server.inject(
        handle.name, {"fail": {"kind": "http-500", "on": "Create", "endpoint": "os", "times": 2}}
    )
    sleeps: list[float] = []
    with handle.connect(sleeps=sleeps) as conn:
        assert len(conn.os.run(GET_DNS_CLIENT)) == 2
    assert len(sleeps) == 2
    assert handle.count("os", "Create") == 3


def test_retries_are_bounded(transport_server: Any) -> None:
    handle: ServerHandle = transport_server()
    handle.server.inject(handle.name, {"fail": {"kind": "http-500", "on": "Create", "endpoint": "exchange"}})
    sleeps: list[float] = []
    retry = RetryPolicy(attempts=4, base_delay=0.01)
    with (
        handle.connect(sleeps=sleeps, retry=retry) as conn,
        pytest.raises(UnreachableError, match="HTTP 500"),
    ):
        conn.exchange.run(GET_SERVER)
    assert handle.count("exchange", "Create") == 4
    assert len(sleeps) == 3


def test_quota_fault_is_a_wsman_fault_with_its_code(transport_server: Any) -> None:
    handle: ServerHandle = transport_server()
    handle.server.inject(handle.name, {"fail": {"kind": "quota", "on": "Create", "endpoint": "exchange"}})
    with handle.connect() as conn, pytest.raises(WSManFaultError) as caught:
        conn.exchange.run(GET_SERVER)
    assert caught.value.code == 2150859173
    assert handle.count("exchange", "Create") == 1


@pytest.mark.parametrize("os_transport", ["psrp", "winrm"])
def test_a_cmdlet_that_never_finishes_is_stopped_at_its_timeout(
    transport_server: Any, os_transport: str
) -> None:
    handle: ServerHandle = transport_server()
    with handle.connect(handle.target(exfix_os_transport=os_transport)) as conn:
        started = time.monotonic()
        with pytest.raises(HostTimeoutError, match="Start-Sleep did not finish within 1s"):
            conn.os.run(CmdletCall(Endpoint.OS, "Start-Sleep", (("Seconds", 3600),)), timeout=1)
        assert time.monotonic() - started < 10
        # The endpoint is still usable afterwards.
        assert len(conn.os.run(GET_DNS_CLIENT)) == 2


@pytest.mark.parametrize("os_transport", ["psrp", "winrm"])
def test_a_hung_host_ends_in_host_timeout_within_the_deadline(
    transport_server: Any, os_transport: str
) -> None:
    handle: ServerHandle = transport_server()
    endpoint = "winrs" if os_transport == "winrm" else "os"
    handle.server.inject(handle.name, {"fail": {"kind": "hang", "on": "Receive", "endpoint": endpoint}})
    with handle.connect(handle.target(exfix_os_transport=os_transport), seconds=3) as conn:
        started = time.monotonic()
        with pytest.raises(HostTimeoutError):
            conn.os.run(GET_DNS_CLIENT)
        elapsed = time.monotonic() - started
    assert elapsed < 3 + 3  # the deadline, and a margin for a loaded machine


def test_an_expired_host_deadline_sends_nothing(transport_server: Any) -> None:
    handle: ServerHandle = transport_server()
    target = handle.target()
    deadline = HostDeadline(target.name, 0)
    from agent.transport import connect

    with connect(target, handle.credential(target), deadline) as conn, pytest.raises(HostTimeoutError):
        conn.exchange.run(GET_SERVER)
    assert handle.count() == 0


def test_refused_connection_is_unreachable_after_bounded_retries(
    transport_server: Any, closed_port: int
) -> None:
    handle: ServerHandle = transport_server()
    target = handle.target(exfix_exchange_port=closed_port)
    sleeps: list[float] = []
    with handle.connect(target, sleeps=sleeps) as conn, pytest.raises(UnreachableError, match="refused"):
        conn.exchange.run(GET_SERVER)
    assert len(sleeps) == 2


def test_https_validates_the_certificate_by_default(transport_server: Any) -> None:
    handle: ServerHandle = transport_server(https=True)
    sleeps: list[float] = []
    target = handle.target(ansible_psrp_cert_validation="validate")
    with handle.connect(target, sleeps=sleeps) as conn, pytest.raises(UnreachableError, match="certificate"):
        conn.exchange.run(GET_SERVER)
    assert sleeps == []  # a certificate that is not trusted will not become trusted by retrying
    with handle.connect(handle.target(ansible_psrp_cert_validation="ignore")) as conn:
        assert conn.exchange.run(GET_SERVER)[0].get("Name") == "EX01"
        assert len(conn.os.run(GET_DNS_CLIENT)) == 2


def test_https_with_winrm_validates_too(transport_server: Any) -> None:
    handle: ServerHandle = transport_server(https=True)
    target = handle.target(ansible_psrp_cert_validation="validate", exfix_os_transport="winrm")
    with handle.connect(target) as conn, pytest.raises(UnreachableError, match="certificate"):
        conn.os.run(GET_DNS_CLIENT)
    with handle.connect(handle.target(exfix_os_transport="winrm")) as conn:
        assert len(conn.os.run(GET_DNS_CLIENT)) == 2


@pytest.mark.parametrize("os_transport", ["psrp", "winrm"])
def test_basic_over_http_only_when_allowed(transport_server: Any, os_transport: str) -> None:
    handle: ServerHandle = transport_server()
    allowed = handle.target(
        ansible_psrp_auth="basic",
        exfix_exchange_auth="basic",
        exfix_allow_insecure_basic=True,
        exfix_os_transport=os_transport,
    )
    with handle.connect(allowed) as conn:
        assert conn.exchange.run(GET_SERVER)[0].get("Name") == "EX01"
        assert len(conn.os.run(GET_DNS_CLIENT)) == 2
    refused = dataclasses.replace(allowed, allow_insecure_basic=False)
    with pytest.raises(UsageError, match="basic"):
        handle.connect(refused)


def test_the_password_never_reaches_logs_or_reprs(
    transport_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    handle: ServerHandle = transport_server()
    caplog.set_level(logging.DEBUG)
    for variables in (
        {},
        {
            "ansible_psrp_auth": "basic",
            "exfix_exchange_auth": "basic",
            "exfix_allow_insecure_basic": True,
            "exfix_os_transport": "winrm",
        },
    ):
        target = handle.target(**variables)
        credential = handle.credential(target)
        with handle.connect(target, credential=credential) as conn:
            conn.exchange.run(GET_SERVER)
            conn.os.run(GET_DNS_CLIENT)
            shown = " ".join(
                [
                    repr(conn),
                    repr(conn.exchange),
                    repr(conn.os),
                    repr(credential),
                    str(credential),
                    repr(target),
                    str(target.to_dict()),
                ]
            )
        assert LAB_PASSWORD not in shown
    wrong = handle.credential(handle.target(), "Sekr1t-wrong")
    with handle.connect(credential=wrong) as conn, pytest.raises(AuthenticationError) as caught:
        conn.exchange.run(GET_SERVER)
    assert "Sekr1t-wrong" not in str(caught.value)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged  # pypsrp and exfix did log at DEBUG
    assert LAB_PASSWORD not in logged and "Sekr1t-wrong" not in logged


def _forget_remote_session(session: Any) -> None:
    """Make the server drop the session's pool/shell behind its back, as Exchange does to a
    pool idle for about two minutes (pypsrp #203)."""
    if isinstance(session, PsrpcoreSession):
        session._shell.delete(10.0)
    elif hasattr(session, "_pool"):
        session._pool.shell.close()
    else:
        session._protocol.close_shell(session._shell_id, close_session=False)


@pytest.mark.parametrize("os_transport", ["psrp", "winrm"])
def test_a_pool_the_server_forgot_is_opened_again(transport_server: Any, os_transport: str) -> None:
    handle: ServerHandle = transport_server()
    sleeps: list[float] = []
    with handle.connect(handle.target(exfix_os_transport=os_transport), sleeps=sleeps) as conn:
        conn.os.run(GET_DNS_CLIENT)
        _forget_remote_session(conn.os)
        assert len(conn.os.run(GET_DNS_CLIENT)) == 2  # a read: sent again on a new pool
        _forget_remote_session(conn.os)
        conn.os.run(SET_DNS_CLIENT)  # refused before it ran, so a change is sent again too
        assert conn.os.opens == 3
    assert handle.runtime.mutations == 1
    assert len(sleeps) == 2
