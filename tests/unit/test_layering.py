"""The import structure of the add-on (package/bin) and of its tools: no import cycle anywhere, the tools layered
(docs/development.md), the shipped code independent of the tools, and no module of package/bin over 500 lines.

Imports are read with ast from every module, function-local ones included, so a cycle cannot hide behind an import
inside a function.
"""
import ast
import warnings
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple

import pytest

from tests.conftest import ROOT

BIN = ROOT / "package" / "bin"
TOOLS = ROOT / "tools"

# The layer order of tools/, lowest first: a module imports modules of its own layer or of a lower one, never of a
# higher one. Every module of tools/ is listed here, in exactly one layer (this is the one place the order is written).
LAYERS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    # Splunk's formats, read and evaluated: conf files, SPL structure and macros, the one search-term parser,
    # index-time and search-time knowledge.
    ("parser", ("tools.conffile", "tools.spl", "tools.searchterms", "tools.indextime", "tools.fieldrules",
                "tools.autokv", "tools.evalexpr", "tools.searchtime")),
    # Rules over one search or one detection.
    ("lint", ("tools.spllint",)),
    # content/ as data: detections, macros, tunables, Enterprise Security settings.
    ("content model", ("tools.es", "tools.model", "tools.commands", "tools.content")),
    # What is made from the content model: rendered confs and manifests, generated docs and setup page, the lint of
    # everything shipped, the AppInspect summary.
    ("render/release", ("tools.release", "tools.contentlint", "tools.docs", "tools.setup_manifest", "tools.setup_page",
                        "tools.appinspect_summary")),
    # Running the add-on's commands offline: the SCP v2 driver, the replay and its inputs, the benchmark.
    ("replay/bench", ("tools.offline_command", "tools.scp", "tools.inputs", "tools.peers", "tools.replay", "tools.schedule",
                      "tools.kvstandin", "tools.simulate", "tools.workload", "tools.fleet", "tools.benchscp", "tools.benchcases",
                      "tools.bench", "tools.statesize")),
    # Docs made from a replay: the example alert.
    ("replay docs", ("tools.example_alert",)),
)
MAX_LINES = 500
UCC_GENERATED_MARKER = "# Everything above is the file ucc-gen generates, verbatim"

Graph = Dict[str, Set[str]]


def modules_under(folder: Path, prefix: str = "") -> Dict[str, Path]:
    """Dotted module name -> file for every .py below `folder` (a package's __init__ is the package)."""
    found = {}
    for path in sorted(folder.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(folder).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join([prefix] + parts if prefix else parts) or prefix
        if name:
            found[name] = path
    return found


def imported_names(module: str, path: Path, is_package: bool) -> List[str]:
    """Every module name an import statement of `path` may refer to, anywhere in the file (functions included).
    `from a import b` yields both `a.b` and `a`: the caller keeps the ones that are modules it knows."""
    with warnings.catch_warnings():  # a string's invalid escape warns at parse time; not this test's business
        warnings.simplefilter("ignore")
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: List[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[:len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            names.append(base)
            names.extend("{}.{}".format(base, alias.name) if base else alias.name for alias in node.names)
    return names


def import_graph(files: Dict[str, Path]) -> Graph:
    """module -> the known modules it imports (the most specific known name of each import)."""
    graph: Graph = {}
    for module, path in files.items():
        targets: Set[str] = set()
        for name in imported_names(module, path, path.name == "__init__.py"):
            parts = name.split(".")
            for end in range(len(parts), 0, -1):  # `import a.b.c`: the deepest module we know
                candidate = ".".join(parts[:end])
                if candidate in files:
                    if candidate != module:
                        targets.add(candidate)
                    break
        graph[module] = targets
    for module in list(graph):  # `from pkg import sub` also names pkg: keep only sub when both are known
        graph[module] -= {t for t in graph[module] if any(o.startswith(t + ".") for o in graph[module])}
    return graph


def find_cycle(graph: Graph) -> Optional[List[str]]:
    """One import cycle as [a, b, ..., a], or None."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def layer_of(layers: Iterable[Tuple[str, Tuple[str, ...]]]) -> Dict[str, Tuple[int, str]]:
    return {module: (rank, name) for rank, (name, members) in enumerate(layers) for module in members}


def upward_imports(graph: Graph, layers: Iterable[Tuple[str, Tuple[str, ...]]]) -> List[str]:
    ranks = layer_of(layers)
    problems = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if module in ranks and target in ranks and ranks[target][0] > ranks[module][0]:
                problems.append("{} ({}) imports {} ({}), a higher layer".format(
                    module, ranks[module][1], target, ranks[target][1]))
    return problems


def project_files() -> Dict[str, Path]:
    files = modules_under(BIN)
    files.update(modules_under(TOOLS, "tools"))
    return files


# ---------------------------------------------------------------- the project
def test_no_import_cycle_in_package_or_tools() -> None:
    cycle = find_cycle(import_graph(project_files()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_tools_module_has_a_layer() -> None:
    listed = [m for _, members in LAYERS for m in members]
    assert len(listed) == len(set(listed)), "a module is listed in two layers"
    actual = {m for m in modules_under(TOOLS, "tools") if m != "tools"}
    assert not actual - set(listed), "give {} a layer in LAYERS (tests/unit/test_layering.py)".format(
        ", ".join(sorted(actual - set(listed))))
    assert not set(listed) - actual, "LAYERS lists modules that do not exist: {}".format(
        ", ".join(sorted(set(listed) - actual)))


def test_tools_import_only_their_own_layer_or_lower() -> None:
    assert upward_imports(import_graph(project_files()), LAYERS) == []


def test_the_shipped_add_on_never_imports_the_tools() -> None:
    graph = import_graph(project_files())
    offenders = ["{} imports {}".format(m, t) for m, ts in sorted(graph.items()) if not m.startswith("tools")
                 for t in sorted(ts) if t.startswith("tools")]
    assert offenders == []


@pytest.mark.parametrize("path", sorted(BIN.rglob("*.py")), ids=lambda p: str(p.relative_to(BIN)))
def test_no_module_in_package_bin_is_over_500_lines(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    # the REST handler's head is ucc-gen's output, verbatim (tests/unit/test_setup_page.py), two fields per data scope:
    # only the hand-written part below its marker counts
    text = text.split(UCC_GENERATED_MARKER, 1)[-1]
    lines = len(text.splitlines())
    assert lines <= MAX_LINES, "{} has {} lines: split it (docs/development.md, about 400 per module)".format(
        path.relative_to(ROOT), lines)


# ---------------------------------------------------------------- the checks themselves
def _plant(folder: Path, files: Dict[str, str]) -> Dict[str, Path]:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return modules_under(folder / "tools", "tools")


def test_a_cycle_hidden_in_a_function_local_import_is_found(tmp_path: Path) -> None:
    files = _plant(tmp_path, {
        "tools/__init__.py": "",
        "tools/model.py": "def render():\n    from tools.lint import check\n    return check\n",
        "tools/lint.py": "from tools import model\n\ncheck = model\n",
        "tools/other.py": "import tools.lint\n",
    })
    assert find_cycle(import_graph(files)) in (["tools.lint", "tools.model", "tools.lint"],
                                               ["tools.model", "tools.lint", "tools.model"])


def test_a_relative_import_cycle_is_found(tmp_path: Path) -> None:
    files = _plant(tmp_path, {"tools/__init__.py": "", "tools/a.py": "from . import b\n",
                              "tools/b.py": "from .a import x\n"})
    assert find_cycle(import_graph(files)) == ["tools.a", "tools.b", "tools.a"]


def test_an_acyclic_graph_passes(tmp_path: Path) -> None:
    files = _plant(tmp_path, {"tools/__init__.py": "", "tools/a.py": "import json\nfrom tools import b\n",
                              "tools/b.py": "from tools.c import x\n", "tools/c.py": "x = 1\n"})
    assert find_cycle(import_graph(files)) is None


def test_an_import_up_the_layers_is_named(tmp_path: Path) -> None:
    files = _plant(tmp_path, {"tools/__init__.py": "", "tools/parse.py": "def f():\n    from tools import lint\n",
                              "tools/lint.py": "from tools.parse import f\n"})
    layers = (("parser", ("tools.parse",)), ("lint", ("tools.lint",)))
    assert upward_imports(import_graph(files), layers) == [
        "tools.parse (parser) imports tools.lint (lint), a higher layer"]


def sys_path_edits(source: str) -> List[int]:
    """Lines that change the import path at run time: sys.path assigned, item-assigned, or mutated by a method call."""
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # UCC's generated handler holds an invalid escape ('\\W')
        warnings.simplefilter("ignore", DeprecationWarning)
        tree = ast.parse(source)
    for node in ast.walk(tree):
        targets: List[ast.AST] = []
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = list(node.targets) if isinstance(node, ast.Assign) else [node.target]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            targets = [node.func.value]
        for target in targets:
            base = target.value if isinstance(target, ast.Subscript) else target
            if isinstance(base, ast.Attribute) and base.attr == "path" and isinstance(base.value, ast.Name) \
                    and base.value.id == "sys":
                found.append(node.lineno)
    return sorted(found)


def test_nothing_edits_sys_path() -> None:
    """The import path is set once (pyproject's pythonpath, build.sh's PYTHONPATH, UCC's import_declare_test)."""
    files = [p for folder in ("package", "tools", "tests") for p in (ROOT / folder).rglob("*.py")
             if "__pycache__" not in p.parts and not p.is_relative_to(ROOT / "tests" / "data")]
    files.append(ROOT / "additional_packaging.py")
    edits = ["{}:{}".format(p.relative_to(ROOT), line) for p in files
             for line in sys_path_edits(p.read_text(encoding="utf-8"))]
    assert edits == []


def test_every_form_of_sys_path_edit_is_found() -> None:
    source = "import sys\nsys.path.insert(0, 'x')\nsys.path[0] = 'y'\nsys.path = []\nsys.path += ['z']\nprint(sys.path)\n"
    assert sys_path_edits(source) == [2, 3, 4, 5]
