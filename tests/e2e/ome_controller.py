"""OME's InferenceService controller, re-enacted for one engine Deployment, and OME-shaped setups.

`reconcile` does what OME's controller does on every event for a Deployment it owns (see
shared/reference/ome.md, "OME reverts hand edits"): build the desired hostPath Deployment from
the isvc and its model, send it as a dry-run Update carrying the live resourceVersion (so
admission, mutating policies included, and defaulting run on it), copy the live `replicas`,
compare the whole spec ignoring `replicas`, and on any difference send a full Update. It reads
the model the way OME does (a BaseModel in the isvc's namespace first, then a
ClusterBaseModel, unless `spec.model.kind` says which) and uses none of the plugin's code.

The setup helpers create what OME would have: the model, the isvc, then its workloads with a
controller ownerReference carrying the isvc's uid.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from typing import Any

from kubectl_omepvc import errors
from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import manifests, naming
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.naming import ModelKind
from tests import factories

Obj = dict[str, Any]
MODELS_ROOT = factories.MODELS_ROOT
COMPONENT_LABEL = "component"


# --- OME's reconcile ---------------------------------------------------------------------------


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
    path = model["spec"]["storage"]["path"]
    desired = factories.engine_deployment(
        isvc_name,
        model["metadata"]["name"],
        path,
        namespace=namespace,
        model_kind=kind,
        isvc_uid=isvc["metadata"]["uid"],
    )
    desired.pop("status")
    return desired


def _spec_without_replicas(obj: Obj) -> Obj:
    spec = json.loads(json.dumps(obj["spec"]))
    spec.pop("replicas", None)
    return dict(spec)


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


def reconcile(client: Client, namespace: str, isvc_name: str) -> bool:
    """One pass of OME's loop over the engine Deployment; True when it wrote (an Update)."""
    desired = desired_engine(client, namespace, isvc_name)
    name = desired["metadata"]["name"]
    for _ in range(5):  # OME requeues on a conflict; so do we, a few times
        live = client.get(r.DEPLOYMENTS, name, namespace)
        desired["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        desired["spec"]["replicas"] = live["spec"].get("replicas")
        try:
            dry = client.replace(r.DEPLOYMENTS, desired, namespace, dry_run=True)
            if _spec_without_replicas(dry) == _spec_without_replicas(live):
                return False
            client.replace(r.DEPLOYMENTS, desired, namespace)
            return True
        except errors.Conflict:
            time.sleep(0.05)
    raise AssertionError(f"reconcile of {name} kept conflicting")


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
