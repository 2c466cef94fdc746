"""The facts snapshot: HostFacts as versioned JSON, for `exfix scan --save-facts F` and
`exfix evaluate F`.

Format (``"schema": "exfix.facts/1"``)::

    {"schema": "exfix.facts/1", "hosts": [ {<HostFacts>}, ... ]}

Each HostFacts is a JSON object with one key per dataclass field (snake_case, as in
agent/model/facts.py); enums are their values, tuples are arrays, absent areas are null.

Reading is strict (agent/model/document.py): an unknown schema, a missing or unknown key, or
a value of the wrong type raises FactsFileError naming the file and the key path
(``hosts[0].nics[1].interface_index``). A snapshot is a file a user hands exfix, so nothing in
it is trusted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.errors import FactsFileError
from agent.model.document import Document, encode, key
from agent.model.facts import HostFacts

SCHEMA = "exfix.facts/1"


@dataclass(frozen=True, slots=True)
class _Snapshot:
    # Read first, so that a snapshot of another version is reported as such.
    schema: Literal["exfix.facts/1"] = field(metadata=key(first=True))
    hosts: tuple[HostFacts, ...]


_DOCUMENT = Document(_Snapshot, FactsFileError, what="a facts snapshot")


def host_to_dict(facts: HostFacts) -> dict[str, Any]:
    encoded = encode(facts)
    assert isinstance(encoded, dict)
    return encoded


def to_dict(hosts: Iterable[HostFacts]) -> dict[str, Any]:
    return {"schema": SCHEMA, "hosts": [host_to_dict(h) for h in hosts]}


def to_json(hosts: Iterable[HostFacts]) -> str:
    return json.dumps(to_dict(hosts), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def from_dict(data: Any, *, source: str = "<facts>") -> tuple[HostFacts, ...]:
    """The hosts of a parsed snapshot. Raises FactsFileError (file, key) on anything unexpected."""
    return _DOCUMENT.read_data(data, source=source).value.hosts


def from_json(text: str, *, source: str = "<facts>") -> tuple[HostFacts, ...]:
    """The hosts of a snapshot file's text. Raises FactsFileError (file, line or key)."""
    return _DOCUMENT.read_json(text, source=source).value.hosts
