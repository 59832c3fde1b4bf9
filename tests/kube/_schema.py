"""Strict Kubernetes 1.37 schema validation with the schemas kubernetes-validate ships.

``kubernetes_validate.validate`` re-reads the large definitions file on every call; this builds
one validator per kind (same files, same Draft 2020-12 validator) so property tests stay fast.
The tests also call the package's own ``validate`` for the fixed renders.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

kv = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is not installed (pip install -e '.[dev]')"
)
from kubernetes_validate.utils import schema_contents  # noqa: E402

VERSION = "1.37.0"
_DIR = "kubernetes-json-schema/v1.37.0-local-strict"


@cache
def _definitions() -> Any:
    return schema_contents(f"{_DIR}/_definitions.json", VERSION)


@cache
def _validator(kind: str, api_version: str) -> jsonschema.Draft202012Validator:
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = schema_contents(f"{_DIR}/{kind.lower()}-{group}.json", VERSION)
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(_definitions()) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate_fast(obj: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError if ``obj`` does not match its strict 1.37 schema."""
    _validator(obj["kind"], obj["apiVersion"]).validate(obj)
