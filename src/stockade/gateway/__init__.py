"""The MCP gateway: pinning, scanning, trust tagging, taint, the interceptor chain, transports.

The main pieces, by role (docs/gateway.md tells the whole story):

- configuration: :class:`GatewayConfig` (the validated ``gateway:`` section: servers, limits,
  pins directory), :class:`LoadedPolicy` (a policy file read for the gateway: the policy, its
  gateway config and its sink rules), :func:`import_mcp_servers` (an ``mcpServers`` client
  configuration turned into a policy document, an :class:`ImportResult` with the secrets and
  notes it produced);
- the gateway itself: :class:`Gateway` (sessions, listing, dispatch over downstream servers), each
  downstream reached through a :class:`DownstreamSession` started by a :class:`Launcher` (the
  protocol every launcher implements: ``launch(server) -> DownstreamProcess``);
- transports: ``serve_stdio``/``serve_streams``, and :class:`HttpTransport` served by
  :func:`serve_http` (Streamable HTTP);
- the interceptor chain: :class:`Interceptor` (the protocol of a stage:
  ``await stage(ctx, nxt) -> ToolResult``); a :class:`PolicyDecider` (the protocol of a decision
  function, ``(call, context) -> Decision``) such as :class:`RuleDecider` (per-tool rules of the
  config); :func:`sink_rules` (the config's sensitive sinks, keyed by server and tool);
- taint: :class:`ContextKey` (one client's conversation, the unit that untrusted output taints);
- resources: :func:`wrap_uri`/:func:`unwrap_uri` (a server's resource uri in and out of the
  gateway's ``stockade+resource://`` namespace).
"""

from ._approvers import ListApprover, TerminalApprover
from ._backoff import Backoff
from ._canon import canonical_json, definition_hash
from ._chain import CallContext, Interceptor, Next, ToolResult, compose, deny_result
from ._config import (
    GatewayConfig,
    ServerSandbox,
    ServerSpec,
    ToolRule,
    load_gateway_config,
    package_identity,
)
from ._decider import RuleDecider, sink_rules
from ._downstream import DownstreamSession
from ._errors import ConfigError, DownstreamError, NamespaceError, PinError, ProtocolError
from ._fromdoc import EngineDecider, LoadedPolicy, load_any, load_policy_for_gateway
from ._gateway import SUPPORTED_VERSIONS, Gateway
from ._http import HttpTransport, check_bind, serve_http
from ._import import ImportResult, import_mcp_servers
from ._interceptors import (
    ApprovalStep,
    ArgumentValidation,
    AuditStep,
    Authenticate,
    DecisionContext,
    FlowRule,
    ListingDecider,
    OutputHandling,
    PinCheck,
    PolicyDecider,
    PolicyStep,
    RateLimit,
    SinkRule,
    redact,
)
from ._jsonrpc import LineReader, Oversized, parse_message
from ._launcher import DownstreamProcess, Launcher, SubprocessLauncher
from ._names import SEPARATOR, Namespace, qualify, split
from ._pins import Pending, Pin, PinSet, Reconciled, approve, reconcile
from ._pinstore import PinStore
from ._rawroute import RawUriError, ResourceOffer, route_raw, template_matches
from ._resources import ResourceOutput, unwrap_uri, wrap_uri
from ._sandboxed import SandboxLauncher, sandbox_spec_for
from ._scan import Finding, scan_tool
from ._stdio import serve_stdio, serve_streams
from ._taint import ContextKey, TaintTracker, TrustedContext
from ._tree import package_tree_hash
from ._trust import TRUST_META_KEY, tag_result

__all__ = [
    "SEPARATOR",
    "SUPPORTED_VERSIONS",
    "TRUST_META_KEY",
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
    "RawUriError",
    "Reconciled",
    "ResourceOffer",
    "ResourceOutput",
    "RuleDecider",
    "SandboxLauncher",
    "ServerSandbox",
    "ServerSpec",
    "SinkRule",
    "SubprocessLauncher",
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
    "route_raw",
    "sandbox_spec_for",
    "scan_tool",
    "serve_http",
    "serve_stdio",
    "serve_streams",
    "sink_rules",
    "split",
    "tag_result",
    "template_matches",
    "unwrap_uri",
    "wrap_uri",
]
