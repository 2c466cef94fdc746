"""Replay of real Export-Clixml captures: one RawClixml item per top-level ``<Obj>``.

An Export-Clixml file is one ``<Objs>`` document whose objects share RefId and TN RefId
numbering: a later object may say ``<TNRef RefId="0"/>`` or ``<Ref RefId="3"/>`` and mean
something defined inside an earlier one. Sent one by one, each object must stand alone, so
every reference to something outside the object is replaced by a copy of what it refers to.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from pathlib import Path

from mock_remoting.backend import RawClixml

NS = "http://schemas.microsoft.com/powershell/2004/04"
_Q = f"{{{NS}}}"


class ReplayError(Exception):
    """The capture is not an Export-Clixml document."""


def _local(tag: str) -> str:
    return tag[len(_Q) :] if tag.startswith(_Q) else tag


def load_capture(path: Path) -> list[RawClixml]:
    try:
        root = ET.fromstring(path.read_bytes())
    except (OSError, ET.ParseError) as error:
        raise ReplayError(f"{path}: not readable CLIXML: {error}") from None
    if _local(root.tag) != "Objs":
        raise ReplayError(f"{path}: the root element is <{_local(root.tag)}>, expected <Objs>")

    # Every TN and every Obj with a RefId, anywhere in the document.
    type_names: dict[str, ET.Element] = {}
    objects: dict[str, ET.Element] = {}
    for element in root.iter():
        tag = _local(element.tag)
        ref = element.get("RefId")
        if ref is None:
            continue
        if tag == "TN":
            type_names.setdefault(ref, element)
        elif tag == "Obj":
            objects.setdefault(ref, element)

    items: list[RawClixml] = []
    for top in root:
        if _local(top.tag) != "Obj":
            continue
        standalone = _self_contained(copy.deepcopy(top), type_names, objects)
        _strip_namespace(standalone)
        items.append(RawClixml(ET.tostring(standalone, encoding="unicode")))
    return items


def _self_contained(
    obj: ET.Element, type_names: dict[str, ET.Element], objects: dict[str, ET.Element]
) -> ET.Element:
    """Replace references to TNs and objects defined outside ``obj`` with copies, then
    renumber RefIds from 0 so that the element is valid on its own."""
    for _ in range(64):  # nested copies may bring new outside references; depth is bounded
        inside_tn = {e.get("RefId") for e in obj.iter() if _local(e.tag) == "TN"}
        inside_obj = {e.get("RefId") for e in obj.iter() if _local(e.tag) == "Obj"}
        changed = False
        for parent in list(obj.iter()):
            for index, child in enumerate(list(parent)):
                tag = _local(child.tag)
                ref = child.get("RefId")
                if tag == "TNRef" and ref not in inside_tn and ref in type_names:
                    parent[index] = copy.deepcopy(type_names[ref])
                    inside_tn.add(ref)
                    changed = True
                elif tag == "Ref" and ref not in inside_obj and ref in objects:
                    replacement = copy.deepcopy(objects[ref])
                    name = child.get("N")
                    if name is not None:
                        replacement.set("N", name)
                    else:
                        replacement.attrib.pop("N", None)
                    parent[index] = replacement
                    changed = True
        if not changed:
            break
    _renumber(obj)
    return obj


def _renumber(obj: ET.Element) -> None:
    """Give Objs and TNs fresh RefIds in document order. A Ref points at the first Obj that had
    its old RefId; a TN copied twice becomes a TNRef to its first copy."""
    obj_map: dict[str, str] = {}
    tn_map: dict[str, str] = {}
    counter = 0
    for element in list(obj.iter()):
        tag = _local(element.tag)
        ref = element.get("RefId")
        if ref is None:
            continue
        if tag == "Obj":
            obj_map.setdefault(ref, str(counter))
            element.set("RefId", str(counter))
            counter += 1
        elif tag == "TN":
            if ref in tn_map:
                element.tag = "TNRef"
                for child in list(element):
                    element.remove(child)
                element.set("RefId", tn_map[ref])
            else:
                tn_map[ref] = str(len(tn_map))
                element.set("RefId", tn_map[ref])
        elif tag == "TNRef":
            element.set("RefId", tn_map.get(ref, ref))
        elif tag == "Ref":
            element.set("RefId", obj_map.get(ref, ref))


def _strip_namespace(element: ET.Element) -> None:
    for node in element.iter():
        node.tag = _local(node.tag)
