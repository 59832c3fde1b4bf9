"""Admission: Pod Security Standards (baseline, restricted) and stockade's own rules, as a pure
validator of Kubernetes workload manifests. See docs/admission.md."""

from ._baseline import SAFE_SYSCTLS, SELINUX_TYPES
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
from ._restricted import RESTRICTED_VOLUME_SOURCES

__all__ = [
    "CHECKS",
    "RESTRICTED_VOLUME_SOURCES",
    "SAFE_SYSCTLS",
    "SELINUX_TYPES",
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
