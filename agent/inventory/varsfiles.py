"""``group_vars/`` and ``host_vars/`` beside an inventory, as Ansible's ``host_group_vars``
plugin finds them (``lib/ansible/plugins/vars/host_group_vars.py``, ``DataLoader.find_vars_files``):

- they sit in the directory of an inventory file, or in an inventory directory itself (not
  beside the files inside it);
- for a group or host NAME: the directory ``NAME/`` (every file in it and below, in name
  order, hidden files and ``~`` backups skipped, extensions .yml/.yaml/.json or none), else the
  first of the files ``NAME``, ``NAME.yml``, ``NAME.yaml``, ``NAME.json``;
- each file is YAML (JSON is YAML) holding a mapping of variables; an empty file adds nothing;
  a later file's variable replaces an earlier one's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.errors import InventoryError
from agent.inventory.document import INVENTORY, check_variable_name
from agent.inventory.values import Origin, Written, inventory_text
from agent.model.document import kind

EXTENSIONS = (".yml", ".yaml", ".json")
MAX_FILE_BYTES = 16 * 1024 * 1024


class VarsFiles:
    """Finds and reads (once each) the variable files of the inventory's directories."""

    def __init__(self, directories: list[str]) -> None:
        self.directories = directories
        self._files: dict[str, dict[str, Written]] = {}

    def group(self, name: str, directory: str | None = None) -> list[dict[str, Written]]:
        """The variables ``group_vars/NAME`` gives (in ``directory``, or in each in turn), one
        mapping per file, in the order they apply."""
        return self._entity("group_vars", name, None, directory)

    def host(self, name: str) -> list[dict[str, Written]]:
        return self._entity("host_vars", name, name, None)

    def _entity(self, subdir: str, name: str, host: str | None, only: str | None) -> list[dict[str, Written]]:
        out: list[dict[str, Written]] = []
        if not name or name.startswith(os.sep):  # host_group_vars skips "chroot" names
            return out
        for directory in self.directories if only is None else [only]:
            base = Path(directory) / subdir
            if not base.is_dir():
                continue
            for path in _find(base, name):
                out.append(self._read(path, host))
        return out

    def _read(self, path: Path, host: str | None) -> dict[str, Written]:
        key = str(path)
        if key not in self._files:
            self._files[key] = read_vars_file(path, host)
        return self._files[key]


def _find(base: Path, name: str) -> list[Path]:
    for ext in ("", *EXTENSIONS):
        candidate = base / (name + ext)
        if candidate.exists():
            return _dir_files(candidate) if candidate.is_dir() else [candidate]
    return []


def _dir_files(directory: Path) -> list[Path]:
    found: list[Path] = []
    for entry in sorted(os.listdir(directory)):
        if entry.startswith(".") or entry.endswith("~"):
            continue
        path = directory / entry
        ext = os.path.splitext(entry)[1]
        if path.is_dir() and not ext:
            found.extend(_dir_files(path))
        elif path.is_file() and (not ext or ext in EXTENSIONS):
            found.append(path)
    return found


def read_vars_file(path: Path, host: str | None) -> dict[str, Written]:
    """One group_vars/host_vars file's variables. Raises InventoryError."""
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InventoryError(source, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise InventoryError(source, f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    text = inventory_text(raw, source, "the inventory with -i ansible:PATH")
    loaded = INVENTORY.read_yaml_tree(text, source=source)
    data: Any = loaded.value
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise InventoryError(source, f"must hold a mapping of variables, not {kind(data)}", line=1)
    out: dict[str, Written] = {}
    for name, value in data.items():
        line = loaded.line((name,))
        if loaded.loose((name,)):
            raise InventoryError(source, "a variable name must be a string (quote it)", line=line)
        check_variable_name(name, source, line, host)
        out[name] = (value, Origin(source, loaded=loaded, path=(name,)))
    return out
