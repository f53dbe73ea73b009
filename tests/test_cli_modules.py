"""The CLI's layout: one module per command group, imports running one way (command modules →
``cli.common``; only the entry point ``cli.main`` imports them), one registration mechanism.

Before: ``cli/main.py`` imported the command modules, which imported ``cli.main`` back inside
their functions; commands were registered two ways and option types defined twice."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import curation_market
from curation_market.cli import common
from curation_market.cli.main import GROUPS, app

PACKAGE = Path(curation_market.__file__).parent
CLI = PACKAGE / "cli"
MODULES = sorted(p.stem for p in CLI.glob("*.py") if p.stem != "__init__")
GROUP_MODULES = {"market", "curator", "node", "serve", "lab", "devnode"}
ENTRY = {"curation_market.cli.main", "curation_market.__main__"}  # may import cli.main


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def test_the_cli_package_holds_the_groups_main_and_common() -> None:
    assert set(MODULES) == GROUP_MODULES | {"main", "common"}
    assert {m.__name__.rsplit(".", 1)[1] for m in GROUPS} == GROUP_MODULES


def test_nothing_but_the_entry_point_imports_cli_main() -> None:
    roots = [PACKAGE, PACKAGE.parent / "indexer", PACKAGE.parent / "curation",
             PACKAGE.parent / "rewards"]
    offenders = [_module_name(p) for root in roots for p in root.rglob("*.py")
                 if "curation_market.cli.main" in _imports(p)
                 and _module_name(p) not in ENTRY]
    assert offenders == []


def test_command_modules_import_common_only() -> None:
    """No cycle is possible: common imports no CLI module, a group only common."""
    for name in MODULES:
        cli_imports = {i for i in _imports(CLI / f"{name}.py")
                       if i.startswith("curation_market.cli.") and i.count(".") == 2}
        if name == "main":
            assert cli_imports >= {f"curation_market.cli.{g}" for g in GROUP_MODULES}
        elif name == "common":
            assert cli_imports == set(), cli_imports
        else:
            assert cli_imports <= {"curation_market.cli.common"}, (name, cli_imports)


@pytest.mark.parametrize("name", MODULES)
def test_each_module_imports_alone(name: str) -> None:
    """In a fresh interpreter, importing the module alone works and (but for the entry point)
    does not load cli.main."""
    code = (f"import sys, curation_market.cli.{name}\n"
            "print('curation_market.cli.main' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(name == "main")


def test_every_command_is_registered_once() -> None:
    """One mechanism: each group's ``register(app)``; the names the help lists."""
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    groups = [g.name for g in app.registered_groups]
    assert sorted(names) == sorted(set(names))
    assert set(names) == {"replay", "import-posts", "report", "rejections", "commitment",
                          "commit", "reveal", "run", "status", "rewind", "serve", "evaluate",
                          "demo", "devnode", "curator"}
    assert groups == ["prepare", "db"]


def test_shared_options_are_defined_once() -> None:
    """The option types several groups use live in common; no group defines its own."""
    shared = {"ConfigOpt", "DbOpt", "NodesOpt", "FormatOpt"}
    assert shared <= set(vars(common))
    for name in GROUP_MODULES:
        tree = ast.parse((CLI / f"{name}.py").read_text())
        assigned = {t.id for n in tree.body if isinstance(n, ast.Assign)
                    for t in n.targets if isinstance(t, ast.Name)}
        assert not assigned & shared, name


def test_python_m_and_the_devnode_command() -> None:
    done = subprocess.run([sys.executable, "-m", "curation_market", "devnode", "--help"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: curation-market devnode") and "--demo" in done.stdout
    res = CliRunner().invoke(app, ["devnode", "--port", "x"])
    assert res.exit_code == 2 and "--port: invalid int value" in res.output
