"""The import DAG of the package, read from the source with ``ast``.

The unit of layering is a top-level module or subpackage of ``dyn_metrics``
(``metrics``, ``exposition``, ``server``, ...). ``ALLOWED`` says which units
each unit may import; imports inside one unit are free. The actual edges are
computed from every import statement of every module (function-level imports
included) and must be a subset of the table; the module graph must be
acyclic; no module imports the package's ``__init__``; and only the standard
library is imported from outside.
"""

import ast
import functools
import importlib.util
import pathlib
import sys
import sysconfig

import pytest

PACKAGE = "dyn_metrics"
PACKAGE_DIR = pathlib.Path(__file__).resolve().parent.parent / PACKAGE
ANYTHING = None  # entry points: may import any unit of the package except __init__

# Imports flow one way: errors -> model / names -> exposition -> metrics ->
# registry -> dynamo; the HTTP stack stands apart and knows nothing of metrics.
ALLOWED = {
    "errors": set(),
    "model": {"errors"},
    "prometheus_names": {"errors", "model"},
    # encoders, negotiation, parser and checker: the plain model in, bytes out
    "exposition": {"errors", "model", "prometheus_names"},
    # live metrics write their own text on the fast path, hence exposition
    "metrics": {"errors", "model", "prometheus_names", "exposition"},
    "registry": {"errors", "model", "metrics", "exposition"},
    # the default collectors: plain Family records from /proc, gc and platform
    "collectors": {"errors", "model", "prometheus_names"},
    # multiprocess files (ours and prometheus_client's) read into Family records
    "multiprocess": {"errors", "model", "prometheus_names", "exposition", "metrics"},
    # pushing and exporting: sources resolved and rendered by the registry layer
    "export": {"errors", "model", "prometheus_names", "exposition", "metrics", "registry"},
    # the HTTP stack: a render callable in, responses out
    "server": {"errors", "exposition"},
    # Dynamo's hierarchy, runtime, configuration, health and the server glue
    "dynamo": {
        "errors",
        "model",
        "prometheus_names",
        "metrics",
        "registry",
        "exposition",
        "server",
        "collectors",
        "multiprocess",
        "export",
    },
    # user-facing entry points
    "testing": ANYTHING,
    "demo": ANYTHING,
    "__main__": ANYTHING,
}

# Third-party imports allowed per unit (the package itself is stdlib-only).
THIRD_PARTY = {"testing": {"hypothesis"}}


def _dotted(path):
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules():
    """Every module of the package as a dotted name (packages by their ``__init__``)."""
    return sorted(_dotted(p) for p in PACKAGE_DIR.rglob("*.py"))


def _is_package(dotted):
    return (PACKAGE_DIR.parent / dotted.replace(".", "/") / "__init__.py").exists()


def _exists(dotted):
    return _is_package(dotted) or (PACKAGE_DIR.parent / (dotted.replace(".", "/") + ".py")).exists()


def unit_of(dotted):
    """The layering unit of a dotted module name (``dyn_metrics`` itself is ``__init__``)."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _resolve(module, node):
    """``[dotted package modules]`` and ``[top-level external names]`` one import names."""
    inside, outside = [], []
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == PACKAGE:
                inside.append(alias.name)
            else:
                outside.append(alias.name.split(".")[0])
        return inside, outside
    if node.level == 0:
        if node.module.split(".")[0] != PACKAGE:
            return inside, [node.module.split(".")[0]]
        base = node.module
    else:
        package = module if _is_package(module) else module.rpartition(".")[0]
        parts = package.split(".")
        if node.level - 1 >= len(parts):
            raise AssertionError(f"{module}:{node.lineno}: imports from above the package")
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    for alias in node.names:
        # ``from pkg import name``: the module pkg.name when it exists, else pkg itself.
        candidate = f"{base}.{alias.name}"
        inside.append(candidate if _exists(candidate) else base)
    return inside, outside


def _source(dotted):
    if _is_package(dotted):
        return PACKAGE_DIR.parent / dotted.replace(".", "/") / "__init__.py"
    return PACKAGE_DIR.parent / (dotted.replace(".", "/") + ".py")


@functools.cache
def imports_of(module):
    """``(package modules imported, top-level external modules imported)``."""
    path = _source(module)
    inside, outside = set(), set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            i, o = _resolve(module, node)
            inside.update(i)
            outside.update(o)
    inside.discard(module)
    return frozenset(inside), frozenset(outside)


def actual_edges():
    return {m: imports_of(m)[0] for m in package_modules()}


def find_cycle(graph):
    """A list of nodes forming a cycle, or None."""
    state = {}

    def visit(node, path):
        state[node] = "active"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "active":
                return path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_every_unit_is_in_the_table():
    units = {unit_of(m) for m in package_modules()} - {"__init__"}
    missing = sorted(units - set(ALLOWED))
    assert not missing, f"add these units to ALLOWED in test_layering.py: {missing}"


@pytest.mark.parametrize("module", package_modules())
def test_module_imports_only_what_its_layer_allows(module):
    imported = actual_edges()[module]
    unknown = sorted(m for m in imported if not _exists(m))
    assert not unknown, f"{module} imports modules that do not exist: {unknown}"
    unit = unit_of(module)
    if unit == "__init__" or ALLOWED[unit] is ANYTHING:
        return
    others = {unit_of(m) for m in imported} - {unit}
    extra = others - ALLOWED[unit]
    assert not extra, f"{module} may not import {sorted(extra)} (allowed: {sorted(ALLOWED[unit])})"


@pytest.mark.parametrize("module", [m for m in package_modules() if m != PACKAGE])
def test_nothing_imports_the_package_init(module):
    assert PACKAGE not in actual_edges()[module], (
        f"{module} imports from the package's __init__; import the defining module instead"
    )


def test_import_graph_is_acyclic():
    graph = {m: set(deps) for m, deps in actual_edges().items()}
    # A subpackage's __init__ re-exports its modules: an edge into the package
    # is an edge into what it re-exports, which the graph already holds.
    assert find_cycle(graph) is None, find_cycle(graph)


def test_allowed_table_is_acyclic():
    table = {u: deps for u, deps in ALLOWED.items() if deps is not ANYTHING}
    assert find_cycle(table) is None


def test_errors_imports_nothing_from_the_package():
    assert actual_edges()[f"{PACKAGE}.errors"] == set()


def test_no_module_is_over_450_lines():
    # The constants of prometheus_names.rs are a table, not logic.
    long = {
        m: n
        for m in package_modules()
        if (n := len(_source(m).read_text(encoding="utf-8").splitlines())) > 450
        and not m.startswith(f"{PACKAGE}.prometheus_names")
    }
    assert not long, long


def test_at_most_16_modules_directly_in_the_package():
    top = [p for p in PACKAGE_DIR.glob("*.py")]
    assert len(top) <= 16, sorted(p.name for p in top)


def _is_stdlib(name):
    """True for a standard-library module (``sys.stdlib_module_names`` is 3.10+)."""
    names = getattr(sys, "stdlib_module_names", None)
    if names is not None:
        return name in names
    if name in sys.builtin_module_names:
        return True
    spec = importlib.util.find_spec(name)
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"]).resolve()
    origin = pathlib.Path(spec.origin).resolve() if spec and spec.origin else None
    return origin is not None and stdlib in origin.parents and "site-packages" not in origin.parts


@pytest.mark.parametrize("module", package_modules())
def test_module_imports_only_the_standard_library(module):
    external = imports_of(module)[1]
    allowed = {n for n in external if _is_stdlib(n)} | THIRD_PARTY.get(unit_of(module), set())
    assert external <= allowed, f"{module} imports non-stdlib {sorted(external - allowed)}"


def test_init_imports_every_public_unit():
    units = {unit_of(m) for m in actual_edges()[PACKAGE]}
    for unit in ("errors", "metrics", "registry", "dynamo", "prometheus_names", "model"):
        assert unit in units


def test_package_ships_py_typed():
    assert (PACKAGE_DIR / "py.typed").is_file()


# -- the checker itself ------------------------------------------------------------------

RESOLVE_ROWS = [
    # (importing module, source, package modules, external modules)
    (
        "dyn_metrics.demo",
        "from . import prometheus_names",
        {"dyn_metrics.prometheus_names"},
        set(),
    ),
    ("dyn_metrics.demo", "from . import Counter", {"dyn_metrics"}, set()),
    ("dyn_metrics.demo", "from .errors import MetricsError", {"dyn_metrics.errors"}, set()),
    (
        "dyn_metrics.metrics.vec",
        "from ..exposition import text",
        {"dyn_metrics.exposition.text"},
        set(),
    ),
    ("dyn_metrics.metrics.vec", "from .family import Desc", {"dyn_metrics.metrics.family"}, set()),
    ("dyn_metrics.metrics", "from .vec import CounterVec", {"dyn_metrics.metrics.vec"}, set()),
    # a package's __init__ imports relative to itself
    (
        "dyn_metrics.registry",
        "from .merge import join_texts",
        {"dyn_metrics.registry.merge"},
        set(),
    ),
    ("dyn_metrics.registry", "from ..model import Family", {"dyn_metrics.model"}, set()),
    ("dyn_metrics.demo", "import dyn_metrics", {"dyn_metrics"}, set()),
    ("dyn_metrics.demo", "import dyn_metrics.model", {"dyn_metrics.model"}, set()),
    ("dyn_metrics.demo", "import os.path, json", set(), {"os", "json"}),
    ("dyn_metrics.demo", "from collections import abc", set(), {"collections"}),
    (
        "dyn_metrics.demo",
        "def f():\n    from .model import Family",
        {"dyn_metrics.model"},
        set(),
    ),
]


@pytest.mark.parametrize("module, source, inside, outside", RESOLVE_ROWS)
def test_import_resolution(module, source, inside, outside):
    got_in, got_out = set(), set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            i, o = _resolve(module, node)
            got_in.update(i)
            got_out.update(o)
    assert (got_in, got_out) == (inside, outside)


def test_cycle_finder():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert set(find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}})) == {"a", "b", "c"}
