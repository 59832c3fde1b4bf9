"""npm packages the tests run (server-everything, server-filesystem, Node 22, the conformance suite,
the Inspector), installed once per machine into cache dirs under /tmp by stockade's own installer
(:func:`stockade.cli._demo_gateway.npm_install`, the one the demo uses), server-everything at the
demo's pinned release.

Imported as ``_npm`` (``tests/`` is on ``sys.path``); ``tests/gateway/conftest.py`` re-exports
``NPM_DIR`` and ``npm_install`` for the gateway tests that import them from ``conftest``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stockade.cli._demo_gateway import EVERYTHING_ENTRY, EVERYTHING_PACKAGE
from stockade.cli._demo_gateway import npm_install as _install
from stockade.errors import SandboxError

__all__ = ["EVERYTHING_PACKAGE", "NPM_DIR", "cached", "everything_entry", "npm_install"]

NPM_DIR = Path("/tmp/stockade-test-npm")


def cached(prefix: Path, package: str, entry: str | Path) -> Path:
    """``prefix/node_modules/entry`` (``entry`` relative to node_modules when a str), installing
    ``package`` first when missing; skips loudly without npm, fails when npm fails."""
    path = Path(entry) if isinstance(entry, Path) else Path("node_modules") / entry
    if not (prefix / path).is_file() and shutil.which("npm") is None:
        pytest.skip("NODE MISSING: npm not installed; run scripts/bootstrap")
    try:
        return _install(prefix, package, path)
    except SandboxError as e:
        pytest.fail(f"{e.what} ({e.fix})")


def npm_install(prefix: Path, package: str) -> None:
    """Install one npm package into a cache dir (a registry client doing its ordinary job)."""
    name = package.rpartition("@")[0] if package.rfind("@") > 0 else package
    cached(prefix, package, f"{name}/package.json")


def everything_entry() -> Path:
    """server-everything's entry point at the pinned release, in the shared cache."""
    if shutil.which("node") is None:
        pytest.skip("NODE MISSING: node not installed; run scripts/bootstrap")
    return cached(NPM_DIR, EVERYTHING_PACKAGE, EVERYTHING_ENTRY)
