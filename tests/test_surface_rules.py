"""The surface checker used by the packages' ``test_api`` tests catches each way one breaks."""

from __future__ import annotations

import json
import types

from _surface import surface_problems


def _package(doc: str = "") -> types.ModuleType:
    pkg = types.ModuleType("stockade.fakepart", doc)

    def documented() -> None:
        """Has a docstring."""

    def bare() -> None:
        pass

    documented.__module__ = bare.__module__ = "stockade.fakepart._impl"
    pkg.documented = documented  # type: ignore[attr-defined]
    pkg.bare = bare  # type: ignore[attr-defined]
    return pkg


def test_a_clean_surface_has_no_problems() -> None:
    pkg = _package(doc="Also exports bare.")
    pkg.__all__ = ["bare", "documented"]  # type: ignore[attr-defined]
    assert surface_problems(pkg, "nonexistent.md") == []


def test_private_missing_duplicated_module_foreign_undocumented_and_unlisted_names_are_caught() -> (
    None
):
    pkg = _package()
    pkg._hidden = 1  # type: ignore[attr-defined]
    pkg.sub = types.ModuleType("stockade.fakepart.sub")  # type: ignore[attr-defined]
    pkg.dumps = json.dumps  # type: ignore[attr-defined]
    pkg.stray = 3  # type: ignore[attr-defined]
    pkg.__all__ = ["_hidden", "ghost", "sub", "dumps", "bare", "bare"]  # type: ignore[attr-defined]
    problems = "\n".join(surface_problems(pkg, "nonexistent.md"))
    assert "twice" in problems
    assert "_hidden: a private name is exported" in problems
    assert "ghost: listed but does not resolve" in problems
    assert "sub: a module is exported" in problems
    assert "dumps: re-exported from json" in problems
    assert "bare: no docstring" in problems
    assert "documented: public on the package but not in __all__" in problems
    assert "stray: public on the package but not in __all__" in problems
