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
import re
from typing import Any

from pydantic import model_validator

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
    """The builder and source repository a provenance must name: exact, or a whole-value regex."""

    builder_id: str | None = None
    builder_regex: str | None = None
    source_repository: str | None = None
    source_regex: str | None = None

    @model_validator(mode="after")
    def _one_each(self) -> ProvenancePolicy:
        if (self.builder_id is None) == (self.builder_regex is None):
            raise ValueError("set exactly one of builder_id / builder_regex")
        if (self.source_repository is None) == (self.source_regex is None):
            raise ValueError("set exactly one of source_repository / source_regex")
        for pattern in (self.builder_regex, self.source_regex):
            if pattern is not None:
                if len(pattern) > 1024:
                    raise ValueError("provenance regex longer than 1024 characters")
                try:
                    re.compile(pattern)
                except re.error as e:
                    raise ValueError(
                        f"provenance regex {pattern!r} does not compile: {e}"
                    ) from None
        return self

    def builder_matches(self, builder: str) -> bool:
        if self.builder_id is not None:
            return builder == self.builder_id
        assert self.builder_regex is not None  # noqa: S101  (validator guarantees one)
        return re.fullmatch(self.builder_regex, builder) is not None

    def source_matches(self, source: str) -> bool:
        if self.source_repository is not None:
            return _source(source) == _source(self.source_repository)
        assert self.source_regex is not None  # noqa: S101
        return re.fullmatch(self.source_regex, _source(source)) is not None

    def describe_builder(self) -> str:
        return repr(self.builder_id) if self.builder_id is not None else f"/{self.builder_regex}/"

    def describe_source(self) -> str:
        if self.source_repository is not None:
            return repr(self.source_repository)
        return f"/{self.source_regex}/"


class ProvenanceResult(Frozen):
    predicate_type: str
    builder_id: str
    source: str


def _fail(got: str, expected: str, step: str = "provenance") -> ProvenanceError:
    return ProvenanceError(
        f"{step}: got {got}, expected {expected}",
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
        raise _fail(
            f"_type {str(_get(doc, '_type'))[:80]!r}",
            "an in-toto statement",
            "provenance statement",
        )
    ptype = _get(doc, "predicateType")
    if ptype not in (SLSA_V1, SLSA_V02):
        raise _fail(
            f"predicateType {str(ptype)[:80]!r}", f"{SLSA_V1} or {SLSA_V02}", "provenance type"
        )
    subjects = _get(doc, "subject")
    names = [
        "sha256:" + str(_get(s, "digest", "sha256")) for s in subjects or [] if isinstance(s, dict)
    ]
    if digest not in names:
        raise _fail(f"subjects {names[:5]}", f"the image digest {digest}", "provenance subject")
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
    if not isinstance(builder, str) or not policy.builder_matches(builder):
        raise _fail(
            f"builder {str(builder)[:120]!r}", policy.describe_builder(), "provenance builder"
        )
    if not isinstance(repo, str) or not policy.source_matches(repo):
        raise _fail(f"source {str(repo)[:120]!r}", policy.describe_source(), "provenance source")
    return ProvenanceResult(predicate_type=str(ptype), builder_id=builder, source=repo)
