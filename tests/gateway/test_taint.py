"""Taint state keyed on authenticated client + registered conversation."""

from __future__ import annotations

import pytest

from stockade.gateway import ConfigError, ContextKey, TaintTracker

CRED = "host-credential-0123456789"
KEY = ContextKey(client="alice", conversation="c1")


@pytest.mark.guarantee("gw-taint-unregistered")
def test_an_unregistered_context_is_tainted() -> None:
    assert TaintTracker(CRED).is_tainted(KEY)
    assert TaintTracker(None).is_tainted(KEY)


@pytest.mark.guarantee("gw-taint-unregistered")
def test_registration_needs_the_host_credential() -> None:
    t = TaintTracker(CRED)
    assert not t.register(KEY, "send to bob@example.com", "wrong-credential-0000000")
    assert t.is_tainted(KEY)
    assert not TaintTracker(None).register(KEY, "x", "")
    assert t.register(KEY, "send to bob@example.com", CRED)
    assert not t.is_tainted(KEY)


@pytest.mark.guarantee("gw-taint-unregistered")
def test_a_tool_result_taints_and_reregistering_elsewhere_does_not_wash_it() -> None:
    t = TaintTracker(CRED)
    t.register(KEY, "do it", CRED)
    t.mark_tainted(KEY, "web__fetch")
    assert t.is_tainted(KEY)
    assert "web__fetch" in t.describe(KEY)
    other_client = ContextKey(client="mallory", conversation="c1")
    assert t.is_tainted(other_client)


def test_taint_is_per_client_and_conversation() -> None:
    t = TaintTracker(CRED)
    t.register(KEY, "x", CRED)
    t.register(ContextKey(client="alice", conversation="c2"), "y", CRED)
    t.mark_tainted(KEY, "s__t")
    assert not t.is_tainted(ContextKey(client="alice", conversation="c2"))


def test_short_host_credentials_are_refused() -> None:
    with pytest.raises(ConfigError):
        TaintTracker("short")


def test_an_empty_conversation_cannot_be_registered() -> None:
    assert not TaintTracker(CRED).register(ContextKey(client="a", conversation=""), "x", CRED)
