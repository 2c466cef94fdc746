"""One exception tree for exfix. Every class carries the process exit code it maps to.

The CLI catches :class:`ExfixError` at the top and prints ``str(error)`` as one line; nothing
below the CLI prints or exits. Messages are built from structured fields (file, host, key,
cmdlet, ...) so that callers can also read the fields instead of parsing text.

The tree::

    ExfixError                      exit 1
    ├── UsageError                  exit 1: bad input (InputFileError and its kinds, CredentialError,
    │                               UnsafePathError: a link where exfix writes)
    ├── HostError                   exit 3: exfix could not talk to the host (the transport)
    │   ├── UnreachableError        refused, reset, TLS, HTTP 5xx; HostTimeoutError: a deadline
    │   ├── AuthenticationError     HTTP 401
    │   ├── WSManFaultError         a SOAP fault from the WS-Management service
    │   └── UnsupportedHostError    Exchange 2007 or older: no remote PowerShell to talk to
    ├── RemoteCommandError          exit 7: the host answered, with an error
    │   ├── CmdletError             an ErrorRecord, or a failed pipeline
    │   └── UnusableOutputError     the command succeeded but its output cannot be used
    ├── RefusedError                exit 4 (DigestMismatchError, StalePlanError, RestartNotAllowedError,
    │                               HostLockedError)
    ├── ApplyFailedError            exit 5
    └── RollbackFailedError         exit 6

The two host branches are kept apart as h11 keeps LocalProtocolError and RemoteProtocolError
apart: ``except HostError`` means "the connection is not to be trusted" (apply abandons it,
the scan gives the host up), while a RemoteCommandError leaves a working session behind and
says something about the host's configuration or the account's rights (RBAC, a cmdlet the
role does not have, a server name the account cannot see). Where a RemoteCommandError ends a
host's scan (Get-ExchangeServer itself fails), the host's status is ``command-failed``.

Exit codes (DESIGN.md; 7 is new in exfix.scan/2, 8 in exfix.scan/3):

====  ==========================================================
0     clean / done and verified
1     bad input or internal error
2     findings or planned actions (not an error: no class here)
3     a host could not be scanned / reached
4     apply refused: digest mismatch, stale plan, restart not allowed
5     a step failed and was rolled back
6     a step failed and the rollback failed too: needs a person
7     a host answered a command with an error, so it could not be
      scanned (or checked before apply); nothing was changed there
8     partial: every host was scanned and nothing was found, but on
      some host a fact area could not be read or parsed, so the rules
      that read it were not judged there (exfix.scan/3)
====  ==========================================================

When a run has several reasons for an exit code, :data:`EXIT_PRECEDENCE` decides, worst
first: 1 (bad input stops the run before any host) beats everything; then 6, 5 and 4 (apply);
3 (a host exfix could not talk to) beats 7 (a host that answered with an error), which beats
2 (findings), which beats 8 (partial: something was not judged, nothing was found), which
beats 0. A finding is news whatever else was missed, so 2 wins over 8; 8 never hides behind 0.
:func:`worst_exit` applies it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_FINDINGS = 2
EXIT_UNREACHABLE = 3
EXIT_REFUSED = 4
EXIT_ROLLED_BACK = 5
EXIT_ROLLBACK_FAILED = 6
EXIT_COMMAND_FAILED = 7
EXIT_PARTIAL = 8

# Worst first (see the module docstring). A code missing here is a bug in exfix.
EXIT_PRECEDENCE: tuple[int, ...] = (
    EXIT_ERROR,
    EXIT_ROLLBACK_FAILED,
    EXIT_ROLLED_BACK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_COMMAND_FAILED,
    EXIT_FINDINGS,
    EXIT_PARTIAL,
    EXIT_OK,
)


def worst_exit(codes: Iterable[int]) -> int:
    """The exit code that wins among ``codes`` by :data:`EXIT_PRECEDENCE`; 0 when empty.

    Raises ValueError for a code that is not an exfix exit code.
    """
    worst = EXIT_OK
    for code in codes:
        if code not in EXIT_PRECEDENCE:
            raise ValueError(f"{code!r} is not an exfix exit code")
        if EXIT_PRECEDENCE.index(code) < EXIT_PRECEDENCE.index(worst):
            worst = code
    return worst


def one_line(text: str, limit: int = 400) -> str:
    """Fold ``text`` to a single printable line (errors are printed one line each)."""
    folded = " ".join(text.split())
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in folded)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


class ExfixError(Exception):
    """Base of every error exfix raises on purpose."""

    exit_code: ClassVar[int] = EXIT_ERROR

    def __str__(self) -> str:
        return one_line(super().__str__())


# --- bad input (exit 1) -------------------------------------------------------------------


class UsageError(ExfixError):
    """The user gave exfix something it cannot use."""


class InputFileError(UsageError):
    """A file the user named is malformed. Names the file, and where known the line and key."""

    def __init__(self, path: str, problem: str, *, line: int | None = None, key: str | None = None,
                 host: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.line = line
        self.key = key
        self.host = host
        where = path if line is None else f"{path}:{line}"
        parts = [where]
        if host is not None:
            parts.append(f"host {host!r}")
        if key is not None:
            parts.append(f"key {key!r}")
        super().__init__(f"{': '.join(parts)}: {problem}")


class InventoryError(InputFileError):
    """The inventory is malformed or names something that does not exist."""


class PlaybookError(InputFileError):
    """A playbook is malformed."""


class ScenarioError(InputFileError):
    """A lab scenario file is malformed."""


class FactsFileError(InputFileError):
    """A saved facts snapshot or plan file cannot be read."""


class UnsafePathError(UsageError):
    """A path exfix was to write or read in a directory it owns (a plan bundle, a playbook
    run's directory, the journal) is a symbolic link or not what it must be; nothing was
    written through it."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class CredentialError(UsageError):
    """A credential the inventory asks for is not available (never includes the secret)."""


# --- talking to a host (exit 3) -----------------------------------------------------------


class HostError(ExfixError):
    """exfix could not talk to one host (the transport failed). The fleet carries on; the host
    gets a status. A host that answered with an error is a :class:`RemoteCommandError`."""

    exit_code = EXIT_UNREACHABLE
    status: ClassVar[str] = "failed"

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(f"{host}: {reason}")


class UnreachableError(HostError):
    """Connection refused, reset, timed out, or the host's overall deadline passed."""

    status = "unreachable"


class HostTimeoutError(UnreachableError):
    """A command or the host as a whole ran past its deadline."""


class AuthenticationError(HostError):
    """The endpoint refused the credentials (HTTP 401). Never retried."""

    status = "auth-failed"


class WSManFaultError(HostError):
    """The WS-Management service answered with a SOAP fault."""

    def __init__(self, host: str, code: int | None, reason: str) -> None:
        self.code = code
        super().__init__(host, f"WSMan fault {code}: {reason}" if code is not None else reason)


class UnsupportedHostError(HostError):
    """The host runs something exfix cannot manage remotely (e.g. Exchange 2007)."""

    status = "unsupported"


# --- the host answered, with an error (exit 7) --------------------------------------------


class RemoteCommandError(ExfixError):
    """A command reached the host and the host answered with an error, or with output exfix
    cannot use. The session still works; the cause is on the host (its configuration, the
    account's RBAC roles, the cmdlets its role has)."""

    exit_code = EXIT_COMMAND_FAILED
    status: ClassVar[str] = "command-failed"

    def __init__(self, host: str, cmdlet: str, reason: str) -> None:
        self.host = host
        self.cmdlet = cmdlet
        self.reason = reason
        super().__init__(f"{host}: {reason}")


class CmdletError(RemoteCommandError):
    """A cmdlet wrote an ErrorRecord or failed its pipeline."""

    def __init__(self, host: str, cmdlet: str, message: str,
                 fully_qualified_error_id: str | None = None, category: str | None = None) -> None:
        self.message = message
        self.fully_qualified_error_id = fully_qualified_error_id
        self.category = category
        fqid = f" [{fully_qualified_error_id}]" if fully_qualified_error_id else ""
        hint = RIGHTS_HINT if _rights_error(fully_qualified_error_id) else ""
        super().__init__(host, cmdlet, f"{cmdlet}: {message}{fqid}{hint}")


# What a session built from the account's rights answers for a cmdlet, parameter, value or
# provider outside them: a restricted Exchange session (RBAC) and a JEA endpoint alike.
_RIGHTS_ERRORS = ("CommandNotFoundException", "NamedParameterNotFound", "ParameterArgumentValidationError",
                  "ProviderNotFound")  # fmt: skip
RIGHTS_HINT = (
    " (a restricted account's Exchange RBAC roles or JEA role capability lack it?"
    " `exfix rbac` writes the roles exfix needs)"
)


def _rights_error(fqid: str | None) -> bool:
    return fqid is not None and fqid.split(",", 1)[0] in _RIGHTS_ERRORS


class UnusableOutputError(RemoteCommandError):
    """A command succeeded but its output cannot be used: no object where one is needed, or
    a value exfix cannot read (an Exchange version, a configuration file). ``problem`` says
    what is wrong with it."""

    def __init__(self, host: str, cmdlet: str, problem: str) -> None:
        self.problem = problem
        super().__init__(host, cmdlet, f"{cmdlet}: {problem}")


# --- apply (exit 4, 5, 6) -----------------------------------------------------------------


class RefusedError(ExfixError):
    """apply will not run this plan as asked. Nothing was changed."""

    exit_code = EXIT_REFUSED


class DigestMismatchError(RefusedError):
    """The approved digest is not the plan's digest."""


# What a StaleSetting says when the plan holds no planned value to show (the plan records
# fingerprints, and the planned value only of the settings its steps change).
NOT_RECORDED = "changed (not recorded in the plan)"


@dataclass(frozen=True, slots=True)
class StaleSetting:
    """One setting of one fact slice that changed on ``host`` since the plan was made, and that
    the plan's step ``action`` depends on.

    ``area`` and ``key`` name the slice (agent.model.plan.FactRef: a FactArea value, and the
    item: an InterfaceIndex, a connector, a domain; "" for host-wide areas). ``setting`` is the
    property the plan records (a ``changes[*].property``, e.g. ``ServerAddresses``) with its
    ``planned`` and ``current`` values (JSON-ready: tuples for lists, None where absent).

    ``recorded`` is False where the plan holds no planned value: ``setting`` and ``planned``
    are then None and ``current`` is the slice as it is now; something in it that the plan
    does not record changed. ``certain`` is False when the step depends on several slices and
    the plan cannot tell which of them holds that change (every candidate is listed).
    """

    host: str
    action: str
    area: str
    key: str
    setting: str | None
    planned: object
    current: object
    recorded: bool = True
    certain: bool = True

    def describe(self) -> str:
        where = f"{self.area} {self.key}".strip()
        if not self.recorded:
            return f"{where} {NOT_RECORDED}" + ("" if self.certain else " (or another slice of the step)")
        return f"{where} {self.setting} planned {_show(self.planned)}, now {_show(self.current)}"

    def to_dict(self) -> dict[str, object]:
        """The JSON form (the journal's stale-check ``detail.drift``, apply --format json)."""
        return {
            "host": self.host, "action": self.action, "area": self.area, "key": self.key,
            "setting": self.setting, "planned": _jsonable(self.planned), "current": _jsonable(self.current),
            "recorded": self.recorded, "certain": self.certain,
        }  # fmt: skip


def _jsonable(value: object) -> object:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _show(value: object) -> str:
    # One line, and unambiguous: the empty list and None read differently, strings are quoted.
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value)
    return str(value)


class StalePlanError(RefusedError):
    """Hosts' facts changed since the plan was made. ``drift`` says, per host and step, which
    slice and setting changed, with its planned and current value; the message is built from
    it."""

    def __init__(self, drift: tuple[StaleSetting, ...]) -> None:
        self.drift = drift
        steps: dict[tuple[str, str], list[str]] = {}
        for item in drift:
            steps.setdefault((item.host, item.action), []).append(item.describe())
        parts = [f"{host} step {action}: {'; '.join(what)}" for (host, action), what in steps.items()]
        super().__init__(
            "refused, nothing changed: the plan is stale, the facts its steps depend on changed since it "
            f"was made: {' | '.join(parts)}. Plan again"
        )

    @property
    def hosts(self) -> tuple[str, ...]:
        """The drifted hosts, in the order of ``drift``."""
        return tuple(dict.fromkeys(item.host for item in self.drift))


class HostLockedError(RefusedError):
    """Another exfix run is changing the host: this machine's lock is held, or the marker on
    the server names another run (agent/apply/lock.py). ``holder`` says who, ``where`` which
    lock, ``holder_run`` its run id when known; ``stale`` is True when its process is known to
    be gone."""

    def __init__(self, host: str, holder: str, where: str, hint: str, *, holder_run: str | None = None,
                 stale: bool = False) -> None:  # fmt: skip
        self.host = host
        self.holder = holder
        self.where = where
        self.holder_run = holder_run
        self.stale = stale
        # The hint first: what a host wrote into its marker (``holder``) comes last, so however
        # long it is, one_line's cut never takes the way out.
        super().__init__(
            f"refused, nothing changed: {host} is being changed by another exfix run. {hint}. "
            f"Held by {holder}; lock {where}"
        )


class RestartNotAllowedError(RefusedError):
    """A disruptive action is planned and --allow-restart was not given."""


class ApplyFailedError(ExfixError):
    """A step failed; what had been changed was rolled back and verified."""

    exit_code = EXIT_ROLLED_BACK


class RollbackFailedError(ExfixError):
    """A step failed and undoing it failed too. A person must look at the host."""

    exit_code = EXIT_ROLLBACK_FAILED
