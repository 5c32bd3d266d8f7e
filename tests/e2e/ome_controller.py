"""OME-shaped setups for the plain e2e tier: what OME would have written, without OME.

The model, the isvc, then its workloads with a controller ownerReference carrying the isvc's
uid, a local claim, the agents' node labels. Nothing here re-enacts OME's behaviour any more:
OME v0.1.5's own manager and model-agents run in tests/ome (hack/ome), and what they do (the
engine Deployment, reverts of hand edits, rewrites after isvc changes, per-node model state) is
tested there. These setups remain for what has no source here: OME `main`'s native pvc:// route
(test_unpatch's native test), and for tests of the plugin's own writes that need no controller.

`update` alone stays of the old re-enactment: OME's full Update of the engine (its own metadata
replacing the live annotations), which the fault tests need at one exact moment and the real
manager cannot be told to send then.

It renders workloads on its own, from OME v0.1.5's source (`components/base.go`: the model's
hostPath volume appended, its read-only mount on `ome-container`, `MODEL_PATH`, the nodeSelector
on the model label; `reconcilers/deployment`: `app` label and selector) and not with
`tests/factories.py`: the unit tests build their OME objects with that factory, and a setup
sharing it would confirm the factory's mistakes instead of catching them.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from typing import Any

from kubectl_omepvc import errors
from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import manifests
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.naming import ModelKind

Obj = dict[str, Any]
MODELS_ROOT = "/raid/models"  # OME's kustomize default for the model-agent's host directory
COMPONENT_LABEL = "component"
OME_API_VERSION = "ome.io/v1beta1"
ENGINE_IMAGE = "docker.io/lmsysorg/sglang:v0.4.6"
DSHM_VOLUME: Obj = {"name": "dshm", "emptyDir": {"medium": "Memory"}}  # the runtime's shm
DSHM_MOUNT: Obj = {"name": "dshm", "mountPath": "/dev/shm"}
LABEL_NAME_MAX = 49  # constants.MaxLabelNameLength: 63 - len("models.ome.io") - 1


# --- OME's rendering ---------------------------------------------------------------------------


def ome_label_key(kind: ModelKind, model: str, namespace: str) -> str:
    """constants.GetClusterBaseModelLabel / GetBaseModelLabel, for names that fit unshortened
    (the re-enactment's setups use short names; OME hashes longer ones)."""
    if kind is ModelKind.CLUSTER:
        name = f"clusterbasemodel.{model}"
    else:
        name = f"{namespace}.basemodel.{model}"
    if len(name) > LABEL_NAME_MAX:
        raise AssertionError(f"re-enactment renders short label names only, not {name}")
    return f"models.ome.io/{name}"


def render_deployment(
    isvc: Obj,
    model: Obj,
    kind: ModelKind,
    component: str = "engine",
    *,
    runtime_volumes: Sequence[Obj] = (DSHM_VOLUME,),
    replicas: int = 1,
) -> Obj:
    """The `<isvc>-<component>` Deployment OME v0.1.5 renders for the isvc's model.

    The runtime's volumes come first and the model's hostPath is appended (its index varies);
    `app` is the only selector key. The router gets only the volume (`router.go` calls
    UpdatePodSpecVolumes alone): no mount, no MODEL_PATH, no nodeSelector on the model label.
    A model without `storage.path` (a pvc:// model) gets no volume, mount or MODEL_PATH, and
    keeps the nodeSelector (seen on v0.1.5's real manager: shared/reference/ome.md).
    """
    isvc_name, namespace = isvc["metadata"]["name"], isvc["metadata"]["namespace"]
    model_name = model["metadata"]["name"]
    path = model["spec"]["storage"].get("path")
    name = f"{isvc_name}-{component}"
    labels = {
        "app": name,
        "ome.io/inferenceservice": isvc_name,
        COMPONENT_LABEL: component,
        "base-model-name": model_name,
    }
    mounts = [dict(DSHM_MOUNT)] if any(v["name"] == "dshm" for v in runtime_volumes) else []
    container: Obj = {"name": "ome-container", "image": ENGINE_IMAGE}
    if component == "router":
        container["name"] = "router"
    elif path:
        container["env"] = [{"name": "MODEL_PATH", "value": path}]
        mounts.append({"name": model_name, "mountPath": path, "readOnly": True})
    if mounts:
        container["volumeMounts"] = mounts
    pod_spec: Obj = {
        "containers": [container],
        "volumes": [
            *(dict(v) for v in runtime_volumes),
            *([{"name": model_name, "hostPath": {"path": path, "type": ""}}] if path else []),
        ],
    }
    if component != "router":
        pod_spec["nodeSelector"] = {ome_label_key(kind, model_name, namespace): "Ready"}
    owner = {
        "apiVersion": OME_API_VERSION,
        "kind": "InferenceService",
        "name": isvc_name,
        "uid": isvc["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": {
                "ome.io/deploymentMode": "RawDeployment",
                "ome.io/base-model-name": model_name,
                "ome.io/serving-runtime": "srt-llama",
            },
            "ownerReferences": [owner],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": pod_spec,
            },
        },
    }


# --- OME's full Update ---------------------------------------------------------------------------


def _model_of(client: Client, isvc: Obj) -> tuple[ModelKind, Obj]:
    ref = isvc["spec"].get("model") or {}
    name = ref.get("name") or isvc["spec"].get("baseModel")
    namespace = isvc["metadata"]["namespace"]
    kind = ref.get("kind")
    if kind in (None, ModelKind.NAMESPACED.value):
        found = client.get_or_none(r.BASE_MODELS, name, namespace)
        if found is not None:
            return ModelKind.NAMESPACED, found
    if kind in (None, ModelKind.CLUSTER.value):
        found = client.get_or_none(r.CLUSTER_BASE_MODELS, name)
        if found is not None:
            return ModelKind.CLUSTER, found
    raise AssertionError(f"no BaseModel or ClusterBaseModel with the name: {name}")


def desired_engine(client: Client, namespace: str, isvc_name: str) -> Obj:
    """The engine Deployment OME renders for the isvc's current model (hostPath model)."""
    isvc = client.get(r.INFERENCE_SERVICES, isvc_name, namespace)
    kind, model = _model_of(client, isvc)
    return render_deployment(isvc, model, kind)


def update(client: Client, namespace: str, isvc_name: str) -> Obj:
    """OME's full Update of the engine with its desired object (what it sends on a difference,
    e.g. after the isvc changed): OME's own metadata replaces the live labels and annotations."""
    desired = desired_engine(client, namespace, isvc_name)
    name = desired["metadata"]["name"]
    for _ in range(5):
        live = client.get(r.DEPLOYMENTS, name, namespace)
        desired["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        desired["spec"]["replicas"] = live["spec"].get("replicas")
        try:
            return client.replace(r.DEPLOYMENTS, desired, namespace)
        except errors.Conflict:
            time.sleep(0.05)
    raise AssertionError(f"update of {name} kept conflicting")


# --- OME-shaped setups -------------------------------------------------------------------------


@dataclasses.dataclass
class Isvc:
    """An InferenceService created as OME users and OME would, and what tests need of it."""

    client: Client
    namespace: str
    name: str
    uid: str
    model: str
    model_kind: ModelKind
    model_path: str
    label_key: str
    isvc: Obj  # as the server returned it
    model_object: Obj
    workloads: list[str] = dataclasses.field(default_factory=list)  # "kind/name"

    def get(self) -> Obj:
        return self.client.get(r.INFERENCE_SERVICES, self.name, self.namespace)

    def deployment(self, component: str = "engine") -> Obj:
        return self.client.get(r.DEPLOYMENTS, f"{self.name}-{component}", self.namespace)


def create_model(
    client: Client,
    namespace: str,
    name: str,
    *,
    kind: ModelKind = ModelKind.NAMESPACED,
    path: str | None = "",
    uri: str | None = None,
) -> Obj:
    """A BaseModel (or ClusterBaseModel) without finalizers (no OME controller removes them);
    `path=""` means `/raid/models/<namespace>/<name>` (`meta` for a ClusterBaseModel), None
    none."""
    storage: Obj = {"storageUri": uri if uri is not None else f"hf://meta-llama/{name}"}
    if path is not None:
        folder = namespace if kind is ModelKind.NAMESPACED else "meta"
        storage["path"] = path or f"{MODELS_ROOT}/{folder}/{name}"
    metadata: Obj = {"name": name}
    if kind is ModelKind.NAMESPACED:
        metadata["namespace"] = namespace
    model = {
        "apiVersion": OME_API_VERSION,
        "kind": kind.value,
        "metadata": metadata,
        "spec": {"vendor": "meta", "modelFormat": {"name": "safetensors"}, "storage": storage},
    }
    ref = r.BASE_MODELS if kind is ModelKind.NAMESPACED else r.CLUSTER_BASE_MODELS
    return client.create(ref, model, namespace if kind is ModelKind.NAMESPACED else None)


def create_isvc(
    client: Client,
    namespace: str,
    name: str,
    model: str,
    *,
    kind: ModelKind = ModelKind.NAMESPACED,
    path: str | None = "",
    uri: str | None = None,
    create_the_model: bool = True,
) -> Isvc:
    """The model (unless it exists) and an isvc naming it by kind."""
    if create_the_model:
        created = create_model(client, namespace, model, kind=kind, path=path, uri=uri)
    else:
        ref = r.BASE_MODELS if kind is ModelKind.NAMESPACED else r.CLUSTER_BASE_MODELS
        created = client.get(ref, model, namespace if kind is ModelKind.NAMESPACED else None)
    isvc = {
        "apiVersion": OME_API_VERSION,
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"name": model, "kind": kind.value},
            "engine": {"minReplicas": 1, "maxReplicas": 1},
        },
    }
    answer = client.create(r.INFERENCE_SERVICES, isvc, namespace)
    model_path = str((created["spec"]["storage"]).get("path") or "")
    return Isvc(
        client=client,
        namespace=namespace,
        name=name,
        uid=answer["metadata"]["uid"],
        model=model,
        model_kind=kind,
        model_path=model_path,
        label_key=ome_label_key(kind, model, namespace),
        isvc=answer,
        model_object=created,
    )


def component_deployment(
    isvc: Isvc,
    component: str = "engine",
    *,
    extra_volumes: Sequence[Obj] = (DSHM_VOLUME,),
    replicas: int = 1,
) -> Obj:
    """OME's `<isvc>-<component>` Deployment; the router has the volume but mounts nothing."""
    return render_deployment(
        isvc.isvc,
        isvc.model_object,
        isvc.model_kind,
        component,
        runtime_volumes=extra_volumes,
        replicas=replicas,
    )


def create_workload(isvc: Isvc, workload: Obj) -> Obj:
    ref = r.DEPLOYMENTS if workload["kind"] == "Deployment" else r.LEADER_WORKER_SETS
    answer = isvc.client.create(ref, workload, isvc.namespace)
    isvc.workloads.append(f"{workload['kind'].lower()}/{workload['metadata']['name']}")
    return answer


def leader_worker_set(isvc: Isvc) -> Obj:
    """OME's MultiNode workload `lws-<isvc>-engine`: the engine's pod template as leader and
    worker, the model volume and label on both."""
    engine = component_deployment(isvc)
    template = engine["spec"]["template"]
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {**engine["metadata"], "name": f"lws-{isvc.name}-engine"},
        "spec": {
            "replicas": 1,
            "leaderWorkerTemplate": {
                "size": 2,
                "leaderTemplate": json.loads(json.dumps(template)),
                "workerTemplate": json.loads(json.dumps(template)),
            },
        },
    }


# --- claims --------------------------------------------------------------------------------------


def create_local_claim(
    client: Client,
    namespace: str,
    claim: str,
    *,
    root: str = MODELS_ROOT,
    nodes: Sequence[str] = ("gpu-node-1", "gpu-node-2", "gpu-node-3"),
    access_mode: manifests.AccessMode = manifests.AccessMode.READ_ONLY_MANY,
    wait_bound: bool = True,
) -> tuple[Obj, Obj]:
    """A local PV on `root` pinned to `nodes` and a claim bound to it (the PV must be deleted
    by the caller: it outlives the namespace)."""
    request = manifests.ClaimRequest(
        claim=claim,
        namespace=namespace,
        size="10Gi",
        source=manifests.LocalSource(root, tuple(nodes)),
        access_mode=access_mode,
        storage_class=None,
    )
    pv = client.create(r.PVS, manifests.persistent_volume(request))
    pvc = client.create(r.PVCS, manifests.persistent_volume_claim(request), namespace)
    if wait_bound:
        pvc = wait_for(
            lambda: client.get(r.PVCS, claim, namespace),
            lambda c: (c.get("status") or {}).get("phase") == "Bound",
            what=f"claim {claim} to bind",
        )
    return pv, pvc


def wait_for(read: Any, ok: Any, *, what: str, timeout: float = 30.0, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {value}")
        time.sleep(every)


def label_nodes(client: Client, key: str, value: str | None, nodes: Sequence[str]) -> None:
    """Set (or with None remove) a node label, as OME's model-agent does."""
    for node in nodes:
        client.patch(
            r.NODES,
            node,
            {"metadata": {"labels": {key: value}}},
            content_type="application/merge-patch+json",
        )
