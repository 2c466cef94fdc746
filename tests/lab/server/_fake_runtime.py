"""A small HostRuntime for protocol tests: the server is tested without the Exchange emulation.

It answers a handful of commands with psrpcore PSObjects and mirrors the behaviour of the
real endpoints that the protocol tests rely on: the Exchange endpoint is in NoLanguage mode
and fails every script with the error Windows sends (ScriptsNotAllowed, ParserError).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PSObject,
    add_note_property,
)

from mock_remoting.backend import Command, Endpoint, InvocationResult, RawClixml

NO_LANGUAGE = (
    "The syntax is not supported by this runspace. This can occur if the runspace is in no-language mode."
)
RAW_SERVER = (
    '<Obj RefId="0"><TN RefId="0">'
    "<T>Deserialized.Microsoft.Exchange.Data.Directory.Management.ExchangeServer</T>"
    '<T>Deserialized.System.Object</T></TN><ToString>EX-RAW</ToString><Props><S N="Name">EX-RAW</S>'
    '<S N="Fqdn">ex-raw.contoso.local</S><S N="Note">ünïcødé &amp; &lt;tags&gt; _x000A_</S></Props></Obj>'
)


def error_record(
    message: str, fqid: str, category: ErrorCategory, target: Any = None, reason: str = "RuntimeException"
) -> ErrorRecord:
    return ErrorRecord(
        Exception=NETException(Message=message),
        CategoryInfo=ErrorCategoryInfo(
            Category=category, Reason=reason, TargetName=str(target) if target is not None else None
        ),
        TargetObject=target,
        FullyQualifiedErrorId=fqid,
    )


def exchange_server(name: str, fqdn: str, version: str) -> PSObject:
    obj = PSObject()
    obj.PSObject.type_names = [
        "Deserialized.Microsoft.Exchange.Data.Directory.Management.ExchangeServer",
        "Deserialized.System.Object",
    ]
    obj.PSObject.to_string = name
    add_note_property(obj, "Name", name)
    add_note_property(obj, "Fqdn", fqdn)
    add_note_property(obj, "AdminDisplayVersion", version)
    return obj


class FakeRuntime:
    """Thread-safe; records every pipeline it ran (``calls``)."""

    def __init__(self, name: str = "ex01.contoso.local") -> None:
        self._name = name
        self._lock = threading.Lock()
        self.calls: list[tuple[Endpoint | str, tuple[Command, ...]]] = []
        self.cancelled = threading.Event()

    @property
    def name(self) -> str:
        return self._name

    def _record(self, endpoint: Endpoint | str, pipeline: Sequence[Command]) -> None:
        with self._lock:
            self.calls.append((endpoint, tuple(pipeline)))

    def _sleep(self, seconds: float, cancel: threading.Event) -> bool:
        if cancel.wait(seconds):
            self.cancelled.set()
            return False
        return True

    def invoke(
        self, endpoint: Endpoint, pipeline: Sequence[Command], cancel: threading.Event
    ) -> InvocationResult:
        self._record(endpoint, pipeline)
        result = InvocationResult()
        for command in pipeline:
            if command.is_script:
                if endpoint is Endpoint.EXCHANGE:
                    result.failure = error_record(
                        NO_LANGUAGE,
                        "ScriptsNotAllowed",
                        ErrorCategory.ParserError,
                        command.name,
                        "ParseException",
                    )
                    return result
                return self.run_script(command.name, cancel)
            params = {(p.name or "").lower(): p.value for p in command.parameters}
            name = command.name.lower()
            if name == "get-exchangeserver":
                short = self._name.split(".")[0].upper()
                result.output.append(exchange_server(short, self._name, "Version 15.2 (Build 1118.7)"))
            elif name == "get-rawcapture":
                result.output.append(RawClixml(RAW_SERVER))
            elif name == "write-output":
                result.output.append(params.get("inputobject"))
            elif name == "start-sleep":
                seconds = float(params.get("seconds", 0)) + float(params.get("milliseconds", 0)) / 1000
                if not self._sleep(seconds, cancel):
                    return result
            elif name == "get-mixed":
                result.output.append("before")
                result.errors.append(error_record("soft error", "SoftError", ErrorCategory.InvalidData))
                result.output.append("after")
            elif name == "get-failure":
                result.output.append("before")
                result.failure = error_record(
                    str(params.get("message", "hard failure")), "HardFailure", ErrorCategory.InvalidOperation
                )
                return result
            else:
                result.failure = error_record(
                    f"The term '{command.name}' is not recognized as the name of a cmdlet, function, script "
                    "file, or operable program.",
                    "CommandNotFoundException",
                    ErrorCategory.ObjectNotFound,
                    command.name,
                    "CommandNotFoundException",
                )
                return result
        return result

    def run_script(self, script: str, cancel: threading.Event) -> InvocationResult:
        """Understands ``Write-Output X``, ``Write-Error X``, ``throw X``, ``Start-Sleep N``,
        ``Get-ExchangeServer``, ``Get-RawCapture`` and ``exit N``, one statement per ``;``/line."""
        self._record("script", (Command(script, is_script=True),))
        result = InvocationResult()
        for statement in re.split(r"[;\n]", script):
            words = statement.strip().split(None, 1)
            if not words:
                continue
            verb, rest = words[0].lower(), (words[1] if len(words) > 1 else "").strip().strip("'\"")
            if verb in ("write-output", "echo"):
                result.output.append(rest)
            elif verb == "write-error":
                result.errors.append(
                    error_record(
                        rest,
                        "Microsoft.PowerShell.Commands.WriteErrorException",
                        ErrorCategory.NotSpecified,
                        reason="WriteErrorException",
                    )
                )
            elif verb == "throw":
                result.failure = error_record(rest, rest, ErrorCategory.OperationStopped)
                result.exit_code = 1
                return result
            elif verb == "start-sleep":
                if not self._sleep(float(rest.split()[-1]), cancel):
                    return result
            elif verb == "get-exchangeserver":
                result.output.append(exchange_server(self._name.split(".")[0].upper(), self._name, "15.2"))
            elif verb == "get-rawcapture":
                result.output.append(RawClixml(RAW_SERVER))
            elif verb == "exit":
                result.exit_code = int(rest)
                return result
            else:
                result.errors.append(
                    error_record(
                        f"The term '{words[0]}' is not recognized",
                        "CommandNotFoundException",
                        ErrorCategory.ObjectNotFound,
                    )
                )
                result.exit_code = 1
        return result
