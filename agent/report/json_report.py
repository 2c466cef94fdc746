"""The exfix.scan/4 JSON document (schema: agent/schemas/scan.schema.json)."""

from __future__ import annotations

import json

from agent.model.results import ScanReport


def render(report: ScanReport) -> str:
    """Stable JSON: keys in a fixed order, UTF-8 text, control characters escaped by json."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
