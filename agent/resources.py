"""Where the shipped data lives: ps_templates/ and playbooks/.

A wheel installs them inside the package (agent/ps_templates, agent/playbooks); a source
checkout or an editable install keeps them at the top of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The directory of shipped data ``name`` ("ps_templates" or "playbooks")."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"exfix data directory {name!r} is missing from the installation")
