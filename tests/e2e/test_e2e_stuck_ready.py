"""Queues stuck in Ready, end to end: the lab's queues-stuck-ready scenario over real sockets,
Get-Queue's rates read by exfix, and the symptom linked to the silent DNS server."""

from __future__ import annotations

import pytest

from e2e.conftest import scan_shipped

pytestmark = pytest.mark.lab


def test_still_ready_queues_are_the_symptom_of_the_silent_server() -> None:
    run = scan_shipped("queues-stuck-ready")
    assert run.exit_code == 2, run.describe()
    (ex01,) = [h for h in run.doc["hosts"] if h["host"] == "ex01.contoso.local"]
    by_rule: dict[str, list[dict[str, object]]] = {}
    for finding in ex01["findings"]:
        by_rule.setdefault(finding["rule"], []).append(finding)
    (cause,) = by_rule["dns-server-unreachable"]
    symptoms = by_rule["queue-dns-failure"]
    assert sorted(s["data"]["scope"] for s in symptoms) == ["domain", "internal"]  # type: ignore[index]
    for symptom in symptoms:
        assert symptom["explained_by"] == [cause["id"]]
        assert symptom["data"]["error_classes"] == ["StuckInReady"]  # type: ignore[index]
        (queue,) = [e for e in symptom["evidence"] if e["source"] == "Get-Queue"]  # type: ignore[union-attr]
        values = queue["values"]
        assert values["Status"] == "Ready" and values["LastError"] == "" and values["MessageCount"] > 0
        assert values["OutgoingRate"] == "0" and float(values["Velocity"]) < 0
        assert float(values["IncomingRate"]) > 0
        (silent,) = [e for e in symptom["evidence"] if e["source"] == "probe rounds"]  # type: ignore[union-attr]
        assert silent["values"]["servers"] == ["10.0.0.99"]
