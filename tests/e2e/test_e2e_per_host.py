"""`exfix scan` over a lab whose hosts each listen on their own loopback address on the real
WinRM port, from the inventory the lab writes: the same findings as over the single-address
lab, so neither the addresses nor the lab's answer cache change what exfix sees."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from agent.errors import UsageError
from e2e.conftest import run_exfix, scan_shipped
from mock_remoting.lab import Lab

pytestmark = pytest.mark.lab


def test_scan_of_a_per_host_lab_reports_what_the_single_address_lab_does(tmp_path: Path) -> None:
    for _ in range(8):
        lab = Lab("mixed-fleet", bind="per-host", ports="shared",
                  addresses=f"127.{random.randint(64, 250)}.{random.randint(0, 255)}.0/24")  # fmt: skip
        try:
            lab.start()
            break
        except UsageError as error:
            if "in use" not in str(error):
                raise
    else:
        pytest.fail("no free 127.x.y.0/24 after 8 tries")
    try:
        inventory = lab.write_inventory(tmp_path / "inventory.yaml")
        run = run_exfix("scan", "-i", str(inventory), "--format", "json")
        again = run_exfix("scan", "-i", str(inventory), "--format", "json")  # answers from the cache
    finally:
        lab.stop()
    reference = scan_shipped("mixed-fleet")
    assert run.exit_code == again.exit_code == reference.exit_code == 2, run.describe()
    assert run.rules() == again.rules() == reference.rules()
    assert lab.server is None
