"""A small PowerShell script language for the OS endpoint and WinRS ``-EncodedCommand``.

It covers what exfix and an admin send to the OS endpoint: statements separated by ``;`` or
new lines, each a pipeline (``|``) of cmdlets with literal arguments. Quoting follows
PowerShell (about_Quoting_Rules): in single quotes ``''`` is one quote and nothing else is
special; in double quotes the backtick escapes (`` `n ``, `` `t ``, `` `" ``, `` `$ ``,
``````...) and ``""`` apply, and the typographic quote characters count as quotes. Values are
quoted strings, barewords, numbers, ``$true``/``$false``/``$null``, comma lists, ``@(...)``
arrays and ``@{k=v; ...}`` hashtables.

Anything else (variables, sub-expressions, script blocks, redirection, ``&&``) is refused with
a parse error rather than guessed at: the emulation must never run text it does not understand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mock_remoting.backend import Command, Parameter

SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
DOUBLE_QUOTES = '"\u201c\u201d\u201e'
DASHES = "-\u2013\u2014\u2015"
_BACKTICK_ESCAPES = {
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}
# Characters that end a bareword in argument mode.
_BAREWORD_STOP = set(" \t\r\n;|,(){}@#&<>`") | set(SINGLE_QUOTES) | set(DOUBLE_QUOTES)


class ScriptSyntaxError(Exception):
    """The script cannot be parsed (or uses syntax the lab refuses). ``fqid`` is PowerShell's
    ParseException error id where one exists."""

    def __init__(self, message: str, fqid: str, offset: int, script: str) -> None:
        line = script.count("\n", 0, offset) + 1
        column = offset - (script.rfind("\n", 0, offset) + 1) + 1
        self.message = f"At line:{line} char:{column}\n{message}"
        self.fqid = fqid
        super().__init__(self.message)


@dataclass(frozen=True)
class Switch:
    """A parameter given without a value."""


def parse(script: str) -> list[list[Command]]:
    """The script as statements, each a pipeline of commands."""
    return _Parser(script).statements()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str, fqid: str, at: int | None = None) -> ScriptSyntaxError:
        return ScriptSyntaxError(message, fqid, self.pos if at is None else at, self.text)

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def skip_space(self, newlines: bool = False) -> None:
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in " \t\f\v\u00a0" or (newlines and ch in "\r\n"):
                self.pos += 1
            elif ch == "`" and self.peek(1) in ("\n", "\r"):
                self.pos += 2  # line continuation
                if self.peek(-1) == "\r" and self.peek() == "\n":
                    self.pos += 1
            elif ch == "#":
                while self.pos < len(self.text) and self.text[self.pos] not in "\r\n":
                    self.pos += 1
            elif ch == "<" and self.peek(1) == "#":
                end = self.text.find("#>", self.pos + 2)
                if end < 0:
                    raise self.fail(
                        "Missing the block comment terminator: '#>'.", "MissingTerminatorMultiLineComment"
                    )
                self.pos = end + 2
            else:
                return

    # statements and pipelines

    def statements(self) -> list[list[Command]]:
        result: list[list[Command]] = []
        while True:
            self.skip_space(newlines=True)
            while self.peek() == ";":
                self.pos += 1
                self.skip_space(newlines=True)
            if self.pos >= len(self.text):
                return result
            result.append(self.pipeline())
            self.skip_space()
            ch = self.peek()
            if ch in (";", "\n", "\r", ""):
                continue
            raise self.unexpected()

    def pipeline(self) -> list[Command]:
        commands = [self.command()]
        while True:
            self.skip_space()
            if self.peek() != "|":
                return commands
            if self.peek(1) == "|":
                raise self.fail(
                    "The token '||' is not supported by the lab's script runner.", "InvalidEndOfLine"
                )
            self.pos += 1
            self.skip_space(newlines=True)
            if self.pos >= len(self.text) or self.peek() in ";|":
                raise self.fail("An empty pipe element is not allowed.", "EmptyPipeElement")
            commands.append(self.command())

    def command(self) -> Command:
        start = self.pos
        ch = self.peek()
        if ch in "&.$({@" or ch in SINGLE_QUOTES or ch in DOUBLE_QUOTES:
            raise self.fail(
                "The lab's script runner only runs cmdlets by name with literal arguments; "
                f"'{ch}' at the start of a command is not supported.",
                "NotSupportedByLab",
            )
        name = self.bareword()
        if not name:
            raise self.unexpected()
        params: list[Parameter] = []
        while True:
            self.skip_space()
            ch = self.peek()
            if ch in ("", ";", "|", "\n", "\r"):
                break
            if ch in DASHES and (self.peek(1).isalpha() or self.peek(1) == "_"):
                params.append(self.named())
            else:
                params.append(Parameter(None, self.argument()))
        if not name.replace("-", "").replace("_", "").replace("\\", "").replace(".", "").isalnum():
            raise self.fail(f"'{name}' is not a command name.", "NotSupportedByLab", start)
        return Command(name=name, parameters=tuple(params))

    def named(self) -> Parameter:
        self.pos += 1  # the dash
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] in "_?"):
            self.pos += 1
        name = self.text[start : self.pos]
        if self.peek() == ":":
            self.pos += 1
            self.skip_space()
            return Parameter(name, self.argument())
        self.skip_space()
        ch = self.peek()
        if ch in ("", ";", "|", "\n", "\r") or (
            ch in DASHES and (self.peek(1).isalpha() or self.peek(1) == "_")
        ):
            return Parameter(name, Switch())
        return Parameter(name, self.argument())

    # values

    def argument(self) -> Any:
        """One argument: a value, or a comma list of values."""
        first = self.value()
        self.skip_space()
        if self.peek() != ",":
            return first
        items = [first]
        while self.peek() == ",":
            self.pos += 1
            self.skip_space(newlines=True)
            items.append(self.value())
            self.skip_space()
        return items

    def value(self) -> Any:
        ch = self.peek()
        if ch == "":
            raise self.fail("Missing an argument.", "MissingArgument")
        if ch in SINGLE_QUOTES:
            return self.single_quoted()
        if ch in DOUBLE_QUOTES:
            return self.double_quoted()
        if ch == "@" and self.peek(1) == "(":
            return self.array()
        if ch == "@" and self.peek(1) == "{":
            return self.hashtable()
        if ch == "$":
            return self.variable()
        if ch == "(":
            return self.concatenation()
        if ch in "({":
            raise self.fail(
                f"'{ch}' (sub-expressions and script blocks) is not supported by the lab's script runner.",
                "NotSupportedByLab",
            )
        if ch in ",;|)}":
            raise self.unexpected()
        word = self.bareword()
        if not word:
            raise self.unexpected()
        return _number_or_text(word)

    def bareword(self) -> str:
        start = self.pos
        chars: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "`":
                nxt = self.peek(1)
                if nxt in ("", "\n", "\r"):
                    break
                chars.append(_BACKTICK_ESCAPES.get(nxt, nxt))
                self.pos += 2
                continue
            if ch == "$" and self.pos > start:
                raise self.fail(
                    "Variables inside arguments are not supported by the lab's script runner.",
                    "NotSupportedByLab",
                )
            if ch in _BAREWORD_STOP:
                if ch in "<>" or (ch == "&" and self.peek(1) == "&"):
                    raise self.fail(
                        f"The '{ch}' operator is not supported by the lab's script runner.",
                        "NotSupportedByLab",
                    )
                break
            chars.append(ch)
            self.pos += 1
        return "".join(chars)

    def single_quoted(self) -> str:
        open_at = self.pos
        self.pos += 1
        chars: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in SINGLE_QUOTES:
                if self.peek(1) in SINGLE_QUOTES and self.peek(1) != "":
                    chars.append(ch)  # '' (or a doubled smart quote) is one literal quote
                    self.pos += 2
                    continue
                self.pos += 1
                return "".join(chars)
            chars.append(ch)
            self.pos += 1
        raise self.fail(
            "The string is missing the terminator: '.", "TerminatorExpectedAtEndOfString", open_at
        )

    def double_quoted(self) -> str:
        open_at = self.pos
        self.pos += 1
        chars: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "`":
                nxt = self.peek(1)
                if nxt == "":
                    break
                chars.append(_BACKTICK_ESCAPES.get(nxt, nxt))
                self.pos += 2
                continue
            if ch in DOUBLE_QUOTES:
                if self.peek(1) in DOUBLE_QUOTES and self.peek(1) != "":
                    chars.append(ch)
                    self.pos += 2
                    continue
                self.pos += 1
                return "".join(chars)
            if ch == "$" and (self.peek(1).isalnum() or self.peek(1) in "_{(:?^$"):
                raise self.fail(
                    "Variable expansion in double-quoted strings is not supported by the lab's "
                    "script runner; use single quotes.",
                    "NotSupportedByLab",
                )
            chars.append(ch)
            self.pos += 1
        raise self.fail(
            'The string is missing the terminator: ".', "TerminatorExpectedAtEndOfString", open_at
        )

    def concatenation(self) -> str:
        """``('text' + [char]0x000A + 'more')``: how exfix writes characters that must not appear
        inside quotes (agent/pwsh.py). Only string literals and ``[char]`` casts of numbers are
        accepted; any other expression is refused."""
        open_at = self.pos
        self.pos += 1
        pieces: list[str] = []
        while True:
            self.skip_space(newlines=True)
            ch = self.peek()
            if ch in SINGLE_QUOTES and ch:
                pieces.append(self.single_quoted())
            elif ch in DOUBLE_QUOTES and ch:
                pieces.append(self.double_quoted())
            elif self.text[self.pos : self.pos + 6].lower() == "[char]":
                self.pos += 6
                start = self.pos
                while self.pos < len(self.text) and (self.text[self.pos].isalnum()):
                    self.pos += 1
                number = _number_or_text(self.text[start : self.pos])
                if not isinstance(number, int) or not 0 <= number <= 0xFFFF:
                    raise self.fail("[char] needs a number from 0 to 0xFFFF.", "NotSupportedByLab", start)
                pieces.append(chr(number))
            elif ch == "":
                raise self.fail(
                    "Missing closing ')' in expression.", "MissingEndParenthesisInExpression", open_at
                )
            else:
                raise self.fail(
                    "Only string literals and [char] values joined with '+' are supported inside "
                    "parentheses by the lab's script runner.",
                    "NotSupportedByLab",
                )
            self.skip_space(newlines=True)
            if self.peek() == "+":
                self.pos += 1
                continue
            if self.peek() == ")":
                self.pos += 1
                break
            raise self.fail(
                "Missing closing ')' in expression.", "MissingEndParenthesisInExpression", open_at
            )
        # Surrogate pairs written as two [char]s are one character.
        return "".join(pieces).encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")

    def variable(self) -> Any:
        start = self.pos
        self.pos += 1
        name_start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] in "_:"):
            self.pos += 1
        name = self.text[name_start : self.pos].lower()
        if name == "true":
            return True
        if name == "false":
            return False
        if name == "null":
            return None
        raise self.fail(
            f"Variables ('${self.text[name_start : self.pos]}') are not supported by the lab's script "
            "runner; only $true, $false and $null are.",
            "NotSupportedByLab",
            start,
        )

    def array(self) -> list[Any]:
        open_at = self.pos
        self.pos += 2
        items: list[Any] = []
        self.skip_space(newlines=True)
        while self.peek() != ")":
            if self.peek() == "":
                raise self.fail(
                    "Missing closing ')' in subexpression.", "MissingEndParenthesisInSubexpression", open_at
                )
            item = self.argument()
            items.extend(item if isinstance(item, list) else [item])
            self.skip_space(newlines=True)
            if self.peek() == ";":
                self.pos += 1
                self.skip_space(newlines=True)
        self.pos += 1
        return items

    def hashtable(self) -> dict[str, Any]:
        open_at = self.pos
        self.pos += 2
        table: dict[str, Any] = {}
        while True:
            self.skip_space(newlines=True)
            while self.peek() == ";":
                self.pos += 1
                self.skip_space(newlines=True)
            ch = self.peek()
            if ch == "}":
                self.pos += 1
                return table
            if ch == "":
                raise self.fail(
                    "Missing closing '}' in statement block or type definition.",
                    "MissingEndCurlyBrace",
                    open_at,
                )
            if ch in SINGLE_QUOTES:
                key = self.single_quoted()
            elif ch in DOUBLE_QUOTES:
                key = self.double_quoted()
            else:
                start = self.pos
                while self.pos < len(self.text) and (
                    self.text[self.pos].isalnum() or self.text[self.pos] in "_-"
                ):
                    self.pos += 1
                key = self.text[start : self.pos]
                if not key:
                    raise self.fail("Missing key before '=' in hash literal.", "MissingEqualsInHashLiteral")
            self.skip_space()
            if self.peek() != "=":
                raise self.fail(
                    "Missing '=' operator after key in hash literal.", "MissingEqualsInHashLiteral"
                )
            self.pos += 1
            self.skip_space()
            table[key] = self.argument()
            self.skip_space()
            if self.peek() == "":
                raise self.fail(
                    "Missing closing '}' in statement block or type definition.",
                    "MissingEndCurlyBrace",
                    open_at,
                )
            if self.peek() not in (";", "}", "\n", "\r"):
                raise self.fail(
                    "Missing statement after '=' in hash literal.", "MissingStatementInHashLiteral"
                )

    def unexpected(self) -> ScriptSyntaxError:
        token = (
            self.text[self.pos : self.pos + 10].split()[0] if self.text[self.pos :].strip() else self.peek()
        )
        return self.fail(f"Unexpected token '{token}' in expression or statement.", "UnexpectedToken")


def _number_or_text(word: str) -> Any:
    """Barewords that look like numbers are numbers (PowerShell argument mode); anything else,
    including dotted addresses such as 10.0.0.10, stays a string."""
    text = word.strip()
    sign = 1
    if text[:1] in DASHES and len(text) > 1:
        sign, text = -1, text[1:]
    if text.isdigit() and text.isascii():
        return sign * int(text)
    if text.lower().startswith("0x") and len(text) > 2:
        try:
            return sign * int(text, 16)
        except ValueError:
            return word
    return word
