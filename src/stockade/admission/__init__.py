"""Admission: Pod Security Standards (baseline, restricted) and stockade's own rules, as a pure
validator of Kubernetes workload manifests. See docs/admission.md."""

from ._checks import CHECKS, CheckDef, check_ids, checks_for, evaluate
from ._images import ImageRef, RegistryPattern, parse_image_ref, parse_registry_pattern
from ._load import Document, load_documents
from ._model import (
    AdmissionResult,
    Level,
    ManifestError,
    StockadeRules,
    Verdict,
    Violation,
)

__all__ = [
    "CHECKS",
    "AdmissionResult",
    "CheckDef",
    "Document",
    "ImageRef",
    "Level",
    "ManifestError",
    "RegistryPattern",
    "StockadeRules",
    "Verdict",
    "Violation",
    "check_ids",
    "checks_for",
    "evaluate",
    "load_documents",
    "parse_image_ref",
    "parse_registry_pattern",
]
