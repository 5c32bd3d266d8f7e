"""Builders for OME-shaped objects, as the API server returns them (plain dicts).

Shapes follow `shared/reference/ome.md`. Every builder takes the few fields a test cares about
and fills the rest with realistic defaults; timestamps are relative to `NOW` so ages are exact.
Objects are valid for the API server too (e2e tests may create them), except where a docstring
says otherwise.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from kubectl_omepvc.core import jsonpatch, naming
from kubectl_omepvc.core.naming import ModelKind

Obj = dict[str, Any]

NOW = datetime(2026, 7, 1, 12, 0, 0, tzinfo=timezone.utc)
OME_API_VERSION = "ome.io/v1beta1"
MODELS_ROOT = "/raid/models"  # OME's kustomize default; the samples use /raid/models/<vendor>/...
ENGINE_IMAGE = "docker.io/lmsysorg/sglang:v0.4.6"

DSHM_VOLUME: Obj = {"name": "dshm", "emptyDir": {"medium": "Memory"}}
DSHM_MOUNT: Obj = {"name": "dshm", "mountPath": "/dev/shm"}


def ts(minutes_ago: float = 0.0, now: datetime = NOW) -> str:
    """An RFC 3339 timestamp `minutes_ago` before `now`, as Kubernetes writes it."""
    return (now - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- models ------------------------------------------------------------------------------------


def _model(
    kind: ModelKind,
    namespace: str | None,
    name: str,
    *,
    path: str | None,
    uri: str,
    state: str | None,
    nodes_ready: Sequence[str],
    nodes_failed: Sequence[str],
    node_selector: Mapping[str, str] | None,
    node_affinity: Mapping[str, Any] | None,
    key: str | None,
    disabled: bool | None,
    conditions: Sequence[Mapping[str, Any]] | None,
    age_minutes: float,
) -> Obj:
    storage: Obj = {"storageUri": uri}
    if path is not None:
        storage["path"] = path
    if key is not None:
        storage["key"] = key
    if node_selector is not None:
        storage["nodeSelector"] = dict(node_selector)
    if node_affinity is not None:
        storage["nodeAffinity"] = dict(node_affinity)
    spec: Obj = {
        "vendor": "meta",
        "modelFormat": {"name": "safetensors"},
        "storage": storage,
    }
    if disabled is not None:
        spec["disabled"] = disabled
    metadata: Obj = {
        "name": name,
        "creationTimestamp": ts(age_minutes),
        "finalizers": [f"{kind.resource}s.ome.io/finalizer"],
    }
    if namespace is not None:
        metadata["namespace"] = namespace
    status: Obj = {}
    if state is not None:
        status["state"] = state
    if nodes_ready:
        status["nodesReady"] = sorted(nodes_ready)
    if nodes_failed:
        status["nodesFailed"] = sorted(nodes_failed)
    if conditions is not None:
        status["conditions"] = [dict(c) for c in conditions]
    obj: Obj = {"apiVersion": OME_API_VERSION, "kind": kind.value, "metadata": metadata}
    obj["spec"] = spec
    if status:
        obj["status"] = status
    return obj


def cluster_base_model(
    name: str,
    *,
    path: str | None = "",
    uri: str | None = None,
    state: str | None = "In_Transit",
    nodes_ready: Sequence[str] = (),
    nodes_failed: Sequence[str] = (),
    node_selector: Mapping[str, str] | None = None,
    node_affinity: Mapping[str, Any] | None = None,
    key: str | None = None,
    disabled: bool | None = None,
    conditions: Sequence[Mapping[str, Any]] | None = None,
    age_minutes: float = 60,
) -> Obj:
    """A ClusterBaseModel; `path=""` means the default `/raid/models/meta/<name>`, None none."""
    return _model(
        ModelKind.CLUSTER, None, name,
        path=f"{MODELS_ROOT}/meta/{name}" if path == "" else path,
        uri=uri if uri is not None else f"hf://meta-llama/{name}",
        state=state, nodes_ready=nodes_ready, nodes_failed=nodes_failed,
        node_selector=node_selector, node_affinity=node_affinity, key=key, disabled=disabled,
        conditions=conditions, age_minutes=age_minutes,
    )  # fmt: skip


def base_model(
    namespace: str,
    name: str,
    *,
    path: str | None = "",
    uri: str | None = None,
    state: str | None = "In_Transit",
    nodes_ready: Sequence[str] = (),
    nodes_failed: Sequence[str] = (),
    node_selector: Mapping[str, str] | None = None,
    node_affinity: Mapping[str, Any] | None = None,
    key: str | None = None,
    disabled: bool | None = None,
    conditions: Sequence[Mapping[str, Any]] | None = None,
    age_minutes: float = 60,
) -> Obj:
    """A BaseModel in `namespace`; defaults as for `cluster_base_model`."""
    return _model(
        ModelKind.NAMESPACED, namespace, name,
        path=f"{MODELS_ROOT}/{namespace}/{name}" if path == "" else path,
        uri=uri if uri is not None else f"hf://meta-llama/{name}",
        state=state, nodes_ready=nodes_ready, nodes_failed=nodes_failed,
        node_selector=node_selector, node_affinity=node_affinity, key=key, disabled=disabled,
        conditions=conditions, age_minutes=age_minutes,
    )  # fmt: skip


def condition(
    type_: str,
    status: str,
    reason: str,
    message: str = "",
    minutes_ago: float = 5,
) -> Obj:
    """A metav1.Condition as newer OME writes on models."""
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": ts(minutes_ago),
        "observedGeneration": 1,
    }


# -- model-agent state -------------------------------------------------------------------------


def progress(
    *,
    phase: str = "downloading",
    total_bytes: int = 16 * 2**30,
    completed_bytes: int = 4 * 2**30,
    total_files: int = 20,
    completed_files: int = 5,
    speed: float = 100 * 2**20,
    minutes_ago: float = 1,
) -> Obj:
    """The `progress` object of an Updating ConfigMap entry."""
    return {
        "phase": phase,
        "totalBytes": total_bytes,
        "completedBytes": completed_bytes,
        "totalFiles": total_files,
        "completedFiles": completed_files,
        "speedBytesPerSec": speed,
        "lastUpdated": ts(minutes_ago),
    }


def agent_entry(name: str, status: str = "Ready", progress: Mapping[str, Any] | None = None) -> str:
    """One ConfigMap value, JSON-encoded as the agent writes it."""
    value: Obj = {"name": name, "status": status}
    if status == "Ready":
        value["config"] = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    if progress is not None:
        value["progress"] = dict(progress)
    return json.dumps(value, separators=(",", ":"))


def cluster_entry_key(name: str) -> str:
    return naming.cluster_model_configmap_key(name)


def agent_configmap(node: str, entries: Mapping[str, str | Mapping[str, Any]]) -> Obj:
    """The agent's ConfigMap for `node`: keys are ConfigMap keys, values raw text or a dict.

    A dict value is JSON-encoded; a string is kept verbatim (to build malformed entries).
    """
    data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in entries.items()}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": node,
            "namespace": naming.AGENT_NAMESPACE,
            "labels": {naming.AGENT_CONFIGMAP_LABEL: "true", "node": node},
        },
        "data": data,
    }


def node(name: str, labels: Mapping[str, str] | None = None) -> Obj:
    """A Node with the usual well-known labels plus `labels`."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                **(labels or {}),
            },
        },
    }


def model_label(kind: ModelKind, name: str, namespace: str | None = None) -> str:
    return naming.model_label_key(kind, name, namespace)


def agent_daemonset(
    *,
    models_root: str = MODELS_ROOT,
    host_path: str = MODELS_ROOT,
    mount_path: str | None = None,
    root_arg_style: str = "separate",
) -> Obj:
    """OME's model-agent DaemonSet in `ome`: one hostPath, mounted, named by --models-root-dir.

    `root_arg_style`: "separate" (`--models-root-dir /x`), "equals" (`--models-root-dir=/x`)
    or "none" (no flag: the binary's default applies).
    """
    args = ["--node-name", "$(NODE_NAME)", "--namespace", naming.AGENT_NAMESPACE]
    if root_arg_style == "separate":
        args += ["--models-root-dir", models_root]
    elif root_arg_style == "equals":
        args.append(f"--models-root-dir={models_root}")
    labels = {"app.kubernetes.io/name": "ome-model-agent"}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "ome-model-agent-daemonset", "namespace": naming.AGENT_NAMESPACE},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "model-agent",
                            "image": "ghcr.io/moirai-internal/model-agent:v0.1.5",
                            "args": args,
                            "volumeMounts": [
                                {"name": "host-models", "mountPath": mount_path or models_root}
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "host-models",
                            "hostPath": {"path": host_path, "type": "DirectoryOrCreate"},
                        }
                    ],
                },
            },
        },
    }


# -- serving -----------------------------------------------------------------------------------


def inference_service(
    namespace: str,
    name: str,
    model: str,
    *,
    kind: ModelKind | None = None,
    legacy: bool = False,
) -> Obj:
    """An InferenceService using `model` via `spec.model` (or the legacy `spec.baseModel`)."""
    spec: Obj = {"engine": {"minReplicas": 1, "maxReplicas": 1}}
    if legacy:
        spec["baseModel"] = model
    else:
        ref: Obj = {"name": model}
        if kind is not None:
            ref["kind"] = kind.value
        spec["model"] = ref
    return {
        "apiVersion": OME_API_VERSION,
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace, "uid": _uid(namespace, name)},
        "spec": spec,
    }


def _uid(namespace: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"isvc/{namespace}/{name}"))


def _owner(isvc: str, uid: str) -> Obj:
    return {
        "apiVersion": OME_API_VERSION,
        "kind": "InferenceService",
        "name": isvc,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def engine_deployment(
    isvc: str,
    model: str,
    path: str,
    *,
    namespace: str = "default",
    extra_volumes: Iterable[Mapping[str, Any]] = (DSHM_VOLUME,),
    extra_mounts: Iterable[Mapping[str, Any]] = (DSHM_MOUNT,),
    model_kind: ModelKind = ModelKind.CLUSTER,
    replicas: int = 1,
    ready_replicas: int | None = None,
    annotations: Mapping[str, str] | None = None,
    isvc_uid: str | None = None,
) -> Obj:
    """OME's engine Deployment `<isvc>-engine` for a hostPath model (ome.md, RawDeployment).

    The extra volumes come first, so the model volume's index varies as in real clusters. The
    owner uid defaults to a stable fake: pass the real one when creating it on a server whose
    garbage collector runs.
    """
    label_key = naming.model_label_key(model_kind, model, namespace)
    deployment = f"{isvc}-engine"
    labels = {
        "app": deployment,
        "ome.io/inferenceservice": isvc,
        "component": "engine",
        "base-model-name": model,
    }
    meta_annotations = {
        "ome.io/deploymentMode": "RawDeployment",
        "ome.io/base-model-name": model,
        "ome.io/serving-runtime": "srt-llama",
        **(annotations or {}),
    }
    status: Obj = {"replicas": replicas}
    if ready_replicas:
        status["readyReplicas"] = ready_replicas
        status["availableReplicas"] = ready_replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment,
            "namespace": namespace,
            "labels": labels,
            "annotations": meta_annotations,
            "ownerReferences": [_owner(isvc, isvc_uid or _uid(namespace, isvc))],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": deployment}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {label_key: "Ready"},
                    "containers": [
                        {
                            "name": "ome-container",
                            "image": ENGINE_IMAGE,
                            "env": [{"name": "MODEL_PATH", "value": path}],
                            "volumeMounts": [
                                *(dict(m) for m in extra_mounts),
                                {"name": model, "mountPath": path, "readOnly": True},
                            ],
                        }
                    ],
                    "volumes": [
                        *(dict(v) for v in extra_volumes),
                        {"name": model, "hostPath": {"path": path, "type": ""}},
                    ],
                },
            },
        },
        "status": status,
    }


def patched(workload: Mapping[str, Any], strategy: str, claim: str = "models") -> Obj:
    """`workload` as this plugin leaves it: the model volume on a claim, the annotation set."""
    out: Obj = json.loads(json.dumps(workload))
    spec = out["spec"]["template"]["spec"]
    model = out["metadata"]["labels"]["base-model-name"]
    for volume in spec["volumes"]:
        if volume["name"] == model:
            volume.pop("hostPath", None)
            volume["persistentVolumeClaim"] = {"claimName": claim, "readOnly": True}
    spec.pop("nodeSelector", None)
    # The record format core.jsonpatch writes: one entry per pod-template path.
    original = json.dumps(
        {
            "format": jsonpatch.RECORD_FORMAT,
            "templates": {"/spec/template": {"strategy": strategy, "claim": claim}},
        }
    )
    out["metadata"]["annotations"][naming.ORIGINAL_ANNOTATION] = original
    return out


def leader_worker_set(isvc: str, model: str, path: str, *, namespace: str = "default") -> Obj:
    """OME's MultiNode workload `lws-<isvc>-engine`: the engine pod template as leader and
    worker."""
    engine = engine_deployment(isvc, model, path, namespace=namespace)
    template = engine["spec"]["template"]
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {**engine["metadata"], "name": f"lws-{isvc}-engine"},
        "spec": {
            "replicas": 1,
            "leaderWorkerTemplate": {
                "size": 2,
                "leaderTemplate": json.loads(json.dumps(template)),
                "workerTemplate": json.loads(json.dumps(template)),
            },
        },
        "status": {"replicas": 1},
    }


# -- claims ------------------------------------------------------------------------------------


def pvc(
    namespace: str,
    name: str,
    *,
    phase: str = "Bound",
    capacity: str = "100Gi",
    access_modes: Sequence[str] = ("ReadOnlyMany",),
    storage_class: str | None = "local-models",
    volume_name: str | None = None,
) -> Obj:
    """A PersistentVolumeClaim; Bound claims name their volume (default `pv-<name>`)."""
    spec: Obj = {
        "accessModes": list(access_modes),
        "resources": {"requests": {"storage": capacity}},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    status: Obj = {"phase": phase}
    if phase == "Bound":
        spec["volumeName"] = volume_name or f"pv-{name}"
        status["capacity"] = {"storage": capacity}
        status["accessModes"] = list(access_modes)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
        "status": status,
    }


def pv(name: str, *, local_path: str = MODELS_ROOT, nodes: Sequence[str] = ("node-a",)) -> Obj:
    """A local PersistentVolume pinned to `nodes` by required node affinity."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "100Gi"},
            "accessModes": ["ReadOnlyMany"],
            "local": {"path": local_path},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": list(nodes),
                                }
                            ]
                        }
                    ]
                }
            },
        },
        "status": {"phase": "Bound"},
    }
