"""Model storage URIs: which scheme a model uses, and `pvc://` URIs parsed exactly as OME does.

`parse_pvc_uri` reproduces OME's own parser (`pkg/utils/storage/storage.go`), error for error, so
the plugin rejects what OME rejects and accepts what OME accepts. OME keeps the sub-path
verbatim (`..`, a leading or trailing `/` pass); `check_pvc_uri_strict` adds the plugin's rules
for URIs it writes or patches workloads from.

`model_pvc_uri` is the one writer of a model's `pvc://` URI, and `kind_problem` the one check of
OME's rule per model kind (OME `main`, `pkg/validation/basemodel.go` ValidatePVCStorage, used by
its validating webhook and, as `PVCInvalid`, by its controller): a ClusterBaseModel's URI must
name the claim's namespace, `pvc://<ns>:<claim>/<sub>`; a BaseModel's must not,
`pvc://<claim>/<sub>`, because OME reads the claim in the model's own namespace.
"""

from __future__ import annotations

import dataclasses
import enum
import re

from kubectl_omepvc.core.naming import ModelKind

PVC_PREFIX = "pvc://"


class StorageScheme(str, enum.Enum):
    """`spec.storage.storageUri` schemes OME knows (prefixes are case-sensitive)."""

    OCI = "oci"
    PVC = "pvc"
    VENDOR = "vendor"
    HF = "hf"
    S3 = "s3"
    AZ = "az"
    GS = "gs"
    GITHUB = "github"
    LOCAL = "local"
    UNKNOWN = "unknown"

    @property
    def prefix(self) -> str:
        return "" if self is StorageScheme.UNKNOWN else f"{self.value}://"

    @property
    def agent_downloads(self) -> bool:
        """Whether OME's model-agent fetches this scheme onto the nodes' disks."""
        return self in (StorageScheme.OCI, StorageScheme.HF)

    @property
    def agent_cannot_download(self) -> bool:
        """Schemes the agent rejects as "unknown storage type": their nodes stay Updating."""
        return self in (StorageScheme.S3, StorageScheme.AZ, StorageScheme.GS, StorageScheme.GITHUB)


# By the text before "://" (no scheme contains it): one dict lookup per URI, as status reads
# thousands of them.
_SCHEMES = {s.value: s for s in StorageScheme if s is not StorageScheme.UNKNOWN}


def scheme_of(uri: str | None) -> StorageScheme:
    """The scheme of a storage URI; `unknown` for anything OME does not recognise."""
    if uri:
        name, sep, _ = uri.partition("://")
        if sep:
            return _SCHEMES.get(name, StorageScheme.UNKNOWN)
    return StorageScheme.UNKNOWN


class PvcUriError(ValueError):
    """A `pvc://` URI that OME (or the plugin's stricter check) rejects; str() says why."""


@dataclasses.dataclass(frozen=True)
class PvcUri:
    """`pvc://[<namespace>:]<claim>/<sub_path>`; `namespace` is None when the URI has none."""

    namespace: str | None
    claim: str
    sub_path: str

    def __str__(self) -> str:
        return format_pvc_uri(self.namespace, self.claim, self.sub_path)

    def as_dict(self) -> dict[str, str | None]:
        return {"namespace": self.namespace, "claim": self.claim, "subPath": self.sub_path}


# OME's namespace check: 1-63 of [a-z0-9-], no leading or trailing hyphen.
_OME_NAMESPACE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*")
DNS1123_SUBDOMAIN_MAX = 253


def parse_pvc_uri(uri: str) -> PvcUri:
    """Parse like OME: split at the first `/`, a `:` before it separates namespace and claim.

    Raises PvcUriError in OME's order of checks: missing prefix; nothing after it; no `/`;
    empty namespace; empty claim after `:`; more than one `:`; a bad namespace; empty claim;
    empty sub-path.
    """
    if not uri.startswith(PVC_PREFIX):
        raise PvcUriError(f"{uri!r} is not a pvc:// URI (it must start with {PVC_PREFIX})")
    rest = uri[len(PVC_PREFIX) :]
    if not rest:
        raise PvcUriError(f"{uri!r} has nothing after pvc://; expected pvc://<claim>/<sub-path>")
    head, slash, sub_path = rest.partition("/")
    if not slash:
        raise PvcUriError(f"{uri!r} has no sub-path; expected pvc://<claim>/<sub-path>")
    namespace: str | None = None
    if ":" in head:
        namespace, _, claim = head.partition(":")
        if not namespace:
            raise PvcUriError(f"{uri!r} has an empty namespace before ':'")
        if not claim:
            raise PvcUriError(f"{uri!r} has an empty claim name after ':'")
        if ":" in claim:
            raise PvcUriError(f"{uri!r} has more than one ':'; expected <namespace>:<claim>")
        if not _OME_NAMESPACE.fullmatch(namespace):
            raise PvcUriError(
                f"{uri!r} has an invalid namespace {namespace!r} "
                "(1-63 lower-case letters, digits or '-', not starting or ending with '-')"
            )
    else:
        claim = head
        if not claim:
            raise PvcUriError(f"{uri!r} names no claim; expected pvc://<claim>/<sub-path>")
    if not sub_path:
        raise PvcUriError(f"{uri!r} has an empty sub-path; expected pvc://<claim>/<sub-path>")
    return PvcUri(namespace, claim, sub_path)


def strict_problems(parsed: PvcUri) -> list[str]:
    """What the plugin's stricter rules find wrong with a URI OME accepts (empty: fine)."""
    problems = []
    if len(parsed.claim) > DNS1123_SUBDOMAIN_MAX or not _DNS1123_SUBDOMAIN.fullmatch(parsed.claim):
        problems.append(
            f"claim name {parsed.claim!r} is not a valid object name "
            "(lower-case letters, digits, '-' and '.', starting and ending alphanumeric)"
        )
    sub = parsed.sub_path
    if sub.startswith("/"):
        problems.append(f"sub-path {sub!r} starts with '/'")
    if sub.endswith("/"):
        problems.append(f"sub-path {sub!r} ends with '/'")
    if "//" in sub:
        problems.append(f"sub-path {sub!r} contains '//'")
    if ".." in sub.split("/"):
        problems.append(f"sub-path {sub!r} contains a '..' segment (it could leave the claim)")
    return problems


def check_pvc_uri_strict(uri_or_parsed: str | PvcUri) -> PvcUri:
    """Parse (if needed) and apply the plugin's rules on top of OME's; raise PvcUriError."""
    parsed = uri_or_parsed if isinstance(uri_or_parsed, PvcUri) else parse_pvc_uri(uri_or_parsed)
    problems = strict_problems(parsed)
    if problems:
        raise PvcUriError(f"{parsed}: " + "; ".join(problems))
    return parsed


def format_pvc_uri(namespace: str | None, claim: str, sub_path: str) -> str:
    """`pvc://<namespace>:<claim>/<sub_path>`, or `pvc://<claim>/<sub_path>` without namespace."""
    head = f"{namespace}:{claim}" if namespace else claim
    return f"{PVC_PREFIX}{head}/{sub_path}"


def model_pvc_uri(kind: ModelKind | str, claim_namespace: str, claim: str, sub_path: str) -> str:
    """The `pvc://` URI OME `main` accepts for a model of `kind` on this claim and sub-path.

    ClusterBaseModel: `pvc://<claim_namespace>:<claim>/<sub_path>`. BaseModel:
    `pvc://<claim>/<sub_path>`; the model must live in `claim_namespace` (OME uses its own).
    """
    if ModelKind(kind) is ModelKind.CLUSTER:
        if not claim_namespace:
            raise PvcUriError("a ClusterBaseModel's pvc:// URI needs the claim's namespace")
        return format_pvc_uri(claim_namespace, claim, sub_path)
    return format_pvc_uri(None, claim, sub_path)


def kind_problem(kind: ModelKind | str, parsed: PvcUri) -> str | None:
    """Why OME `main` refuses this parsed URI for a model of `kind` (None: it does not)."""
    if ModelKind(kind) is ModelKind.CLUSTER and not parsed.namespace:
        return (
            "a ClusterBaseModel's pvc:// URI must name the claim's namespace: "
            f"pvc://<namespace>:{parsed.claim}/{parsed.sub_path}"
        )
    if ModelKind(kind) is ModelKind.NAMESPACED and parsed.namespace:
        return (
            "a BaseModel's pvc:// URI must not name a namespace (OME uses the model's own): "
            f"pvc://{parsed.claim}/{parsed.sub_path}"
        )
    return None


def parse_model_pvc_uri(kind: ModelKind | str, uri: str) -> PvcUri:
    """Parse as OME's webhook does for a model of `kind`: the parser, then the kind's rule."""
    parsed = parse_pvc_uri(uri)
    problem = kind_problem(kind, parsed)
    if problem:
        raise PvcUriError(f"{uri!r}: {problem}")
    return parsed


ELLIPSIS = "..."


def shorten_uri(uri: str, width: int) -> str:
    """Fit a URI in `width` characters for a table: keep the scheme and the tail.

    The tail (model name, sub-path) tells URIs apart; the middle (bucket, namespace) gives way.
    """
    if width <= 0:
        return ""
    if len(uri) <= width:
        return uri
    if width <= len(ELLIPSIS):
        return uri[:width]
    scheme = scheme_of(uri)
    head = scheme.prefix
    if len(head) + len(ELLIPSIS) + 1 > width:
        head = ""
    tail_len = width - len(head) - len(ELLIPSIS)
    return f"{head}{ELLIPSIS}{uri[-tail_len:]}"
