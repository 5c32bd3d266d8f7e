"""OME-shaped setups for the plain e2e tier: what OME would have written, without OME.

The model, the isvc, then its workloads with a controller ownerReference carrying the isvc's
uid, a local claim, the agents' node labels. Nothing here re-enacts OME's behaviour any more:
OME v0.1.5's own manager and model-agents run in tests/ome (hack/ome), and what they do (the
engine Deployment, reverts of hand edits, rewrites after isvc changes, per-node model state) is
tested there. These setups remain for what has no source here: OME `main`'s native pvc:// route
(test_unpatch's native test), and for tests of the plugin's own writes that need no controller.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import manifests, naming
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.naming import ModelKind
from tests import factories

Obj = dict[str, Any]
MODELS_ROOT = factories.MODELS_ROOT
COMPONENT_LABEL = "component"


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
    """A BaseModel (or ClusterBaseModel) without finalizers (no OME controller removes them)."""
    if kind is ModelKind.NAMESPACED:
        model = factories.base_model(namespace, name, path=path, uri=uri)
    else:
        model = factories.cluster_base_model(name, path=path, uri=uri)
    model["metadata"].pop("finalizers", None)
    model["metadata"].pop("creationTimestamp", None)
    model.pop("status", None)
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
    isvc = factories.inference_service(namespace, name, model, kind=kind)
    del isvc["metadata"]["uid"]
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
        label_key=naming.model_label_key(
            kind, model, namespace if kind is ModelKind.NAMESPACED else None
        ),
    )


def component_deployment(
    isvc: Isvc,
    component: str = "engine",
    *,
    extra_volumes: Sequence[Obj] = (factories.DSHM_VOLUME,),
    replicas: int = 1,
) -> Obj:
    """OME's `<isvc>-<component>` Deployment; the router has the volume but mounts nothing."""
    engine = factories.engine_deployment(
        isvc.name,
        isvc.model,
        isvc.model_path,
        namespace=isvc.namespace,
        model_kind=isvc.model_kind,
        isvc_uid=isvc.uid,
        extra_volumes=extra_volumes,
        extra_mounts=[factories.DSHM_MOUNT]
        if any(v["name"] == "dshm" for v in extra_volumes)
        else [],
        replicas=replicas,
    )
    engine.pop("status")
    if component == "engine":
        return engine
    name = f"{isvc.name}-{component}"
    meta = engine["metadata"]
    meta["name"] = name
    for labels in (meta["labels"], engine["spec"]["template"]["metadata"]["labels"]):
        labels["app"] = name
        labels[COMPONENT_LABEL] = component
    engine["spec"]["selector"]["matchLabels"]["app"] = name
    if component == "router":
        container = engine["spec"]["template"]["spec"]["containers"][0]
        container["name"] = "router"
        container["volumeMounts"] = [
            m for m in container["volumeMounts"] if m["name"] != isvc.model
        ] or None
        if container["volumeMounts"] is None:
            del container["volumeMounts"]
    return engine


def create_workload(isvc: Isvc, workload: Obj) -> Obj:
    ref = r.DEPLOYMENTS if workload["kind"] == "Deployment" else r.LEADER_WORKER_SETS
    answer = isvc.client.create(ref, workload, isvc.namespace)
    isvc.workloads.append(f"{workload['kind'].lower()}/{workload['metadata']['name']}")
    return answer


def leader_worker_set(isvc: Isvc) -> Obj:
    lws = factories.leader_worker_set(
        isvc.name, isvc.model, isvc.model_path, namespace=isvc.namespace
    )
    lws.pop("status")
    lws["metadata"]["ownerReferences"][0]["uid"] = isvc.uid
    # OME's label key for this model kind (the factory assumes a ClusterBaseModel)
    for template in lws["spec"]["leaderWorkerTemplate"].values():
        if isinstance(template, dict):
            template["spec"]["nodeSelector"] = {isvc.label_key: "Ready"}
    return lws


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
