"""OME-shaped objects for the `create` and `verify` unit tests (shapes from ome.md)."""

from __future__ import annotations

from typing import Any


def hostpath_model_spec(path: str, **extra: Any) -> dict[str, Any]:
    """A released-OME model spec: downloaded into `path` on the nodes the selector picks."""
    spec: dict[str, Any] = {
        "modelFormat": {"name": "safetensors", "version": "1.0.0"},
        "modelFramework": {"name": "transformers", "version": "4.43.0"},
        "modelArchitecture": "LlamaForCausalLM",
        "modelParameterSize": "1.24B",
        "modelCapabilities": ["TEXT_GENERATION"],
        "vendor": "meta",
        "displayName": "meta.llama-3.2-1b-instruct",
        "version": "1.0.0",
        "disabled": False,
        "storage": {
            "storageUri": "hf://meta-llama/Llama-3.2-1B-Instruct",
            "path": path,
            "key": "hf-token",
            "nodeSelector": {"node.kubernetes.io/instance-type": "BM.GPU.H100.8"},
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["h100"]}]}
                    ]
                }
            },
        },
    }
    spec.update(extra)
    return spec


def cluster_base_model(
    name: str = "llama-3-2-1b-instruct",
    path: str = "/raid/models/meta/llama-3-2-1b-instruct",
    nodes_ready: tuple[str, ...] = ("gpu-node-1",),
    **extra: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "ome.io/v1beta1",
        "kind": "ClusterBaseModel",
        "metadata": {"name": name, "finalizers": ["clusterbasemodels.ome.io/finalizer"]},
        "spec": hostpath_model_spec(path, **extra),
        "status": {"state": "Ready", "nodesReady": list(nodes_ready)},
    }


def base_model(
    name: str = "qwen3-8b",
    namespace: str = "team-a",
    path: str = "/raid/models/qwen/qwen3-8b",
    nodes_ready: tuple[str, ...] = ("gpu-node-1",),
    **extra: Any,
) -> dict[str, Any]:
    model = cluster_base_model(name, path, nodes_ready, **extra)
    model["kind"] = "BaseModel"
    model["metadata"] = {
        "name": name,
        "namespace": namespace,
        "finalizers": ["basemodels.ome.io/finalizer"],
    }
    return model


def bound_pv(pv: dict[str, Any], uid: str = "0b1c2d3e") -> dict[str, Any]:
    """`pv` as the API server returns it once bound: defaults and binding fields added."""
    live: dict[str, Any] = {
        **pv,
        "metadata": {
            **pv["metadata"],
            "uid": "9f8e7d6c",
            "resourceVersion": "412",
            "managedFields": [{"manager": "kubectl-ome-pvc", "operation": "Apply"}],
        },
        "spec": {
            **pv["spec"],
            "claimRef": {**pv["spec"]["claimRef"], "uid": uid, "resourceVersion": "405"},
        },
        "status": {"phase": "Bound"},
    }
    if "nfs" in live["spec"]:
        live["spec"]["mountOptions"] = ["nfsvers=4.1"]  # set by someone else: not ours
    return live


def bound_pvc(pvc: dict[str, Any], volume: str = "pvc-3f2a") -> dict[str, Any]:
    """`pvc` as the API server returns it once bound (a dynamically provisioned volume name)."""
    spec = {**pvc["spec"]}
    spec.setdefault("volumeName", volume)
    return {
        **pvc,
        "metadata": {**pvc["metadata"], "uid": "1a2b3c4d", "resourceVersion": "410"},
        "spec": spec,
        "status": {
            "phase": "Bound",
            "accessModes": pvc["spec"]["accessModes"],
            "capacity": pvc["spec"]["resources"]["requests"],
        },
    }
