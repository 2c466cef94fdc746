"""The lab's reuse of serialized answers (mock_remoting/server/clixml_cache.py): a read is
served from the cache only while nothing could have changed it, and the cached CLIXML is
what psrpcore's own serialization sends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from pypsrp.powershell import PowerShell, RunspacePool

from mock_remoting.backend import Endpoint
from mock_remoting.exchange import command
from mock_remoting.lab import Lab
from mock_remoting.server.clixml_cache import ClixmlCache, ParsedCache

pytestmark = pytest.mark.lab

EXCHANGE = "Microsoft.Exchange"


def _properties(obj: Any) -> dict[str, str]:
    values = {**obj.adapted_properties, **obj.extended_properties}
    return {name: str(value) for name, value in values.items()}


def _read(lab: Lab, pypsrp_wsman: Any, cmdlet: str, **params: Any) -> list[dict[str, str]]:
    endpoint = lab.endpoints[0]
    with RunspacePool(pypsrp_wsman(endpoint.exchange_port, auth="ntlm"), configuration_name=EXCHANGE) as pool:
        ps = PowerShell(pool).add_cmdlet(cmdlet)
        for name, value in params.items():
            ps.add_parameter(name, value)
        output = ps.invoke()
        assert not ps.had_errors
    return [_properties(obj) for obj in output]


def _untimed(objects: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in o.items() if k not in ("WhenChanged", "WhenChangedUTC")} for o in objects]


def test_cached_answers_equal_fresh_ones_and_follow_changes(
    lab: Callable[..., Any], pypsrp_wsman: Any
) -> None:
    cached = lab("mixed-fleet")
    fresh = Lab("mixed-fleet", cache_answers=False).start()
    try:
        assert fresh.server is not None and fresh.server.clixml is None
        for cmdlet, params in (("Get-TransportService", {"Identity": "EX01"}), ("Get-SendConnector", {}),
                               ("Get-Queue", {}), ("Get-ExchangeServer", {"Identity": "EX01"})):  # fmt: skip
            first = _read(cached, pypsrp_wsman, cmdlet, **params)
            again = _read(cached, pypsrp_wsman, cmdlet, **params)
            assert first == again, cmdlet
            # The other lab started a moment later: a send connector's WhenChanged is its lab's
            # start time, and the two may fall on either side of a second.
            assert _untimed(first) == _untimed(_read(fresh, pypsrp_wsman, cmdlet, **params)), cmdlet
    finally:
        fresh.stop()
    cache = cached.server.clixml
    assert cache.hits >= 4 and len(cache) >= 4
    # A change is seen at once: the answer read before it is not served after it.
    (before,) = _read(cached, pypsrp_wsman, "Get-TransportService", Identity="EX01")
    endpoint = cached.endpoints[0]
    with RunspacePool(pypsrp_wsman(endpoint.exchange_port, auth="ntlm"), configuration_name=EXCHANGE) as pool:
        ps = PowerShell(pool).add_cmdlet("Set-TransportService").add_parameter("Identity", "EX01")
        ps.add_parameter("ExternalDNSAdapterEnabled", False).add_parameter("ExternalDNSServers", ["8.8.8.8"])
        ps.invoke()
        assert not ps.had_errors
    (after,) = _read(cached, pypsrp_wsman, "Get-TransportService", Identity="EX01")
    assert (before["ExternalDNSAdapterEnabled"], after["ExternalDNSAdapterEnabled"]) == ("True", "False")
    # So is a change made from Python under the organisation's lock (as tests make them).
    counts = [q["MessageCount"] for q in _read(cached, pypsrp_wsman, "Get-Queue")]
    org = cached.fleet.org
    with org.lock:
        state = org.host("EX01")
        assert state is not None
        state.queues[0].queued += 4
    again = [q["MessageCount"] for q in _read(cached, pypsrp_wsman, "Get-Queue")]
    assert again[0] == str(int(counts[0]) + 4) and again[1:] == counts[1:]


def test_only_reads_get_a_cache_key_and_changes_move_the_generation() -> None:
    lab = Lab("mixed-fleet")
    from mock_remoting.dns.world import DnsWorld
    from mock_remoting.exchange import Fleet

    world = DnsWorld.from_scenario(lab.scenario.dns, lab.scenario.organization, source="test")
    fleet = Fleet(lab.scenario, world, {})
    ex01, ex02 = fleet.host("EX01"), fleet.host("EX02")
    never = threading.Event()
    read = ex01.invoke(Endpoint.EXCHANGE, [command("Get-Queue")], never)
    assert read.cache_key is not None and read.output
    assert ex01.invoke(Endpoint.EXCHANGE, [command("Get-Queue")], never).cache_key == read.cache_key
    # Organisation-wide answers share one key across the servers of a version.
    connectors = [h.invoke(Endpoint.EXCHANGE, [command("Get-SendConnector")], never) for h in (ex01, ex02)]
    assert connectors[0].cache_key == connectors[1].cache_key is not None
    generation = fleet.org.generation
    probe = ex01.invoke(Endpoint.OS, [command("Resolve-DnsName", ("Name", "fabrikam.com"))], never)
    assert probe.cache_key is None and fleet.org.generation == generation
    missing = ex01.invoke(Endpoint.EXCHANGE, [command("Get-Queue", ("Identity", "EX01\\99"))], never)
    assert missing.cache_key is None  # an answer with errors is not reused
    ex01.invoke(Endpoint.EXCHANGE, [command("Retry-Queue", ("Identity", "EX01\\1"))], never)
    assert fleet.org.generation == generation + 2
    assert ex01.invoke(Endpoint.EXCHANGE, [command("Get-Queue")], never).cache_key != read.cache_key


def test_caches_are_bounded_least_recently_used_first() -> None:
    cache = ClixmlCache(budget=3 * (100 + 64))
    for key in "abc":
        cache.put(key, (b"x" * 100,))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("d", (b"y" * 100,))
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 3
    cache.put("huge", (b"z" * 10_000,))  # larger than the budget: not kept
    assert cache.get("huge") is None and cache.size <= cache.budget
    parsed = ParsedCache(budget=250)
    for text in (b"1" * 100, b"2" * 100, b"3" * 100):
        parsed.put(text, object())
    assert parsed.get(b"1" * 100) is None and parsed.get(b"3" * 100) is not None and parsed.size == 200


def _plain(value: Any) -> Any:
    """A pypsrp object as plain data, nested objects included (their repr has an address)."""
    if hasattr(value, "adapted_properties"):
        values = {**value.adapted_properties, **value.extended_properties}
        return {"": str(value), **{name: _plain(v) for name, v in values.items()}}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _read_on(
    endpoint: Any, pypsrp_wsman: Any, configuration: str, cmdlet: str, **params: Any
) -> list[dict[str, Any]]:
    if configuration == EXCHANGE:
        wsman = pypsrp_wsman(endpoint.exchange_port, auth="ntlm")
    else:
        wsman = pypsrp_wsman(endpoint.port, path="wsman", auth="ntlm")
    with RunspacePool(wsman, configuration_name=configuration) as pool:
        ps = PowerShell(pool).add_cmdlet(cmdlet)
        for name, value in params.items():
            ps.add_parameter(name, value)
        output = ps.invoke()
        assert not ps.had_errors, (endpoint.name, cmdlet)
    return [_plain(obj) for obj in output]


def test_two_hosts_of_one_kind_get_their_own_names_after_caching(
    lab: Callable[..., Any], pypsrp_wsman: Any
) -> None:
    """Clones of one scenario host have the same answers but for their names and addresses:
    whatever the lab builds once and sends again (cached CLIXML, state texts, answers run on
    the loop) must never carry one host's values to the other."""
    fleet = lab("mixed-fleet", hosts=10)
    first, clone = fleet.endpoint("ex01.contoso.local"), fleet.endpoint("ex01-2.contoso.local")
    seen: dict[str, list[list[list[dict[str, Any]]]]] = {first.name: [], clone.name: []}
    for _ in range(2):  # the second round is answered from the caches
        for endpoint in (first, clone, first):
            short = endpoint.name.split(".")[0].upper()
            reads = [
                _read_on(endpoint, pypsrp_wsman, EXCHANGE, "Get-ExchangeServer", Identity=short),
                _read_on(endpoint, pypsrp_wsman, EXCHANGE, "Get-TransportService", Identity=short),
                _read_on(endpoint, pypsrp_wsman, "Microsoft.PowerShell", "Get-NetIPConfiguration"),
            ]
            (server,), (transport,), nics = reads
            assert server["Name"] == transport["Name"] == short
            assert server["Fqdn"] == endpoint.name
            assert nics and all(nic["IPv4Address"] for nic in nics)
            seen[endpoint.name].append(reads)
    # Each host's answers are the same every time, and differ from the other host's.
    for name, rounds in seen.items():
        assert all(reads == rounds[0] for reads in rounds), name
    nics_first, nics_clone = seen[first.name][0][2], seen[clone.name][0][2]
    addresses = [[a["IPAddress"] for a in n["IPv4Address"]] for n in (*nics_first, *nics_clone)]
    assert len({str(a) for a in addresses}) == len(addresses), addresses  # no NIC shares them
    assert fleet.server.clixml.hits >= 6


# Pipelines that end in ErrorRecords on the emulated hosts: a name that is not there, a bad
# parameter, a command that does not exist, a missing value, a name that does not resolve.
_FAILING = (
    (Endpoint.EXCHANGE, "Get-ExchangeServer", (("Identity", "NOPE"),)),
    (Endpoint.EXCHANGE, "Get-Queue", (("Identity", "EX01\\99"),)),
    (Endpoint.EXCHANGE, "Get-Queue", (("Server", "NOPE"),)),
    (Endpoint.EXCHANGE, "Get-TransportService", (("Bogus", 1),)),
    (Endpoint.EXCHANGE, "Get-Nothing", ()),
    (Endpoint.OS, "Get-ItemProperty", (("Path", "HKLM:\\SOFTWARE\\Nope"),)),
    (Endpoint.OS, "Get-Content", (("Path", "C:\\nope.txt"),)),
    (Endpoint.OS, "Get-Service", (("Name", "NoSuchService"),)),
    (Endpoint.OS, "Resolve-DnsName", ()),
    (Endpoint.OS, "Resolve-DnsName", (("Name", "nowhere.invalid"), ("Server", "10.0.0.99"))),
)


def _errors_of(scenario: str) -> list[Any]:
    from lab.exchange._exchange_support import make_fleet

    fleet = make_fleet(scenario, hosts=4)
    found: list[Any] = []
    for host in fleet.hosts:
        for endpoint, cmdlet, params in _FAILING:
            result = host.invoke(endpoint, [command(cmdlet, *params)], threading.Event())
            found.extend(result.errors)
            if result.failure is not None:
                found.append(result.failure)
    return found


@pytest.mark.parametrize("scenario", ["mixed-fleet", "exchange-2010", "dns-server-unreachable"])
def test_error_records_with_one_key_are_one_text(scenario: str) -> None:
    """The server sends the CLIXML of the first ErrorRecord of a key for every later one
    (PsrpShell._record_text): a key must never stand for two different texts, and records
    of different hosts (their names are in the messages) must not share keys."""
    import xml.etree.ElementTree as ET

    from psrpcore.types import PSCryptoProvider, serialize

    from mock_remoting.backend import record_key

    keyed = [
        (key, ET.tostring(serialize(record, PSCryptoProvider()), encoding="utf-8", method="xml"))
        for record in _errors_of(scenario)
        if (key := record_key(record)) is not None
    ]
    texts: dict[Any, set[bytes]] = {}
    for key, text in keyed:
        texts.setdefault(key, set()).add(text)
    assert len(texts) >= 10, "the failing commands produce keyed records"
    assert all(len(group) == 1 for group in texts.values()), [k for k, g in texts.items() if len(g) > 1]
    assert len({text for _, text in keyed}) == len(texts)  # different keys, different texts


def test_error_records_over_the_wire_are_the_same_cached_or_not(
    lab: Callable[..., Any], pypsrp_wsman: Any
) -> None:
    cached = lab("mixed-fleet")
    fresh = Lab("mixed-fleet", cache_answers=False).start()

    def errors(running: Lab, cmdlet: str, **params: Any) -> list[Any]:
        endpoint = running.endpoints[0]
        wsman = pypsrp_wsman(endpoint.exchange_port, auth="ntlm")
        with RunspacePool(wsman, configuration_name=EXCHANGE) as pool:
            ps = PowerShell(pool).add_cmdlet(cmdlet)
            for name, value in params.items():
                ps.add_parameter(name, value)
            ps.invoke()
            return [_plain(record) for record in ps.streams.error]

    try:
        for cmdlet, params in (("Get-Queue", {"Identity": "EX01\\99"}), ("Get-Queue", {"Server": "NOPE"})):
            first = errors(cached, cmdlet, **params)
            again = errors(cached, cmdlet, **params)  # from the cache
            assert first and first == again == errors(fresh, cmdlet, **params), cmdlet
    finally:
        fresh.stop()
    assert any(key[0] == "ErrorRecord" for key in cached.server.clixml._entries)
