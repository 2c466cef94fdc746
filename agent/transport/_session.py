"""What the PSRP and WinRS sessions share: lazy open, deadlines, retries, error mapping.

A subclass implements three steps: ``_open(budget)`` (create the runspace pool / shell),
``_execute(call, budget)`` (run one cmdlet on it) and ``_discard(graceful)`` (drop it). This
class decides, for each failure, whether to open again and whether to re-send the command.
"""

from __future__ import annotations

import abc
import logging
import random
import time
from collections.abc import Callable

from agent.errors import CmdletError, ExfixError, HostError, HostTimeoutError, UsageError
from agent.model.command import CmdletCall, Endpoint
from agent.model.credential import Credential
from agent.model.remote import RemoteObject
from agent.model.target import Auth, EndpointConfig, HostTarget, Scheme
from agent.transport._errors import classify
from agent.transport.base import CommandResult, is_safe_to_retry
from agent.transport.deadline import Budget, HostDeadline
from agent.transport.retry import RetryPolicy

log = logging.getLogger("agent.transport")


class BudgetExhausted(Exception):
    """Raised from inside a library call when the current budget has no time left."""


class RetryingSession(abc.ABC):
    """Base of PsrpSession and WinrmSession (see the module docstring)."""

    transport_name = "?"

    def __init__(
        self,
        target: HostTarget,
        endpoint: Endpoint,
        credential: Credential,
        deadline: HostDeadline,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.host = target.name
        self.endpoint = endpoint
        self.target = target
        self.config: EndpointConfig = target.exchange if endpoint is Endpoint.EXCHANGE else target.os
        self.credential = credential
        self.deadline = deadline
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rand = rand
        self._opened = False
        self._closed = False
        # Set by subclasses once the server accepted the command request: from then on the
        # command may have run, and a mutation must not be sent again.
        self._command_sent = False
        self.opens = 0  # how many times a pool/shell was opened (reconnects included)
        self._check_config()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._opened else "not opened"
        return f"<{type(self).__name__} {self.host} {self.endpoint.value} {self.config.url} {state}>"

    # -- what subclasses implement --------------------------------------------------------

    @abc.abstractmethod
    def _open(self, budget: Budget) -> None:
        """Implemented by the PSRP and WinRS sessions."""

    @abc.abstractmethod
    def _execute(self, call: CmdletCall, budget: Budget) -> CommandResult:
        """Implemented by the PSRP and WinRS sessions."""

    @abc.abstractmethod
    def _discard(self, graceful: bool) -> None:
        """Implemented by the PSRP and WinRS sessions."""

    # -- the Session interface ------------------------------------------------------------

    def open(self, *, timeout: float | None = None) -> None:
        """Open the pool/shell now instead of on the first command (e.g. to test a host)."""
        budget = self.deadline.budget(timeout, f"opening {self.config.url}")
        self._with_retries(budget, safe=True, action=lambda: self._ensure_open(budget), what="open")

    def invoke(self, call: CmdletCall, *, timeout: float | None = None) -> CommandResult:
        if call.endpoint is not self.endpoint:
            raise ValueError(
                f"{call.cmdlet} is for the {call.endpoint.value} endpoint, not {self.endpoint.value}"
            )
        seconds = timeout if timeout is not None else self.target.timeouts.command
        budget = self.deadline.budget(seconds, call.cmdlet)

        def attempt() -> CommandResult:
            self._ensure_open(budget)
            return self._execute(call, budget)

        return self._with_retries(budget, safe=is_safe_to_retry(call), action=attempt, what=call.cmdlet)

    def run(self, call: CmdletCall, *, timeout: float | None = None) -> tuple[RemoteObject, ...]:
        result = self.invoke(call, timeout=timeout)
        if result.errors:
            first = result.errors[0]
            raise CmdletError(
                self.host, call.cmdlet, first.message, first.fully_qualified_error_id, first.category
            )
        return result.objects

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._opened:
            self._opened = False
            try:
                self._discard(graceful=True)
            except Exception as exc:  # closing must never fail the host's result
                log.debug("%s: closing %s failed: %s", self.host, self.config.url, type(exc).__name__)

    def service_principal(self) -> str | None:
        """``<service>/<host name>`` a Kerberos client of this endpoint asks a ticket for; None
        for other authentication. The host name is the override when one is set (exfix then
        connects to one address and authenticates as another name, as through a load
        balancer or an alias), else the host connected to."""
        if self.config.auth not in (Auth.KERBEROS, Auth.NEGOTIATE):
            return None
        service = self.config.negotiate_service or self.default_service()
        return f"{service}/{self.config.negotiate_hostname_override or self.config.host}"

    def default_service(self) -> str:
        """The Kerberos service class used when the inventory gives none."""
        return "HTTP"

    # -- machinery ------------------------------------------------------------------------

    def _check_config(self) -> None:
        if (
            self.config.auth is Auth.BASIC
            and self.config.scheme is Scheme.HTTP
            and not self.target.allow_insecure_basic
        ):
            raise UsageError(
                f"{self.host}: basic authentication over plain HTTP to {self.config.url} is refused "
                "(set exfix_allow_insecure_basic: true to allow it)"
            )

    def _ensure_open(self, budget: Budget) -> None:
        if self._closed:
            raise HostError(self.host, f"the {self.endpoint.value} session is closed")
        if self._opened:
            return
        if budget.expired:
            raise budget.timeout_error()
        self.opens += 1
        log.debug("%s: opening %s (%s)", self.host, self.config.url, self.transport_name)
        self._open(budget)
        self._opened = True

    def _drop(self, graceful: bool) -> None:
        if not self._opened:
            return
        self._opened = False
        try:
            self._discard(graceful)
        except Exception as exc:  # the connection is already broken
            log.debug("%s: discarding %s: %s", self.host, self.config.url, type(exc).__name__)

    def _with_retries(
        self, budget: Budget, *, safe: bool, action: Callable[[], CommandResult | None], what: str
    ) -> CommandResult:
        """Run ``action``; on a transient failure drop the connection and, when allowed, retry.

        A failure while opening is always retryable (nothing ran yet). A failure after the
        command was sent is retried only for reads (``safe``): apply must never run a change
        twice, so a mutation that may or may not have happened is reported, not repeated. The
        one exception is the server answering that it no longer knows the pool/shell before it
        accepted the command: then the change provably did not run, and is sent again on a
        new pool.
        """
        retry = 0
        while True:
            self._command_sent = False
            try:
                result = action()
                return result if result is not None else CommandResult()
            except BudgetExhausted:
                self._drop(graceful=False)
                raise budget.timeout_error() from None
            except ExfixError:
                raise  # already decided (a command's own timeout leaves a usable pool behind)
            except Exception as exc:
                mapped = classify(
                    exc,
                    host=self.host,
                    url=self.config.url,
                    username=self.credential.username,
                    auth=self.config.auth.value,
                    spn=self.service_principal(),
                )
                if mapped is None:
                    raise
                if isinstance(mapped.error, HostTimeoutError) and budget.expired:
                    # The HTTP timeout was cut to the budget: say which limit was reached.
                    self._drop(graceful=False)
                    raise budget.timeout_error() from exc
                # Proof that the command never ran: the failure came before the pool/shell
                # existed, or the server answered that it does not know the shell before it
                # accepted the command (pypsrp #203: Exchange drops idle pools).
                not_run = not self._opened or (mapped.shell_gone and not self._command_sent)
                if mapped.transient or mapped.shell_gone:
                    self._drop(graceful=False)
                may_retry = (mapped.transient or mapped.shell_gone) and (not_run or safe)
                if not may_retry or retry + 1 >= self.retry.attempts:
                    raise mapped.error from exc
                delay = self.retry.delay(retry, self._rand)
                if delay >= budget.remaining():
                    raise mapped.error from exc
                log.info("%s: %s failed (%s); retrying in %.1fs", self.host, what, mapped.error.reason, delay)
                self._sleep(delay)
                retry += 1
