"""An image's Env and User, as its sandbox may take them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.errors import SandboxError
from stockade.sandbox._imagecfg import image_env, image_uid


@pytest.mark.guarantee("sandbox-image-config")
def test_image_env_keeps_plain_settings_and_drops_credentials_loader_and_proxy_variables() -> None:
    env = image_env([
        "PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8", "GITHUB_TOKEN=ghp_x",
        "AWS_SECRET_ACCESS_KEY=a",
        "DB_PASSWORD=p", "API_KEY=k", "LD_PRELOAD=/evil.so", "HTTPS_PROXY=http://x", "noequals",
        "1BAD=x", "CTRL=\x1b[2J", 7,
    ])  # fmt: skip
    assert env == (("LANG", "C.UTF-8"), ("PATH", "/usr/local/bin:/usr/bin"))
    assert image_env(None) == ()
    with pytest.raises(SandboxError):
        image_env("PATH=/bin")


@given(st.lists(st.text(max_size=40), max_size=10))
def test_no_kept_env_name_looks_like_a_credential(entries: list[str]) -> None:
    for name, value in image_env(entries):
        assert not any(w in name.upper() for w in ("TOKEN", "SECRET", "PASSW", "AUTH"))
        assert not name.upper().startswith("LD_")
        assert value.isprintable()


@pytest.mark.guarantee("sandbox-image-config")
@pytest.mark.parametrize(
    "user", ["0", "root", "0:0", "1000:0", "app", "-1", "1000:app", "\uff10", "99999999999"]
)
def test_image_user_root_or_a_name_is_refused_unless_the_policy_sets_the_uid(user: str) -> None:
    with pytest.raises(SandboxError, match="root or not numeric"):
        image_uid(user, None)
    assert image_uid(user, 4242) == 4242


@pytest.mark.guarantee("sandbox-image-config")
def test_image_user_numeric_non_root_is_honoured_and_absent_means_the_default() -> None:
    assert image_uid("1000", None) == 1000
    assert image_uid("1000:1000", None) == 1000
    assert image_uid(None, None) == 65532
    assert image_uid("", None) == 65532
    with pytest.raises(SandboxError):
        image_uid("1000", 0)
