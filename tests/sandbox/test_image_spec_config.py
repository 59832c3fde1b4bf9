"""build_spec takes an image's config Env and User only through the filters: no root, no
credential or loader variables, a PATH of the image's own directories, the policy's env first."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.errors import SandboxError
from stockade.models import SandboxSpec
from stockade.sandbox import Overrides, PolicyLimits, build_spec
from stockade.sandbox._imagecfg import image_gid, image_path

ARGV = ("/bin/app",)
DIGEST = "sha256:" + "a" * 64
LIMITS = PolicyLimits(env=(("MODE", "policy"),), from_policy=True)


def _spec(
    env: tuple[str, ...] = (), user: str = "", rootfs: str | None = "/var/img/rootfs"
) -> SandboxSpec:
    digest = DIGEST if rootfs is not None else None
    return build_spec(
        ARGV, LIMITS, Overrides(), image_digest=digest, rootfs=rootfs, image_env=env,
        image_user=user,
    )  # fmt: skip


@pytest.mark.guarantee("sandbox-image-config")
def test_the_images_env_is_filtered_and_the_policys_env_wins() -> None:
    spec = _spec(
        env=("LANG=C.UTF-8", "MODE=image", "GITHUB_TOKEN=ghp_x", "LD_PRELOAD=/tmp/e.so",
             "PATH=/tmp:/usr/bin:.:/run/secrets"),
    )  # fmt: skip
    assert dict(spec.env) == {"LANG": "C.UTF-8", "MODE": "policy", "PATH": "/usr/bin"}


@pytest.mark.guarantee("sandbox-image-config")
@pytest.mark.parametrize("user", ["0", "root", "0:0", "1000:0", "nobody"])
def test_an_image_user_of_root_or_a_name_refuses_the_spec(user: str) -> None:
    with pytest.raises(SandboxError, match="root or not numeric"):
        _spec(user=user)


def test_an_image_user_sets_uid_and_gid_and_none_means_the_defaults() -> None:
    assert (_spec(user="1000:1001").uid, _spec(user="1000:1001").gid) == (1000, 1001)
    assert (_spec(user="1000").uid, _spec(user="1000").gid) == (1000, 65532)
    assert (_spec().uid, _spec().gid) == (65532, 65532)


def test_a_command_spec_ignores_image_config_entirely() -> None:
    spec = _spec(env=("LANG=C",), user="0", rootfs=None)
    assert dict(spec.env) == {"MODE": "policy"}
    assert spec.uid == 65532


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("/usr/local/bin:/usr/bin", "/usr/local/bin:/usr/bin"),
        ("/tmp:/bin", "/bin"),
        (".::/bin", "/bin"),
        ("/bin/../tmp", None),
        ("/run/stockade:/sbin", "/sbin"),
        ("/proc/self/cwd", None),
        ("/usr//bin", None),
        ("relative/bin", None),
        ("/bin:/bin/", "/bin"),
    ],
)
def test_an_image_path_keeps_only_the_images_own_absolute_directories(
    value: str, kept: str | None
) -> None:
    assert image_path(value) == kept


@given(st.text(alphabet="/.:abinmtpruscd", max_size=60))
def test_no_kept_path_entry_is_relative_climbs_or_lies_under_a_stockade_mount(value: str) -> None:
    kept = image_path(value)
    for entry in (kept or "").split(":") if kept else ():
        assert entry.startswith("/")
        assert ".." not in entry.split("/")
        assert not any(entry == m or entry.startswith(m + "/") for m in ("/tmp", "/run", "/proc"))


def test_the_gid_defaults_when_none_is_named() -> None:
    assert image_gid("1000:2000") == 2000
    assert image_gid("1000") == 65532
    assert image_gid(None) == 65532
