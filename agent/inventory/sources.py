"""What ``-i`` names -> the groups and hosts of every inventory source it holds.

As ansible-core's ``InventoryManager.parse_source`` and its default inventory plugins
(``host_list, script, auto, yaml, ini, toml``) take them:

- a directory: every entry in name order, recursively, but hidden ones, ``group_vars``,
  ``host_vars``, ``vars_plugins`` and names ending in .pyc .pyo .swp .bak ~ .rpm .md .txt
  .rst .orig .cfg .retry (``INVENTORY_IGNORE_EXTS``);
- an executable file starting with ``#!``: an inventory script, run with ``--list``, whose
  JSON is read (:mod:`agent.inventory.json_source`);
- a file ending in .yml/.yaml/.json or with no extension: YAML, if it parses as a YAML
  inventory; a ``plugin:`` file is an inventory plugin's configuration, which only Ansible
  runs (``ansible:`` below); the JSON ``ansible-inventory --list`` prints is read too;
- any other file (and a YAML-named file that is not YAML): INI;
- ``a,b,c`` that is no path: a list of hosts (``host_list``);
- ``-``: the ``--list`` JSON on standard input;
- ``ansible:PATH``: ``ansible-inventory -i PATH --list`` runs (Ansible installed beside exfix:
  ``pip install 'exfix[ansible]'``) and its JSON is read: every inventory plugin, vault and
  templating, exactly as Ansible resolves them. exfix never imports Ansible (GPL): it runs it.

:func:`read_source` also returns the directories whose ``group_vars/`` and ``host_vars/``
apply (the directory of a file, or the directory itself), as Ansible's vars plugin looks
only beside the ``-i`` sources.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import InventoryError
from agent.inventory.addresses import parse_address
from agent.inventory.document import INVENTORY
from agent.inventory.ini_source import read_ini
from agent.inventory.json_source import looks_like_list_json, read_list_json
from agent.inventory.tree import Tree
from agent.inventory.values import Origin, inventory_text
from agent.inventory.yaml_source import PluginConfig, read_yaml

ANSIBLE_PREFIX = "ansible:"
_IGNORED = re.compile(
    r"^\.|^host_vars$|^group_vars$|^vars_plugins$|"
    + "|".join(
        re.escape(ext) + "$"
        for ext in (
            ".pyc",
            ".pyo",
            ".swp",
            ".bak",
            "~",
            ".rpm",
            ".md",
            ".txt",
            ".rst",
            ".orig",
            ".cfg",
            ".retry",
        )
    )
)
_YAML_EXTENSIONS = (".yml", ".yaml", ".json")
MAX_SOURCE_BYTES = 64 * 1024 * 1024
SCRIPT_TIMEOUT = 300.0
ANSIBLE_TIMEOUT = 900.0

Runner = Callable[[list[str], float, str], str]
"""``run(argv, timeout, what) -> stdout``: runs an inventory script or ansible-inventory;
raises InventoryError saying what failed."""


@dataclass
class Read:
    tree: Tree
    var_dirs: list[str]
    name: str  # what errors and targets call the inventory


def read_source(spec: str, *, stdin: Callable[[], str] | None = None, run: Runner | None = None) -> Read:
    """Read what ``-i`` names. Raises InventoryError (one line, with FILE:LINE where known)."""
    runner = run or run_command
    tree = Tree()
    if spec.startswith(ANSIBLE_PREFIX):
        target = spec[len(ANSIBLE_PREFIX) :]
        if not target:
            raise InventoryError(spec, "ansible: needs the inventory after it (-i ansible:PATH)")
        read_list_json(_json(run_ansible(target, runner), spec), spec, tree)
        tree.reconcile()
        return Read(tree, [], spec)  # Ansible has merged group_vars/host_vars already
    if spec == "-":
        text = (stdin or sys.stdin.read)()
        read_list_json(_json(text, "<stdin>"), "<stdin>", tree)
        tree.reconcile()
        return Read(tree, [], "<stdin>")
    path = Path(spec)
    if not path.exists():
        if "," in spec:
            _host_list(spec, tree)
            tree.reconcile()
            return Read(tree, [], spec)
        raise InventoryError(spec, "no such file or directory")
    if path.is_dir():
        found = _directory(path, tree, runner)
        if not found:
            raise InventoryError(spec, "the directory holds no inventory source")
        tree.reconcile()
        return Read(tree, [str(path)], spec)
    _file(path, tree, runner)
    tree.reconcile()
    return Read(tree, [str(path.parent)], spec)


def _directory(path: Path, tree: Tree, runner: Runner) -> int:
    found = 0
    try:
        entries = sorted(os.listdir(path))
    except OSError as exc:
        raise InventoryError(str(path), f"cannot list: {exc.strerror or exc}") from None
    for entry in entries:
        if _IGNORED.search(entry):
            continue
        child = path / entry
        if child.is_dir():
            found += _directory(child, tree, runner)
        elif child.is_file():
            _file(child, tree, runner)
            found += 1
    return found


def _file(path: Path, tree: Tree, runner: Runner) -> None:
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InventoryError(source, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_SOURCE_BYTES:
        raise InventoryError(source, f"larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MiB")
    if raw.startswith(b"#!") and os.access(path, os.X_OK):
        read_list_json(
            _json(runner([str(path.resolve()), "--list"], SCRIPT_TIMEOUT, source), source), source, tree
        )
        return
    text = inventory_text(raw, source, f"it with -i ansible:{source}")
    read_text(text, source, tree, ext=path.suffix.lower(), runner=runner)


def read_text(text: str, source: str, tree: Tree, *, ext: str, runner: Runner | None = None) -> None:
    """An inventory file's text, as the yaml and ini plugins take it in turn."""
    if ext == ".toml":
        raise InventoryError(
            source,
            f"TOML inventories are read through Ansible: -i ansible:{source} (pip install 'exfix[ansible]')",
        )
    yaml_error: InventoryError | None = None
    if ext in _YAML_EXTENSIONS or not ext:
        try:
            loaded = INVENTORY.read_yaml_tree(text, source=source)
        except InventoryError as exc:
            yaml_error = exc
        else:
            data: Any = loaded.value
            if looks_like_list_json(data):
                read_list_json(data, source, tree)
                return
            if isinstance(data, dict):
                try:
                    read_yaml(loaded, tree)
                except PluginConfig as plugin:
                    if runner is None or find_ansible_inventory() is None:
                        raise _plugin_refusal(source, plugin) from None
                    # Ansible is installed: let it run the plugin (exfix[ansible]).
                    read_list_json(_json(run_ansible(source, runner), source), source, tree)
                return
            if data is None and ext in _YAML_EXTENSIONS:
                raise InventoryError(source, "the inventory is empty")
            if ext in _YAML_EXTENSIONS:
                yaml_error = InventoryError(
                    source, "the top level must be a mapping of groups (all: ...), not a list or text", line=1
                )
    try:
        read_ini(text, source, tree)
    except InventoryError as ini_error:
        # Both plugins refused it: say what the file most likely meant to be.
        looks_ini = any(line.strip().startswith("[") and "]" in line for line in text.splitlines()[:50])
        if yaml_error is not None and not looks_ini:
            raise yaml_error from None
        raise ini_error from None


def _plugin_refusal(source: str, plugin: PluginConfig) -> InventoryError:
    return InventoryError(
        source,
        f"configures the inventory plugin {plugin.plugin!r}, which only Ansible runs: install "
        "Ansible beside exfix (pip install 'exfix[ansible]') and exfix runs it",
        line=plugin.line,
    )


def _host_list(spec: str, tree: Tree) -> None:
    # host_list.py: comma-separated hosts, each an address with an optional :port.
    origin = Origin(spec)
    for part in spec.split(","):
        name = part.strip()
        if not name:
            continue
        try:
            host, port = parse_address(name, allow_ranges=False)
        except ValueError:
            host, port = name, None
        tree.add_host(host, "ungrouped", origin, None if port is None else (port, origin))


def _json(text: str, source: str) -> Any:
    return INVENTORY.parse_json(text, source=source)


def find_ansible_inventory() -> str | None:
    """``ansible-inventory`` beside this Python (the exfix[ansible] extra), else on PATH."""
    beside = Path(sys.executable).parent / "ansible-inventory"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("ansible-inventory")


def run_ansible(path: str, runner: Runner) -> str:
    executable = find_ansible_inventory()
    if executable is None:
        raise InventoryError(
            f"{ANSIBLE_PREFIX}{path}",
            "needs Ansible's ansible-inventory, which is not installed: pip install 'exfix[ansible]'",
        )
    return runner([executable, "-i", path, "--list"], ANSIBLE_TIMEOUT, f"{ANSIBLE_PREFIX}{path}")


def run_command(argv: list[str], timeout: float, what: str) -> str:
    """Run an inventory script or ansible-inventory; its stdout. Raises InventoryError with
    the last line it wrote to stderr when it fails."""
    try:
        done = subprocess.run(
            argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False
        )
    except subprocess.TimeoutExpired:
        raise InventoryError(what, f"{Path(argv[0]).name} did not finish within {timeout:g}s") from None
    except OSError as exc:
        raise InventoryError(what, f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        said = f": {lines[-1].strip()}" if lines else ""
        raise InventoryError(what, f"{Path(argv[0]).name} exited with status {done.returncode}{said}")
    try:
        return done.stdout.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(
            what, f"{Path(argv[0]).name} printed something that is not UTF-8 (byte {exc.start})"
        ) from None
