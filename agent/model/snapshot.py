"""The facts snapshot: HostFacts as versioned JSON, for `exfix scan --save-facts F` and
`exfix evaluate F`.

Format (``"schema": "exfix.facts/4"``)::

    {"schema": "exfix.facts/4", "organizations": [ {<OrgFacts>}, ... ], "hosts": [ {<HostFacts>}, ... ]}

Each HostFacts is a JSON object with one key per dataclass field (snake_case, as in
agent/model/facts.py); enums are their values, tuples are arrays, absent areas are null. What
an organisation's servers share (its send connectors) is written once, in ``organizations``,
and each host's ``org`` is the index of its organisation there: written per host, the
connectors (each listing its source servers) would grow with the square of the fleet.

``exfix.facts/4`` adds each host's ``firewall``: its enabled outbound Windows Firewall rules
that can touch port 53 (null where they were not read); /3 and older are read with it null.
``firewall.profiles`` (Get-NetFirewallProfile: name, enabled, default_outbound_action,
allow_local_rules) is an optional key of /4: a snapshot without it, written before exfix read
the profiles, reads as "profiles not read" (None), and no rule judges a default Block there.
The shape of every other key is as before, so the version stays /4.
``exfix.facts/3`` adds each host's ``edge_config_file`` (EdgeTransport.exe.config as read, and
where it stops being well-formed XML) and names the area ``edge_config_file`` in
``status.issues`` where the file could not be read. ``exfix.facts/2`` is still read: it did not
tell reading the file from parsing it, so an ``edge_config`` issue there becomes an
``edge_config_file`` one (nothing is known of the file), and a host whose settings were read
gets a well-formed file. ``exfix.facts/1`` (hosts only, each with its own
``send_connectors``, and no ``organization`` in ``exchange``) is read as /2 with each host an
organisation of its own.

Each host's ``dns_cache`` (Get-DnsClientCache rows) is an optional key of /3: a snapshot
without it, written before exfix read the cache, reads as "nothing known of the cache" (None),
and the rules that read the cache find nothing in it. The shape of every other key is as
before, so the version stays /3.

Reading is strict (agent/model/document.py): an unknown schema, a missing or unknown key, or
a value of the wrong type raises FactsFileError naming the file and the key path
(``hosts[0].nics[1].interface_index``). A snapshot is a file a user hands exfix, so nothing in
it is trusted.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

from agent.errors import FactsFileError
from agent.model.document import Document, Loaded, encode, key
from agent.model.facts import HostFacts, OrgFacts

SCHEMA = "exfix.facts/4"
SCHEMA_3 = "exfix.facts/3"
SCHEMA_2 = "exfix.facts/2"
SCHEMA_1 = "exfix.facts/1"


@dataclass(frozen=True, slots=True)
class _Head:
    # Read first, so that a snapshot of another version is reported as such.
    schema: Literal["exfix.facts/1", "exfix.facts/2", "exfix.facts/3", "exfix.facts/4"] = field(
        metadata=key(first=True)
    )
    hosts: Any = None
    organizations: Any = None


@dataclass(frozen=True, slots=True)
class _Snapshot:
    hosts: tuple[HostFacts, ...]


_HEAD = Document(_Head, FactsFileError, what="a facts snapshot")
_DOCUMENT = Document(_Snapshot, FactsFileError, what="a facts snapshot")


def host_to_dict(facts: HostFacts, org: int | None = None) -> dict[str, Any]:
    """One host as the snapshot writes it; ``org`` the index of its organisation (None: the
    organisation's facts inline, for a single host)."""
    encoded = encode(facts)
    assert isinstance(encoded, dict)
    if org is not None:
        encoded["org"] = org
    return encoded


def to_dict(hosts: Iterable[HostFacts]) -> dict[str, Any]:
    orgs: list[Any] = []
    index: dict[int, int] = {}  # id(OrgFacts) -> its place: one object per organisation in a scan
    out = []
    for facts in hosts:
        if id(facts.org) not in index:
            index[id(facts.org)] = len(orgs)
            orgs.append(encode(facts.org))
        out.append(host_to_dict(facts, index[id(facts.org)]))
    return {"schema": SCHEMA, "organizations": orgs, "hosts": out}


class SnapshotWriter:
    """Writes a snapshot as hosts finish, so that a fleet's facts need not be held until the
    end (``exfix scan --save-facts``). The same document as :func:`to_json`, with
    ``organizations`` after the hosts (JSON keys have no order) and the hosts in ``order`` (the
    inventory's): a host's text waits only until the hosts before it have finished, so the file
    is the same whichever host answers first. :meth:`finished` is called for every host of
    ``order``, scanned or not, after :meth:`add` for a scanned one. Thread-safe; :meth:`close`
    ends the document (writing what still waits), so a scan cut short leaves valid JSON."""

    def __init__(self, out: TextIO, order: Iterable[str]) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._order = list(order)
        self._next = 0  # the first host of ``order`` not yet written or passed
        self._done: set[str] = set()
        self._waiting: dict[str, str] = {}  # host -> its JSON text, until its turn
        self._orgs: list[OrgFacts] = []  # kept: their ids index ``_index``
        self._index: dict[int, int] = {}
        self._count = 0
        self._closed = False
        out.write(f'{{\n  "schema": "{SCHEMA}",\n  "hosts": [')

    @property
    def count(self) -> int:
        """Hosts written so far."""
        return self._count

    def add(self, facts: HostFacts) -> None:
        with self._lock:
            if self._closed:
                raise ValueError("the snapshot is closed")
            if id(facts.org) not in self._index:
                self._index[id(facts.org)] = len(self._orgs)
                self._orgs.append(facts.org)
            encoded = host_to_dict(facts, self._index[id(facts.org)])
            self._waiting[facts.host] = json.dumps(encoded, indent=2, ensure_ascii=False)

    def finished(self, host: str) -> None:
        with self._lock:
            self._done.add(host)
            while self._next < len(self._order) and self._order[self._next] in self._done:
                self._write(self._order[self._next])
                self._next += 1

    def _write(self, host: str) -> None:
        text = self._waiting.pop(host, None)
        if text is not None:
            self._out.write(("," if self._count else "") + "\n" + _indented(text, 4))
            self._count += 1

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for host in self._order[self._next :]:
                self._write(host)  # a scan cut short: what finished, in order
            orgs = [json.dumps(encode(o), indent=2, ensure_ascii=False) for o in self._orgs]
            self._out.write(("\n  " if self._count else "") + "],\n  \"organizations\": [")
            self._out.write(",".join("\n" + _indented(o, 4) for o in orgs))
            self._out.write(("\n  " if orgs else "") + "]\n}\n")


def _indented(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line for line in text.splitlines())


def to_json(hosts: Iterable[HostFacts]) -> str:
    return json.dumps(to_dict(hosts), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def from_dict(data: Any, *, source: str = "<facts>") -> tuple[HostFacts, ...]:
    """The hosts of a parsed snapshot. Raises FactsFileError (file, key) on anything unexpected."""
    return _hosts(_HEAD.read_data(data, source=source))


def from_json(text: str, *, source: str = "<facts>") -> tuple[HostFacts, ...]:
    """The hosts of a snapshot file's text. Raises FactsFileError (file, line or key)."""
    loaded = _HEAD.read_json(text, source=source)
    try:
        return _hosts(loaded)
    except FactsFileError as error:
        raise _HEAD.locate_in_json(text, source, error) from None


def _hosts(loaded: Loaded[_Head]) -> tuple[HostFacts, ...]:
    head = loaded.value
    if head.hosts is None:
        raise loaded.fail(("hosts",), "missing")
    if head.schema == SCHEMA_1:
        if head.organizations is not None:
            raise loaded.fail(("organizations",), "unknown key")
        hosts = _read_1(head.hosts)
    else:
        if head.organizations is None:
            raise loaded.fail(("organizations",), "missing")
        hosts = _read_2(loaded, head.hosts, head.organizations)
    if head.schema in (SCHEMA_1, SCHEMA_2):
        hosts = _edge_file_of_2(hosts)
    if head.schema != SCHEMA:
        hosts = _firewall_of_3(hosts)
    return _shared(loaded.read(_Snapshot, {"hosts": hosts}, ()).hosts)


def _read_2(loaded: Loaded[_Head], hosts: Any, orgs: Any) -> Any:
    """exfix.facts/2: each host's ``org`` (an index) replaced by its organisation's facts."""
    if not isinstance(orgs, list):
        raise loaded.fail(("organizations",), "must be a list")
    if not isinstance(hosts, list):
        return hosts  # the typed reader says what is wrong
    out = []
    for i, host in enumerate(hosts):
        if isinstance(host, dict) and "org" in host:
            ref = host["org"]
            if isinstance(ref, bool) or not isinstance(ref, int) or not 0 <= ref < len(orgs):
                problem = f"must be the index of one of the {len(orgs)} organizations"
                raise loaded.fail(("hosts", i, "org"), problem)
            host = {**host, "org": orgs[ref]}
        out.append(host)
    return out


def _read_1(hosts: Any) -> Any:
    """exfix.facts/1: each host's own send connectors become an organisation of its own."""
    if not isinstance(hosts, list):
        return hosts
    out = []
    for host in hosts:
        if isinstance(host, dict) and "send_connectors" in host and "org" not in host:
            host = dict(host)
            connectors = host.pop("send_connectors")
            exchange = host.get("exchange")
            if isinstance(exchange, dict) and "organization" not in exchange:
                host["exchange"] = {**exchange, "organization": ""}
            name = host.get("host")
            host["org"] = {"name": "", "send_connectors": connectors, "collected_from": name, "issue": None}
        out.append(host)
    return out


def _edge_file_of_2(hosts: Any) -> Any:
    """exfix.facts/1 and /2: the file EdgeTransport.exe.config was read from, as far as the
    snapshot tells (see the module docstring)."""
    if not isinstance(hosts, list):
        return hosts
    out = []
    for host in hosts:
        if isinstance(host, dict) and "edge_config_file" not in host:
            host = dict(host)
            edge = host.get("edge_config")
            path = edge.get("config_path") if isinstance(edge, dict) else None
            host["edge_config_file"] = (
                {"config_path": path, "xml_error": None} if isinstance(path, str) else None
            )
            status = host.get("status")
            if isinstance(status, dict) and isinstance(status.get("issues"), list):
                issues = [_file_issue(i) for i in status["issues"]]
                host["status"] = {**status, "issues": issues}
        out.append(host)
    return out


def _firewall_of_3(hosts: Any) -> Any:
    """exfix.facts/1 to /3: the firewall was not read (null), as where its area failed."""
    if not isinstance(hosts, list):
        return hosts
    return [
        {**host, "firewall": None} if isinstance(host, dict) and "firewall" not in host else host
        for host in hosts
    ]


def _file_issue(issue: Any) -> Any:
    if isinstance(issue, dict) and issue.get("area") == "edge_config":
        return {**issue, "area": "edge_config_file"}
    return issue


def _shared(hosts: tuple[HostFacts, ...]) -> tuple[HostFacts, ...]:
    """Servers of one organisation refer to one OrgFacts again, as after a scan."""
    seen: dict[OrgFacts, OrgFacts] = {}
    return tuple(dataclasses.replace(h, org=seen.setdefault(h.org, h.org)) for h in hosts)
