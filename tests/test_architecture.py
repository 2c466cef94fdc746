"""The import order of the pipeline, read from the source with ``ast``.

Every component of agent/ has a layer; an import may point to its own layer or a lower one,
never up the pipeline. Imports inside functions count as much as those at the top of a
module (hiding an upward import in a function was how the planning -> report -> workflow ->
apply -> planning cycle stayed unnoticed), and each one must say on its line why it is not at
the top: ``# optional: ...`` (an optional dependency) or ``# lazy: ...`` (kept off the CLI's
start, such as the lab).

====  ========================================  ==================================================
layer component                                 why it sits there
====  ========================================  ==================================================
0     agent.errors, agent.resources, agent      import nothing from agent
1     agent.model, agent.pwsh                   frozen values; the one quoting filter that renders
                                                their commands (model.plan and pwsh use each other)
2     agent.report                              shows model values: escaping (safe), display
                                                helpers, scan and playbook-run reports. It reads
                                                only the model, so every stage that shows a value
                                                uses it: planning (script comments), review,
                                                workflow, cli
3     agent.inventory                           inventory
4     agent.transport                           connect
5     agent.collect                             collect
6     agent.rules                               evaluate: the rules
7     agent.evaluate                            evaluate: facts x rules -> findings
8     agent.scan, agent.fleet                   the fleet scan use case (connect, collect,
                                                evaluate per host) and its bounded runner
9     agent.planning                            plan: findings -> actions -> script text (pure)
10    agent.review                              review: writes the plan bundle and its pages
11    agent.apply                               apply and verify; the journal
12    agent.workflow                            playbooks: scan, plan, review, apply, report
13    agent.cli, mock_remoting                  the commands; the lab, which only the CLI starts
====  ========================================  ==================================================

README.md's architecture section shows the same table; a test below keeps the two equal.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
AGENT = REPO / "agent"

LAYERS: dict[str, int] = {
    "agent": 0,
    "agent.errors": 0,
    "agent.resources": 0,
    "agent.model": 1,
    "agent.pwsh": 1,
    "agent.report": 2,
    "agent.inventory": 3,
    "agent.transport": 4,
    "agent.collect": 5,
    "agent.rules": 6,
    "agent.fixes": 7,
    "agent.evaluate": 8,
    "agent.scan": 9,
    "agent.fleet": 9,
    "agent.planning": 10,
    "agent.permissions": 10,
    "agent.review": 11,
    "agent.apply": 12,
    "agent.workflow": 13,
    "agent.cli": 14,
    "mock_remoting": 14,
}

# Why an import may sit inside a function, written on its line.
MARKER = re.compile(r"#\s*(?:optional|lazy):\s*\S")


@dataclass(frozen=True, slots=True)
class Import:
    path: str  # as reported, e.g. agent/planning/render.py
    line: int
    target: str  # the module imported, e.g. agent.review.bundle
    in_function: bool
    marked: bool  # the statement's lines carry an optional:/lazy: comment


def component(module: str) -> str | None:
    """The component a dotted module name belongs to: the longest prefix in LAYERS (the bare
    ``agent`` package only for itself, so a new package needs a layer of its own)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in LAYERS:
            return None if name == "agent" and module != "agent" else name
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    drop = node.level - 1 if is_package else node.level
    base = base[: len(base) - drop]
    return ".".join([*base, node.module] if node.module else base)


def imports(module: str, source: str, path: str, *, is_package: bool = False) -> list[Import]:
    """Every import statement in ``source`` (module ``module``), at any depth."""
    tree = ast.parse(source, filename=path)
    lines = source.splitlines()
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                end = child.end_lineno or child.lineno
                marked = any(MARKER.search(text) for text in lines[child.lineno - 1 : end])
                if isinstance(child, ast.Import):
                    targets = [alias.name for alias in child.names]
                else:
                    base = _resolve(module, child, is_package)
                    # "from agent import pwsh" imports the module agent.pwsh.
                    targets = [f"{base}.{alias.name}" if base == "agent" else base for alias in child.names]
                for target in dict.fromkeys(targets):
                    found.append(Import(path, child.lineno, target, in_function, marked))
            visit(child, nested)

    visit(tree, False)
    return found


def violations(module: str, source: str, path: str, *, is_package: bool = False) -> list[str]:
    """What is wrong with the imports of one module; empty when nothing is."""
    own = component(module)
    if own is None:
        return [f"{path}: {module} has no layer: add its package to LAYERS in tests/test_architecture.py"]
    problems = []
    for found in imports(module, source, path, is_package=is_package):
        where = f"{path}:{found.line}"
        if found.in_function and not found.marked:
            problems.append(
                f"{where}: import of {found.target} inside a function without '# optional: ...' or "
                "'# lazy: ...' on its line saying why"
            )
        target = component(found.target)
        if target is None or target == own:
            continue  # the standard library, a third-party package, or the module's own component
        if LAYERS[target] > LAYERS[own]:
            problems.append(
                f"{where}: {own} (layer {LAYERS[own]}) imports {found.target} ({target}, layer "
                f"{LAYERS[target]}): imports may point only down the pipeline"
            )
    return problems


def agent_modules() -> list[tuple[str, Path]]:
    return sorted((module_name(path), path) for path in AGENT.rglob("*.py"))


def tree_violations() -> list[str]:
    problems = []
    for module, path in agent_modules():
        rel = path.relative_to(REPO).as_posix()
        source = path.read_text(encoding="utf-8")
        problems.extend(violations(module, source, rel, is_package=path.name == "__init__.py"))
    return problems


# --- the tree -------------------------------------------------------------------------------


def test_agent_imports_point_only_down_the_pipeline() -> None:
    assert tree_violations() == []


def test_every_module_has_a_layer() -> None:
    assert [str(path) for module, path in agent_modules() if component(module) is None] == []


def test_readme_shows_the_same_layers() -> None:
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Architecture", 1)[1]
    section = section.split("\n## ", 1)[0]
    shown: dict[str, int] = {}
    for line in section.splitlines():
        row = re.match(r"^\|\s*(\d+)\s*\|([^|]*)\|", line)
        if row:
            for name in re.findall(r"`([a-z_.]+)`", row.group(2)):
                shown[name] = int(row.group(1))
    assert shown == LAYERS


# --- the checker can fail -------------------------------------------------------------------


def test_an_upward_import_is_reported() -> None:
    # planning writing the bundle itself again: the cycle this test exists to prevent.
    source = "from agent.model.plan import Plan\nfrom agent.review import write_plan_dir\n"
    [problem] = violations("agent.planning.bad", source, "agent/planning/bad.py")
    assert problem.startswith("agent/planning/bad.py:2: agent.planning (layer 10) imports agent.review ")


def test_an_upward_import_inside_a_function_is_reported_even_when_marked() -> None:
    source = (
        "def report(run):\n"
        "    from agent.workflow.runner import run_playbook  # lazy: not a reason to point up\n"
        "    return run_playbook\n"
    )
    [problem] = violations("agent.report.bad", source, "agent/report/bad.py")
    assert "agent.report (layer 2) imports agent.workflow.runner" in problem


def test_an_import_inside_a_function_needs_its_reason() -> None:
    source = (
        "import json\n\n\n"
        "def a():\n"
        "    import base64\n"
        "    from agent.model.plan import Plan\n"
        "    from agent import (\n"
        "        pwsh,  # optional: a reason on any line of the statement counts\n"
        "    )\n"
        "    return base64, Plan, pwsh\n\n\n"
        "class B:\n"
        "    def c(self):\n"
        "        from mock_remoting.lab import Lab  # lazy: the lab starts only when asked\n"
        "        return Lab\n"
    )
    problems = violations("agent.cli.bad", source, "agent/cli/bad.py")
    assert problems == [
        "agent/cli/bad.py:5: import of base64 inside a function without '# optional: ...' or "
        "'# lazy: ...' on its line saying why",
        "agent/cli/bad.py:6: import of agent.model.plan inside a function without '# optional: ...' or "
        "'# lazy: ...' on its line saying why",
    ]


def test_the_lab_is_for_the_cli_only() -> None:
    source = "def lab():\n    from mock_remoting.lab import Lab  # lazy: the lab\n    return Lab\n"
    assert violations("agent.cli.x", source, "agent/cli/x.py") == []
    [problem] = violations("agent.apply.x", source, "agent/apply/x.py")
    assert "imports mock_remoting.lab (mock_remoting, layer 14)" in problem


@pytest.mark.parametrize(
    ("module", "source", "target"),
    [
        ("agent.planning.x", "from . import render\n", "agent.planning"),
        ("agent.planning.x", "from ..review import bundle\n", "agent.review"),
        ("agent.planning", "from .render import BOM\n", "agent.planning.render"),
        ("agent.model.plan", "from agent import pwsh, errors\n", "agent.pwsh"),
        ("agent.cli.x", "import agent.review.bundle as b\n", "agent.review.bundle"),
    ],
)
def test_import_targets_are_resolved(module: str, source: str, target: str) -> None:
    found = imports(module, source, "x.py", is_package=module == "agent.planning")
    assert found[0].target == target


def test_a_module_without_a_layer_is_reported() -> None:
    [problem] = violations("agent.newstage.x", "import json\n", "agent/newstage/x.py")
    assert "has no layer" in problem
