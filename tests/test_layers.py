"""The package's layering, read from the source with ``ast``: no import circle among modules, and no import
from a lower layer to a higher one (docs/development.md, "Project layout").

(a) Circles count module-level imports (what runs when a module is first imported); imports under
    ``if TYPE_CHECKING:`` are left out (they never run).
(b) Layers count every import, function-local ones too: a function-local import only defers the cost
    of a heavy module (pyVmomi, OR-Tools), it does not make an upward dependency right.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "balancer"

# The layers, lowest first: a module may import from its own layer and the layers below it only.
# A module belongs to the longest prefix listed here. The same order is in docs/development.md, "Project layout".
LAYERS: list[tuple[str, ...]] = [
    # the version, errors (and turning parse errors into one line), logs, packaged data
    ("balancer", "balancer.errors", "balancer.logs", "balancer.data"),
    # what the balancer reads and writes: the snapshot, the plan (and the outcome of its actions)
    ("balancer.snapshot", "balancer.plan"),
    # pure planning
    ("balancer.engine",),
    # checks of a plan against the cluster as it is now: premises, the replay of a saved plan
    ("balancer.checks",),
    # The registry of source kinds: one line per kind (its name, its config section, where its code is).
    # An exception to "sources above config", by design: it imports nothing of the balancer at module
    # level (a kind's code is imported by name on first use), so that the config can validate `source:`
    # against it and ask a kind for its endpoint without importing any source.
    ("balancer.sources.registry",),
    # the YAML config, which cluster of it a command acts on, config -> engine options
    ("balancer.config",),
    # where snapshots come from and plans are carried out
    ("balancer.sources",),
    # what is kept and shown: the journal, the metrics and their endpoint (its app: the web console and
    # the HTTP API, which reach the service through web/backend.py's interface), the plan reports
    ("balancer.journal", "balancer.metrics", "balancer.web", "balancer.report"),
    # the use cases, one module each, called by the CLI, the service and POST /place
    ("balancer.app",),
    # `balancer run`: the cycles, scheduling, the service's HTTP endpoint wiring
    ("balancer.service",),
    # `balancer simulate`: what-if replay of a trace day through the service's cycle
    ("balancer.whatif",),
    # the command line
    ("balancer.cli", "balancer.__main__"),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _layer(module: str) -> int:
    best, layer = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), i
    assert layer >= 0, f"{module}: in no layer of tests/test_layers.py"
    return layer


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(module: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, module-level) for every import of the balancer in ``module``."""
    is_package = path.name == "__init__.py"
    out: list[tuple[str, int, bool]] = []

    def target(node: ast.ImportFrom) -> str:
        if node.level == 0:
            return node.module or ""
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, ast.ImportFrom):
                t = target(child)
                if t == "balancer" or t.startswith("balancer."):
                    for alias in child.names:  # `from pkg import submodule` imports the submodule
                        sub = f"{t}.{alias.name}"
                        out.append((sub if sub in MODULES else t, child.lineno, not local))
            elif isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, not local) for a in child.names if a.name.startswith("balancer"))
            visit(child, local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return out


IMPORTS = {m: _imports(m, p) for m, p in MODULES.items()}


def test_every_module_is_in_a_layer():
    for module in MODULES:
        _layer(module)


def test_no_import_from_a_lower_layer_to_a_higher_one():
    upward = [f"{m} (line {line}) imports {t}: layer {_layer(m)} -> {_layer(t)}"
              for m, imports in IMPORTS.items() for t, line, _ in imports if _layer(t) > _layer(m)]
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_no_import_circle():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for m, imports in IMPORTS.items():
        for t, _, module_level in imports:
            if module_level and t in MODULES and t != m:
                graph[m].add(t)
    # a package's __init__ running its submodules, which import names from it, is one circle: report them all
    circles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                circles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_the_engine_stays_pure():
    """The engine plans from a snapshot: it imports nothing but the snapshot, the plan and the shared
    counting words (balancer/words.py: pure functions, "1 VM" / "2 VMs")."""
    allowed = ("balancer.engine", "balancer.snapshot", "balancer.plan", "balancer.words")
    wrong = [f"{m} (line {line}) imports {t}" for m, imports in IMPORTS.items() if m.startswith("balancer.engine")
             for t, line, _ in imports if not t.startswith(allowed)]
    assert not wrong, "\n".join(wrong)
