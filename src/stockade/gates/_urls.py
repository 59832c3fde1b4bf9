"""URL rule shared by outbound hooks: https anywhere, plain http only to a loopback host."""

from __future__ import annotations

import httpx

__all__ = ["LOOPBACK_HOSTS", "https_or_loopback"]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def https_or_loopback(url: str) -> bool:
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return False
    if u.userinfo:
        return False
    if u.scheme == "https":
        return bool(u.host)
    return u.scheme == "http" and u.host in LOOPBACK_HOSTS
