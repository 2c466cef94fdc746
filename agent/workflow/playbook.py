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
    serial: 1                            # hosts changed at once
    max_fail: 0                          # failed hosts tolerated before the rest are not started
    verify:
      retry_queues: true                 # Retry-Queue the affected queues after applying (always)
      timeout: 120                       # seconds to wait for them to drain
    variables:
      domain: {type: domain, description: ...}          # no default: --var domain=... required
      exfix_external_dns_servers: {type: address-list, default: []}

A ``subject`` may be a variable reference, the whole string ``${name}``; nothing else is
substituted anywhere (a playbook is data, never a template).

Reading is strict: every problem is one :class:`~agent.errors.PlaybookError` naming the file,
the line and the key path (``fixes.apply[1]``). The rules of consistency, and why:

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
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agent.errors import PlaybookError, UsageError, one_line
from agent.fixes.registry import RULE_FIXES as FIXES
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
    timeout: float = 120.0


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
_TOP_KEYS = (
    "name", "description", "rules", "fixes", "mode", "approval", "allow_restart", "serial", "max_fail",
    "verify", "variables",
)  # fmt: skip
_REQUIRED = ("name", "description", "mode")
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_FLOAT = "tag:yaml.org,2002:float"
_NULL = "tag:yaml.org,2002:null"


def _show(value: object) -> str:
    """A value from the file, safe in a one-line message."""
    return terminal(value)[:80]


class _Doc:
    """Walks the composed YAML node tree, so every error can name the line of what it is about."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.keys: dict[
            str, yaml.Node
        ] = {}  # key path -> the node of its key, for errors about a whole value
        self.root: yaml.Node | None = None

    def fail(self, node: yaml.Node | None, key: str | None, problem: str) -> PlaybookError:
        line = None if node is None else node.start_mark.line + 1
        return PlaybookError(self.source, problem, line=line, key=None if key is None else _show(key))

    def key_node(self, *paths: str) -> yaml.Node | None:
        """The node of the first of ``paths`` that the file has (else the document's start)."""
        return next((self.keys[p] for p in paths if p in self.keys), self.root)

    def mapping(self, node: yaml.Node, key: str | None, allowed: Sequence[str]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, key, f"must be a mapping, not {self.kind(node)}")
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not (isinstance(key_node, yaml.ScalarNode) and key_node.tag == _STR):
                raise self.fail(key_node, key, "a key must be a plain string")
            name = str(key_node.value)
            where = name if key is None else f"{key}.{name}"
            if name not in allowed:
                expected = ", ".join(allowed)
                raise self.fail(key_node, where, f"unknown key (expected one of: {expected})")
            if name in out:
                raise self.fail(key_node, where, "duplicate key")
            out[name] = value_node
            self.keys[where] = key_node
        return out

    def free_mapping(self, node: yaml.Node, key: str) -> list[tuple[yaml.ScalarNode, yaml.Node]]:
        """A mapping whose keys are names the user chooses (variables)."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, key, f"must be a mapping, not {self.kind(node)}")
        seen: set[str] = set()
        out = []
        for key_node, value_node in node.value:
            if not (isinstance(key_node, yaml.ScalarNode) and key_node.tag == _STR):
                raise self.fail(key_node, key, "a key must be a plain string")
            if key_node.value in seen:
                raise self.fail(key_node, f"{key}.{key_node.value}", "duplicate key")
            seen.add(key_node.value)
            out.append((key_node, value_node))
        return out

    def sequence(self, node: yaml.Node, key: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, key, f"must be a list, not {self.kind(node)}")
        return list(node.value)

    def kind(self, node: yaml.Node) -> str:
        if isinstance(node, yaml.MappingNode):
            return "a mapping"
        if isinstance(node, yaml.SequenceNode):
            return "a list"
        return {
            _STR: "a string",
            _INT: "a number",
            _FLOAT: "a number",
            _BOOL: "a boolean",
            _NULL: "null",
        }.get(node.tag, f"a value tagged {_show(node.tag)}")

    def string(self, node: yaml.Node, key: str, *, multiline: bool = False, limit: int = 200) -> str:
        if not (isinstance(node, yaml.ScalarNode) and node.tag == _STR):
            raise self.fail(node, key, f"must be a string, not {self.kind(node)}")
        value = str(node.value)
        if not value.strip():
            raise self.fail(node, key, "must not be empty")
        if len(value) > limit:
            raise self.fail(node, key, f"is longer than {limit} characters")
        bad = [ch for ch in value if not ch.isprintable() and not (multiline and ch == "\n")]
        if bad:
            raise self.fail(node, key, f"holds a control or format character ({_show(bad[0])})")
        return value

    def boolean(self, node: yaml.Node, key: str) -> bool:
        if not (isinstance(node, yaml.ScalarNode) and node.tag == _BOOL):
            raise self.fail(node, key, f"must be true or false, not {self.kind(node)}")
        return str(node.value).lower() in ("true", "yes", "on")

    def integer(self, node: yaml.Node, key: str, low: int, high: int) -> int:
        if not (
            isinstance(node, yaml.ScalarNode) and node.tag == _INT and re.fullmatch(r"[0-9]+", node.value)
        ):
            raise self.fail(node, key, f"must be a whole number from {low} to {high}, not {self.kind(node)}")
        value = int(node.value)
        if not low <= value <= high:
            raise self.fail(node, key, f"must be from {low} to {high}, not {value}")
        return value

    def number(self, node: yaml.Node, key: str, low: float, high: float) -> float:
        ok = isinstance(node, yaml.ScalarNode) and (
            (node.tag == _INT and re.fullmatch(r"[0-9]+", node.value))
            or (node.tag == _FLOAT and re.fullmatch(r"[0-9]+\.[0-9]*", node.value))
        )
        if not ok:
            raise self.fail(node, key, f"must be a number of seconds, not {self.kind(node)}")
        value = float(node.value)
        if not low <= value <= high:
            raise self.fail(node, key, f"must be from {low:g} to {high:g} seconds, not {value:g}")
        return value

    def choice(self, node: yaml.Node, key: str, cls: type[enum.Enum]) -> Any:
        text = self.string(node, key)
        try:
            return cls(text)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in cls)
            raise self.fail(node, key, f"{_show(text)!r} is not one of: {allowed}") from None

    def ids(
        self, node: yaml.Node, key: str, known: Sequence[str], what: str, *, every: Sequence[str]
    ) -> tuple[tuple[str, yaml.Node], ...]:
        """``all`` (meaning ``every``), or a list of known ids (no repeats); each with its node,
        for later errors."""
        if isinstance(node, yaml.ScalarNode) and node.tag == _STR and node.value == "all":
            return tuple((item, node) for item in every)
        out: dict[str, yaml.Node] = {}
        for i, item in enumerate(self.sequence(node, key)):
            where = f"{key}[{i}]"
            value = self.string(item, where)
            if value not in known:
                raise self.fail(item, where, f"unknown {what} {_show(value)!r} (known: {', '.join(known)})")
            if value in out:
                raise self.fail(item, where, f"{what} {value!r} is listed twice")
            out[value] = item
        return tuple(out.items())


def _rule_selectors(
    doc: _Doc, node: yaml.Node, variables: Mapping[str, Variable]
) -> tuple[tuple[RuleSelector, yaml.Node], ...]:
    known = tuple(rule.id for rule in RULES)
    if isinstance(node, yaml.ScalarNode) and node.tag == _STR and node.value == "all":
        return tuple((RuleSelector(rule_id), node) for rule_id in known)
    out: list[tuple[RuleSelector, yaml.Node]] = []
    seen: set[tuple[str, str | None]] = set()
    items = doc.sequence(node, "rules")
    if not items:
        raise doc.fail(node, "rules", "must name at least one rule (or be 'all')")
    for i, item in enumerate(items):
        where = f"rules[{i}]"
        subject: str | None = None
        subject_variable: str | None = None
        if isinstance(item, yaml.MappingNode):
            fields = doc.mapping(item, where, ("id", "subject"))
            if "id" not in fields:
                raise doc.fail(item, f"{where}.id", "missing")
            id_node = fields["id"]
            rule_id = doc.string(id_node, f"{where}.id")
            if "subject" in fields:
                raw = doc.string(fields["subject"], f"{where}.subject")
                reference = _VAR_REF.match(raw)
                if reference is not None:
                    subject_variable = reference.group(1)
                    variable = variables.get(subject_variable)
                    if variable is None:
                        raise doc.fail(
                            fields["subject"],
                            f"{where}.subject",
                            f"refers to variable {subject_variable!r}, which is not declared",
                        )
                    if variable.type not in (VarType.STRING, VarType.DOMAIN):
                        raise doc.fail(
                            fields["subject"],
                            f"{where}.subject",
                            f"variable {subject_variable!r} is a {variable.type.value}, not a name",
                        )
                elif "${" in raw:
                    raise doc.fail(
                        fields["subject"],
                        f"{where}.subject",
                        "a variable reference must be the whole value, as ${name}",
                    )
                else:
                    subject = normalize_name(raw)
        else:
            id_node = item
            rule_id = doc.string(item, where)
        if rule_id not in RULES_BY_ID:
            raise doc.fail(id_node, where, f"unknown rule {_show(rule_id)!r} (known: {', '.join(known)})")
        identity = (rule_id, subject_variable or subject)
        if identity in seen:
            raise doc.fail(item, where, f"rule {rule_id!r} is listed twice")
        seen.add(identity)
        out.append((RuleSelector(rule_id, subject, subject_variable), id_node))
    return tuple(out)


def _variables(doc: _Doc, node: yaml.Node) -> tuple[tuple[Variable, yaml.Node], ...]:
    out = []
    for key_node, body in doc.free_mapping(node, "variables"):
        name = str(key_node.value)
        where = f"variables.{name}"
        if not _VAR_NAME.match(name):
            raise doc.fail(key_node, where, "a variable name is lower-case letters, digits and '_'")
        fields = doc.mapping(body, where, ("type", "description", "default"))
        if "type" not in fields:
            raise doc.fail(body, f"{where}.type", "missing")
        var_type: VarType = doc.choice(fields["type"], f"{where}.type", VarType)
        if name.startswith("exfix_"):
            expected = PLANNER_VARIABLES.get(name)
            if expected is None:
                raise doc.fail(
                    key_node, where, f"not a planner variable (known: {', '.join(PLANNER_VARIABLES)})"
                )
            if var_type is not expected:
                raise doc.fail(fields["type"], f"{where}.type", f"{name} is an {expected.value}")
        description = (
            doc.string(fields["description"], f"{where}.description", multiline=True, limit=1000)
            if "description" in fields else ""
        )  # fmt: skip
        default: VarValue | None = None
        if "default" in fields:
            default = _default(doc, fields["default"], f"{where}.default", var_type)
        out.append((Variable(name, var_type, description, default), key_node))
    return tuple(out)


def _default(doc: _Doc, node: yaml.Node, key: str, var_type: VarType) -> VarValue:
    if var_type is VarType.BOOLEAN:
        return doc.boolean(node, key)
    if var_type is VarType.INTEGER:
        return doc.integer(node, key, 0, 10**9)
    if var_type is VarType.ADDRESS_LIST:
        items = tuple(doc.string(item, f"{key}[{i}]") for i, item in enumerate(doc.sequence(node, key)))
        try:
            return check_value(var_type, items)
        except ValueError as exc:
            raise doc.fail(node, key, str(exc)) from None
    text = doc.string(node, key)
    try:
        return check_value(var_type, text)
    except ValueError as exc:
        raise doc.fail(node, key, str(exc)) from None


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
    doc = _Doc(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        raise PlaybookError(source, f"not valid YAML: {exc.problem or exc.context}", line=line) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (a raw escape, NUL)
        line = text.count("\n", 0, max(0, exc.position)) + 1
        raise PlaybookError(
            source, f"not valid YAML: character {exc.character!r} is not allowed", line=line
        ) from None
    except yaml.YAMLError as exc:
        raise PlaybookError(source, f"not valid YAML: {one_line(str(exc))}") from None
    if root is None:
        raise PlaybookError(source, "the playbook is empty")
    doc.root = root
    top = doc.mapping(root, None, _TOP_KEYS)
    for name in _REQUIRED:
        if name not in top:
            raise doc.fail(root, name, "missing")

    name = doc.string(top["name"], "name", limit=63)
    if not _NAME.match(name):
        raise doc.fail(top["name"], "name", "must be lower-case letters, digits and '-'")
    description = doc.string(top["description"], "description", multiline=True, limit=4000)
    mode: Mode = doc.choice(top["mode"], "mode", Mode)
    approval: Approval = (
        doc.choice(top["approval"], "approval", Approval) if "approval" in top else Approval.REQUIRED
    )
    allow_restart = doc.boolean(top["allow_restart"], "allow_restart") if "allow_restart" in top else False
    serial = doc.integer(top["serial"], "serial", 1, 256) if "serial" in top else 1
    max_fail = doc.integer(top["max_fail"], "max_fail", 0, 100000) if "max_fail" in top else 0

    verify = Verify()
    if "verify" in top:
        fields = doc.mapping(top["verify"], "verify", ("retry_queues", "timeout"))
        if "retry_queues" in fields and not doc.boolean(fields["retry_queues"], "verify.retry_queues"):
            # agent.apply verifies a fix by its symptom: it always re-attempts the queues that
            # were failing (Retry-Queue) and waits for them to drain.
            raise doc.fail(
                fields["retry_queues"],
                "verify.retry_queues",
                "exfix verifies every fix by retrying the affected queues; false is not supported",
            )
        if "timeout" in fields:
            verify = Verify(timeout=doc.number(fields["timeout"], "verify.timeout", 1, 3600))

    variables = _variables(doc, top["variables"]) if "variables" in top else ()
    by_name = {v.name: v for v, _ in variables}
    if "rules" in top:
        selectors = _rule_selectors(doc, top["rules"], by_name)
    else:
        selectors = tuple((RuleSelector(rule.id), root) for rule in RULES)

    # 'all' in fixes means every fix of the rules this playbook acts on.
    reachable = {RULES_BY_ID[s.rule_id].metadata.fix_id for s, _ in selectors}
    known_fixes = tuple(FIXES)
    in_scope = tuple(f for f in FIXES if f in reachable)
    plan: tuple[tuple[str, yaml.Node], ...] = ()
    apply: tuple[tuple[str, yaml.Node], ...] = ()
    if "fixes" in top:
        fields = doc.mapping(top["fixes"], "fixes", ("plan", "apply"))
        if "plan" in fields:
            plan = doc.ids(fields["plan"], "fixes.plan", known_fixes, "fix", every=in_scope)
        if "apply" in fields:
            apply = doc.ids(fields["apply"], "fixes.apply", known_fixes, "fix", every=in_scope)
    plan_ids = tuple(f for f, _ in plan)
    apply_ids = tuple(f for f, _ in apply)

    # Consistency (the module docstring says why each rule exists).
    for i, (fix, node) in enumerate(plan):
        if fix not in reachable:
            raise doc.fail(
                node, f"fixes.plan[{i}]", f"fix {fix!r} fixes none of the rules this playbook acts on"
            )
    for i, (fix, node) in enumerate(apply):
        if fix not in plan_ids:
            raise doc.fail(
                node, f"fixes.apply[{i}]", f"fix {fix!r} may be applied but not planned: add it to fixes.plan"
            )
    if mode is Mode.DIAGNOSE and (plan or apply):
        raise doc.fail(doc.key_node("fixes"), "fixes", "a diagnose playbook never plans: remove fixes")
    if mode is Mode.PLAN:
        if apply:
            raise doc.fail(
                doc.key_node("fixes.apply", "fixes"),
                "fixes.apply",
                "a plan playbook never applies: remove fixes.apply",
            )
        if not plan:
            raise doc.fail(
                doc.key_node("fixes.plan", "fixes"), "fixes.plan", "a plan playbook needs fixes to plan"
            )
    if mode is Mode.APPLY and not apply:
        raise doc.fail(
            doc.key_node("fixes.apply", "fixes"), "fixes.apply", "an apply playbook needs fixes to apply"
        )
    if mode is not Mode.APPLY and "approval" in top and approval is Approval.AUTO:
        raise doc.fail(top["approval"], "approval", f"auto approval means nothing in {mode.value} mode")
    if approval is Approval.AUTO:
        for i, (fix, node) in enumerate(apply):
            if _disruptive(fix):
                raise doc.fail(
                    node,
                    f"fixes.apply[{i}]",
                    f"approval: auto, but fix {fix!r} disrupts mail flow (it restarts MSExchangeTransport): "
                    "a disruptive fix is never applied without approval",
                )
        if allow_restart:
            raise doc.fail(
                top["allow_restart"],
                "allow_restart",
                "approval: auto cannot allow a restart: a restart stops mail flow",
            )
    elif mode is Mode.APPLY and set(apply_ids) != set(plan_ids):
        raise doc.fail(
            doc.key_node("fixes.apply", "fixes"),
            "fixes.apply",
            "with approval: required the playbook applies exactly what was approved: "
            "fixes.apply must list the same fixes as fixes.plan",
        )
    if allow_restart and mode is not Mode.APPLY:
        raise doc.fail(top["allow_restart"], "allow_restart", f"means nothing in {mode.value} mode")

    return Playbook(
        name=name,
        description=description,
        rules=tuple(s for s, _ in selectors),
        plan_fixes=plan_ids,
        apply_fixes=apply_ids,
        mode=mode,
        approval=approval,
        allow_restart=allow_restart,
        serial=serial,
        max_fail=max_fail,
        verify=verify,
        variables=tuple(v for v, _ in variables),
        source=source,
        sha256=sha256,
    )


def load_playbook(path: str | Path) -> Playbook:
    """Read and validate the playbook file at ``path``."""
    source = str(path)
    try:
        data = Path(path).read_bytes()[: MAX_BYTES + 1]
    except OSError as exc:
        raise PlaybookError(source, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise PlaybookError(source, f"larger than {MAX_BYTES // 1024} KiB: not a playbook")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlaybookError(source, f"not UTF-8 text (byte {exc.start})") from None
    return parse_playbook(text, source=source, sha256=hashlib.sha256(data).hexdigest())


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
    """``--var k=v`` options as a mapping (the last one wins); UsageError on a malformed one."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not _VAR_NAME.match(name):
            raise UsageError(f"--var {_show(pair)!r}: expected NAME=VALUE with a lower-case NAME")
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
