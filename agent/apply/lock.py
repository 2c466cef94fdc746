"""One apply (or rollback) per Exchange server at a time, whoever runs it and from wherever.

Two locks, both held for the whole run (from before the stale check to after verification; a
run that holds its hosts before it collects them, agent/apply/hold.py, from before that):

- **On this machine**, an ``flock`` on ``<journal directory>/.exfix-locks/<host>.lock``: applies
  that share a journal (the same plan, a playbook's run directory) exclude each other at once,
  and the kernel lets go when a process dies, however it dies.
- **On the server itself**, a marker file that every exfix, on any machine, must create before
  it changes anything: ``<ExchangeInstallPath>Logging\\exfix-change-in-progress.json``, made
  over the OS endpoint with ``New-Item -ItemType File -Value <holder>`` and no ``-Force``.
  Without ``-Force`` PowerShell's FileSystem provider opens the file ``FileMode.CreateNew``
  (CREATE_NEW), which fails when the file exists: creating it is the atomic test-and-set, on
  the server's own file system, that two operators on two workstations cannot both win. The
  loser reads the holder (``Get-Content -Raw``) and is refused with exit 4 naming it.

Why a file under the Exchange install path: it is where Exchange keeps what belongs to the
server (its configuration, its logs), outside Microsoft's registry hives and outside Active
Directory; an admin sees it in Explorer, reads it with ``Get-Content``, removes it with
``Remove-Item``; it changes nothing Exchange reads. The holder is one line of JSON: run id,
operator, machine, process id, plan, start time. ``plan`` is the digest of the plan the run
applies; a run that holds its hosts before it has planned (a playbook that applies:
agent/apply/hold.py) cannot know the digest yet and writes what it is doing instead
("before planning: playbook dns-451-auto, ticket CHG0042"), so that another operator's refusal
still says who holds the host and why. The keys are the same either way: every exfix version
reads both.

A marker outlives an apply that was killed (``kill -9``, a power cut, a lost network at the
end). It is never taken over silently: the refusal says who held it and since when, and
whether its process is known to be gone (same machine, no such process). The way out, once a
person has looked at the journal of that run (``exfix rollback`` undoes what it left): give
``--break-lock RUN`` to apply or rollback; the marker is removed only if it still names RUN,
and that is journaled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import socket
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.apply.journal import read_journal
from agent.collect import _values as v
from agent.collect.edge_config import install_path_calls, parse_install_path
from agent.errors import CmdletError, ExfixError, HostLockedError, RemoteCommandError, UsageError, one_line
from agent.fleet import run_fleet
from agent.model.command import SWITCH, CmdletCall, Endpoint
from agent.planning.schedule import DEFAULT_APPLY_FORKS
from agent.review.files import owned_file
from agent.transport.connection import HostConnection

try:
    import fcntl
except ImportError:  # Windows: no flock; the marker on the server still excludes
    fcntl = None  # type: ignore[assignment]

MARKER_NAME = "exfix-change-in-progress.json"
# OS commands a run sends a host to take its marker: the install path, then New-Item.
TAKE_COMMANDS = 2
LOCAL_DIR = ".exfix-locks"
_RUN = re.compile(r"^[0-9a-f]{8,64}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_MAX_MARKER_CHARS = 4096
# What leaves a host out of a partial RunLocks: a problem of that host (held by another run,
# not reachable, an error from the host, no credential for it); anything else is a bug, raised.
_LEFT_OUT = (ExfixError,)


@dataclass(frozen=True, slots=True)
class Holder:
    """Who changes a host: the run, who runs it, from where, for which plan (its digest, or
    what the run does before it has one: module docstring), since when."""

    run: str
    operator: str
    machine: str
    pid: int
    plan: str
    started: str

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=True, sort_keys=True)

    @classmethod
    def from_text(cls, text: str) -> Holder | None:
        """The holder a marker names (its text came from the host), None when it is not one."""
        if len(text) > _MAX_MARKER_CHARS:
            return None
        try:
            data = json.loads(text.strip().lstrip("\ufeff"))
        except ValueError:
            return None
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) != set(fields):
            return None
        if not isinstance(data["pid"], int) or isinstance(data["pid"], bool):
            return None
        if not all(isinstance(data[k], str) for k in fields if k != "pid"):
            return None
        return cls(**data)

    def describe(self) -> str:
        def short(text: str) -> str:
            return text if len(text) <= 80 else text[:79] + "…"

        plan = f"plan {self.plan[:12]}" if _DIGEST.match(self.plan) else short(self.plan)
        return (
            f"run {self.run[:12]} ({short(self.operator)} on {short(self.machine)}, pid {self.pid}, "
            f"{plan}, since {short(self.started)})"
        )

    def process_gone(self) -> bool:
        """True only when the holder ran on this machine and its process no longer exists."""
        if self.machine != this_machine() or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except (PermissionError, OSError):
            return False
        return False


def this_machine() -> str:
    return socket.gethostname() or "unknown"


def check_run_id(run: str) -> str:
    """``--break-lock``'s argument: a run id as exfix writes them (hex), or its first 8 or
    more characters, as the refusal shows it."""
    if not _RUN.match(run.strip().lower()):
        raise UsageError(f"--break-lock: {run[:80]!r} is not a run id (the hex id the refusal names)")
    return run.strip().lower()


def _names(holder: Holder | None, run: str) -> bool:
    return holder is not None and holder.run.startswith(run)


def marker_path(install_path: str) -> str:
    base = install_path if install_path.endswith("\\") else install_path + "\\"
    return f"{base}Logging\\{MARKER_NAME}"


def _major(exchange_version: str) -> int:
    head = exchange_version.split(".", 1)[0]
    return int(head) if head.isdigit() else 15


# --- the marker on the host ------------------------------------------------------------------


def _create_call(path: str, holder: Holder) -> CmdletCall:
    # No -Force: FileMode.CreateNew, the test-and-set (module docstring).
    return CmdletCall(
        Endpoint.OS, "New-Item", (("Path", path), ("ItemType", "File"), ("Value", holder.to_json()))
    )


def _read_call(path: str) -> CmdletCall:
    return CmdletCall(Endpoint.OS, "Get-Content", (("LiteralPath", path), ("Raw", SWITCH)))


def _remove_call(path: str) -> CmdletCall:
    return CmdletCall(Endpoint.OS, "Remove-Item", (("LiteralPath", path),))


def _exists_error(error: RemoteCommandError) -> bool:
    return isinstance(error, CmdletError) and (error.fully_qualified_error_id or "").startswith(
        "NewItemIOError"
    )


def _missing_error(error: RemoteCommandError) -> bool:
    return isinstance(error, CmdletError) and (error.fully_qualified_error_id or "").startswith(
        "PathNotFound"
    )


@dataclass(frozen=True, slots=True)
class Marker:
    """A marker as read from a host: its path, its holder (None: not readable as one) and its
    text, shown escaped when it is not a holder."""

    path: str
    holder: Holder | None
    text: str

    def describe(self) -> str:
        if self.holder is not None:
            return self.holder.describe()
        return f"an unreadable marker ({self.text[:120]!r})"


def marker_of(conn: HostConnection, exchange_version: str | None) -> str:
    """The marker's path on ``conn``'s host: under the install path its Setup key names (v15,
    or v14 on Exchange 2010; tried in that order when the version is not known)."""
    majors = (15, 14) if exchange_version is None else (_major(exchange_version),)
    for i, major in enumerate(majors):
        try:
            found = conn.run(install_path_calls(major)[0])
        except RemoteCommandError:
            if i + 1 < len(majors):
                continue
            raise
        return marker_path(parse_install_path(found, host=conn.host))
    raise AssertionError("unreachable")


def read_marker(conn: HostConnection, path: str) -> Marker | None:
    """The marker at ``path``, None when there is none."""
    try:
        out = conn.run(_read_call(path))
    except RemoteCommandError as exc:
        if _missing_error(exc):
            return None
        raise
    text = "".join(v.text(item) for item in out)
    return Marker(path, Holder.from_text(text), text)


def try_create(conn: HostConnection, path: str, holder: Holder) -> Marker | None:
    """Create the marker for ``holder``; None when done, else the marker that holds the host."""
    for _attempt in range(2):  # a second time when the marker went between the two calls
        try:
            conn.run(_create_call(path, holder))
            return None
        except RemoteCommandError as exc:
            if not _exists_error(exc):
                raise
        current = read_marker(conn, path)
        if current is not None:
            return current
        # Removed between the two calls: the holder just finished. Try once more.
    return Marker(path, None, "")


def remove_if(conn: HostConnection, path: str, run: str) -> Marker | None:
    """Remove the marker when it names ``run`` (a run id or its first characters). Returns
    what was there (None: nothing)."""
    current = read_marker(conn, path)
    if current is None or not _names(current.holder, run):
        return current
    try:
        conn.run(_remove_call(path))
    except RemoteCommandError as exc:
        if not _missing_error(exc):
            raise
    return current


def locked_error(host: str, marker: Marker, *, action: str) -> HostLockedError:
    holder = marker.holder
    gone = holder is not None and holder.process_gone()
    run = holder.run[:12] if holder is not None else "<run>"
    state = (
        f"Its process is gone (pid {holder.pid} on this machine): the marker is stale. "
        if gone and holder
        else ""
    )
    hint = (
        f"{state}If that run no longer runs, look at its journal (exfix rollback undoes what it left) and "
        f"{action} again with --break-lock {run}"
    )
    return HostLockedError(
        host,
        marker.describe(),
        marker.path,
        hint,
        holder_run=None if holder is None else holder.run,
        stale=gone,
    )


# --- this machine's lock ---------------------------------------------------------------------


def _local_name(host: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", host)[:60].lstrip(".") or "host"
    return f"{safe}-{hashlib.sha256(host.encode('utf-8')).hexdigest()[:12]}.lock"


@contextlib.contextmanager
def local_lock(journal: Path, host: str, holder: Holder) -> Iterator[None]:
    """Hold this machine's lock for ``host`` (beside ``journal``) for the block. Raises
    HostLockedError (exit 4) naming the holder when another process holds it."""
    if fcntl is None:
        yield
        return
    # The journal's directory as the journal itself was opened (the user's path, followed);
    # the lock directory in it is exfix's own, and never a link.
    parent, _ = owned_file(journal, create_parents=False)
    with parent as directory, directory.subdir(LOCAL_DIR, create=True) as locks:
        name = _local_name(host)
        fd = locks.open_lock(name)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                text = locks.read(name).decode("utf-8", "replace")
                current = Holder.from_text(text)
                who = current.describe() if current is not None else "a process of this machine"
                # A process holds it now (the kernel drops an flock with its holder): wait.
                hint = "It is running now, on this machine: wait for it to finish"
                raise HostLockedError(
                    host,
                    who,
                    str(locks.path / name),
                    hint,
                    holder_run=None if current is None else current.run,
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.to_json().encode("ascii"), 0)
            yield
        finally:
            os.close(fd)  # closing lets go of the flock


def ended_runs(journal: Path) -> frozenset[str]:
    """The runs whose ``end`` the journal at ``journal`` records (none when it cannot be read)."""
    try:
        entries = read_journal(journal) if journal.exists() else ()
    except (UsageError, OSError):
        return frozenset()
    return frozenset(e.run for e in entries if e.phase == "end")


# --- the run's locks, as apply and rollback take them ------------------------------------------


@dataclass(frozen=True, slots=True)
class LockTarget:
    """A host a run changes: its inventory name, its Exchange version when known, and how to
    open a connection to it."""

    host: str
    exchange_version: str | None
    connect: Callable[[], HostConnection]


class RunLocks:
    """Every lock of one run. The local locks are taken in host-name order; the markers on
    the servers ``forks`` hosts at once (each is a few round trips on a connection of its own,
    and one host after another they cost a 200-host run about half a minute to take and as
    much to let go). Markers do not wait for each other, they refuse, so the order cannot
    deadlock two runs; when any host refuses, every marker taken is let go and the refusal of
    the first such host by name is raised. Each taking, breaking, refusal and release is
    journaled (phases ``lock`` and ``unlock``) through ``record``
    (agent.apply._context.Recorder.record).

    A marker is taken over (removed, journaled ``broken``, then made anew) without being asked
    only when its run is certainly over: ``ended`` holds it (the journal has its ``end``: an
    apply whose last unlock could not reach the host), or it is ``takeover`` (the run a
    rollback undoes) and its process is gone from this machine. Any other holder refuses.

    With ``partial`` (a run that holds hosts before it knows which it will change:
    agent/apply/hold.py) a host that cannot be held does not stop the others: held by another
    run (journaled ``refused``, as always), or its marker not reachable, the host answering
    with an error or its credential missing (journaled ``failed``), it is left out, its local
    lock let go, and :attr:`missed` says why. Whoever changes it later takes its locks then,
    as any run does."""

    def __init__(
        self,
        record: Callable[..., object],
        journal: Path,
        holder: Holder,
        targets: Sequence[LockTarget],
        *,
        break_lock: str | None = None,
        action: str = "apply",
        ended: frozenset[str] = frozenset(),
        takeover: str | None = None,
        forks: int = DEFAULT_APPLY_FORKS,
        partial: bool = False,
    ) -> None:
        self._record = record
        self._journal = journal
        self._holder = holder
        self._targets = sorted({t.host: t for t in targets}.values(), key=lambda t: t.host)
        self._break = None if break_lock is None else check_run_id(break_lock)
        self._action = action
        self._ended = ended
        self._takeover = takeover
        self._forks = forks
        self._partial = partial
        self._local: dict[str, contextlib.ExitStack] = {}  # host -> its local lock, held
        self._markers: list[tuple[LockTarget, str]] = []
        self._markers_lock = threading.Lock()
        self.missed: dict[str, BaseException] = {}  # partial: the hosts left out, and why

    @property
    def held(self) -> frozenset[str]:
        """The hosts whose two locks this run holds now."""
        with self._markers_lock:
            return frozenset(t.host for t, _ in self._markers if t.host in self._local)

    def __enter__(self) -> RunLocks:
        try:
            reached = []
            for target in self._targets:
                stack = contextlib.ExitStack()
                try:
                    stack.enter_context(local_lock(self._journal, target.host, self._holder))
                except HostLockedError as error:
                    if not self._partial:
                        raise
                    self._record("lock", "refused", host=target.host, error=str(error),
                                 detail={"lock": error.where})  # fmt: skip
                    self.missed[target.host] = error
                    continue
                self._local[target.host] = stack
                reached.append(target)
            runs = run_fleet(reached, self._take, forks=self._forks)
            for run in runs:
                if run.error is None:
                    continue
                if not self._partial or not isinstance(run.error, _LEFT_OUT):
                    raise run.error
                if not isinstance(run.error, HostLockedError):  # a refusal is journaled by _take
                    self._record("lock", "failed", host=run.host.host,
                                 error=one_line(str(run.error)))  # fmt: skip
                self.missed[run.host.host] = run.error
                self._local.pop(run.host.host).close()
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _take(self, target: LockTarget) -> None:
        with target.connect() as conn:
            path = marker_of(conn, target.exchange_version)
            if self._break is not None:
                broken = remove_if(conn, path, self._break)
                if broken is not None and broken.holder is not None and _names(broken.holder, self._break):
                    self._record(
                        "lock",
                        "broken",
                        host=target.host,
                        detail={"marker": path, "holder": dataclasses.asdict(broken.holder)},
                    )
            current = try_create(conn, path, self._holder)
            reason = self._over(current)
            if current is not None and current.holder is not None and reason is not None:
                remove_if(conn, path, current.holder.run)
                self._record(
                    "lock",
                    "broken",
                    host=target.host,
                    detail={"marker": path, "holder": dataclasses.asdict(current.holder), "reason": reason},
                )
                current = try_create(conn, path, self._holder)
        if current is not None:
            error = locked_error(target.host, current, action=self._action)
            detail = {
                "marker": path,
                "holder": None if current.holder is None else dataclasses.asdict(current.holder),
                "stale": error.stale,
            }
            self._record("lock", "refused", host=target.host, error=str(error), detail=detail)
            raise error
        with self._markers_lock:
            self._markers.append((target, path))
        self._record("lock", "acquired", host=target.host, detail={"marker": path})

    def _over(self, marker: Marker | None) -> str | None:
        """Why ``marker``'s run is certainly over (None: it may still run)."""
        holder = None if marker is None else marker.holder
        if holder is None:
            return None
        if holder.run in self._ended:
            return "its run ended (the journal has its end)"
        if holder.run == self._takeover and holder.process_gone():
            return "it is the run this rollback undoes, and its process is gone"
        return None

    def release(self, hosts: Collection[str] | None = None) -> None:
        """Remove this run's markers (only where they still name this run; ``forks`` hosts at
        once), then let go of the local locks: of ``hosts`` only when given (a hold lets go of
        the hosts its plan does not change), else of all. Never raises: a marker that cannot be
        removed is journaled and left for a person (the next run names it and the way out)."""
        with self._markers_lock:
            going = [m for m in self._markers if hosts is None or m[0].host in hosts]
            self._markers = [m for m in self._markers if m not in going]
            names = [h for h in self._local if hosts is None or h in hosts]
        run_fleet(sorted(going, key=lambda m: m[0].host), self._let_go, forks=self._forks)
        for name in names:
            self._local.pop(name).close()

    def _let_go(self, marker: tuple[LockTarget, str]) -> None:
        target, path = marker
        try:
            with target.connect() as conn:
                found = remove_if(conn, path, self._holder.run)
        except Exception as exc:  # the host went away: the marker stays, and says whose it is
            self._record(
                "unlock",
                "failed",
                host=target.host,
                error=one_line(f"{type(exc).__name__}: {exc}"),
                detail={"marker": path},
            )
            return
        ours = found is not None and found.holder is not None and found.holder.run == self._holder.run
        self._record(
            "unlock",
            "released" if ours else "not-ours",
            host=target.host,
            detail={"marker": path}
            if ours
            else {"marker": path, "found": None if found is None else found.describe()},
        )
