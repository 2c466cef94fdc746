"""What `pip install .` installs: every package of the source tree is listed in pyproject.toml
(the list is explicit, for the templates and playbooks mapped into the agent package). An
editable install finds a package that is not listed; a real install does not, and every
import of it fails: found once by CI on a clean clone, after agent/permissions was added."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]


def test_every_package_of_the_tree_is_installed() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    mapped = set(config["tool"]["setuptools"].get("package-dir", {}))
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for top in ("agent", "mock_remoting")
        for init in (REPO / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found - listed == set(), "packages missing from [tool.setuptools] packages"
    assert listed - found <= mapped, "listed packages that are neither in the tree nor mapped"
