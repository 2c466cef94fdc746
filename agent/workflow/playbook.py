"""Playbooks: what a ticket workflow may do, in a YAML file a change board can read.

A playbook names the rules it acts on, the fixes it may plan and the fixes it may apply, how
it runs (``mode``) and whether applying needs a person's approval. Everything else (the
inventory, the ticket id, the values of its variables) comes from the command line.

::

    name: dns-451-remediate              # lower-case words joined by '-'
    description: >-                      # plain language, shown by `exfix playbook list`
      ...
    rules: all                           # or a list: rule ids, or {id: RULE, subject: VALUE}
    fixes:
      plan: all                          # fix ids the playbook may plan ('all' or a list)
      apply: all                         # fix ids it may apply; always a subset of plan
    mode: apply                          # diagnose | plan | apply
    approval: required                   # required | auto (non-disruptive fixes only)
    allow_restart: true                  # may restart MSExchangeTransport once approved
    serial: 1                            # hosts restarting transport at once
    max_fail: 0                          # failed hosts tolerated before the rest are not started
    verify:
      retry_queues: true                 # Retry-Queue the affected queues after applying (always)
      timeout: 120                       # seconds to wait for them to drain
    variables:
      domain: {type: domain, description: ...}          # no default: --var domain=... required
      exfix_external_dns_servers: {type: address-list, default: []}

A ``subject`` may be a variable reference, the whole string ``${name}``; nothing else is
substituted anywhere (a playbook is data, never a template).

Reading is strict (agent/model/document.py reads the shape declared by ``_PlaybookFile``):
every problem is one :class:`~agent.errors.PlaybookError` naming the file, the line and the key
path (``fixes.apply[1]``). The rules of consistency, checked here after reading, and why:

- ``fixes.apply`` must be a subset of ``fixes.plan``: a fix is applied only as part of a plan
  that was written out for review.
- ``approval: auto`` is allowed only for fixes whose metadata says they do not disrupt mail
  flow (agent/rules/metadata.py), and never with ``allow_restart``: nothing that stops mail
  runs without a person's approval.
- With ``approval: required`` a playbook applies exactly what was approved, so
  ``fixes.apply`` must list the same fixes as ``fixes.plan``.
- ``mode: diagnose`` plans nothing; ``mode: plan`` applies nothing; ``mode: apply`` needs
  something to apply.
- Every fix must fix a rule the playbook acts on.
- A fix whose planner also emits another fix's steps (``FixSpec.plans_steps_of``:
  allow-dns-through-firewall turns matching block rules off with disable-dns-firewall-block's
  step) is listed only with that fix beside it, in ``fixes.plan`` and in ``fixes.apply``: a
  playbook runs only the fixes it names.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import re
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent.errors import PlaybookError, UsageError
from agent.fixes.registry import RULE_FIXES as FIXES
from agent.model.document import Document, KeyPath, Loaded, between, each, key, kind, text
from agent.model.facts import normalize_name
from agent.model.findings import Finding
from agent.model.playbook_run import VarValue
from agent.report.safe import terminal
from agent.resources import data_dir
from agent.rules.registry import RULES, RULES_BY_ID

MAX_BYTES = 256 * 1024
PLAYBOOK_SUFFIXES = (".yaml", ".yml")


class Mode(str, enum.Enum):
    DIAGNOSE = "diagnose"  # scan and explain; never plans
    PLAN = "plan"  # scan and write the plan for review; never applies
    APPLY = "apply"  # plan, and apply what the approval rule allows


class Approval(str, enum.Enum):
    REQUIRED = "required"  # nothing is applied without --approve <digest>
    AUTO = "auto"  # the fixes in fixes.apply (all non-disruptive) are applied without approval


class VarType(str, enum.Enum):
    STRING = "string"
    DOMAIN = "domain"
    ADDRESS_LIST = "address-list"
    INTEGER = "integer"
    BOOLEAN = "boolean"


# Playbook variables that the planner reads as host variables. A non-empty value replaces
# the inventory's value for every host; an empty one leaves the inventory's in force.
PLANNER_VARIABLES: Mapping[str, VarType] = {"exfix_external_dns_servers": VarType.ADDRESS_LIST}


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    type: VarType
    description: str
    default: VarValue | None  # None: required on the command line

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True, slots=True)
class RuleSelector:
    """A rule the playbook acts on; optionally only findings about one subject (a remote
    domain, a queue, a NIC: the finding's ``subject``). ``subject_variable`` names the variable
    the subject comes from."""

    rule_id: str
    subject: str | None = None
    subject_variable: str | None = None


@dataclass(frozen=True, slots=True)
class Verify:
    retry_queues: bool = True
    timeout: float = field(default=120.0, metadata=key(check=between(1.0, 3600.0, unit="seconds")))


@dataclass(frozen=True, slots=True)
class Playbook:
    name: str
    description: str
    rules: tuple[RuleSelector, ...]
    plan_fixes: tuple[str, ...]
    apply_fixes: tuple[str, ...]
    mode: Mode
    approval: Approval
    allow_restart: bool
    serial: int
    max_fail: int
    verify: Verify
    variables: tuple[Variable, ...]
    source: str  # the file it was read from
    sha256: str  # of the file's bytes, recorded in every run

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.rule_id for s in self.rules))

    def variable(self, name: str) -> Variable:
        for variable in self.variables:
            if variable.name == name:
                return variable
        raise KeyError(name)

    @property
    def summary(self) -> str:
        """The first sentence of the description, on one line."""
        text = " ".join(self.description.split())
        first = text.split(". ", 1)[0]
        return first if first.endswith(".") else first + "."

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.source,
            "sha256": self.sha256,
            "mode": self.mode.value,
            "approval": self.approval.value,
            "rules": list(self.rule_ids),
            "fixes": {"plan": list(self.plan_fixes), "apply": list(self.apply_fixes)},
            "allow_restart": self.allow_restart,
            "serial": self.serial,
            "max_fail": self.max_fail,
            "verify": {"retry_queues": self.verify.retry_queues, "timeout": self.verify.timeout},
        }


# --- reading --------------------------------------------------------------------------------

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_VAR_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
_VAR_REF = re.compile(r"^\$\{([a-z_][a-z0-9_]{0,63})\}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")
_ONE_LINE = text()


def _names(value: str | tuple[str | _RuleEntry, ...]) -> Any:
    """'all', or a list whose plain names are one printable line each."""
    if isinstance(value, str):
        return value
    return each(lambda item: _ONE_LINE(item) if isinstance(item, str) else item)(value)


@dataclass(frozen=True, slots=True)
class _RuleEntry:
    """``{id: RULE, subject: VALUE}`` in ``rules``."""

    id: str = field(metadata=key(check=_ONE_LINE))
    subject: str | None = field(default=None, metadata=key(check=_ONE_LINE))


@dataclass(frozen=True, slots=True)
class _Fixes:
    plan: Literal["all"] | tuple[str, ...] = field(default=(), metadata=key(check=_names))
    apply: Literal["all"] | tuple[str, ...] = field(default=(), metadata=key(check=_names))


@dataclass(frozen=True, slots=True)
class _VariableEntry:
    type: VarType
    description: str = field(default="", metadata=key(check=text(multiline=True, limit=1000)))
    default: str | int | bool | tuple[str, ...] | None = None  # checked against the type later


@dataclass(frozen=True, slots=True)
class _PlaybookFile:
    """A playbook as written (the module docstring shows it)."""

    name: str = field(
        metadata=key(check=text(limit=63, pattern=_NAME, form="must be lower-case letters, digits and '-'"))
    )
    description: str = field(metadata=key(check=text(multiline=True, limit=4000)))
    mode: Mode
    rules: Literal["all"] | tuple[str | _RuleEntry, ...] = field(default="all", metadata=key(check=_names))
    fixes: _Fixes = _Fixes()
    approval: Approval = Approval.REQUIRED
    allow_restart: bool = False
    serial: int = field(default=1, metadata=key(check=between(1, 256)))
    max_fail: int = field(default=0, metadata=key(check=between(0, 100000)))
    verify: Verify = Verify()
    variables: Mapping[str, _VariableEntry] = field(default_factory=dict)


_DOCUMENT = Document(_PlaybookFile, PlaybookError, what="a playbook", max_bytes=MAX_BYTES)


def _show(value: object) -> str:
    """A value from the file, safe in a one-line message."""
    return terminal(value)[:80]


def _rule_selectors(
    loaded: Loaded[_PlaybookFile], variables: Mapping[str, Variable]
) -> tuple[RuleSelector, ...]:
    known = tuple(rule.id for rule in RULES)
    rules = loaded.value.rules
    if rules == "all":
        return tuple(RuleSelector(rule_id) for rule_id in known)
    if not rules:
        raise loaded.fail(("rules",), "must name at least one rule (or be 'all')")
    out: list[RuleSelector] = []
    seen: set[tuple[str, str | None]] = set()
    for i, item in enumerate(rules):
        where = ("rules", i)
        subject: str | None = None
        subject_variable: str | None = None
        rule_id = item if isinstance(item, str) else item.id
        if isinstance(item, _RuleEntry) and item.subject is not None:
            at = (*where, "subject")
            reference = _VAR_REF.match(item.subject)
            if reference is not None:
                subject_variable = reference.group(1)
                variable = variables.get(subject_variable)
                if variable is None:
                    raise loaded.fail(at, f"refers to variable {subject_variable!r}, which is not declared")
                if variable.type not in (VarType.STRING, VarType.DOMAIN):
                    raise loaded.fail(
                        at, f"variable {subject_variable!r} is a {variable.type.value}, not a name"
                    )
            elif "${" in item.subject:
                raise loaded.fail(at, "a variable reference must be the whole value, as ${name}")
            else:
                subject = normalize_name(item.subject)
        if rule_id not in RULES_BY_ID:
            raise loaded.fail(where, f"unknown rule {_show(rule_id)!r} (known: {', '.join(known)})")
        identity = (rule_id, subject_variable or subject)
        if identity in seen:
            raise loaded.fail(where, f"rule {rule_id!r} is listed twice")
        seen.add(identity)
        out.append(RuleSelector(rule_id, subject, subject_variable))
    return tuple(out)


def _fix_ids(
    loaded: Loaded[_PlaybookFile], name: str, every: Sequence[str]
) -> tuple[tuple[str, KeyPath], ...]:
    """``fixes.<name>``: each fix id with where it is written (``all`` means ``every``)."""
    value = getattr(loaded.value.fixes, name)
    if value == "all":
        return tuple((fix, ("fixes", name)) for fix in every)
    out: dict[str, KeyPath] = {}
    for i, fix in enumerate(value):
        where = ("fixes", name, i)
        if fix not in FIXES:
            raise loaded.fail(where, f"unknown fix {_show(fix)!r} (known: {', '.join(FIXES)})")
        if fix in out:
            raise loaded.fail(where, f"fix {fix!r} is listed twice")
        out[fix] = where
    return tuple(out.items())


def _variables(loaded: Loaded[_PlaybookFile]) -> tuple[Variable, ...]:
    out = []
    for name, entry in loaded.value.variables.items():
        where = ("variables", name)
        if not _VAR_NAME.match(name):
            raise loaded.fail(where, "a variable name is lower-case letters, digits and '_'")
        if name.startswith("exfix_"):
            expected = PLANNER_VARIABLES.get(name)
            if expected is None:
                raise loaded.fail(where, f"not a planner variable (known: {', '.join(PLANNER_VARIABLES)})")
            if entry.type is not expected:
                raise loaded.fail((*where, "type"), f"{name} is an {expected.value}")
        default = None if entry.default is None else _default(loaded, (*where, "default"), entry)
        out.append(Variable(name, entry.type, entry.description, default))
    return tuple(out)


_DEFAULT_SHAPES: Mapping[VarType, tuple[type, str]] = {
    VarType.BOOLEAN: (bool, "true or false"),
    VarType.INTEGER: (int, "a whole number"),
    VarType.ADDRESS_LIST: (tuple, "a list"),
    VarType.STRING: (str, "a string"),
    VarType.DOMAIN: (str, "a string"),
}


def _default(loaded: Loaded[_PlaybookFile], where: KeyPath, entry: _VariableEntry) -> VarValue:
    value = entry.default
    shape, expected = _DEFAULT_SHAPES[entry.type]
    if not isinstance(value, shape) or (shape is int and isinstance(value, bool)):
        raise loaded.fail(
            where, f"must be {expected}, not {kind(value)} (the variable is of type {entry.type.value})"
        )
    try:
        if entry.type is VarType.INTEGER:
            return between(0, 10**9)(typing.cast(int, value))
        if entry.type is VarType.BOOLEAN:
            return typing.cast(bool, value)
        return check_value(entry.type, typing.cast(VarValue, value))
    except ValueError as exc:
        raise loaded.fail(where, str(exc)) from None


def check_value(var_type: VarType, value: VarValue) -> VarValue:
    """``value`` checked (and normalised) for ``var_type``; ValueError says what is wrong.
    Values come from playbooks and the command line: both untrusted."""
    if var_type is VarType.DOMAIN:
        text = normalize_name(str(value))
        if not _DOMAIN.match(text):
            raise ValueError(f"{_show(value)!r} is not a domain name")
        return text
    if var_type is VarType.ADDRESS_LIST:
        items = value if isinstance(value, tuple) else tuple(p for p in re.split(r"[,\s]+", str(value)) if p)
        out = []
        for item in items:
            try:
                out.append(str(ipaddress.ip_address(item)))
            except ValueError:
                raise ValueError(f"{_show(item)!r} is not an IP address") from None
        return tuple(out)
    if var_type is VarType.INTEGER:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value):
            return int(value)
        raise ValueError(f"{_show(value)!r} is not a whole number")
    if var_type is VarType.BOOLEAN:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text not in ("true", "false"):
            raise ValueError(f"{_show(value)!r} is not true or false")
        return text == "true"
    text = str(value)
    if not text or len(text) > 256 or not text.isprintable():
        raise ValueError(f"{_show(value)!r} must be one printable line of at most 256 characters")
    return text


def _disruptive(fix_id: str) -> bool:
    return FIXES[fix_id].disrupts_mail_flow


def parse_playbook(text: str, *, source: str, sha256: str = "") -> Playbook:
    """A validated Playbook from YAML text. Raises PlaybookError (file, line, key)."""
    return _playbook(_DOCUMENT.read_yaml(text, source=source), sha256)


def load_playbook(path: str | Path) -> Playbook:
    """Read and validate the playbook file at ``path``."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PlaybookError(source, f"cannot read: {exc.strerror or exc}") from None
    loaded = _DOCUMENT.read_bytes(data, source=source, syntax="yaml")
    return _playbook(loaded, hashlib.sha256(data).hexdigest())


def _playbook(loaded: Loaded[_PlaybookFile], sha256: str) -> Playbook:
    """The checks across fields (the module docstring says why each exists)."""
    book, fail = loaded.value, loaded.fail
    if not book.verify.retry_queues:
        # agent.apply verifies a fix by its symptom: it always re-attempts the queues that
        # were failing (Retry-Queue) and waits for them to drain.
        raise fail(
            ("verify", "retry_queues"),
            "exfix verifies every fix by retrying the affected queues; false is not supported",
        )
    variables = _variables(loaded)
    selectors = _rule_selectors(loaded, {v.name: v for v in variables})

    # 'all' in fixes means every fix of the rules this playbook acts on.
    reachable = {fix_id for s in selectors for fix_id in RULES_BY_ID[s.rule_id].metadata.fix_ids}
    in_scope = tuple(f for f in FIXES if f in reachable)
    plan = _fix_ids(loaded, "plan", in_scope)
    apply = _fix_ids(loaded, "apply", in_scope)
    plan_ids = tuple(f for f, _ in plan)
    apply_ids = tuple(f for f, _ in apply)
    mode, approval = book.mode, book.approval

    for fix, where in plan:
        if fix not in reachable:
            raise fail(where, f"fix {fix!r} fixes none of the rules this playbook acts on")
    for fix, where in apply:
        if fix not in plan_ids:
            raise fail(where, f"fix {fix!r} may be applied but not planned: add it to fixes.plan")
    for listed, ids in ((plan, plan_ids), (apply, apply_ids)):
        for fix, where in listed:
            for other in FIXES[fix].plans_steps_of:
                if other not in ids:
                    raise fail(where, f"fix {fix!r} also plans steps of {other!r}: list {other!r} beside it")
    if mode is Mode.DIAGNOSE and (plan or apply):
        raise fail(("fixes",), "a diagnose playbook never plans: remove fixes")
    if mode is Mode.PLAN:
        if apply:
            raise fail(("fixes", "apply"), "a plan playbook never applies: remove fixes.apply")
        if not plan:
            raise fail(("fixes", "plan"), "a plan playbook needs fixes to plan")
    if mode is Mode.APPLY and not apply:
        raise fail(("fixes", "apply"), "an apply playbook needs fixes to apply")
    if mode is not Mode.APPLY and approval is Approval.AUTO:
        raise fail(("approval",), f"auto approval means nothing in {mode.value} mode")
    if approval is Approval.AUTO:
        for fix, where in apply:
            if _disruptive(fix):
                raise fail(
                    where,
                    f"approval: auto, but fix {fix!r} disrupts mail flow (it restarts MSExchangeTransport): "
                    "a disruptive fix is never applied without approval",
                )
        if book.allow_restart:
            raise fail(("allow_restart",), "approval: auto cannot allow a restart: a restart stops mail flow")
    elif mode is Mode.APPLY and set(apply_ids) != set(plan_ids):
        raise fail(
            ("fixes", "apply"),
            "with approval: required the playbook applies exactly what was approved: "
            "fixes.apply must list the same fixes as fixes.plan",
        )
    if book.allow_restart and mode is not Mode.APPLY:
        raise fail(("allow_restart",), f"means nothing in {mode.value} mode")

    return Playbook(
        name=book.name,
        description=book.description,
        rules=selectors,
        plan_fixes=plan_ids,
        apply_fixes=apply_ids,
        mode=mode,
        approval=approval,
        allow_restart=book.allow_restart,
        serial=book.serial,
        max_fail=book.max_fail,
        verify=book.verify,
        variables=variables,
        source=loaded.source,
        sha256=sha256,
    )


# --- shipped playbooks and names ------------------------------------------------------------


def shipped_dir() -> Path:
    return data_dir("playbooks")


def shipped_playbooks() -> tuple[Path, ...]:
    directory = shipped_dir()
    return tuple(sorted(p for p in directory.iterdir() if p.suffix in PLAYBOOK_SUFFIXES and p.is_file()))


def find_playbook(file_or_name: str) -> Path:
    """A playbook file: the path itself when it exists, else the shipped playbook of that name."""
    path = Path(file_or_name)
    if path.is_file():
        return path
    stem = file_or_name[: -len(path.suffix)] if path.suffix in PLAYBOOK_SUFFIXES else file_or_name
    if _NAME.match(stem):
        for candidate in shipped_playbooks():
            if candidate.stem == stem:
                return candidate
    names = ", ".join(p.stem for p in shipped_playbooks())
    raise UsageError(f"no playbook file or shipped playbook named {_show(file_or_name)!r} (shipped: {names})")


# --- variables and scope at run time --------------------------------------------------------


def parse_assignments(pairs: Iterable[str]) -> dict[str, str]:
    """``--var k=v`` options as a mapping; UsageError on a malformed one, and on a name given
    twice: with two values on one command line, neither "the first" nor "the last" is
    obviously what the operator meant for a run that may change servers."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not _VAR_NAME.match(name):
            raise UsageError(f"--var {_show(pair)!r}: expected NAME=VALUE with a lower-case NAME")
        if name in out:
            raise UsageError(
                f"--var {name} is given twice ({_show(out[name])!r} and {_show(value)!r}): give it once"
            )
        out[name] = value
    return out


def resolve_variables(playbook: Playbook, overrides: Mapping[str, str]) -> dict[str, VarValue]:
    """Every variable's value: ``--var`` over the default. UsageError for an unknown name, a
    bad value, or a required variable that was not given."""
    declared = {v.name: v for v in playbook.variables}
    for name in overrides:
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise UsageError(f"playbook {playbook.name} has no variable {name!r} (variables: {known})")
    values: dict[str, VarValue] = {}
    for variable in playbook.variables:
        if variable.name in overrides:
            try:
                values[variable.name] = check_value(variable.type, overrides[variable.name])
            except ValueError as exc:
                raise UsageError(f"--var {variable.name}: {exc}") from None
        elif variable.default is not None:
            values[variable.name] = variable.default
        else:
            raise UsageError(
                f"playbook {playbook.name} needs --var {variable.name}=VALUE ({variable.type.value}"
                + (f": {' '.join(variable.description.split())}" if variable.description else "")
                + ")"
            )
    return values


@dataclass(frozen=True, slots=True)
class Scope:
    """Which findings a run acts on: the playbook's rule selectors with variables filled in."""

    selectors: tuple[tuple[str, str | None], ...]  # (rule id, normalised subject or None)

    def covers(self, finding: Finding) -> bool:
        subject = normalize_name(finding.subject)
        return any(
            finding.rule_id == rule_id and (wanted is None or wanted == subject)
            for rule_id, wanted in self.selectors
        )

    def filter(self, findings: Iterable[Finding]) -> tuple[Finding, ...]:
        return tuple(f for f in findings if self.covers(f))


def scope_for(playbook: Playbook, values: Mapping[str, VarValue]) -> Scope:
    selectors = []
    for selector in playbook.rules:
        subject = selector.subject
        if selector.subject_variable is not None:
            subject = normalize_name(str(values[selector.subject_variable]))
        selectors.append((selector.rule_id, subject))
    return Scope(tuple(selectors))


def fix_filter(fixes: Iterable[str]) -> Callable[[Finding], bool]:
    """Findings a plan limited to ``fixes`` keeps: those with one of the fixes, and those with
    no fix at all (symptoms and advice, which the reviewer must see)."""
    allowed = frozenset(fixes)
    return lambda f: f.fix_id is None or f.fix_id in allowed
