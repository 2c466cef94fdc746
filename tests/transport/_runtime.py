"""A small HostRuntime behind the lab's real protocol server, for the transport's own tests.

The transport is tested against the real WSMan/PSRP/WinRS server (mock_remoting.server) over
sockets with unmodified pypsrp and pywinrm; only the host behind it is this small runtime, so
each test controls exactly what the host does (hang, write an error record, count mutations).

WinRS scripts are read with tests/support/pwsh_oracle.py, the independent PowerShell reader, and then
run through the same ``invoke`` as PSRP pipelines: both transports see one host.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PSObject,
    PSUInt,
    add_note_property,
)

from mock_remoting.backend import Command, Endpoint, InvocationResult, Parameter, RawClixml
from support import pwsh_oracle

NO_LANGUAGE = (
    "The syntax is not supported by this runspace. This can occur if the runspace is in no-language mode."
)

# Get-TransportService as Exchange serializes it: ExternalDNSServers is a MultiValuedProperty
# (a type pypsrp does not know) holding a <LST>, and the enum arrives with its ToString.
TRANSPORT_SERVICE = (
    '<Obj RefId="0"><TN RefId="0">'
    "<T>Microsoft.Exchange.Data.Directory.SystemConfiguration.TransportServerPresentationObject</T>"
    "<T>System.Object</T></TN><ToString>EX01</ToString><Props>"
    '<S N="Name">EX01</S><B N="ExternalDNSAdapterEnabled">false</B>'
    '<Obj N="ExternalDNSServers" RefId="1"><TN RefId="1">'
    "<T>Microsoft.Exchange.Data.MultiValuedProperty`1[[System.Net.IPAddress, System, Version=4.0.0.0]]</T>"
    "<T>Microsoft.Exchange.Data.MultiValuedPropertyBase</T><T>System.Object</T></TN>"
    "<LST><S>10.0.0.10</S><S>10.0.0.11</S></LST></Obj>"
    '<Obj N="ExternalDNSProtocolOption" RefId="2"><TN RefId="2">'
    "<T>Microsoft.Exchange.Data.ProtocolOption</T><T>System.Enum</T><T>System.ValueType</T>"
    "<T>System.Object</T></TN><ToString>Any</ToString><I32>0</I32></Obj>"
    "</Props></Obj>"
)


def error_record(
    message: str,
    fqid: str,
    category: ErrorCategory,
    target: str | None = None,
    reason: str = "RuntimeException",
) -> ErrorRecord:
    return ErrorRecord(
        Exception=NETException(Message=message),
        CategoryInfo=ErrorCategoryInfo(Category=category, Reason=reason, TargetName=target),
        TargetObject=target,
        FullyQualifiedErrorId=fqid,
    )


def dns_client(alias: str, index: int, register: bool, suffixes: Sequence[str]) -> PSObject:
    obj = PSObject()
    obj.PSObject.type_names = [
        "Microsoft.Management.Infrastructure.CimInstance#ROOT/StandardCimv2/MSFT_DNSClient",
        "Microsoft.Management.Infrastructure.CimInstance",
        "System.Object",
    ]
    obj.PSObject.to_string = f'MSFT_DNSClient (Name = "{index}")'
    add_note_property(obj, "InterfaceAlias", alias)
    add_note_property(obj, "InterfaceIndex", PSUInt(index))
    add_note_property(obj, "RegisterThisConnectionsAddress", register)
    add_note_property(obj, "ConnectionSpecificSuffixSearchList", list(suffixes))
    return obj


# Parameters each cmdlet accepts: anything else is refused as the real binder does.
KNOWN_PARAMETERS = {
    "get-exchangeserver": {"identity"},
    "get-transportservice": {"identity"},
    "get-dnsclient": {"interfacealias", "interfaceindex"},
    "set-dnsclient": {"interfacealias", "interfaceindex", "registerthisconnectionsaddress"},
    "get-echo": None,  # anything: returns its parameters
    "start-sleep": {"seconds", "milliseconds"},
}


class TransportRuntime:
    """Thread-safe. ``calls`` records every command; ``scripts`` every script received on PSRP."""

    def __init__(self, name: str = "ex01.contoso.local") -> None:
        self._name = name
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str]] = []  # (endpoint or "winrs", cmdlet)
        self.scripts: list[tuple[Endpoint, str]] = []
        self.mutations = 0
        self.register = False

    @property
    def name(self) -> str:
        return self._name

    def count(self, cmdlet: str) -> int:
        with self._lock:
            return sum(1 for _, name in self.calls if name.lower() == cmdlet.lower())

    def invoke(
        self, endpoint: Endpoint, pipeline: Sequence[Command], cancel: threading.Event
    ) -> InvocationResult:
        result = InvocationResult()
        for command in pipeline:
            if command.is_script:
                with self._lock:
                    self.scripts.append((endpoint, command.name))
                if endpoint is Endpoint.EXCHANGE:
                    result.failure = error_record(
                        NO_LANGUAGE, "ScriptsNotAllowed", ErrorCategory.ParserError, reason="ParseException"
                    )
                    return result
                return self.run_script(command.name, cancel)
            with self._lock:
                self.calls.append((endpoint.value, command.name))
            self._run(command, result, cancel)
            if result.failure is not None:
                return result
        return result

    def _run(self, command: Command, result: InvocationResult, cancel: threading.Event) -> None:
        name = command.name.lower()
        allowed = KNOWN_PARAMETERS.get(name, set())
        if name not in KNOWN_PARAMETERS:
            result.failure = error_record(
                f"The term '{command.name}' is not recognized as the name of a cmdlet, function, "
                "script file, or operable program.",
                "CommandNotFoundException",
                ErrorCategory.ObjectNotFound,
                command.name,
                "CommandNotFoundException",
            )
            return
        params = {(p.name or "").lower(): p.value for p in command.parameters}
        for p in command.parameters:
            if allowed is not None and (p.name or "").lower() not in allowed:
                result.failure = error_record(
                    f"A parameter cannot be found that matches parameter name '{p.name}'.",
                    f"NamedParameterNotFound,{command.name}",
                    ErrorCategory.InvalidArgument,
                    p.name,
                    "ParameterBindingException",
                )
                return
        if name == "get-exchangeserver":
            server = PSObject()
            server.PSObject.type_names = [
                "Microsoft.Exchange.Data.Directory.Management.ExchangeServer",
                "System.Object",
            ]
            server.PSObject.to_string = "EX01"
            add_note_property(server, "Name", "EX01")
            add_note_property(server, "Fqdn", self._name)
            add_note_property(server, "AdminDisplayVersion", "Version 15.2 (Build 1118.7)")
            result.output.append(server)
        elif name == "get-transportservice":
            result.output.append(RawClixml(TRANSPORT_SERVICE))
        elif name == "get-dnsclient":
            with self._lock:
                register = self.register
            result.output.append(
                dns_client("Ethernet0", 5, register, ["contoso.local", "corp.contoso.local"])
            )
            result.output.append(dns_client("Replication", 7, False, []))
            if params.get("interfacealias") not in (None, "Ethernet0", "Replication"):
                result.errors.append(
                    error_record(
                        f"No MSFT_DNSClient objects found with property 'InterfaceAlias' equal to "
                        f"'{params['interfacealias']}'.",
                        "CmdletizationQuery_NotFound_InterfaceAlias,Get-DnsClient",
                        ErrorCategory.ObjectNotFound,
                        str(params["interfacealias"]),
                        "CimJobException",
                    )
                )
        elif name == "set-dnsclient":
            with self._lock:
                self.mutations += 1
                self.register = bool(params.get("registerthisconnectionsaddress"))
        elif name == "get-echo":
            echo = PSObject()
            echo.PSObject.type_names = ["Exfix.Echo", "System.Object"]
            for p in command.parameters:
                add_note_property(echo, p.name or "Argument", p.value)
            result.output.append(echo)
        elif name == "start-sleep":
            seconds = float(params.get("seconds", 0) or 0) + float(params.get("milliseconds", 0) or 0) / 1000
            cancel.wait(seconds)

    def run_script(self, script: str, cancel: threading.Event) -> InvocationResult:
        """A WinRS script: read with the oracle, then run as the equivalent PSRP commands."""
        with self._lock:
            self.calls.append(("winrs", "<script>"))
        try:
            statements = pwsh_oracle.parse(script)
        except pwsh_oracle.OracleError as exc:
            result = InvocationResult(exit_code=1)
            result.failure = error_record(str(exc), "ParseError", ErrorCategory.ParserError)
            return result
        commands = [
            Command(
                s.cmdlet,
                parameters=tuple(
                    Parameter(n, True if v is pwsh_oracle.SWITCH else _wire(v)) for n, v in s.parameters
                ),
            )
            for s in statements
        ]
        result = self.invoke(Endpoint.OS, commands, cancel)
        if result.failure is not None or result.errors:
            result.exit_code = 1
        return result


def _wire(value: Any) -> Any:
    # PSRP carries arrays as lists; the oracle returns tuples.
    return list(value) if isinstance(value, tuple) else value
