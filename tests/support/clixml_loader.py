"""Test helper: read an Export-Clixml capture into RemoteObjects, as a transport would.

Minimal on purpose: pypsrp's own deserializer does the CLIXML work. This only
- strips the XML namespace Export-Clixml writes (pypsrp matches bare tag names);
- marks every <Obj> with a <LST> body as a collection: Exchange's MultiValuedProperty types are
  unknown to pypsrp, which would otherwise keep the list as raw XML text and lose the RefIds
  defined inside it;
- maps pypsrp's GenericComplexObject onto agent.model.remote.RemoteObject.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from pypsrp.complex_objects import GenericComplexObject
from pypsrp.serializer import Serializer

from agent.model.remote import RemoteObject

_LIST_TYPE = "System.Collections.ArrayList"


def _prepare(root: ET.Element) -> None:
    for node in root.iter():
        if isinstance(node.tag, str) and "}" in node.tag:
            node.tag = node.tag.split("}", 1)[1]
    for node in root.iter("Obj"):
        tn = node.find("TN")
        if node.find("LST") is not None and tn is not None and not any(t.text == _LIST_TYPE for t in tn):
            marker = ET.Element("T")
            marker.text = _LIST_TYPE
            tn.insert(0, marker)


def _convert(value: Any) -> Any:
    if isinstance(value, GenericComplexObject):
        props: dict[str, Any] = {k: _convert(v) for k, v in value.extended_properties.items()}
        # adapted properties are the object's own and win a clash (as RemoteObject documents)
        props.update({k: _convert(v) for k, v in value.adapted_properties.items()})
        return RemoteObject(type_names=tuple(value.types), properties=props, to_string=value.to_string)
    if isinstance(value, list | tuple):
        return tuple(_convert(v) for v in value)
    if isinstance(value, dict):
        return {_convert(k): _convert(v) for k, v in value.items()}
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def load_clixml(path: Path) -> tuple[RemoteObject, ...]:
    """Every top-level <Obj> of an Export-Clixml file, in order."""
    root = ET.fromstring(path.read_bytes().decode("utf-8-sig"))
    _prepare(root)
    serializer = Serializer()
    out: list[RemoteObject] = []
    for element in root.findall("Obj"):
        # clear=False: RefIds and TNRefs are unique across the whole file and refer back.
        converted = _convert(serializer.deserialize(element, clear=False))
        assert isinstance(converted, RemoteObject), type(converted)
        out.append(converted)
    return tuple(out)
