"""The lab's protocol server: HTTP(S), authentication, WS-Management, PSRP and WinRS.

``LabServer`` serves any set of ``backend.HostRuntime`` objects; ``mock_remoting.lab.Lab``
builds one from a scenario. The fault schema is documented in ``faults.py``.
"""

from mock_remoting.server.core import (
    RESERVED_DESCRIPTORS,
    Exchange,
    HostEndpoint,
    LabServer,
    Listener,
    ListenError,
    Recorder,
    raise_descriptor_limit,
)
from mock_remoting.server.counters import CounterKey, RequestCounters
from mock_remoting.server.faults import FaultKind, FaultSpec, FaultSpecError, parse_faults

__all__ = [
    "RESERVED_DESCRIPTORS",
    "CounterKey",
    "Exchange",
    "FaultKind",
    "FaultSpec",
    "FaultSpecError",
    "HostEndpoint",
    "LabServer",
    "ListenError",
    "Listener",
    "Recorder",
    "RequestCounters",
    "parse_faults",
    "raise_descriptor_limit",
]
