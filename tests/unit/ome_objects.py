"""OME-shaped workloads for the transform, patch and policy tests (after the OME reference).

Each builder returns a fresh dict in the shape OME's controller produces (and the API server
returns: hostPath `type: ""`), with the knobs the tests turn: where the model volume sits among
the others, whether the container mounts it, readOnly, nodeSelector contents.
"""

from __future__ import annotations

import copy
from typing import Any

ISVC = "llama"
NAMESPACE = "team-a"
MODEL = "llama-3-2-1b-instruct"
MODEL_PATH = "/raid/models/meta/llama-3-2-1b-instruct"
PV_ROOT = "/raid/models"
SUB_PATH = "meta/llama-3-2-1b-instruct"
CLAIM = "models"
LABEL_KEY = "models.ome.io/clusterbasemodel.llama-3-2-1b-instruct"
# The hashed form OME writes for a ClusterBaseModel name longer than 32 characters.
LONG_MODEL = "llama-4-maverick-17b-128e-instruct-fp8"
LONG_MODEL_PATH = "/raid/models/meta/llama-4-maverick-17b-128e-instruct-fp8"
LONG_LABEL_KEY = "models.ome.io/clusterbasemodel.321a5921-k-17b-128e-instruct-fp8"

Obj = dict[str, Any]

_UNSET: Any = object()


def dshm_volume() -> Obj:
    return {"name": "dshm", "emptyDir": {"medium": "Memory"}}


def model_volume(model: str = MODEL, path: str = MODEL_PATH) -> Obj:
    return {"name": model, "hostPath": {"path": path, "type": ""}}


def other_volumes(count: int) -> list[Obj]:
    """Volumes OME or the runtime may put before the model's: dshm, a cache, a config map."""
    pool = [
        dshm_volume(),
        {"name": "cache", "hostPath": {"path": "/var/cache/llm", "type": "DirectoryOrCreate"}},
        {"name": "config", "configMap": {"name": "llama-config", "defaultMode": 420}},
        {"name": "tmp", "emptyDir": {}},
    ]
    return pool[:count]


def model_mount(model: str = MODEL, path: str = MODEL_PATH, read_only: bool | None = True) -> Obj:
    mount: Obj = {"name": model, "mountPath": path}
    if read_only is not None:
        mount["readOnly"] = read_only
    return mount


def pod_template(
    *,
    component: str = "engine",
    model: str = MODEL,
    path: str = MODEL_PATH,
    label_key: str = LABEL_KEY,
    volume_index: int = 1,
    volumes_after: list[Obj] | None = None,
    mounted: bool = True,
    read_only: bool | None = True,
    node_selector: Any = _UNSET,
) -> Obj:
    """A pod template as OME renders it; the model volume at `volume_index`."""
    volumes = other_volumes(volume_index) + [model_volume(model, path)] + (volumes_after or [])
    mounts: list[Obj] = [{"name": "dshm", "mountPath": "/dev/shm"}] if volume_index else []
    if mounted:
        mounts.append(model_mount(model, path, read_only))
    container: Obj = {
        "name": "ome-container",
        "image": "docker.io/lmsysorg/sglang:v0.4.6",
        "args": ["--model-path", path, "--port", "8080"],
        "env": [{"name": "MODEL_PATH", "value": path}],
        "ports": [{"containerPort": 8080, "name": "http1", "protocol": "TCP"}],
        "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "4"}},
        "volumeMounts": mounts,
    }
    if not mounts:
        del container["volumeMounts"]
    selector = {label_key: "Ready"} if node_selector is _UNSET else node_selector
    spec: Obj = {"containers": [container]}
    if selector is not None:
        spec["nodeSelector"] = selector
    spec["volumes"] = volumes
    spec["restartPolicy"] = "Always"
    spec["schedulerName"] = "default-scheduler"
    return {
        "metadata": {
            "labels": {
                "app": f"{ISVC}-{component}",
                "ome.io/inferenceservice": ISVC,
                "component": component,
                "base-model-name": model,
            },
            "annotations": {"ome.io/base-model-name": model},
        },
        "spec": spec,
    }


def _metadata(name: str, component: str, model: str) -> Obj:
    return {
        "name": name,
        "namespace": NAMESPACE,
        "labels": {
            "app": name,
            "ome.io/inferenceservice": ISVC,
            "component": component,
            "base-model-name": model,
        },
        "annotations": {
            "ome.io/deploymentMode": "RawDeployment",
            "ome.io/base-model-name": model,
            "ome.io/serving-runtime": "srt-llama",
        },
        "ownerReferences": [
            {
                "apiVersion": "ome.io/v1beta1",
                "kind": "InferenceService",
                "name": ISVC,
                "uid": "6c9d7a52-2f3e-4c1b-9a63-0d7f1e2b3c4d",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }


def deployment(component: str = "engine", model: str = MODEL, **template: Any) -> Obj:
    """`<isvc>-<component>` with one pod template (see `pod_template` for the knobs)."""
    name = f"{ISVC}-{component}"
    if component == "router":
        template.setdefault("mounted", False)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(name, component, model),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(component=component, model=model, **template),
        },
    }


def leader_worker_set(with_leader: bool = True, model: str = MODEL, **template: Any) -> Obj:
    """`lws-<isvc>-engine` with a leader (volume after two others) and a worker template."""
    name = f"lws-{ISVC}-engine"
    lwt: Obj = {"size": 2}
    if with_leader:
        lwt["leaderTemplate"] = pod_template(model=model, volume_index=2, **template)
    lwt["workerTemplate"] = pod_template(model=model, **template)
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": _metadata(name, "engine", model),
        "spec": {"replicas": 1, "leaderWorkerTemplate": lwt},
    }


def fresh(obj: Obj) -> Obj:
    return copy.deepcopy(obj)
