"""`patch --strategy isvc` on OME v0.1.5's own manager and model-agents.

OME renders every workload here: the tests write only what a user would (models, runtimes,
isvcs, a claim) and run the plugin. They show that OME serves the isvc from the claim its own
spec carries, keeps it through isvc changes without rewriting the engine again and again,
that the agents leave the copy's node labels alone, and that `unpatch` restores the isvc.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import isvc_route, naming
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.errors import Conflict
from tests.e2e import ome_controller as ome
from tests.e2e.conftest import Cluster, Plugin
from tests.e2e.test_status import wait_for
from tests.ome import real
from tests.ome.conftest import READY_NODES, STATE, ReadyModel, hack_ome

Obj = dict[str, Any]
CLAIM = "weights"
SETTLE = 6.0  # seconds: OME rewrites a workload within milliseconds of any difference
AGENT_FIRST_PASS = 60.0


@pytest.fixture
def claim(admin: Client, namespace: str, pv_names: list[str], ready_model: ReadyModel) -> str:
    """A local volume on the models root of the ready nodes, bound to a claim."""
    pv, _ = ome.create_local_claim(
        admin, namespace, CLAIM, root=ready_model.root, nodes=ready_model.nodes
    )
    pv_names.append(pv["metadata"]["name"])
    return CLAIM


@pytest.fixture
def isvcs(admin: Client, namespace: str) -> Iterator[list[str]]:
    """Names of isvcs a test made; deleted while the manager runs (it holds finalizers)."""
    made: list[str] = []
    yield made
    for name in made:
        real.delete_isvc(admin, namespace, name)


@pytest.fixture
def copies(admin: Client, ready_model: ReadyModel, namespace: str) -> Iterator[None]:
    """The copy outlives a failed test's namespace (cluster-scoped); its labels too."""
    yield
    copy = copy_of(ready_model.name, namespace)
    if admin.get_or_none(r.CLUSTER_BASE_MODELS, copy) is not None:
        real.delete_model(admin, copy)
    ome.label_nodes(admin, naming.cluster_model_label_key(copy), None, real.NODES)


def restart_agents() -> None:
    """Stop each model-agent this tier started (by its pid), then `hack/ome up` starts them."""
    for node in real.NODES:
        pidfile = STATE / f"model-agent-{node}.pid"
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGTERM)
        wait_for(f"model-agent {node} to stop", lambda p=pid: not _alive(p), 30)  # type: ignore[misc]
    hack_ome("up")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def serve(
    admin: Client, namespace: str, isvcs: list[str], name: str, model: str, runtime: str
) -> Obj:
    real.create_isvc(admin, namespace, name, model, runtime)
    isvcs.append(name)
    engine = real.engine(admin, namespace, name)
    settled_isvc(admin, namespace, name)
    return engine


def settled_isvc(admin: Client, namespace: str, name: str, quiet: float = 2.0) -> None:
    """Until OME's first passes over a new isvc are done (its finalizer, its status, and the
    defaults its webhook adds on those writes): the resourceVersion unchanged for `quiet` s.
    A patch racing them is told the isvc changed while it was being written (run it again)."""
    deadline = time.monotonic() + 60
    last = admin.get(r.INFERENCE_SERVICES, name, namespace)["metadata"]["resourceVersion"]
    since = time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, f"isvc {name} kept changing for 60 s"
        time.sleep(0.2)
        now = admin.get(r.INFERENCE_SERVICES, name, namespace)["metadata"]["resourceVersion"]
        if now != last:
            last, since = now, time.monotonic()


def engine_on_claim(admin: Client, namespace: str, isvc: str) -> Callable[[], Obj | None]:
    def check() -> Obj | None:
        found = admin.get_or_none(r.DEPLOYMENTS, f"{isvc}-engine", namespace)
        volumes = (found or {}).get("spec", {}).get("template", {}).get("spec", {}).get("volumes")
        names = {v["name"]: v for v in volumes or []}
        claimed = names.get(isvc_route.VOLUME, {}).get("persistentVolumeClaim", {})
        if claimed.get("claimName") == CLAIM and not any("hostPath" in v for v in names.values()):
            return found
        return None

    return check


def settled_generation(admin: Client, namespace: str, name: str) -> int:
    """The engine's generation once it has not changed for SETTLE seconds (OME stopped)."""
    deadline = time.monotonic() + 60
    last = admin.get(r.DEPLOYMENTS, name, namespace)["metadata"]["generation"]
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = admin.get(r.DEPLOYMENTS, name, namespace)["metadata"]["generation"]
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= SETTLE:
            return int(last)
    raise AssertionError(f"{name} kept changing: OME and the route are fighting")


def isvc_state(admin: Client, namespace: str, name: str) -> str:
    live = admin.get(r.INFERENCE_SERVICES, name, namespace)
    meta = live["metadata"]
    return json.dumps([live["spec"], meta.get("labels"), meta.get("annotations")])


def update_isvc(admin: Client, namespace: str, name: str, change: Callable[[Obj], None]) -> None:
    for _ in range(5):  # OME writes status and finalizers: retry a stale resourceVersion
        live = admin.get(r.INFERENCE_SERVICES, name, namespace)
        change(live)
        try:
            admin.replace(r.INFERENCE_SERVICES, live, namespace)
            return
        except Conflict:  # OME's own write came first
            time.sleep(0.2)
    raise AssertionError(f"could not update isvc {name}")


def copy_of(model: str, namespace: str) -> str:
    """A copy name of each test's own: an agent removes a deleted copy's labels a few seconds
    later, so a copy of the same name made at once by the next test would lose them."""
    return f"{model}-{namespace}"


def patch(plugin: Plugin, namespace: str, name: str, model: str, *extra: str) -> Any:
    result = plugin("patch", name, "-n", namespace, "--claim", CLAIM, "--strategy", "isvc",
                    "--model-name", copy_of(model, namespace), "--no-wait", *extra)  # fmt: skip
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.usefixtures("claim", "copies")
def test_omes_own_reconcile_serves_the_claim_and_keeps_it_through_isvc_changes(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    ready_model: ReadyModel,
    runtime: str,
    isvcs: list[str],
) -> None:
    before_engine = serve(admin, namespace, isvcs, "llama", ready_model.name, runtime)
    assert any("hostPath" in v for v in before_engine["spec"]["template"]["spec"]["volumes"])
    before = isvc_state(admin, namespace, "llama")
    copy = copy_of(ready_model.name, namespace)
    key = naming.cluster_model_label_key(copy)

    patch(plugin, namespace, "llama", ready_model.name)
    engine = wait_for("OME to serve the claim", engine_on_claim(admin, namespace, "llama"))
    pod = engine["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "ome-container"]
    assert {"name": "MODEL_PATH", "value": ready_model.path} in container["env"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == isvc_route.VOLUME)
    assert mount["mountPath"] == ready_model.path  # where the engine read before
    assert mount["subPath"] == ready_model.name
    assert pod["nodeSelector"][key] == "Ready"
    assert dict(real.nodes_labelled(admin, key)) == dict.fromkeys(READY_NODES, "Ready")
    # the copy: path-less, skipped by the agents, In_Transit, and still served
    assert real.model_status(admin, copy).get("state") in (None, "In_Transit")
    generation = settled_generation(admin, namespace, "llama-engine")

    # isvc changes: replicas, an annotation, another runtime
    other_runtime = f"{runtime}-b"
    real.create_runtime(admin, other_runtime)
    try:
        changes: list[Callable[[Obj], None]] = [
            lambda i: i["spec"]["engine"].update(minReplicas=2, maxReplicas=2),
            lambda i: i["metadata"].setdefault("annotations", {}).update({"team": "search"}),
            lambda i: i["spec"].update(runtime={"name": other_runtime}),
        ]
        for change in changes:
            update_isvc(admin, namespace, "llama", change)
            wait_for("the claim kept", engine_on_claim(admin, namespace, "llama"))
            after = settled_generation(admin, namespace, "llama-engine")
            assert engine_on_claim(admin, namespace, "llama")() is not None
            assert after >= generation
            generation = after
        assert admin.get(r.DEPLOYMENTS, "llama-engine", namespace)["spec"]["replicas"] == 2
        # back to the isvc as `patch` left it, so unpatch restores what it recorded
        update_isvc(
            admin, namespace, "llama", lambda i: i["spec"].update(runtime={"name": runtime})
        )
        update_isvc(admin, namespace, "llama", lambda i: i["metadata"]["annotations"].pop("team"))
        update_isvc(
            admin, namespace, "llama",
            lambda i: i["spec"]["engine"].update(minReplicas=1, maxReplicas=1),
        )  # fmt: skip

        undone = plugin("unpatch", "llama", "-n", namespace, "--no-wait")
        assert undone.exit_code == 0, undone.output
        assert isvc_state(admin, namespace, "llama") == before
        assert dict(real.nodes_labelled(admin, key)) == {}
        wait_for("the copy gone", lambda: admin.get_or_none(r.CLUSTER_BASE_MODELS, copy) is None)
        wait_for(
            "OME to put the hostPath back",
            lambda: any(
                "hostPath" in v
                for v in admin.get(r.DEPLOYMENTS, "llama-engine", namespace)["spec"]["template"][
                    "spec"
                ]["volumes"]
            ),
        )
    finally:
        admin.delete(real.RUNTIMES, other_runtime)


@pytest.mark.usefixtures("claim", "copies")
def test_agents_restarted_keep_the_copys_labels(
    plugin: Plugin,
    cluster: Cluster,
    admin: Client,
    namespace: str,
    ready_model: ReadyModel,
    runtime: str,
    isvcs: list[str],
) -> None:
    serve(admin, namespace, isvcs, "llama", ready_model.name, runtime)
    patch(plugin, namespace, "llama", ready_model.name)
    key = naming.cluster_model_label_key(copy_of(ready_model.name, namespace))
    assert dict(real.nodes_labelled(admin, key)) == dict.fromkeys(READY_NODES, "Ready")
    restart_agents()
    # the agents wait ~25 s (jitter) before their first pass
    time.sleep(AGENT_FIRST_PASS)
    assert dict(real.nodes_labelled(admin, key)) == dict.fromkeys(READY_NODES, "Ready")
    # and the original model's labels are still theirs, untouched
    original = naming.cluster_model_label_key(ready_model.name)
    assert dict(real.nodes_labelled(admin, original)) == dict.fromkeys(READY_NODES, "Ready")
    undone = plugin("unpatch", "llama", "-n", namespace, "--no-wait")
    assert undone.exit_code == 0, undone.output


@pytest.mark.usefixtures("claim", "copies")
def test_two_isvcs_share_one_copy(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    ready_model: ReadyModel,
    runtime: str,
    isvcs: list[str],
) -> None:
    for name in ("llama", "llama-b"):
        serve(admin, namespace, isvcs, name, ready_model.name, runtime)
    states = {n: isvc_state(admin, namespace, n) for n in ("llama", "llama-b")}
    copy = copy_of(ready_model.name, namespace)
    key = naming.cluster_model_label_key(copy)
    for name in ("llama", "llama-b"):
        patch(plugin, namespace, name, ready_model.name)
        wait_for(f"{name} on the claim", engine_on_claim(admin, namespace, name))

    first = plugin("unpatch", "llama", "-n", namespace, "--no-wait")
    assert first.exit_code == 0, first.output
    assert "also used by" in first.stderr
    assert admin.get_or_none(r.CLUSTER_BASE_MODELS, copy) is not None
    assert dict(real.nodes_labelled(admin, key)) == dict.fromkeys(READY_NODES, "Ready")
    assert isvc_state(admin, namespace, "llama") == states["llama"]
    # the other one is still served from the claim, and stays so
    settled_generation(admin, namespace, "llama-b-engine")
    assert engine_on_claim(admin, namespace, "llama-b")() is not None

    last = plugin("unpatch", "llama-b", "-n", namespace, "--no-wait")
    assert last.exit_code == 0, last.output
    assert isvc_state(admin, namespace, "llama-b") == states["llama-b"]
    assert dict(real.nodes_labelled(admin, key)) == {}
    wait_for("the copy gone", lambda: admin.get_or_none(r.CLUSTER_BASE_MODELS, copy) is None)


@pytest.mark.usefixtures("claim", "copies")
def test_multi_node_leader_and_worker_are_both_switched(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    ready_model: ReadyModel,
    isvcs: list[str],
) -> None:
    runtime = f"kwok-mn-{real.run_id()}"
    real.create_runtime(admin, runtime, workers=1)
    try:
        real.create_isvc(admin, namespace, "llama", ready_model.name, runtime)
        isvcs.append("llama")
        lws = wait_for(
            "OME's LeaderWorkerSet",
            lambda: next(iter(admin.list(r.LEADER_WORKER_SETS, namespace)), None),
        )
        before = isvc_state(admin, namespace, "llama")
        patch(plugin, namespace, "llama", ready_model.name)
        spec = admin.get(r.INFERENCE_SERVICES, "llama", namespace)["spec"]["engine"]
        assert {"leader", "worker"} <= set(spec)

        def switched() -> Obj | None:
            found = admin.get(r.LEADER_WORKER_SETS, lws["metadata"]["name"], namespace)
            lwt = found["spec"]["leaderWorkerTemplate"]
            for role in ("leaderTemplate", "workerTemplate"):
                volumes = {v["name"]: v for v in lwt[role]["spec"].get("volumes") or []}
                if isvc_route.VOLUME not in volumes or any(
                    "hostPath" in v for v in volumes.values()
                ):
                    return None
            return dict(found)

        found = wait_for("OME to switch leader and worker", switched)
        for role in ("leaderTemplate", "workerTemplate"):
            (container,) = [
                c
                for c in found["spec"]["leaderWorkerTemplate"][role]["spec"]["containers"]
                if c["name"] == "ome-container"
            ]
            assert any(m["name"] == isvc_route.VOLUME for m in container["volumeMounts"]), role
        undone = plugin("unpatch", "llama", "-n", namespace, "--no-wait")
        assert undone.exit_code == 0, undone.output
        assert isvc_state(admin, namespace, "llama") == before
    finally:
        real.delete_isvc(admin, namespace, "llama")
        isvcs.remove("llama")
        admin.delete(real.RUNTIMES, runtime)


@pytest.mark.usefixtures("claim", "copies")
def test_status_names_the_route_on_omes_own_workloads(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    ready_model: ReadyModel,
    runtime: str,
    isvcs: list[str],
) -> None:
    serve(admin, namespace, isvcs, "llama", ready_model.name, runtime)
    # --wait (the default): until OME has re-rendered the engine and its pods have rolled out
    copy = copy_of(ready_model.name, namespace)
    waited = plugin("patch", "llama", "-n", namespace, "--claim", CLAIM, "--strategy", "isvc",
                    "--model-name", copy, "--timeout", "150s")  # fmt: skip
    assert waited.exit_code == 0, waited.output
    assert engine_on_claim(admin, namespace, "llama")() is not None
    shown = plugin("status", copy, "-o", "json")
    assert shown.exit_code == 0, shown.output
    item = json.loads(shown.stdout)
    item = item["items"][0] if "items" in item else item
    (service,) = item["inferenceServices"]
    assert service["route"] == "isvc"
    assert [w["description"] for w in service["workloads"]] == ["pvc (isvc)"]
    codes = {d["code"]: d["severity"] for d in item["diagnoses"]}
    assert codes.get("pvc-isvc-route") == "info"
    assert "pvc-not-supported" not in codes
    table = plugin("status", copy)
    assert "pvc (isvc)" in table.stdout
    undone = plugin("unpatch", "llama", "-n", namespace, "--no-wait")
    assert undone.exit_code == 0, undone.output
