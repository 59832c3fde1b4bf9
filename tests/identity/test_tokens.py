"""Run tokens: signature, expiry, revocation, run binding and scope are checked on every use."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.errors import IdentityError
from stockade.identity import MemoryRevocations, TokenAuthority, TokenError

from ._pki import FixedClock

KEY = b"k" * 32


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


@pytest.fixture
def revocations() -> MemoryRevocations:
    return MemoryRevocations()


@pytest.fixture
def authority(clock: FixedClock, revocations: MemoryRevocations) -> TokenAuthority:
    return TokenAuthority(KEY, clock, revocations)


def test_a_fresh_token_works_for_its_run_and_scope(authority: TokenAuthority) -> None:
    tok = authority.issue("run-1", ("progress", "secret:db"))
    claims = authority.check(tok, run_id="run-1", scope="secret:db")
    assert claims.run == "run-1"
    assert claims.scopes == ("progress", "secret:db")


@pytest.mark.guarantee("cp-token-expiry")
def test_an_expired_token_is_refused(authority: TokenAuthority, clock: FixedClock) -> None:
    tok = authority.issue("run-1", ("progress",), ttl=timedelta(minutes=5))
    clock.advance(timedelta(minutes=5))
    with pytest.raises(TokenError, match="expired"):
        authority.check(tok, run_id="run-1", scope="progress")


@pytest.mark.guarantee("cp-token-run-bound")
def test_a_token_never_works_for_another_run(authority: TokenAuthority) -> None:
    tok = authority.issue("run-1", ("progress",))
    with pytest.raises(TokenError, match="not 'run-2'"):
        authority.check(tok, run_id="run-2", scope="progress")


@pytest.mark.guarantee("cp-token-revocable")
def test_a_revoked_token_is_refused(
    authority: TokenAuthority, revocations: MemoryRevocations
) -> None:
    tok = authority.issue("run-1", ("progress",))
    revocations.revoke(authority.parse(tok).jti)
    with pytest.raises(TokenError, match="revoked"):
        authority.check(tok, run_id="run-1", scope="progress")


@pytest.mark.guarantee("cp-token-revocable")
def test_revoking_a_run_revokes_all_its_tokens(
    authority: TokenAuthority, revocations: MemoryRevocations
) -> None:
    tok = authority.issue("run-1", ("progress",))
    revocations.revoke_run("run-1")
    with pytest.raises(TokenError, match="revoked"):
        authority.check(tok, run_id="run-1", scope="progress")


@pytest.mark.guarantee("cp-token-scope")
def test_a_token_without_the_needed_scope_is_refused(authority: TokenAuthority) -> None:
    tok = authority.issue("run-1", ("progress",))
    with pytest.raises(TokenError, match="expected scope 'secret:db'"):
        authority.check(tok, run_id="run-1", scope="secret:db")


@pytest.mark.guarantee("cp-token-signature")
def test_a_token_with_edited_claims_is_refused(authority: TokenAuthority) -> None:
    tok = authority.issue("run-1", ("progress",))
    prefix, body, mac = tok.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["run"] = "run-2"
    claims["scp"] = ["progress", "secret:db"]
    with pytest.raises(TokenError, match="signature"):
        authority.check(f"{prefix}.{_b64(claims)}.{mac}", run_id="run-2", scope="secret:db")


@pytest.mark.guarantee("cp-token-signature")
def test_a_token_signed_with_another_key_is_refused(
    authority: TokenAuthority, clock: FixedClock
) -> None:
    other = TokenAuthority(b"x" * 32, clock, MemoryRevocations())
    with pytest.raises(TokenError, match="signature"):
        authority.check(other.issue("run-1", ("progress",)), run_id="run-1", scope="progress")


@pytest.mark.guarantee("cp-token-signature")
@pytest.mark.parametrize(
    "forged",
    [
        # a JWT with alg none and no signature
        _b64({"alg": "none", "typ": "JWT"})
        + "."
        + _b64({"run": "run-1", "scp": ["progress"]})
        + ".",
        # our prefix with an empty MAC
        "stk1." + _b64({"v": 1, "run": "run-1", "scp": ["progress"]}) + ".",
        # alg none smuggled into the prefix
        "none." + _b64({"v": 1, "run": "run-1"}) + ".AAAA",
        "",
        "stk1",
        "stk1..",
        "stk1.!!!.!!!",
    ],
)
def test_unsigned_or_malformed_tokens_are_refused(authority: TokenAuthority, forged: str) -> None:
    with pytest.raises(TokenError):
        authority.check(forged, run_id="run-1", scope="progress")


@pytest.mark.guarantee("cp-token-signature")
@given(pos=st.integers(min_value=0), new=st.characters(codec="ascii"))
def test_any_single_character_edit_of_a_token_is_refused(pos: int, new: str) -> None:
    from datetime import UTC, datetime

    auth = TokenAuthority(KEY, FixedClock(datetime.now(UTC)), MemoryRevocations())
    tok = auth.issue("run-1", ("progress",))
    i = pos % len(tok)
    edited = tok[:i] + new + tok[i + 1 :]
    if edited == tok:
        return
    try:
        auth.check(edited, run_id="run-1", scope="progress")
    except TokenError:
        return
    # base64url padding bits: a different last char may decode to the same MAC bytes
    assert auth.parse(edited) == auth.parse(tok)


@pytest.mark.parametrize("scopes", [(), ("admin",), ("secret:",), ("secret:a b",)])
def test_bad_scopes_cannot_be_issued(authority: TokenAuthority, scopes: tuple[str, ...]) -> None:
    with pytest.raises(TokenError):
        authority.issue("run-1", scopes)


def test_a_short_key_is_refused(clock: FixedClock) -> None:
    with pytest.raises(IdentityError, match="at least 32"):
        TokenAuthority(b"short", clock, MemoryRevocations())


@pytest.mark.guarantee("cp-token-signature")
@pytest.mark.parametrize("body", ["é", "\u202e", "a b", "a=b"])
def test_tokens_with_characters_outside_base64url_are_refused_cleanly(
    authority: TokenAuthority, body: str
) -> None:
    tok = authority.issue("run-1", ("progress",))
    prefix, _, mac = tok.split(".")
    with pytest.raises(TokenError, match="base64url"):
        authority.check(f"{prefix}.{body}.{mac}", run_id="run-1", scope="progress")
