"""A second reader of the PowerShell exfix writes, which nobody here wrote: the
``tree-sitter-powershell`` grammar (PyPI), through the ``tree-sitter`` bindings.

tests/support/pwsh_oracle.py was written beside agent/pwsh.py and could share its
assumptions (which characters quote, what ends a statement). This reader takes the grammar's
syntax tree as it is and only maps the nodes of the PowerShell exfix renders back to values:

- a command is a ``command`` node: its ``command_name`` and its ``command_elements``, each
  ``command_parameter`` followed by an argument or not (a switch), ``-Name:value`` when the
  separator between them is ``:``;
- an argument is one of: a ``string_literal`` (verbatim), a decimal ``integer_literal``, the
  variables ``$true`` ``$false`` ``$null``, ``@(...)`` of arguments, and ``( ... + ... )`` of
  strings and ``[char]0xNNNN`` casts. Any other node where a value should be refuses the
  script (:class:`TreeError`): a value that became code fails here;
- the script's own scaffolding is allowed where the templates put it and nowhere else: the
  ``[CmdletBinding(...)] param()`` block, ``$ErrorActionPreference = 'Stop'``, line comments
  that start a line, and ``function`` definitions whose whole text the caller allows.

Where the grammar and PowerShell differ: the grammar ends a verbatim string only at the ASCII
``'``, while PowerShell also ends it at U+2018, U+2019, U+201A and U+201B (see
:func:`verbatim_text`). A string's text is therefore read twice: as the grammar reads it, and
as PowerShell does (the Windows PowerShell Language Specification 3.0, section 2.3.5.2,
``single-quote-character``); the tests compare both.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import tree_sitter
import tree_sitter_powershell

# The Windows PowerShell Language Specification 3.0, 2.3.5.2 String literals:
# single-quote-character is ' (U+0027), U+2018, U+2019, U+201A or U+201B.
SPEC_QUOTES = "'\u2018\u2019\u201a\u201b"
SWITCH = object()

_PREAMBLE = "[CmdletBinding(SupportsShouldProcess = $true)]\nparam()"
_LITERAL_VARIABLES = {"$true": True, "$false": False, "$null": None}
# Nodes that only wrap one expression on the way down to a value.
_WRAPPERS = frozenset({
    "pipeline", "pipeline_chain", "logical_expression", "bitwise_expression", "comparison_expression",
    "multiplicative_expression", "format_expression", "range_expression", "unary_expression",
    "statement_list",
})  # fmt: skip
# What a value must never become, anywhere outside the allowed function definitions.
CODE_NODES = frozenset({
    "sub_expression", "script_block", "expandable_string_literal", "expandable_here_string_literal",
    "verbatim_here_string_literal", "redirection", "invokation_expression", "member_access",
    "element_access", "hash_literal_expression", "command_invokation_operator", "function_statement",
    "pipeline_chain_tail", "flow_control_statement", "if_statement", "foreach_statement",
    "generic_token", "command_name_expr", "script_block_expression", "hash_literal_body",
})  # fmt: skip


class TreeError(ValueError):
    pass


@functools.lru_cache(maxsize=1)
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def parse_tree(text: str) -> tree_sitter.Tree:
    return _parser().parse(text.encode("utf-8"))


def _text(node: tree_sitter.Node) -> str:
    assert node.text is not None
    return node.text.decode("utf-8")


def _fail(node: tree_sitter.Node, what: str) -> TreeError:
    row, column = node.start_point
    return TreeError(f"line {row + 1} column {column + 1}: {what}: {node.type} {_text(node)[:40]!r}")


@dataclass(frozen=True)
class Verbatim:
    """A verbatim string as the grammar delimits it: its text between the outer quotes, read
    by the grammar (only ``''`` is one quote) and by the specification (any two
    single-quote-characters are one)."""

    raw: str

    @property
    def grammar(self) -> str:
        return self.raw.replace("''", "'")

    @property
    def spec(self) -> str:
        out: list[str] = []
        i = 0
        while i < len(self.raw):
            ch = self.raw[i]
            if ch in SPEC_QUOTES:
                # Inside the string a quote character is always one of a pair: alone it would
                # have ended the string (specification 2.3.5.2).
                if i + 1 >= len(self.raw) or self.raw[i + 1] not in SPEC_QUOTES:
                    raise ValueError(f"a lone quote character at {i} would end the string for PowerShell")
                out.append(ch)
                i += 2
                continue
            out.append(ch)
            i += 1
        return "".join(out)


def verbatim_text(node: tree_sitter.Node) -> Verbatim:
    text = _text(node)
    if len(text) < 2 or text[0] != "'" or text[-1] != "'":
        raise _fail(node, "not a verbatim string")
    return Verbatim(text[1:-1])


@dataclass(frozen=True)
class Command:
    name: str
    parameters: tuple[tuple[str, Any], ...]
    colon: frozenset[str]
    strings: tuple[Verbatim, ...]  # every verbatim string of its arguments, in order


@dataclass(frozen=True)
class TreeScript:
    should_process: bool
    assignments: tuple[tuple[str, Any], ...]
    commands: tuple[Command, ...]
    functions: tuple[str, ...]
    comments: tuple[tree_sitter.Node, ...]


class _Reader:
    def __init__(self, spec: bool) -> None:
        self.spec = spec
        self.strings: list[Verbatim] = []

    def value(self, node: tree_sitter.Node) -> Any:
        kind = node.type
        children = node.children
        if kind in _WRAPPERS or (
            kind in ("array_literal_expression", "additive_expression") and len(children) == 1
        ):
            if len(children) != 1:
                raise _fail(node, "more than one expression where a value should be")
            return self.value(children[0])
        if kind == "string_literal":
            (inner,) = children
            if inner.type != "verbatim_string_characters":
                raise _fail(node, "a string that is not verbatim")
            string = verbatim_text(inner)
            self.strings.append(string)
            return string.spec if self.spec else string.grammar
        if kind == "integer_literal":
            (inner,) = children
            if inner.type != "decimal_integer_literal":
                raise _fail(node, "an integer that is not decimal")
            return int(_text(inner))
        if kind == "variable":
            name = _text(node).lower()
            if name not in _LITERAL_VARIABLES:
                raise _fail(node, "a variable where a value should be")
            return _LITERAL_VARIABLES[name]
        if kind == "parenthesized_expression":
            if [c.type for c in children] != ["(", "pipeline", ")"]:
                raise _fail(node, "a parenthesized expression of another shape")
            joined = self.concatenation(children[1])
            return joined.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
        if kind == "array_expression":
            if [c.type for c in children] == ["@(", ")"]:
                return ()
            if [c.type for c in children] != ["@(", "statement_list", ")"]:
                raise _fail(node, "an array expression of another shape")
            return tuple(self.value(item) for item in self.items(children[1]))
        raise _fail(node, "a node that is not a value")

    def items(self, node: tree_sitter.Node) -> list[tree_sitter.Node]:
        """The comma-separated items of ``@( a, b, ... )``."""
        while node.type in _WRAPPERS or (node.type == "additive_expression" and len(node.children) == 1):
            if len(node.children) != 1:
                raise _fail(node, "more than one expression inside @()")
            node = node.children[0]
        if node.type != "array_literal_expression":
            return [node]
        items = [c for c in node.children if c.type != ","]
        if len(node.children) != 2 * len(items) - 1:
            raise _fail(node, "a list that is not comma-separated")
        return items

    def concatenation(self, node: tree_sitter.Node) -> str:
        """``'text' + [char]0xNNNN + ...``: each term a verbatim string or a [char] cast."""
        while node.type in _WRAPPERS:
            if len(node.children) != 1:
                raise _fail(node, "more than one expression in a concatenation")
            node = node.children[0]
        if node.type == "additive_expression" and len(node.children) == 3:
            left, op, right = node.children
            if op.type != "+":
                raise _fail(op, "an operator other than +")
            return self.concatenation(left) + self.term(right)
        if node.type == "additive_expression" and len(node.children) == 1:
            return self.term(node.children[0])
        return self.term(node)

    def term(self, node: tree_sitter.Node) -> str:
        while (
            node.type in _WRAPPERS or (node.type in ("array_literal_expression",) and len(node.children) == 1)
        ):
            node = node.children[0]
        if node.type == "string_literal":
            value = self.value(node)
            assert isinstance(value, str)
            return value
        if node.type == "expression_with_unary_operator":
            (cast,) = node.children
            if cast.type != "cast_expression":
                raise _fail(node, "a unary operator other than a cast")
            kind, operand = cast.children
            if _text(kind) != "[char]":
                raise _fail(kind, "a cast other than [char]")
            while operand.type == "unary_expression" and len(operand.children) == 1:
                operand = operand.children[0]
            digits = operand.children[0] if operand.type == "integer_literal" else operand
            if digits.type != "hexadecimal_integer_literal":
                raise _fail(operand, "a [char] of something other than a hex number")
            return chr(int(_text(digits), 16))
        raise _fail(node, "a term that is neither a string nor a [char]")


def _command(node: tree_sitter.Node, spec: bool) -> Command:
    reader = _Reader(spec)
    children = node.children
    if not children or children[0].type != "command_name":
        raise _fail(node, "a command without a plain name")
    name = _text(children[0])
    elements = children[1].children if len(children) > 1 else []
    if len(children) > 2 or (len(children) == 2 and children[1].type != "command_elements"):
        raise _fail(node, "a command of another shape")
    params: list[tuple[str, Any]] = []
    colon: set[str] = set()
    pending: str | None = None
    colon_next = False
    for element in elements:
        if element.type == "command_argument_sep":
            colon_next = colon_next or ":" in _text(element)
            continue
        if element.type == "command_parameter":
            if pending is not None:
                params.append((pending, SWITCH))
            pending = _text(element)[1:]
            colon_next = False
            continue
        if pending is None:
            raise _fail(element, "a positional argument (exfix names every parameter)")
        params.append((pending, reader.value(element)))
        if colon_next:
            colon.add(pending)
        pending, colon_next = None, False
    if pending is not None:
        params.append((pending, SWITCH))
    return Command(name, tuple(params), frozenset(colon), tuple(reader.strings))


def _walk(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    out = [node]
    for child in node.children:
        out.extend(_walk(child))
    return out


def read_script(text: str, *, functions: tuple[str, ...] = (), spec: bool = True) -> TreeScript:
    """A whole script exfix renders, read through the grammar's tree. ``functions`` are the
    exact definitions it may hold; ``spec`` reads strings as PowerShell does (else as the
    grammar does). Raises TreeError for anything else."""
    tree = parse_tree(text)
    root = tree.root_node
    if root.has_error:
        bad = next(n for n in _walk(root) if n.is_error or n.is_missing)
        raise _fail(bad, "the grammar could not parse the script")
    allowed = {definition.rstrip("\n") for definition in functions}
    should_process = False
    assignments: list[tuple[str, Any]] = []
    commands: list[Command] = []
    defined: list[str] = []
    comments: list[tree_sitter.Node] = []
    skip: list[tree_sitter.Node] = []

    def statement(node: tree_sitter.Node) -> None:
        if node.type == "comment":
            comments.append(node)
            return
        if node.type == "function_statement":
            if _text(node) not in allowed:
                raise _fail(node, "a function definition that is not one of the allowed texts")
            defined.append(_text(node))
            skip.append(node)
            return
        if node.type != "pipeline" or len(node.children) != 1:
            raise _fail(node, "a statement that is not one pipeline")
        (inner,) = node.children
        if inner.type == "assignment_expression":
            target, operator, value = inner.children
            variable = _text(target)
            if variable != "$ErrorActionPreference" or _text(operator) != "=":
                raise _fail(inner, "an assignment exfix does not write")
            assignments.append((variable[1:], _Reader(spec).value(value)))
            return
        if inner.type != "pipeline_chain" or len(inner.children) != 1 or inner.children[0].type != "command":
            raise _fail(inner, "a pipeline that is not one command")
        commands.append(_command(inner.children[0], spec))

    for node in root.children:
        if node.type == "comment":
            comments.append(node)
        elif node.type == "param_block":
            if should_process or commands or assignments or _text(node) != _PREAMBLE:
                raise _fail(node, "a param block other than the script's preamble")
            should_process = True
        elif node.type == "statement_list":
            for child in node.children:
                statement(child)
        else:
            raise _fail(node, "a top-level node exfix does not write")
    skipped = {id(n) for s in skip for n in _walk(s)}
    for node in _walk(root):
        if id(node) in skipped:
            continue
        if node.type in CODE_NODES:
            raise _fail(node, "code where only values and exfix's own commands may be")
        if node.type == "variable" and _text(node).lower() not in (
            *_LITERAL_VARIABLES,
            "$erroractionpreference",
        ):
            raise _fail(node, "a variable")
        if node.type == "comment" and node.start_point[1] != 0:
            raise _fail(node, "a comment that does not start its line")
    return TreeScript(should_process, tuple(assignments), tuple(commands), tuple(defined), tuple(comments))
