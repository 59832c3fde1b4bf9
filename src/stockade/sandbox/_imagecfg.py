"""What an image's config may contribute to its sandbox (pure): ``Env`` (filtered) and ``User``.

``Env`` entries are kept only when they are well-formed ``NAME=value`` pairs with a portable
name that does not look like a credential (an image must not smuggle tokens into every run, and
names such as ``LD_PRELOAD`` change what the loader runs). ``PATH`` keeps only directories of
the image itself: absolute, normalised entries outside the mounts stockade adds over the image's
root (``/tmp``, ``/run``, ``/proc``, ``/dev``, ``/sys``); an empty entry (the working directory),
a relative one or one with ``..`` is dropped, and a PATH with nothing left is dropped (the
sandbox's default applies). ``User`` must be a numeric, non-root uid (optionally ``uid:gid`` with
a numeric non-root gid); root, a user name or anything else refuses the run unless the policy
sets the uid itself.
"""

from __future__ import annotations

import posixpath
import re

from stockade.errors import SandboxError

from ._oci import SANDBOX_TMP

__all__ = ["image_env", "image_gid", "image_path", "image_uid"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_CREDENTIAL = re.compile(
    r"(TOKEN|SECRET|PASSW|API_?KEY|ACCESS_?KEY|PRIVATE|CREDENTIAL|AUTH|COOKIE|SESSION|"
    r"CERT|_KEY$|^KEY)",
    re.IGNORECASE,
)
_LOADER = re.compile(r"^(LD_|GCONV_PATH$|HOSTALIASES$|RES_OPTIONS$|LOCALDOMAIN$|.*_PROXY$)", re.I)
_MAX_VALUE = 4096
_NOT_THE_IMAGE = (SANDBOX_TMP, "/run", "/proc", "/dev", "/sys")  # mounted over the image's root
DEFAULT_ID = 65532


def image_path(value: str) -> str | None:
    """``value`` (a PATH) with only the image's own directories, or None when none is left."""
    kept: list[str] = []
    for entry in value.split(":"):
        if not entry.startswith("/") or ".." in entry.split("/"):
            continue
        norm = posixpath.normpath(entry)
        if norm != entry.rstrip("/") or norm.startswith("//"):
            continue
        if any(norm == m or norm.startswith(m + "/") for m in _NOT_THE_IMAGE):
            continue
        if norm not in kept:
            kept.append(norm)
    return ":".join(kept) or None


def image_env(entries: object) -> tuple[tuple[str, str], ...]:
    """The image's ``Env`` as (name, value) pairs, credentials and loader variables dropped."""
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise SandboxError(
            f"image config Env is a {type(entries).__name__} (expected a list of NAME=value)",
            "fix the image config",
        )
    out: dict[str, str] = {}
    for raw in entries:
        if not isinstance(raw, str):
            continue
        name, sep, value = raw.partition("=")
        if not sep or not _NAME.fullmatch(name) or len(value) > _MAX_VALUE:
            continue
        if not value.isprintable():
            continue
        if _CREDENTIAL.search(name) or _LOADER.match(name):
            continue
        if name == "PATH":
            path = image_path(value)
            if path is None:
                continue
            value = path
        out[name] = value
    return tuple(sorted(out.items()))


def _non_root_id(text: str, what: str) -> int | None:
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    n = int(text)
    return n if 0 < n < 2**31 - 1 else None


def image_uid(user: object, policy_uid: int | None) -> int:
    """The uid to run the image as: the policy's when set, else the image's numeric non-root one.

    An image naming no user runs as the default sandbox uid 65532.
    """
    if policy_uid is not None:
        if policy_uid <= 0:
            raise SandboxError(f"policy uid {policy_uid} is root or negative", "use a uid > 0")
        return policy_uid
    if user is None or user == "":
        return DEFAULT_ID
    if not isinstance(user, str):
        raise SandboxError("image config User is not a string", "fix the image config")
    uid_s, _, gid_s = user.partition(":")
    uid = _non_root_id(uid_s, "uid")
    gid_ok = not gid_s or _non_root_id(gid_s, "gid") is not None
    if uid is None or not gid_ok:
        raise SandboxError(
            f"image User {user[:40]!r} is root or not numeric (expected a numeric non-root "
            "uid such as 1000 or 1000:1000)",
            "set a numeric non-root USER in the image, or set the uid in the policy",
        )
    return uid


def image_gid(user: object) -> int:
    """The gid of an image ``User`` that :func:`image_uid` accepted: its numeric non-root gid, or
    the default sandbox gid 65532 when it names none (or is not a string)."""
    if not isinstance(user, str):
        return DEFAULT_ID
    _, sep, gid_s = user.partition(":")
    gid = _non_root_id(gid_s, "gid") if sep else None
    return gid if gid is not None else DEFAULT_ID
