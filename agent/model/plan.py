"""The plan: structured actions per host, what they depend on, and the digest a change board
approves.

A plan is written as ``plan.json`` (``"schema": "exfix.plan/1"``) beside one remediate.ps1 and
one rollback.ps1 per host and a REVIEW.md. apply executes the structured calls held here, not
the scripts; the scripts are rendered from the same calls (agent/planning/render.py) and a test
proves that they parse back to exactly these calls.

The digest
----------
The digest is the sha256 (lower-case hex) of the *canonical JSON* of the plan content: the
whole ``plan.json`` object except the ``digest`` key itself and each host's ``scripts`` map.
Canonical JSON (:func:`canonical_json`) is ``json.dumps`` with sorted keys, no whitespace
(``separators=(",", ":")``), ``ensure_ascii=True`` (every non-ASCII character as a ``\\uXXXX``
escape) and ``allow_nan=False``, encoded as UTF-8. It covers the hosts, their findings, every
action (call, read-back, before/after, rollback, flags, fingerprints) and every advisory.

The scripts are part of what is approved, but they show the digest in their headers, so they
cannot be inside it. Instead they are rendered *after* the digest is known, deterministically
from the plan content and the digest, and ``plan.json`` records the sha256 of each rendered
script (``hosts[i].scripts``). apply can check that the scripts on disk still match, or render
them again and compare.

Reading is strict: an unknown schema, a missing or unknown key, a value of the wrong type, or
a digest that does not match the content raises :class:`~agent.errors.FactsFileError` naming
the file and the key path (``hosts[0].actions[2].call.cmdlet``). A plan file is handed to
exfix by a user, so nothing in it is trusted.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from agent import pwsh
from agent.errors import FactsFileError
from agent.model.command import SWITCH, CmdletCall, Endpoint, ParamValue, Switch
from agent.model.finding_data import FindingData, data_from_dict
from agent.model.findings import DataValue, EvidenceItem, Finding, Level, Severity

SCHEMA = "exfix.plan/2"
# /1: hosts only. /2 adds the organisation's units ("organizations") and each finding's level
# and servers. exfix writes /2 and reads both; a /1 plan keeps its digest (it is encoded as /1).
SCHEMAS = ("exfix.plan/1", SCHEMA)

# A value before or after an action: plain, JSON-friendly, immutable (like evidence values).
PlanValue = DataValue

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KIND = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)+$")


def canonical_json(value: Any) -> bytes:
    """The canonical form hashed for digests and fingerprints: sorted keys, no whitespace,
    ASCII only (``\\uXXXX`` escapes), no NaN, UTF-8 bytes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FactArea(str, enum.Enum):
    """The slices of a host's facts an action can depend on (agent/fixes/fingerprint.py
    says exactly which fields each one covers)."""

    EXCHANGE_SERVER = "exchange-server"
    NIC_REGISTRATION = "nic-registration"  # key: InterfaceIndex
    NIC_DNS_SERVERS = "nic-dns-servers"  # key: InterfaceIndex
    TRANSPORT_EXTERNAL_DNS = "transport-external-dns"
    TRANSPORT_INTERNAL_DNS = "transport-internal-dns"
    SEND_CONNECTOR = "send-connector"  # key: connector name
    DOMAIN_CONNECTORS = "domain-connectors"  # key: remote domain
    DOMAIN_MAIL_HOSTS = "domain-mail-hosts"  # key: remote domain
    EDGE_CONFIG = "edge-config"


@dataclass(frozen=True, slots=True, order=True)
class FactRef:
    """One slice of facts an action depends on: an area, and which item of it ("" for the
    host-wide areas)."""

    area: FactArea
    key: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    """One property an action changes: its value in the facts the plan was made from, and the
    value apply must read back afterwards (through the action's ``read_back`` call). ``before``
    is None where the facts hold no value (a connector that does not exist yet, a service
    state exfix does not collect)."""

    property: str
    before: PlanValue
    after: PlanValue


@dataclass(frozen=True, slots=True)
class Action:
    """One cmdlet call that changes a host, with everything needed to review, verify and undo it.

    - ``call`` is what apply runs (Exchange endpoint: pypsrp add_cmdlet/add_parameter).
    - ``read_back`` returns the object whose ``changes[*].property`` values apply captures
      before the call and verifies after it (None where there is nothing to read back).
    - ``rollback`` undoes the call, computed from the before-state; empty when there is
      nothing to undo (Register-DnsClient, a backup copy, a restart).
    - ``disruptive``: the call interrupts mail flow (the MSExchangeTransport restart) and
      needs ``--allow-restart``.
    - ``restart_required``: the change takes effect only after MSExchangeTransport restarts,
      and so does its rollback.
    - ``manual``: apply reports the step and does not run it (set-dns-fault-tolerance edits a
      file on the server; its script is for a person).
    - ``fingerprint`` is ``fingerprint_for(depends_on, facts)`` at planning time; apply
      recomputes it from fresh facts and refuses the plan when it differs.
    """

    id: str
    kind: str  # a step its fix declares (agent/fixes: FixSpec.steps), e.g. "set-nic-dns-servers"
    fix_id: str
    call: CmdletCall
    description: str
    changes: tuple[Change, ...]
    read_back: CmdletCall | None
    rollback: tuple[CmdletCall, ...]
    disruptive: bool
    restart_required: bool
    manual: bool
    finding_ids: tuple[str, ...]
    depends_on: tuple[FactRef, ...]
    fingerprint: str

    @property
    def endpoint(self) -> Endpoint:
        return self.call.endpoint


class AdvisoryKind(str, enum.Enum):
    """Why a finding produced advice instead of an action."""

    NO_FIX = "no-fix"  # the rule has no fix: the cause is outside the host (firewall, remote DNS)
    MISSING_VARIABLE = "missing-variable"  # the fix needs a value only the admin can choose
    NO_SERVER_LEFT = "no-server-left"  # dropping the bad DNS servers would leave none
    NO_CANDIDATE = "no-candidate"  # no server or address was found to put in their place
    CANNOT_PLAN = "cannot-plan"  # the finding's data cannot be planned safely (said why)


@dataclass(frozen=True, slots=True)
class Advisory:
    """What exfix will not change, and what a person has to do instead."""

    kind: AdvisoryKind
    fix_id: str | None
    finding_ids: tuple[str, ...]
    message: str
    variable: str | None = None  # MISSING_VARIABLE: the inventory variable to set


REMEDIATE_SCRIPT = "remediate.ps1"
ROLLBACK_SCRIPT = "rollback.ps1"
SCRIPT_NAMES = (REMEDIATE_SCRIPT, ROLLBACK_SCRIPT)

TRANSPORT_SERVICE = "MSExchangeTransport"
RESTART_KIND = "restart-transport"  # the one step every fix needing a restart shares


def restart_transport_call() -> CmdletCall:
    return CmdletCall(Endpoint.OS, "Restart-Service", (("Name", TRANSPORT_SERVICE),))


@dataclass(frozen=True, slots=True)
class HostPlan:
    """Everything planned for one unit: a host, or (``level`` ORGANIZATION) the organisation.
    ``directory`` is the safe, unique directory name under ``hosts/`` holding its scripts.
    ``scripts`` maps script name to the sha256 of its rendered text; it is filled after the
    digest is known and is not part of the digest.

    An organisation's unit changes what lives in Active Directory (a send connector), once for
    all its servers: ``organization`` names it, ``servers`` are the servers its findings affect,
    and ``host`` is the server apply runs it through (and re-reads for the drift check)."""

    host: str
    directory: str
    fqdn: str
    exchange_version: str
    findings: tuple[Finding, ...]
    actions: tuple[Action, ...]
    advisories: tuple[Advisory, ...]
    fingerprint: str
    scripts: tuple[tuple[str, str], ...] = ()
    level: Level = Level.HOST
    organization: str = ""
    servers: tuple[str, ...] = ()

    @property
    def automatic(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if not a.manual)

    @property
    def manual(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.manual)

    @property
    def disruptive(self) -> bool:
        """True when carrying out the plan for this host interrupts mail flow."""
        return any(a.disruptive for a in self.actions)

    def script_sha256(self, name: str) -> str:
        for script, digest in self.scripts:
            if script == name:
                return digest
        raise KeyError(name)

    def rollback_calls(self) -> tuple[CmdletCall, ...]:
        """What rollback.ps1 runs, in order: every action's rollback, last action first, then
        one MSExchangeTransport restart when an undone change only takes effect after one."""
        calls: list[CmdletCall] = []
        needs_restart = False
        for action in reversed(self.actions):
            calls.extend(action.rollback)
            needs_restart = needs_restart or (action.restart_required and bool(action.rollback))
        if needs_restart:
            calls.append(restart_transport_call())
        return tuple(calls)


class SourceKind(str, enum.Enum):
    """How apply reaches the plan's hosts again."""

    INVENTORY = "inventory"  # value: the inventory file, an absolute path
    LAB = "lab"  # value: the lab scenario, a shipped name or an absolute path


@dataclass(frozen=True, slots=True)
class PlanSource:
    """Where the plan's hosts came from, so ``exfix apply`` can reach them again without being
    told. Never a secret: an inventory *path* (the file may hold a password; the plan does not)
    or a lab scenario name."""

    kind: SourceKind
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "value": self.value}

    def describe(self) -> str:
        return f"{self.kind.value} {self.value}"


@dataclass(frozen=True, slots=True)
class Plan:
    """A fleet's plan. ``source`` (inside the digest: the change board approves where the plan
    applies too) says how to reach the hosts again; None for plans built from saved facts."""

    schema: str
    hosts: tuple[HostPlan, ...]
    digest: str
    source: PlanSource | None = None
    organizations: tuple[HostPlan, ...] = ()

    @property
    def units(self) -> tuple[HostPlan, ...]:
        """Every unit in the order apply runs them: the organisations' first (what the
        servers share), then the hosts."""
        return self.organizations + self.hosts

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(a for u in self.units for a in u.actions)

    @property
    def disruptive(self) -> bool:
        return any(u.disruptive for u in self.units)

    def host(self, name: str) -> HostPlan:
        for host in self.hosts:
            if host.host == name:
                return host
        raise KeyError(name)

    def content_dict(self) -> dict[str, Any]:
        """The part of plan.json the digest covers."""
        out = self._dict(scripts=False)
        del out["digest"]
        return out

    def _dict(self, *, scripts: bool) -> dict[str, Any]:
        v1 = self.schema == SCHEMAS[0]
        out: dict[str, Any] = {
            "schema": self.schema,
            "digest": self.digest,
            "source": None if self.source is None else self.source.to_dict(),
            "hosts": [_host_to_dict(h, scripts=scripts, v1=v1) for h in self.hosts],
        }
        if not v1:
            out["organizations"] = [_host_to_dict(o, scripts=scripts, v1=False) for o in self.organizations]
        return out

    def compute_digest(self) -> str:
        return content_digest(self.content_dict())

    def to_dict(self) -> dict[str, Any]:
        return self._dict(scripts=True)

    def to_json(self) -> str:
        # ensure_ascii: a bidi override or an escape sequence in a host value stays an escape.
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=True) + "\n"


def content_digest(content: Mapping[str, Any]) -> str:
    return sha256_hex(canonical_json(content))


# --- encoding -------------------------------------------------------------------------------


def _value_to_json(value: ParamValue) -> Any:
    if isinstance(value, Switch):
        return {"switch": True}
    if isinstance(value, tuple):
        return list(value)
    return value


def call_to_dict(call: CmdletCall) -> dict[str, Any]:
    return {
        "endpoint": call.endpoint.value,
        "cmdlet": call.cmdlet,
        "parameters": [[name, _value_to_json(value)] for name, value in call.parameters],
    }


def _change_to_dict(change: Change) -> dict[str, Any]:
    return {
        "property": change.property,
        "before": _value_to_json(change.before),
        "after": _value_to_json(change.after),
    }


def action_to_dict(action: Action) -> dict[str, Any]:
    return {
        "id": action.id,
        "kind": action.kind,
        "fix_id": action.fix_id,
        "description": action.description,
        "call": call_to_dict(action.call),
        "read_back": None if action.read_back is None else call_to_dict(action.read_back),
        "changes": [_change_to_dict(c) for c in action.changes],
        "rollback": [call_to_dict(c) for c in action.rollback],
        "disruptive": action.disruptive,
        "restart_required": action.restart_required,
        "manual": action.manual,
        "finding_ids": list(action.finding_ids),
        "depends_on": [{"area": d.area.value, "key": d.key} for d in action.depends_on],
        "fingerprint": action.fingerprint,
    }


def _advisory_to_dict(advisory: Advisory) -> dict[str, Any]:
    return {
        "kind": advisory.kind.value,
        "fix_id": advisory.fix_id,
        "finding_ids": list(advisory.finding_ids),
        "message": advisory.message,
        "variable": advisory.variable,
    }


def _finding_to_dict(finding: Finding, *, v1: bool) -> dict[str, Any]:
    out = finding.to_dict()
    if v1:  # /1 findings had no level and servers (every one was a host's)
        del out["level"], out["servers"]
    return out


def _host_to_dict(host: HostPlan, *, scripts: bool, v1: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "host": host.host,
        "directory": host.directory,
        "fqdn": host.fqdn,
        "exchange_version": host.exchange_version,
        "fingerprint": host.fingerprint,
        "findings": [_finding_to_dict(f, v1=v1) for f in host.findings],
        "actions": [action_to_dict(a) for a in host.actions],
        "advisories": [_advisory_to_dict(a) for a in host.advisories],
    }
    if host.level is Level.ORGANIZATION:
        out["organization"] = host.organization
        out["servers"] = list(host.servers)
    if scripts:
        out["scripts"] = dict(host.scripts)
    return out


# --- strict decoding ------------------------------------------------------------------------

E = TypeVar("E", bound=enum.Enum)
T = TypeVar("T")


class _Reader:
    """Reads one JSON object strictly: every key must be read, none may be left over."""

    def __init__(self, source: str, data: Any, key: str, version: int = 2) -> None:
        self.source = source
        self.key = key
        self.version = version  # the plan.json schema version being read
        if not isinstance(data, dict):
            raise self.fail("", f"must be an object, not {_kind(data)}")
        self.data: dict[str, Any] = data
        self.seen: set[str] = set()

    def where(self, name: str) -> str:
        if not name:
            return self.key
        if name.startswith("["):
            return f"{self.key}{name}"
        return f"{self.key}.{name}" if self.key else name

    def fail(self, name: str, problem: str) -> FactsFileError:
        return FactsFileError(self.source, problem, key=self.where(name) or None)

    def raw(self, name: str) -> Any:
        self.seen.add(name)
        if name not in self.data:
            raise self.fail(name, "missing")
        return self.data[name]

    def text(self, name: str, *, pattern: re.Pattern[str] | None = None) -> str:
        value = self.raw(name)
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, not {_kind(value)}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(name, f"is not of the expected form ({pattern.pattern})")
        return value

    def opt_text(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string or null, not {_kind(value)}")
        return value

    def boolean(self, name: str) -> bool:
        value = self.raw(name)
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, not {_kind(value)}")
        return value

    def enum(self, name: str, cls: type[E]) -> E:
        value = self.text(name)
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in cls)
            raise self.fail(name, f"{value!r} is not one of: {allowed}") from None

    def items(self, name: str) -> list[Any]:
        value = self.raw(name)
        if not isinstance(value, list):
            raise self.fail(name, f"must be a list, not {_kind(value)}")
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        items = self.items(name)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise self.fail(f"{name}[{i}]", f"must be a string, not {_kind(item)}")
        return tuple(items)

    def objects(self, name: str, read: Callable[[_Reader], T]) -> tuple[T, ...]:
        out = []
        for i, item in enumerate(self.items(name)):
            child = _Reader(self.source, item, self.where(f"{name}[{i}]"), self.version)
            out.append(child.finish(read(child)))
        return tuple(out)

    def object(self, name: str, read: Callable[[_Reader], T]) -> T:
        child = _Reader(self.source, self.raw(name), self.where(name), self.version)
        return child.finish(read(child))

    def finish(self, result: T) -> T:
        unknown = [k for k in self.data if k not in self.seen]
        if unknown:
            raise self.fail(str(unknown[0]), "unknown key")
        return result


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _data_value(reader: _Reader, name: str, value: Any) -> DataValue:
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return tuple(value)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(value)
        raise reader.fail(name, "a list must hold only strings or only integers")
    raise reader.fail(name, f"must be a string, integer, boolean, null or list, not {_kind(value)}")


def _param_value(reader: _Reader, name: str, value: Any) -> ParamValue:
    if isinstance(value, dict):
        if value == {"switch": True}:
            return SWITCH
        raise reader.fail(name, 'an object here must be {"switch": true}')
    return _data_value(reader, name, value)


def _read_call(reader: _Reader) -> CmdletCall:
    endpoint = reader.enum("endpoint", Endpoint)
    cmdlet = reader.text("cmdlet")
    try:
        pwsh.check_cmdlet(cmdlet)
    except ValueError as exc:
        raise reader.fail("cmdlet", str(exc)) from None
    params: list[tuple[str, ParamValue]] = []
    for i, pair in enumerate(reader.items("parameters")):
        where = f"parameters[{i}]"
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
            raise reader.fail(where, "must be a [name, value] pair")
        try:
            pwsh.check_parameter(pair[0])
        except ValueError as exc:
            raise reader.fail(where, str(exc)) from None
        params.append((pair[0], _param_value(reader, where, pair[1])))
    return CmdletCall(endpoint, cmdlet, tuple(params))


def _read_change(reader: _Reader) -> Change:
    return Change(
        property=reader.text("property"),
        before=_data_value(reader, "before", reader.raw("before")),
        after=_data_value(reader, "after", reader.raw("after")),
    )


def _read_ref(reader: _Reader) -> FactRef:
    return FactRef(reader.enum("area", FactArea), reader.text("key"))


def _read_action(reader: _Reader) -> Action:
    read_back_raw = reader.raw("read_back")
    read_back = None if read_back_raw is None else reader.object("read_back", _read_call)
    return Action(
        id=reader.text("id"),
        kind=reader.text("kind", pattern=_KIND),
        fix_id=reader.text("fix_id"),
        description=reader.text("description"),
        call=reader.object("call", _read_call),
        read_back=read_back,
        changes=reader.objects("changes", _read_change),
        rollback=reader.objects("rollback", _read_call),
        disruptive=reader.boolean("disruptive"),
        restart_required=reader.boolean("restart_required"),
        manual=reader.boolean("manual"),
        finding_ids=reader.strings("finding_ids"),
        depends_on=reader.objects("depends_on", _read_ref),
        fingerprint=reader.text("fingerprint", pattern=_SHA256),
    )


def _read_advisory(reader: _Reader) -> Advisory:
    return Advisory(
        kind=reader.enum("kind", AdvisoryKind),
        fix_id=reader.opt_text("fix_id"),
        finding_ids=reader.strings("finding_ids"),
        message=reader.text("message"),
        variable=reader.opt_text("variable"),
    )


def _read_values(reader: _Reader, name: str) -> tuple[tuple[str, DataValue], ...]:
    raw = reader.raw(name)
    if not isinstance(raw, dict):
        raise reader.fail(name, f"must be an object, not {_kind(raw)}")
    return tuple((k, _data_value(reader, f"{name}.{k}", v)) for k, v in raw.items())


def _read_evidence(reader: _Reader) -> EvidenceItem:
    return EvidenceItem(
        source=reader.text("source"),
        vantage=reader.opt_text("vantage"),
        subject=reader.text("subject"),
        values=_read_values(reader, "values"),
    )


def _read_data(reader: _Reader, rule_id: str) -> FindingData | None:
    """The finding's data as its rule's data class (agent/model/finding_data.py); ``{}`` is a
    finding without data, as ``Finding.to_dict`` writes one."""
    raw = reader.raw("data")
    if raw == {}:
        return None
    try:
        return data_from_dict(rule_id, raw, source=reader.source)
    except FactsFileError as exc:
        raise reader.fail("data" if exc.key is None else f"data.{exc.key}", exc.problem) from None


def _read_finding(reader: _Reader) -> Finding:
    rule_id = reader.text("rule_id")
    finding = Finding(
        rule_id=rule_id,
        host=reader.text("host"),
        subject=reader.text("subject"),
        severity=reader.enum("severity", Severity),
        title=reader.text("title"),
        summary=reader.text("summary"),
        evidence=reader.objects("evidence", _read_evidence),
        fix_id=reader.opt_text("fix_id"),
        fix_disrupts_mail_flow=reader.boolean("fix_disrupts_mail_flow"),
        data=_read_data(reader, rule_id),
        explained_by=reader.strings("explained_by"),
        level=reader.enum("level", Level) if reader.version >= 2 else Level.HOST,
        servers=reader.strings("servers") if reader.version >= 2 else (),
    )
    if reader.text("id") != finding.id:
        raise reader.fail("id", "does not match rule_id|host|subject")
    return finding


def _read_org(reader: _Reader) -> HostPlan:
    return dataclasses.replace(
        _read_host(reader),
        level=Level.ORGANIZATION,
        organization=reader.text("organization"),
        servers=reader.strings("servers"),
    )


def _read_host(reader: _Reader) -> HostPlan:
    host = HostPlan(
        host=reader.text("host"),
        directory=reader.text("directory"),
        fqdn=reader.text("fqdn"),
        exchange_version=reader.text("exchange_version"),
        fingerprint=reader.text("fingerprint", pattern=_SHA256),
        findings=reader.objects("findings", _read_finding),
        actions=reader.objects("actions", _read_action),
        advisories=reader.objects("advisories", _read_advisory),
    )
    scripts_raw = reader.raw("scripts")
    if not isinstance(scripts_raw, dict):
        raise reader.fail("scripts", f"must be an object, not {_kind(scripts_raw)}")
    if sorted(scripts_raw) != sorted(SCRIPT_NAMES):
        raise reader.fail("scripts", f"must name exactly {', '.join(SCRIPT_NAMES)}")
    scripts = []
    for name in SCRIPT_NAMES:
        value = scripts_raw[name]
        if not isinstance(value, str) or not _SHA256.match(value):
            raise reader.fail(f"scripts.{name}", "must be a sha256 in lower-case hex")
        scripts.append((name, value))
    return dataclasses.replace(host, scripts=tuple(scripts))


_DIRECTORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


def _read_source(reader: _Reader) -> PlanSource:
    kind = reader.enum("kind", SourceKind)
    value = reader.text("value")
    if not value.strip() or not value.isprintable():
        raise reader.fail("value", "must be a non-empty printable string")
    return PlanSource(kind, value)


def plan_from_dict(
    data: Any, *, source: str = "<plan>", check_digest: bool = True, kinds: Collection[str] | None = None
) -> Plan:
    """A Plan from parsed plan.json. Raises FactsFileError (file, key) on anything unexpected,
    including a digest that does not match the content (unless ``check_digest`` is False:
    apply checks it itself, to refuse such a plan as unapproved rather than malformed), and,
    given ``kinds`` (the step kinds the fix catalogue declares: agent/fixes/registry.py), an
    action of any other kind."""
    reader = _Reader(source, data, "")
    schema = reader.raw("schema")
    if schema not in SCHEMAS:
        raise reader.fail("schema", f"expected one of {', '.join(map(repr, SCHEMAS))}, found {schema!r}")
    reader.version = SCHEMAS.index(schema) + 1
    digest = reader.text("digest", pattern=_SHA256)
    plan_source = None if reader.raw("source") is None else reader.object("source", _read_source)
    hosts = reader.objects("hosts", _read_host)
    orgs = reader.objects("organizations", _read_org) if reader.version >= 2 else ()
    reader.finish(None)
    seen: set[str] = set()
    for group, units in (("organizations", orgs), ("hosts", hosts)):
        for i, unit in enumerate(units):
            if not _DIRECTORY.match(unit.directory) or unit.directory.casefold() in seen:
                raise FactsFileError(
                    source, "not a safe, unique directory name", key=f"{group}[{i}].directory"
                )
            seen.add(unit.directory.casefold())
            for j, action in enumerate(unit.actions):
                if kinds is not None and action.kind not in kinds:
                    raise FactsFileError(source, f"unknown action kind {action.kind!r}",
                                         key=f"{group}[{i}].actions[{j}].kind")  # fmt: skip
    plan = Plan(schema=schema, hosts=hosts, digest=digest, source=plan_source, organizations=orgs)
    if check_digest and plan.compute_digest() != digest:
        raise FactsFileError(source, "does not match the plan content (the file was changed)", key="digest")
    return plan


def plan_from_json(
    text: str, *, source: str = "<plan>", check_digest: bool = True, kinds: Collection[str] | None = None
) -> Plan:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactsFileError(source, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    return plan_from_dict(data, source=source, check_digest=check_digest, kinds=kinds)


def call_from_dict(data: Any, *, source: str, key: str) -> CmdletCall:
    """One structured call (as ``call_to_dict`` writes it), read as strictly as in plan.json;
    for other files that record calls (the apply journal). Raises FactsFileError."""
    reader = _Reader(source, data, key)
    return reader.finish(_read_call(reader))


def change_from_dict(data: Any, *, source: str, key: str) -> Change:
    reader = _Reader(source, data, key)
    return reader.finish(_read_change(reader))


def value_from_json(value: Any, *, source: str, key: str) -> PlanValue:
    """A before/after value as plan.json and the journal write it. Raises FactsFileError."""
    return _data_value(_Reader(source, {}, ""), key, value)


def with_scripts(host: HostPlan, scripts: Mapping[str, str]) -> HostPlan:
    """``host`` with the sha256 of its rendered scripts recorded."""
    return dataclasses.replace(host, scripts=tuple((name, scripts[name]) for name in SCRIPT_NAMES))


# --- planning inputs ------------------------------------------------------------------------

EXTERNAL_DNS_VARIABLE = "exfix_external_dns_servers"


@dataclass(frozen=True, slots=True)
class HostVars:
    """What the admin chose for a host in the inventory that planning needs. exfix never
    invents these: without them the fix that needs them becomes an advisory naming the
    variable."""

    external_dns_servers: tuple[str, ...] = ()  # exfix_external_dns_servers
