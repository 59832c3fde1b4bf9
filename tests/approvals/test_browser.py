"""The approval page end-to-end in headless Chromium (the system browser, driven by Playwright):
log in, click approve, click deny, batch with per-item review, expiry shown, XSS inert."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.approvals import (
    ApprovalStore,
    PageServer,
    State,
    approval_app,
    loopback_socket,
)
from stockade.secrets import MemorySecretStore
from stockade.testing import FakeClock

from .conftest import make_call, make_request

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
XSS = {
    "to": "<script>document.title='pwned'</script>",
    "body": '"><img src=x onerror="document.title=\'pwned2\'">',
    "link": "javascript:alert(1)",
}

pytestmark = pytest.mark.browser


@pytest.fixture
def page_url(tmp_path: Path) -> Iterator[tuple[str, ApprovalStore, FakeClock]]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip(f"BROWSER TEST SKIPPED: {CHROMIUM} is absent (apt-get install chromium)")
    clock = FakeClock()
    store = ApprovalStore(tmp_path / "runs.db")
    for rid in ("apr_a", "apr_b", "apr_c", "apr_d"):
        store.add(make_request(clock, rid=rid, timeout_s=600))
    store.add(make_request(clock, rid="apr_x", timeout_s=600, call=make_call(arguments=XSS)))
    store.add(make_request(clock, rid="apr_e", timeout_s=30))
    sock = loopback_socket()
    host = f"127.0.0.1:{sock.getsockname()[1]}"
    secrets = MemorySecretStore({"approvals.operator.alice": b"alice-token-123"})
    app = approval_app(store, secrets, clock, hosts=(host,))
    with PageServer(app, sock):
        yield f"http://{host}", store, clock


@pytest.mark.guarantee("apr-web-escaped", "apr-operator-decides")
def test_an_operator_approves_denies_and_batches_in_a_real_browser(
    page_url: tuple[str, ApprovalStore, FakeClock],
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    url, store, clock = page_url
    dialogs: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(10_000)
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(url + "/")
            assert page.url.endswith("/login")
            page.fill("#operator", "alice")
            page.fill("#token", "alice-token-123")
            page.click("#login")
            page.wait_for_selector("#req-apr_a")

            # XSS payload rendered as text, inert.
            text = page.inner_text("#req-apr_x pre.untrusted")
            assert "<script>document.title='pwned'</script>" in text
            assert page.title() == "stockade approvals"
            assert page.locator("#req-apr_x img").count() == 0
            assert page.locator("script").count() == 0

            # Expiry shown.
            assert "expires in 0m 30s" in page.inner_text("#req-apr_e .expiry")

            page.click("#req-apr_a button.approve")
            assert "approved by alice" in page.inner_text("#message")
            page.goto(url + "/")
            page.click("#req-apr_b button.deny")
            assert "denied by alice" in page.inner_text("#message")

            # Batch: only the reviewed (ticked) items are decided.
            page.goto(url + "/")
            page.check("#req-apr_c input.pick")
            page.check("#req-apr_d input.pick")
            page.click("#batch-approve")
            assert "apr_c: approved" in page.inner_text("#message")
            assert "apr_d: approved" in page.inner_text("#message")

            # The short request expires: gone from pending, shown as expired in history.
            clock.advance(31)
            page.goto(url + "/")
            assert page.locator("#req-apr_e").count() == 0
            page.goto(url + "/history")
            assert page.inner_text("#h-apr_e .state-expired") == "expired"
            assert page.title() == "stockade approvals: history"
        finally:
            browser.close()
    assert dialogs == []
    states = {r.id: r.state for r in store.list(now=clock.now())}
    assert states == {
        "apr_a": State.APPROVED,
        "apr_b": State.DENIED,
        "apr_c": State.APPROVED,
        "apr_d": State.APPROVED,
        "apr_x": State.PENDING,
        "apr_e": State.EXPIRED,
    }
