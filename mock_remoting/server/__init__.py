"""The lab's protocol server: HTTP(S), authentication, WS-Management, PSRP and WinRS.

``LabServer`` serves any set of ``backend.HostRuntime`` objects; ``mock_remoting.lab.Lab``
builds one from a scenario. The fault schema is documented in ``faults.py``.
"""

from mock_remoting.server.core import Exchange, HostEndpoint, LabServer, Recorder
from mock_remoting.server.counters import CounterKey, RequestCounters
from mock_remoting.server.faults import FaultKind, FaultSpec, FaultSpecError, parse_faults

__all__ = [
    "CounterKey",
    "Exchange",
    "FaultKind",
    "FaultSpec",
    "FaultSpecError",
    "HostEndpoint",
    "LabServer",
    "Recorder",
    "RequestCounters",
    "parse_faults",
]
