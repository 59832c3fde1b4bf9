"""The gateway package's public surface is curated; its fakes live in stockade.testing."""

from __future__ import annotations

from stockade import gateway, testing
from stockade.models import Approver, AuditSink, Clock

EXPECTED = {
    "ApprovalStep",
    "ArgumentValidation",
    "AuditStep",
    "Authenticate",
    "Backoff",
    "CallContext",
    "ConfigError",
    "ContextKey",
    "DecisionContext",
    "DownstreamError",
    "DownstreamProcess",
    "DownstreamSession",
    "EngineDecider",
    "Finding",
    "FlowRule",
    "Gateway",
    "GatewayConfig",
    "HttpTransport",
    "ImportResult",
    "Interceptor",
    "Launcher",
    "LineReader",
    "ListApprover",
    "ListingDecider",
    "LoadedPolicy",
    "Namespace",
    "NamespaceError",
    "RawUriError",
    "ResourceOffer",
    "Next",
    "OutputHandling",
    "Oversized",
    "Pending",
    "Pin",
    "PinCheck",
    "PinError",
    "PinSet",
    "PinStore",
    "PolicyDecider",
    "PolicyStep",
    "ProtocolError",
    "RateLimit",
    "Reconciled",
    "ResourceOutput",
    "RuleDecider",
    "SEPARATOR",
    "SUPPORTED_VERSIONS",
    "SandboxLauncher",
    "ServerSandbox",
    "ServerSpec",
    "SinkRule",
    "SubprocessLauncher",
    "TRUST_META_KEY",
    "TaintTracker",
    "TerminalApprover",
    "ToolResult",
    "ToolRule",
    "TrustedContext",
    "approve",
    "canonical_json",
    "check_bind",
    "compose",
    "definition_hash",
    "deny_result",
    "import_mcp_servers",
    "load_any",
    "load_gateway_config",
    "load_policy_for_gateway",
    "package_identity",
    "package_tree_hash",
    "parse_message",
    "qualify",
    "reconcile",
    "redact",
    "sandbox_spec_for",
    "scan_tool",
    "serve_http",
    "serve_stdio",
    "serve_streams",
    "sink_rules",
    "split",
    "tag_result",
    "route_raw",
    "template_matches",
    "unwrap_uri",
    "wrap_uri",
}


def test_the_public_surface_is_exactly_the_curated_list() -> None:
    assert set(gateway.__all__) == EXPECTED
    assert len(gateway.__all__) == len(EXPECTED)
    for name in EXPECTED:
        assert getattr(gateway, name) is not None


def test_the_fakes_satisfy_the_shared_protocols() -> None:
    assert isinstance(testing.MemoryAuditSink(), AuditSink)
    assert isinstance(testing.ScriptedApprover(allow=False), Approver)
    assert isinstance(testing.FakeClock(), Clock)
    assert isinstance(gateway.ListApprover(), Approver)
    assert isinstance(gateway.TerminalApprover(), Approver)
