"""The strict document reader (agent/model/document.py): reading inverts encoding, and hostile
documents are refused with the file, the line and the key, never with a traceback."""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import InputFileError, ScenarioError
from agent.model.document import (
    Document,
    Invalid,
    KeyPath,
    between,
    each,
    encode,
    format_key,
    key,
    text,
)


class DocError(InputFileError):
    """The error class of the test documents."""


class Color(str, enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass(frozen=True, slots=True)
class Leaf:
    name: str
    count: int
    ratio: float
    flag: bool
    color: Color
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Tree:
    title: str = field(metadata=key(name="display-title"))
    leaves: tuple[Leaf, ...]
    tags: tuple[str, ...]
    choice: Literal["all", "some"] | tuple[int, ...]
    pair: tuple[str, int]
    counts: Mapping[str, int]
    labels: tuple[tuple[str, str], ...] = field(default=(), metadata=key(as_mapping=True))
    child: Leaf | None = None
    either: str | int = 0


TREE = Document(Tree, DocError, what="a tree")

# PyYAML cannot write lone surrogates; everything else, controls included, must survive. (Its
# emitter writes U+0085 raw with allow_unicode=True, where it reads back as a line break: the
# YAML round trip below lets PyYAML escape everything that is not ASCII.)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
INT64 = st.integers(-(2**63), 2**63 - 1)
FLOAT = st.floats(allow_nan=False, allow_infinity=False)
LEAF = st.builds(
    Leaf, name=TEXT, count=INT64, ratio=FLOAT, flag=st.booleans(), color=st.sampled_from(Color),
    note=st.none() | TEXT,
)  # fmt: skip
TREES = st.builds(
    Tree,
    title=TEXT,
    leaves=st.lists(LEAF, max_size=3).map(tuple),
    tags=st.lists(TEXT, max_size=3).map(tuple),
    choice=st.sampled_from(["all", "some"]) | st.lists(INT64, max_size=3).map(tuple),
    pair=st.tuples(TEXT, INT64),
    counts=st.dictionaries(TEXT, INT64, max_size=3),
    labels=st.dictionaries(TEXT, TEXT, max_size=3).map(lambda d: tuple(d.items())),
    child=st.none() | LEAF,
    either=TEXT | INT64,
)


@settings(max_examples=100, deadline=None)
@given(TREES)
def test_reading_inverts_encoding_through_json_yaml_and_data(tree: Tree) -> None:
    data = encode(tree)
    assert TREE.read_data(data, source="t").value == tree
    assert TREE.read_json(json.dumps(data), source="t.json").value == tree
    assert TREE.read_yaml(yaml.safe_dump(data, sort_keys=False), source="t.yaml").value == tree
    assert "display-title" in data and "title" not in data
    assert isinstance(data["labels"], dict)


def _walk(value: Any, data: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, bool]]:
    """Every path of an encoded value, and whether a dataclass (a closed set of keys) is there."""
    yield path, is_dataclass(value)
    if is_dataclass(value):
        for f in fields(value):
            name = f.metadata.get("exfix.document", None)
            file_key = name.name if name is not None and name.name else f.name
            item = getattr(value, f.name)
            if name is not None and name.as_mapping:
                for k, v in item:
                    yield (*path, file_key, k), False
                    del v
            else:
                yield from _walk(item, data[file_key], (*path, file_key))
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            yield from _walk(item, data[i], (*path, i))
    elif isinstance(value, Mapping):
        for k, item in value.items():
            yield from _walk(item, data[k], (*path, k))


def _set(data: Any, path: KeyPath, new: Any) -> Any:
    copy = json.loads(json.dumps(data))
    if not path:
        return new
    target = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = new
    return copy


@settings(max_examples=40, deadline=None)
@given(TREES)
def test_a_wrong_type_or_an_unknown_key_at_any_depth_names_that_key(tree: Tree) -> None:
    data = encode(tree)
    for path, closed in _walk(tree, data):
        if not path:
            continue
        current = _set(data, (), data)
        for part in path:
            current = current[part]
        # No field of these shapes takes both a mapping and a list, or both a list and a
        # string that is not one of its Literal values.
        wrong: Any = "not a list" if isinstance(current, list) else [["not", current]]
        with pytest.raises(DocError) as caught:
            TREE.read_data(_set(data, path, wrong), source="t")
        want = format_key(path)  # the key, or a key inside the wrong value (a list for a list)
        assert caught.value.key is not None and caught.value.key.startswith(want), str(caught.value)
        assert caught.value.key[len(want) :][:1] in ("", "[", "."), str(caught.value)
        if closed:
            with pytest.raises(DocError, match="unknown key") as caught:
                TREE.read_data(_set(data, (*path, "surprise"), 1), source="t")
            assert caught.value.key == format_key((*path, "surprise"))


def _valid() -> dict[str, Any]:
    return encode(
        Tree("t", (Leaf("n", 1, 0.5, True, Color.RED),), ("a",), "all", ("p", 2), {"c": 3}, (("k", "v"),))
    )


def _yaml_error(text_: str) -> DocError:
    with pytest.raises(DocError) as caught:
        TREE.read_yaml(text_, source="t.yaml")
    return caught.value


def test_errors_name_file_line_and_key_in_yaml() -> None:
    document = yaml.safe_dump(_valid(), sort_keys=False).replace("count: 1", "count: one")
    error = _yaml_error(document)
    line = document.splitlines().index("  count: one") + 1
    assert (error.path, error.line, error.key) == ("t.yaml", line, "leaves[0].count")
    assert str(error) == f"t.yaml:{line}: key 'leaves[0].count': must be a whole number, not a string"
    error = _yaml_error(yaml.safe_dump(_valid(), sort_keys=False) + "extra: 1\n")
    assert error.key == "extra" and error.line == len(yaml.safe_dump(_valid()).splitlines()) + 1
    assert "unknown key (expected one of: display-title, leaves" in error.problem
    del_child = yaml.safe_dump({k: v for k, v in _valid().items() if k != "pair"}, sort_keys=False)
    error = _yaml_error(del_child)
    assert (error.key, error.problem, error.line) == ("pair", "missing", 1)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("a: 1\na: 2\n", "duplicate key"),
        ("1: x\n", "a key must be a plain string"),
        ("? [a]\n: b\n", "a key must be a plain string"),
        ("~: x\n", "a key must be a plain string"),
        ("yes: x\n", "a key must be a plain string"),
        ("<<: {a: 1}\n", "merge keys"),
        ("a: !!python/object/apply:os.system [ls]\n", "python/object/apply:os.system is not allowed"),
        ("a: !!binary aGVsbG8=\n", "binary is not allowed"),
        ("a: !!set {x, y}\n", "set is not allowed"),
        ("a: 2024-01-01\n", "reads as a date"),
        ("a: .nan\n", "NaN and infinity"),
        ("a: -.inf\n", "NaN and infinity"),
        ("a: 0x1F\n", "in decimal"),
        ("a: 017\n", "in decimal"),
        ("a: 1:30\n", "in decimal"),
        ("a: " + "9" * 41 + "\n", "more than 40 digits"),
        ("a: &x [1, *x]\n", "refers to a value that contains it"),
        ("a: [" + "[" * 100 + "]" * 100 + "]\n", "nested more than 64 levels deep"),
        ("a: [" + "[" * 5000 + "]" * 5000 + "]\n", "nested too deeply"),  # libyaml's limit
        ("a: [1\n", "not valid YAML"),
        ("a: b\n---\nc: d\n", "not valid YAML"),
        ("a: \x1b[31m\n", "is not allowed"),
    ],
)
def test_hostile_yaml_is_refused_at_load(document: str, problem: str) -> None:
    error = _yaml_error(document)
    assert problem in error.problem, str(error)
    assert error.line is not None or problem == "nested too deeply"
    assert "\n" not in str(error) and "\x1b" not in str(error)


def test_billion_laughs_is_refused_not_expanded() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    started = time.monotonic()
    error = _yaml_error("\n".join(lines) + "\n")
    assert "alias bomb" in error.problem
    assert time.monotonic() - started < 2


def test_aliases_that_only_repeat_are_read() -> None:
    @dataclass(frozen=True, slots=True)
    class Shared:
        first: Mapping[str, int]
        second: Mapping[str, int]

    shared = Document(Shared, DocError, what="a test")
    loaded = shared.read_yaml("first: &v {a: 1, b: 2}\nsecond: *v\n", source="s.yaml")
    assert loaded.value == Shared({"a": 1, "b": 2}, {"a": 1, "b": 2})


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ('{"a": NaN}', "NaN is not allowed"),
        ('{"a": -Infinity}', "-Infinity is not allowed"),
        ('{"a": 1e400}', "too large"),
        ('{"a": ' + "1" * 5000 + "}", "more than 40 digits"),
        ("[" * 100000 + "]" * 100000, "nested too deeply"),
        ('{"a": 1,\n "b": }', "not valid JSON"),
    ],
)
def test_hostile_json_is_refused_at_load(document: str, problem: str) -> None:
    with pytest.raises(DocError) as caught:
        TREE.read_json(document, source="t.json")
    assert problem in caught.value.problem


def test_json_syntax_errors_have_their_line_and_values_are_range_checked() -> None:
    with pytest.raises(DocError) as caught:
        TREE.read_json('{\n"a": 1,\n}', source="t.json")
    assert caught.value.line == 3
    for bad, problem in ((2**63, "64 bits"), (float("nan"), "finite"), (True, "not a boolean")):
        data = _valid()
        data["leaves"][0]["count" if not isinstance(bad, float) else "ratio"] = bad
        with pytest.raises(DocError, match=problem):
            TREE.read_data(data, source="t")
    with pytest.raises(DocError, match="a key must be a string"):
        TREE.read_data({**_valid(), 1: 2}, source="t")
    with pytest.raises(DocError, match="a tree must be a JSON object, not a list"):
        TREE.read_json("[]", source="t.json")


def test_bytes_are_bounded_and_utf8() -> None:
    small = Document(Tree, DocError, what="a tree", max_bytes=1024)
    with pytest.raises(DocError, match="larger than 1 KiB: not a tree"):
        small.read_bytes(b"#" * 2048, source="t.yaml", syntax="yaml")
    with pytest.raises(DocError, match="not UTF-8"):
        small.read_bytes(b"a: \xff", source="t.yaml", syntax="yaml")
    with pytest.raises(DocError, match="empty"):
        small.read_bytes(b"# nothing\n", source="t.yaml", syntax="yaml")


class Mode(str, enum.Enum):
    FAST = "Fast"
    SLOW = "Slow"


def _positive(value: tuple[int, ...]) -> tuple[int, ...]:
    if not value:
        raise ValueError("must not be empty")
    return value


@dataclass(frozen=True, slots=True)
class Options:
    schema: Literal["v1"] = field(metadata=key(first=True))
    mode: Mode = field(default=Mode.FAST, metadata=key(ignore_case=True))
    word: Literal["Any", "None"] = field(default="Any", metadata=key(ignore_case=True))
    port: int = field(default=25, metadata=key(check=between(1, 65535)))
    label: str = field(default="x", metadata=key(check=text(limit=5)))
    items: tuple[int, ...] = field(default=(1,), metadata=key(check=each(between(0, 9))))
    nonempty: tuple[int, ...] = field(default=(1,), metadata=key(check=_positive))


OPTIONS = Document(Options, DocError, what="options", dotted_indexes=True, null_is_absent=True)


def test_hooks_checks_case_and_schema_first() -> None:
    loaded = OPTIONS.read_yaml("schema: v1\nmode: slow\nword: none\nport:\n", source="o.yaml")
    assert loaded.value == Options("v1", Mode.SLOW, "None")
    cases = {
        "schema: v2\nfuture: 1\n": ("schema", "expected 'v1', found 'v2'"),
        "schema: v1\nport: 0\n": ("port", "must be a whole number from 1 to 65535, not 0"),
        "schema: v1\nlabel: toolong\n": ("label", "is longer than 5 characters"),
        'schema: v1\nlabel: "a\\tb"\n': ("label", "holds a control or format character (\\t)"),
        "schema: v1\nitems: [1, 10]\n": ("items.1", "must be a whole number from 0 to 9, not 10"),
        "schema: v1\nnonempty: []\n": ("nonempty", "must not be empty"),
        "schema: v1\nmode: medium\n": ("mode", "'medium' is not one of: Fast, Slow"),
    }
    for document, (where, problem) in cases.items():
        with pytest.raises(DocError) as caught:
            OPTIONS.read_yaml(document, source="o.yaml")
        assert (caught.value.key, caught.value.problem) == (where, problem)
        assert caught.value.line == (1 if where == "schema" else 2)


def test_later_errors_get_the_line_of_their_key() -> None:
    loaded = OPTIONS.read_yaml("schema: v1\n\nitems:\n  - 1\n  - 2\n", source="o.yaml")
    assert loaded.fail(("items", 1), "no").line == 5
    assert loaded.fail(("items",), "no").line == 3
    assert loaded.fail(("absent", "deeper"), "no").line == 1
    error = loaded.locate(ScenarioError("o.yaml", "bad", key="items.0"))
    assert isinstance(error, ScenarioError) and error.line == 4 and error.key == "items.0"
    assert str(error) == "o.yaml:4: key 'items.0': bad"


def test_checks_can_point_below_their_field() -> None:
    def second(value: tuple[int, ...]) -> tuple[int, ...]:
        raise Invalid("wrong here", at=(1,))

    @dataclass(frozen=True, slots=True)
    class Pointed:
        values: tuple[int, ...] = field(metadata=key(check=second))

    with pytest.raises(DocError) as caught:
        Document(Pointed, DocError, what="x").read_yaml("values:\n- 1\n- 2\n", source="p.yaml")
    assert (caught.value.key, caught.value.line) == ("values[1]", 3)


@dataclass(frozen=True, slots=True)
class ExfixVars:
    exfix_port: int = field(default=5985, metadata=key(check=between(1, 65535)))


@dataclass(frozen=True, slots=True)
class Inventory:
    vars: Mapping[str, Any]


def test_a_section_shared_with_other_tools_is_read_in_parts() -> None:
    document = Document(Inventory, DocError, what="an inventory")
    loaded = document.read_yaml("vars:\n  ansible_user: x\n  exfix_port: 0\n", source="i.yaml")
    own = {k: v for k, v in loaded.value.vars.items() if k.startswith("exfix_")}
    with pytest.raises(DocError) as caught:
        loaded.read(ExfixVars, own, ("vars",))
    assert (caught.value.key, caught.value.line) == ("vars.exfix_port", 3)
    assert loaded.read(ExfixVars, {}, ("vars",)) == ExfixVars()
