"""Wiring a :class:`StoreApprover` from a policy file (an adapter: it reads the file).

``policy_file_hash(path)`` re-reads the policy on every call, so the re-check before dispatch
compares the approval's bound hash with the policy *as it is now on disk*: an edit between the
request and the dispatch voids the approval. A policy that no longer loads raises (-> deny).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from stockade.errors import ApprovalError
from stockade.models import AuditSink, Clock
from stockade.policy import Policy, load_policy

from ._approver import StoreApprover, Waiter
from ._elicit_channel import ElicitationChannel
from ._machine import OPERATOR_ONLY
from ._store import ApprovalStore

__all__ = ["check_page_url", "elicitation_channel", "policy_file_hash", "store_approver"]


def policy_file_hash(path: Path | str) -> Callable[[], str]:
    def current() -> str:
        return load_policy(path).effective_hash

    return current


def store_approver(
    policy: Policy,
    store_path: Path | str,
    clock: Clock,
    *,
    audit: AuditSink | None = None,
    image_digest: Callable[[str], str | None] = lambda server: None,
    wait: Waiter | None = None,
    run_id: Callable[[str], str | None] = lambda server: None,
    channel: ElicitationChannel | None = None,
) -> StoreApprover:
    """The gateway approver for ``policy``: per-category timeouts from ``approvals``, the bound
    policy hash re-read from ``policy.file`` (or fixed for an in-memory policy); ``channel``
    also asks the agent's client (MCP elicitation) where the policy allows it."""
    if policy.file and policy.file != "<memory>":
        current = policy_file_hash(policy.file)
    else:
        fixed = policy.effective_hash

        def current() -> str:
            return fixed

    return StoreApprover(
        ApprovalStore(store_path, audit=audit),
        clock,
        policy_hash=current,
        timeout_for=policy.doc.approvals.timeout_for,
        image_digest=image_digest,
        wait=wait,
        run_id=run_id,
        channel=channel,
    )


def check_page_url(url: str) -> str:
    """The operator's approval page (``stockade approvals serve``) as URL mode points at it:
    http(s), a host, and nothing that could carry a capability (no user info, query or fragment)."""
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or parts.fragment
    ):
        raise ApprovalError(
            f"approval page {url!r} is not a plain http(s) URL (expected e.g. "
            "http://127.0.0.1:8765, with no user info, query or fragment)",
            "give the address where 'stockade approvals serve' is reached",
        )
    return url.rstrip("/")


def elicitation_channel(
    policy: Policy,
    store_path: Path | str,
    clock: Clock,
    *,
    audit: AuditSink | None = None,
    page_url: str | None = None,
) -> tuple[ElicitationChannel | None, list[str]]:
    """The MCP elicitation channel for ``policy`` (``None`` when no category lists a mode), and
    notes for the operator's log (what will not be asked, and why)."""
    approvals = policy.doc.approvals
    listed = {c: a.elicitation for c, a in approvals.categories.items() if a.elicitation}
    if not listed:
        return None, []
    notes = [
        "elicitation: "
        + ", ".join(f"{c.value} ({'/'.join(m)})" for c, m in sorted(listed.items()))
        + " may be asked of a client that declares the capability"
    ]
    page = check_page_url(page_url) if page_url is not None else None
    url_wanted = sorted(c.value for c, m in listed.items() if "url" in m)
    if page is None and url_wanted:
        notes.append(
            "elicitation: no --approval-page given, so no URL-mode elicitation for "
            + ", ".join(url_wanted)
            + "; those requests wait for 'stockade approvals' or the web page"
        )
    form_only = sorted(c.value for c, m in listed.items() if c in OPERATOR_ONLY and "url" not in m)
    if form_only:
        notes.append(
            "elicitation: form answers never approve "
            + ", ".join(form_only)
            + " (operator-only); those requests wait for an operator channel"
        )
    longest = max([approvals.timeout_s, *(a.timeout_s for a in approvals.categories.values())])
    channel = ElicitationChannel(
        ApprovalStore(store_path, audit=audit),
        clock,
        allowed=approvals.elicitation_for,
        page_url=page,
        timeout_s=longest,
    )
    return channel, notes
