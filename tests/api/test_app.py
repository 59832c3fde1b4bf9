"""The control API in process: roles per route, run tokens, rate limits, health, metrics."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from stockade import api
from stockade.api import ControlPlane
from stockade.errors import SandboxError
from stockade.identity import Role, TokenAuthority
from stockade.policy import RateLimit
from stockade.store import RunStore

from ._helpers import FixedClock, client_for, peer

OPERATOR = peer(Role.OPERATOR)
RUNNER = peer(Role.RUNNER, "runner-1")


def test_public_surface_is_curated() -> None:
    assert sorted(api.__all__) == sorted(
        n for n in dir(api) if not n.startswith("_") and n != "annotations"
    )


@pytest.mark.guarantee("cp-api-authenticated")
@pytest.mark.parametrize("path", ["/healthz", "/v1/runs", "/metrics", "/openapi.json"])
def test_a_request_without_a_verified_peer_is_refused(cp: ControlPlane, path: str) -> None:
    r = client_for(cp, None).get(path)
    assert r.status_code == 401
    assert r.json()["error"] == "no verified client certificate"


@pytest.mark.guarantee("cp-api-roles")
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/runs"),
        ("GET", "/v1/runs/r1"),
        ("GET", "/v1/runs/r1/trace"),
        ("POST", "/v1/runs/r1/stop"),
        ("GET", "/v1/audit/verify"),
        ("GET", "/metrics"),
        ("GET", "/v1/policy"),
    ],
)
def test_a_runner_certificate_cannot_use_operator_routes(
    cp: ControlPlane, method: str, path: str
) -> None:
    r = client_for(cp, RUNNER).request(method, path)
    assert r.status_code == 403
    assert "role runner may not use" in r.json()["error"]


def test_an_operator_lists_and_reads_runs_and_traces(cp: ControlPlane) -> None:
    c = client_for(cp, OPERATOR)
    runs = c.get("/v1/runs").json()["runs"]
    assert {r["run_id"] for r in runs} == {"r1", "r2"}
    assert c.get("/v1/runs/r1").json()["workload"] == "python3 -c pass"
    trace = c.get("/v1/runs/r1/trace").json()
    assert [d["data"]["decision"]["kind"] for d in trace["decisions"]] == ["deny", "allow"]
    assert c.get("/v1/runs/nope").status_code == 404
    assert c.get("/v1/runs?limit=0").status_code == 400
    assert c.get("/v1/policy").json() == {"effective_hash": "sha256:" + "b" * 64}


@pytest.mark.guarantee("cp-token-revocable")
def test_stopping_a_run_revokes_its_tokens_and_records_the_request(
    cp: ControlPlane, tokens: TokenAuthority, open_store: Callable[[], RunStore]
) -> None:
    tok = tokens.issue("r1", ("progress",))
    runner = client_for(cp, RUNNER)
    auth = {"Authorization": f"Bearer {tok}"}
    assert (
        runner.post("/v1/runs/r1/progress", json={"message": "1/2"}, headers=auth).status_code
        == 202
    )
    r = client_for(cp, OPERATOR).post("/v1/runs/r1/stop")
    assert r.status_code == 202
    refused = runner.post("/v1/runs/r1/progress", json={"message": "2/2"}, headers=auth)
    assert refused.status_code == 403
    assert "revoked" in refused.json()["error"]
    with open_store() as s:
        kinds = [e.kind for e in s.evidence("r1")]
    assert kinds.count("progress") == 1
    assert "stop_requested" in kinds


@pytest.mark.guarantee("cp-token-run-bound")
def test_a_run_token_does_not_report_progress_for_another_run(
    cp: ControlPlane, tokens: TokenAuthority
) -> None:
    tok = tokens.issue("r1", ("progress",))
    r = client_for(cp, RUNNER).post(
        "/v1/runs/r2/progress", json={"message": "x"}, headers={"Authorization": f"Bearer {tok}"}
    )
    assert r.status_code == 403
    assert "not 'r2'" in r.json()["error"]


def test_progress_without_a_token_or_with_a_bad_body_is_refused(
    cp: ControlPlane, tokens: TokenAuthority
) -> None:
    c = client_for(cp, RUNNER)
    assert c.post("/v1/runs/r1/progress", json={"message": "x"}).status_code == 401
    auth = {"Authorization": f"Bearer {tokens.issue('r1', ('progress',))}"}
    assert c.post("/v1/runs/r1/progress", content=b"[", headers=auth).status_code == 400
    assert c.post("/v1/runs/r1/progress", json={"message": 5}, headers=auth).status_code == 400
    big = {"message": "x" * 20000}
    assert c.post("/v1/runs/r1/progress", json=big, headers=auth).status_code == 400


@pytest.mark.guarantee("cp-api-rate-limit")
def test_an_identity_over_its_rate_gets_429_with_retry_after(
    cp: ControlPlane, clock: FixedClock
) -> None:
    limited = dataclasses.replace(cp, identity_limit=RateLimit(rate=2, per=60))
    c = client_for(limited, OPERATOR)
    assert [c.get("/healthz").status_code for _ in range(2)] == [200, 200]
    r = c.get("/healthz")
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "30"
    assert "rate limit for operator alice" in r.json()["error"]
    # another identity has its own bucket
    assert client_for(limited, peer(Role.OPERATOR, "bob")).get("/healthz").status_code == 200
    clock.advance(timedelta(seconds=30))
    assert c.get("/healthz").status_code == 200


@pytest.mark.guarantee("cp-api-rate-limit")
def test_a_run_over_its_rate_gets_429(cp: ControlPlane, tokens: TokenAuthority) -> None:
    limited = dataclasses.replace(cp, run_limit=RateLimit(rate=1, per=10))
    c = client_for(limited, RUNNER)
    auth = {"Authorization": f"Bearer {tokens.issue('r1', ('progress',))}"}
    assert c.post("/v1/runs/r1/progress", json={"message": "a"}, headers=auth).status_code == 202
    r = c.post("/v1/runs/r1/progress", json={"message": "b"}, headers=auth)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "10"


def test_readyz_reports_each_dependency_and_fails_when_one_fails(cp: ControlPlane) -> None:
    def no_runtime() -> str:
        raise SandboxError("gVisor (runsc) is not installed", "install gVisor")

    ok = client_for(cp, OPERATOR).get("/readyz")
    assert ok.status_code == 200
    assert ok.json() == {"ready": True, "checks": {"store": {"ok": True, "detail": "ok"}}}
    bad = dataclasses.replace(cp, readiness={**cp.readiness, "sandbox_runtime": no_runtime})
    r = client_for(bad, OPERATOR).get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["sandbox_runtime"]["ok"] is False
    assert "runsc" in r.json()["checks"]["sandbox_runtime"]["detail"]


def test_metrics_expose_decisions_runs_and_admission_violations(cp: ControlPlane) -> None:
    c = client_for(cp, OPERATOR)
    text = c.get("/metrics").text
    assert 'stockade_decisions_total{result="deny"} 1' in text
    assert 'stockade_decisions_total{result="allow"} 1' in text
    assert 'stockade_runs{status="killed",end_reason="deadline"} 1' in text
    assert "stockade_admission_violations_total 1" in text
    assert "# TYPE stockade_rate_limited_total counter" in text


def test_openapi_lists_every_route() -> None:
    doc = api.openapi_document()
    assert doc["openapi"].startswith("3.1")
    ops = {op["operationId"] for p in doc["paths"].values() for op in p.values()}
    assert {"get_run_trace", "list_runs", "stop_run", "verify_audit", "readyz"} <= ops


def test_policy_history_lists_recorded_versions(
    cp: ControlPlane, open_store: Callable[[], RunStore]
) -> None:
    from stockade.gates import record_policy_version

    from ._helpers import T0

    with open_store() as s:
        record_policy_version(s, "sha256:" + "1" * 64, by="ops", document="", at=T0)
    body = client_for(cp, OPERATOR).get("/v1/policy/history").json()
    assert [v["hash"] for v in body["versions"]] == ["sha256:" + "1" * 64]
    assert client_for(cp, RUNNER).get("/v1/policy/history").status_code == 403


def test_approvals_and_kill_switch_are_readable_by_operators(
    cp: ControlPlane, tmp_path: Path, clock: FixedClock
) -> None:
    from stockade.approvals import ApprovalStore

    store = ApprovalStore(tmp_path / "runs.db")
    with_approvals = dataclasses.replace(cp, approvals=store)
    c = client_for(with_approvals, OPERATOR)
    assert c.get("/v1/approvals?state=pending").json() == {"approvals": []}
    assert c.get("/v1/approvals?state=bogus").status_code == 400
    assert c.get("/v1/kill-switch").json()["engaged"] is False
    store.set_kill(engaged=True, by="ops", reason="incident", now=clock.now())
    assert c.get("/v1/kill-switch").json()["engaged"] is True
    assert "stockade_kill_switch_engaged 1" in c.get("/metrics").text
    assert client_for(with_approvals, RUNNER).get("/v1/approvals").status_code == 403
    assert client_for(cp, OPERATOR).get("/v1/approvals").status_code == 404


@pytest.fixture
def with_secrets(
    cp: ControlPlane, tmp_path: Path, open_store: Callable[[], RunStore]
) -> ControlPlane:
    from stockade.models import RunStatus
    from stockade.policy import load_policy
    from stockade.secrets import MemorySecretStore

    from ._helpers import record

    policy = tmp_path / "p.yaml"
    policy.write_text(
        "version: 1\ndefault: deny\nservers:\n  - name: web\n    command: [node]\n"
        "    secrets: [DB_PASSWORD]\n"
    )
    with open_store() as s:
        s.create(record("live", server="web", status=RunStatus.RUNNING))
        s.create(record("done", server="web", status=RunStatus.EXITED))
    store = MemorySecretStore({"DB_PASSWORD": b"s3cret-value", "OTHER": b"nope-nope"})
    return dataclasses.replace(cp, policy=load_policy(policy), secrets=store)


@pytest.mark.guarantee("cp-token-scope")
def test_a_running_workload_fetches_only_its_granted_secret_with_a_scoped_token(
    with_secrets: ControlPlane, tokens: TokenAuthority, open_store: Callable[[], RunStore]
) -> None:
    c = client_for(with_secrets, RUNNER)

    def get(run: str, name: str, scopes: tuple[str, ...], issued_for: str | None = None) -> Any:
        tok = tokens.issue(issued_for or run, scopes)
        return c.get(f"/v1/runs/{run}/secrets/{name}", headers={"Authorization": f"Bearer {tok}"})

    ok = get("live", "DB_PASSWORD", ("secret:DB_PASSWORD",))
    assert ok.status_code == 200
    assert ok.content == b"s3cret-value"
    assert ok.headers["cache-control"] == "no-store"
    assert get("live", "DB_PASSWORD", ("progress",)).status_code == 403  # wrong scope
    assert get("live", "OTHER", ("secret:OTHER",)).status_code == 403  # not granted
    assert get("done", "DB_PASSWORD", ("secret:DB_PASSWORD",)).status_code == 403  # ended
    other_run = get("live", "DB_PASSWORD", ("secret:DB_PASSWORD",), issued_for="done")
    assert other_run.status_code == 403
    assert c.get("/v1/runs/live/secrets/DB_PASSWORD").status_code == 401
    with open_store() as s:
        fetched = [e.data for e in s.evidence("live") if e.kind == "secret_fetched"]
    assert fetched == [{"name": "DB_PASSWORD"}]


@pytest.mark.guarantee("cp-mtls-expired")
def test_a_connection_outliving_its_certificate_is_refused_per_request(
    cp: ControlPlane, clock: FixedClock
) -> None:
    c = client_for(cp, OPERATOR)
    assert c.get("/healthz").status_code == 200
    clock.advance(timedelta(days=2))  # past OPERATOR's not_after
    r = c.get("/healthz")
    assert r.status_code == 401
    assert "expired" in r.json()["error"]


@pytest.mark.guarantee("cp-mtls-revoked")
def test_a_revocation_applies_to_open_connections_on_their_next_request(
    cp: ControlPlane, clock: FixedClock, tmp_path: Path
) -> None:
    from stockade.identity import CertificateAuthority, CrlWatcher

    ca = CertificateAuthority.init(tmp_path / "ca", clock)
    watched = dataclasses.replace(cp, crl=CrlWatcher(ca.cert_path, ca.crl_path, clock))
    c = client_for(watched, OPERATOR)  # OPERATOR has serial 1
    assert c.get("/healthz").status_code == 200
    ca.revoke(1, clock)
    r = c.get("/healthz")
    assert r.status_code == 401
    assert "revoked" in r.json()["error"]


@pytest.mark.guarantee("cp-mtls-revoked")
@pytest.mark.parametrize("damage", ["garbage", "foreign", "expired"])
def test_an_unusable_revocation_list_refuses_every_request(
    cp: ControlPlane, clock: FixedClock, tmp_path: Path, damage: str
) -> None:
    from stockade.identity import CertificateAuthority, CrlWatcher

    ca = CertificateAuthority.init(tmp_path / "ca", clock)
    watched = dataclasses.replace(cp, crl=CrlWatcher(ca.cert_path, ca.crl_path, clock))
    if damage == "garbage":
        ca.crl_path.write_text("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")
    elif damage == "foreign":
        other = CertificateAuthority.init(tmp_path / "other", clock)
        ca.crl_path.write_bytes(other.crl_path.read_bytes())
    else:
        clock.advance(timedelta(days=8))  # past the CRL's next update
    who = OPERATOR.model_copy(update={"not_after": clock.now() + timedelta(days=1)})
    r = client_for(watched, who).get("/healthz")
    assert r.status_code == 401
