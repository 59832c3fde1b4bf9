"""Supply chain: image references, registry allowlist, signature verification, registry client."""

from ._allowlist import AllowlistDecision, RegistryAllowlist, RegistryRule
from ._attest import (
    DSSE_MEDIA_TYPE,
    SBOM_MEDIA_TYPES,
    Attestations,
    ProvenanceEvidence,
    SbomEvidence,
    dsse_pae,
    fetch_attestations,
    find_sbom,
    verify_provenance,
)
from ._bases import BASE_DIGEST, BASE_NAME, ApprovedBase, BaseImageError, check_base
from ._bundle import (
    BundleEvidence,
    load_trusted_root,
    verify_attestation_bundle,
    verify_bundle,
)
from ._cosign import (
    ANNOTATION_BUNDLE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_CHAIN,
    ANNOTATION_SIGNATURE,
    SignatureEvidence,
    SignatureLayer,
    verify_image_signatures,
    verify_signature_layer,
)
from ._dirlayout import DirImage, parse_signature_blob, read_dir_image
from ._errors import (
    ImageReferenceError,
    RegistryDeniedError,
    RegistryError,
    SignatureVerificationError,
    TrustMaterialError,
)
from ._keybundle import verify_bundle_with_key
from ._layout import OciLayoutStore
from ._manifest import Descriptor, ImageManifest, Platform, parse_manifest, select_platform
from ._policy import IdentityMatcher, ReferenceMatch, SignatureRule, VerificationPolicy
from ._provenance import ProvenanceError, ProvenancePolicy, ProvenanceResult, check_provenance
from ._record import (
    SealedRecord,
    VerificationRecord,
    open_record,
    policy_hash,
    seal_record,
)
from ._reference import DEFAULT_REGISTRY, ImageReference, parse_reference
from ._referrers import (
    BUNDLE_ARTIFACT_TYPES,
    fetch_referrer_bundles,
    referrers_index,
    verify_referrer_bundles,
)
from ._registry import RegistryClient
from ._runimage import (
    ImageGate,
    PreparedImage,
    image_evidence,
    image_gate,
    prepare_image,
    verification_evidence,
)
from ._sign import PrivateKey, load_private_key, sign_bytes, sign_image
from ._sigstore_oci import fetch_signatures, push_signature, signature_tag
from ._simplesigning import SIMPLESIGNING_MEDIA_TYPE, make_payload, parse_payload
from ._trustroot import TrustedRootMaterial, read_trusted_root
from ._unpack import LAYER_MEDIA_TYPES, UnpackLimits, unpack_image, unpack_layer
from ._verify import VerifiedImage, pull_image, require_pinned, verify_remote_image

__all__ = [
    "ANNOTATION_BUNDLE",
    "ANNOTATION_CERTIFICATE",
    "ANNOTATION_CHAIN",
    "ANNOTATION_SIGNATURE",
    "BASE_DIGEST",
    "BASE_NAME",
    "BUNDLE_ARTIFACT_TYPES",
    "DEFAULT_REGISTRY",
    "DSSE_MEDIA_TYPE",
    "LAYER_MEDIA_TYPES",
    "SBOM_MEDIA_TYPES",
    "SIMPLESIGNING_MEDIA_TYPE",
    "AllowlistDecision",
    "ApprovedBase",
    "Attestations",
    "BaseImageError",
    "BundleEvidence",
    "Descriptor",
    "DirImage",
    "IdentityMatcher",
    "ImageGate",
    "ImageManifest",
    "ImageReference",
    "ImageReferenceError",
    "OciLayoutStore",
    "Platform",
    "PreparedImage",
    "PrivateKey",
    "ProvenanceError",
    "ProvenanceEvidence",
    "ProvenancePolicy",
    "ProvenanceResult",
    "ReferenceMatch",
    "RegistryAllowlist",
    "RegistryClient",
    "RegistryDeniedError",
    "RegistryError",
    "RegistryRule",
    "SbomEvidence",
    "SealedRecord",
    "SignatureEvidence",
    "SignatureLayer",
    "SignatureRule",
    "SignatureVerificationError",
    "TrustMaterialError",
    "TrustedRootMaterial",
    "UnpackLimits",
    "VerificationPolicy",
    "VerificationRecord",
    "VerifiedImage",
    "check_base",
    "check_provenance",
    "dsse_pae",
    "fetch_attestations",
    "fetch_referrer_bundles",
    "fetch_signatures",
    "find_sbom",
    "image_evidence",
    "image_gate",
    "load_private_key",
    "load_trusted_root",
    "make_payload",
    "open_record",
    "parse_manifest",
    "parse_payload",
    "parse_reference",
    "parse_signature_blob",
    "policy_hash",
    "prepare_image",
    "pull_image",
    "push_signature",
    "read_dir_image",
    "read_trusted_root",
    "referrers_index",
    "require_pinned",
    "seal_record",
    "select_platform",
    "sign_bytes",
    "sign_image",
    "signature_tag",
    "unpack_image",
    "unpack_layer",
    "verification_evidence",
    "verify_attestation_bundle",
    "verify_bundle",
    "verify_bundle_with_key",
    "verify_image_signatures",
    "verify_provenance",
    "verify_referrer_bundles",
    "verify_remote_image",
    "verify_signature_layer",
]
