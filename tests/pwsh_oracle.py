"""An independent reader of the PowerShell exfix writes, used by tests as an oracle.

It follows PowerShell's own tokenizing rules for the subset exfix renders (about_Quoting_Rules,
about_Parsing): comments, statements separated by newlines or ';', a cmdlet name, ``-Name``
parameters, single-quoted strings (four typographic quotes count as quotes, a doubled quote
is one quote), ``[char]0xNNNN`` joined with ``+`` inside parentheses, ``@(...)`` arrays,
``$true``/``$false``/``$null`` and integers. Anything else is an error, so a template that
writes something unexpected fails the round-trip tests instead of slipping through.
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
        cmdlet = reader.word()
        if "-" not in cmdlet:
            raise reader.fail("expected a cmdlet name")
        params: list[tuple[str, Any]] = []
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
            reader.skip_blanks()
            nxt = reader.peek()
            if reader.pos >= len(text) or nxt in "\r\n;-":
                params.append((name, SWITCH))
            else:
                params.append((name, reader.value()))
        statements.append(Statement(cmdlet, tuple(params)))
