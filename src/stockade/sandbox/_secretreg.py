"""A run's secrets fetched once and registered with the audit redactor before anything is logged.

The workload may print a secret (to stdout, into an error message, into a tool result); every
value granted to the run is therefore handed to the audit log's redactor before the first event
about the run, and the same fetched values are what the sandbox receives.
"""

from __future__ import annotations

from typing import Any

from stockade.errors import SandboxError
from stockade.models import SandboxSpec

from ._backends import _fetch
from ._protocols import SecretSource

__all__ = ["FetchedSecrets", "fetch_and_register", "redact_like_audit", "redaction_forms"]


class FetchedSecrets:
    """The values fetched for one run (a ``SecretSource`` that never asks the store again)."""

    def __init__(self, values: dict[str, bytes]) -> None:
        self._values = dict(values)

    def get(self, name: str) -> bytes:
        try:
            return self._values[name]
        except KeyError:
            raise SandboxError(
                f"secret {name!r} was not fetched for this run (got a request for it, "
                f"expected one of {sorted(self._values)})",
                "grant the secret to the server in the policy",
            ) from None


def redaction_forms(value: bytes) -> set[str]:
    """The strings the redactor must match for one value: as is and without surrounding space."""
    forms: set[str] = set()
    for text in (value.decode("utf-8", "replace"), value.decode("latin-1")):
        forms |= {text, text.strip()}
    return {f for f in forms if f.strip()}


def fetch_and_register(
    spec: SandboxSpec, secrets: SecretSource | None, audit: Any
) -> FetchedSecrets | None:
    """Fetch every granted secret and register it with ``audit``'s redactor; None if none granted.

    An audit sink that cannot redact (no ``add_secrets``) refuses a run that is granted secrets:
    its workload's output could carry them into the log.
    """
    if not spec.secrets:
        return None
    values = _fetch(spec, secrets)
    if audit is not None:
        add = getattr(audit, "add_secrets", None)
        if not callable(add):
            raise SandboxError(
                f"the run is granted secrets but the audit sink {type(audit).__name__} "
                "cannot redact them (got no add_secrets, expected the audit log's)",
                "log the run to stockade's AuditLog, which redacts registered secret values",
            )
        for value in values.values():
            add(sorted(redaction_forms(value)))
    return FetchedSecrets(values)


def redact_like_audit(audit: Any, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as the audit log would store it (its redactor), for the run store's evidence."""
    redactor = getattr(audit, "redactor", None)
    redact = getattr(redactor, "data", None)
    if not callable(redact):
        return data
    out = redact(data)
    return out if isinstance(out, dict) else data
