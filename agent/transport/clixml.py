"""CLIXML -> :class:`RemoteObject`: the one converter every transport's output goes through.

Three producers write the same PowerShell serialization format (MS-PSRP 2.2.5):

- PSRP pipeline output (pypsrp): each output message is one ``<Obj>`` document;
- ``powershell -OutputFormat XML`` over WinRS (pywinrm): ``#< CLIXML`` then ``<Objs>`` on
  stdout, and error records as CLIXML on stderr;
- ``Export-Clixml`` files (the real captures exfix's tests read).

All three are parsed here, from the XML itself. pypsrp's own object model is not good enough
to read Exchange objects from: it keeps a ``<LST>`` inside an object whose types it does not
know (every ``Microsoft.Exchange.Data.MultiValuedProperty`1``: ExternalDNSServers,
AddressSpaces, SmartHosts...) as a raw XML string, and it loses the RefIds defined inside it.
So for pypsrp output we read the XML it received (:func:`from_pypsrp`), and pypsrp's parsed
objects are never looked at.

psrpcore (pinned, the lab's serializer) deserializes all of this correctly too, and issue 8 §5
asked to switch to it behind an adapter. It is the reference instead, for client CPU, measured
with ``time.process_time`` on this machine: psrpcore (with or without an adapter onto
RemoteObject) took 8x this reader's time on the real captures, 17x on 1,000 Get-Queue objects
as PSRP messages, 13x on the same in one WinRS document and 10x on 1,000 copies of the real
Get-SendConnector object (8.3 ms per object against 0.85), and it raised a lab fleet scan's
client CPU from about 95 to 125-130 ms per host. The time is psrpcore's object model (a
PSObject with its own metadata for every primitive). tests/transport/test_clixml.py holds this
reader to psrpcore's reading of every real capture and recorded PSRP message, and to whatever
psrpcore serializes; that comparison found the wrapped-object case below. What is psrpcore's
here: the ErrorCategory names.

Conversion rules (what collectors can rely on):

- adapted (``<Props>``) and extended (``<MS>``) properties are merged; adapted win a clash;
- type names are kept as sent; compare them with :meth:`RemoteObject.is_a`, which ignores the
  ``Deserialized.`` prefix;
- enums (``System.Enum`` in the type names) become their string form (the ``ToString``), the
  way Exchange sends them over remote PowerShell;
- lists (``LST``/``IE``/``STK``/``QUE``) become tuples, dictionaries (``DCT``) dicts;
- a primitive wrapped in an ``<Obj>`` with note properties (an Extended Primitive Object,
  MS-PSRP 2.2.5.2.5: Get-Content lines) becomes the primitive when it is a property value;
- an object wrapped in an ``<Obj>`` with more members is one object: the inner object's
  properties with the outer members added, the outer type names and ToString, as psrpcore
  reads it. MS-PSRP 2.2.5.2.2 does not list a nested ``<Obj>`` as an object's value, but a
  real Windows server sends one for a provider item (the WSMan: drive's
  WSManConfigLeafElement with its PSPath/PSDrive members, in pypsrp's JEA recording);
- GUIDs, dates, durations, versions and decimals stay strings as sent; byte arrays stay base64
  text; SecureStrings are never decrypted (None);
- ``_xHHHH_`` escapes in strings (CLIXML's encoding of control characters) are decoded.

Anything malformed degrades to None or a string instead of raising: one odd property must not
cost a host its scan. Only a document that is not XML, or that has a DTD, raises
:class:`ClixmlError`; the transports report that as an error record of the command
(:func:`unreadable_output`), never as a traceback.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from psrpcore.types import ErrorCategory

from agent.model.remote import RemoteError, RemoteObject

__all__ = [
    "UNREADABLE_OUTPUT_ID",
    "ClixmlError",
    "error_from_object",
    "from_pypsrp",
    "parse_clixml",
    "parse_stream",
    "read_clixml_file",
    "unreadable_output",
]

CLIXML_HEADER = "#< CLIXML"

# Deeper than any real object graph (PowerShell serializes remoting output at depth 1-2);
# only a hostile document gets here, and it gets the element's text instead of a stack overflow.
_MAX_DEPTH = 64

_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")

# .NET primitive type names, for a bare primitive at the top level of the output.
_PRIMITIVE_TYPES = {
    "S": "System.String",
    "C": "System.Char",
    "B": "System.Boolean",
    "DT": "System.DateTime",
    "TS": "System.TimeSpan",
    "By": "System.Byte",
    "SB": "System.SByte",
    "U16": "System.UInt16",
    "I16": "System.Int16",
    "U32": "System.UInt32",
    "I32": "System.Int32",
    "U64": "System.UInt64",
    "I64": "System.Int64",
    "Sg": "System.Single",
    "Db": "System.Double",
    "D": "System.Decimal",
    "BA": "System.Byte[]",
    "G": "System.Guid",
    "URI": "System.Uri",
    "Version": "System.Version",
    "XD": "System.Xml.XmlDocument",
    "SBK": "System.Management.Automation.ScriptBlock",
    "SS": "System.Security.SecureString",
    "Nil": "System.Object",
}
_INTEGERS = frozenset({"By", "SB", "U16", "I16", "U32", "I32", "U64", "I64"})
_FLOATS = frozenset({"Sg", "Db"})
_TEXTUAL = frozenset({"S", "DT", "TS", "D", "G", "URI", "Version", "XD", "SBK", "BA"})
_LISTS = frozenset({"LST", "IE", "STK", "QUE"})

# System.Management.Automation.ErrorCategory names by value (the wire carries the number),
# from psrpcore's copy of the enum.
ERROR_CATEGORIES = tuple(category.name for category in sorted(ErrorCategory, key=lambda c: c.value))

# The FullyQualifiedErrorId of the error record a transport reports for output it cannot read.
UNREADABLE_OUTPUT_ID = "UnreadableClixml"


class ClixmlError(ValueError):
    """The text is not a CLIXML document exfix reads: not XML, or it has a DTD."""


def decode_text(text: str | None) -> str:
    """Undo CLIXML's ``_xHHHH_`` escaping (control characters, and surrogate pairs)."""
    if not text:
        return ""
    if "_x" not in text:
        return text
    decoded = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    # Characters beyond the BMP arrive as two escaped UTF-16 surrogates: join them.
    return decoded.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class _Reader:
    """Reads one document: RefIds (objects) and TN RefIds (type lists) are document-scoped."""

    def __init__(self) -> None:
        self._objects: dict[str, Any] = {}
        self._types: dict[str, tuple[str, ...]] = {}

    # -- values ---------------------------------------------------------------------------

    def value(self, element: ET.Element, depth: int = 0) -> Any:
        """A property value: primitives as Python values, objects as RemoteObject/tuple/dict."""
        tag = element.tag
        if tag == "Obj":
            return self._obj(element, depth, top=False)
        if tag == "Ref":
            # An object not (yet) complete is a cycle back to an ancestor: break it with None.
            return self._objects.get(element.get("RefId", ""))
        return self._primitive(tag, element)

    def top(self, element: ET.Element) -> RemoteObject | None:
        """A top-level output element as a RemoteObject (a bare primitive is wrapped)."""
        tag = element.tag
        if tag == "Obj":
            result = self._obj(element, 0, top=True)
            if isinstance(result, RemoteObject):
                return result
            return _wrap(self._type_names(element) or ("System.Object",), result)
        if tag == "Ref":
            found = self._objects.get(element.get("RefId", ""))
            return found if isinstance(found, RemoteObject) else _wrap(("System.Object",), found)
        if tag not in _PRIMITIVE_TYPES:
            return None
        return _wrap((_PRIMITIVE_TYPES[tag], "System.Object"), self._primitive(tag, element))

    def _primitive(self, tag: str, element: ET.Element) -> Any:
        text = element.text or ""
        if tag == "Nil" or tag == "SS":
            return None
        if tag == "B":
            return text.strip().lower() == "true"
        if tag in _INTEGERS:
            try:
                return int(text.strip())
            except ValueError:
                return None
        if tag in _FLOATS:
            try:
                return float(text.strip())
            except ValueError:
                return None
        if tag == "C":
            try:
                return chr(int(text.strip()))
            except (ValueError, OverflowError):
                return None
        if tag in _TEXTUAL or tag == "ToString":
            return decode_text(text) if tag in ("S", "XD", "SBK", "ToString") else text.strip()
        # An element this reader does not know: its text is the most honest value.
        return decode_text(text) if text else None

    # -- objects --------------------------------------------------------------------------

    def _type_names(self, element: ET.Element) -> tuple[str, ...]:
        for child in element:
            tag = child.tag
            if tag == "TN":
                names = tuple(decode_text(t.text) for t in child if t.tag == "T")
                ref = child.get("RefId")
                if ref is not None:
                    self._types[ref] = names
                return names
            if tag == "TNRef":
                return self._types.get(child.get("RefId", ""), ())
        return ()

    def _obj(self, element: ET.Element, depth: int, *, top: bool) -> Any:
        ref = element.get("RefId")
        if depth > _MAX_DEPTH:
            return decode_text("".join(element.itertext())).strip() or None
        type_names = self._type_names(element)
        to_string: str | None = None
        adapted: dict[str, Any] = {}
        extended: dict[str, Any] = {}
        body: Any = None
        has_body = False
        for child in element:
            tag = child.tag
            if tag in ("TN", "TNRef"):
                continue
            if tag == "ToString":
                to_string = decode_text(child.text)
            elif tag == "Props":
                self._properties(child, adapted, depth)
            elif tag == "MS":
                self._properties(child, extended, depth)
            elif tag in _LISTS:
                body = tuple(self.value(item, depth + 1) for item in child)
                has_body = True
            elif tag == "DCT":
                body = self._dictionary(child, depth)
                has_body = True
            elif not has_body:
                # The object's own value: an enum's number, a wrapped primitive or object.
                body = self.value(child, depth + 1)
                has_body = True

        result: Any
        if isinstance(body, RemoteObject):
            # A wrapped object (see the module docstring). PowerShell's Add-Member refuses a
            # member the object already has unless forced, so the outer members add to the
            # inner properties rather than clash with them.
            properties = {**body.properties, **extended, **adapted}
            result = RemoteObject(
                type_names=type_names or body.type_names,
                properties=properties,
                to_string=to_string if to_string is not None else body.to_string,
            )
        elif _is_enum(type_names):
            result = to_string if to_string is not None else body
        elif has_body and not top:
            # Lists, dictionaries and primitives wrapped with note properties are their value
            # when they are a property (Get-Content lines, MultiValuedProperty collections).
            result = body
        elif has_body and isinstance(body, (tuple, dict)) and not adapted and not extended:
            result = body
        else:
            properties = dict(extended)
            properties.update(adapted)  # adapted are the object's own: they win a clash
            if has_body and top and not isinstance(body, (tuple, dict)):
                to_string = to_string if to_string is not None else _text_of(body)
            result = RemoteObject(type_names=type_names, properties=properties, to_string=to_string)
        if ref is not None:
            self._objects[ref] = result
        return result

    def _properties(self, container: ET.Element, into: dict[str, Any], depth: int) -> None:
        for prop in container:
            name = prop.get("N")
            if name is None:
                continue  # unnamed members of a property bag carry no property
            into[decode_text(name)] = self.value(prop, depth + 1)

    def _dictionary(self, element: ET.Element, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for entry in element:
            if entry.tag != "En":
                continue
            key: Any = None
            value: Any = None
            for part in entry:
                if part.get("N") == "Key":
                    key = self.value(part, depth + 1)
                elif part.get("N") == "Value":
                    value = self.value(part, depth + 1)
            try:
                hash(key)
            except TypeError:
                key = repr(key)
            result[key] = value
        return result


def _is_enum(type_names: tuple[str, ...]) -> bool:
    return any(name.removeprefix("Deserialized.") == "System.Enum" for name in type_names)


def _text_of(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _wrap(type_names: tuple[str, ...], value: Any) -> RemoteObject | None:
    if isinstance(value, RemoteObject):
        return value
    if isinstance(value, (tuple, dict)):
        return (
            RemoteObject(type_names=type_names, properties={}, to_string=None)
            if not value
            else (RemoteObject(type_names=type_names, properties={"Value": value}, to_string=None))
        )
    return RemoteObject(type_names=type_names, properties={}, to_string=_text_of(value))


def _parse_root(text: str) -> ET.Element:
    text = text.lstrip("\ufeff").strip()
    if text.startswith(CLIXML_HEADER):
        text = text[len(CLIXML_HEADER) :].lstrip()
    # CLIXML never has a DTD (MS-PSRP 2.2.5). Without one there is no entity to declare:
    # Python's expat expands internal entities (the "billion laughs": 363 bytes became a million
    # characters when measured) and checks its amplification limit only beyond 8 MiB. This is
    # defusedxml's forbid_dtd, done before the parser sees the text. External entities are
    # never fetched by xml.etree; without a DTD they cannot even be declared.
    if "<!DOCTYPE" in text:
        raise ClixmlError("not CLIXML: a document type declaration (DTD) is refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ClixmlError(f"not CLIXML: {exc}") from None
    if "xmlns" in text:
        # Export-Clixml declares PowerShell's namespace (PSRP messages declare none): the tree
        # is read by local names, made so once here rather than at every element read. The
        # parser keeps no comments or processing instructions, so every tag is a name.
        for element in root.iter():
            if "}" in element.tag:
                element.tag = element.tag.rsplit("}", 1)[-1]
    return root


def parse_clixml(text: str) -> tuple[RemoteObject, ...]:
    """Every top-level object of one CLIXML document (``<Objs>`` or a single ``<Obj>``).

    Raises:
        ClixmlError: the text is not XML.
    """
    root = _parse_root(text)
    reader = _Reader()
    elements: Iterable[ET.Element] = root if root.tag == "Objs" else (root,)
    out: list[RemoteObject] = []
    for element in elements:
        converted = reader.top(element)
        if converted is not None:
            out.append(converted)
    return tuple(out)


def read_clixml_file(path: Path) -> tuple[RemoteObject, ...]:
    """An ``Export-Clixml`` file (UTF-8 with or without BOM, or UTF-16 with BOM)."""
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    else:
        text = raw.decode("utf-8-sig", errors="replace")
    return parse_clixml(text)


# -- pypsrp ------------------------------------------------------------------------------


def from_pypsrp(value: Any) -> tuple[RemoteObject, ...]:
    """One pypsrp pipeline output value as RemoteObjects.

    pypsrp keeps the XML it deserialized a message from on every complex object (``_xml``,
    pypsrp 0.9; exfix pins <0.10). That XML is the complete output message, so it is read here
    with the same reader as everything else. Primitives arrive already converted and are
    wrapped as a bare primitive at the top level would be.

    Raises:
        ClixmlError: the XML pypsrp kept is not readable.
    """
    xml = getattr(value, "_xml", None)
    if isinstance(xml, str) and xml.strip():
        return parse_clixml(xml)
    if isinstance(value, (list, tuple)):
        # PowerShell enumerates collections onto the pipeline; keep that shape.
        return tuple(obj for item in value for obj in from_pypsrp(item))
    if value is None:
        return ()
    wrapped = _wrap((_python_type_name(value), "System.Object"), _plain(value))
    return (wrapped,) if wrapped is not None else ()


def _python_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "System.Boolean"
    if isinstance(value, int):
        return "System.Int32"
    if isinstance(value, float):
        return "System.Double"
    return "System.String"


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


# -- error records -----------------------------------------------------------------------


def unreadable_output(cmdlet: str, error: ClixmlError) -> RemoteError:
    """The error record a transport reports for a command whose output it cannot read."""
    return RemoteError(
        message=f"{cmdlet}: the output is not readable: {error}",
        fully_qualified_error_id=UNREADABLE_OUTPUT_ID,
        category="ReadError",
    )


def error_from_object(record: RemoteObject) -> RemoteError:
    """A serialized ErrorRecord (PSRP error stream, pipeline failure, WinRS stderr) as RemoteError.

    The message is what PowerShell shows first: ErrorDetails_Message when set, else the
    exception's Message, else the record's ToString.
    """
    exception = record.get("Exception")
    message = record.get("ErrorDetails_Message") or None
    if not message and isinstance(exception, RemoteObject):
        message = exception.get("Message") or exception.to_string
    if not message:
        message = record.to_string or record.get("ErrorCategory_Message") or "unknown error"
    fqid = record.get("FullyQualifiedErrorId")
    category = record.get("ErrorCategory_Category")
    if isinstance(category, int) and 0 <= category < len(ERROR_CATEGORIES):
        category_name = ERROR_CATEGORIES[category]
    elif isinstance(category, str) and category:
        category_name = category
    else:
        category_name = "NotSpecified"
    target = record.get("ErrorCategory_TargetName") or None
    if target is None:
        target_object = record.get("TargetObject")
        if isinstance(target_object, RemoteObject):
            target = target_object.to_string or None
        elif target_object is not None:
            target = _text_of(target_object)
    return RemoteError(
        message=str(message),
        fully_qualified_error_id=str(fqid) if fqid else None,
        category=category_name,
        target=str(target) if target else None,
    )


# Formatted error text (what powershell.exe writes for an error in text mode):
#   Get-Foo : message
#       + CategoryInfo          : ObjectNotFound: (x:String) [Get-Foo], SomeException
#       + FullyQualifiedErrorId : SomeId,Some.Command
_FQID_LINE = re.compile(r"^\s*\+\s*FullyQualifiedErrorId\s*:\s*(?P<id>\S.*?)\s*$", re.MULTILINE)
_INVOCATION_PREFIX = re.compile(r"^[A-Za-z]+-[A-Za-z0-9]+ : (?P<message>.+)$", re.DOTALL)
_CATEGORY_LINE = re.compile(
    # "ObjectNotFound: (x:String) [...]" (Windows) or "ObjectNotFound (x:) [...]"
    r"^\s*\+\s*CategoryInfo\s*:\s*(?P<cat>[A-Za-z]+)\s*:?\s*(?:\((?P<target>[^)]*?):[^):]*\))?",
    re.MULTILINE,
)


def split_error_text(text: str) -> list[str]:
    """Formatted error text holding several records, one string per record: a record ends
    with its ``+ FullyQualifiedErrorId`` line."""
    records: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if not line.strip() and not current:
            continue
        current.append(line)
        if _FQID_LINE.match(line):
            records.append("\n".join(current))
            current = []
    if any(line.strip() for line in current):
        records.append("\n".join(current))
    return records


def error_from_text(text: str) -> RemoteError:
    """An error as powershell.exe formats it in text mode, with the id and category recovered."""
    cleaned = text.strip()
    fqid_match = _FQID_LINE.search(cleaned)
    category_match = _CATEGORY_LINE.search(cleaned)
    message_lines = [line for line in cleaned.splitlines() if not line.lstrip().startswith("+")]
    message = " ".join(line.strip() for line in message_lines if line.strip()) or cleaned or "unknown error"
    # powershell.exe prefixes the invocation name ("Get-Queue : ..."); PSRP carries the bare message.
    prefixed = _INVOCATION_PREFIX.match(message)
    if prefixed:
        message = prefixed.group("message")
    category = category_match.group("cat") if category_match else "NotSpecified"
    if category not in ERROR_CATEGORIES:
        category = "NotSpecified"
    target = category_match.group("target") if category_match and category_match.group("target") else None
    return RemoteError(
        message=message,
        fully_qualified_error_id=fqid_match.group("id") if fqid_match else None,
        category=category,
        target=target,
    )


# -- WinRS (powershell -OutputFormat XML) ------------------------------------------------

_STREAMS_IGNORED = frozenset({"warning", "verbose", "debug", "progress", "information", "host"})
_DOCUMENT = re.compile(r"<Objs\b.*?</Objs>|<Objs\b[^>]*/>", re.DOTALL)


def _documents(text: str) -> Iterator[str]:
    yield from (match.group(0) for match in _DOCUMENT.finditer(text))


def parse_stream(text: str) -> tuple[tuple[RemoteObject, ...], tuple[RemoteError, ...], tuple[str, ...]]:
    """What ``powershell -OutputFormat XML`` printed on stdout or stderr.

    Returns (objects, errors, warnings). Elements are routed by their ``S`` (stream)
    attribute: ``Error``/``error`` records become RemoteErrors (consecutive ``<S S="Error">``
    text lines are joined into one formatted error first), warnings are kept as text, other
    streams (progress, verbose...) are dropped, and everything else is output.

    Raises:
        ClixmlError: a document in the text is not readable (not XML, or it has a DTD).
    """
    objects: list[RemoteObject] = []
    errors: list[RemoteError] = []
    warnings: list[str] = []
    for document in _documents(text):
        root = _parse_root(document)
        reader = _Reader()
        error_text: list[str] = []  # consecutive <S S="Error"> lines of one formatted error
        for element in [*root, None]:
            stream = (element.get("S") or "").lower() if element is not None else ""
            is_obj = element is not None and element.tag == "Obj"
            if error_text and (element is None or stream != "error" or is_obj):
                errors.extend(error_from_text(record) for record in split_error_text("".join(error_text)))
                error_text = []
            if element is None:
                break
            if stream == "error":
                if is_obj:
                    record = reader.top(element)
                    if record is not None:
                        errors.append(error_from_object(record))
                else:
                    error_text.append(decode_text(element.text))
            elif stream == "warning":
                warnings.append(
                    _warning_text(reader.top(element)) if is_obj else decode_text(element.text).strip()
                )
            elif stream in _STREAMS_IGNORED:
                reader.top(element)  # still registers its RefIds for later Refs
            else:
                converted = reader.top(element)
                if converted is not None:
                    objects.append(converted)
    return tuple(objects), tuple(errors), tuple(warnings)


def _warning_text(record: RemoteObject | None) -> str:
    if record is None:
        return ""
    message = record.get("Message") or record.get("InformationalRecord_Message") or record.to_string
    return str(message or "")
