"""The package keeps the stage layout of ``shared/STYLE.md``: imports only go down the stages,
the core never imports the CLI, and no module grows past the size where it holds two concepts.

Lazy imports (inside functions) count too: they dodge import cycles and start-up time, not the
direction of the layering. A new edge here is a design decision: make it in STYLE.md first.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "flowctl"

#: Modules every stage may import: errors, the leaf utilities, the packaged data files.
LEAVES = frozenset({"errors", "limits", "masking", "outfiles", "__version__", "schemas", "templates"})

#: What each stage may import besides the leaves (STYLE.md, "Import direction").
ALLOWED: dict[str, frozenset[str]] = {
    "load": frozenset(),
    "repo": frozenset(),  # git: tags, files at a revision, the work tree's top
    "spec": frozenset({"load", "repo"}),  # repo only to find the work tree a pipeline is discovered in
    "graph": frozenset({"spec"}),
    "fingerprint": frozenset({"spec"}),
    "run": frozenset({"spec", "graph", "fingerprint"}),  # never state: wiring happens in cli
    "state": frozenset({"run", "spec", "graph", "fingerprint", "repo"}),
    "observe": frozenset({"run", "state", "spec", "graph"}),  # state: read-only history queries
    "diff": frozenset({"spec", "load", "graph", "fingerprint", "repo"}),
    "schedule": frozenset({"run", "state", "spec", "repo"}),
    "scaffold": frozenset({"spec", "state"}),
    "report": frozenset({"observe", "state", "run", "spec", "graph", "scaffold"}),
    "benchmark": frozenset({"observe", "repo", "run", "spec", "state"}),
}
UNRESTRICTED = frozenset({"cli", "__main__", "__init__"})

#: STYLE.md asks for 80-400 lines a module; past this one holds two concepts and is split.
MAX_MODULE_LINES = 500


def _stage(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def _imported_stages(path: Path) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("flowctl."):
                found.add((node.module.split(".")[1], node.lineno))
            elif node.module == "flowctl":
                found.update((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update((a.name.split(".")[1], node.lineno) for a in node.names if a.name.startswith("flowctl."))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_stage_is_known() -> None:
    stages = {_stage(p) for p in _modules()}
    assert stages <= set(ALLOWED) | LEAVES | UNRESTRICTED, sorted(stages - set(ALLOWED) - LEAVES - UNRESTRICTED)


def test_imports_only_go_down_the_stages_and_the_core_never_imports_the_cli() -> None:
    wrong = []
    for path in _modules():
        stage = _stage(path)
        if stage in UNRESTRICTED:
            continue
        allowed = ALLOWED.get(stage, frozenset()) | LEAVES | {stage}
        wrong += [f"{path.relative_to(REPO)}:{line}: {stage} imports {target}"
                  for target, line in sorted(_imported_stages(path)) if target not in allowed]
    assert not wrong, "\n".join(wrong)


def test_no_module_holds_two_concepts() -> None:
    long = {str(p.relative_to(REPO)): n for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"split these (STYLE.md: one concept a module, 80-400 lines): {long}"
