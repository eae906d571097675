"""Every third-party package the code imports is declared in pyproject.toml, where it belongs.

Runtime code (`api/`, `notifications/`, `console/`, `wsgi.py`, `gunicorn.conf.py`) may
import only `[project.dependencies]`: a package that arrives only as another's dependency,
or only with `.[dev]`, breaks a plain `pip install .` the day that other package drops it.
Tests, docs and migrations may also import the `dev` extra; the benchmarks the `bench` one.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ("api", "notifications", "console", "wsgi.py", "gunicorn.conf.py")
TEST_CODE = ("tests", "docs", "migrations")
BENCH_CODE = ("bench",)


def _python_files(places: Iterable[str]) -> Iterator[Path]:
    for place in places:
        path = ROOT / place
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _first_party(path: Path) -> set[str]:
    """Names importable from the checkout itself or from the importing file's folder."""
    entries = [*ROOT.iterdir(), *path.parent.iterdir()]
    return {entry.stem for entry in entries if entry.stem.isidentifier()}


def imported_top_levels(places: Iterable[str]) -> dict[str, set[str]]:
    """Third-party top-level module names imported by the files, and where each is."""
    found: dict[str, set[str]] = {}
    for path in _python_files(places):
        local = _first_party(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.partition(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def canonical(name: str) -> str:
    """PEP 503 normalisation: `Flask_SQLAlchemy` and `flask-sqlalchemy` are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: Iterable[str]) -> set[str]:
    return {canonical(re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0]) for r in requirements}


def undeclared(places: Iterable[str], declared: set[str]) -> dict[str, list[str]]:
    """Imported modules whose distribution is not declared, with the files importing them.

    A module no installed distribution provides (an extra not installed here) is taken to
    come from the distribution of its own name (`aiohttp`).
    """
    distributions = importlib.metadata.packages_distributions()
    missing: dict[str, list[str]] = {}
    for module, files in imported_top_levels(places).items():
        owners = {canonical(d) for d in distributions.get(module, [module])}
        if not owners & declared:
            missing[f"{module} (from {', '.join(sorted(owners))})"] = sorted(files)
    return missing


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_runtime_code_imports_only_declared_runtime_dependencies():
    declared = requirement_names(_project()["dependencies"])
    assert undeclared(RUNTIME, declared) == {}


def test_tests_import_only_runtime_and_dev_dependencies():
    project = _project()
    declared = requirement_names(
        [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    )
    assert undeclared(TEST_CODE, declared) == {}


def test_benchmarks_import_only_declared_dependencies():
    project = _project()
    extras = project["optional-dependencies"]
    declared = requirement_names([*project["dependencies"], *extras["dev"], *extras["bench"]])
    assert undeclared(BENCH_CODE, declared) == {}


def test_the_check_sees_an_undeclared_import():
    """The check itself can fail: `requests` is imported by runtime code."""
    declared = requirement_names(_project()["dependencies"]) - {"requests"}
    assert undeclared(RUNTIME, declared) == {
        "requests (from requests)": ["notifications/fcm_endpoint.py"]
    }
    assert requirement_names(["psycopg[binary]>=3.2,<4", "Flask_SQLAlchemy>=3"]) == {
        "psycopg",
        "flask-sqlalchemy",
    }
