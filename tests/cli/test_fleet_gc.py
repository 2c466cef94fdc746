"""The collector's settings for a fleet's run (agent/cli/_common.py): the loaded fleet frozen
out of the generations, a larger youngest generation, and both undone afterwards whatever
happens in the block, so that a process running several commands keeps collecting."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from agent.cli._common import _YOUNG_THRESHOLD, open_fleet

INVENTORY = """\
all:
  children:
    exchange:
      hosts:
        ex01.contoso.local:
          ansible_host: 127.0.0.1
          ansible_user: lab-throwaway
          ansible_password: lab-throwaway-Passw0rd!
"""


def _inventory(tmp_path: Path) -> str:
    path = tmp_path / "hosts.yaml"
    path.write_text(INVENTORY, encoding="utf-8")
    return str(path)


def test_the_fleet_is_frozen_during_the_run_and_released_after(tmp_path: Path) -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with open_fleet(_inventory(tmp_path), None, None, False) as fleet:
        assert [t.name for t in fleet.targets] == ["ex01.contoso.local"]
        # The inventory's objects were loaded before the freeze, so they are in it.
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (max(before[0], _YOUNG_THRESHOLD), *before[1:])
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_settings_are_undone_when_the_run_fails(tmp_path: Path) -> None:
    before = gc.get_threshold()
    with pytest.raises(KeyboardInterrupt), open_fleet(_inventory(tmp_path), None, None, False):
        raise KeyboardInterrupt
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
