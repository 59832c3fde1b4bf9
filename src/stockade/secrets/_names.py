"""The secret-name grammar shared by the policy schema and every secret store."""

from __future__ import annotations

import re

from stockade.errors import SecretStoreError

__all__ = ["SECRET_NAME_PATTERN", "is_secret_name", "validate_secret_name"]

#: A letter first (so never a dot-file, never empty), then letters, digits, ``_``, ``.``, ``-``;
#: at most 128 characters; never a path separator.
SECRET_NAME_PATTERN = r"[A-Za-z][A-Za-z0-9_.-]{0,127}"  # noqa: S105 - a name grammar  # nosec B105
_NAME = re.compile(SECRET_NAME_PATTERN)


def is_secret_name(name: object) -> bool:
    """True when ``name`` follows the secret-name grammar."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None and ".." not in name


def validate_secret_name(name: object) -> str:
    """Return ``name`` or raise :class:`SecretStoreError` (the name, never a value, is shown)."""
    if not is_secret_name(name):
        shown = repr(name)[:80] if isinstance(name, str) else type(name).__name__
        raise SecretStoreError(
            f"invalid secret name {shown}: expected a letter then up to 127 of "
            "[A-Za-z0-9_.-], no '..', no path separators",
            "rename the secret, e.g. GITHUB_TOKEN or github.token",
        )
    assert isinstance(name, str)  # noqa: S101 - is_secret_name checked it
    return name
