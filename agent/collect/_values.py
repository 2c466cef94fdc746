"""Reading values out of RemoteObjects the way they really arrive.

The same property comes in different shapes depending on the transport, the PowerShell
version and whether it came from a live session or an Export-Clixml capture:

- enums as strings ("Mailbox"), as ints (AddressFamily 2), or as objects whose ToString is
  the name (Exchange's ServerRole, SmartHostAuthMechanism);
- booleans as bool or as the strings "True"/"False";
- multi-valued properties as tuples, lists, a single string, or Nil;
- ADObjectId, SmartHost and AddressSpace values as objects whose ToString is the useful form;
- missing properties and <Nil/> both as None.

Every function here is total: it never raises on odd input, it returns the default.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agent.model.remote import RemoteObject


def text(value: Any, default: str = "") -> str:
    """A value as the text PowerShell would show for it."""
    if value is None:
        return default
    if isinstance(value, RemoteObject):
        if value.to_string is not None:
            return value.to_string
        for name in ("Name", "Value"):
            inner = value.get(name)
            if isinstance(inner, str):
                return inner
        return default
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, bytes):
        return default
    if isinstance(value, (tuple, list)):
        return ", ".join(text(v) for v in value)
    return str(value)


def boolean(value: Any, default: bool | None = None) -> bool | None:
    """bool, "True"/"False" (any case, as -OutputFormat XML and some captures give them),
    1/0, or an object whose ToString is one of those."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0 if value in (0, 1) else default
    word = text(value).strip().lower()
    if word in ("true", "$true", "1", "yes"):
        return True
    if word in ("false", "$false", "0", "no"):
        return False
    return default


def integer(value: Any, default: int | None = None) -> int | None:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    word = text(value).strip().replace(",", "")
    try:
        return int(word)
    except ValueError:
        return default


def items(value: Any) -> tuple[Any, ...]:
    """A multi-valued property as a tuple of its items (Nil -> ())."""
    if value is None:
        return ()
    if isinstance(value, (tuple, list)):
        return tuple(value)
    if isinstance(value, (set, frozenset)):
        return tuple(sorted(value, key=str))
    return (value,)


def texts(value: Any, *, split: bool = False) -> tuple[str, ...]:
    """A multi-valued property as strings, empty ones dropped. With ``split``, a lone string
    holding a comma- or space-separated list (as some formatters flatten address arrays) is
    split into its parts."""
    if split and isinstance(value, str):
        return tuple(part for part in value.replace(",", " ").split() if part)
    out: list[str] = []
    for item in items(value):
        word = text(item).strip()
        if word:
            out.append(word)
    return tuple(out)


def unique(values: Iterable[str]) -> tuple[str, ...]:
    """Drop repeats, keep the first occurrence's position (real captures repeat DNS servers)."""
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        key = value.lower()
        if key not in seen:
            seen.add(key)
            out.append(value)
    return tuple(out)


def objects(values: Iterable[Any]) -> tuple[RemoteObject, ...]:
    """Only the RemoteObjects of a result (a stray string or None is skipped)."""
    return tuple(v for v in values if isinstance(v, RemoteObject))


def type_matches(obj: RemoteObject, *class_names: str) -> bool:
    """True when one of the object's type names ends with one of ``class_names`` after a '#',
    '.' or '/', case-insensitively. CIM type names carry a namespace whose case varies
    (``CimInstance#ROOT/StandardCimv2/MSFT_DNSClient`` and ``#root/StandardCimv2/...``)."""
    wanted = tuple(name.lower() for name in class_names)
    for type_name in obj.type_names:
        lowered = type_name.lower()
        for name in wanted:
            if lowered == name or lowered.endswith(("#" + name, "/" + name, "." + name)):
                return True
    return False
