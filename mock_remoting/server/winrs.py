"""The WinRS cmd shell (ResourceURI .../windows/shell/cmd), as pywinrm's ``run_ps`` uses it.

pywinrm runs ``powershell -encodedcommand <base64 of UTF-16LE script>`` (winrm/__init__.py
``Session.run_ps``); exfix adds ``-NoProfile -NonInteractive -OutputFormat XML`` so that stdout
is CLIXML. The lab decodes the script and hands it to ``HostRuntime.run_script``. What comes
back is written the way powershell.exe writes it:

* stdout: with ``-OutputFormat XML``, ``#< CLIXML`` and one ``<Objs>`` document holding every
  output object (replayed captures verbatim); otherwise one text line per object;
* stderr: ``#< CLIXML`` and the error records as ``<S S="Error">`` lines (the form pywinrm's
  ``_clean_error_msg`` turns back into text), whenever there is an error;
* the exit code of the InvocationResult (powershell.exe exits 1 when a terminating error ended
  the script and nothing else set the code).

Only powershell command lines are emulated; any other program fails with exit code 1 and a
message on stderr, so a caller sees at once that the lab cannot run it.
"""

from __future__ import annotations

import base64
import binascii
import threading
import uuid
from dataclasses import dataclass, field
from xml.etree import ElementTree

from psrpcore import PSRemotingCrypto
from psrpcore.types import ErrorRecord, deserialize, serialize

from mock_remoting.backend import InvocationResult, RawClixml
from mock_remoting.server import wsman
from mock_remoting.server.shells import Poll, ShellContext, escape_xml_controls, take_chunks
from mock_remoting.server.wsman import Request, StreamChunk, WSManFault

CLIXML_HEADER = "#< CLIXML\r\n"
_OBJS_OPEN = '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
_CIPHER = PSRemotingCrypto()  # no SecureStrings are serialized; psrpcore requires a provider
_CHUNK = 16384  # stdout is streamed in pieces of this size, as a console process writes it


class CommandLineError(ValueError):
    """The command line is not one the lab can run."""


@dataclass(frozen=True, slots=True)
class PowerShellCall:
    script: str
    xml_output: bool


def split_command_line(text: str) -> list[str]:
    """Split a Windows command line the way the C runtime does for the common cases: spaces
    separate arguments, double quotes group, and ``\\"`` is a literal quote."""
    args: list[str] = []
    current: list[str] = []
    in_quotes = False
    has_token = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] == '"':
            current.append('"')
            has_token = True
            i += 2
            continue
        if ch == '"':
            in_quotes = not in_quotes
            has_token = True
        elif ch in " \t" and not in_quotes:
            if has_token:
                args.append("".join(current))
                current, has_token = [], False
        else:
            current.append(ch)
            has_token = True
        i += 1
    if has_token:
        args.append("".join(current))
    return args


def _matches(arg: str, name: str, short: tuple[str, ...] = ()) -> bool:
    """powershell.exe accepts a parameter's documented aliases (-e, -ec) and any unambiguous
    prefix of three letters or more (-enc, -EncodedCommand, -NoProf)."""
    word = arg.lstrip("-/").lower()
    return word in short or (len(word) >= 3 and name.startswith(word))


def parse_powershell(args: list[str]) -> PowerShellCall:
    """Understand ``powershell [-NoProfile] [-NonInteractive] [-OutputFormat XML|Text]
    [-ExecutionPolicy P] (-EncodedCommand B64 | -Command TEXT...)``."""
    if not args:
        raise CommandLineError("empty command line")
    program = args[0].replace("/", "\\").rsplit("\\", 1)[-1].lower()
    if program.endswith(".exe"):
        program = program[:-4]
    if program != "powershell":
        raise CommandLineError(
            f"'{args[0]}' cannot be run by the exfix lab: its WinRS shell emulates only "
            "'powershell -EncodedCommand <base64>' and 'powershell -Command <text>'."
        )
    xml_output = False
    i = 1
    while i < len(args):
        arg = args[i]
        if not arg.startswith(("-", "/")):
            # A bare argument starts the command text, as -Command would.
            return PowerShellCall(" ".join(args[i:]), xml_output)
        if _matches(arg, "encodedcommand", ("e", "ec")):
            if i + 1 >= len(args):
                raise CommandLineError("-EncodedCommand needs a value")
            try:
                raw = base64.b64decode(args[i + 1], validate=True)
                script = raw.decode("utf-16-le")
            except (binascii.Error, UnicodeDecodeError):
                raise CommandLineError("-EncodedCommand is not base64 of UTF-16LE text") from None
            return PowerShellCall(script, xml_output)
        if _matches(arg, "command", ("c",)):
            return PowerShellCall(" ".join(args[i + 1 :]), xml_output)
        if _matches(arg, "outputformat", ("o", "of")):
            if i + 1 >= len(args):
                raise CommandLineError(f"{arg} needs a value")
            xml_output = args[i + 1].lower() in ("xml", "x")
            i += 2
            continue
        if _matches(arg, "executionpolicy", ("ep", "ex")) or _matches(arg, "inputformat", ("if",)):
            if i + 1 >= len(args):
                raise CommandLineError(f"{arg} needs a value")
            i += 2
            continue
        if any(_matches(arg, name) for name in ("noprofile", "noninteractive", "nologo")):
            i += 1
            continue
        raise CommandLineError(f"powershell parameter {arg!r} is not emulated by the exfix lab")
    raise CommandLineError("no -EncodedCommand or -Command given")


def _clixml_element(value: object) -> str:
    if isinstance(value, RawClixml):
        return value.xml.strip()
    return ElementTree.tostring(serialize(value, _CIPHER), encoding="unicode")


def render_stdout(output: list[object], xml: bool) -> str:
    if xml:
        return CLIXML_HEADER + _OBJS_OPEN + "".join(_clixml_element(v) for v in output) + "</Objs>"
    lines = []
    for value in output:
        if isinstance(value, RawClixml):
            value = deserialize(ElementTree.fromstring(value.xml), _CIPHER)
        lines.append("" if value is None else str(value))
    return "".join(f"{line}\r\n" for line in lines)


def _error_lines(record: object) -> list[str]:
    """The lines powershell.exe prints for an error record (the default error view)."""
    if not isinstance(record, ErrorRecord):
        return [str(record)]
    lines = [str(record)]
    category = getattr(record, "CategoryInfo", None)
    if category is not None:
        lines.append(f"    + CategoryInfo          : {category}")
    fqid = getattr(record, "FullyQualifiedErrorId", None)
    if fqid:
        lines.append(f"    + FullyQualifiedErrorId : {fqid}")
    return lines


def render_stderr(result: InvocationResult) -> str:
    records = [*result.errors, *([result.failure] if result.failure is not None else [])]
    if not records:
        return ""
    parts = [CLIXML_HEADER, _OBJS_OPEN]
    for record in records:
        for line in _error_lines(record):
            element = serialize(line + "\r\n", _CIPHER)  # psrpcore escapes CR/LF as _x000D__x000A_
            element.set("S", "Error")
            parts.append(ElementTree.tostring(element, encoding="unicode"))
    parts.append("</Objs>")
    return "".join(parts)


@dataclass
class _Process:
    cancel: threading.Event = field(default_factory=threading.Event)
    queue: list[StreamChunk] = field(default_factory=list)
    exit_code: int | None = None  # set when the process has ended

    def write(self, name: str, text: str, xml: bool = False) -> None:
        data = text.encode("utf-8")
        if xml and text.startswith(CLIXML_HEADER):
            head = len(CLIXML_HEADER)
            data = data[:head] + escape_xml_controls(data[head:])
        for start in range(0, len(data), _CHUNK):
            self.queue.append(
                StreamChunk(name, base64.b64encode(data[start : start + _CHUNK]).decode("ascii"))
            )

    def end(self, exit_code: int) -> None:
        self.queue.append(StreamChunk("stdout", "", end=True))
        self.queue.append(StreamChunk("stderr", "", end=True))
        self.exit_code = exit_code


class WinrsShell:
    """One cmd shell; each Command is a process that ends with an exit code."""

    resource_uri = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
    endpoint = "winrs"

    def __init__(self, ctx: ShellContext, shell_id: str, input_streams: str, output_streams: str) -> None:
        self.ctx = ctx
        self.shell_id = shell_id
        self.input_streams = input_streams or "stdin"
        self.output_streams = output_streams or "stdout stderr"
        self.processes: dict[str, _Process] = {}
        self.closed = False

    def command(self, request: Request) -> str:
        body = request.require_body("Command without rsp:CommandLine")
        command_el = body.find("rsp:Command", wsman.NS)
        words = [(command_el.text or "").strip()] if command_el is not None else []
        # pywinrm joins its arguments into one rsp:Arguments; pypsrp sends one element each.
        line = " ".join([*words, *(a.text or "" for a in body.findall("rsp:Arguments", wsman.NS))])
        command_id = body.get("CommandId") or str(uuid.uuid4()).upper()
        process = _Process()
        self.processes[command_id] = process
        try:
            call = parse_powershell(split_command_line(line))
        except CommandLineError as exc:
            process.write("stderr", f"{exc}\r\n")
            process.end(1)
            return wsman.command_body(command_id)
        runtime = self.ctx.runtime

        def work(cancel: threading.Event) -> InvocationResult:
            return runtime.run_script(call.script, cancel)

        def done(result: object, error: BaseException | None) -> None:
            if self.closed:
                return
            if error is not None:
                process.write(
                    "stderr", f"exfix lab: the host emulation failed: {type(error).__name__}: {error}\r\n"
                )
                process.end(1)
                return
            assert isinstance(result, InvocationResult)
            try:
                stdout = render_stdout(result.output, call.xml_output)
                stderr = render_stderr(result)
            except Exception as exc:
                process.write(
                    "stderr", f"exfix lab: cannot serialize the output: {type(exc).__name__}: {exc}\r\n"
                )
                process.end(1)
                return
            if stdout:
                process.write("stdout", stdout, xml=call.xml_output)
            if stderr:
                process.write("stderr", stderr, xml=True)
            exit_code = result.exit_code
            if result.failure is not None and exit_code == 0:
                exit_code = 1
            process.end(exit_code)

        self.ctx.run(work, process.cancel, done)
        return wsman.command_body(command_id)

    def send(self, request: Request) -> str:
        # stdin is accepted and ignored: the scripts the lab runs read no input.
        return "<rsp:SendResponse/>"

    def signal(self, request: Request) -> str:
        command_id, code = request.signal()
        process = self.processes.get(command_id or "")
        if process is not None:
            if code.endswith(("signal/ctrl_c", "signal/ctrl_break", "signal/terminate")):
                process.cancel.set()
            if code.endswith("signal/terminate") and process.exit_code is not None:
                self.processes.pop(command_id or "", None)
        return "<rsp:SignalResponse/>"

    def poll(self, command_id: str | None, budget: int) -> Poll | None:
        process = self.processes.get(command_id or "")
        if process is None:
            raise WSManFault(
                None,
                "w:InvalidSelectors",
                f"The command with CommandId {command_id} was not found.",
                sender=True,
            )
        chunks = take_chunks(process.queue, budget)
        if process.exit_code is not None and not process.queue:
            return Poll(chunks, "Done", process.exit_code)
        return Poll(chunks, "Running") if chunks else None

    def after_receive(self, command_id: str | None) -> None:
        return None

    def close(self) -> None:
        self.closed = True
        for process in self.processes.values():
            process.cancel.set()
        self.processes.clear()
