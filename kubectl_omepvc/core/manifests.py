"""The objects `create` applies: a PV/PVC pair for model weights, a StorageClass, a pvc:// model.

Pure renderers: a `ClaimRequest` in, plain dicts ready for server-side apply out. The validators
raise `InputError` so the command can refuse bad input before it writes anything.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import hashlib
import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.quantity import QuantityError, parse_bytes, parse_quantity
from kubectl_omepvc.core.storage_uri import model_pvc_uri
from kubectl_omepvc.errors import InputError

FIELD_MANAGER = "kubectl-ome-pvc"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "kubectl-ome-pvc"
MODEL_LABEL = "ome-pvc.io/model"
MODEL_KIND_LABEL = "ome-pvc.io/model-kind"
MODEL_NAMESPACE_LABEL = "ome-pvc.io/model-namespace"
CLAIM_LABEL = "ome-pvc.io/claim"
CLAIM_NAMESPACE_LABEL = "ome-pvc.io/claim-namespace"
SUB_PATH_ANNOTATION = "ome-pvc.io/sub-path"
URI_ANNOTATION = "ome-pvc.io/uri"
HOSTNAME_LABEL = "kubernetes.io/hostname"
DEFAULT_LOCAL_STORAGE_CLASS = "local-storage"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
OME_API_VERSION = "ome.io/v1beta1"
PV_PREFIX = "ome-pvc"

# Kubernetes limits: names of most objects are DNS-1123 subdomains, namespaces are labels.
MAX_SUBDOMAIN = 253
MAX_LABEL = 63
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_LABEL_RE = re.compile(_DNS_LABEL)
_DNS_SUBDOMAIN_RE = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
_LABEL_VALUE_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_NFS_SERVER_RE = re.compile(r"[A-Za-z0-9.:\[\]_-]+")  # host name, IPv4 or [IPv6]
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


class AccessMode(str, enum.Enum):
    READ_ONLY_MANY = "ReadOnlyMany"
    READ_WRITE_MANY = "ReadWriteMany"
    READ_WRITE_ONCE = "ReadWriteOnce"
    READ_WRITE_ONCE_POD = "ReadWriteOncePod"


@dataclasses.dataclass(frozen=True)
class LocalSource:
    """A directory that exists at the same path on each of `nodes`."""

    path: str
    nodes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class NfsSource:
    server: str
    path: str


@dataclasses.dataclass(frozen=True)
class ClassSource:
    """Dynamic provisioning from an existing StorageClass: a claim and no PV of ours."""

    storage_class: str


StorageSource: TypeAlias = LocalSource | NfsSource | ClassSource


@dataclasses.dataclass(frozen=True)
class ModelRef:
    kind: ModelKind
    name: str
    namespace: str | None = None  # only for a BaseModel


@dataclasses.dataclass(frozen=True)
class ClaimRequest:
    """Everything `create` needs to render the PV and the PVC."""

    claim: str
    namespace: str
    size: str  # a Kubernetes quantity, kept as the user wrote it
    source: StorageSource
    access_mode: AccessMode = AccessMode.READ_ONLY_MANY
    # The class for a local PV; None (`--no-storage-class`) leaves the PV and claim classless.
    storage_class: str | None = DEFAULT_LOCAL_STORAGE_CLASS
    model: ModelRef | None = None
    sub_path: str | None = None  # the model's directory relative to the PV root


# --- names and label values -------------------------------------------------------------------


def _short_hash(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _shorten(text: str, limit: int, key: str) -> str:
    """`text` cut to fit `limit` with a hash of `key` at the end, so distinct keys stay distinct."""
    digest = _short_hash(key, 10)
    head = text[: limit - len(digest) - 1].rstrip("-._")
    return f"{head}-{digest}" if head else digest


def pv_name(namespace: str, claim: str) -> str:
    """`ome-pvc-<ns>-<claim>`, hash-shortened to 63 characters.

    63 rather than the 253 a PV name may have, so the name also fits wherever a label value
    is needed (a selector on the PV name, for one).
    """
    name = f"{PV_PREFIX}-{namespace}-{claim}"
    if len(name) <= MAX_LABEL:
        return name
    return _shorten(name, MAX_LABEL, f"{namespace}/{claim}")


def label_value(text: str) -> str:
    """`text` if it is a valid label value, else a readable prefix plus a hash (<= 63 chars)."""
    if len(text) <= MAX_LABEL and (text == "" or _LABEL_VALUE_RE.fullmatch(text)):
        return text
    cleaned = re.sub(r"[^-A-Za-z0-9_.]", "-", text).lstrip("-._")
    return _shorten(cleaned, MAX_LABEL, text)


def pvc_uri(kind: ModelKind | str, namespace: str, claim: str, sub_path: str) -> str:
    """The pvc:// URI of a model of `kind` on claim `namespace/claim` (`model_pvc_uri`), after
    the plugin's check of the sub-path."""
    validate_sub_path(sub_path)
    return model_pvc_uri(kind, namespace, claim, sub_path)


def _model_labels(model: ModelRef | None) -> dict[str, str]:
    labels = {MANAGED_BY_LABEL: MANAGED_BY}
    if model is not None:
        labels[MODEL_LABEL] = label_value(model.name)
        labels[MODEL_KIND_LABEL] = ModelKind(model.kind).value
        if model.namespace:
            labels[MODEL_NAMESPACE_LABEL] = model.namespace
    return labels


def recorded_model(obj: Mapping[str, Any]) -> ModelRef | None:
    """The model `create` recorded in an object's labels (what `_model_labels` wrote)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    name = labels.get(MODEL_LABEL)
    if not name:
        return None
    if labels.get(MODEL_KIND_LABEL) == ModelKind.NAMESPACED.value:
        return ModelRef(ModelKind.NAMESPACED, str(name), labels.get(MODEL_NAMESPACE_LABEL))
    return ModelRef(ModelKind.CLUSTER, str(name))


def claim_storage_class(req: ClaimRequest) -> str:
    """The storageClassName both objects carry; "" keeps the default class away from them."""
    if isinstance(req.source, ClassSource):
        return req.source.storage_class
    if isinstance(req.source, LocalSource):
        return req.storage_class or ""
    return ""


# --- renderers ---------------------------------------------------------------------------------


def persistent_volume(req: ClaimRequest) -> dict[str, Any]:
    """The PV for a local or NFS source, pre-bound to the request's claim."""
    spec: dict[str, Any] = {
        "capacity": {"storage": req.size},
        "accessModes": [AccessMode(req.access_mode).value],
        "volumeMode": "Filesystem",
        "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": claim_storage_class(req),
        "claimRef": {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "namespace": req.namespace,
            "name": req.claim,
        },
    }
    source = req.source
    if isinstance(source, LocalSource):
        spec["local"] = {"path": source.path}
        spec["nodeAffinity"] = {
            "required": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": HOSTNAME_LABEL,
                                "operator": "In",
                                # Sorted so a re-run with the nodes in another order is a no-op.
                                "values": sorted(set(source.nodes)),
                            }
                        ]
                    }
                ]
            }
        }
    elif isinstance(source, NfsSource):
        nfs: dict[str, Any] = {"server": source.server, "path": source.path}
        if req.access_mode == AccessMode.READ_ONLY_MANY:
            nfs["readOnly"] = True
        spec["nfs"] = nfs
    else:
        raise ValueError("a StorageClass source has no PV of ours: render only the claim")
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv_name(req.namespace, req.claim), "labels": _model_labels(req.model)},
        "spec": spec,
    }


def persistent_volume_claim(req: ClaimRequest, volume_name: str | None = None) -> dict[str, Any]:
    """The claim; for local and NFS sources bound by `volumeName` to our PV (derived if None)."""
    metadata: dict[str, Any] = {
        "name": req.claim,
        "namespace": req.namespace,
        "labels": _model_labels(req.model),
    }
    if req.sub_path:
        metadata["annotations"] = {
            SUB_PATH_ANNOTATION: req.sub_path,
            # the fully qualified form (a ClusterBaseModel's); a BaseModel drops "<ns>:"
            URI_ANNOTATION: pvc_uri(ModelKind.CLUSTER, req.namespace, req.claim, req.sub_path),
        }
    spec: dict[str, Any] = {
        "accessModes": [AccessMode(req.access_mode).value],
        "volumeMode": "Filesystem",
        "resources": {"requests": {"storage": req.size}},
        # Always explicit: an absent class would let the default StorageClass take the claim.
        "storageClassName": claim_storage_class(req),
    }
    if not isinstance(req.source, ClassSource):
        spec["volumeName"] = volume_name or pv_name(req.namespace, req.claim)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata,
        "spec": spec,
    }


def local_storage_class(name: str = DEFAULT_LOCAL_STORAGE_CLASS) -> dict[str, Any]:
    """A class for pre-made local PVs: nothing provisions, binding waits for the first pod."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
        "provisioner": NO_PROVISIONER,
        "volumeBindingMode": "WaitForFirstConsumer",
    }


# Descriptive BaseModelSpec fields a pvc:// model may take over from the model it replaces.
# An allow-list, so storage (path, nodeSelector, nodeAffinity, key), `disabled` and the per-node
# `distribution` can never leak into the copy.
COPIED_MODEL_FIELDS = (
    "modelFormat",
    "modelType",
    "modelFramework",
    "modelArchitecture",
    "quantization",
    "modelParameterSize",
    "modelCapabilities",
    "modelConfiguration",
    "apiCapabilities",
    "diffusionPipeline",
    "displayName",
    "version",
    "vendor",
    "servingMode",
    "maxTokens",
    "additionalMetadata",
)


def pvc_model(
    kind: ModelKind | str,
    name: str,
    namespace: str | None,
    claim_namespace: str,
    claim: str,
    sub_path: str,
    copy_from: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ClusterBaseModel (namespace None) or BaseModel whose storage is `pvc://` and no path."""
    model_kind = ModelKind(kind)
    if model_kind == ModelKind.NAMESPACED:
        if not namespace:
            raise InputError(f"BaseModel {name!r} needs a namespace", "pass -n NAMESPACE")
        if namespace != claim_namespace:
            # OME looks a BaseModel's claim up in the model's own namespace.
            raise InputError(
                f"BaseModel {namespace}/{name} cannot use claim {claim_namespace}/{claim}",
                "a BaseModel reads claims in its own namespace: create the claim there, "
                "or register a ClusterBaseModel",
            )
    elif namespace:
        raise InputError(f"ClusterBaseModel {name!r} is cluster-scoped", "do not pass a namespace")
    spec: dict[str, Any] = {}
    source_spec = (copy_from or {}).get("spec") or {}
    for field in COPIED_MODEL_FIELDS:
        if field in source_spec:
            spec[field] = copy.deepcopy(source_spec[field])
    spec["storage"] = {"storageUri": pvc_uri(model_kind, claim_namespace, claim, sub_path)}
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {
            MANAGED_BY_LABEL: MANAGED_BY,
            CLAIM_LABEL: label_value(claim),
            CLAIM_NAMESPACE_LABEL: claim_namespace,
        },
    }
    if model_kind == ModelKind.NAMESPACED:
        metadata["namespace"] = namespace
    return {
        "apiVersion": OME_API_VERSION,
        "kind": model_kind.value,
        "metadata": metadata,
        "spec": spec,
    }


# --- validation (raises InputError before anything is written) -------------------------------


def validate_dns_subdomain(value: str, what: str) -> str:
    """Names of claims, PVs, models, classes: lowercase DNS-1123 subdomain, <= 253 chars."""
    if len(value) > MAX_SUBDOMAIN or not _DNS_SUBDOMAIN_RE.fullmatch(value):
        raise InputError(
            f"{what} {value!r} is not a valid name",
            "use lowercase letters, digits, '-' and '.', starting and ending with a letter or "
            f"digit, at most {MAX_SUBDOMAIN} characters (DNS-1123 subdomain)",
        )
    return value


def validate_dns_label(value: str, what: str) -> str:
    """Namespaces: lowercase DNS-1123 label, <= 63 chars, no dots."""
    if len(value) > MAX_LABEL or not _DNS_LABEL_RE.fullmatch(value):
        raise InputError(
            f"{what} {value!r} is not a valid name",
            "use lowercase letters, digits and '-', starting and ending with a letter or digit, "
            f"at most {MAX_LABEL} characters (DNS-1123 label)",
        )
    return value


def validate_absolute_path(path: str, what: str) -> str:
    """An absolute, normalised path: no `..`, no `.`, no `//`, no trailing `/`."""
    if not path.startswith("/"):
        raise InputError(
            f"{what} {path!r} is not absolute", "give the full path, such as /raid/models"
        )
    if _CONTROL_CHARS.search(path):
        raise InputError(f"{what} {path!r} contains control characters", "give a plain path")
    if ".." in path.split("/"):
        raise InputError(f"{what} {path!r} contains '..'", "give the path without '..'")
    normal = posixpath.normpath(re.sub("/+", "/", path))
    if normal != path:
        raise InputError(f"{what} {path!r} is not normalised", f"write it as {normal}")
    return path


def validate_sub_path(sub_path: str) -> str:
    """A path relative to the volume root: not empty, no leading `/`, no `..`, normalised."""
    if not sub_path:
        raise InputError(
            "the sub-path is empty", "name the model's directory below the volume root"
        )
    if sub_path.startswith("/"):
        raise InputError(
            f"sub-path {sub_path!r} starts with '/'",
            f"give it relative to the volume root, such as {sub_path.lstrip('/') or 'meta/llama'}",
        )
    if _CONTROL_CHARS.search(sub_path):
        raise InputError(f"sub-path {sub_path!r} contains control characters", "give a plain path")
    if ".." in sub_path.split("/"):
        raise InputError(
            f"sub-path {sub_path!r} contains '..'", "a sub-path must stay inside the volume"
        )
    normal = posixpath.normpath(sub_path)
    if normal != sub_path or normal == ".":
        raise InputError(f"sub-path {sub_path!r} is not normalised", f"write it as {normal}")
    return sub_path


def model_sub_path(model_path: str, root: str) -> str:
    """The model's directory relative to the volume root; refuses a path outside the root."""
    validate_absolute_path(model_path, "model path")
    validate_absolute_path(root, "volume root")
    if model_path == root:
        raise InputError(
            f"model path {model_path} is the volume root itself",
            "use a parent directory as the root (such as the model-agent's models directory), "
            "so the model has a sub-path",
        )
    prefix = root if root.endswith("/") else root + "/"
    if not model_path.startswith(prefix):
        raise InputError(
            f"model path {model_path} is not under the volume root {root}",
            "pass --local-path with a directory that contains the model",
        )
    return validate_sub_path(model_path[len(prefix) :])


def validate_nodes(nodes: Sequence[str]) -> tuple[str, ...]:
    if not nodes:
        raise InputError(
            "a local volume needs at least one node", "pass --node NODE (repeat for more nodes)"
        )
    for node in nodes:
        validate_dns_subdomain(node, "node")
    return tuple(nodes)


def validate_nfs_server(server: str) -> str:
    if not server or not _NFS_SERVER_RE.fullmatch(server):
        raise InputError(
            f"NFS server {server!r} is not a host name or address",
            "pass --nfs-server HOST, such as nfs.example.internal or 10.0.0.5",
        )
    return server


def parse_access_mode(text: str) -> AccessMode:
    try:
        return AccessMode(text)
    except ValueError:
        allowed = ", ".join(mode.value for mode in AccessMode)
        raise InputError(f"access mode {text!r} is not known", f"use one of {allowed}") from None


def validate_size(text: str) -> int:
    """A positive Kubernetes quantity; returns it in bytes."""
    try:
        size = parse_bytes(text)
    except QuantityError as exc:
        raise InputError(f"size {text!r} is not valid", str(exc)) from None
    if size <= 0:
        raise InputError(f"size {text!r} is not positive", "give a size such as 100Gi")
    return size


def validate_claim_request(req: ClaimRequest) -> None:
    """Every check on a request that needs no cluster; the first failure raises InputError."""
    validate_dns_subdomain(req.claim, "claim name")
    validate_dns_label(req.namespace, "namespace")
    validate_size(req.size)
    mode = req.access_mode
    parse_access_mode(mode.value if isinstance(mode, AccessMode) else mode)
    if req.sub_path is not None:
        validate_sub_path(req.sub_path)
    if req.model is not None:
        validate_dns_subdomain(req.model.name, "model name")
        if req.model.namespace is not None:
            validate_dns_label(req.model.namespace, "model namespace")
    source = req.source
    if isinstance(source, LocalSource):
        validate_absolute_path(source.path, "local path")
        validate_nodes(source.nodes)
        if req.storage_class is not None:
            validate_dns_subdomain(req.storage_class, "storage class")
    elif isinstance(source, NfsSource):
        validate_nfs_server(source.server)
        validate_absolute_path(source.path, "NFS path")
    else:
        validate_dns_subdomain(source.storage_class, "storage class")


# --- comparing with what the cluster has -------------------------------------------------------

# Quantity leaves compared by value, so `1Ti` from the server equals `1024Gi` asked for.
_QUANTITY_PATHS = {("capacity", "storage"), ("requests", "storage")}
_OBJECT_META_KEYS = {"apiVersion", "kind", "metadata", "status"}
_OMITTED_WHEN_EMPTY: tuple[Any, ...] = ("", [], {})


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _same_quantity(a: Any, b: Any) -> bool:
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    try:
        return parse_quantity(a) == parse_quantity(b)
    except QuantityError:
        return False


def _differences(path: tuple[str, ...], have: Any, want: Any, out: list[str]) -> None:
    where = ".".join(path)
    if isinstance(want, Mapping):
        if not isinstance(have, Mapping):
            out.append(f"{where}: has {_show(have)}, wants {_show(want)}")
            return
        for key, wanted in want.items():
            if key not in have:
                # The server omits empty values (a PV's `storageClassName: ""` comes back absent).
                if wanted not in _OMITTED_WHEN_EMPTY:
                    out.append(f"{where}.{key}: not set, wants {_show(wanted)}")
            else:
                _differences((*path, str(key)), have[key], wanted, out)
        return
    if isinstance(want, list) and isinstance(have, list) and len(want) == len(have):
        # Element by element, so fields the server defaults inside list items are ignored.
        for index, (had, wanted) in enumerate(zip(have, want, strict=True)):
            _differences((*path[:-1], f"{path[-1]}[{index}]"), had, wanted, out)
        return
    if have == want or (path[-2:] in _QUANTITY_PATHS and _same_quantity(have, want)):
        return
    out.append(f"{where}: has {_show(have)}, wants {_show(want)}")


def spec_difference(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """Lines naming each field `desired` sets that `existing` has differently.

    Compares `spec` (or, for objects without one such as StorageClass, the top-level fields);
    fields only the server set (defaults, `claimRef.uid`, a bound `volumeName`) are ignored.
    """
    out: list[str] = []
    if "spec" in desired:
        _differences(("spec",), existing.get("spec") or {}, desired["spec"], out)
        return out
    for key, wanted in desired.items():
        if key in _OBJECT_META_KEYS:
            continue
        if key not in existing:
            out.append(f"{key}: not set, wants {_show(wanted)}")
        else:
            _differences((key,), existing[key], wanted, out)
    return out
