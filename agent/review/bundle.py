"""The plan bundle: the directory a change board reviews and apply reads.

::

    <out>/plan.json                      the plan (agent/model/plan.py)
    <out>/REVIEW.md                      the change board's page (review_md.py)
    <out>/review.html                    the same page for a browser (review_html.py)
    <out>/hosts/<directory>/remediate.ps1
    <out>/hosts/<directory>/rollback.ps1

``<directory>`` is each unit's safe, unique name recorded in plan.json.

What the digest covers
----------------------
Every file of the bundle is a pure function of plan.json's approved content (everything the
digest covers, and the digest itself): :func:`bundle_files` renders them all, the scripts
through the ps_templates, the pages from the plan and those scripts, plan.json from the plan
with the scripts' sha256. The digest cannot sit inside the files that show it, so instead of
hashing the files into it, apply renders the whole bundle again from plan.json and compares
every file byte for byte with what is on disk (:func:`bundle_problems`): a script a person
runs by hand, a page the board read, plan.json itself (a duplicate key, a hash edited to
match an edited script). One changed byte anywhere refuses the plan. The pages name plan.json
by its place in the bundle (``exfix apply plan.json``, run in the directory), so the bundle
can be moved or copied without changing a byte.

Writing
-------
:func:`write_plan_dir` writes exactly :func:`bundle_files`, each file whole (a temporary name,
then a rename) and without following a link (agent/review/files.py): a link in the directory
refuses the write (exit 1).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from agent.errors import UnsafePathError, UsageError
from agent.model.plan import SCHEMA, SCRIPT_NAMES, Plan, with_scripts
from agent.planning.render import render_plan
from agent.review.files import OwnedDir
from agent.review.review_html import render_review_html
from agent.review.review_md import render_review

PLAN_FILE = "plan.json"
REVIEW_FILE = "REVIEW.md"
REVIEW_HTML = "review.html"
HOSTS_DIR = "hosts"


@dataclass(frozen=True, slots=True)
class PlanFiles:
    directory: Path
    plan_json: Path
    review: Path
    review_html: Path
    scripts: tuple[Path, ...]


def bundle_files(plan: Plan) -> dict[str, bytes]:
    """Every file of ``plan``'s bundle by its path in the directory (``/``-separated), as
    exfix writes it. Depends on the plan's content and digest only: the scripts' sha256 that
    plan.json records are those of the scripts rendered here, whatever ``plan`` holds."""
    rendered = render_plan(plan)
    plan = dataclasses.replace(
        plan,
        hosts=tuple(with_scripts(u, rendered[u.directory].sha256()) for u in plan.hosts),
        organizations=tuple(with_scripts(u, rendered[u.directory].sha256()) for u in plan.organizations),
    )
    files: dict[str, bytes] = {}
    for unit in plan.units:
        for name, data in rendered[unit.directory].files().items():
            files[f"{HOSTS_DIR}/{unit.directory}/{name}"] = data
    files[PLAN_FILE] = plan.to_json().encode("utf-8")
    files[REVIEW_FILE] = render_review(plan, rendered, PLAN_FILE).encode("utf-8")
    files[REVIEW_HTML] = render_review_html(plan, rendered, PLAN_FILE).encode("utf-8")
    return files


def write_plan_dir(plan: Plan, out_dir: str | Path, *, overwrite: bool = False) -> PlanFiles:
    """Write ``plan`` into ``out_dir``. Refuses (UsageError) a directory that already holds
    files unless ``overwrite``; files of an earlier plan that this one does not name are left
    alone then, and plan.json says which host directories belong to this plan. Refuses
    (UnsafePathError, exit 1) when ``out_dir`` or anything in it is a symbolic link."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir() and not out.is_symlink():
        raise UsageError(f"{out}: not a directory")
    rendered = render_plan(plan)
    for unit in plan.units:
        if rendered[unit.directory].sha256() != dict(unit.scripts):
            raise RuntimeError(f"the scripts of {unit.host!r} no longer render as the plan recorded")
    files = bundle_files(plan)
    with OwnedDir.open(out, create=True) as root:
        if root.names() and not overwrite:
            raise UsageError(f"{out}: the directory is not empty; choose a new one or allow overwriting")
        link = next(root.links(), None)
        if link is not None:
            raise UnsafePathError(
                str(link),
                "is a symbolic link in the plan directory; exfix writes no plan where a link "
                "could send a file elsewhere: remove it, or choose a new directory",
            )
        scripts: list[Path] = []
        with root.subdir(HOSTS_DIR, create=True) as hosts:
            for unit in plan.units:
                with hosts.subdir(unit.directory, create=True) as directory:
                    for name in SCRIPT_NAMES:
                        scripts.append(directory.write(name, files[f"{HOSTS_DIR}/{unit.directory}/{name}"]))
        # plan.json last but for the pages: a reader that finds it finds the scripts it names.
        plan_json = root.write(PLAN_FILE, files[PLAN_FILE])
        review = root.write(REVIEW_FILE, files[REVIEW_FILE])
        review_html = root.write(REVIEW_HTML, files[REVIEW_HTML])
    return PlanFiles(
        directory=out, plan_json=plan_json, review=review, review_html=review_html, scripts=tuple(scripts)
    )


def _first_difference(expected: bytes, actual: bytes) -> int:
    """The 1-based line where ``actual`` first differs from ``expected``."""
    pairs = zip(expected.split(b"\n"), actual.split(b"\n"), strict=False)
    for number, (want, got) in enumerate(pairs, start=1):
        if want != got:
            return number
    return min(expected.count(b"\n"), actual.count(b"\n")) + 1


def bundle_problems(plan: Plan, directory: str | Path) -> tuple[str, ...]:
    """What in ``directory`` is not the bundle of ``plan`` (read from its plan.json), one line
    each; empty when every file is byte for byte what :func:`bundle_files` renders. A plan
    written before the bundle was covered (exfix.plan/1 to /3) is one problem: its pages
    cannot be checked."""
    if plan.schema != SCHEMA:
        return (
            f"the plan is {plan.schema}, written before the digest covered the review pages, so what the "
            "change board read cannot be checked against it; plan again",
        )
    problems: list[str] = []
    expected = bundle_files(plan)
    with OwnedDir.open(directory) as root:
        for name, data in expected.items():
            shown = Path(root.path, *name.split("/"))
            try:
                actual = _read(root, name)
            except UnsafePathError as exc:
                problems.append(f"{exc.path} {exc.problem.split(';')[0]}")
                continue
            except FileNotFoundError:
                problems.append(f"{shown} is missing")
                continue
            except OSError as exc:
                problems.append(f"{shown} cannot be read: {exc.strerror or exc}")
                continue
            if actual != data:
                line = _first_difference(data, actual)
                problems.append(
                    f"{shown} is not what the approved plan.json renders to (line {line} differs): it was "
                    "changed after the plan was made, or the plan was made by another version of exfix"
                )
    return tuple(problems)


def _read(root: OwnedDir, name: str) -> bytes:
    *parents, file = name.split("/")
    current = root
    opened: list[OwnedDir] = []
    try:
        for part in parents:
            current = current.subdir(part)
            opened.append(current)
        return current.read(file)
    finally:
        for directory in reversed(opened):
            directory.close()
