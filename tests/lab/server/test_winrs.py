"""pywinrm (and pypsrp's WinRS) against the lab's cmd shell: powershell -EncodedCommand."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import winrm
from psrpcore import PSRemotingCrypto
from psrpcore.types import deserialize_clixml

from lab.server._fake_runtime import FakeRuntime
from mock_remoting.credentials import LAB_PASSWORD, LAB_USERNAME
from mock_remoting.server.winrs import CommandLineError, parse_powershell, split_command_line

pytestmark = pytest.mark.lab


def _session(port: int, transport: str, scheme: str = "http") -> winrm.Session:
    return winrm.Session(
        f"{scheme}://127.0.0.1:{port}/wsman",
        auth=(LAB_USERNAME, LAB_PASSWORD),
        transport=transport,
        server_cert_validation="ignore",
        read_timeout_sec=15,
        operation_timeout_sec=10,
    )


@pytest.mark.parametrize("transport", ["ntlm", "basic"])
def test_run_ps_returns_output_and_status(lab_server: Any, transport: str) -> None:
    runtime = FakeRuntime()
    server = lab_server(runtime)
    result = _session(server.endpoints[0].port, transport).run_ps("Write-Output hello; Write-Output wörld")
    assert result.status_code == 0
    assert result.std_out == "hello\r\nwörld\r\n".encode()
    assert result.std_err == b""
    assert runtime.calls[-1][1][0].name == "Write-Output hello; Write-Output wörld"


def test_run_ps_over_https_with_ntlm(lab_server: Any) -> None:
    server = lab_server(https=True)
    result = _session(server.endpoints[0].https_port, "ntlm", "https").run_ps("Write-Output tls")
    assert (result.status_code, result.std_out) == (0, b"tls\r\n")


@pytest.mark.parametrize("transport", ["ntlm", "basic"])
def test_errors_give_a_non_zero_code_and_stderr(lab_server: Any, transport: str) -> None:
    server = lab_server()
    result = _session(server.endpoints[0].port, transport).run_ps("Write-Error disk full; throw stop here")
    assert result.status_code == 1
    # pywinrm turned the CLIXML error stream back into text.
    assert result.std_err.startswith(b"disk full")
    assert b"stop here" in result.std_err and b"FullyQualifiedErrorId" in result.std_err


def test_exit_code_and_clixml_stdout(lab_server: Any) -> None:
    server = lab_server()
    script = "Get-ExchangeServer; Get-RawCapture; exit 3"
    encoded = base64.b64encode(script.encode("utf-16-le")).decode()
    result = _session(server.endpoints[0].port, "ntlm").run_cmd(
        f"powershell -NoProfile -NonInteractive -OutputFormat XML -EncodedCommand {encoded}"
    )
    assert result.status_code == 3
    assert result.std_out.startswith(b"#< CLIXML\r\n<Objs ")
    objects = deserialize_clixml(result.std_out.decode()[len("#< CLIXML\r\n") :], PSRemotingCrypto())
    assert [str(o) for o in objects] == ["EX01", "EX-RAW"]
    assert objects[1].Note == "ünïcødé & <tags> \n"


def test_stderr_is_clixml_with_error_lines(lab_server: Any) -> None:
    server = lab_server()
    protocol = _session(server.endpoints[0].port, "basic").protocol
    shell = protocol.open_shell()
    encoded = base64.b64encode("Write-Error 'bad \x1b[31m value'".encode("utf-16-le")).decode()
    command = protocol.run_command(shell, f"powershell -EncodedCommand {encoded}")
    _out, err, code = protocol.get_command_output(shell, command)
    protocol.cleanup_command(shell, command)
    protocol.close_shell(shell)
    assert code == 0  # a non-terminating error alone: the fake runtime sets no exit code
    assert err.startswith(b"#< CLIXML\r\n")
    assert b'S="Error"' in err and b"_x001B_" in err and b"\x1b" not in err


def test_other_programs_fail_clearly(lab_server: Any) -> None:
    server = lab_server()
    result = _session(server.endpoints[0].port, "ntlm").run_cmd("ipconfig", ["/all"])
    assert result.status_code == 1
    assert b"'ipconfig' cannot be run by the exfix lab" in result.std_err


def test_pypsrp_winrs_process(lab_server: Any, pypsrp_wsman: Any) -> None:
    from pypsrp.shell import Process, SignalCode, WinRS

    server = lab_server()
    encoded = base64.b64encode(
        b"W\x00r\x00i\x00t\x00e\x00-\x00O\x00u\x00t\x00p\x00u\x00t\x00 \x00x\x00"
    ).decode()
    with WinRS(pypsrp_wsman(server.endpoints[0].port, path="wsman", auth="ntlm")) as shell:
        process = Process(shell, "powershell.exe", ["-NoProfile", "-EncodedCommand", encoded])
        process.invoke()
        process.signal(SignalCode.CTRL_C)
    assert (process.rc, process.stdout, process.stderr) == (0, b"x\r\n", b"")


@pytest.mark.parametrize(
    ("line", "script", "xml"),
    [
        ("powershell -encodedcommand " + base64.b64encode("1+1".encode("utf-16-le")).decode(), "1+1", False),
        (
            "C:\\Windows\\System32\\powershell.EXE -NoProf -OutputFormat xml -enc "
            + base64.b64encode("'☃'".encode("utf-16-le")).decode(),
            "'☃'",
            True,
        ),
        ('powershell -ExecutionPolicy Bypass -Command "Get-Service" -Name x', '"Get-Service" -Name x', False),
        ("powershell.exe -e " + base64.b64encode(b"a\x00").decode(), "a", False),
    ],
)
def test_powershell_command_lines(line: str, script: str, xml: bool) -> None:
    call = parse_powershell(split_command_line(line))
    assert (call.script, call.xml_output) == (script.replace('"', "") if "-Command" in line else script, xml)


@pytest.mark.parametrize(
    "line", ["cmd.exe /c echo hi", "powershell -NoProfile", "powershell -enc !!!", "powershell -Bogus x", ""]
)
def test_unusable_command_lines(line: str) -> None:
    with pytest.raises(CommandLineError):
        parse_powershell(split_command_line(line))
