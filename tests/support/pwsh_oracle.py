"""An independent reader of the PowerShell exfix writes, used by tests as an oracle.

It follows PowerShell's own tokenizing rules for the subset exfix renders (about_Quoting_Rules,
about_Parsing): comments, statements separated by newlines or ';', a cmdlet name, ``-Name``
parameters (also ``-Name:value``, the form a switch needs for an explicit value), single-quoted
strings (four typographic quotes count as quotes, a doubled quote is one quote), ``[char]0xNNNN``
joined with ``+`` inside parentheses, ``@(...)`` arrays, ``$true``/``$false``/``$null`` and
integers. Anything else is an error, so a template that
writes something unexpected fails the round-trip tests instead of slipping through.

:func:`parse_script` reads a whole script exfix renders (remediate.ps1 / rollback.ps1). On top
of the statements it accepts exactly the scaffolding those scripts use, and nothing more:

- the preamble ``[CmdletBinding(SupportsShouldProcess = $true)]`` then ``param()``, once, as
  the first thing after the comments;
- assignments ``$Name = <literal>`` (``$ErrorActionPreference = 'Stop'``);
- ``function Verb-Noun { ... }`` definitions whose whole text (from ``function`` to the ``}``
  that starts a line) is exactly one of the definitions the caller allows. The oracle does not
  read function bodies; the caller proves that the body is fixed text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

QUOTES = "'\u2018\u2019\u201a\u201b"
SWITCH = object()


class OracleError(ValueError):
    pass


@dataclass(frozen=True)
class Statement:
    cmdlet: str
    parameters: tuple[tuple[str, Any], ...]
    colon: frozenset[str] = frozenset()  # parameters written -Name:value


@dataclass(frozen=True)
class Assignment:
    variable: str
    value: Any


@dataclass(frozen=True)
class Function:
    name: str
    text: str


@dataclass(frozen=True)
class Script:
    should_process: bool  # the [CmdletBinding(SupportsShouldProcess = $true)] param() preamble
    items: tuple[Statement | Assignment | Function, ...]

    @property
    def statements(self) -> tuple[Statement, ...]:
        return tuple(item for item in self.items if isinstance(item, Statement))

    @property
    def assignments(self) -> tuple[Assignment, ...]:
        return tuple(item for item in self.items if isinstance(item, Assignment))

    @property
    def functions(self) -> tuple[Function, ...]:
        return tuple(item for item in self.items if isinstance(item, Function))


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos:self.pos + n]

    def fail(self, what: str) -> OracleError:
        line = self.text.count("\n", 0, self.pos) + 1
        return OracleError(f"line {line}: {what} at {self.text[self.pos:self.pos + 20]!r}")

    def skip_blanks(self) -> None:
        """Spaces, tabs and comments; not newlines (they end statements)."""
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in " \t":
                self.pos += 1
            elif self.peek(2) == "<#":
                end = self.text.find("#>", self.pos + 2)
                if end < 0:
                    raise self.fail("unterminated block comment")
                self.pos = end + 2
            elif ch == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return

    def word(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] in "-_"):
            self.pos += 1
        return self.text[start:self.pos]

    def single_quoted(self) -> str:
        assert self.peek() in QUOTES
        self.pos += 1
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise self.fail("unterminated string")
            ch = self.text[self.pos]
            if ch in QUOTES:
                if self.pos + 1 < len(self.text) and self.text[self.pos + 1] in QUOTES:
                    out.append(ch)
                    self.pos += 2
                    continue
                self.pos += 1
                return "".join(out)
            out.append(ch)
            self.pos += 1

    def char_expr(self) -> str:
        if not self.text.startswith("[char]0x", self.pos):
            raise self.fail("expected [char]0xNNNN")
        self.pos += len("[char]0x")
        digits = self.text[self.pos:self.pos + 4]
        if len(digits) != 4 or any(c not in "0123456789ABCDEF" for c in digits):
            raise self.fail("expected four upper-case hex digits")
        self.pos += 4
        return chr(int(digits, 16))

    def concatenation(self) -> str:
        self.pos += 1  # (
        pieces: list[str] = []
        while True:
            self.skip_blanks()
            if self.peek() in QUOTES and self.peek():
                pieces.append(self.single_quoted())
            else:
                pieces.append(self.char_expr())
            self.skip_blanks()
            if self.peek() == "+":
                self.pos += 1
                continue
            if self.peek() == ")":
                self.pos += 1
                break
            raise self.fail("expected '+' or ')'")
        joined = "".join(pieces)
        # Surrogate pairs written as two [char]s come back as one character.
        return joined.encode("utf-16-le", "surrogatepass").decode("utf-16-le")

    def value(self) -> Any:
        self.skip_blanks()
        ch = self.peek()
        if ch and ch in QUOTES:
            return self.single_quoted()
        if ch == "(":
            return self.concatenation()
        if self.peek(2) == "@(":
            self.pos += 2
            items: list[Any] = []
            self.skip_blanks()
            if self.peek() == ")":
                self.pos += 1
                return tuple(items)
            while True:
                items.append(self.value())
                self.skip_blanks()
                if self.peek() == ",":
                    self.pos += 1
                    continue
                if self.peek() == ")":
                    self.pos += 1
                    return tuple(items)
                raise self.fail("expected ',' or ')' in @()")
        if ch == "$":
            self.pos += 1
            name = self.word().lower()
            if name in ("true", "false", "null"):
                return {"true": True, "false": False, "null": None}[name]
            raise self.fail("a variable where a literal was expected")
        if ch.isdigit():
            return int(self.word())
        raise self.fail("expected a value")


def _statement(reader: _Reader) -> Statement:
    text = reader.text
    cmdlet = reader.word()
    if "-" not in cmdlet:
        raise reader.fail("expected a cmdlet name")
    params: list[tuple[str, Any]] = []
    colon: set[str] = set()
    while True:
        reader.skip_blanks()
        if reader.pos >= len(text) or reader.peek() in "\r\n;":
            break
        if reader.peek() != "-":
            raise reader.fail("expected a -Parameter")
        reader.pos += 1
        name = reader.word()
        if not name:
            raise reader.fail("empty parameter name")
        if reader.peek() == ":":
            # -Name:value binds the value to the parameter itself, with nothing in between.
            reader.pos += 1
            if reader.peek() in ("", " ", "\t", "\r", "\n", ";"):
                raise reader.fail("a value must follow -Name: directly")
            params.append((name, reader.value()))
            colon.add(name)
            continue
        reader.skip_blanks()
        nxt = reader.peek()
        if reader.pos >= len(text) or nxt in "\r\n;-":
            params.append((name, SWITCH))
        else:
            params.append((name, reader.value()))
    return Statement(cmdlet, tuple(params), frozenset(colon))


def _end_of_statement(reader: _Reader) -> None:
    reader.skip_blanks()
    if reader.pos < len(reader.text) and reader.peek() not in "\r\n;":
        raise reader.fail("expected the end of the statement")


def parse(text: str) -> list[Statement]:
    """Every command statement in ``text``, in order. Raises OracleError on anything else."""
    reader = _Reader(text)
    statements: list[Statement] = []
    while True:
        reader.skip_blanks()
        if reader.pos >= len(text):
            return statements
        if reader.peek() in "\r\n;":
            reader.pos += 1
            continue
        statements.append(_statement(reader))


_PREAMBLE = "[CmdletBinding(SupportsShouldProcess = $true)]"


def parse_script(text: str, *, functions: tuple[str, ...] = ()) -> Script:
    """A whole rendered script: the statements plus the scaffolding described in the module
    docstring. ``functions`` are the exact function definitions the script may contain."""
    allowed = {definition.rstrip("\n"): definition for definition in functions}
    reader = _Reader(text)
    items: list[Statement | Assignment | Function] = []
    should_process = False
    while True:
        reader.skip_blanks()
        if reader.pos >= len(text):
            return Script(should_process, tuple(items))
        ch = reader.peek()
        if ch in "\r\n;":
            reader.pos += 1
            continue
        if ch == "[":
            if items or should_process or not text.startswith(_PREAMBLE, reader.pos):
                raise reader.fail("an attribute other than the script's CmdletBinding preamble")
            reader.pos += len(_PREAMBLE)
            reader.skip_blanks()
            while reader.peek() in ("\r", "\n"):
                reader.pos += 1
                reader.skip_blanks()
            if not text.startswith("param()", reader.pos):
                raise reader.fail("expected param() after [CmdletBinding(...)]")
            reader.pos += len("param()")
            _end_of_statement(reader)
            should_process = True
            continue
        if ch == "$":
            reader.pos += 1
            variable = reader.word()
            if not variable or not variable.replace("_", "").isalnum():
                raise reader.fail("expected a variable name")
            reader.skip_blanks()
            if reader.peek() != "=":
                raise reader.fail("expected '=' after the variable")
            reader.pos += 1
            value = reader.value()
            _end_of_statement(reader)
            items.append(Assignment(variable, value))
            continue
        start = reader.pos
        if text.startswith("function ", start):
            end = text.find("\n}", start)
            if end < 0:
                raise reader.fail("unterminated function definition")
            definition = text[start:end + 2]
            if definition not in allowed:
                raise reader.fail("a function definition that is not one of the allowed texts")
            reader.pos = end + 2
            _end_of_statement(reader)
            name = definition[len("function "):].split(None, 1)[0]
            items.append(Function(name, allowed[definition]))
            continue
        items.append(_statement(reader))
