"""Deadlines, the retry schedule, what may be re-sent, and the WinRS command line."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import CredentialError, HostTimeoutError
from agent.inventory import inventory_from_mapping
from agent.model.command import SWITCH, CmdletCall, Endpoint
from agent.pwsh import command as render_command
from agent.transport import HostDeadline, RetryPolicy, connect, is_safe_to_retry
from agent.transport.winrm import powershell_command_line
from support import pwsh_oracle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_budget_is_the_smaller_of_command_and_host_time() -> None:
    clock = Clock()
    host = HostDeadline("ex01", 100, clock=clock)
    budget = host.budget(30, "Get-Queue")
    assert budget.remaining() == 30
    clock.now += 80
    assert budget.remaining() == -50  # the command's own 30s passed first
    second = host.budget(30, "Get-Queue")
    assert second.remaining() == 20  # only 20s of the host's time is left
    clock.now += 25
    error = second.timeout_error()
    assert isinstance(error, HostTimeoutError) and "deadline of 100s" in str(error)


def test_command_timeout_names_the_command() -> None:
    clock = Clock()
    budget = HostDeadline("ex01", 100, clock=clock).budget(5, "Get-Queue")
    clock.now += 6
    assert "Get-Queue did not finish within 5s" in str(budget.timeout_error())


def test_host_deadline_check() -> None:
    clock = Clock()
    host = HostDeadline("ex01", 1, clock=clock)
    host.check()
    clock.now += 1
    with pytest.raises(HostTimeoutError):
        host.check()
    assert HostDeadline("ex01", None, clock=clock).remaining() == float("inf")


def test_backoff_grows_is_jittered_and_capped() -> None:
    policy = RetryPolicy(attempts=6, base_delay=0.5, max_delay=4.0)
    lows = [policy.delay(n, rand=lambda: 0.0) for n in range(6)]
    highs = [policy.delay(n, rand=lambda: 1.0) for n in range(6)]
    assert lows == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert highs == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


@pytest.mark.parametrize(
    ("cmdlet", "safe"),
    [
        ("Get-Queue", True), ("get-dnsclient", True), ("Resolve-DnsName", True),
        ("Set-DnsClient", False), ("Retry-Queue", False), ("Restart-Service", False),
        ("Register-DnsClient", False), ("New-SendConnector", False), ("Clear-DnsClientCache", False),
    ],
)  # fmt: skip
def test_only_reads_are_safe_to_resend(cmdlet: str, safe: bool) -> None:
    assert is_safe_to_retry(CmdletCall(Endpoint.OS, cmdlet)) is safe


def _decode(line: str) -> str:
    words = line.split(" ")
    assert words[:6] == [
        "powershell",
        "-NoProfile",
        "-NonInteractive",
        "-OutputFormat",
        "XML",
        "-EncodedCommand",
    ]
    (encoded,) = words[6:]
    return base64.b64decode(encoded, validate=True).decode("utf-16-le")


@given(value=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_winrs_command_line_carries_the_audited_script(value: str) -> None:
    call = CmdletCall(
        Endpoint.OS,
        "Set-DnsClient",
        (
            ("InterfaceAlias", value),
            ("Register", True),
            ("Servers", ("10.0.0.10", value)),
            ("Validate", SWITCH),
        ),
    )
    line = powershell_command_line(call)
    assert line.isascii() and "\n" not in line  # nothing in the value can reach the command line raw
    script = _decode(line)
    assert script == render_command(call)
    (statement,) = pwsh_oracle.parse(script)
    assert statement.cmdlet == "Set-DnsClient"
    params = dict(statement.parameters)
    assert params["InterfaceAlias"] == value
    assert params["Servers"] == ("10.0.0.10", value)
    assert params["Validate"] is pwsh_oracle.SWITCH


def test_winrm_ntlm_without_a_password_is_refused_before_connecting() -> None:
    inventory = inventory_from_mapping(
        {
            "all": {
                "hosts": {
                    "ex01.contoso.local": {
                        "ansible_host": "127.0.0.1",
                        "exfix_os_transport": "winrm",
                        "ansible_psrp_auth": "negotiate",
                    }
                }
            }
        },
        "<test>",
    )
    (target,) = inventory.hosts
    credential = inventory.credentials(environ={}).resolve(target)  # the Kerberos cache: no password
    assert credential.password is None
    with pytest.raises(CredentialError, match="needs a password"):
        connect(target, credential)
