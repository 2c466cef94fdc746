"""The plan: structured actions per host, what they depend on, and the digest a change board
approves.

A plan is written as ``plan.json`` (``"schema": "exfix.plan/4"``) beside one remediate.ps1 and
one rollback.ps1 per host, REVIEW.md and review.html (agent/review/bundle.py). apply executes
the structured calls held here, not the scripts; the scripts are rendered from the same calls
(agent/planning/render.py) and a test proves that they parse back to exactly these calls.

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
script (``hosts[i].scripts``). Those hashes are outside the digest, so they prove nothing to
apply: it renders every script and page again from the content and the digest and compares
them byte for byte with the files on disk (agent/review/bundle.py: ``bundle_problems``).

Reading is agent/model/document.py's, onto the file's shape declared here (``_PlanV1`` to
``_PlanV4`` and the dataclasses they hold), and strict: an unknown schema, a missing or unknown
key, a value of the wrong type, or a digest that does not match the content raises
:class:`~agent.errors.FactsFileError` naming the file and the key path
(``hosts[0].actions[2].call.cmdlet``). A plan file is handed to
exfix by a user, so nothing in it is trusted.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent import pwsh
from agent.errors import FactsFileError
from agent.model.command import SWITCH, CmdletCall, Endpoint, ParamValue, Switch
from agent.model.document import (
    Document,
    Invalid,
    KeyOptions,
    KeyPath,
    Loaded,
    between,
    each,
    encode,
    key,
    kind,
    text,
)
from agent.model.facts import AreaIssue, CollectionArea
from agent.model.finding_data import FindingData, data_from_dict
from agent.model.findings import DataValue, EvidenceItem, Finding, Level, NotJudged, Severity
from agent.model.probe import PROBE_REPEAT_MAX

SCHEMA = "exfix.plan/4"
# /1: hosts only. /2 adds the organisation's units ("organizations") and each finding's level
# and servers. /3 adds to every unit what stands in the way of each finding no automatic step
# addresses ("outstanding") and what the plan's steps would break and how the plan prevents it
# ("consequences"). /4 adds to each host unit the fact areas that could not be collected on the
# host ("failed_areas") and the rules not judged there because of them ("not_judged"): the
# change board approves knowing what was not looked at. exfix writes /4 and reads all four; an
# older plan keeps its digest (it is encoded as it was written). With /4, every file of the plan
# directory (the scripts, REVIEW.md, review.html, plan.json itself) is rendered from the approved
# content alone, so apply renders them again and compares them byte for byte
# (agent/review/bundle.py); apply refuses older plans, whose pages cannot be checked.
SCHEMAS = ("exfix.plan/1", "exfix.plan/2", "exfix.plan/3", SCHEMA)

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
    FIREWALL_RULE = "firewall-rule"  # key: the rule's Name
    FIREWALL_PROFILE = "firewall-profile"  # key: the profile's Name (Domain)


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
    WOULD_BREAK = "would-break"  # its step would create another fault the plan cannot prevent


@dataclass(frozen=True, slots=True)
class Advisory:
    """What exfix will not change, and what a person has to do instead."""

    kind: AdvisoryKind
    fix_id: str | None
    finding_ids: tuple[str, ...]
    message: str
    variable: str | None = None  # MISSING_VARIABLE: the inventory variable to set


class Resolution(str, enum.Enum):
    """What a plan does about a fault its own steps would create."""

    PREVENTED = "prevented"  # it adds the steps that keep the fault from happening
    REFUSED = "refused"  # it leaves out the steps that would cause it


@dataclass(frozen=True, slots=True)
class Consequence:
    """A finding the plan's steps would create, predicted before anything runs: the facts as
    they would be after every step of the plan, judged by the rules with the probes exfix
    already made (what each DNS server can resolve). ``caused_by`` and ``prevented_by`` are the
    descriptions of the steps that cause it and of the steps added to prevent it (none when
    refused); ``message`` says it in plain words."""

    finding: Finding
    caused_by: tuple[str, ...]
    resolution: Resolution
    prevented_by: tuple[str, ...]
    message: str


class Blocker(str, enum.Enum):
    """What stands in the way of a finding that no automatic step of the plan addresses."""

    VARIABLE = "variable"  # a value only the admin can choose: set it in the inventory, plan again
    REFUSED = "refused"  # exfix left its step out: it would create another fault
    MANUAL = "manual"  # a step for a person, in the unit's remediate.ps1
    ADVICE = "advice"  # nothing exfix changes: the advice says what a person has to do
    CAUSE = "cause"  # a symptom: its causes are outstanding (or none was found)


@dataclass(frozen=True, slots=True)
class Outstanding:
    """One finding the plan does not make go away by itself, and what stands in the way."""

    finding_id: str
    rule_id: str
    blocker: Blocker
    message: str
    variable: str | None = None  # VARIABLE (and REFUSED, where a variable would lift it)


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
    outstanding: tuple[Outstanding, ...] = ()  # exfix.plan/3
    consequences: tuple[Consequence, ...] = ()  # exfix.plan/3
    # A host unit (exfix.plan/4): the fact areas that could not be collected on the host, and
    # the rules not judged there because of them: what the plan could not take into account.
    failed_areas: tuple[AreaIssue, ...] = ()
    not_judged: tuple[NotJudged, ...] = ()

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
    # How many probe rounds the plan's findings rest on (exfix plan --probe-repeat). apply
    # collects again with as many, before and after its steps: with fewer, an intermittent
    # server's finding would vanish after the change, and apply would count that as cured.
    probe_repeat: int = 1

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
        version = _version(self.schema)
        out: dict[str, Any] = {
            "schema": self.schema,
            "digest": self.digest,
            "source": None if self.source is None else self.source.to_dict(),
            "hosts": [_host_to_dict(h, scripts=scripts, version=version) for h in self.hosts],
        }
        if version >= 2:
            out["organizations"] = [
                _host_to_dict(o, scripts=scripts, version=version) for o in self.organizations
            ]
        if version >= 4:
            out["probe_repeat"] = self.probe_repeat
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
    return {"switch": True} if isinstance(value, Switch) else value


# The leaves of plan.json (a call, an action, an advisory) are written by ``encode`` from the
# same file shapes they are read with (declared in file order, below), so that the two cannot
# drift apart. A unit and the plan itself are written by hand: which keys they hold depends on
# the schema version, the unit's level, and whether the scripts' hashes are included.


def _call_file(call: CmdletCall) -> _CallFile:
    return _CallFile(call.endpoint, call.cmdlet, tuple((n, _value_to_json(v)) for n, v in call.parameters))


def call_to_dict(call: CmdletCall) -> dict[str, Any]:
    encoded: dict[str, Any] = encode(_call_file(call))
    return encoded


def action_to_dict(action: Action) -> dict[str, Any]:
    encoded: dict[str, Any] = encode(
        _ActionFile(
            id=action.id,
            kind=action.kind,
            fix_id=action.fix_id,
            description=action.description,
            call=_call_file(action.call),
            read_back=None if action.read_back is None else _call_file(action.read_back),
            changes=tuple(_ChangeFile(c.property, c.before, c.after) for c in action.changes),
            rollback=tuple(_call_file(c) for c in action.rollback),
            disruptive=action.disruptive,
            restart_required=action.restart_required,
            manual=action.manual,
            finding_ids=action.finding_ids,
            depends_on=tuple(_RefFile(d.area, d.key) for d in action.depends_on),
            fingerprint=action.fingerprint,
        )
    )
    return encoded


def _advisory_to_dict(advisory: Advisory) -> dict[str, Any]:
    a = advisory
    encoded: dict[str, Any] = encode(_AdvisoryFile(a.kind, a.fix_id, a.finding_ids, a.message, a.variable))
    return encoded


def _version(schema: str) -> int:
    """1 to 4: the exfix.plan/N a plan is written as."""
    return SCHEMAS.index(schema) + 1 if schema in SCHEMAS else len(SCHEMAS)


def _finding_to_dict(finding: Finding, *, v1: bool) -> dict[str, Any]:
    out = finding.to_dict()
    if v1:  # /1 findings had no level and servers (every one was a host's)
        del out["level"], out["servers"]
    return out


def _outstanding_to_dict(item: Outstanding) -> dict[str, Any]:
    encoded: dict[str, Any] = encode(
        _OutstandingFile(item.finding_id, item.rule_id, item.blocker, item.message, item.variable)
    )
    return encoded


def _consequence_to_dict(item: Consequence) -> dict[str, Any]:
    return {
        "finding": _finding_to_dict(item.finding, v1=False),
        "caused_by": list(item.caused_by),
        "resolution": item.resolution.value,
        "prevented_by": list(item.prevented_by),
        "message": item.message,
    }


def _host_to_dict(host: HostPlan, *, scripts: bool, version: int) -> dict[str, Any]:
    v1 = version == 1
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
    if version >= 3:
        out["outstanding"] = [_outstanding_to_dict(o) for o in host.outstanding]
        out["consequences"] = [_consequence_to_dict(c) for c in host.consequences]
    if version >= 4 and host.level is Level.HOST:
        out["failed_areas"] = [{"area": i.area.value, "reason": i.reason} for i in host.failed_areas]
        out["not_judged"] = [j.to_dict() for j in host.not_judged]
    if host.level is Level.ORGANIZATION:
        out["organization"] = host.organization
        out["servers"] = list(host.servers)
    if scripts:
        out["scripts"] = dict(host.scripts)
    return out


# --- strict decoding ------------------------------------------------------------------------
#
# plan.json is read by agent/model/document.py onto the file's own shape (the ``_*File``
# dataclasses below: every key required, as exfix writes them all), then turned into the model.
# The shape differs from the model where the file is looser than the model's types (a
# parameter is a ``[name, value]`` pair, a value is plain JSON checked by ``_data_value``) or
# stricter (no defaults: a missing key is an error). What is not shape (a finding's id, the
# data typed by its rule, unique directories, the step kinds, the digest) is checked after.


def _data_value(value: Any) -> DataValue:
    """A before/after or evidence value: a string, integer, boolean, null, or a list of only
    strings or only integers. Raises ValueError."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):
            return tuple(value)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(value)
        raise ValueError("a list must hold only strings or only integers")
    raise ValueError(f"must be a string, integer, boolean, null or list, not {kind(value)}")


def _param_value(value: Any) -> ParamValue:
    if isinstance(value, Mapping):
        if value == {"switch": True}:
            return SWITCH
        raise ValueError('an object here must be {"switch": true}')
    return _data_value(value)


def _cmdlet(name: str) -> str:
    pwsh.check_cmdlet(name)
    return name


def _parameter(pair: Any) -> tuple[str, ParamValue]:
    if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str)):
        raise ValueError("must be a [name, value] pair")
    pwsh.check_parameter(pair[0])
    return (pair[0], _param_value(pair[1]))


def _values(values: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, DataValue], ...]:
    out = []
    for name, value in values:
        try:
            out.append((name, _data_value(value)))
        except ValueError as exc:
            raise Invalid(str(exc), at=(name,)) from None
    return tuple(out)


def _scripts(scripts: Mapping[str, Any]) -> Mapping[str, Any]:
    if sorted(scripts) != sorted(SCRIPT_NAMES):
        raise ValueError(f"must name exactly {', '.join(SCRIPT_NAMES)}")
    for name in SCRIPT_NAMES:
        if not isinstance(scripts[name], str) or not _SHA256.match(scripts[name]):
            raise Invalid("must be a sha256 in lower-case hex", at=(name,))
    return scripts


def _schema(value: str) -> str:
    if value not in SCHEMAS:
        raise ValueError(f"expected one of {', '.join(map(repr, SCHEMAS))}, found {value!r}")
    return value


def _printable(value: str) -> str:
    if not value.strip() or not value.isprintable():
        raise ValueError("must be a non-empty printable string")
    return value


def _form(pattern: re.Pattern[str]) -> dict[str, KeyOptions]:
    form = f"is not of the expected form ({pattern.pattern})"
    return key(check=text(limit=None, pattern=pattern, form=form))


_SHA256_KEY = _form(_SHA256)
# Plain JSON, checked (and lists made tuples) by the field's check rather than by a union of
# types: a list mixing strings and numbers is refused at the value's own key.
_VALUE_KEY = key(check=_data_value)


@dataclass(frozen=True)
class _CallFile:
    endpoint: Endpoint
    cmdlet: str = field(metadata=key(check=_cmdlet))
    parameters: tuple[Any, ...] = field(metadata=key(check=each(_parameter)))


@dataclass(frozen=True)
class _ChangeFile:
    property: str
    before: Any = field(metadata=_VALUE_KEY)
    after: Any = field(metadata=_VALUE_KEY)


@dataclass(frozen=True)
class _RefFile:
    area: FactArea
    key: str


@dataclass(frozen=True)
class _ActionFile:
    id: str
    kind: str = field(metadata=_form(_KIND))
    fix_id: str
    description: str
    call: _CallFile
    read_back: _CallFile | None
    changes: tuple[_ChangeFile, ...]
    rollback: tuple[_CallFile, ...]
    disruptive: bool
    restart_required: bool
    manual: bool
    finding_ids: tuple[str, ...]
    depends_on: tuple[_RefFile, ...]
    fingerprint: str = field(metadata=_SHA256_KEY)


@dataclass(frozen=True)
class _AdvisoryFile:
    kind: AdvisoryKind
    fix_id: str | None
    finding_ids: tuple[str, ...]
    message: str
    variable: str | None


@dataclass(frozen=True)
class _EvidenceFile:
    source: str
    vantage: str | None
    subject: str
    values: tuple[tuple[str, Any], ...] = field(metadata=key(as_mapping=True, check=_values))


@dataclass(frozen=True)
class _FindingV1:
    """A finding as exfix.plan/1 wrote it (every one a host's)."""

    id: str
    rule_id: str
    host: str
    subject: str
    severity: Severity
    title: str
    summary: str
    evidence: tuple[_EvidenceFile, ...]
    fix_id: str | None
    fix_disrupts_mail_flow: bool
    data: Any  # its rule's data class: which one depends on rule_id, read by _finding
    explained_by: tuple[str, ...]


@dataclass(frozen=True)
class _FindingV2(_FindingV1):
    level: Level
    servers: tuple[str, ...]


@dataclass(frozen=True)
class _HostFile:
    host: str
    directory: str
    fqdn: str
    exchange_version: str
    fingerprint: str = field(metadata=_SHA256_KEY)
    findings: tuple[Any, ...]  # _FindingV1 or _FindingV2 by the schema: read by _finding
    actions: tuple[_ActionFile, ...]
    advisories: tuple[_AdvisoryFile, ...]
    scripts: Mapping[str, Any] = field(metadata=key(check=_scripts))


@dataclass(frozen=True)
class _OrgFile(_HostFile):
    organization: str
    servers: tuple[str, ...]


@dataclass(frozen=True)
class _OutstandingFile:
    finding_id: str
    rule_id: str
    blocker: Blocker
    message: str
    variable: str | None


@dataclass(frozen=True)
class _ConsequenceFile:
    finding: Any  # a _FindingV2: read by _finding
    caused_by: tuple[str, ...]
    resolution: Resolution
    prevented_by: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class _HostFileV3(_HostFile):
    outstanding: tuple[_OutstandingFile, ...]
    consequences: tuple[_ConsequenceFile, ...]


@dataclass(frozen=True)
class _OrgFileV3(_HostFileV3):
    organization: str
    servers: tuple[str, ...]


@dataclass(frozen=True)
class _AreaIssueFile:
    area: CollectionArea
    reason: str


@dataclass(frozen=True)
class _NotJudgedFile:
    rule: str
    title: str
    areas: tuple[CollectionArea, ...]
    reason: str


@dataclass(frozen=True)
class _HostFileV4(_HostFileV3):
    failed_areas: tuple[_AreaIssueFile, ...]
    not_judged: tuple[_NotJudgedFile, ...]


@dataclass(frozen=True)
class _SourceFile:
    kind: SourceKind
    value: str = field(metadata=key(check=_printable))


@dataclass(frozen=True)
class _PlanV1:
    schema: str = field(metadata=key(check=_schema, first=True))
    digest: str = field(metadata=_SHA256_KEY)
    source: _SourceFile | None
    hosts: tuple[_HostFile, ...]


@dataclass(frozen=True)
class _PlanV2(_PlanV1):
    organizations: tuple[_OrgFile, ...]


@dataclass(frozen=True)
class _PlanV3:
    schema: str = field(metadata=key(check=_schema, first=True))
    digest: str = field(metadata=_SHA256_KEY)
    source: _SourceFile | None
    hosts: tuple[_HostFileV3, ...]
    organizations: tuple[_OrgFileV3, ...]


@dataclass(frozen=True)
class _PlanV4(_PlanV3):
    hosts: tuple[_HostFileV4, ...]
    probe_repeat: int = field(metadata=key(check=between(1, PROBE_REPEAT_MAX)))


_PlanFile = _PlanV1 | _PlanV2 | _PlanV3 | _PlanV4

PLAN_V1: Document[_PlanV1] = Document(_PlanV1, FactsFileError, what="a plan")
PLAN_V2: Document[_PlanV2] = Document(_PlanV2, FactsFileError, what="a plan")
PLAN_V3: Document[_PlanV3] = Document(_PlanV3, FactsFileError, what="a plan")
PLAN_V4: Document[_PlanV4] = Document(_PlanV4, FactsFileError, what="a plan")
_CALL = Document(_CallFile, FactsFileError, what="a cmdlet call")
_CHANGE = Document(_ChangeFile, FactsFileError, what="a change")


def _document(
    data: Any,
) -> Document[_PlanV1] | Document[_PlanV2] | Document[_PlanV3] | Document[_PlanV4]:
    """The shape to read ``data`` with: /1 has no organisations, /2 no outstanding findings and
    consequences, /3 no failed areas; anything else is read as /4, whose schema check names an
    unknown schema."""
    schema = data.get("schema") if isinstance(data, Mapping) else None
    if schema == SCHEMAS[0]:
        return PLAN_V1
    if schema == SCHEMAS[1]:
        return PLAN_V2
    if schema == SCHEMAS[2]:
        return PLAN_V3
    return PLAN_V4


def _call(c: _CallFile) -> CmdletCall:
    return CmdletCall(c.endpoint, c.cmdlet, c.parameters)


def _change(c: _ChangeFile) -> Change:
    return Change(c.property, c.before, c.after)


def _action(a: _ActionFile) -> Action:
    return Action(
        id=a.id,
        kind=a.kind,
        fix_id=a.fix_id,
        call=_call(a.call),
        description=a.description,
        changes=tuple(_change(c) for c in a.changes),
        read_back=None if a.read_back is None else _call(a.read_back),
        rollback=tuple(_call(c) for c in a.rollback),
        disruptive=a.disruptive,
        restart_required=a.restart_required,
        manual=a.manual,
        finding_ids=a.finding_ids,
        depends_on=tuple(FactRef(r.area, r.key) for r in a.depends_on),
        fingerprint=a.fingerprint,
    )


def _finding(loaded: Loaded[Any], raw: Any, path: KeyPath, v1: bool) -> Finding:
    f: _FindingV1 = loaded.read(_FindingV1 if v1 else _FindingV2, raw, path)
    data: FindingData | None = None
    if f.data != {}:  # {} is a finding without data, as Finding.to_dict writes one
        try:
            data = data_from_dict(f.rule_id, f.data, source=loaded.source)
        except FactsFileError as exc:
            inner = (*path, "data") if exc.key is None else (*path, "data", exc.key)
            raise loaded.fail(inner, exc.problem) from None
    finding = Finding(
        rule_id=f.rule_id,
        host=f.host,
        subject=f.subject,
        severity=f.severity,
        title=f.title,
        summary=f.summary,
        evidence=tuple(EvidenceItem(e.source, e.subject, e.values, e.vantage) for e in f.evidence),
        fix_id=f.fix_id,
        fix_disrupts_mail_flow=f.fix_disrupts_mail_flow,
        data=data,
        explained_by=f.explained_by,
        level=f.level if isinstance(f, _FindingV2) else Level.HOST,
        servers=f.servers if isinstance(f, _FindingV2) else (),
    )
    if f.id != finding.id:
        raise loaded.fail((*path, "id"), "does not match rule_id|host|subject")
    return finding


def _consequence(loaded: Loaded[Any], c: _ConsequenceFile, path: KeyPath) -> Consequence:
    finding = _finding(loaded, c.finding, (*path, "finding"), False)
    return Consequence(finding, c.caused_by, c.resolution, c.prevented_by, c.message)


def _unit(loaded: Loaded[Any], h: _HostFile | _HostFileV3, path: KeyPath, v1: bool) -> HostPlan:
    org = isinstance(h, (_OrgFile, _OrgFileV3))
    v3 = isinstance(h, _HostFileV3)
    v4 = h if isinstance(h, _HostFileV4) else None
    return HostPlan(
        host=h.host,
        directory=h.directory,
        fqdn=h.fqdn,
        exchange_version=h.exchange_version,
        findings=tuple(_finding(loaded, f, (*path, "findings", i), v1) for i, f in enumerate(h.findings)),
        actions=tuple(_action(a) for a in h.actions),
        advisories=tuple(
            Advisory(a.kind, a.fix_id, a.finding_ids, a.message, a.variable) for a in h.advisories
        ),
        fingerprint=h.fingerprint,
        scripts=tuple((name, h.scripts[name]) for name in SCRIPT_NAMES),
        level=Level.ORGANIZATION if org else Level.HOST,
        organization=h.organization if isinstance(h, (_OrgFile, _OrgFileV3)) else "",
        servers=h.servers if isinstance(h, (_OrgFile, _OrgFileV3)) else (),
        outstanding=tuple(
            Outstanding(o.finding_id, o.rule_id, o.blocker, o.message, o.variable)
            for o in (h.outstanding if isinstance(h, _HostFileV3) else ())
        ),
        consequences=tuple(
            _consequence(loaded, c, (*path, "consequences", i))
            for i, c in enumerate(h.consequences if isinstance(h, _HostFileV3) else ())
        )
        if v3
        else (),
        failed_areas=tuple(AreaIssue(i.area, i.reason) for i in v4.failed_areas) if v4 else (),
        not_judged=tuple(
            NotJudged(j.rule, h.host, j.title, tuple(a.value for a in j.areas), j.reason)
            for j in (v4.not_judged if v4 else ())
        ),
    )


def _plan(loaded: Loaded[Any], check_digest: bool, kinds: Collection[str] | None) -> Plan:
    read: _PlanFile = loaded.value
    v1 = read.schema == SCHEMAS[0]
    orgs = read.organizations if isinstance(read, (_PlanV2, _PlanV3, _PlanV4)) else ()
    units: dict[str, tuple[HostPlan, ...]] = {}
    seen: set[str] = set()
    for group, files in (("organizations", orgs), ("hosts", read.hosts)):
        out = []
        for i, file in enumerate(files):
            unit = _unit(loaded, file, (group, i), v1)
            if not _DIRECTORY.match(unit.directory) or unit.directory.casefold() in seen:
                raise loaded.fail((group, i, "directory"), "not a safe, unique directory name")
            seen.add(unit.directory.casefold())
            for j, action in enumerate(unit.actions):
                if kinds is not None and action.kind not in kinds:
                    where = (group, i, "actions", j, "kind")
                    raise loaded.fail(where, f"unknown action kind {action.kind!r}")
            out.append(unit)
        units[group] = tuple(out)
    source = None if read.source is None else PlanSource(read.source.kind, read.source.value)
    plan = Plan(
        schema=read.schema,
        hosts=units["hosts"],
        digest=read.digest,
        source=source,
        organizations=units["organizations"],
        probe_repeat=read.probe_repeat if isinstance(read, _PlanV4) else 1,
    )
    if check_digest and plan.compute_digest() != read.digest:
        raise loaded.fail(("digest",), "does not match the plan content (the file was changed)")
    return plan


_DIRECTORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


def plan_from_dict(
    data: Any, *, source: str = "<plan>", check_digest: bool = True, kinds: Collection[str] | None = None
) -> Plan:
    """A Plan from parsed plan.json. Raises FactsFileError (file, key) on anything unexpected,
    including a digest that does not match the content (unless ``check_digest`` is False:
    apply checks it itself, to refuse such a plan as unapproved rather than malformed), and,
    given ``kinds`` (the step kinds the fix catalogue declares: agent/fixes/registry.py), an
    action of any other kind."""
    return _plan(_document(data).read_data(data, source=source), check_digest, kinds)


def plan_from_json(
    text: str, *, source: str = "<plan>", check_digest: bool = True, kinds: Collection[str] | None = None
) -> Plan:
    """:func:`plan_from_dict` for the file's text; errors carry the line of their key."""
    data = PLAN_V4.parse_json(text, source=source)
    document = _document(data)
    try:
        return _plan(document.read_data(data, source=source), check_digest, kinds)
    except FactsFileError as exc:
        raise document.locate_in_json(text, source, exc) from None


def _nested(exc: FactsFileError, key: str) -> FactsFileError:
    """``exc``, raised for a value read on its own, with the key of where it lies in its file."""
    inner = key if exc.key is None else f"{key}{'' if exc.key.startswith('[') else '.'}{exc.key}"
    return FactsFileError(exc.path, exc.problem, line=exc.line, key=inner or None, host=exc.host)


def call_from_dict(data: Any, *, source: str, key: str) -> CmdletCall:
    """One structured call (as ``call_to_dict`` writes it), read as strictly as in plan.json;
    for other files that record calls (the apply journal). Raises FactsFileError."""
    try:
        return _call(_CALL.read_data(data, source=source).value)
    except FactsFileError as exc:
        raise _nested(exc, key) from None


def change_from_dict(data: Any, *, source: str, key: str) -> Change:
    try:
        return _change(_CHANGE.read_data(data, source=source).value)
    except FactsFileError as exc:
        raise _nested(exc, key) from None


def value_from_json(value: Any, *, source: str, key: str) -> PlanValue:
    """A before/after value as plan.json and the journal write it. Raises FactsFileError."""
    try:
        return _data_value(value)
    except ValueError as exc:
        raise FactsFileError(source, str(exc), key=key) from None


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
