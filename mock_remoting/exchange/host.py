"""Emulated Exchange hosts (``backend.HostRuntime``) and the fleet that holds them.

:class:`EmulatedHost` runs what the protocol server hands it: PSRP pipelines on either
endpoint and WinRS scripts. The Exchange endpoint is in NoLanguage mode (scripts fail the
pipeline with ScriptsNotAllowed); the OS endpoint and WinRS run the small script language of
``script.py``. Cmdlet availability follows the endpoint and the Exchange version.

Python-side inspection for tests: ``host.state`` (the mutable :class:`HostState`),
``host.queues`` (frozen :class:`QueueView` snapshots with delivered counts),
``fleet.totals()``.
"""

from __future__ import annotations

import enum
import logging
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psrpcore.types import ErrorCategory, ErrorRecord, PSObject, deserialize

from agent.model.catalogue import Param
from agent.permissions import Grant
from mock_remoting.backend import Command, Endpoint, HostRuntime, InvocationResult, Parameter, RawClixml
from mock_remoting.dns.world import DnsWorld
from mock_remoting.exchange import records
from mock_remoting.exchange.binding import COMMON, BindingFailed, P, bind
from mock_remoting.exchange.cmdlets import CMDLETS, CmdletDef, Context, Terminating, property_value
from mock_remoting.exchange.mailflow import run_attempt
from mock_remoting.exchange.replay import ReplayError, load_capture
from mock_remoting.exchange.scenario import Scenario
from mock_remoting.exchange.script import ScriptSyntaxError, parse
from mock_remoting.exchange.state import (
    Clock,
    HostState,
    Organization,
    SendConnector,
    emulating,
    host_states,
    utc_now,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QueueView:
    """A snapshot of one queue for tests: ``queued + delivered`` is constant."""

    identity: str
    next_hop: str
    delivery_type: str
    category: str
    status: str
    queued: int
    delivered: int
    last_error: str | None
    retry_count: int
    attempts: int


class EmulatedHost:
    """One Exchange server. Thread-safe: all state changes happen under the fleet's lock."""

    def __init__(self, org: Organization, state: HostState, dns_address_map: Mapping[str, str]) -> None:
        self.org = org
        self.state = state
        self.dns_address_map = dict(dns_address_map)
        self._replays: dict[str, list[RawClixml]] = {}
        # The lab account's least-privilege roles (agent.permissions); None: an administrator.
        self.grant: Grant | None = None

    # --- HostRuntime -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.state.fqdn

    @property
    def short_name(self) -> str:
        return self.state.name

    def invoke(
        self, endpoint: Endpoint, pipeline: Sequence[Command], cancel: threading.Event
    ) -> InvocationResult:
        return self.invoke_as(endpoint, pipeline, cancel, None)

    def answers_at_once(self, endpoint: Endpoint, pipeline: Sequence[Command]) -> bool:
        """QuickReads: a pipeline of reads of this host's state (no Resolve-DnsName, which
        queries the lab's DNS responders over UDP, no Start-Sleep, no script, nothing that
        changes state) of cmdlets this endpoint has."""
        if _pipeline_kind(pipeline) is not _Kind.READ:
            return False
        for command in pipeline:
            definition = CMDLETS.get(command.name.rsplit("\\", 1)[-1].strip().lower())
            if definition is None or not definition.locks or endpoint not in definition.endpoints:
                return False
        return True

    # --- least privilege (SessionRuntimes) -------------------------------------------------

    def configurations(self) -> tuple[str, ...]:
        return (self.grant.configuration_name,) if self.grant is not None else ()

    def session_runtime(self, configuration: str) -> HostRuntime | None:
        """The full host for an unrestricted account. A restricted one gets the Exchange
        endpoint built from its RBAC roles, the JEA endpoint, and nothing else: no
        Microsoft.PowerShell, no cmd shell (Access is denied)."""
        if self.grant is None:
            return self
        if configuration.lower() == Endpoint.EXCHANGE.value.lower():
            return RestrictedSession(self, Rights(Endpoint.EXCHANGE, self.grant))
        if configuration.lower() == self.grant.configuration_name.lower():
            return RestrictedSession(self, Rights(Endpoint.OS, self.grant))
        return None

    def invoke_as(
        self, endpoint: Endpoint, pipeline: Sequence[Command], cancel: threading.Event, rights: Rights | None
    ) -> InvocationResult:
        """Run the pipeline with ``rights`` (None: an unrestricted account). A pipeline of
        reads (Get-*, Select-Object) that succeeds gets a ``cache_key`` naming its answer: the
        host (or, for organisation-wide cmdlets, the Exchange version), the session's rights,
        the commands and the state's generation. Any other pipeline except
        Resolve-DnsName and Start-Sleep, which change nothing, may change state: the
        generation moves before and after it, so no read that overlaps it is cached."""
        kind = _pipeline_kind(pipeline)
        if kind is _Kind.CHANGE:
            self.org.changed()
            try:
                with emulating():
                    return self._invoke(endpoint, pipeline, cancel, rights)
            finally:
                self.org.changed()
        generation = self.org.generation
        with emulating():
            result = self._invoke(endpoint, pipeline, cancel, rights)
        if kind is _Kind.READ and result.failure is None and not result.errors:
            signature = _signature(pipeline)
            if signature is not None and self.org.generation == generation:
                org_wide = signature[0][0] in _ORG_WIDE
                scope: tuple[str, object] = (
                    ("org", self.state.spec.major) if org_wide else ("host", self.state.fqdn)
                )
                # A restricted session's answers are its own (its roles decide what it may run).
                session = None if rights is None else (rights.endpoint.value, id(rights.grant))
                result.cache_key = (scope, session, endpoint.value, generation, signature)
        return result

    def _invoke(
        self, endpoint: Endpoint, pipeline: Sequence[Command], cancel: threading.Event, rights: Rights | None
    ) -> InvocationResult:
        result = InvocationResult()
        try:
            if any(command.is_script for command in pipeline):
                # The JEA endpoint (RestrictedRemoteServer) is in NoLanguage mode as well: the
                # recording test_psrp_with_jea_configuration.yml shows ScriptsNotAllowed.
                if endpoint is Endpoint.EXCHANGE or rights is not None:
                    result.failure = records.no_language()
                    return result
                if not pipeline[0].is_script or any(c.is_script for c in pipeline[1:]):
                    result.failure = records.parse_error(
                        "A script can only be the first element of a pipeline.", "NotSupportedByLab"
                    )
                    return result
                try:
                    statements = parse(pipeline[0].name)
                except ScriptSyntaxError as error:
                    result.failure = records.parse_error(error.message, error.fqid)
                    return result
                output, errors, _ = self._run_statements(endpoint, statements, cancel)
                result.errors.extend(errors)
                if len(pipeline) > 1:
                    output, more = self._run_pipeline(endpoint, pipeline[1:], cancel, output)
                    result.errors.extend(more)
                result.output.extend(output)
                return result
            output, errors = self._run_pipeline(endpoint, pipeline, cancel, None, rights)
            result.output.extend(output)
            result.errors.extend(errors)
        except Terminating as stop:
            result.failure = stop.record
        except Exception as error:  # never let a lab bug kill the server thread
            log.exception("emulation error on %s", self.name)
            result.failure = records.error_record(
                f"The exfix lab failed to run the command: {error!r}",
                "LabInternalError",
                ErrorCategory.NotSpecified,
            )
        return result

    def run_script(self, script: str, cancel: threading.Event) -> InvocationResult:
        self.org.changed()  # a script may change anything: nothing read before it is reused
        try:
            with emulating():
                return self._run_script(script, cancel)
        finally:
            self.org.changed()

    def _run_script(self, script: str, cancel: threading.Event) -> InvocationResult:
        result = InvocationResult()
        try:
            statements = parse(script)
        except ScriptSyntaxError as error:
            result.failure = records.parse_error(error.message, error.fqid)
            result.exit_code = 1
            return result
        try:
            output, errors, last_failed = self._run_statements(Endpoint.OS, statements, cancel)
        except Exception as error:
            log.exception("emulation error on %s", self.name)
            result.failure = records.error_record(
                f"The exfix lab failed to run the script: {error!r}",
                "LabInternalError",
                ErrorCategory.NotSpecified,
            )
            result.exit_code = 1
            return result
        result.output.extend(output)
        result.errors.extend(errors)
        # powershell.exe exits 1 when the last statement failed ($? false), else 0.
        result.exit_code = 1 if last_failed else 0
        return result

    # --- inspection ------------------------------------------------------------------------

    @property
    def queues(self) -> tuple[QueueView, ...]:
        with self.org.lock:
            return tuple(
                QueueView(
                    f"{self.state.name}\\{q.number}",
                    q.next_hop,
                    q.delivery_type,
                    "External" if q.external else "Internal",
                    q.status,
                    q.queued,
                    q.delivered,
                    q.last_error,
                    q.retry_count,
                    q.attempts,
                )
                for q in self.state.queues
            )

    def queue(self, next_hop: str) -> QueueView:
        """The queue whose NextHopDomain is ``next_hop`` (KeyError when there is none)."""
        for view in self.queues:
            if view.next_hop.lower() == next_hop.lower():
                return view
        raise KeyError(next_hop)

    # --- execution -------------------------------------------------------------------------

    def _run_statements(
        self, endpoint: Endpoint, statements: Sequence[Sequence[Command]], cancel: threading.Event
    ) -> tuple[list[Any], list[ErrorRecord], bool]:
        """A script: each statement runs on; a statement-terminating error goes to the error
        stream and the next statement runs, as in PowerShell."""
        output: list[Any] = []
        errors: list[ErrorRecord] = []
        last_failed = False
        for statement in statements:
            if cancel.is_set():
                break
            try:
                out, errs = self._run_pipeline(endpoint, statement, cancel, None)
            except Terminating as stop:
                errors.append(stop.record)
                last_failed = True
                continue
            output.extend(out)
            errors.extend(errs)
            last_failed = bool(errs)
        return output, errors, last_failed

    def _lookup(self, endpoint: Endpoint, name: str, rights: Rights | None = None) -> CmdletDef:
        bare = name.rsplit("\\", 1)[-1].strip()
        definition = CMDLETS.get(bare.lower())
        if definition is None or endpoint not in definition.endpoints:
            raise Terminating(records.command_not_found(bare))
        if endpoint is Endpoint.EXCHANGE and self.state.spec.major not in definition.versions:
            raise Terminating(records.command_not_found(definition.name))
        if endpoint is Endpoint.EXCHANGE and definition.name.lower() in self.state.spec.rbac_denied:
            # Exchange's remote session holds only the cmdlets the account's management roles
            # grant ("Find the permissions required to run any Exchange cmdlet",
            # learn.microsoft.com): one outside them is not there at all.
            raise Terminating(records.command_not_found(definition.name))
        if rights is not None and not rights.shows(definition.name):
            # Exchange builds the session from the account's management roles, JEA from its
            # role capabilities: a cmdlet outside them does not exist in the session.
            raise Terminating(records.command_not_found(definition.name))
        return definition

    def _run_pipeline(
        self,
        endpoint: Endpoint,
        pipeline: Sequence[Command],
        cancel: threading.Event,
        upstream: list[Any] | None,
        rights: Rights | None = None,
    ) -> tuple[list[Any], list[ErrorRecord]]:
        errors: list[ErrorRecord] = []
        # Resolve and bind every command before running any, as PowerShell does.
        prepared: list[tuple[CmdletDef, dict[str, Any]]] = []
        for command in pipeline:
            definition = self._lookup(endpoint, command.name, rights)
            params = definition.all_params if rights is None else rights.parameters(definition)
            try:
                args = bind(definition.name, params, command.parameters)
            except BindingFailed as failed:
                raise Terminating(failed.record) from None
            if rights is not None:
                rights.validate(definition, args)
            prepared.append((definition, args))
        inputs = upstream
        for definition, args in prepared:
            ctx = Context(
                self.state, self.org, self.dns_address_map, endpoint, cancel, cmdlet=definition.name
            )
            if inputs is None:
                self._execute(ctx, definition, args, ())
            elif definition.whole_input:
                self._execute(ctx, definition, args, [as_psobject(i) for i in inputs])
            elif definition.input_param is None:
                for item in inputs:
                    ctx.error(records.input_not_bound(definition.name, _describe(item)))
            else:
                for item in inputs:
                    extra = dict(args)
                    if definition.input_param == "Identity":
                        value = property_value(item, "Identity") if isinstance(item, PSObject) else None
                        extra["Identity"] = str(value if value is not None else item)
                    else:
                        extra[definition.input_param] = [item]
                    self._execute(ctx, definition, extra, ())
            errors.extend(self._error_action(ctx, args))
            inputs = ctx.output
        return list(inputs or []), errors

    def _execute(
        self, ctx: Context, definition: CmdletDef, args: dict[str, Any], inputs: Sequence[Any]
    ) -> None:
        replay = self.state.spec.replay.get(definition.name.lower())
        if replay is not None:
            ctx.output.extend(self._capture(replay))
            return
        if definition.locks:
            with self.org.lock:
                definition.run(ctx, args, inputs)
        else:
            definition.run(ctx, args, inputs)

    def _capture(self, path: Path) -> list[RawClixml]:
        key = str(path)
        if key not in self._replays:
            try:
                self._replays[key] = load_capture(path)
            except ReplayError as error:
                raise Terminating(
                    records.error_record(str(error), "LabReplayError", ErrorCategory.ReadError)
                ) from None
        return list(self._replays[key])

    @staticmethod
    def _error_action(ctx: Context, args: dict[str, Any]) -> list[ErrorRecord]:
        action = args.get("ErrorAction", "Continue")
        if action == "Stop" and ctx.errors:
            raise Terminating(ctx.errors[0])
        if action in ("SilentlyContinue", "Ignore"):
            return []
        return list(ctx.errors)


class _Kind(enum.Enum):
    READ = "read"  # Get-*, Select-Object: answers may be cached
    NEUTRAL = "neutral"  # changes nothing, but its answer is live (DNS) or it only waits
    CHANGE = "change"  # anything else, scripts included


# Cmdlets that change nothing and whose answers are not reused: Resolve-DnsName asks the DNS
# world, which tests and the world's own administrator (DnsWorld.set_forward) change from
# outside any cmdlet; Start-Sleep only waits.
_NEUTRAL = frozenset({"resolve-dnsname", "start-sleep"})
# Answers that are the same on every server of one Exchange version: send connectors live in
# AD (Get-SendConnector shows the organisation's, whichever server is asked).
_ORG_WIDE = frozenset({"get-sendconnector"})


def _pipeline_kind(pipeline: Sequence[Command]) -> _Kind:
    kind = _Kind.READ
    for command in pipeline:
        if command.is_script:
            return _Kind.CHANGE
        name = command.name.rsplit("\\", 1)[-1].strip().lower()
        if name in _NEUTRAL:
            kind = _Kind.NEUTRAL
        elif not (name.startswith("get-") or name == "select-object"):
            return _Kind.CHANGE
    return kind


def _signature(pipeline: Sequence[Command]) -> tuple[tuple[str, tuple[Any, ...]], ...] | None:
    """The pipeline as a hashable value, or None when a parameter is an object (PSObject)."""
    commands: list[tuple[str, tuple[Any, ...]]] = []
    for command in pipeline:
        params: list[Any] = []
        for parameter in command.parameters:
            value = _hashable(parameter.value)
            if value is _UNHASHABLE:
                return None
            params.append((parameter.name, value))
        commands.append((command.name.rsplit("\\", 1)[-1].strip().lower(), tuple(params)))
    return tuple(commands)


_UNHASHABLE = object()


def _hashable(value: Any) -> Any:
    # psrpcore hands strings and numbers over as its PSString, PSInt32... (subclasses of str
    # and int, equal to their values); the type stays in the key, since binding may tell them
    # apart.
    if value is None or isinstance(value, (bool, int, float, str)):
        return (type(value).__name__, value)
    if isinstance(value, (list, tuple)):
        items = tuple(_hashable(v) for v in value)
        return _UNHASHABLE if any(i is _UNHASHABLE for i in items) else ("list", items)
    if isinstance(value, dict) and all(type(k) is str for k in value):
        pairs = tuple((k, _hashable(v)) for k, v in value.items())
        return _UNHASHABLE if any(v is _UNHASHABLE for _, v in pairs) else ("dict", pairs)
    return _UNHASHABLE

# Core cmdlets a restricted session has whatever the roles say: RestrictedRemoteServer's
# defaults (about_Session_Configuration_Files) and Exchange's own remote session both keep
# Select-Object. The lab serves no other of them.
_ALWAYS = frozenset({"select-object"})
_PATH_PARAMETERS = ("LiteralPath", "Path")
_PROVIDER_CMDLETS = frozenset({"get-content", "new-item", "remove-item", "get-itemproperty", "copy-item"})


@dataclass(frozen=True, slots=True)
class Rights:
    """What a restricted session may run: on ``endpoint``, the account's grant."""

    endpoint: Endpoint
    grant: Grant

    def shows(self, cmdlet: str) -> bool:
        name = cmdlet.lower()
        if name in _ALWAYS:
            return True
        if self.endpoint is Endpoint.EXCHANGE:
            return name in self.grant.exchange
        return name in self.grant.os

    def _visible(self, definition: CmdletDef) -> tuple[Param, ...] | None:
        """The parameters the role lists; None: every parameter of the cmdlet."""
        name = definition.name.lower()
        if name in _ALWAYS:
            return None
        if self.endpoint is Endpoint.EXCHANGE:
            # A role entry lists its parameters (Set-ManagementRoleEntry -Parameters); one not
            # listed is not on the session's proxy of the cmdlet.
            return tuple(Param(p) for p in sorted(self.grant.exchange[name]))
        visible = self.grant.os[name]
        return visible.parameters or None

    def parameters(self, definition: CmdletDef) -> tuple[P, ...]:
        """The cmdlet's parameters as the session shows them: a parameter outside the role is
        NamedParameterNotFound at binding, as in a real restricted session."""
        visible = self._visible(definition)
        if visible is None:
            return definition.all_params
        names = {p.name.lower() for p in visible}
        return tuple(p for p in definition.params if p.name.lower() in names) + COMMON

    def validate(self, definition: CmdletDef, args: dict[str, Any]) -> None:
        """JEA's ValidateSet / ValidatePattern, and the providers the role makes visible."""
        if self.endpoint is not Endpoint.OS:
            return
        for param in self._visible(definition) or ():
            if param.name not in args or (not param.values and param.pattern is None):
                continue
            raw = args[param.name]
            for item in raw if isinstance(raw, (list, tuple)) else [raw]:
                text = str(item)
                if param.values and text.lower() not in {v.lower() for v in param.values}:
                    raise Terminating(
                        records.argument_not_in_set(definition.name, param.name, text, param.values)
                    )
                if param.pattern is not None and not re.search(param.pattern, text, re.IGNORECASE):
                    raise Terminating(
                        records.argument_not_matching(definition.name, param.name, text, param.pattern)
                    )
        if definition.name.lower() in _PROVIDER_CMDLETS:
            for key in (k for k in _PATH_PARAMETERS if k in args):
                registry = str(args[key]).upper().startswith(("HKLM:", "HKCU:"))
                provider = "Registry" if registry else "FileSystem"
                if provider not in self.grant.providers:
                    raise Terminating(records.provider_not_found(definition.name, provider))


class RestrictedSession:
    """A host as a restricted session sees it (a ``HostRuntime`` for one shell)."""

    def __init__(self, host: EmulatedHost, rights: Rights) -> None:
        self.host = host
        self.rights = rights

    @property
    def name(self) -> str:
        return self.host.name

    def invoke(
        self, endpoint: Endpoint, pipeline: Sequence[Command], cancel: threading.Event
    ) -> InvocationResult:
        return self.host.invoke_as(endpoint, pipeline, cancel, self.rights)

    def run_script(self, script: str, cancel: threading.Event) -> InvocationResult:
        # Never reached: a restricted account gets no cmd shell (session_runtime).
        return InvocationResult(failure=records.no_language(), exit_code=1)


def _describe(item: Any) -> Any:
    if isinstance(item, RawClixml):
        return "RawClixml"
    return item


def as_psobject(item: Any) -> Any:
    """A replayed capture as a psrpcore object (so Select-Object can read its properties)."""
    if isinstance(item, RawClixml):
        return deserialize(ET.fromstring(item.xml), None)  # type: ignore[arg-type]
    return item


class Fleet:
    """Every emulated host of a scenario, sharing one organisation (connectors, AD, DNS)."""

    def __init__(
        self,
        scenario: Scenario,
        world: DnsWorld,
        dns_address_map: Mapping[str, str],
        *,
        clock: Clock | None = None,
    ) -> None:
        org = Organization(
            scenario=scenario,
            world=world,
            clock=clock or utc_now,
            internet_addresses=scenario.internet_addresses(),
        )
        now = org.clock()
        with org.lock:
            org.hosts = host_states(scenario.hosts)
            org.connectors = [SendConnector.from_spec(c, now) for c in scenario.send_connectors]
            for state in org.hosts.values():
                # NICs that register themselves put the host's A record in the AD zone; with
                # registration off on the MAPI NIC its address is not in it (KB3007623), and
                # a backup NIC that registers puts its own there (HostState.registered_addresses).
                world.register(state.fqdn, state.registered_addresses())
            # The state at load is one delivery attempt with the initial configuration.
            for state in org.hosts.values():
                for queue in state.queues:
                    run_attempt(org, state, queue)
        self.scenario = scenario
        self.world = world
        self.org = org
        self.hosts: tuple[EmulatedHost, ...] = tuple(
            EmulatedHost(org, state, dns_address_map) for state in org.hosts.values()
        )
        # By lower-case name and FQDN: the lab looks every host up once at start-up, so a
        # linear search made a 10,000-host start quadratic (most of its 95 s).
        self._by_name: dict[str, EmulatedHost] = {}
        for host in self.hosts:
            self._by_name[host.state.name.lower()] = host
            self._by_name[host.state.fqdn.lower()] = host

    def host(self, name_or_fqdn: str) -> EmulatedHost:
        found = self._by_name.get(name_or_fqdn.lower().rstrip("."))
        if found is None:
            raise KeyError(name_or_fqdn)
        return found

    def totals(self) -> tuple[int, int]:
        """(queued, delivered) over the whole fleet."""
        with self.org.lock:
            queued = sum(q.queued for h in self.org.hosts.values() for q in h.queues)
            delivered = sum(q.delivered for h in self.org.hosts.values() for q in h.queues)
        return queued, delivered


def command(name: str, *params: tuple[str | None, Any]) -> Command:
    """A Command with parameters in order: ``command("Get-Queue", ("Server", "EX01"))``."""
    return Command(name=name, parameters=tuple(Parameter(n, v) for n, v in params))
