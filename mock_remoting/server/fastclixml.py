"""CLIXML for the lab's answers without psrpcore's object machinery, byte for byte what
psrpcore 0.3.1 writes (``serialize`` then ``ElementTree.tostring(..., "utf-8")``).

Why: every attribute read of a psrpcore ``PSObject`` (``obj.PSObject`` included) first builds
a dictionary of all its properties (``PSObject.__getattribute__``); the serializer reads
several attributes per property, so serializing the answers was the largest single cost of
the lab (py-spy with ``--gil``: ``PSObject.__getattribute__`` 23 % of the lab's CPU on a
mixed-fleet scan, the serializer and ElementTree another 15 %). Here the object's
``PSObjectMeta`` is read once, straight from the instance, and the XML is written as text.

What is covered is what the host emulation builds (``exchange/objects``): plain
``PSObject``\\ s (and ``PSCustomObject``\\ s, which psrpcore writes the same way) with type
names, adapted (``<Props>``) and extended (``<MS>``) note properties and a ``ToString``;
``PSList``; psrpcore's enums and primitives; ``None``, ``bool``, ``int``, ``float``,
``str``, ``UUID``, ``datetime`` and ``timedelta`` values. Anything else (an ErrorRecord, a
Python enum, a psrpcore primitive with properties of its own, a SecureString, a property
with a getter) makes :func:`to_clixml` return None and the caller uses psrpcore, so the fallback is always the
reference behaviour. ``tests/lab/server/test_fastclixml.py`` compares the two on every answer
of every shipped scenario and on hostile strings.

The rules mirrored, from psrpcore's ``_Serializer.serialize`` and ElementTree's writer:

* an ``<Obj>`` gets ``RefId`` from a counter shared by the whole message; a ``PSObject`` seen
  again in the same message becomes ``<Ref RefId=.../>`` (psrpcore keys a WeakKeyDictionary
  by the object, which for these types is identity); a list is unhashable and always new;
* the first type name of a type-name list that was written before becomes ``<TNRef>``;
* a property's ``N`` attribute comes after ``RefId``; strings are escaped the CLIXML way
  (``_x`` and control or astral characters as ``_xHHHH_``, MS-PSRP 2.2.5.1.16) only in ``<S>``
  values and property names, not in type names or ``ToString`` (psrpcore does not either);
* an element without text or children is written ``<Tag />``; ``&``, ``<``, ``>`` are
  escaped in text, and also ``"``, CR, LF, TAB in attributes.
"""

from __future__ import annotations

import datetime
import enum
import re
import uuid
import weakref
from typing import Any

from psrpcore.types import (
    PSByte,
    PSChar,
    PSCustomObject,
    PSEnumBase,
    PSFlagBase,
    PSGuid,
    PSInt,
    PSInt16,
    PSInt64,
    PSList,
    PSNoteProperty,
    PSObject,
    PSSByte,
    PSString,
    PSUInt,
    PSUInt16,
    PSUInt64,
)
from psrpcore.types._base import _UnsetValue
from psrpcore.types._serializer import (
    _serialize_datetime,
    _serialize_duration,
    _serialize_enum_to_string,
    _serialize_string,
)

_INT32_MAX = 2**31 - 1
# psrpcore's own primitive types and their elements (TypeRegistry's element registry): written
# as plain elements while they carry no properties of their own.
_INTEGERS = {
    PSChar: "C",
    PSSByte: "SB",
    PSInt16: "I16",
    PSInt: "I32",
    PSInt64: "I64",
    PSByte: "By",
    PSUInt16: "U16",
    PSUInt: "U32",
    PSUInt64: "U64",
}
# A superset of what psrpcore's _serialize_string rewrites (its two patterns): a string with
# none of these is written as it is, and one with any goes through psrpcore's own function.
_NEEDS_CLIXML_ESCAPE = re.compile("[\u0000-\u001f\u007f-\u009f\ud800-\udfff\U00010000-\U0010ffff]|_[xX]")


class _Unsupported(Exception):
    """A value outside what this module writes: the caller falls back to psrpcore."""


def _text(value: str) -> str:
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    return value


def _attribute(value: str) -> str:
    value = _text(value)
    if '"' in value:
        value = value.replace('"', "&quot;")
    if "\r" in value:
        value = value.replace("\r", "&#13;")
    if "\n" in value:
        value = value.replace("\n", "&#10;")
    if "\t" in value:
        value = value.replace("\t", "&#09;")
    return value


def _clixml_string(value: str) -> str:
    return _serialize_string(value) if _NEEDS_CLIXML_ESCAPE.search(value) else value


_NAMES: dict[str, str] = {}  # property name -> ' N="..."', the same few hundred names everywhere


def _name_attribute(name: str) -> str:
    found = _NAMES.get(name)
    if found is None:
        if type(name) is not str:
            raise _Unsupported(type(name).__name__)
        found = f' N="{_attribute(_clixml_string(name))}"'
        if len(_NAMES) < 4096:
            _NAMES[name] = found
    return found


# enum member -> (its value's element, its type names, its ToString, whether it takes a weak
# reference): members are constants.
_ENUMS: dict[tuple[type, Any], tuple[str, tuple[str, ...], str, bool]] = {}


class _Writer:
    __slots__ = ("enum_ids", "enum_refs", "next_ref", "parts", "refs", "type_names")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.refs: dict[int, int] = {}  # id of a PSObject (compared by identity) -> RefId
        self.enum_refs: dict[Any, int] = {}  # enum member (compared by value) -> RefId
        self.enum_ids: dict[int, int] = {}  # id of an enum member without weak references
        self.next_ref = 0
        self.type_names: list[str] = []

    def value(self, value: Any, name: str) -> None:
        kind = type(value)
        parts = self.parts
        if value is None:
            parts.append(f"<Nil{name} />")
        elif kind is str:
            text = _text(_clixml_string(value))
            parts.append(f"<S{name}>{text}</S>" if text else f"<S{name} />")
        elif kind is bool:
            parts.append(f"<B{name}>{'true' if value else 'false'}</B>")
        elif kind is int:
            tag = "I64" if value > _INT32_MAX else "I32"
            parts.append(f"<{tag}{name}>{value}</{tag}>")
        elif kind is float:
            parts.append(f"<Sg{name}>{_text(str(value).upper())}</Sg>")
        elif kind is datetime.datetime:
            parts.append(f"<DT{name}>{_text(_serialize_datetime(value))}</DT>")
        elif kind is datetime.timedelta:
            parts.append(f"<TS{name}>{_text(_serialize_duration(value))}</TS>")
        elif kind is uuid.UUID:
            parts.append(f"<G{name}>{value}</G>")
        elif kind is PSObject or kind is PSList or kind is PSCustomObject:
            self.complex(value, kind is PSList, name)
        elif isinstance(value, enum.Enum):
            self.enum(value, name)
        elif kind in _INTEGERS or kind is PSString or kind is PSGuid:
            meta = object.__getattribute__(value, "PSObject")
            if meta.adapted_properties or meta.extended_properties:
                raise _Unsupported(f"{kind.__name__} with properties")  # an <Obj> in psrpcore
            if kind is PSString:
                text = _text(_clixml_string(value))
                parts.append(f"<S{name}>{text}</S>" if text else f"<S{name} />")
            elif kind is PSGuid:
                parts.append(f"<G{name}>{value}</G>")
            else:
                tag = _INTEGERS[kind]
                parts.append(f"<{tag}{name}>{int(value)}</{tag}>")
        else:
            raise _Unsupported(kind.__name__)

    def enum(self, value: Any, name: str) -> None:
        """A psrpcore enum (PSEnumBase, PSFlagBase): its value as a primitive inside an <Obj>
        with the enum's type names and its member names as ToString."""
        if not isinstance(value, (PSEnumBase, PSFlagBase)):
            raise _Unsupported("a Python enum")
        shape = _ENUMS.get((type(value), value))
        if shape is None:
            meta = value.PSObject
            if meta.adapted_properties or meta.extended_properties or not meta.type_names:
                raise _Unsupported("enum with properties")
            inner = _Writer()
            inner.value(value.value, "")
            if inner.next_ref:
                raise _Unsupported("enum of a complex value")
            try:
                weakref.ref(value)
                weak = True
            except TypeError:
                weak = False
            to_string = _text(_serialize_enum_to_string(value))
            shape = ("".join(inner.parts), tuple(meta.type_names), to_string, weak)
            _ENUMS[type(value), value] = shape
        inner_xml, type_names, to_string, _ = shape
        # psrpcore's table of objects written is a WeakKeyDictionary, which compares by value:
        # these enums are ints, so a member equal to one written before (of any enum type)
        # is sent as a <Ref> to it. A member that takes no weak reference (an enum on
        # PSUInt16, whose type has no __weakref__ slot) goes to its second table, by id().
        table: dict[Any, int] = self.enum_refs if shape[3] else self.enum_ids
        key = value if shape[3] else id(value)
        seen = table.get(key)
        if seen is not None:
            self.parts.append(f'<Ref RefId="{seen}"{name} />')
            return
        ref = table[key] = self.next_ref
        self.next_ref += 1
        self.parts.append(f'<Obj RefId="{ref}"{name}>{inner_xml}')
        self.type_list(type_names)
        if to_string:
            self.parts.append(f"<ToString>{to_string}</ToString>")
        self.parts.append("</Obj>")

    def type_list(self, type_names: Any) -> None:
        parts = self.parts
        main = type_names[0]
        if main in self.type_names:
            parts.append(f'<TNRef RefId="{self.type_names.index(main)}" />')
        else:
            self.type_names.append(main)
            parts.append(f'<TN RefId="{len(self.type_names) - 1}">')
            for type_name in type_names:
                text = _text(type_name)
                parts.append(f"<T>{text}</T>" if text else "<T />")
            parts.append("</TN>")

    def complex(self, value: Any, is_list: bool, name: str) -> None:
        parts = self.parts
        if not is_list:
            key = id(value)
            seen = self.refs.get(key)
            if seen is not None:
                parts.append(f'<Ref RefId="{seen}"{name} />')
                return
            self.refs[key] = self.next_ref
        ref = self.next_ref
        self.next_ref += 1
        meta = object.__getattribute__(value, "PSObject")
        opening = len(parts)
        parts.append(f'<Obj RefId="{ref}"{name}>')
        if meta.type_names:
            self.type_list(meta.type_names)
        for tag, properties in (("Props", meta.adapted_properties), ("MS", meta.extended_properties)):
            if not properties:
                continue
            parts.append(f"<{tag}>")
            for prop in properties:
                if type(prop) is not PSNoteProperty or prop._getter is not None:
                    raise _Unsupported("property with a getter")
                prop_value = prop._value
                self.value(None if prop_value is _UnsetValue else prop_value, _name_attribute(prop.name))
            parts.append(f"</{tag}>")
        if is_list:
            if value:
                parts.append("<LST>")
                for item in value:
                    self.value(item, "")
                parts.append("</LST>")
            else:
                parts.append("<LST />")
        else:
            to_string = meta.to_string
            if to_string:
                if type(to_string) is not str:
                    raise _Unsupported("ToString")
                parts.append(f"<ToString>{_text(to_string)}</ToString>")
        if len(parts) == opening + 1:
            parts[opening] = f'<Obj RefId="{ref}"{name} />'
        else:
            parts.append("</Obj>")


def to_clixml(value: Any) -> bytes | None:
    """The CLIXML psrpcore would send for ``value`` as a PipelineOutput message, or None when
    ``value`` holds anything this module does not write (then use psrpcore)."""
    writer = _Writer()
    try:
        writer.value(value, "")
        return "".join(writer.parts).encode("utf-8")
    except (_Unsupported, UnicodeEncodeError):
        # UnicodeEncodeError: a lone surrogate outside an <S> value (a type name, ToString),
        # which ElementTree writes as a character reference.
        return None
