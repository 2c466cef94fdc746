"""The serialized-pipeline cache of agent/transport/psrp.py: what it hands pypsrp is byte for
byte what pypsrp itself would have sent for that call, and a call is never sent another's."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import Serializer
from pypsrp.wsman import WSMan

from agent.model.command import CmdletCall, Endpoint, ParamValue
from agent.transport import psrp


class _Captured(PowerShell):
    """begin_invoke builds the CreatePipeline message exactly as for a real invocation, and
    hands it here instead of sending it."""

    message: Any = None

    def _invoke(self, msg: Any) -> None:
        self.message = msg


def _create_pipeline(pool: RunspacePool, call: CmdletCall) -> Any:
    ps = _Captured(pool)
    ps.add_cmdlet(call.cmdlet)
    for name, value in call.parameters:
        ps.add_parameter(name, psrp._wire_value(value))
    ps.begin_invoke()
    return ps.message


def _pool() -> RunspacePool:
    # Nothing is sent: a pool object only, for the protocol version and ids the message uses.
    wsman = WSMan("127.0.0.1", auth="basic", username="u", password="p", ssl=False, encryption="never")
    pool = RunspacePool(wsman)
    pool.protocol_version = "2.3"  # what the server's SessionCapability sets on open
    return pool


def _cached(pool: RunspacePool, call: CmdletCall) -> bytes:
    serializer = psrp._OutputSerializer()
    serializer.pipeline_key = psrp.pipeline_key(call, pool.protocol_version)
    packed = serializer.serialize(_create_pipeline(pool, call))
    assert isinstance(packed, bytes)
    return packed


def _fresh(pool: RunspacePool, call: CmdletCall) -> bytes:
    element = Serializer().serialize(_create_pipeline(pool, call))
    assert element is not None
    return ET.tostring(element, encoding="utf-8", method="xml")


_values: st.SearchStrategy[ParamValue] = st.one_of(
    st.text(max_size=20), st.integers(-5, 70000), st.booleans(),
    st.lists(st.text(max_size=8), max_size=3).map(tuple),
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["Resolve-DnsName", "Get-Queue", "Set-DnsClientServerAddress"]),
    st.dictionaries(st.sampled_from(["Name", "Server", "Type", "Identity", "ServerAddresses"]), _values,
                    max_size=3),
)  # fmt: skip
def test_the_cached_bytes_are_what_pypsrp_sends_and_belong_to_their_call(
    cmdlet: str, parameters: dict[str, ParamValue]
) -> None:
    pool = _pool()
    call = CmdletCall(Endpoint.OS, cmdlet, tuple(parameters.items()))
    first = _cached(pool, call)  # serialized, and kept
    again = _cached(pool, call)  # from the cache
    assert first == again == _fresh(pool, call)
    other = CmdletCall(Endpoint.OS, cmdlet, (*call.parameters, ("DnsOnly", True)))
    assert _cached(pool, other) == _fresh(pool, other) != first


def test_values_that_python_calls_equal_are_different_messages() -> None:
    """False == 0 and (True,) == (1,) in Python; on the wire they are <B> and <I32>. Found by
    the test above: the first cache keyed on the values alone sent -Server 0 as $false."""
    pool = _pool()
    for a, b in ((False, 0), (True, 1), ((1,), (True,))):
        first = CmdletCall(Endpoint.OS, "Resolve-DnsName", (("Server", a),))
        second = CmdletCall(Endpoint.OS, "Resolve-DnsName", (("Server", b),))
        assert _cached(pool, first) == _fresh(pool, first)
        assert _cached(pool, second) == _fresh(pool, second) != _fresh(pool, first)


def test_only_an_announced_create_pipeline_is_cached() -> None:
    serializer = psrp._OutputSerializer()
    assert serializer.pipeline_key is None
    element = serializer.serialize("text")  # any other message: pypsrp's ordinary path
    assert element is not None and element.tag == "S"
