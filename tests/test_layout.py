"""The shape of the house, checked by tools rather than by hope.

* imports flow one way (import-linter's contracts in pyproject.toml: the layers, the core
  never importing Typer/Rich, pure-Python arithmetic, heavy modules through convkit.heavy);
* no import cycles between convkit's modules;
* no module over 600 lines, no function body over 80 lines (each exception named here with
  its reason);
* the core's error messages name parameters, never command-line flags;
* every command has help text with an example, and a section in the README.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "convkit"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80

# Functions allowed a longer body, each with the reason it stays whole.
LONG_FUNCTIONS: dict[str, str] = {}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _core_modules() -> list[Path]:
    return [p for p in _modules() if "cli" not in p.relative_to(PACKAGE).parts]


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.is_file():
        pytest.skip("import-linter is not installed")
    proc = subprocess.run(
        [str(lint), "--no-cache"], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_no_import_cycles():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("convkit", exclude_type_checking_imports=True)
    edges = {
        m: {d for d in graph.find_modules_directly_imported_by(m) if d.startswith("convkit")}
        for m in graph.modules
        if m.startswith("convkit")
    }
    # Tarjan's strongly connected components: any component of two or more is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    assert not cycles, cycles


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_module_size(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(REPO)}: {lines} lines"


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function's body, without its signature and docstring (a Typer command's
    options are declarations, not logic)."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if not body:
        return 0
    return body[-1].end_lineno - body[0].lineno + 1


def test_function_size():
    too_long = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{path.relative_to(REPO)}:{node.name}"
                lines = _body_lines(node)
                if lines > MAX_FUNCTION_LINES and name not in LONG_FUNCTIONS:
                    too_long.append(f"{name} ({lines} lines)")
    assert not too_long, too_long


_FLAG = re.compile(r"(?<![\w`-])(--[a-z][a-z0-9-]+|-[a-z])\b")
_COMMAND_REFERENCE = re.compile(r"convkit [a-z-]+ --[a-z-]+")


def _message_strings(node: ast.Raise) -> list[str]:
    parts = []
    for sub in ast.walk(node.exc) if node.exc is not None else ():
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            parts.append(sub.value)
    return parts


def test_core_messages_name_parameters_not_flags():
    """The core's messages name the parameter (in backticks); the CLI shows the flag."""
    offenders = []
    for path in _core_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Raise):
                continue
            for text in _message_strings(node):
                cleaned = _COMMAND_REFERENCE.sub("", text)
                match = _FLAG.search(cleaned)
                if match:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {text!r}")
    assert not offenders, "\n".join(offenders)


def test_backticked_parameters_become_flags(run_cli, tmp_path, sample_images):
    """One mechanism: a parameter the core names in backticks reaches the user as the flag
    of the running command (and an alias declared in one place)."""
    image = sample_images / "camera.png"
    result = run_cli(["grayscale", image, "-o", tmp_path / "a.png", "-d", tmp_path])
    assert result.stderr.strip() == "convkit: error: give either --output or --out-dir, not both"
    result = run_cli(["grayscale", image, "--keep-aspect", "-o", tmp_path / "a.png"])
    assert result.stderr.strip() == (
        "convkit: error: --keep-aspect needs --resize, the box to fit in"
    )
    from convkit.cli import report

    report.use_flags(lambda: {"epochs": "--epochs"})
    try:
        assert report.for_user("`epochs` must be at least 1, got 0; `other` stays") == (
            "--epochs must be at least 1, got 0; other stays"
        )
    finally:
        report.use_flags(None)


def _commands() -> list[str]:
    from convkit.cli import COMMANDS

    return list(COMMANDS)


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help_with_an_example(command, run_cli):
    result = run_cli([command, "--help"])
    assert result.exit_code == 0, result
    text = " ".join(result.stdout.decode().split())
    assert "Example:" in text or "Examples:" in text, text[:400]
    assert f"convkit {command}" in text, text[:400]


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_a_readme_section(command):
    headings = [
        line
        for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    ]
    assert any(f"`convkit {command}`" in h for h in headings), headings


def test_ruff_bans_typer_and_rich_in_the_core(tmp_path):
    """The rule behind 'the core never imports Typer or Rich' is really configured."""
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.is_file():
        pytest.skip("ruff is not installed")
    probe = tmp_path / "convkit" / "image" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "def f():\n    from rich.table import Table\n    import typer\n\n    return Table, typer\n"
    )
    proc = subprocess.run(
        [str(ruff), "check", "--no-cache", "--config", str(REPO / "pyproject.toml")]
        + ["--select", "TID251", "convkit/image/probe.py"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "`rich` is banned" in proc.stdout and "`typer` is banned" in proc.stdout
