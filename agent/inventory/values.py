"""What an inventory value is and where it was written, whatever the source it came from.

A variable's value travels with its :class:`Origin` (the file, the line, and for YAML the key
path the strict reader knows the lines of), so a problem found after variables from many
files were merged is still reported at the line that set the winning value.

Two kinds of value exfix cannot use without Ansible are kept as markers, refused only when
exfix reads the variable (another tool's vaulted variable is none of exfix's business):

- :class:`Vaulted`: ``!vault`` in YAML, ``{"__ansible_vault": ...}`` in the JSON that
  ``ansible-inventory --list`` and inventory scripts print;
- a Jinja2 template (``{{ }}``, ``{% %}``, ``{# #}``): Ansible evaluates it when a task needs
  the variable; exfix does not evaluate templates. ``!unsafe`` (and ``__ansible_unsafe``)
  marks a string Ansible never templates: :class:`Unsafe` keeps it literal here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.errors import InventoryError
from agent.model.document import KeyPath, Loaded

# Ansible's template detection looks for the opening markers of Jinja2's three constructs
# (ansible.template: is_possibly_template).
_TEMPLATE_MARKERS = ("{{", "{%", "{#")


class Unsafe(str):
    """A string Ansible never templates (``!unsafe``): read literally, ``{{`` included."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Vaulted:
    """A value encrypted with Ansible Vault. The ciphertext is kept out of every message."""

    ciphertext: str

    def __repr__(self) -> str:
        return "Vaulted(...)"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a value was written: ``source`` (a file, or a command's output), its ``line``
    when known, and for YAML the ``loaded`` document and key ``path`` (finer lines for errors
    below the variable, such as a list's third item)."""

    source: str
    line: int | None = None
    loaded: Loaded[Any] | None = None
    path: KeyPath = ()

    def at(self) -> int | None:
        if self.loaded is not None:
            return self.loaded.line(self.path)
        return self.line

    def where(self) -> str:
        line = self.at()
        return self.source if line is None else f"{self.source}:{line}"


Written = tuple[Any, Origin]
"""A variable's value and where it was written."""


def vault_or_template(value: Any) -> str | None:
    """Why ``value`` cannot be read without Ansible ("vault", "template"), or None."""
    if isinstance(value, Vaulted):
        return "vault"
    if isinstance(value, Unsafe):
        return None
    if isinstance(value, str):
        return "template" if any(marker in value for marker in _TEMPLATE_MARKERS) else None
    if isinstance(value, Mapping):
        for item in value.values():
            found = vault_or_template(item)
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for item in value:
            found = vault_or_template(item)
            if found:
                return found
    return None


def inventory_text(raw: bytes, source: str, vault_way_out: str) -> str:
    """An inventory or vars file's bytes as text (UTF-8, a BOM allowed). InventoryError for
    other bytes, and for a file encrypted whole with Ansible Vault, naming ``vault_way_out``
    (the ``-i ansible:`` form that lets Ansible decrypt it)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InventoryError(source, f"not UTF-8 text (byte {exc.start})") from None
    if text.startswith("$ANSIBLE_VAULT"):
        raise InventoryError(
            source,
            "is encrypted with Ansible Vault, which exfix cannot decrypt: let Ansible read "
            f"{vault_way_out} (pip install 'exfix[ansible]')",
            line=1,
        )
    return text
