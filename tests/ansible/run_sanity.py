"""``ansible-test sanity`` on the exfix.exchange collection, without containers or internet:
what ``.ci/run`` runs after the test suite.

    python tests/ansible/run_sanity.py [--test NAME ...]

ansible-test wants the collection at a path ending in ansible_collections/exfix/exchange and
writes tests/output/ into it, so the collection is copied into a temporary directory first. It
installs each test's pinned requirements into virtual environments of its own with pip, which
it bootstraps with a get-pip.py script it downloads; offline, this script puts a stand-in at
the cached path it looks for (ensurepip, then pip upgrades itself through the machine's own
pip configuration, which ansible-test's clean environment would otherwise lose with HOME).

The tests run by default (SANITY_TESTS), chosen for what they find against what they cost in
CI: compile, import (the plugins import with only ansible-core present, and say so when exfix
is missing instead of failing to load), validate-modules (DOCUMENTATION, EXAMPLES and RETURN
against the argument spec the action plugins use) and yamllint, and the file checks, which
need no environment. Left out by default (--test NAME runs any of them): ansible-doc
(validate-modules parses the same documentation, and the collection's tests build and load it),
pep8 and pylint (ruff checks the code; pylint alone takes minutes here), runtime-metadata
(meta/runtime.yml has no routing), pslint and shellcheck (no PowerShell or shell files; they
need programs a machine may not have). All of them passed when this was written.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "ansible_collections" / "exfix" / "exchange"

SANITY_TESTS = (
    # Each of these four builds a virtual environment of pinned requirements (20-40 s each).
    "compile",
    "import",
    "validate-modules",
    "yamllint",
    # These read files with ansible-test's own code: no environment, under a second each.
    "action-plugin-docs",
    "empty-init",
    "line-endings",
    "no-assert",
    "no-get-exception",
    "no-illegal-filenames",
    "no-smart-quotes",
    "replace-urlopen",
    "shebang",
    "symlinks",
    "use-argspec-type-path",
    "use-compat-six",
)

# Installs pip the way get-pip.py would (ansible-test passes pip's install arguments), from
# ensurepip's bundled wheel and then the configured indexes. ensurepip sets
# PIP_CONFIG_FILE=/dev/null for its own run; the upgrade must see the real configuration.
_GET_PIP = """\
import ensurepip, os, subprocess, sys
ensurepip.bootstrap()
os.environ.pop("PIP_CONFIG_FILE", None)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
"""


def pip_version() -> str:
    """The pip version this ansible-test bootstraps (its cache file is named after it)."""
    from ansible_test._internal import python_requirements  # lazy: only where ansible-test is

    source = Path(python_requirements.__file__).read_text(encoding="utf-8")
    marker = "pip='"
    start = source.index(marker) + len(marker)
    return source[start : source.index("'", start)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", action="append", dest="tests", help="one sanity test (repeatable)")
    options = parser.parse_args()
    ansible_test = Path(sys.executable).parent / "ansible-test"
    if not ansible_test.exists():
        print("run_sanity: ansible-test is not installed beside this Python (pip install '.[test]')",
              file=sys.stderr)  # fmt: skip
        return 1
    with tempfile.TemporaryDirectory(prefix="exfix-sanity-") as work:
        root = Path(work)
        target = root / "ansible_collections" / "exfix" / "exchange"
        shutil.copytree(COLLECTION, target, ignore=shutil.ignore_patterns("tests", "__pycache__", "*.tar.gz"))
        home = root / "home"
        cache = home / ".ansible" / "test" / "cache"
        cache.mkdir(parents=True)
        (cache / f"get_pip_{pip_version().replace('.', '_')}.py").write_text(_GET_PIP, encoding="utf-8")
        user_pip = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "pip"
        if user_pip.is_dir():
            (home / ".config").mkdir()
            (home / ".config" / "pip").symlink_to(user_pip)
        tests = options.tests or SANITY_TESTS
        argv = [str(ansible_test), "sanity", "--python", f"{sys.version_info[0]}.{sys.version_info[1]}"]
        for test in tests:
            argv += ["--test", test]
        done = subprocess.run(argv, cwd=target, env=dict(os.environ, HOME=str(home)), check=False)
        return done.returncode


if __name__ == "__main__":
    sys.exit(main())
