"""Running the collection as its users do: build it with ansible-galaxy, install it into a
temporary collections path, and run ansible-playbook as a program (ansible-core is GPL: the
tests never import it) against an inventory the lab wrote. Every task result comes back
through callback_plugins/exfix_record.py as JSON lines.

``ansible_program(name)``   the ansible-core program beside this Python, or None;
``Collection``              the built and installed collection (``.play(...)`` runs a playbook);
``Run``                     one ansible-playbook run: exit code, results, recap, set_stats data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "ansible_collections" / "exfix" / "exchange"
CALLBACKS = REPO / "tests" / "ansible" / "callback_plugins"


def ansible_program(name: str) -> Path | None:
    path = Path(sys.executable).parent / name
    return path if path.exists() else None


@dataclass(frozen=True)
class Run:
    exit_code: int
    output: str
    records: tuple[dict[str, Any], ...]

    def results(self, task: str) -> dict[str, dict[str, Any]]:
        """host -> the record of ``task`` (status and result)."""
        return {r["host"]: r for r in self.records if r["kind"] == "result" and r["task"] == task}

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        (stats,) = [r for r in self.records if r["kind"] == "stats"]
        hosts: dict[str, dict[str, int]] = stats["hosts"]
        return hosts

    @property
    def custom(self) -> dict[str, Any]:
        """set_stats data with per_host false (what AWX hands to the next workflow node)."""
        (stats,) = [r for r in self.records if r["kind"] == "stats"]
        run: dict[str, Any] = stats["custom"].get("_run", {})
        return run

    def describe(self) -> str:
        return f"exit {self.exit_code}\n{self.output[-6000:]}"


@dataclass(frozen=True)
class Collection:
    path: Path  # the collections path it is installed in
    home: Path  # ANSIBLE_HOME, XDG_STATE_HOME (the journal's default) and the records

    def env(self, record: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": str(self.path),
            "ANSIBLE_HOME": str(self.home / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(self.home / "ansible-tmp"),
            "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
            "ANSIBLE_CALLBACKS_ENABLED": "exfix_record",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
            "ANSIBLE_LOCALHOST_WARNING": "False",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
            "ANSIBLE_FORKS": "8",
            "EXFIX_RECORD": str(record),
            "XDG_STATE_HOME": str(self.home / "state"),
        })  # fmt: skip
        return env

    def play(self, playbook: str, inventory: Path, *args: str, cwd: Path, timeout: float = 120) -> Run:
        """``ansible-playbook -i INVENTORY PLAYBOOK ARGS`` in ``cwd`` (a playbook of the
        collection by its name, exfix.exchange.diagnose, or a path)."""
        program = ansible_program("ansible-playbook")
        assert program is not None
        record = cwd / f"record-{len(list(cwd.glob('record-*')))}.jsonl"
        env = dict(self.env(record), PWD=str(cwd))  # as a shell started in cwd sets it
        done = subprocess.run(
            [str(program), "-i", str(inventory), playbook, *args],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        lines = record.read_text(encoding="utf-8").splitlines() if record.exists() else []
        records = tuple(json.loads(line) for line in lines)
        return Run(done.returncode, done.stdout + done.stderr, records)


def build_and_install(work: Path) -> Collection:
    """``ansible-galaxy collection build`` of the repository's collection, then
    ``ansible-galaxy collection install -p`` of the tarball into ``work``."""
    galaxy = ansible_program("ansible-galaxy")
    assert galaxy is not None
    env = dict(os.environ, ANSIBLE_HOME=str(work / "ansible-home"))
    built = work / "built"
    _run([str(galaxy), "collection", "build", str(COLLECTION), "--output-path", str(built)], env, work)
    (tarball,) = built.glob("exfix-exchange-*.tar.gz")
    path = work / "collections"
    env["ANSIBLE_COLLECTIONS_PATH"] = str(path)
    _run([str(galaxy), "collection", "install", "-p", str(path), str(tarball)], env, work)
    return Collection(path, work)


def _run(argv: Sequence[str], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
