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
