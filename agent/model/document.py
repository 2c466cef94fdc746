"""One strict reader, and its inverse, for the documents users hand exfix (issue 8, §4).

A document type is a tree of frozen dataclasses. The reader maps a YAML or JSON document onto
it, driven by the dataclass fields and their type hints; the encoder turns the dataclasses back
into JSON-friendly data. Nothing in a document is trusted: every problem is one error of the
document's own :class:`~agent.errors.InputFileError` subclass, ``FILE:LINE: key 'a.b[0]': ...``
(YAML documents always have lines; JSON documents have the line of a syntax error).

Declaring and reading a document type::

    @dataclass(frozen=True, slots=True)
    class Verify:
        retry_queues: bool = True
        timeout: float = field(default=120.0, metadata=key(check=between(1, 3600, unit="seconds")))

    @dataclass(frozen=True, slots=True)
    class BookFile:
        name: str = field(metadata=key(check=text(limit=63)))
        mode: Mode                                  # an enum: one of its values
        rules: Literal["all"] | tuple[str, ...] = "all"
        verify: Verify = Verify()                   # a nested mapping
        variables: Mapping[str, Variable] = field(default_factory=dict)   # keys the user picks

    BOOK = Document(BookFile, PlaybookError, what="a playbook", max_bytes=256 * 1024)
    loaded = BOOK.read_yaml(text, source="book.yaml")      # or read_json, read_bytes, read_data
    book = loaded.value                                      # a BookFile
    if book.mode is Mode.PLAN and not book.rules:            # checks across fields, with lines
        raise loaded.fail(("rules",), "a plan playbook needs rules")

What a hint accepts: ``str``, ``int`` (not a boolean; 64-bit unless a check says less),
``float`` (finite), ``bool``, ``None``, enums and ``Literal`` (by value; ``key(ignore_case=True)``
ignores case and gives back the declared spelling), ``tuple[X, ...]`` and ``tuple[X, Y]`` (a
list), ``Mapping[str, X]``/``dict[str, X]``, nested dataclasses, ``X | Y`` unions of those
(chosen by the shape of the value), and ``Any`` (plain data, unchecked). A field with a default
may be absent. ``key(...)`` in the field's metadata sets, per field: the key's name in the file
(``name=``), a ``check`` (called with the decoded value; returns the value to keep, possibly
normalised; raises ValueError, or :class:`Invalid` to point below the field), ``as_mapping``
(a ``tuple[tuple[str, X], ...]`` written as a mapping) and ``first`` (read before unknown keys
are refused: a schema key, so a newer file is reported as such). Checks that go across fields
run after reading, in the code that owns the document, through :meth:`Loaded.fail`.

Moving another document here (plan.json, inventory variables): declare its file shape as
dataclasses (or use the model's own when they match the file), replace the hand-written reader
by one ``Document(...)``, keep its error class, and write it with :func:`encode`. A section
whose keys are partly someone else's (Ansible's ``ansible_*`` variables beside exfix's own) is
declared ``Mapping[str, Any]`` and its own keys read afterwards with :meth:`Loaded.read`.

A document whose top level is free (an Ansible inventory: groups the user names, hosts, and
variables gathered from several groups) is read with :meth:`Document.read_yaml_tree` (plain
data, lines kept) and its parts read with :meth:`Loaded.read` and :meth:`Loaded.read_merged`.
``key(raw=True)`` hands a field's check the value as written, whatever its type: for values
another tool types loosely (Ansible takes ``"5986"`` for a port). ``Document(defer_scalars=True)``
keeps a scalar the reader refuses (``0644``, a date, NaN) as an :class:`Unread` value that is
refused only when a typed field reads it: for documents that also carry others' data, which
exfix never reads. ``Document(merge_keys=True)`` accepts YAML merge keys (``<<: *defaults``),
which Ansible inventories use.

What is refused, whatever the type: unknown and duplicate keys, keys that are not strings,
NaN and infinity, numbers of more than 40 digits, YAML tags other than the plain
string/number/boolean/null/list/mapping ones (``!!python/...``, unquoted dates, merge keys
``<<`` unless ``merge_keys``), aliases that refer to themselves, and aliases that expand a
document far beyond its written size (the "billion laughs": refused, never expanded).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import json
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, Union

import yaml

from agent.errors import InputFileError

T = TypeVar("T")
U = TypeVar("U")
N = TypeVar("N", int, float)
KeyPath = tuple[str | int, ...]

_OPTIONS = "exfix.document"
_NONE = type(None)
_INT64 = 2**63
_MAX_DIGITS = 40
_MAX_DEPTH = 64
_STD = "tag:yaml.org,2002:"


# --- declaring ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyOptions:
    """How one field is read and written (see the module docstring)."""

    name: str | None = None
    check: Callable[[Any], Any] | None = None
    ignore_case: bool = False
    as_mapping: bool = False
    first: bool = False
    raw: bool = False


def key(
    *,
    name: str | None = None,
    check: Callable[[Any], Any] | None = None,
    ignore_case: bool = False,
    as_mapping: bool = False,
    first: bool = False,
    raw: bool = False,
) -> dict[str, KeyOptions]:
    """Field metadata for ``dataclasses.field(metadata=key(...))``."""
    if raw and check is None:
        raise TypeError("key(raw=True) needs a check: it alone decides what the value becomes")
    return {_OPTIONS: KeyOptions(name, check, ignore_case, as_mapping, first, raw)}


@dataclass(frozen=True, slots=True)
class Unread:
    """A scalar the reader refuses, kept (``Document(defer_scalars=True)``) until a typed field
    reads it: then it is refused with ``problem``, at ``line``."""

    problem: str
    line: int | None


class Invalid(ValueError):
    """Raised by a check: the value is wrong. ``at`` points below the field (``(2,)``: its
    third item)."""

    def __init__(self, problem: str, *, at: KeyPath = ()) -> None:
        super().__init__(problem)
        self.problem = problem
        self.at = at


def escape(text: str) -> str:
    """``text`` on one line: every control or format character written as its escape."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def quote(value: object, limit: int = 80) -> str:
    """A value from a document, quoted and escaped for a one-line message."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def between(low: N, high: N, *, unit: str = "") -> Callable[[N], N]:
    """A check: ``low <= value <= high``."""

    def check(value: N) -> N:
        if low <= value <= high:
            return value
        if isinstance(value, int):
            raise ValueError(f"must be a whole number from {low} to {high}, not {value}")
        unit_text = f" {unit}" if unit else ""
        raise ValueError(f"must be from {low:g} to {high:g}{unit_text}, not {value:g}")

    return check


def text(
    *,
    limit: int | None = 200,
    multiline: bool = False,
    printable: bool = True,
    empty: bool = False,
    pattern: re.Pattern[str] | None = None,
    form: str = "",
) -> Callable[[str], str]:
    """A check for a string: not blank (unless ``empty``), at most ``limit`` characters, no
    control or format characters (unless not ``printable``; ``multiline`` allows newlines),
    and matching ``pattern`` (``form`` says what it should look like)."""

    def check(value: str) -> str:
        if not empty and not value.strip():
            raise ValueError("must not be empty")
        if limit is not None and len(value) > limit:
            raise ValueError(f"is longer than {limit} characters")
        if printable:
            bad = next((ch for ch in value if not ch.isprintable() and not (multiline and ch == "\n")), None)
            if bad is not None:
                raise ValueError(f"holds a control or format character ({escape(bad)})")
        if pattern is not None and not pattern.match(value):
            raise ValueError(form or f"is not of the form {pattern.pattern}")
        return value

    return check


def each(check: Callable[[Any], Any]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A check for a tuple: ``check`` on every item; an error names the item."""

    def run(values: tuple[Any, ...]) -> tuple[Any, ...]:
        out = []
        for i, value in enumerate(values):
            try:
                out.append(check(value))
            except Invalid as exc:
                raise Invalid(exc.problem, at=(i, *exc.at)) from None
            except ValueError as exc:
                raise Invalid(str(exc), at=(i,)) from None
        return tuple(out)

    return run


# --- where things are in the file ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Lines:
    """1-based lines by key path: of each value, and of each mapping key."""

    values: Mapping[KeyPath, int]
    keys: Mapping[KeyPath, int]
    # Keys written as something other than a string (``80: 8080``), kept as their text under
    # ``defer_scalars``: a reader of the tree refuses them where it needs a name.
    loose: frozenset[KeyPath] = frozenset()

    def find(self, path: KeyPath, *, at_key: bool) -> int | None:
        tables = (self.keys, self.values) if at_key else (self.values, self.keys)
        for table in tables:
            if path in table:
                return table[path]
        while path:  # something absent: the nearest enclosing key, else the document's start
            path = path[:-1]
            for table in (self.keys, self.values):
                if path in table:
                    return table[path]
        return None

    def locate(self, document: Document[Any], error: InputFileError) -> InputFileError:
        """``error`` with the line of its key (or of the nearest enclosing key written)."""
        if error.line is not None or error.key is None:
            return error
        wanted, best, line = error.key, "", None
        for table in (self.values, self.keys):  # keys last: a key's own line wins
            for path, number in table.items():
                name = document.key(path)
                enclosing = wanted.startswith(name) and wanted[len(name) : len(name) + 1] in ("", ".", "[")
                if enclosing and len(name) >= len(best):
                    best, line = name, number
        if line is None:
            return error
        return type(error)(error.path, error.problem, line=line, key=error.key, host=error.host)


_NO_LINES = _Lines({}, {})
NOT_A_NAME = "a key must be a plain string (quote it)"


@dataclass(frozen=True, slots=True)
class _Rebased:
    """The lines of values gathered from several places of one document: ``(name, *rest)`` is
    found at ``(*origins[name], *rest)``."""

    lines: _Lines
    origins: Mapping[str, KeyPath]

    def find(self, path: KeyPath, *, at_key: bool) -> int | None:
        if path and isinstance(path[0], str) and path[0] in self.origins:
            return self.lines.find((*self.origins[path[0]], *path[1:]), at_key=at_key)
        return None


def format_key(path: KeyPath, *, dotted_indexes: bool = False) -> str:
    """``('hosts', 0, 'nics')`` as ``hosts[0].nics`` (or ``hosts.0.nics``)."""
    out = ""
    for part in path:
        if isinstance(part, int) and not dotted_indexes:
            out += f"[{part}]"
        else:
            out += ("." if out else "") + escape(str(part))
    return out


# --- the document type ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Document(Generic[T]):
    """A document type: its root dataclass and how its errors are reported.

    ``what`` names the document in messages ("a playbook"); ``dotted_indexes`` writes list
    indexes as ``hosts.0`` (the lab's scenarios) rather than ``hosts[0]``; ``null_is_absent``
    treats ``key:`` with no value as an absent key (hand-written YAML, where an empty section is
    common); ``max_bytes`` bounds :meth:`read_bytes`.
    """

    root: type[T]
    error: type[InputFileError]
    what: str
    dotted_indexes: bool = False
    null_is_absent: bool = False
    max_bytes: int | None = None
    defer_scalars: bool = False
    merge_keys: bool = False
    # Local tags another tool gives scalars (Ansible's ``!vault``, ``!unsafe``): tag -> what the
    # scalar's text becomes. Any other tag stays refused.
    scalar_tags: Mapping[str, Callable[[str], Any]] = dataclasses.field(default_factory=dict)

    def read_yaml_tree(self, text: str, *, source: str) -> Loaded[Any]:
        """YAML text whose top level the root type does not describe, as plain data with its
        lines (None for an empty document), to be read in parts with :meth:`Loaded.read`."""
        data, lines = _YamlTree(self, source).load(text)
        return Loaded(data, source, self, lines, _YAML)

    def read_data_tree(self, data: object, *, source: str) -> Loaded[Any]:
        """:meth:`read_yaml_tree` for already parsed data (no lines to report)."""
        return Loaded(data, source, self, _NO_LINES, _JSON)

    def read_yaml(self, text: str, *, source: str) -> Loaded[T]:
        data, lines = _YamlTree(self, source).load(text)
        return self._decode(data, source, lines, _YAML)

    def parse_json(self, text: str, *, source: str) -> Any:
        """JSON text as plain data, refused as :meth:`read_json` refuses it (duplicate keys,
        NaN, huge numbers): for a document whose type depends on a value in it (plan.json's
        schema), read afterwards with :meth:`read_data` and :meth:`locate_in_json`."""
        return _load_json(self, text, source)

    def read_json(self, text: str, *, source: str) -> Loaded[T]:
        data = _load_json(self, text, source)
        try:
            return self._decode(data, source, _NO_LINES, _JSON)
        except InputFileError as error:
            raise self._json_lines(text, source).locate(self, error) from None

    def _json_lines(self, text: str, source: str) -> _Lines:
        """The lines of a JSON document, for an error only: Python's json module keeps no
        positions, and a JSON document exfix writes is also YAML, which does. Files larger
        than a MiB are not scanned twice: their errors carry the key alone."""
        if len(text) > 1 << 20:
            return _NO_LINES
        try:
            return _YamlTree(self, source).load(text)[1]
        except InputFileError:
            return _NO_LINES

    def locate_in_json(self, text: str, source: str, error: InputFileError) -> InputFileError:
        """``error``, raised by a check after the document was read, with the line of its key
        in the JSON ``text``."""
        return self._json_lines(text, source).locate(self, error)

    def read_data(self, data: object, *, source: str) -> Loaded[T]:
        """An already parsed JSON value (no lines to report)."""
        return self._decode(data, source, _NO_LINES, _JSON)

    def read_bytes(self, data: bytes, *, source: str, syntax: Literal["yaml", "json"]) -> Loaded[T]:
        """A file's bytes: at most ``max_bytes`` of UTF-8 text, then :meth:`read_yaml` or
        :meth:`read_json`."""
        if self.max_bytes is not None and len(data) > self.max_bytes:
            raise self.error(source, f"larger than {self.max_bytes // 1024} KiB: not {self.what}")
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.error(source, f"not UTF-8 text (byte {exc.start})") from None
        return (
            self.read_yaml(decoded, source=source)
            if syntax == "yaml"
            else self.read_json(decoded, source=source)
        )

    def _decode(self, data: object, source: str, lines: _Lines, syntax: _Syntax) -> Loaded[T]:
        if data is None and syntax is _YAML:
            raise self.error(source, f"the file is empty: not {self.what}", line=lines.find((), at_key=False))
        decoder = _Decoder(self, source, lines, syntax)
        if not isinstance(data, Mapping):
            raise decoder.fail((), f"{self.what} must be {syntax.mapping}, not {syntax.kind(data)}")
        value = decoder.record(self.root, data, ())
        return Loaded(value, source, self, lines, syntax)

    def key(self, path: KeyPath) -> str:
        return format_key(path, dotted_indexes=self.dotted_indexes)


@dataclass(frozen=True, slots=True)
class Loaded(Generic[T]):
    """A document that was read, with what is needed to report problems found later."""

    value: T
    source: str
    document: Document[T]
    lines: _Lines
    syntax: _Syntax

    def read(self, cls: type[U], data: object, path: KeyPath) -> U:
        """``data``, a part of this document at ``path`` that the root type leaves as ``Any``,
        read as the dataclass ``cls`` with this document's lines and error class: for a section
        whose type depends on other values (inventory variables, next to Ansible's own)."""
        decoded: U = _Decoder(self.document, self.source, self.lines, self.syntax).record(cls, data, path)
        return decoded

    def read_merged(self, cls: type[U], data: Mapping[str, Any], origins: Mapping[str, KeyPath]) -> U:
        """:meth:`read` for a mapping gathered from several places of this document (Ansible's
        host variables, merged from the groups the host is in): ``origins[name]`` is where the
        key ``name`` was written. Errors name the key as ``data`` has it, at that line."""
        lines = _Rebased(self.lines, origins)
        decoded: U = _Decoder(self.document, self.source, lines, self.syntax).record(cls, data, ())
        return decoded

    def loose(self, path: KeyPath) -> bool:
        """True when the key at ``path`` was written as a number or another non-string scalar
        (kept as its text under ``defer_scalars``)."""
        return path in self.lines.loose

    def line(self, path: KeyPath) -> int | None:
        """The line the key at ``path`` is written on (or the nearest enclosing key's)."""
        return self.lines.find(path, at_key=True)

    def fail(self, path: KeyPath, problem: str) -> InputFileError:
        """The document's error about the key at ``path`` (its line: where the key is written)."""
        return self.document.error(
            self.source, problem, line=self.lines.find(path, at_key=True), key=self.document.key(path) or None
        )

    def locate(self, error: InputFileError) -> InputFileError:
        """``error`` (raised by code that knows key names but not lines) with the line of its key."""
        return self.lines.locate(self.document, error)


# --- decoding -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Syntax:
    mapping: str  # what a mapping is called in this syntax

    def kind(self, value: object) -> str:
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "a boolean"
        if isinstance(value, int):
            return "a number"
        if isinstance(value, float):
            return "a fractional number"
        if isinstance(value, str):
            return "a string"
        if isinstance(value, (list, tuple)):
            return "a list"
        if isinstance(value, Mapping):
            return self.mapping
        if isinstance(value, Unread):
            return "a value that cannot be read as written"
        return type(value).__name__


_YAML = _Syntax("a mapping")
_JSON = _Syntax("a JSON object")


def kind(value: object) -> str:
    """What ``value`` (plain data from a document) is, in words: "a string", "a list", ..."""
    return _YAML.kind(value)


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    key: str
    hint: Any
    options: KeyOptions
    required: bool


_FIELDS: dict[type[Any], tuple[_Field, ...]] = {}


def _fields(cls: type[Any]) -> tuple[_Field, ...]:
    known = _FIELDS.get(cls)
    if known is not None:
        return known
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        options = f.metadata.get(_OPTIONS, KeyOptions())
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out.append(_Field(f.name, options.name or f.name, hints[f.name], options, required))
    _FIELDS[cls] = tuple(out)
    return _FIELDS[cls]


def _is_union(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    return origin is Union or origin is types.UnionType


def _is_mapping_hint(hint: Any) -> bool:
    return typing.get_origin(hint) in (dict, collections.abc.Mapping)


class _Decoder:
    def __init__(
        self, document: Document[Any], source: str, lines: _Lines | _Rebased, syntax: _Syntax
    ) -> None:
        self.document = document
        self.source = source
        self.lines = lines
        self.syntax = syntax

    def fail(
        self, path: KeyPath, problem: str, *, at_key: bool = False, line: int | None = None
    ) -> InputFileError:
        where = line if line is not None else self.lines.find(path, at_key=at_key)
        return self.document.error(self.source, problem, line=where, key=self.document.key(path) or None)

    def expected(self, hint: Any) -> str:
        if _is_union(hint):
            return " or ".join(dict.fromkeys(self.expected(h) for h in typing.get_args(hint)))
        if typing.get_origin(hint) is Literal:
            return " or ".join(repr(a) for a in typing.get_args(hint))
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return "one of: " + ", ".join(str(m.value) for m in hint)
        if (isinstance(hint, type) and dataclasses.is_dataclass(hint)) or _is_mapping_hint(hint):
            return self.syntax.mapping
        if typing.get_origin(hint) is tuple:
            return "a list"
        names = {
            str: "a string",
            int: "a whole number",
            float: "a number",
            bool: "true or false",
            _NONE: "null",
        }
        return names.get(hint, "a value")

    def fits(self, hint: Any, data: Any, pairs: bool) -> bool:
        """Whether ``data`` has the shape ``hint`` reads (to choose among a union's options)."""
        if hint is Any or hint is object:
            return True
        if _is_union(hint):
            return any(self.fits(h, data, pairs) for h in typing.get_args(hint))
        if typing.get_origin(hint) is Literal:
            return any(type(a) is type(data) for a in typing.get_args(hint))
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return any(type(m.value) is type(data) for m in hint)
        if (isinstance(hint, type) and dataclasses.is_dataclass(hint)) or _is_mapping_hint(hint):
            return isinstance(data, Mapping)
        if typing.get_origin(hint) is tuple:
            return isinstance(data, Mapping) if pairs else isinstance(data, (list, tuple))
        if hint is float:
            return isinstance(data, (int, float)) and not isinstance(data, bool)
        if hint is int:
            return isinstance(data, int) and not isinstance(data, bool)
        return isinstance(data, hint) if isinstance(hint, type) else False

    def value(self, hint: Any, data: Any, path: KeyPath, fold: bool = False, pairs: bool = False) -> Any:
        if hint is Any or hint is object:
            return data
        if isinstance(data, Unread):
            raise self.fail(path, data.problem, line=data.line)
        if _is_union(hint):
            return self.union(typing.get_args(hint), data, path, fold, pairs)
        if data is None:
            if hint is _NONE:
                return None
            raise self.fail(path, f"must be {self.expected(hint)}, not null")
        origin = typing.get_origin(hint)
        if origin is Literal:
            return self.choice(typing.get_args(hint), data, path, fold, lambda v: v)
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return self.choice(tuple(m.value for m in hint), data, path, fold, hint)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return self.record(hint, data, path)
        if origin is tuple:
            return self.sequence(typing.get_args(hint), data, path, fold, pairs)
        if _is_mapping_hint(hint):
            return self.mapping(typing.get_args(hint)[1], data, path, fold)
        if not self.fits(hint, data, pairs):
            raise self.fail(path, f"must be {self.expected(hint)}, not {self.syntax.kind(data)}")
        if hint is int and not -_INT64 <= data < _INT64:
            raise self.fail(path, "is out of range (a whole number here has at most 64 bits)")
        if hint is float:
            if not math.isfinite(data):
                raise self.fail(path, "must be a finite number")
            return float(data)
        if hint in (str, int, bool, _NONE):
            return data
        raise TypeError(f"{hint!r} is not a type a document can hold")  # a bug in a declaration

    def union(self, options: tuple[Any, ...], data: Any, path: KeyPath, fold: bool, pairs: bool) -> Any:
        if data is None and _NONE in options:
            return None
        concrete = [o for o in options if o is not _NONE]
        expected = " or ".join(dict.fromkeys(self.expected(o) for o in concrete))
        fitting = [o for o in concrete if self.fits(o, data, pairs)]
        if not fitting:
            raise self.fail(path, f"must be {expected}, not {self.syntax.kind(data)}")
        first: InputFileError | None = None
        for option in fitting:
            try:
                return self.value(option, data, path, fold, pairs)
            except InputFileError as exc:
                first = first or exc
        assert first is not None
        chosen = fitting[0]
        if len(concrete) > 1 and (typing.get_origin(chosen) is Literal or isinstance(chosen, enum.EnumMeta)):
            raise self.fail(path, f"must be {expected}, not {quote(data)}")  # 'all' or a list, not 'al'
        raise first

    def choice(
        self, allowed: tuple[Any, ...], data: Any, path: KeyPath, fold: bool, make: Callable[[Any], Any]
    ) -> Any:
        for option in allowed:
            if type(option) is type(data) and (
                option == data or (fold and isinstance(data, str) and option.lower() == data.lower())
            ):
                return make(option)
        if len(allowed) == 1:
            raise self.fail(path, f"expected {allowed[0]!r}, found {quote(data)}")
        raise self.fail(path, f"{quote(data)} is not one of: {', '.join(str(a) for a in allowed)}")

    def sequence(self, args: tuple[Any, ...], data: Any, path: KeyPath, fold: bool, pairs: bool) -> Any:
        if pairs:  # tuple[tuple[str, X], ...] written as a mapping
            item_hint = typing.get_args(args[0])[1]
            return tuple(self.mapping(item_hint, data, path, fold).items())
        if not isinstance(data, (list, tuple)):
            raise self.fail(path, f"must be a list, not {self.syntax.kind(data)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(self.value(args[0], item, (*path, i), fold) for i, item in enumerate(data))
        if len(data) != len(args):
            raise self.fail(path, f"must be a list of {len(args)} items, not {len(data)}")
        return tuple(
            self.value(h, item, (*path, i), fold) for i, (h, item) in enumerate(zip(args, data, strict=True))
        )

    def mapping(self, item_hint: Any, data: Any, path: KeyPath, fold: bool) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise self.fail(path, f"must be {self.syntax.mapping}, not {self.syntax.kind(data)}")
        out = {}
        for name, item in data.items():
            if not isinstance(name, str):
                raise self.fail(path, f"a key must be a string, not {self.syntax.kind(name)}")
            out[name] = self.value(item_hint, item, (*path, name), fold)
        return out

    def record(self, cls: type[Any], data: Any, path: KeyPath) -> Any:
        if not isinstance(data, Mapping):
            raise self.fail(path, f"must be {self.syntax.mapping}, not {self.syntax.kind(data)}")
        fields = _fields(cls)
        values: dict[str, Any] = {}
        for f in fields:
            if f.options.first:
                self.field(f, data, path, values)
        keys = {f.key for f in fields}
        for name in data:
            if not isinstance(name, str):
                raise self.fail(path, f"a key must be a string, not {self.syntax.kind(name)}")
            if name not in keys:
                expected = ", ".join(f.key for f in fields)
                raise self.fail((*path, name), f"unknown key (expected one of: {expected})", at_key=True)
        for f in fields:
            if not f.options.first:
                self.field(f, data, path, values)
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise self.fail(path, f"invalid value: {exc}") from None

    def field(self, f: _Field, data: Mapping[str, Any], path: KeyPath, values: dict[str, Any]) -> None:
        where = (*path, f.key)
        if f.key not in data or (self.document.null_is_absent and data[f.key] is None):
            if f.required:
                raise self.fail(where, "missing", line=self.lines.find(path, at_key=False))
            return
        if f.options.raw:  # the check alone reads it
            value = data[f.key]
            if isinstance(value, Unread):
                raise self.fail(where, value.problem, line=value.line)
        else:
            value = self.value(f.hint, data[f.key], where, f.options.ignore_case, f.options.as_mapping)
        if f.options.check is not None and value is not None:  # null is checked by its type alone
            try:
                value = f.options.check(value)
            except Invalid as exc:
                raise self.fail((*where, *exc.at), exc.problem) from None
            except ValueError as exc:
                raise self.fail(where, str(exc)) from None
        values[f.name] = value


# --- YAML: a node tree with lines, turned into plain data ----------------------------------


_YAML_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")


# libyaml's parser where PyYAML was built with it (the wheels are): the same node tree, marks
# and exceptions as the pure-Python one, about ten times faster, which a 10,000-host inventory
# feels (11 s of CPU for its YAML alone). The pure-Python composer is the fallback.
_COMPOSER: type[yaml.SafeLoader | yaml.CSafeLoader] = (
    yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
)


def _is_merge_key(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _STD + "merge"


class _YamlTree:
    """Composes the YAML node tree (PyYAML constructs nothing from it) and builds plain data
    from it, recording the line of every value and key. Aliases are expanded here, under a
    budget, so a document that references itself or multiplies (the "billion laughs") is
    refused rather than built."""

    def __init__(self, document: Document[Any], source: str) -> None:
        self.document = document
        self.source = source
        self.values: dict[KeyPath, int] = {}
        self.keys: dict[KeyPath, int] = {}
        self.seen: set[int] = set()
        self.built = 0
        self.open: set[int] = set()
        self.loose: set[KeyPath] = set()

    def fail(self, node: yaml.Node, problem: str, path: KeyPath | None = None) -> InputFileError:
        key = None if not path else self.document.key(path)
        return self.document.error(self.source, problem, line=node.start_mark.line + 1, key=key)

    def load(self, text: str) -> tuple[Any, _Lines]:
        source, error = self.source, self.document.error
        try:
            root = yaml.compose(text, Loader=_COMPOSER)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = None if mark is None else mark.line + 1
            problem = exc.problem or exc.context
            if problem == "exceeded maximum nesting depth":  # libyaml's limit (1000 levels)
                problem = "nested too deeply"
            raise error(source, f"not valid YAML: {problem}", line=line) from None
        except yaml.reader.ReaderError as exc:  # a character YAML does not allow (a raw escape, NUL)
            line = text.count("\n", 0, max(0, exc.position)) + 1
            raise error(
                source, f"not valid YAML: character {exc.character!r} is not allowed", line=line
            ) from None
        except yaml.YAMLError as exc:
            raise error(source, f"not valid YAML: {exc}") from None
        except RecursionError:
            raise error(source, "not valid YAML: nested too deeply") from None
        if root is None:
            return None, _NO_LINES
        data = self.node(root, ())
        return data, _Lines(self.values, self.keys, frozenset(self.loose))

    def node(self, node: yaml.Node, path: KeyPath) -> Any:
        ident = id(node)
        if ident in self.open:
            raise self.fail(node, "an alias refers to a value that contains it", path)
        self.seen.add(ident)
        self.built += 1
        # An alias is allowed to repeat what was written, not to multiply it.
        if self.built > 10 * len(self.seen) + 10_000:
            raise self.fail(node, "aliases expand this document far beyond its size (an alias bomb?)", path)
        if len(path) > _MAX_DEPTH:
            raise self.fail(node, f"nested more than {_MAX_DEPTH} levels deep", path)
        self.values[path] = node.start_mark.line + 1
        self.open.add(ident)
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _STD + "seq":
                    raise self.fail(node, f"the YAML tag {escape(node.tag)} is not allowed", path)
                return [self.node(item, (*path, i)) for i, item in enumerate(node.value)]
            return self.scalar(node, path)
        finally:
            self.open.discard(ident)

    def mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        if node.tag != _STD + "map":
            raise self.fail(node, f"the YAML tag {escape(node.tag)} is not allowed", path)
        out = self.merged(node, path)
        pairs = [(k, v) for k, v in node.value if not _is_merge_key(k)]
        written: set[str] = set()
        for key_node, value_node in pairs:
            plain = isinstance(key_node, yaml.ScalarNode) and key_node.tag == _STD + "str"
            # With defer_scalars a document mixes in other tools' values (Ansible inventory
            # variables), where a number as a key is ordinary YAML ({80: 8080}): such a key is
            # kept as written; only what exfix itself reads is typed.
            deferred = self.document.defer_scalars and isinstance(key_node, yaml.ScalarNode)
            if not (plain or deferred):
                raise self.fail(key_node, NOT_A_NAME, path)
            name = str(key_node.value)
            where = (*path, name)
            if not plain:
                self.loose.add(where)
            if name in written:
                raise self.fail(key_node, "duplicate key", where)
            written.add(name)
            self.keys[where] = key_node.start_mark.line + 1
            out[name] = self.node(value_node, where)  # over a merged value, in its place (as PyYAML)
        return out

    def merged(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        """What a mapping's merge key (``<<: *defaults``) brings in, where ``merge_keys`` allows
        one: the mappings it names, an earlier one overriding a later one (YAML's merge key
        type); the mapping's own keys then override them."""
        merges = [(k, v) for k, v in node.value if _is_merge_key(k)]
        if not merges:
            return {}
        key_node, value_node = merges[0]
        if not self.document.merge_keys:
            raise self.fail(key_node, "merge keys (<<) are not supported: write the keys out", path)
        if len(merges) > 1:
            raise self.fail(merges[1][0], "duplicate key", (*path, "<<"))
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        own_line = self.values[path]
        out: dict[str, Any] = {}
        for source in reversed(sources):
            if not isinstance(source, yaml.MappingNode):
                raise self.fail(source, "a merge key (<<) takes a mapping or a list of mappings", path)
            out.update(self.node(source, path))  # its keys' lines: where the merged mapping has them
        self.values[path] = own_line
        return out

    def unread(self, node: yaml.Node, problem: str, path: KeyPath) -> Unread:
        """A scalar's refusal: raised now, or kept until it is read (``defer_scalars``)."""
        if not self.document.defer_scalars:
            raise self.fail(node, problem, path)
        return Unread(problem, node.start_mark.line + 1)

    def scalar(self, node: yaml.Node, path: KeyPath) -> Any:
        tag, value = node.tag, str(node.value)
        if tag == _STD + "str":
            return value
        if tag in self.document.scalar_tags and isinstance(node, yaml.ScalarNode):
            return self.document.scalar_tags[tag](value)
        if tag == _STD + "null":
            return None
        if tag == _STD + "bool":
            return value.lower() in ("true", "yes", "on")
        if tag == _STD + "int":
            # YAML 1.1 also reads 0x1F, 0o17, 017 (octal), 1_000 and 1:30 (base 60) as integers:
            # a document exfix reads has decimal numbers only, so none of those surprises apply.
            if not _YAML_INT.fullmatch(value):
                return self.unread(
                    node, f"write whole numbers in decimal, or quote {quote(value)} as a string", path
                )
            if len(value.lstrip("+-")) > _MAX_DIGITS:
                return self.unread(node, f"a number of more than {_MAX_DIGITS} digits", path)
            return int(value)
        if tag == _STD + "float":
            plain = value.replace("_", "").lower()
            if plain.lstrip("+-") in (".nan", ".inf"):
                return self.unread(node, "NaN and infinity are not allowed", path)
            try:
                number: float | None = float(plain)
            except ValueError:
                number = None  # refused below, outside the handler: no chained exception
            if number is None:
                return self.unread(
                    node, f"{quote(value)} is not a number (quote it to make it a string)", path
                )
            if len(plain) > 2 * _MAX_DIGITS or not math.isfinite(number):
                return self.unread(node, f"{quote(value)} is too large a number", path)
            return number
        if tag == _STD + "timestamp":
            return self.unread(node, f"{quote(value)} reads as a date; quote it to make it a string", path)
        raise self.fail(node, f"the YAML tag {escape(tag)} is not allowed", path)


# --- JSON -----------------------------------------------------------------------------------


class _Refused(ValueError):
    pass


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise _Refused(f"duplicate key {quote(name)}")
        out[name] = value
    return out


def _json_constant(name: str) -> Any:
    raise _Refused(f"{name} is not allowed")


def _json_int(digits: str) -> int:
    if len(digits.lstrip("-")) > _MAX_DIGITS:
        raise _Refused(f"a number of more than {_MAX_DIGITS} digits")
    return int(digits)


def _json_float(digits: str) -> float:
    number = float(digits)
    if not math.isfinite(number):
        raise _Refused(f"{quote(digits)} is too large a number")
    return number


def _load_json(document: Document[Any], text: str, source: str) -> Any:
    try:
        return json.loads(
            text,
            object_pairs_hook=_json_object,
            parse_constant=_json_constant,
            parse_int=_json_int,
            parse_float=_json_float,
        )
    except json.JSONDecodeError as exc:
        raise document.error(source, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    except _Refused as exc:
        raise document.error(source, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise document.error(source, "not valid JSON: nested too deeply") from None


# --- encoding -------------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """A dataclass tree as JSON-friendly data (the inverse of reading): mappings by file key,
    enums by value, tuples as lists (or mappings, for ``as_mapping`` fields)."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in _fields(type(value)):
            item = getattr(value, f.name)
            out[f.key] = {str(k): encode(v) for k, v in item} if f.options.as_mapping else encode(item)
        return out
    if isinstance(value, (tuple, list)):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    return value


def encode_object(value: Any) -> dict[str, Any]:
    """``encode`` of one dataclass instance: its JSON object (what a ``to_dict`` returns)."""
    out = encode(value)
    if not isinstance(out, dict):
        raise TypeError(f"{type(value).__name__} is not a dataclass instance")
    return out
