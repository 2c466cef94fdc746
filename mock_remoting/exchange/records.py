"""ErrorRecords as Windows PowerShell and Exchange write them.

Every error the emulation produces goes through here, so the messages, FullyQualifiedErrorIds
and categories stay the real ones in one place. exfix reads ``FullyQualifiedErrorId`` and the
category, so those matter more than the exact wording; the wording follows the real text as
closely as it is known.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from psrpcore.types import ErrorCategory, ErrorCategoryInfo, ErrorRecord, NETException

from mock_remoting.backend import vouch_record

# The .NET types behind the cmdlets, used as the second half of FullyQualifiedErrorIds
# ("NamedParameterNotFound,Microsoft.PowerShell.Commands.GetServiceCommand"). CDXML cmdlets
# (the DnsClient module) are functions, so PowerShell uses the command name itself.
CMDLET_TYPES: dict[str, str] = {
    "Get-ExchangeServer": "Microsoft.Exchange.Management.SystemConfigurationTasks.GetExchangeServer",
    "Get-Queue": "Microsoft.Exchange.Management.QueueViewerTasks.GetQueue",
    "Retry-Queue": "Microsoft.Exchange.Management.QueueViewerTasks.RetryQueue",
    "Get-TransportService": "Microsoft.Exchange.Management.SystemConfigurationTasks.GetTransportService",
    "Set-TransportService": "Microsoft.Exchange.Management.SystemConfigurationTasks.SetTransportService",
    "Get-TransportServer": "Microsoft.Exchange.Management.SystemConfigurationTasks.GetTransportServer",
    "Set-TransportServer": "Microsoft.Exchange.Management.SystemConfigurationTasks.SetTransportServer",
    "Get-SendConnector": "Microsoft.Exchange.Management.SystemConfigurationTasks.GetSendConnector",
    "New-SendConnector": "Microsoft.Exchange.Management.SystemConfigurationTasks.NewSendConnector",
    "Set-SendConnector": "Microsoft.Exchange.Management.SystemConfigurationTasks.SetSendConnector",
    "Remove-SendConnector": "Microsoft.Exchange.Management.SystemConfigurationTasks.RemoveSendConnector",
    "Resolve-DnsName": "Microsoft.DnsClient.Commands.ResolveDnsName",
    "Get-Service": "Microsoft.PowerShell.Commands.GetServiceCommand",
    "Restart-Service": "Microsoft.PowerShell.Commands.RestartServiceCommand",
    "Get-ItemProperty": "Microsoft.PowerShell.Commands.GetItemPropertyCommand",
    "Get-Content": "Microsoft.PowerShell.Commands.GetContentCommand",
    "New-Item": "Microsoft.PowerShell.Commands.NewItemCommand",
    "Remove-Item": "Microsoft.PowerShell.Commands.RemoveItemCommand",
    "Start-Sleep": "Microsoft.PowerShell.Commands.StartSleepCommand",
    "Select-Object": "Microsoft.PowerShell.Commands.SelectObjectCommand",
}


def cmdlet_type(cmdlet: str) -> str:
    return CMDLET_TYPES.get(cmdlet, cmdlet)


_ESCAPE_ESCAPE = re.compile("(?i)_(x)")
_NEEDS_ESCAPE = re.compile("[\u0000-\u001f\u007f-\u009f\ud800-\udfff\U00010000-\U0010ffff]")


def clixml_text(value: str) -> str:
    """``value`` encoded as CLIXML string content (MS-PSRP 2.2.5.3.2): control characters and
    astral characters become ``_xHHHH_`` (UTF-16 code units) and a literal ``_x`` is escaped.

    psrpcore applies this to string values but writes ``<ToString>`` text as it is, and a raw
    ESC or NUL there makes the whole message invalid XML for the client. Every ToString the
    emulation sets goes through here first.
    """

    def encode(match: re.Match[str]) -> str:
        units = match.group(0).encode("utf-16-be", errors="surrogatepass")
        return "".join(f"_x{units[i]:02X}{units[i + 1]:02X}_" for i in range(0, len(units), 2))

    return _NEEDS_ESCAPE.sub(encode, _ESCAPE_ESCAPE.sub("_x005F_\\1", value))


def error_record(
    message: str,
    fqid: str,
    category: ErrorCategory,
    *,
    exception_type: str = "System.Exception",
    activity: str = "",
    target: Any = None,
    target_type: str | None = None,
    reason: str | None = None,
) -> ErrorRecord:
    """An ErrorRecord whose Exception carries ``message`` and whose type is ``exception_type``."""
    exception = NETException(Message=message)
    exception.PSObject.type_names = [
        exception_type,
        "System.SystemException",
        "System.Exception",
        "System.Object",
    ]
    short_type = exception_type.rsplit(".", 1)[-1]
    if target_type is None and target is not None:
        target_type = "String" if isinstance(target, str) else type(target).__name__
    info = ErrorCategoryInfo(
        Category=category,
        Activity=activity,
        Reason=reason or short_type,
        TargetName="" if target is None else str(target),
        TargetType=target_type or "",
    )
    record = ErrorRecord(
        Exception=exception,
        CategoryInfo=info,
        TargetObject=target,
        FullyQualifiedErrorId=fqid,
    )
    record.PSObject.to_string = clixml_text(message)
    if target is None or type(target) is str:
        # Everything the record was built from: equal arguments make equal records (the
        # server then serializes one record per key; psrpcore's serializer took 5 % of the
        # lab's CPU for about two ErrorRecords per scanned host).
        key = (message, fqid, category, exception_type, activity, target, target_type, reason)
        vouch_record(record, ("error_record", *key))
    return record


def message_of(record: ErrorRecord) -> str:
    """The message of a record built here (for tests and logs)."""
    return str(record.Exception.Message)


# --- the engine's errors -------------------------------------------------------------------


def command_not_found(name: str) -> ErrorRecord:
    return error_record(
        f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or "
        "operable program. Check the spelling of the name, or if a path was included, verify that "
        "the path is correct and try again.",
        "CommandNotFoundException",
        ErrorCategory.ObjectNotFound,
        exception_type="System.Management.Automation.CommandNotFoundException",
        target=name,
    )


def no_language() -> ErrorRecord:
    # KB5001779 put the Exchange endpoint in NoLanguage mode (pypsrp #103, PowerShell-Docs #2940).
    return error_record(
        "The syntax is not supported by this runspace. This can occur if the runspace is in "
        "no-language mode.",
        "ScriptsNotAllowed",
        ErrorCategory.ParserError,
        exception_type="System.Management.Automation.ParseException",
    )


def _binding(
    cmdlet: str, message: str, fqid: str, category: ErrorCategory, target: Any = None
) -> ErrorRecord:
    return error_record(
        message,
        f"{fqid},{cmdlet_type(cmdlet)}",
        category,
        exception_type="System.Management.Automation.ParameterBindingException",
        activity=cmdlet,
        target=target,
    )


def parameter_not_found(cmdlet: str, name: str) -> ErrorRecord:
    return _binding(
        cmdlet,
        f"A parameter cannot be found that matches parameter name '{name}'.",
        "NamedParameterNotFound",
        ErrorCategory.InvalidArgument,
    )


def parameter_ambiguous(cmdlet: str, name: str, matches: Sequence[str]) -> ErrorRecord:
    listed = " ".join(f"-{m}" for m in matches)
    return _binding(
        cmdlet,
        f"Parameter cannot be processed because the parameter name '{name}' is "
        f"ambiguous. Possible matches include: {listed}.",
        "AmbiguousParameter",
        ErrorCategory.InvalidArgument,
    )


def parameter_repeated(cmdlet: str, name: str) -> ErrorRecord:
    return _binding(
        cmdlet,
        f"Cannot bind parameter because parameter '{name}' is specified more than "
        "once. To provide multiple values to parameters that can accept multiple values, "
        'use the array syntax. For example, "-parameter value1,value2,value3".',
        "ParameterAlreadyBound",
        ErrorCategory.InvalidArgument,
    )


def positional_not_found(cmdlet: str, value: Any) -> ErrorRecord:
    return _binding(
        cmdlet,
        f"A positional parameter cannot be found that accepts argument '{value}'.",
        "PositionalParameterNotFound",
        ErrorCategory.InvalidArgument,
        target=None,
    )


def missing_mandatory(cmdlet: str, names: Sequence[str]) -> ErrorRecord:
    return _binding(
        cmdlet,
        f"Cannot process command because of one or more missing mandatory parameters: {' '.join(names)}.",
        "MissingMandatoryParameter",
        ErrorCategory.InvalidArgument,
    )


def ambiguous_parameter_set(cmdlet: str) -> ErrorRecord:
    return _binding(
        cmdlet,
        "Parameter set cannot be resolved using the specified named parameters.",
        "AmbiguousParameterSet",
        ErrorCategory.InvalidArgument,
    )


def argument_transformation(cmdlet: str, name: str, value: Any, type_name: str) -> ErrorRecord:
    shown = type(value).__name__ if not isinstance(value, (str, int, bool)) else value
    if type_name == "System.Boolean":
        detail = (
            f'Cannot convert value "{shown}" to type "System.Boolean". Boolean parameters '
            "accept only Boolean values and numbers, such as $True, $False, 1 or 0."
        )
    else:
        detail = f'Cannot convert value "{shown}" to type "{type_name}".'
    return _binding(
        cmdlet,
        f"Cannot process argument transformation on parameter '{name}'. {detail}",
        "ParameterArgumentTransformationError",
        ErrorCategory.InvalidData,
    )


def enum_mismatch(cmdlet: str, name: str, value: Any, type_name: str, choices: Sequence[str]) -> ErrorRecord:
    return _binding(
        cmdlet,
        f"Cannot bind parameter '{name}'. Cannot convert value \"{value}\" to type "
        f'"{type_name}". Error: "Unable to match the identifier name {value} to a valid '
        "enumerator name. Specify one of the following enumerator names and try again:\n"
        f'{", ".join(choices)}"',
        "CannotConvertArgumentNoMessage",
        ErrorCategory.InvalidArgument,
    )


def input_not_bound(cmdlet: str, value: Any) -> ErrorRecord:
    return _binding(
        cmdlet,
        "The input object cannot be bound to any parameters for the command either "
        "because the command does not take pipeline input or the input and its properties "
        "do not match any of the parameters that take pipeline input.",
        "InputObjectNotBound",
        ErrorCategory.InvalidArgument,
        target=value,
    )


def parse_error(message: str, fqid: str) -> ErrorRecord:
    return error_record(
        message, fqid, ErrorCategory.ParserError, exception_type="System.Management.Automation.ParseException"
    )


# --- Exchange ------------------------------------------------------------------------------


class ExchangeErrors:
    """Exchange's own errors. 2013 and later prefix the FullyQualifiedErrorId with the server,
    a request id and the failure category; 2010 sends only ``<hash>,<cmdlet type>``."""

    def __init__(self, server: str, modern: bool, clock_text: str, request_id: str) -> None:
        self.server = server
        self.modern = modern
        self.clock_text = clock_text
        self.request_id = request_id

    def _fqid(self, cmdlet: str, failure: str, code: str) -> str:
        base = f"{code},{cmdlet_type(cmdlet)}"
        if not self.modern:
            return base
        return (
            f"[Server={self.server},RequestId={self.request_id},TimeStamp={self.clock_text}] "
            f"[FailureCategory=Cmdlet-{failure}] {base}"
        )

    def not_found(self, cmdlet: str, identity: str, dc: str) -> ErrorRecord:
        return error_record(
            f"The operation couldn't be performed because object '{identity}' couldn't be found on '{dc}'.",
            self._fqid(cmdlet, "ManagementObjectNotFoundException", "6F0C5B2A"),
            ErrorCategory.NotSpecified,
            exception_type="Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
            activity=cmdlet,
            target=identity,
        )

    def data_validation(self, cmdlet: str, message: str, target: Any = None) -> ErrorRecord:
        return error_record(
            message,
            self._fqid(cmdlet, "DataValidationException", "8A3E5F21"),
            ErrorCategory.InvalidData,
            exception_type="Microsoft.Exchange.Data.DataValidationException",
            activity=cmdlet,
            target=target,
        )

    def already_exists(self, cmdlet: str, dn: str, dc: str) -> ErrorRecord:
        return error_record(
            f"Active Directory operation failed on {dc}. The object '{dn}' already exists.",
            self._fqid(cmdlet, "ADObjectAlreadyExistsException", "2C1B7D44"),
            ErrorCategory.NotSpecified,
            exception_type="Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
            activity=cmdlet,
            target=dn,
        )

    def invalid_argument(self, cmdlet: str, message: str, target: Any = None) -> ErrorRecord:
        return error_record(
            message,
            self._fqid(cmdlet, "ArgumentException", "4D2A9C10"),
            ErrorCategory.InvalidArgument,
            exception_type="System.ArgumentException",
            activity=cmdlet,
            target=target,
        )


# --- least privilege: a JEA endpoint's refusals ----------------------------------------------


def argument_not_in_set(cmdlet: str, parameter: str, value: Any, allowed: Sequence[str]) -> ErrorRecord:
    # A JEA role capability's ValidateSet is enforced by the proxy function JEA builds for the
    # cmdlet ("JEA Role Capabilities", learn.microsoft.com): a binding error of that function.
    listed = ",".join(allowed)
    return _jea_validation(
        cmdlet,
        parameter,
        f'The argument "{value}" does not belong to the set "{listed}" specified by the ValidateSet '
        "attribute. Supply an argument that is in the set and then try the command again.",
        value,
    )


def argument_not_matching(cmdlet: str, parameter: str, value: Any, pattern: str) -> ErrorRecord:
    return _jea_validation(
        cmdlet,
        parameter,
        f'The argument "{value}" does not match the "{pattern}" pattern. Supply an argument that '
        f'matches "{pattern}" and try the command again.',
        value,
    )


def _jea_validation(cmdlet: str, parameter: str, detail: str, value: Any) -> ErrorRecord:
    return error_record(
        f"Cannot validate argument on parameter '{parameter}'. {detail}",
        f"ParameterArgumentValidationError,{cmdlet}",
        ErrorCategory.InvalidData,
        exception_type="System.Management.Automation.ParameterBindingValidationException",
        activity=cmdlet,
        target=value,
    )


def provider_not_found(cmdlet: str, provider: str) -> ErrorRecord:
    # The recording test_psrp_with_jea_configuration.yml (pypsrp): Get-Item in a JEA session
    # whose role shows no FileSystem provider.
    return error_record(
        f"Cannot find a provider with the name '{provider}'.",
        f"ProviderNotFound,{cmdlet_type(cmdlet)}",
        ErrorCategory.ObjectNotFound,
        exception_type="System.Management.Automation.ProviderNotFoundException",
        activity=cmdlet,
        target=provider,
    )
