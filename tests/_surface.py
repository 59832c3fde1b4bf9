"""What a curated package surface must satisfy, checked without re-listing its names.

A part's package ``__init__`` re-exports from private ``_x.py`` modules under ``__all__``. The list
itself is the code's business; what a test can hold it to:

- ``__all__`` is a list of distinct public strings (no ``_name`` leaks out);
- every name resolves, and none is a module;
- every class and function exported was defined inside the package (nothing re-exported from
  another part or a third-party library);
- nothing public is reachable on the package that ``__all__`` does not list;
- every class and function is documented: its own docstring, or named in the package docstring
  or in the part's page under ``docs/``.
"""

from __future__ import annotations

import inspect
import re
import types
from pathlib import Path

__all__ = ["surface_problems"]

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _own_doc(obj: object) -> bool:
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    return isinstance(doc, str) and bool(doc.strip())


def surface_problems(package: types.ModuleType, doc_page: str) -> list[str]:
    """Every way ``package``'s ``__all__`` breaks the rules above (empty when it keeps them)."""
    problems: list[str] = []
    names = getattr(package, "__all__", None)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return [f"{package.__name__}.__all__ is not a list of strings"]
    if len(set(names)) != len(names):
        problems.append("__all__ lists a name twice")
    page = DOCS / doc_page
    documented = (package.__doc__ or "") + (page.read_text() if page.is_file() else "")
    for name in names:
        if name.startswith("_"):
            problems.append(f"{name}: a private name is exported")
        if not hasattr(package, name):
            problems.append(f"{name}: listed but does not resolve")
            continue
        obj = getattr(package, name)
        if isinstance(obj, types.ModuleType):
            problems.append(f"{name}: a module is exported")
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not str(getattr(obj, "__module__", "")).startswith(f"{package.__name__}."):
            problems.append(f"{name}: re-exported from {obj.__module__}, not defined here")
        if not _own_doc(obj) and not re.search(rf"\b{re.escape(name)}\b", documented):
            problems.append(f"{name}: no docstring, and not named in the package doc or {page}")
    listed = set(names)
    for name, obj in vars(package).items():
        if name.startswith("_") or isinstance(obj, types.ModuleType) or name in listed:
            continue
        if name == "annotations":  # ``from __future__ import annotations``
            continue
        problems.append(f"{name}: public on the package but not in __all__")
    return problems
