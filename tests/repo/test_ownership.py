"""One module owns git (issue 14): nothing outside ``flowctl/repo/`` imports gitpython or runs
``git``, ``flowctl/repo/`` imports nothing of flowctl but ``errors`` (so every stage may use it),
gitpython is imported inside functions only, and ``schedule`` no longer reaches into ``diff``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "flowctl"


def modules(folder: Path = PACKAGE) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(folder.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def imported(tree: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node


def runs_git(tree: ast.AST) -> bool:
    """A list or tuple literal starting with the string "git" (an argv)."""
    return any(
        isinstance(node, (ast.List, ast.Tuple)) and node.elts
        and isinstance(node.elts[0], ast.Constant) and node.elts[0].value == "git"
        for node in ast.walk(tree)
    )


def test_the_checks_see_what_they_look_for() -> None:
    """Guards the guards: the repo package itself does run git and import gitpython."""
    trees = dict(modules(PACKAGE / "repo"))
    assert any(runs_git(t) for t in trees.values())
    assert any(name == "git" for t in trees.values() for name, _ in imported(t))


def test_nothing_outside_the_repo_package_imports_gitpython_or_runs_git() -> None:
    offenders = []
    for path, tree in modules():
        if path.parent.name == "repo":
            continue
        if any(name == "git" or name.startswith("git.") for name, _ in imported(tree)):
            offenders.append(f"{path.relative_to(PACKAGE)} imports gitpython")
        if runs_git(tree):
            offenders.append(f"{path.relative_to(PACKAGE)} runs git")
    assert offenders == []


def test_the_repo_package_sits_at_the_bottom_and_imports_gitpython_lazily() -> None:
    for path, tree in modules(PACKAGE / "repo"):
        ours = {name for name, _ in imported(tree) if name.startswith("flowctl")}
        assert ours <= {"flowctl.errors"} | {f"flowctl.repo.{p.stem}" for p in (PACKAGE / "repo").glob("*.py")}, path
        statements = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        top_level = {name for node in statements for name, _ in imported(node)}  # not under TYPE_CHECKING
        assert "git" not in top_level, f"{path.name} imports gitpython at module level"


def test_schedule_does_not_import_diff() -> None:
    for path, tree in modules(PACKAGE / "schedule"):
        assert not [n for n, _ in imported(tree) if n.startswith("flowctl.diff")], path
