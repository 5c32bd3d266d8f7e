"""What a user of OME creates, for the tier against OME's real controllers.

Models, a serving runtime and InferenceServices are created as a user would; everything else
(node labels, the agents' ConfigMaps, model status, the engine Deployment) is written by OME's
own manager and model-agents, never by the tests. Names carry a per-run prefix: models and
runtimes are cluster-scoped and outlive a test's namespace.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import resources as r
from tests.e2e.test_status import wait_for
from tests.factories import OME_API_VERSION

Obj = dict[str, Any]
NODES = ("gpu-node-1", "gpu-node-2", "gpu-node-3")
# The agents wait ~25 s (jitter) before their first work, then report per node.
AGENT_SECONDS = 120.0
RUNTIMES = r.ResourceRef(
    "ome.io", "v1beta1", "clusterservingruntimes", "ClusterServingRuntime", False
)
ARCHITECTURE = "LlamaForCausalLM"
FRAMEWORK = {"name": "transformers", "version": "4.45.0.dev0"}


def run_id() -> str:
    return secrets.token_hex(3)


def weights(root: Path, name: str) -> Path:
    """A model directory as a download leaves it: a config.json naming its architecture."""
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": [ARCHITECTURE],
        "model_type": "llama",
        "torch_dtype": "bfloat16",
        "hidden_size": 2048,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "transformers_version": "4.45.0.dev0",
    }
    (path / "config.json").write_text(json.dumps(config))
    (path / "model.safetensors").write_bytes(b"\0" * 16)
    return path


def _model_spec(uri: str, path: str | None, nodes: Sequence[str] | None) -> Obj:
    storage: Obj = {"storageUri": uri}
    if path is not None:
        storage["path"] = path
    if nodes is not None:
        term = {"key": "kubernetes.io/hostname", "operator": "In", "values": list(nodes)}
        storage["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [term]}]
            }
        }
    return {
        "vendor": "meta",
        "modelFormat": {"name": "safetensors", "version": "1.0.0"},
        "modelFramework": FRAMEWORK,
        "modelArchitecture": ARCHITECTURE,
        "storage": storage,
    }


def create_model(
    client: Client,
    name: str,
    uri: str,
    *,
    path: str | None = None,
    nodes: Sequence[str] | None = None,
    namespace: str | None = None,
) -> Obj:
    """A ClusterBaseModel, or a BaseModel when `namespace` is given; `nodes` selects nodes."""
    kind = "BaseModel" if namespace else "ClusterBaseModel"
    metadata: Obj = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    model = {
        "apiVersion": OME_API_VERSION,
        "kind": kind,
        "metadata": metadata,
        "spec": _model_spec(uri, path, nodes),
    }
    ref = r.BASE_MODELS if namespace else r.CLUSTER_BASE_MODELS
    return client.create(ref, model, namespace)


def local_model(
    client: Client, root: Path, name: str, *, nodes: Sequence[str] | None = None, **kw: Any
) -> Obj:
    """A `local://` model whose weights are on disk: the agents of `nodes` make it Ready."""
    path = str(weights(root, name))
    return create_model(client, name, f"local://{path}", path=path, nodes=nodes, **kw)


def model_status(client: Client, name: str, namespace: str | None = None) -> Obj:
    ref = r.BASE_MODELS if namespace else r.CLUSTER_BASE_MODELS
    status: Obj = client.get(ref, name, namespace).get("status") or {}
    return status


def wait_for_state(
    client: Client, name: str, state: str, *, namespace: str | None = None, **expect: Any
) -> Obj:
    """The model's status once OME reports `state` (and each `expect`ed status field)."""

    def reached() -> Obj | None:
        status = model_status(client, name, namespace)
        if status.get("state") != state:
            return None
        if any(status.get(k) != v for k, v in expect.items()):
            return None
        return status

    found: Obj = wait_for(f"model {name} {state} {expect}", reached, AGENT_SECONDS)
    return found


def delete_model(client: Client, name: str, namespace: str | None = None) -> None:
    """Deleted while the manager runs, so it removes its finalizer."""
    ref = r.BASE_MODELS if namespace else r.CLUSTER_BASE_MODELS
    client.delete(ref, name, namespace)
    wait_for(f"model {name} gone", lambda: client.get_or_none(ref, name, namespace) is None, 60)


def runtime_spec(
    *, workers: int = 0, router: bool = False, image: str = "docker.io/lmsysorg/sglang:v0.5.5"
) -> Obj:
    """A serving runtime for Llama-architecture safetensors models, small enough for kwok."""
    runner: Obj = {
        "name": "ome-container",
        "image": image,
        "command": ["python3", "-m", "sglang.launch_server", "--model-path", "$(MODEL_PATH)"],
        "resources": {"requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"},
                      "limits": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"}},
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }  # fmt: skip
    engine: Obj = {
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    if workers:
        engine["leader"] = {"runner": runner}
        engine["worker"] = {"size": workers, "runner": {**runner, "name": "ome-container"}}
    else:
        engine["runner"] = runner
    spec: Obj = {
        "supportedModelFormats": [
            {
                "modelFormat": {"name": "safetensors", "version": "1.0.0"},
                "modelFramework": FRAMEWORK,
                "modelArchitecture": ARCHITECTURE,
                "autoSelect": True,
                "priority": 1,
            }
        ],
        "protocolVersions": ["openAI"],
        "engineConfig": engine,
    }
    if router:
        spec["routerConfig"] = {
            "runner": {"name": "router", "image": "docker.io/lmsysorg/sgl-router:v0.1"}
        }
    return spec


def create_runtime(client: Client, name: str, **kw: Any) -> Obj:
    body = {
        "apiVersion": OME_API_VERSION,
        "kind": "ClusterServingRuntime",
        "metadata": {"name": name},
        "spec": runtime_spec(**kw),
    }
    return client.create(RUNTIMES, body)


def create_isvc(
    client: Client,
    namespace: str,
    name: str,
    model: str,
    runtime: str,
    *,
    kind: str | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Obj:
    ref: Obj = {"name": model}
    if kind:
        ref["kind"] = kind
    body: Obj = {
        "apiVersion": OME_API_VERSION,
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": ref,
            "runtime": {"name": runtime},
            "engine": {"minReplicas": 1, "maxReplicas": 1},
        },
    }
    if annotations:
        body["metadata"]["annotations"] = dict(annotations)
    return client.create(r.INFERENCE_SERVICES, body, namespace)


def engine(client: Client, namespace: str, isvc: str, timeout: float = 60.0) -> Obj:
    """The engine Deployment, once OME's manager has written it."""
    found: Obj = wait_for(
        f"{isvc}-engine written by OME",
        lambda: client.get_or_none(r.DEPLOYMENTS, f"{isvc}-engine", namespace),
        timeout,
    )
    return found


def delete_isvc(client: Client, namespace: str, name: str) -> None:
    client.delete(r.INFERENCE_SERVICES, name, namespace)
    wait_for(
        f"isvc {name} gone",
        lambda: client.get_or_none(r.INFERENCE_SERVICES, name, namespace) is None,
        60,
    )


def nodes_labelled(client: Client, key: str) -> Iterator[tuple[str, str]]:
    for node in client.list(r.NODES):
        value = (node["metadata"].get("labels") or {}).get(key)
        if value is not None:
            yield node["metadata"]["name"], value
