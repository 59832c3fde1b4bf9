"""The approval page over HTTP (Starlette's test client): login, CSRF, POST-only, CSP, escaping."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from stockade.approvals import CSP, ApprovalStore, State, approval_app
from stockade.secrets import MemorySecretStore
from stockade.testing import FakeClock

from .conftest import make_call, make_request

XSS = {"to": "<script>alert(1)</script>", "q": '"><img src=x onerror=alert(2)>'}


@pytest.fixture
def client(store: ApprovalStore, clock: FakeClock) -> Iterator[TestClient]:
    secrets = MemorySecretStore({"approvals.operator.alice": b"alice-token-123"})
    app = approval_app(store, secrets, clock, hosts=("testserver",))
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def login(c: TestClient) -> str:
    r = c.post(
        "/login", data={"operator": "alice", "token": "alice-token-123"}, follow_redirects=True
    )
    assert r.status_code == 200
    m = re.search(r'name=csrf value="([^"]+)"', r.text)
    assert m is not None
    return m.group(1)


def seed(store: ApprovalStore, clock: FakeClock, rid: str = "apr_1", **kw: object) -> str:
    return store.add(make_request(clock, rid=rid, timeout_s=600, **kw)).digest  # type: ignore[arg-type]


def test_every_response_carries_a_strict_csp_and_no_script(client: TestClient) -> None:
    r = client.get("/login")
    assert r.headers["content-security-policy"] == CSP
    assert "script-src 'none'" in CSP
    assert r.headers["x-frame-options"] == "DENY"
    assert "<script" not in r.text


@pytest.mark.guarantee("apr-web-login")
def test_without_login_the_page_redirects_and_posts_are_refused(
    client: TestClient, store: ApprovalStore, clock: FakeClock
) -> None:
    digest = seed(store, clock)
    assert client.get("/", follow_redirects=False).status_code == 303
    r = client.post("/decide", data={"id": "apr_1", "digest": digest, "action": "approve"})
    assert r.status_code == 403
    assert store.get("apr_1", now=clock.now()).state == State.PENDING


@pytest.mark.guarantee("apr-web-login")
@pytest.mark.parametrize(
    ("op", "token"),
    [("alice", "wrong"), ("bob", "alice-token-123"), ("Alice/../x", "t"), ("alice", "")],
)
def test_wrong_logins_are_refused(client: TestClient, op: str, token: str) -> None:
    r = client.post("/login", data={"operator": op, "token": token}, follow_redirects=False)
    assert r.status_code in (400, 403)
    assert "stockade_approvals" not in r.headers.get("set-cookie", "")


@pytest.mark.guarantee("apr-web-csrf")
def test_a_post_without_the_csrf_token_or_from_another_origin_changes_nothing(
    client: TestClient, store: ApprovalStore, clock: FakeClock
) -> None:
    digest = seed(store, clock)
    csrf = login(client)
    form = {"id": "apr_1", "digest": digest, "action": "approve"}
    assert client.post("/decide", data=form).status_code == 403
    assert client.post("/decide", data={**form, "csrf": "x" + csrf}).status_code == 403
    r = client.post(
        "/decide", data={**form, "csrf": csrf}, headers={"origin": "http://evil.example"}
    )
    assert r.status_code == 403
    r = client.post("/decide", data={**form, "csrf": csrf}, headers={"origin": "null"})
    assert r.status_code == 403
    assert client.get("/", headers={"host": "evil.example"}).status_code == 421
    assert store.get("apr_1", now=clock.now()).state == State.PENDING


def test_state_changes_are_post_only(client: TestClient) -> None:
    login(client)
    assert client.get("/decide").status_code == 405
    assert client.get("/kill").status_code == 405


@pytest.mark.guarantee("apr-operator-decides")
def test_approve_records_the_operator_and_the_web_channel(
    client: TestClient, store: ApprovalStore, clock: FakeClock
) -> None:
    digest = seed(store, clock)
    csrf = login(client)
    r = client.post(
        "/decide", data={"id": "apr_1", "digest": digest, "action": "approve", "csrf": csrf}
    )
    assert r.status_code == 200
    req = store.get("apr_1", now=clock.now())
    assert (req.state, req.decided_by, req.channel) == (State.APPROVED, "alice", "web")


def test_a_decision_for_a_different_digest_than_shown_is_refused(
    client: TestClient, store: ApprovalStore, clock: FakeClock
) -> None:
    seed(store, clock)
    csrf = login(client)
    r = client.post(
        "/decide", data={"id": "apr_1", "digest": "sha256:0", "action": "approve", "csrf": csrf}
    )
    assert "changed since it was shown" in r.text
    assert store.get("apr_1", now=clock.now()).state == State.PENDING


@pytest.mark.guarantee("apr-web-escaped")
def test_attacker_arguments_are_escaped(
    client: TestClient, store: ApprovalStore, clock: FakeClock
) -> None:
    seed(store, clock, call=make_call(arguments=XSS, tool="send<b>x</b>"))
    login(client)
    page = client.get("/").text
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "<b>x</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_an_expired_request_leaves_the_pending_list_and_shows_as_expired_in_history(
    client: TestClient, store: ApprovalStore, clock: FakeClock
) -> None:
    seed(store, clock)
    login(client)
    assert "expires in 10m 0s" in client.get("/").text
    clock.advance(601)
    assert "nothing pending" in client.get("/").text
    assert 'class="state-expired">expired' in client.get("/history").text


def test_the_kill_button_engages_the_switch_with_the_operator_and_reason(
    client: TestClient, store: ApprovalStore, clock: FakeClock
) -> None:
    seed(store, clock)
    csrf = login(client)
    client.post("/kill", data={"reason": "suspicious burst", "csrf": csrf})
    k = store.kill_switch()
    assert (k.engaged, k.by, k.reason) == (True, "alice", "suspicious burst")
    assert "KILL SWITCH ENGAGED" in client.get("/").text


@pytest.mark.guarantee("apr-web-login")
def test_repeated_failed_logins_lock_the_operator_even_with_the_right_token(
    client: TestClient,
) -> None:
    for _ in range(10):
        client.post("/login", data={"operator": "alice", "token": "guess"})
    r = client.post(
        "/login", data={"operator": "alice", "token": "alice-token-123"}, follow_redirects=False
    )
    assert r.status_code == 403
    assert "too many failed attempts" in r.text


def test_the_empty_page_refreshes_itself_and_a_page_under_review_never_does(
    client: TestClient, store: ApprovalStore, clock: FakeClock
) -> None:
    login(client)
    assert "http-equiv=refresh" in client.get("/").text
    seed(store, clock)
    assert "http-equiv=refresh" not in client.get("/").text
