"""An HTTP(S)_PROXY in the environment: exfix honours it (as Ansible's psrp plugin does), and
the lab's inventory says ``ansible_psrp_ignore_proxy`` so that lab traffic, on 127.0.0.1,
never goes to a proxy. The proxy here is a closed port on 127.0.0.1: honoured, it makes the
host unreachable; ignored, the scan goes straight to the lab."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.conftest import run_exfix

pytestmark = pytest.mark.lab


def _closed_port_proxy() -> dict[str, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    return {"HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url}


def test_the_lab_inventory_is_never_sent_through_the_environments_proxy(
    lab: Callable[..., Any], tmp_path: Path
) -> None:
    served = lab("healthy", auth="basic")
    inventory = served.write_inventory(tmp_path / "lab.yaml")
    proxy = _closed_port_proxy()

    direct = run_exfix("scan", "-i", str(inventory), "--format", "json", env=proxy)
    assert direct.exit_code == 0, direct.stderr
    assert {h["status"] for h in json.loads(direct.stdout)["hosts"]} == {"scanned"}

    # The same inventory without the setting: the environment's proxy is used, and refuses.
    data = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    assert data["all"]["vars"].pop("ansible_psrp_ignore_proxy") is True
    proxied = tmp_path / "proxied.yaml"
    proxied.write_text(yaml.safe_dump(data), encoding="utf-8")
    through = run_exfix("scan", "-i", str(proxied), "--format", "json", "--host-timeout", "20", env=proxy)
    assert through.exit_code == 3, through.stderr
    assert {h["status"] for h in json.loads(through.stdout)["hosts"]} == {"unreachable"}
