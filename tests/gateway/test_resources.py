"""Resources pass-through: namespaced uris, policy-gated reads, untrusted contents."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_gateway import ALLOW, run_gateway

from stockade.gateway import ContextKey, Gateway, NamespaceError, ServerSpec, unwrap_uri, wrap_uri
from stockade.testing import MemoryAuditSink
from stockade.textsafe import find_hidden

CRED = "host-credential-0123456789"


def test_uris_round_trip_and_foreign_uris_are_refused() -> None:
    uri = "file:///a b/c?d=e#f"
    assert unwrap_uri(wrap_uri("docs", uri)) == ("docs", uri)
    for bad in ["file:///etc/passwd", "stockade+resource://", "stockade+resource://docs"]:
        with pytest.raises(NamespaceError):
            unwrap_uri(bad)


async def rpc(gw: Gateway, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        msg["params"] = params
    resp = await gw.handle(msg, client="agent")
    assert resp is not None
    return resp


@pytest.mark.guarantee("gw-results-untrusted")
def test_allowed_reads_return_sanitised_untrusted_contents_and_taint(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(gw: Gateway, sink: MemoryAuditSink) -> None:
        key = ContextKey(client="agent", conversation="c1")
        gw.taint.register(key, "what is on my calendar?", CRED)
        listing = (await rpc(gw, "resources/list"))["result"]["resources"]
        assert [r["uri"] for r in listing] == [wrap_uri("evil", "file:///notes.txt")]
        assert find_hidden(listing[0]["description"]) == []
        params = {"uri": listing[0]["uri"], "_meta": {"stockade/conversation": "c1"}}
        read = (await rpc(gw, "resources/read", params))["result"]
        text = read["contents"][0]["text"]
        assert "\x1b" not in text
        assert text.count("</untrusted-tool-output>") == 1
        assert read["_meta"]["stockade/trust"] == "untrusted"
        assert gw.taint.is_tainted(key)
        audited = sink.of_type("gateway.call")[-1].data
        assert audited["tool"] == "evil:resources/read"
        assert audited["outcome"] == "ok"

    run_gateway(tmp_path, [evil_spec(tofu=True)], body, allow={*ALLOW, "evil__resources/read"})


@pytest.mark.guarantee("gw-denial-is-tool-error")
def test_reads_the_policy_does_not_allow_are_refused_and_not_listed(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(gw: Gateway, sink: MemoryAuditSink) -> None:
        assert (await rpc(gw, "resources/list"))["result"]["resources"] == []
        denied = await rpc(gw, "resources/read", {"uri": wrap_uri("evil", "file:///notes.txt")})
        assert "denied" in denied["error"]["message"]
        bad = await rpc(gw, "resources/read", {"uri": "file:///etc/passwd"})
        assert bad["error"]["code"] == -32602
        unknown = await rpc(gw, "resources/read", {"uri": wrap_uri("nope", "x")})
        assert unknown["error"]["code"] == -32602

    run_gateway(tmp_path, [evil_spec(tofu=True)], body, allow=ALLOW)
