"""The facts snapshot: HostFacts as versioned JSON, for `exfix scan --save-facts F` and
`exfix evaluate F`.

Format (``"schema": "exfix.facts/1"``)::

    {"schema": "exfix.facts/1", "hosts": [ {<HostFacts>}, ... ]}

Each HostFacts is a JSON object with one key per dataclass field (snake_case, as in
agent/model/facts.py); enums are their values, tuples are arrays, absent areas are null.

Reading is strict: an unknown schema, a missing or unknown key, or a value of the wrong type
raises FactsFileError naming the file and the key path (``hosts[0].nics[1].interface_index``).
A snapshot is a file a user hands exfix, so nothing in it is trusted.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Iterable
from typing import Any, Union

from agent.errors import FactsFileError
from agent.model.facts import HostFacts

SCHEMA = "exfix.facts/1"

_NoneType = type(None)


def _encode(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    return value


def host_to_dict(facts: HostFacts) -> dict[str, Any]:
    encoded = _encode(facts)
    assert isinstance(encoded, dict)
    return encoded


def to_dict(hosts: Iterable[HostFacts]) -> dict[str, Any]:
    return {"schema": SCHEMA, "hosts": [host_to_dict(h) for h in hosts]}


def to_json(hosts: Iterable[HostFacts]) -> str:
    return json.dumps(to_dict(hosts), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


class _Decoder:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> FactsFileError:
        return FactsFileError(self.source, problem, key=key or None)

    def decode(self, hint: Any, data: Any, key: str) -> Any:
        origin = typing.get_origin(hint)
        if origin is Union or origin is types.UnionType:
            options = typing.get_args(hint)
            if data is None:
                if _NoneType in options:
                    return None
                raise self.fail(key, "must not be null")
            concrete = [o for o in options if o is not _NoneType]
            if len(concrete) == 1:  # "X | None": X's own error, with its own key path
                return self.decode(concrete[0], data, key)
            errors = []
            for option in concrete:
                try:
                    return self.decode(option, data, key)
                except FactsFileError as exc:
                    errors.append(exc.problem)
            raise self.fail(key, " or ".join(dict.fromkeys(errors)))
        if data is None:
            raise self.fail(key, "must not be null")
        if origin is tuple:
            args = typing.get_args(hint)
            if not isinstance(data, list):
                raise self.fail(key, f"must be a list, not {type(data).__name__}")
            item_hint = args[0]
            return tuple(self.decode(item_hint, item, f"{key}[{i}]") for i, item in enumerate(data))
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            try:
                return hint(data)
            except (ValueError, TypeError):
                allowed = ", ".join(repr(m.value) for m in hint)
                raise self.fail(key, f"{data!r} is not one of {allowed}") from None
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return self.dataclass(hint, data, key)
        if hint is bool:
            if not isinstance(data, bool):
                raise self.fail(key, f"must be true or false, not {type(data).__name__}")
            return data
        if hint is int:
            if isinstance(data, bool) or not isinstance(data, int):
                raise self.fail(key, f"must be an integer, not {type(data).__name__}")
            return data
        if hint is float:
            if isinstance(data, bool) or not isinstance(data, (int, float)):
                raise self.fail(key, f"must be a number, not {type(data).__name__}")
            return float(data)
        if hint is str:
            if not isinstance(data, str):
                raise self.fail(key, f"must be a string, not {type(data).__name__}")
            return data
        raise self.fail(key, f"unsupported field type {hint!r}")  # a bug in exfix, not in the file

    def dataclass(self, cls: type[Any], data: Any, key: str) -> Any:
        if not isinstance(data, dict):
            raise self.fail(key, f"must be an object, not {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = [k for k in data if k not in fields]
        if unknown:
            raise self.fail(_join(key, str(unknown[0])), "unknown key")
        values = {}
        for name, field in fields.items():
            where = _join(key, name)
            if name not in data:
                has_default = (
                    field.default is not dataclasses.MISSING
                    or field.default_factory is not dataclasses.MISSING
                )
                if has_default:
                    continue
                raise self.fail(where, "missing")
            values[name] = self.decode(hints[name], data[name], where)
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise self.fail(key, f"invalid value: {exc}") from None


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def from_dict(data: Any, *, source: str = "<facts>") -> tuple[HostFacts, ...]:
    """The hosts of a snapshot. Raises FactsFileError (file, key) on anything unexpected."""
    decoder = _Decoder(source)
    if not isinstance(data, dict):
        raise decoder.fail("", "a facts snapshot must be a JSON object")
    schema = data.get("schema")
    if schema != SCHEMA:
        raise decoder.fail("schema", f"expected {SCHEMA!r}, found {schema!r}")
    unknown = [k for k in data if k not in ("schema", "hosts")]
    if unknown:
        raise decoder.fail(str(unknown[0]), "unknown key")
    if "hosts" not in data:
        raise decoder.fail("hosts", "missing")
    hosts = data["hosts"]
    if not isinstance(hosts, list):
        raise decoder.fail("hosts", "must be a list")
    return tuple(decoder.dataclass(HostFacts, host, f"hosts[{i}]") for i, host in enumerate(hosts))


def from_json(text: str, *, source: str = "<facts>") -> tuple[HostFacts, ...]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactsFileError(source, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    return from_dict(data, source=source)
