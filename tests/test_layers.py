"""The layers contract: a module imports only from its own layer or below, and no two
modules of `app` import each other, even through others. Imports inside functions
count (grimp reads every import statement in a file, not only the top-level ones): a
function-local import is a dependency that merely runs later.

Layers, low to high (DESIGN.md, "Layout"): kernel < tables < access, event recording <
norms engine < services (labs, auth < models < plans < checkpoints < evals < agreements,
incidents < norms service) < flows < api, cli, web < the app factory < the `stagegate`
command (app.cli, whose `serve` runs create_app). Where each module goes: BY_NAME,
BY_FILE, BY_PACKAGE below.
"""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from itertools import pairwise
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent

# Low to high. A module may import from its own layer and the layers before it.
LAYERS = ["kernel", "tables", "access, event recording", "norms engine", "labs, auth",
          "models", "plans", "checkpoints", "evals", "agreements, incidents",
          "norms service", "flows", "api, cli, web", "app factory", "stagegate command"]
RANK = {name: rank for rank, name in enumerate(LAYERS)}

# Where a module goes: its own name first, then what its file is (the last part of its
# name), then its package. A module none of these place fails the test, so every new
# module is placed on purpose.
BY_NAME = {
    **dict.fromkeys((
        "app.errors", "app.ids", "app.timeutil", "app.settings", "app.sqltypes",
        "app.pagination", "app.rowexists", "app.safeyaml", "app.versioning", "app.urls",
        "app.csvcells", "app.installers",
        "app.markdown",  # the renderer and the RenderedMarkdown column mixin of tables
        # packages' own (empty) __init__
        "app.agreements", "app.auth", "app.checkpoints", "app.evals", "app.events",
        "app.incidents", "app.labs", "app.models", "app.norms", "app.plans",
        "app.transparency",
    ), "kernel"),
    **dict.fromkeys((
        "app.tables", "app.runtime_tables", "app.auth.principal", "app.db", "app.ratelimit",
        "app.markdown_rerender",  # the start-up job that re-renders stored Markdown
    ), "tables"),
    "app.access": "access, event recording",
    **dict.fromkeys(("app.norms.facts", "app.norms.checks", "app.norms.engine",
                     "app.norms.loader"), "norms engine"),
    **dict.fromkeys(("app.flows", "app.listeners", "app.evals.worker", "app.evals.embedded",
                     "app.evals.remote_jobs",  # the registry's side of remote workers
                     "app.demo", "app.demo_reported"), "flows"),
    **dict.fromkeys(("app.http", "app.health", "app.openapi", "app.conditional",
                     "app.readcache", "app.client", "app.clikit", "app.backup", "app.web",
                     "app.evals.commands",
                     "app.evals.remote_api",
                     "app.evals.remote",  # the remote worker: a client of that HTTP API
                     "app.transparency.monitor"),  # a client of the log's HTTP API
                    "api, cli, web"),
    "app": "app factory",
    "app.cli": "stagegate command",  # `serve` runs create_app
}
BY_FILE = {"tables": "tables", "demo": "flows", "api": "api, cli, web",
           "cli": "api, cli, web"}
BY_PACKAGE = {
    "app.access": "access, event recording", "app.events": "access, event recording",
    "app.flows": "flows",
    "app.labs": "labs, auth", "app.auth": "labs, auth", "app.models": "models",
    "app.plans": "plans", "app.checkpoints": "checkpoints", "app.evals": "evals",
    "app.agreements": "agreements, incidents", "app.incidents": "agreements, incidents",
    "app.norms": "norms service", "app.web": "api, cli, web",
    # The log is written with each event and read through app.access.
    "app.transparency": "access, event recording",
}


@cache
def graph() -> grimp.ImportGraph:
    # Type-checking imports count too: they are the same dependency, read by a type checker.
    return grimp.build_graph("app", cache_dir=None)


def layer_of(module: str) -> str | None:
    if module in BY_NAME:
        return BY_NAME[module]
    package, _, file = module.rpartition(".")
    if package != "app" and file in BY_FILE:
        return BY_FILE[file]
    while package and package not in BY_PACKAGE:
        package = package.rpartition(".")[0]
    return BY_PACKAGE.get(package)


def _where(importer: str, imported: str) -> str:
    lines = graph().get_import_details(importer=importer, imported=imported)
    path = importer.replace(".", "/")
    path = f"{path}/__init__.py" if (ROOT / path).is_dir() else f"{path}.py"
    return "; ".join(f"{path}:{d['line_number']} `{d['line_contents']}`" for d in lines) or path


def upward_imports() -> list[str]:
    g = graph()
    found = []
    for importer in sorted(g.modules):
        for imported in sorted(g.find_modules_directly_imported_by(importer)):
            low, high = layer_of(importer), layer_of(imported)
            if RANK[high] > RANK[low]:
                found.append(f"{importer} ({low}) -> {imported} ({high}): "
                             f"{_where(importer, imported)}")
    return found


def import_cycles() -> list[list[str]]:
    """Strongly connected components of the import graph (Tarjan), each as one cycle."""
    g = graph()
    edges = {m: sorted(g.find_modules_directly_imported_by(m)) for m in g.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the module count (~150)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
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
                components.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return sorted(components)


def _cycle_text(component: list[str]) -> str:
    """One concrete cycle through the component's first module, both ways round."""
    g = graph()
    first = component[0]
    lines = [f"{len(component)} modules: {', '.join(component)}"]
    for other in component[1:]:
        there = g.find_shortest_chain(importer=first, imported=other)
        back = g.find_shortest_chain(importer=other, imported=first)
        if there and back:
            chain = [*there, *back[1:]]
            lines.append("  " + " -> ".join(chain))
            lines += [f"    {_where(a, b)}" for a, b in pairwise(chain)]
            break
    return "\n".join(lines)


def test_grimp_counts_function_local_imports():
    # app.db imports app.tables inside engine_for only.
    details = graph().get_import_details(importer="app.db", imported="app.tables")
    assert details and details[0]["line_contents"].startswith("import app.tables")
    source = (ROOT / "app/db.py").read_text().splitlines()
    assert source[details[0]["line_number"] - 1].startswith("    "), "not inside a function"


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in graph().modules if layer_of(m) is None)
    assert not unplaced, ("place these modules in a layer (tests/test_layers.py LAYERS):\n"
                          + "\n".join(unplaced))


def test_modules_import_only_their_own_layer_or_below():
    found = upward_imports()
    assert not found, (f"{len(found)} imports reach a higher layer (function-local ones "
                       "included):\n" + "\n".join(found))


def test_no_import_cycles():
    cycles = import_cycles()
    assert not cycles, (f"{len(cycles)} import cycles:\n"
                        + "\n".join(_cycle_text(c) for c in cycles))


def test_importing_every_module_installs_no_session_listener():
    # Listeners are installed by the entry points (create_app, the CLI, the worker child,
    # conftest), never as a side effect of an import. A fresh interpreter imports every
    # module but the evaluation runner's (torch) and counts the Session's listeners.
    modules = sorted(m for m in graph().modules if m not in {"app.evals.runner"})
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "from sqlalchemy.orm import Session\n"
        "from sqlmodel import Session as SQLModelSession\n"
        "names = ('before_flush', 'after_flush', 'before_commit', 'after_commit',\n"
        "         'after_soft_rollback', 'after_rollback', 'after_begin')\n"
        "found = [f'{cls.__name__}.{n}: {fn.__module__}.{fn.__qualname__}'\n"
        "         for cls in (Session, SQLModelSession) for n in names\n"
        "         for fn in getattr(cls().dispatch, n)]\n"
        "print('\\n'.join(sorted(set(found))))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "", f"installed on import:\n{out}"
