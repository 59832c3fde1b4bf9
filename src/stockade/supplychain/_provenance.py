"""SLSA provenance: an in-toto statement (already signature-verified) must name the image digest
and match the policy's builder and source repository (pure).

Accepted: statement ``_type`` in-toto v0.1 or v1; ``predicateType`` SLSA provenance v0.2 or v1.
Builder: v1 ``runDetails.builder.id``, v0.2 ``builder.id``. Source: v1 the
``buildDefinition.externalParameters.workflow.repository`` or the first resolved dependency's
``uri``; v0.2 ``invocation.configSource.uri``. A ``git+`` prefix and an ``@ref`` suffix are ignored
when comparing sources; everything else must be equal.
"""

from __future__ import annotations

import json
from typing import Any

from stockade.errors import SupplyChainError
from stockade.models import Frozen

__all__ = ["ProvenanceError", "ProvenancePolicy", "ProvenanceResult", "check_provenance"]

STATEMENT_TYPES = ("https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1")
SLSA_V1 = "https://slsa.dev/provenance/v1"
SLSA_V02 = "https://slsa.dev/provenance/v0.2"
MAX_STATEMENT = 1024 * 1024


class ProvenanceError(SupplyChainError):
    """The provenance is missing, malformed, or names another subject, builder or source."""


class ProvenancePolicy(Frozen):
    builder_id: str
    source_repository: str


class ProvenanceResult(Frozen):
    predicate_type: str
    builder_id: str
    source: str


def _fail(got: str, expected: str) -> ProvenanceError:
    return ProvenanceError(
        f"provenance: got {got}, expected {expected}",
        "build the image with the approved builder from the approved repository",
    )


def _get(doc: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(p)
    return doc


def _source(uri: str) -> str:
    return uri.removeprefix("git+").split("@", 1)[0].rstrip("/")


def check_provenance(
    statement: bytes, *, digest: str, policy: ProvenancePolicy
) -> ProvenanceResult:
    if len(statement) > MAX_STATEMENT:
        raise _fail(f"{len(statement)} bytes", f"at most {MAX_STATEMENT}")
    try:
        doc = json.loads(statement)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _fail("a statement that is not JSON", "an in-toto statement") from None
    if _get(doc, "_type") not in STATEMENT_TYPES:
        raise _fail(f"_type {str(_get(doc, '_type'))[:80]!r}", "an in-toto statement")
    ptype = _get(doc, "predicateType")
    if ptype not in (SLSA_V1, SLSA_V02):
        raise _fail(f"predicateType {str(ptype)[:80]!r}", f"{SLSA_V1} or {SLSA_V02}")
    subjects = _get(doc, "subject")
    names = [
        "sha256:" + str(_get(s, "digest", "sha256")) for s in subjects or [] if isinstance(s, dict)
    ]
    if digest not in names:
        raise _fail(f"subjects {names[:5]}", f"the image digest {digest}")
    predicate = _get(doc, "predicate")
    if ptype == SLSA_V1:
        builder = _get(predicate, "runDetails", "builder", "id")
        repo = _get(predicate, "buildDefinition", "externalParameters", "workflow", "repository")
        deps = _get(predicate, "buildDefinition", "resolvedDependencies")
        if not isinstance(repo, str) and isinstance(deps, list) and deps:
            repo = _get(deps[0], "uri")
    else:
        builder = _get(predicate, "builder", "id")
        repo = _get(predicate, "invocation", "configSource", "uri")
    if builder != policy.builder_id:
        raise _fail(f"builder {str(builder)[:120]!r}", repr(policy.builder_id))
    if not isinstance(repo, str) or _source(repo) != _source(policy.source_repository):
        raise _fail(f"source {str(repo)[:120]!r}", repr(policy.source_repository))
    return ProvenanceResult(predicate_type=str(ptype), builder_id=builder, source=repo)
