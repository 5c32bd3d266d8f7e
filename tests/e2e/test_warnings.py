"""Warnings before writes that the model's own copies cannot back, on the real server."""

from __future__ import annotations

from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import resources as r
from tests.e2e import ome_controller as ome
from tests.e2e.conftest import KWOK_NODES, Plugin
from tests.e2e.test_status import set_status

MODEL = "qwen-small"


def test_create_on_a_node_where_the_model_failed(
    plugin: Plugin, admin: Client, namespace: str
) -> None:
    ome.create_model(admin, namespace, MODEL)
    status = {"nodesReady": [KWOK_NODES[1]], "nodesFailed": [KWOK_NODES[0]]}
    set_status(admin, r.BASE_MODELS, MODEL, namespace, status)
    result = plugin(
        "create", "w", "-n", namespace, "--from-model", f"basemodel/{MODEL}",
        "--local-path", "/raid/models", "--node", KWOK_NODES[0], "--size", "1Gi",
        "--no-storage-class", "--dry-run=server",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"warning: BaseModel {MODEL} Failed on node {KWOK_NODES[0]}" in result.stderr
    assert f"(Ready on {KWOK_NODES[1]})" in result.stderr


def test_patch_of_a_model_failed_everywhere_and_unpatch_to_nowhere(
    plugin: Plugin, admin: Client, namespace: str, pv_names: list[str]
) -> None:
    isvc = ome.create_isvc(admin, namespace, "llama", MODEL)
    ome.create_workload(isvc, ome.component_deployment(isvc))
    pv, _ = ome.create_local_claim(admin, namespace, "models")
    pv_names.append(pv["metadata"]["name"])
    set_status(admin, r.BASE_MODELS, MODEL, namespace, {"nodesFailed": list(KWOK_NODES)})

    patched = plugin(
        "patch", "llama", "-n", namespace, "--claim", "models", "--strategy", "deployment",
        "--settle", "1s", "--no-wait",
    )  # fmt: skip
    assert patched.exit_code == 0, patched.output
    assert f"BaseModel {MODEL} is Failed on every node that reported" in patched.stderr
    assert f"`kubectl ome-pvc verify models -n {namespace}`" in patched.stderr

    undone = plugin("unpatch", "llama", "-n", namespace, "--no-wait")
    assert undone.exit_code == 0, undone.output
    lines = undone.stderr.splitlines()
    assert lines[0].startswith(f"warning: BaseModel {MODEL} is Ready on no node"), lines
    assert "deployment.apps/llama-engine restored" in undone.stdout
