"""Where each resource type the plugin touches lives in the REST API."""

from __future__ import annotations

import dataclasses
from urllib.parse import quote

from kubectl_omepvc.core.naming import ModelKind


@dataclasses.dataclass(frozen=True)
class ResourceRef:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def display(self) -> str:
        """The name kubectl users type: `deployments.apps`, `persistentvolumeclaims`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            prefix += f"/namespaces/{quote(namespace, safe='')}"
        prefix += f"/{self.plural}"
        if name:
            prefix += f"/{quote(name, safe='')}"
        return prefix


OME_GROUP = "ome.io"
OME_VERSION = "v1beta1"

CLUSTER_BASE_MODELS = ResourceRef(
    OME_GROUP, OME_VERSION, "clusterbasemodels", "ClusterBaseModel", False
)
BASE_MODELS = ResourceRef(OME_GROUP, OME_VERSION, "basemodels", "BaseModel")
INFERENCE_SERVICES = ResourceRef(OME_GROUP, OME_VERSION, "inferenceservices", "InferenceService")
DEPLOYMENTS = ResourceRef("apps", "v1", "deployments", "Deployment")
DAEMON_SETS = ResourceRef("apps", "v1", "daemonsets", "DaemonSet")
LEADER_WORKER_SETS = ResourceRef(
    "leaderworkerset.x-k8s.io", "v1", "leaderworkersets", "LeaderWorkerSet"
)
KNATIVE_SERVICES = ResourceRef("serving.knative.dev", "v1", "services", "Service")
PVCS = ResourceRef("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim")
PVS = ResourceRef("", "v1", "persistentvolumes", "PersistentVolume", False)
NODES = ResourceRef("", "v1", "nodes", "Node", False)
CONFIG_MAPS = ResourceRef("", "v1", "configmaps", "ConfigMap")
PODS = ResourceRef("", "v1", "pods", "Pod")
POD_LOGS = ResourceRef("", "v1", "pods/log", "")  # for access checks; read with get_text
EVENTS = ResourceRef("", "v1", "events", "Event")
NAMESPACES = ResourceRef("", "v1", "namespaces", "Namespace", False)
JOBS = ResourceRef("batch", "v1", "jobs", "Job")
STORAGE_CLASSES = ResourceRef("storage.k8s.io", "v1", "storageclasses", "StorageClass", False)
CRDS = ResourceRef(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False
)


def model_resource(kind: ModelKind | str) -> ResourceRef:
    """ClusterBaseModels or BaseModels, by kind."""
    return CLUSTER_BASE_MODELS if ModelKind(kind) is ModelKind.CLUSTER else BASE_MODELS


def mutating_policies(version: str) -> ResourceRef:
    return ResourceRef(
        "admissionregistration.k8s.io",
        version,
        "mutatingadmissionpolicies",
        "MutatingAdmissionPolicy",
        False,
    )


def mutating_policy_bindings(version: str) -> ResourceRef:
    return ResourceRef(
        "admissionregistration.k8s.io",
        version,
        "mutatingadmissionpolicybindings",
        "MutatingAdmissionPolicyBinding",
        False,
    )
