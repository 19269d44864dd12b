"""fastdnn's modules import one another without a cycle, function-local imports included: a cycle hidden by an
import inside a function still runs (the order of first use decides whether it breaks), and it means two
modules each hold part of one job."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fastdnn"


def lazy_names():
    """fastdnn's names loaded on first use and the module each comes from: the table in fastdnn/__init__.py,
    evaluated from its source (``from fastdnn import DNNClassifier`` imports fastdnn.estimator)."""
    for node in ast.parse((PACKAGE / "__init__.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_EXPORTS" for t in node.targets):
            return eval(compile(ast.Expression(node.value), "fastdnn/__init__.py", "eval"), {"dict": dict})
    raise AssertionError("fastdnn/__init__.py has no table of lazily loaded names")


LAZY = lazy_names()

# Cycles that must stay, each with its reason: none.
ALLOWED_CYCLES = {}


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources():
    return {module_name(path): path for path in sorted([*PACKAGE.glob("*.py"), *(PACKAGE / "cli").glob("*.py")])}


def imported(node, module, is_package):
    """The fastdnn modules one import statement loads (a submodule's parent packages too: importing
    fastdnn.cli.common runs fastdnn/cli/__init__.py first)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
        else:
            base = node.module
        names = [base]
        for alias in node.names:
            # from fastdnn import estimator (a submodule) or DNNClassifier (fastdnn's lazy table names its module)
            if base == "fastdnn" and alias.name in LAZY:
                names.append(LAZY[alias.name])
            else:
                names.append(f"{base}.{alias.name}")
    out = set()
    for name in names:
        parts = name.split(".")
        for k in range(1, len(parts) + 1):
            out.add(".".join(parts[:k]))
    return out


def import_graph():
    modules = sources()
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets |= imported(node, name, is_package)
        # A module's own parent packages are loaded before it, never by it.
        parents = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
        graph[name] = sorted(t for t in targets if t in modules and t != name and t not in parents)
    return graph


def cycles(graph):
    """Each strongly connected component of more than one module, as a sorted tuple (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                found.append(tuple(sorted(component)))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_fastdnns_modules_import_one_another_without_a_cycle():
    graph = import_graph()
    assert "fastdnn.estimator" in graph and "fastdnn.cli.train" in graph  # the walk found the modules
    found = [c for c in cycles(graph) if c not in ALLOWED_CYCLES]
    shown = [" <-> ".join(c) for c in found]
    assert not found, shown


def test_the_cycle_check_sees_a_cycle_through_a_function_local_import_and_a_parent_package():
    """The check itself can fail: a local import inside a function counts, and importing a.b.c loads a.b."""
    local = ast.parse("def f():\n    from fastdnn.io import load_model\n")
    (node,) = [n for n in ast.walk(local) if isinstance(n, ast.ImportFrom)]
    assert "fastdnn.io" in imported(node, "fastdnn.estimator", False)
    graph = {"fastdnn.estimator": ["fastdnn.io"], "fastdnn.io": ["fastdnn.estimator"], "fastdnn.x": []}
    assert cycles(graph) == [("fastdnn.estimator", "fastdnn.io")]
    (node,) = ast.parse("import fastdnn.cli.common").body
    assert {"fastdnn.cli", "fastdnn.cli.common"} <= imported(node, "fastdnn.sweeps", False)
    (node,) = ast.parse("from fastdnn import DNNClassifier").body
    assert "fastdnn.estimator" in imported(node, "fastdnn.io", False)
