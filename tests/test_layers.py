"""The package's layers, as docs/architecture.md draws them, held by its import graph.

Every import (at module level or inside a function) goes down the layers or stays in its own
package; no two modules import each other, directly or round a longer cycle; ``import wordsight``
and ``wordsight --help`` load neither torch, transformers nor scikit-learn.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import wordsight

ROOT = Path(wordsight.__file__).parent
# Lower layers never import higher ones (docs/architecture.md, "Layers").
LAYERS = [
    {"_util", "_version"},
    {"io", "storage"},  # storage: the saved-folder discipline, on io.safe_files
    {"encoders"},
    {"features"},
    {"text"},
    {"zeroshot"},
    {"estimator"},
    {"training"},
    {"evaluate", "explain", "export"},
    {"frontend"},
    {"serve", "cli"},
    {"__init__", "__main__"},  # the package's facade: lazy re-exports of the public API
]


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    return next(i for i, names in enumerate(LAYERS) if top in names)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every wordsight module ``path`` imports, anywhere in it, resolved to a module name."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("wordsight"):
                for alias in node.names:  # "from . import x" may name a submodule
                    sub = f"{target}.{alias.name}"
                    out.add(sub if (ROOT.parent / (sub.replace(".", "/") + ".py")).exists()
                            or (ROOT.parent / sub.replace(".", "/")).is_dir() else target)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("wordsight")}
    return out - {name}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in ROOT.rglob("*.py")}


def test_imports_go_down_the_layers():
    wrong = [f"{m} (layer {layer_of(m)}) imports {t} (layer {layer_of(t)})"
             for m, targets in graph().items() for t in targets
             if t.startswith("wordsight.") and layer_of(t) > layer_of(m)]
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles_between_modules():
    g = graph()
    # a package's __init__ re-exports its modules; a module importing its own package's names is
    # not a cycle of logic, so edges into a package __init__ from inside that package are dropped
    def edges(m):
        return {t for t in g.get(m, ()) if t in g and not (m.startswith(t + ".") and t != "wordsight")}

    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in g:
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_import_and_help_load_no_heavy_library():
    code = ("import sys, wordsight, wordsight.cli; wordsight.cli.build_parser(['--help']);"
            "print(sorted(m for m in ('torch', 'transformers', 'sklearn', 'PIL', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
