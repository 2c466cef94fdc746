"""Parameter binding as PowerShell does it, for the emulated cmdlets.

Named parameters match case-insensitively, by alias, or by an unambiguous prefix; positional
arguments fill the positions in order; each value is converted to the parameter's type the way
PowerShell would (or refused with the ParameterBindingException it would give). Values arrive
as psrpcore deserialized them (str, int, bool, None, list, dict, PSObject) or, from the script
runner, as the literal values it parsed.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psrpcore.types import ErrorCategory, ErrorRecord, PSObject

from mock_remoting.backend import Parameter
from mock_remoting.exchange import records
from mock_remoting.exchange.script import Switch


class Kind(str, enum.Enum):
    STRING = "System.String"
    STRINGS = "System.String[]"
    BOOL = "System.Boolean"
    SWITCH = "System.Management.Automation.SwitchParameter"
    INT = "System.Int32"
    UINTS = "System.UInt32[]"
    DOUBLE = "System.Double"
    ENUM = "enum"
    MVP = "Microsoft.Exchange.Data.MultiValuedProperty"
    ANY = "System.Object"


@dataclass(frozen=True, slots=True)
class P:
    """One parameter of a cmdlet."""

    name: str
    kind: Kind
    position: int | None = None
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    type_name: str = ""  # for messages: the .NET type of enums and MVPs


class BindingFailed(Exception):
    """Binding failed; ``record`` is the terminating ParameterBindingException record."""

    def __init__(self, record: ErrorRecord) -> None:
        super().__init__(records.message_of(record))
        self.record = record


COMMON = (
    P("Verbose", Kind.SWITCH, aliases=("vb",)),
    P("Debug", Kind.SWITCH, aliases=("db",)),
    P(
        "ErrorAction",
        Kind.ENUM,
        aliases=("ea",),
        type_name="System.Management.Automation.ActionPreference",
        choices=("SilentlyContinue", "Stop", "Continue", "Inquire", "Ignore", "Suspend", "Break"),
    ),
    P(
        "WarningAction",
        Kind.ENUM,
        aliases=("wa",),
        type_name="System.Management.Automation.ActionPreference",
        choices=("SilentlyContinue", "Stop", "Continue", "Inquire", "Ignore", "Suspend", "Break"),
    ),
    P(
        "InformationAction",
        Kind.ENUM,
        aliases=("infa",),
        type_name="System.Management.Automation.ActionPreference",
        choices=("SilentlyContinue", "Stop", "Continue", "Inquire", "Ignore", "Suspend", "Break"),
    ),
    P("ErrorVariable", Kind.STRING, aliases=("ev",)),
    P("WarningVariable", Kind.STRING, aliases=("wv",)),
    P("InformationVariable", Kind.STRING, aliases=("iv",)),
    P("OutVariable", Kind.STRING, aliases=("ov",)),
    P("OutBuffer", Kind.INT, aliases=("ob",)),
    P("PipelineVariable", Kind.STRING, aliases=("pv",)),
)
SHOULD_PROCESS = (P("WhatIf", Kind.SWITCH, aliases=("wi",)), P("Confirm", Kind.SWITCH, aliases=("cf",)))


@dataclass(frozen=True, slots=True)
class MvpEdit:
    """``@{Add=..; Remove=..}`` for a multi-valued property."""

    add: tuple[str, ...]
    remove: tuple[str, ...]


def bind(cmdlet: str, params: Sequence[P], given: Sequence[Parameter]) -> dict[str, Any]:
    """Bind ``given`` to ``params``; returns canonical name -> converted value."""
    table = list(params)
    bound: dict[str, Any] = {}
    positional: list[Any] = []
    for parameter in given:
        if parameter.name is None:
            positional.append(parameter.value)
            continue
        spec = _find(cmdlet, table, parameter.name)
        if spec.name in bound:
            raise BindingFailed(records.parameter_repeated(cmdlet, spec.name))
        bound[spec.name] = convert(cmdlet, spec, parameter.value)
    free = sorted(
        (p for p in table if p.position is not None and p.name not in bound), key=lambda p: p.position or 0
    )
    for value in positional:
        if not free:
            raise BindingFailed(records.positional_not_found(cmdlet, _show(value)))
        spec = free.pop(0)
        bound[spec.name] = convert(cmdlet, spec, value)
    return bound


def _find(cmdlet: str, table: Sequence[P], name: str) -> P:
    wanted = name.lower()
    for spec in table:
        if spec.name.lower() == wanted or wanted in (a.lower() for a in spec.aliases):
            return spec
    matches = [spec for spec in table if spec.name.lower().startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise BindingFailed(records.parameter_ambiguous(cmdlet, name, [m.name for m in matches]))
    raise BindingFailed(records.parameter_not_found(cmdlet, name))


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def plain(value: Any) -> Any:
    """psrpcore's primitives (PSString, PSInt, PSList, PSDict, ...) as plain Python values. A
    complex PSObject stays as it is, except one that only wraps a value by its ToString (a
    deserialized enum), which becomes that string."""
    if isinstance(value, bool) or value is None or isinstance(value, Switch):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, PSObject):
        ps = value.PSObject
        if not ps.adapted_properties and not ps.extended_properties and ps.to_string is not None:
            return str(ps.to_string)
    return value


def _complex(value: Any) -> bool:
    return isinstance(value, (list, dict, PSObject))


_scalar = plain


def convert(cmdlet: str, spec: P, value: Any) -> Any:
    value = plain(value)
    kind = spec.kind
    if isinstance(value, Switch):
        if kind is Kind.SWITCH:
            return True
        raise BindingFailed(
            records._binding(
                cmdlet,
                f"Missing an argument for parameter '{spec.name}'. Specify a parameter of type "
                f"'{spec.type_name or kind.value}' and try again.",
                "MissingArgument",
                ErrorCategory.InvalidArgument,
            )
        )
    if kind in (Kind.SWITCH, Kind.BOOL):
        return _to_bool(cmdlet, spec, value)
    if kind is Kind.STRING:
        if _complex(value):
            raise BindingFailed(records.argument_transformation(cmdlet, spec.name, value, "System.String"))
        if value is None:
            return ""
        return "True" if value is True else "False" if value is False else str(value)
    if kind is Kind.STRINGS:
        items = value if isinstance(value, list) else [value]
        result = []
        for item in items:
            item = _scalar(item)
            if _complex(item):
                raise BindingFailed(
                    records.argument_transformation(cmdlet, spec.name, item, "System.String[]")
                )
            if item is not None:
                result.append("True" if item is True else "False" if item is False else str(item))
        return tuple(result)
    if kind is Kind.INT:
        return _to_int(cmdlet, spec, value, "System.Int32")
    if kind is Kind.DOUBLE:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            return float(str(value))
        except ValueError:
            raise BindingFailed(
                records.argument_transformation(cmdlet, spec.name, value, "System.Double")
            ) from None
    if kind is Kind.UINTS:
        items = value if isinstance(value, list) else [value]
        converted = [_to_int(cmdlet, spec, _scalar(i), "System.UInt32[]") for i in items]
        if any(v < 0 for v in converted):
            raise BindingFailed(records.argument_transformation(cmdlet, spec.name, value, "System.UInt32[]"))
        return tuple(converted)
    if kind is Kind.ENUM:
        return _to_enum(cmdlet, spec, value)
    if kind is Kind.MVP:
        return _to_mvp(cmdlet, spec, value)
    return value


def _to_bool(cmdlet: str, spec: P, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        # Booleans that went through text ("True", "$false") are accepted: an orchestrator that
        # renders parameters as strings means them as booleans, and refusing would only hide that.
        text = value.strip().lower().lstrip("$")
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
    if value is None and spec.kind is Kind.SWITCH:
        return True
    raise BindingFailed(records.argument_transformation(cmdlet, spec.name, value, "System.Boolean"))


def _to_int(cmdlet: str, spec: P, value: Any, type_name: str) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip(), 0) if value.strip().lower().startswith("0x") else int(value.strip())
        except ValueError:
            pass
    raise BindingFailed(records.argument_transformation(cmdlet, spec.name, value, type_name))


def _to_enum(cmdlet: str, spec: P, value: Any) -> str:
    text = "" if value is None else str(value)
    for choice in spec.choices:
        if choice.lower() == text.strip().lower():
            return choice
    raise BindingFailed(
        records.enum_mismatch(cmdlet, spec.name, text, spec.type_name or "enum", spec.choices)
    )


def _to_mvp(cmdlet: str, spec: P, value: Any) -> tuple[str, ...] | MvpEdit:
    if isinstance(value, Mapping):
        add: list[str] = []
        remove: list[str] = []
        for key, item in value.items():
            action = str(key).lower()
            items = [str(_scalar(i)) for i in (item if isinstance(item, list) else [item]) if i is not None]
            if action == "add":
                add += items
            elif action == "remove":
                remove += items
            else:
                raise BindingFailed(
                    records.argument_transformation(
                        cmdlet, spec.name, value, spec.type_name or Kind.MVP.value
                    )
                )
        return MvpEdit(tuple(add), tuple(remove))
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    result: list[str] = []
    for item in items:
        item = _scalar(item)
        if _complex(item):
            raise BindingFailed(
                records.argument_transformation(cmdlet, spec.name, item, spec.type_name or Kind.MVP.value)
            )
        if item is not None:
            result.append(str(item))
    return tuple(result)


def apply_mvp(current: Sequence[str], change: tuple[str, ...] | MvpEdit) -> list[str]:
    if isinstance(change, MvpEdit):
        result = [v for v in current if v.lower() not in {r.lower() for r in change.remove}]
        for item in change.add:
            if item.lower() not in (v.lower() for v in result):
                result.append(item)
        return result
    return list(change)


def ip_values(values: tuple[str, ...] | MvpEdit) -> list[str]:
    """The addresses a change mentions; raises ValueError for one that is not an IP address."""
    items = list(values.add + values.remove) if isinstance(values, MvpEdit) else list(values)
    return [str(ipaddress.ip_address(v.strip())) for v in items]
