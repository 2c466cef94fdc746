"""Host patterns as Ansible reads them: ``name:port``, ``[v6]:port`` and ``[a:b]`` ranges.

The rules are ansible-core's (``lib/ansible/parsing/utils/addresses.py`` and
``expand_hostname_range`` in ``lib/ansible/plugins/inventory/__init__.py``):

- a port is an optional ``:NN`` suffix on an IPv4 address or a host name, and a mandatory one
  on a bracketed expression (so ``[2001:db8::1]:5986``; a bare IPv6 address has no port);
- ``[01:03]`` counts with the width of its start when the start has a leading zero (and then
  the end must be as wide), ``[a:c]`` runs through ASCII letters (``a``..``z`` then
  ``A``..``Z``), ``[1:9:2]`` steps; ranges nest left to right;
- a pattern that is no address at all is kept as it is written (Ansible does too), and only
  ``[`` makes it a range.
"""

from __future__ import annotations

import re
import string

_NUMERIC = r"\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_HEX = r"\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]"
_ALNUM = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_V6_PART = rf"(?:[0-9a-f]{{1,4}}|{_HEX})"
_V4_PART = rf"(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{_NUMERIC})"
_LABEL = rf"(?:[\w]|{_ALNUM})(?:[\w_-]|{_ALNUM})*(?<![_-])"

_BRACKETED_PORT = re.compile(r"^\[(.+)\]:([0-9]+)$")
_HOST_PORT = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$")
_IPV4 = re.compile(rf"^(?:{_V4_PART}\.){{3}}{_V4_PART}$", re.I)
_IPV6 = re.compile(
    "^("
    + "|".join(
        [
            rf"(?:{_V6_PART}:){{7}}{_V6_PART}",
            rf"(?:{_V6_PART}:){{1,6}}:",
            rf"(?:{_V6_PART}:)(?::{_V6_PART}){{1,6}}",
            rf"(?:{_V6_PART}:){{2}}(?::{_V6_PART}){{1,5}}",
            rf"(?:{_V6_PART}:){{3}}(?::{_V6_PART}){{1,4}}",
            rf"(?:{_V6_PART}:){{4}}(?::{_V6_PART}){{1,3}}",
            rf"(?:{_V6_PART}:){{5}}(?::{_V6_PART}){{1,2}}",
            rf"(?:{_V6_PART}:){{6}}(?::{_V6_PART})",
            rf":(?::{_V6_PART}){{1,6}}",
            rf"{_V6_PART}?::",
            rf"(?:0:){{6}}(?:{_V6_PART}\.){{3}}{_V6_PART}",
            rf"::(?:ffff:)?(?:{_V6_PART}\.){{3}}{_V6_PART}",
            rf"(?:0:){{5}}ffff:(?:{_V6_PART}\.){{3}}{_V6_PART}",
        ]
    )
    + ")$",
    re.I,
)
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$", re.I | re.UNICODE)

MAX_RANGE_HOSTS = 10000


def parse_address(address: str, *, allow_ranges: bool = False) -> tuple[str, int | None]:
    """``(host, port)`` of a host identifier with an optional port. Raises ValueError when
    ``address`` is not one (Ansible's ``parse_address``)."""
    port: int | None = None
    for pattern in (_BRACKETED_PORT, _HOST_PORT):
        match = pattern.match(address)
        if match:
            address, port = match.group(1), int(match.group(2))
    if not any(p.match(address) for p in (_IPV4, _IPV6, _HOSTNAME)):
        raise ValueError(f"not a valid network host name: {address!r}")
    if not allow_ranges and "[" in address:
        raise ValueError("a range where none is allowed")
    return address, port


def split_host_pattern(pattern: str) -> tuple[list[str], int | None]:
    """A host key of an inventory: its host names (ranges expanded) and its port, if any.
    Raises ValueError for a malformed range."""
    try:
        name, port = parse_address(pattern, allow_ranges=True)
    except ValueError:
        name, port = pattern, None
    return (expand_range(name) if "[" in name else [name]), port


def expand_range(name: str) -> list[str]:
    """``db[01:03]x`` -> db01x, db02x, db03x (see the module docstring). Raises ValueError."""
    head, sep, rest = name.partition("[")
    inner, sep2, tail = rest.partition("]")
    if not sep or not sep2:
        raise ValueError(f"host name {name!r} has a malformed [start:end] range")
    bounds = inner.split(":")
    if len(bounds) not in (2, 3):
        raise ValueError(f"host range in {name!r} must be begin:end or begin:end:step")
    begin, end = bounds[0] or "0", bounds[1]
    if not end:
        raise ValueError(f"host range in {name!r} must have an end")
    try:
        step = int(bounds[2]) if len(bounds) == 3 else 1
    except ValueError:
        raise ValueError(f"host range in {name!r} has a step that is not a number") from None
    if step < 1:
        raise ValueError(f"host range in {name!r} has a step below 1")
    width = 0
    if begin[0] == "0" and len(begin) > 1:
        width = len(begin)
        if len(end) != width:
            raise ValueError(f"host range in {name!r} must have a begin and an end of equal width")
    letters = string.ascii_letters
    if begin in letters and end in letters and len(begin) == len(end) == 1:
        first, last = letters.index(begin), letters.index(end)
        if first > last:
            raise ValueError(f"host range in {name!r} must have begin <= end")
        items = list(letters[first : last + 1 : step])
    else:
        try:
            items = [str(n).zfill(width) for n in range(int(begin), int(end) + 1, step)]
        except ValueError:
            raise ValueError(f"host range in {name!r} mixes letters and numbers") from None
    if not items:  # Ansible adds no host at all here, silently: exfix says so
        raise ValueError(f"host range in {name!r} is empty")
    if len(items) > MAX_RANGE_HOSTS:
        raise ValueError(f"host range in {name!r} expands to more than {MAX_RANGE_HOSTS} hosts")
    out: list[str] = []
    for item in items:
        expanded = head + item + tail
        out.extend(expand_range(expanded) if "[" in expanded else [expanded])
        if len(out) > MAX_RANGE_HOSTS:
            raise ValueError(f"host range in {name!r} expands to more than {MAX_RANGE_HOSTS} hosts")
    return out
