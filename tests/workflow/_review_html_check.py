"""Reading review.html back with html.parser, for the tests: its text, its script tables and
every reference it makes. Not a test module (no test_ prefix): imported by the tests here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

# Attributes that make a browser fetch or navigate somewhere.
URL_ATTRIBUTES = frozenset({"src", "href", "action", "formaction", "data", "poster", "srcset", "background",
                            "cite", "longdesc", "manifest", "ping", "xlink:href"})  # fmt: skip
FETCHING_TAGS = frozenset({"script", "link", "iframe", "img", "object", "embed", "frame", "audio", "video",
                           "source", "base", "form", "svg", "math"})  # fmt: skip
EXTERNAL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:|//)", re.I)


@dataclass
class ReviewPage(HTMLParser):
    texts: list[str] = field(default_factory=list)
    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)
    scripts: dict[str, list[list[tuple[int, str]]]] = field(default_factory=dict)  # name -> tables of rows
    by_id: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        HTMLParser.__init__(self, convert_charrefs=True)
        self._stack: list[tuple[str, str | None]] = []
        self._script: list[tuple[int, str]] | None = None
        self._cells: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        self._stack.append((tag, attributes.get("id")))
        if tag == "style":
            self._in_style = True
        if tag == "table" and attributes.get("data-script"):
            self._script = []
            self.scripts.setdefault(str(attributes["data-script"]), []).append(self._script)
        if tag == "tr" and self._script is not None:
            self._cells = []
        if tag == "td" and self._cells is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False
        if tag == "td" and self._cell is not None and self._cells is not None:
            self._cells.append("".join(self._cell))
            self._cell = None
        if tag == "tr" and self._cells is not None and self._script is not None:
            number, text = self._cells
            self._script.append((int(number), text))
            self._cells = None
        if tag == "table":
            self._script = None
        while self._stack:
            opened, _ = self._stack.pop()
            if opened == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)
            return
        self.texts.append(data)
        if self._cell is not None:
            self._cell.append(data)
        for _, element_id in self._stack:
            if element_id:
                self.by_id[element_id] = self.by_id.get(element_id, "") + data

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def external_references(self) -> list[str]:
        found = []
        for tag, attributes in self.tags:
            if tag in FETCHING_TAGS:
                found.append(f"<{tag}>")
            for name, value in attributes.items():
                if name in URL_ATTRIBUTES and value is not None and EXTERNAL.match(value):
                    found.append(f"{tag} {name}={value}")
                if name == "style" and value and ("url(" in value.lower() or "@import" in value.lower()):
                    found.append(f"{tag} style={value}")
        for style in self.styles:
            lowered = style.lower()
            if "@import" in lowered or "url(" in lowered:
                found.append("style sheet loads something")
        return found


def parse_review(text: str) -> ReviewPage:
    page = ReviewPage()
    page.feed(text)
    page.close()
    return page
