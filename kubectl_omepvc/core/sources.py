"""The storage a claim comes from, as `create`'s flags name it, and what each can give (pure).

Flags that do not go together raise `FlagError` (the command reports it as a usage error,
exit 2), two storage sources at once included.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

from kubectl_omepvc.core.manifests import NO_PROVISIONER, AccessMode
from kubectl_omepvc.core.naming import ModelKind


class FlagError(ValueError):
    """Flags that cannot be combined, or a flag value of the wrong form (a usage error)."""


class Source(str, enum.Enum):
    """Which storage source the flags chose."""

    LOCAL = "local"
    FROM_MODEL = "from-model"
    NFS = "nfs"
    CLASS = "storage-class"


SOURCE_FLAGS = {
    Source.LOCAL: "--local-path/--node",
    Source.FROM_MODEL: "--from-model",
    Source.NFS: "--nfs-server/--nfs-path",
    Source.CLASS: "--storage-class",
}

KIND_WORDS = {
    "clusterbasemodel": ModelKind.CLUSTER,
    "clusterbasemodels": ModelKind.CLUSTER,
    "clusterbasemodel.ome.io": ModelKind.CLUSTER,
    "clusterbasemodels.ome.io": ModelKind.CLUSTER,
    "basemodel": ModelKind.NAMESPACED,
    "basemodels": ModelKind.NAMESPACED,
    "basemodel.ome.io": ModelKind.NAMESPACED,
    "basemodels.ome.io": ModelKind.NAMESPACED,
}

# Provisioners whose volumes attach to one node at a time (block devices, node-local disks):
# a ReadOnlyMany or ReadWriteMany claim from them stays Pending or fails to provision.
SINGLE_NODE_PROVISIONERS = frozenset(
    {
        "ebs.csi.aws.com",
        "kubernetes.io/aws-ebs",
        "pd.csi.storage.gke.io",
        "kubernetes.io/gce-pd",
        "disk.csi.azure.com",
        "kubernetes.io/azure-disk",
        "blockvolume.csi.oraclecloud.com",
        "oracle.com/oci",
        "cinder.csi.openstack.org",
        "dobs.csi.digitalocean.com",
        "rancher.io/local-path",
        "topolvm.io",
        "local.csi.openebs.io",
        "openebs.io/local",
    }
)
MULTI_NODE_MODES = (AccessMode.READ_ONLY_MANY, AccessMode.READ_WRITE_MANY)


def choose_source(
    *,
    local_path: str | None,
    nodes: Sequence[str],
    from_model: str | None,
    nfs_server: str | None,
    nfs_path: str | None,
    storage_class: str | None,
    no_storage_class: bool,
    sub_path: str | None,
) -> Source:
    """The one storage source the flags name.

    FlagError for none, for two at once, or for a flag that is missing its partner or does
    not go with the source.
    """
    given = [
        name
        for name, present in (
            (Source.FROM_MODEL, from_model is not None),
            (Source.NFS, nfs_server is not None or nfs_path is not None),
            (Source.CLASS, storage_class is not None),
        )
        if present
    ]
    if from_model is None and (local_path is not None or nodes):
        given.insert(0, Source.LOCAL)
    if not given:
        raise FlagError(
            "name one storage source: --local-path PATH --node NODE, --from-model NAME, "
            "--nfs-server HOST --nfs-path PATH, or --storage-class NAME"
        )
    if len(given) > 1:
        raise FlagError(
            f"one storage source per claim: {' and '.join(SOURCE_FLAGS[g] for g in given)} "
            "were both given; keep one of them"
        )
    source = given[0]
    if source == Source.LOCAL and local_path is None:
        raise FlagError("--node needs --local-path (the directory on those nodes)")
    if source == Source.LOCAL and not nodes:
        raise FlagError("--local-path needs --node NODE (repeat for each node that has it)")
    if source == Source.NFS and (nfs_server is None or nfs_path is None):
        raise FlagError("an NFS volume needs both --nfs-server HOST and --nfs-path PATH")
    if no_storage_class and source in (Source.NFS, Source.CLASS):
        raise FlagError(
            "--no-storage-class applies to local volumes (an NFS volume has no class; "
            "--storage-class names one)"
        )
    if source == Source.FROM_MODEL and sub_path is not None:
        raise FlagError("--sub-path comes from the model with --from-model: drop it")
    return source


def parse_model_ref(text: str, flag: str) -> tuple[ModelKind, str]:
    """`NAME` or `clusterbasemodel/NAME` → ClusterBaseModel; `basemodel/NAME` → BaseModel."""
    kind_text, slash, name = text.rpartition("/")
    if not slash:
        return ModelKind.CLUSTER, text
    kind = KIND_WORDS.get(kind_text.lower())
    if kind is None or not name:
        raise FlagError(
            f"{flag} {text!r}: use NAME, clusterbasemodel/NAME or basemodel/NAME "
            "(a BaseModel lives in the claim's namespace, -n)"
        )
    return kind, name


def class_access_warning(storage_class: Mapping[str, Any], mode: AccessMode) -> str | None:
    """Why a claim of `mode` from this class may never bind, if we can tell."""
    name = (storage_class.get("metadata") or {}).get("name")
    provisioner = str(storage_class.get("provisioner") or "")
    if provisioner == NO_PROVISIONER:
        return (
            f"StorageClass {name} provisions nothing ({provisioner}): the claim binds only to "
            "a PV someone creates for it"
        )
    if mode in MULTI_NODE_MODES and provisioner in SINGLE_NODE_PROVISIONERS:
        return (
            f"StorageClass {name} ({provisioner}) gives ReadWriteOnce volumes: a {mode.value} "
            "claim may never bind; use a shared file system class (NFS, CephFS, EFS, ...)"
        )
    return None
