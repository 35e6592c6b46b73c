"""The import DAG of the package, read from the source with ``ast``.

``ALLOWED`` is the table of which module may import which (style.md,
"Dependency direction"). The actual edges are computed from every import
statement of every module (function-level imports included) and must be a
subset of the table; the graph must be acyclic; nothing imports
``__init__``; and only the standard library is imported from outside.
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

# Layer-2 format modules: encoders, parsers and the checks built on them.
_FORMAT_DEPS = {"model", "errors", "expfmt", "prometheus_names"}
ANYTHING = None  # entry points: may import any module of the package except __init__

ALLOWED = {
    # layer 0
    "errors": set(),
    # layer 1
    "prometheus_names": {"errors"},
    "model": {"errors"},
    "values": {"errors"},
    "config": {"errors"},
    "health": {"errors"},
    # layer 2: the format modules, each building on the one before
    "expfmt": {"model"},
    "omfmt": _FORMAT_DEPS,
    # the parser's parts: line lexers on shared tokens, grouping, per-family shape rules
    "lexer": _FORMAT_DEPS,
    "text_lexer": _FORMAT_DEPS | {"lexer"},
    "om_lexer": _FORMAT_DEPS | {"lexer"},
    "grouping": _FORMAT_DEPS,
    "shape": _FORMAT_DEPS | {"omfmt", "lexer", "grouping"},
    "parser": _FORMAT_DEPS | {"omfmt", "lexer", "text_lexer", "om_lexer", "grouping", "shape"},
    "checker": _FORMAT_DEPS | {"omfmt", "parser"},
    "metrics": {"values", "prometheus_names", "model", "errors", "expfmt"},
    # layer 3
    "vec": {"metrics", "model", "values", "errors"},
    # layer 4
    "registry": {"expfmt", "model", "errors", "metrics", "omfmt", "parser"},
    # layer 5
    "hierarchy": {"registry", "vec", "metrics", "prometheus_names", "errors"},
    "runtime": {"hierarchy", "config", "health", "system", "prometheus_names", "errors"},
    # apart: the HTTP server knows nothing of metrics
    "negotiation": {"expfmt"},
    "httpwire": set(),
    "handlerpool": set(),
    "httploop": {"httpwire", "handlerpool"},
    "server": {"errors", "negotiation", "httpwire", "httploop"},
    "system": {"server", "config", "health", "errors"},
    # top: user-facing entry points
    "testing": ANYTHING,
    "demo": ANYTHING,
    "__main__": ANYTHING,
    "__init__": ANYTHING,
}

# Third-party imports allowed per module (the package itself is stdlib-only).
THIRD_PARTY = {"testing": {"hypothesis"}}


def package_modules():
    return sorted(p.stem for p in PACKAGE_DIR.glob("*.py"))


def _resolve(module, node):
    """``[(target module, lineno)]`` inside the package, and ``[top-level name]`` outside."""
    inside, outside = [], []
    if isinstance(node, ast.Import):
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] == PACKAGE:
                inside.append(parts[1] if len(parts) > 1 else "__init__")
            else:
                outside.append(parts[0])
    elif isinstance(node, ast.ImportFrom):
        if node.level > 1:
            raise AssertionError(f"{module}.py:{node.lineno}: imports from above the package")
        if node.level == 1:
            parts = node.module.split(".") if node.module else []
        elif node.module.split(".")[0] == PACKAGE:
            parts = node.module.split(".")[1:]
        else:
            outside.append(node.module.split(".")[0])
            return inside, outside
        if parts:
            inside.append(parts[0])
        else:
            # ``from . import x``: a module when x.py exists, else a name of __init__.
            for alias in node.names:
                is_module = (PACKAGE_DIR / f"{alias.name}.py").exists() or alias.name in ALLOWED
                inside.append(alias.name if is_module else "__init__")
    return inside, outside


@functools.lru_cache(maxsize=None)
def imports_of(module):
    """``(package modules imported, top-level external modules imported)``."""
    source = (PACKAGE_DIR / f"{module}.py").read_text(encoding="utf-8")
    inside, outside = set(), set()
    for node in ast.walk(ast.parse(source, filename=f"{module}.py")):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            i, o = _resolve(module, node)
            inside.update(i)
            outside.update(o)
    inside.discard(module)
    return frozenset(inside), frozenset(outside)


def actual_edges():
    return {m: imports_of(m)[0] for m in package_modules()}


def find_cycle(graph):
    """A list of modules forming a cycle, or None."""
    state = {}

    def visit(node, path):
        state[node] = "active"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "active":
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
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


def test_every_module_is_in_the_table():
    missing = [m for m in package_modules() if m not in ALLOWED]
    assert not missing, f"add these modules to ALLOWED in test_layering.py: {missing}"


@pytest.mark.parametrize("module", package_modules())
def test_module_imports_only_what_its_layer_allows(module):
    imported = actual_edges()[module]
    unknown = imported - set(package_modules()) - set(ALLOWED)
    assert not unknown, f"{module} imports modules that do not exist: {sorted(unknown)}"
    allowed = ALLOWED.get(module, set())
    if allowed is ANYTHING:
        return
    extra = imported - allowed
    assert not extra, f"{module} may not import {sorted(extra)} (allowed: {sorted(allowed)})"


@pytest.mark.parametrize("module", package_modules())
def test_nothing_imports_the_package_init(module):
    assert "__init__" not in actual_edges()[module], (
        f"{module} imports from the package's __init__; import the defining module instead")


def test_import_graph_is_acyclic():
    assert find_cycle(actual_edges()) is None, find_cycle(actual_edges())


def test_allowed_table_is_acyclic():
    table = {m: deps for m, deps in ALLOWED.items() if deps is not ANYTHING}
    assert find_cycle(table) is None


def test_errors_imports_nothing_from_the_package():
    assert actual_edges()["errors"] == set()


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
    return (origin is not None and stdlib in origin.parents
            and "site-packages" not in origin.parts)


@pytest.mark.parametrize("module", package_modules())
def test_module_imports_only_the_standard_library(module):
    external = imports_of(module)[1]
    allowed = {name for name in external if _is_stdlib(name)} | THIRD_PARTY.get(module, set())
    assert external <= allowed, f"{module} imports non-stdlib {sorted(external - allowed)}"


def test_init_imports_every_public_module():
    edges = actual_edges()["__init__"]
    for module in ("errors", "metrics", "vec", "registry", "hierarchy", "runtime",
                   "prometheus_names", "model"):
        assert module in edges


# -- the checker itself ------------------------------------------------------------------

RESOLVE_ROWS = [
    # (source, package modules, external modules)
    ("from . import prometheus_names", {"prometheus_names"}, set()),
    ("from . import prometheus_names as names", {"prometheus_names"}, set()),
    ("from . import Counter", {"__init__"}, set()),
    ("from .errors import MetricsError", {"errors"}, set()),
    ("from dyn_metrics.vec import CounterVec", {"vec"}, set()),
    ("import dyn_metrics", {"__init__"}, set()),
    ("import dyn_metrics.model", {"model"}, set()),
    ("from dyn_metrics import Registry", {"__init__"}, set()),
    ("import os.path, json", set(), {"os", "json"}),
    ("from collections import abc", set(), {"collections"}),
    ("def f():\n    from .model import Family", {"model"}, set()),
]


@pytest.mark.parametrize("source, inside, outside", RESOLVE_ROWS)
def test_import_resolution(source, inside, outside):
    got_in, got_out = set(), set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            i, o = _resolve("probe", node)
            got_in.update(i)
            got_out.update(o)
    assert (got_in, got_out) == (inside, outside)


def test_cycle_finder():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert set(find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}})) == {"a", "b", "c"}
