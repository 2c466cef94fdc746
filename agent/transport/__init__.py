"""exfix transport: the IO edge that reaches Exchange hosts.

- :func:`connect` gives a :class:`HostConnection` with ``.exchange`` (PSRP,
  Microsoft.Exchange, cmdlets only) and ``.os`` (PSRP Microsoft.PowerShell, or WinRS with
  ``exfix_os_transport: winrm``) sessions implementing :class:`Session`. PSRP goes through
  pypsrp (psrp.py) or psrpcore and exfix's WSMan layer (psrpcore_session.py, wsman.py):
  ``exfix_psrp_client``, overridden by ``EXFIX_PSRP_CLIENT``.
- Every command has a deadline inside the host's :class:`HostDeadline`.
- Output is :class:`~agent.model.remote.RemoteObject` values, through one CLIXML converter
  (:mod:`agent.transport.clixml`); error records are :class:`~agent.model.remote.RemoteError`.
"""

from agent.transport.base import CommandResult, Session, is_safe_to_retry
from agent.transport.connection import HostConnection, connect
from agent.transport.deadline import Budget, HostDeadline
from agent.transport.retry import RetryPolicy

__all__ = [
    "Budget",
    "CommandResult",
    "HostConnection",
    "HostDeadline",
    "RetryPolicy",
    "Session",
    "connect",
    "is_safe_to_retry",
]
