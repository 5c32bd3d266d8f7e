"""`kubectl ome-pvc status` on what OME v0.1.5's own manager and model-agents report.

No test here writes a node label, an agent ConfigMap or a model status: the agents (one process
per kwok node) and the manager do, and the plugin reads them as a user's cluster would have them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import naming
from kubectl_omepvc.core import resources as r
from tests.e2e.conftest import REPO, Cluster, Plugin
from tests.e2e.test_status import Lines, wait_for
from tests.ome import real
from tests.ome.conftest import ReadyModel

Obj = dict[str, Any]


def status_json(plugin: Plugin, *args: str) -> Obj:
    result = plugin("status", *args, "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc: Obj = json.loads(result.stdout)
    item: Obj = doc["items"][0] if "items" in doc else doc
    return item


def codes(item: Obj) -> list[str]:
    return [d["code"] for d in item["diagnoses"]]


def per_node(item: Obj) -> dict[str, str]:
    return {row["node"]: row["state"] for row in item["nodes"]}


def test_local_model_ready_on_the_nodes_its_agents_serve(
    admin: Client, plugin: Plugin, ready_model: ReadyModel
) -> None:
    name, chosen = ready_model.name, list(ready_model.nodes)
    status = real.model_status(admin, name)
    assert status["state"] == "Ready" and status["nodesReady"] == chosen
    assert not status.get("nodesFailed")
    # The agents' own records: a node label and an entry in their node's ConfigMap.
    key = naming.cluster_model_label_key(name)
    assert dict(real.nodes_labelled(admin, key)) == {node: "Ready" for node in chosen}
    for node in chosen:
        data = admin.get(r.CONFIG_MAPS, node, naming.AGENT_NAMESPACE)["data"]
        assert json.loads(data[f"clusterbasemodel.{name}"])["status"] == "Ready"

    item = status_json(plugin, name)
    assert item["state"] == "Ready"
    assert {n: s for n, s in per_node(item).items() if s == "Ready"} == dict.fromkeys(
        chosen, "Ready"
    )
    assert codes(item) == []
    table = plugin("status", name)
    assert table.exit_code == 0, table.stderr
    print(table.stdout)


def test_hf_model_fails_on_every_node_with_its_diagnosis(
    admin: Client, plugin: Plugin, models: list[tuple[str, str | None]], tmp_path: Path
) -> None:
    """No network here: the agents try the download and report Failed, node by node."""
    name = f"hf-{real.run_id()}"
    real.create_model(admin, name, "hf://meta-llama/Llama-3.2-1B-Instruct", path=str(tmp_path))
    models.append((name, None))
    status = real.wait_for_state(admin, name, "Failed", nodesFailed=list(real.NODES))
    assert not status.get("nodesReady")

    item = status_json(plugin, name)
    assert item["state"] == "Failed"
    assert per_node(item) == dict.fromkeys(real.NODES, "Failed")
    assert "nodes-failed" in codes(item)


def test_pvc_model_stays_in_transit_on_released_ome(
    admin: Client, plugin: Plugin, models: list[tuple[str, str | None]], namespace: str
) -> None:
    """v0.1.5's agents skip pvc:// and its manager computes In_Transit from no node entries."""
    name = f"pvc-{real.run_id()}"
    real.create_model(admin, name, f"pvc://{namespace}:weights/meta/llama")
    models.append((name, None))
    real.wait_for_state(admin, name, "In_Transit")
    key = naming.cluster_model_label_key(name)
    assert dict(real.nodes_labelled(admin, key)) == {}

    item = status_json(plugin, name)
    assert item["state"] == "In_Transit"
    assert "pvc-not-supported" in codes(item)


def test_namespaced_base_model_ready(
    admin: Client,
    plugin: Plugin,
    models: list[tuple[str, str | None]],
    namespace: str,
    tmp_path: Path,
) -> None:
    name = f"qwen-{real.run_id()}"
    real.local_model(admin, tmp_path, name, namespace=namespace, nodes=real.NODES[2:])
    models.append((name, namespace))
    real.wait_for_state(admin, name, "Ready", namespace=namespace, nodesReady=[real.NODES[2]])
    key = f"models.ome.io/{namespace}.basemodel.{name}"
    assert dict(real.nodes_labelled(admin, key)) == {real.NODES[2]: "Ready"}

    item = status_json(plugin, name, "-n", namespace)
    assert (item["kind"], item["namespace"], item["state"]) == ("BaseModel", namespace, "Ready")
    assert per_node(item)[real.NODES[2]] == "Ready"
    assert codes(item) == []


def test_watch_prints_the_transition_an_agent_makes(
    cluster: Cluster,
    admin: Client,
    models: list[tuple[str, str | None]],
    tmp_path: Path,
    ready_model: ReadyModel,  # so the first render has a line
) -> None:
    name = f"watched-{real.run_id()}"
    argv = [
        sys.executable, "-m", "kubectl_omepvc", "status", "--watch", "--kind", "cluster",
        "--kubeconfig", str(cluster.kubeconfig), "--context", "local-admin",
    ]  # fmt: skip
    env = {**cluster.env, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    out = Lines(proc.stdout)
    try:
        wait_for("the first render", lambda: out.lines, 30)
        real.local_model(admin, tmp_path, name, nodes=real.NODES[:1])
        models.append((name, None))
        wait_for(
            f"{name} shown Ready",
            lambda: any(line.split()[:1] == [name] and " Ready " in line for line in out.lines),
            real.AGENT_SECONDS,
        )
        # The model did not exist at the first render: every line about it came from the
        # watch, the last one from the agents' report (the manager's status and, depending on
        # how fast the agent is, earlier lines without it).
        shown = [line for line in out.lines if line.split()[:1] == [name]]
        assert shown[-1].split()[3:5] == ["Ready", "1/1"], shown
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(10)
