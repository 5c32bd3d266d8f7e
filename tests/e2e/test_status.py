"""`kubectl ome-pvc status` against the real control plane.

The server creates each situation the diagnoses describe: model status written through the
status subresource, model labels on kwok nodes, agent ConfigMaps in `ome`, an agent DaemonSet with
its hostPath, InferenceServices whose engine pods kube-scheduler leaves Pending, claims the PV
binder binds (or cannot), a metadata Job the Job controller fails, RBAC that denies reads.

Everything is named `st-<run>-*`; models carry the label `ome-pvc.io/e2e-run=<run>` so the
overview can be narrowed to them (other sessions share the cluster). The kwok nodes are tainted,
so nobody else's pods land on them.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import json
import secrets
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import yaml

from kubectl_omepvc import errors
from kubectl_omepvc.api import gather
from kubectl_omepvc.api.client import MERGE_PATCH, Client
from kubectl_omepvc.core import agent, naming
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.naming import ModelKind
from tests import factories as f
from tests.e2e.conftest import REPO, Cluster, Plugin

Obj = dict[str, Any]
RUN_LABEL = "ome-pvc.io/e2e-run"
TAINT_KEY = "ome-pvc.io/e2e"
ROOT = "/raid/models"
RBAC = "rbac.authorization.k8s.io"
CLUSTER_ROLES = r.ResourceRef(RBAC, "v1", "clusterroles", "ClusterRole", False)
CLUSTER_ROLE_BINDINGS = r.ResourceRef(
    RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", False
)
NODE_SIZE = {"cpu": "64", "memory": "512Gi", "pods": "110", "nvidia.com/gpu": "8"}
LONG_TAIL = "llama-4-maverick-17b-128e-instruct"


def ts(minutes_ago: float = 0.0) -> str:
    moment = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def set_status(admin: Client, ref: r.ResourceRef, name: str, ns: str | None, status: Obj) -> None:
    admin.request(
        "PATCH",
        ref.path(ns, name) + "/status",
        body={"status": status},
        content_type=MERGE_PATCH,
        verb="patch",
        resource=ref.display,
    )


@dataclasses.dataclass
class World:
    """The objects every test reads; names in one place."""

    admin: Client
    run: str
    ns: str
    nodes: tuple[str, str, str]
    created: list[tuple[r.ResourceRef, str, str | None]] = dataclasses.field(default_factory=list)

    def name(self, suffix: str) -> str:
        return f"st-{self.run}-{suffix}"

    @property
    def selector(self) -> str:
        return f"{RUN_LABEL}={self.run}"

    def create(self, ref: r.ResourceRef, obj: Obj, ns: str | None = None) -> Obj:
        out = self.admin.create(ref, obj, ns)
        if not ref.namespaced or ns == naming.AGENT_NAMESPACE:
            self.created.append((ref, obj["metadata"]["name"], ns))
        return out

    def model(self, obj: Obj, *, labels: dict[str, str] | None = None) -> str:
        """Create a model as OME's users do, then write its status as OME's controller does."""
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        meta.pop("finalizers", None)  # no OME controller here to remove them
        meta.pop("creationTimestamp", None)
        meta["labels"] = {RUN_LABEL: self.run, **(labels or {})}
        obj["spec"]["storage"].setdefault("nodeSelector", {RUN_LABEL: self.run})
        status = obj.pop("status", None)
        cluster = obj["kind"] == ModelKind.CLUSTER.value
        ref = r.CLUSTER_BASE_MODELS if cluster else r.BASE_MODELS
        ns = None if cluster else meta["namespace"]
        self.create(ref, obj, ns)
        if status:
            set_status(self.admin, ref, meta["name"], ns, status)
        return str(meta["name"])

    def label_node(self, node: str, labels: dict[str, str | None]) -> None:
        self.admin.patch(r.NODES, node, {"metadata": {"labels": labels}}, content_type=MERGE_PATCH)

    def agent_configmap(self, node: str, entries: dict[str, str]) -> None:
        self.create(r.CONFIG_MAPS, f.agent_configmap(node, entries), naming.AGENT_NAMESPACE)


def kwok_node(name: str, run: str) -> Obj:
    """A fake node kwok keeps Ready (hack/kwok-node.yaml), tainted for this run only."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "type": "kwok",
                RUN_LABEL: run,
            },
        },
        "spec": {"taints": [{"key": TAINT_KEY, "value": run, "effect": "NoSchedule"}]},
        "status": {"allocatable": NODE_SIZE, "capacity": NODE_SIZE},
    }


def add_node(world: World, name: str) -> None:
    node = kwok_node(name, world.run)
    world.create(r.NODES, node)
    # The API server taints new nodes not-ready; the node lifecycle controller, which would lift
    # it once kwok reports Ready, does not run here.
    world.admin.patch(
        r.NODES, name, {"spec": {"taints": node["spec"]["taints"]}}, content_type=MERGE_PATCH
    )


def toleration(run: str) -> Obj:
    return {"key": TAINT_KEY, "operator": "Equal", "value": run, "effect": "NoSchedule"}


def entry(name: str, state: str, progress_minutes_ago: float | None = None) -> str:
    progress = None
    if progress_minutes_ago is not None:
        progress = f.progress(minutes_ago=0)
        progress["lastUpdated"] = ts(progress_minutes_ago)
    return f.agent_entry(name, state, progress)


def cbm_key(name: str) -> str:
    return naming.cluster_model_configmap_key(name)


def cbm_label(name: str) -> str:
    return naming.cluster_model_label_key(name)


# -- the world ---------------------------------------------------------------------------------


def _ensure_namespace(admin: Client, name: str) -> None:
    with contextlib.suppress(errors.Conflict):  # `ome` may exist already
        admin.create(
            r.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )


def _engine(world: World, isvc: str, model: str, uid: str, *, runs: bool) -> Obj:
    path = f"{ROOT}/meta/{model}"
    deployment = f.engine_deployment(isvc, model, path, namespace=world.ns, isvc_uid=uid)
    deployment.pop("status")
    spec = deployment["spec"]["template"]["spec"]
    spec["tolerations"] = [toleration(world.run)]
    if runs:  # a node carries the model label Ready: the scheduler places it there
        spec["nodeSelector"][RUN_LABEL] = world.run
    return deployment


def _isvc(world: World, name: str, model: str, kind: ModelKind | None = None) -> str:
    isvc = f.inference_service(world.ns, name, model, kind=kind)
    isvc["metadata"].pop("uid")
    return str(world.create(r.INFERENCE_SERVICES, isvc, world.ns)["metadata"]["uid"])


def _seed(world: World) -> None:
    w, (a, b, c) = world, world.nodes
    ds = f.agent_daemonset(models_root=ROOT, host_path=ROOT)
    ds["metadata"]["name"] = w.name("model-agent")
    pod_spec = ds["spec"]["template"]["spec"]
    pod_spec["nodeSelector"] = {RUN_LABEL: w.run}
    pod_spec["tolerations"] = [toleration(w.run)]
    labels = {"app.kubernetes.io/name": w.name("model-agent")}
    ds["spec"]["selector"]["matchLabels"] = labels
    ds["spec"]["template"]["metadata"]["labels"] = labels
    w.create(r.DAEMON_SETS, ds, naming.AGENT_NAMESPACE)

    ready = w.model(f.cluster_base_model(w.name("ready"), state="Ready", nodes_ready=[a, b, c]))
    dl = w.model(f.cluster_base_model(w.name("dl"), nodes_failed=[c]))
    s3 = w.model(f.cluster_base_model(w.name("s3"), uri="s3://models/llama"))
    w.model(f.cluster_base_model(w.name("outside"), path="/opt/models/llama"))
    mismatch = w.model(f.cluster_base_model(w.name("mismatch")))
    orphan = w.model(f.cluster_base_model(w.name("orphan")))
    w.model(f.cluster_base_model(w.name("off"), disabled=True))
    w.model(f.cluster_base_model(w.name("nomatch"), node_selector={RUN_LABEL: "nobody"}))
    long = w.model(f.cluster_base_model(w.name(LONG_TAIL), state="Ready", nodes_ready=[a]))
    failed = w.model(f.cluster_base_model(w.name("failed"), nodes_failed=[a, b, c]))
    bad = w.model(f.cluster_base_model(w.name("bad")))

    node_labels: dict[str, dict[str, str | None]] = {a: {}, b: {}, c: {}}
    entries: dict[str, dict[str, str]] = {a: {}, b: {}, c: {}}

    def on(node: str, model: str, label: str | None, cm: str | None) -> None:
        node_labels[node][cbm_label(model)] = label
        if cm is not None:
            entries[node][cbm_key(model)] = cm

    for n in (a, b, c):
        on(n, ready, "Ready", entry(ready, "Ready"))
        on(n, s3, "Updating", entry(s3, "Updating"))
        on(n, failed, "Failed", entry(failed, "Failed"))
    on(a, dl, "Updating", entry(dl, "Updating", progress_minutes_ago=1))
    on(b, dl, "Updating", entry(dl, "Updating", progress_minutes_ago=120))
    on(c, dl, "Failed", entry(dl, "Failed"))
    on(a, mismatch, "Updating", entry(mismatch, "Ready"))
    on(a, long, "Ready", entry(long, "Ready"))
    entries[a][cbm_key(bad)] = "{not json"
    for n in (a, b, c):
        w.label_node(n, node_labels[n])
        w.agent_configmap(n, entries[n])
    # The agent's ConfigMap of a node that is gone (OME ignores it).
    w.agent_configmap(w.name("gone"), {cbm_key(orphan): entry(orphan, "Ready")})

    # pvc:// models: a claim the PV binder binds to a local volume on node a, one it cannot bind.
    pv = f.pv(w.name("pv"), local_path=ROOT, nodes=[a])
    pv["spec"]["storageClassName"] = w.name("local")
    pv["spec"].pop("capacity")
    pv["spec"]["capacity"] = {"storage": "100Gi"}
    pv.pop("status")
    w.create(r.PVS, pv)
    bound = f.pvc(w.ns, w.name("bound"), phase="Pending", storage_class=w.name("local"))
    bound.pop("status")
    w.create(r.PVCS, bound, w.ns)
    unbound = f.pvc(w.ns, w.name("unbound"), phase="Pending", storage_class=w.name("none"))
    unbound.pop("status")
    w.create(r.PVCS, unbound, w.ns)
    pvc_model = w.model(
        f.cluster_base_model(
            w.name("pvc"), path=None, uri=f"pvc://{w.ns}:{w.name('bound')}/meta/llama"
        )
    )
    w.model(f.base_model(w.ns, w.name("unbound"), path=None, uri=f"pvc://{w.name('unbound')}/x"))
    # Same name as a ClusterBaseModel: -n decides which one `status NAME` shows.
    w.model(f.base_model(w.ns, ready, state="Ready"))

    # Serving: one isvc on the pvc:// model (pods Pending on the model nodeSelector), one on the
    # Ready model (pods Running on hostPath), one switched to a claim by this plugin.
    uid = _isvc(w, w.name("svc"), pvc_model)
    w.create(r.DEPLOYMENTS, _engine(w, w.name("svc"), pvc_model, uid, runs=False), w.ns)
    uid = _isvc(w, w.name("web"), ready, ModelKind.CLUSTER)
    w.create(r.DEPLOYMENTS, _engine(w, w.name("web"), ready, uid, runs=True), w.ns)
    uid = _isvc(w, w.name("moved"), ready, ModelKind.CLUSTER)
    moved = f.patched(_engine(w, w.name("moved"), ready, uid, runs=True), "policy", w.name("bound"))
    w.create(r.DEPLOYMENTS, moved, w.ns)
    # An isvc of a model whose download failed on every node: its pods wait for a Ready label.
    uid = _isvc(w, w.name("nowhere"), failed, ModelKind.CLUSTER)
    w.create(r.DEPLOYMENTS, _engine(w, w.name("nowhere"), failed, uid, runs=False), w.ns)

    # What the controllers do with these takes a while on a loaded machine: the claim's binding
    # and the running engines' rollouts are part of the world the tests read, not a race.
    def claim_bound() -> bool:
        claim = w.admin.get(r.PVCS, w.name("bound"), w.ns)
        return (claim.get("status") or {}).get("phase") == "Bound"

    wait_for("claim bound to be Bound", claim_bound, 180)
    for isvc in ("web", "moved"):
        wait_for(f"engine of {isvc} to roll out", functools.partial(_rolled_out, w, isvc), 180)


def _rolled_out(w: World, isvc: str) -> bool:
    engine = w.admin.get(r.DEPLOYMENTS, f"{w.name(isvc)}-engine", w.ns)
    status, want = engine.get("status") or {}, engine["spec"].get("replicas", 1)
    return bool(
        status.get("observedGeneration", 0) >= engine["metadata"]["generation"]
        and status.get("updatedReplicas") == want
        and status.get("readyReplicas") == want
    )


@pytest.fixture(scope="module")
def world(admin: Client) -> Iterator[World]:
    run = secrets.token_hex(3)
    ns = f"st-{run}"
    nodes = (f"st-{run}-a", f"st-{run}-b", f"st-{run}-c")
    _ensure_namespace(admin, naming.AGENT_NAMESPACE)
    _ensure_namespace(admin, ns)
    w = World(admin, run, ns, nodes)
    try:
        for node in nodes:
            add_node(w, node)
        _seed(w)
        yield w
    finally:
        _teardown(w)


def _teardown(w: World) -> None:
    # Pods first, while kwok still runs their nodes: pods of a deleted node wait for podgc.
    w.admin.delete(r.NAMESPACES, w.ns)
    for ref, name, obj_ns in reversed(w.created):
        if obj_ns == naming.AGENT_NAMESPACE:
            w.admin.delete(ref, name, obj_ns, propagation="Background")

    def pods_gone() -> bool:
        return not any(
            any(True for _ in w.admin.list(r.PODS, field_selector=f"spec.nodeName={node}"))
            for node in w.nodes
        )

    with contextlib.suppress(AssertionError):
        wait_for("the pods on this run's nodes to go", pods_gone, 20)
    for ref, name, obj_ns in reversed(w.created):
        if obj_ns != naming.AGENT_NAMESPACE:
            w.admin.delete(ref, name, obj_ns, propagation="Background")


def flat(text: str) -> str:
    """Text with runs of blanks squeezed, so assertions do not depend on column widths."""
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


@pytest.fixture
def sole_agent(world: World, admin: Client) -> None:
    """Wait until this run's agent DaemonSet is the only one in `ome` (the cluster is shared;
    with several, status rightly declines to check the host directory)."""

    def alone() -> bool:
        found = agent.model_agents(admin.list(r.DAEMON_SETS, naming.AGENT_NAMESPACE))
        return [d["metadata"]["name"] for d in found] == [world.name("model-agent")]

    wait_for("other sessions' model-agent DaemonSets to go", alone, 60)


def run_json(plugin: Plugin, *args: str) -> dict[str, Any]:
    result = plugin("status", *args, "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def items_by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{i['namespace'] or ''}/{i['name']}": i for i in doc["items"]}


def codes(item: dict[str, Any]) -> list[str]:
    return [d["code"] for d in item["diagnoses"]]


# -- overview ----------------------------------------------------------------------------------


def test_overview_table_and_footer_notes(plugin: Plugin, world: World) -> None:
    result = plugin("status", "-l", world.selector, "--kind", "cluster")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "NAME", "NAMESPACE", "STORAGE", "STATE", "READY", "FAILED", "DOWNLOADING", "AGE",
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows[world.name("ready")][3:7] == ["Ready", "3/3", "0", "0"]
    dl = rows[world.name("dl")]
    assert dl[3:6] == ["In_Transit", "0/3", "1"]
    assert dl[6] == "2" and dl[7].startswith("(") and dl[7].endswith("%)")
    assert rows[world.name("s3")][2] == "s3://models/llama"
    assert rows[world.name("pvc")][4] == "-"  # no per-node downloads for a claim
    assert rows[world.name("nomatch")][4] == "0/0"
    # One note per model that is not Ready, on stderr.
    notes = result.stderr.splitlines()
    assert f"{world.name('s3')}: OME's model-agent cannot download s3:// URIs" in result.stderr
    assert not any(n.startswith(f"{world.name('ready')}:") for n in notes)
    assert "forbidden" not in result.stderr
    assert "\033[" not in result.stdout  # colour only on a terminal


def test_overview_wide_shows_path_and_reason(
    plugin: Plugin, world: World, sole_agent: None
) -> None:
    result = plugin("status", "-l", world.selector, "--kind", "cluster", "-o", "wide")
    assert result.exit_code == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert rows[world.name("outside")][-2:] == ["/opt/models/llama", "path-outside-agent-root"]
    assert rows[world.name("dl")][-1] == "nodes-failed"
    assert rows[world.name("off")][-1] == "model-disabled"
    assert rows[world.name("ready")][-1] == "-"


def test_every_diagnosis_on_the_server(plugin: Plugin, world: World, sole_agent: None) -> None:
    doc = run_json(plugin, "-l", world.selector, "-A")
    items = items_by_name(doc)
    n, ns = world.name, world.ns
    expected = {
        f"/{n('dl')}": ["nodes-failed", "node-stalled"],
        f"/{n('s3')}": ["unsupported-scheme"],
        f"/{n('outside')}": ["path-outside-agent-root"],
        f"/{n('mismatch')}": ["label-configmap-mismatch"],
        f"/{n('orphan')}": ["configmap-orphaned"],
        f"/{n('off')}": ["model-disabled"],
        f"/{n('nomatch')}": ["no-matching-nodes"],
        f"/{n(LONG_TAIL)}": ["hashed-label-key"],
        # released OME: `patch` alone cannot help, so no workloads-pending pointing at it
        f"/{n('pvc')}": ["pvc-not-supported"],
        f"{ns}/{n('unbound')}": ["pvc-not-supported", "pvc-not-bound"],
        # A malformed agent entry is a warning (below), never a label/ConfigMap mismatch.
        f"/{n('bad')}": [],
    }
    actual = {key: codes(items[key]) for key in expected}
    assert actual == expected
    assert codes(items[f"/{n('ready')}"]) == []
    assert codes(items[f"{ns}/{n('ready')}"]) == []
    # The long name's state is read under OME's hashed label key.
    long = items[f"/{n(LONG_TAIL)}"]
    assert long["labelKeyHashed"] is True and long["ready"] == 1
    assert long["labelKey"] == naming.cluster_model_label_key(n(LONG_TAIL))
    # A malformed ConfigMap value: the node is unknown, with a warning, and the run goes on.
    bad = {row["node"]: row for row in items[f"/{n('bad')}"]["nodes"]}
    assert bad[world.nodes[0]]["state"] == "unknown"
    assert any("is not valid JSON" in w for w in doc["warnings"])
    # next commands name the real commands.
    pvc_next = {d["code"]: d["next"] for d in items[f"/{n('pvc')}"]["diagnoses"]}
    # released OME: point the isvc at a hostPath model first, then patch (said in the message)
    assert pvc_next["pvc-not-supported"] == f"kubectl edit inferenceservice {n('svc')} -n {ns}"
    assert doc["apiVersion"] == "ome-pvc.io/v1alpha1" and doc["kind"] == "ModelStatusList"
    assert items[f"/{n('pvc')}"]["metadataJobs"] is None


# Placeholders a hint asks the user to choose, and what the test chooses for them.
CHOSEN = {"CLAIM": "hint-claim", "SIZE": "1Gi"}
# Writes run as server dry runs: the server still checks them, and the world stays as it is.
WRITES = {"create", "patch", "delete", "unpatch", "label", "annotate"}


def run_hint(plugin: Plugin, cluster: Cluster, hint: str) -> tuple[int, str]:
    """Run a diagnosis's `next` command as printed, names it leaves to the user filled in."""
    argv = [CHOSEN.get(word, word) for word in shlex.split(hint)]
    assert argv[0] == "kubectl", hint
    if argv[1] == "ome-pvc":
        args = [a for a in argv[2:] if a != "--watch"]  # it would never return
        if args[0] in WRITES:
            args.append("--dry-run=server")
        result = plugin(*args)
        return result.exit_code, result.output
    args = argv[1:]
    if args[0] in WRITES:
        args.append("--dry-run=server")
    done = subprocess.run(
        [str(cluster.bin_dir / "kubectl"), "--context", "local-admin", *args],
        env={**cluster.env, "EDITOR": "true", "KUBE_EDITOR": "true"},  # edit: saved unchanged
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_every_next_command_works_as_printed(
    plugin: Plugin, cluster: Cluster, world: World, sole_agent: None
) -> None:
    """No hint is a usage error or a refusal in the situation it is given for."""
    doc = run_json(plugin, "-l", world.selector, "-A")
    hints = {
        (f"{i['namespace'] or ''}/{i['name']}", d["code"]): d["next"]
        for i in doc["items"]
        for d in i["diagnoses"]
        if d["next"]
    }
    n = world.name
    assert hints[(f"/{n('failed')}", "workloads-pending")].startswith("kubectl get pods -n ome")
    assert hints[(f"{world.ns}/{n('unbound')}", "pvc-not-supported")] == (
        f"kubectl delete basemodel {n('unbound')} -n {world.ns}"
    )
    covered = {code for _, code in hints}
    assert {"pvc-not-supported", "workloads-pending", "nodes-failed", "model-disabled",
            "unsupported-scheme", "configmap-orphaned", "pvc-not-bound"} <= covered  # fmt: skip
    failures = []
    for (model, code), hint in sorted(hints.items()):
        exit_code, output = run_hint(plugin, cluster, hint)
        if exit_code != 0:
            failures.append(f"{model} {code}: `{hint}` exited {exit_code}: {output.strip()}")
    assert not failures, "\n".join(failures)


def test_verbose_request_lines_are_whole(plugin: Plugin, world: World) -> None:
    """-v: one request per line, though status reads from several threads at once."""
    result = plugin("status", "-A", "-l", world.selector, "-v")
    assert result.exit_code == 0, result.stderr
    requests = [line for line in result.stderr.splitlines() if "kubectl-ome-pvc: " in line]
    assert len(requests) >= 5
    for line in requests:
        assert line.startswith("kubectl-ome-pvc: GET https://"), line
        assert line.count("kubectl-ome-pvc:") == 1, line


def test_stalled_and_failed_nodes_are_named(plugin: Plugin, world: World) -> None:
    item = items_by_name(run_json(plugin, world.name("dl")))[f"/{world.name('dl')}"]
    a, b, c = world.nodes
    found = {d["code"]: d for d in item["diagnoses"]}
    assert c in found["nodes-failed"]["message"]
    assert b in found["node-stalled"]["message"] and a not in found["node-stalled"]["message"]
    assert found["nodes-failed"]["next"] == (
        f"kubectl get pods -n ome -o wide --field-selector spec.nodeName={c}"
    )
    rows = {row["node"]: row for row in item["nodes"]}
    assert rows[a]["phase"] == "downloading" and rows[a]["bytes"]["total"] == 16 * 2**30
    assert item["updatingNodes"] == [a, b] and item["failedNodes"] == [c]


def test_outputs_yaml_name_and_no_headers(plugin: Plugin, world: World) -> None:
    as_yaml = plugin("status", "-l", world.selector, "--kind", "cluster", "-o", "yaml")
    doc = yaml.safe_load(as_yaml.stdout)
    assert {i["name"] for i in doc["items"]} >= {world.name("ready"), world.name("dl")}
    names = plugin("status", "-l", world.selector, "--kind", "cluster", "-o", "name").stdout
    assert f"clusterbasemodel.ome.io/{world.name('ready')}" in names.splitlines()
    bare = plugin("status", "-l", world.selector, "--kind", "cluster", "--no-headers").stdout
    assert not bare.startswith("NAME") and world.name("ready") in bare


def test_kind_namespace_and_all_namespaces(plugin: Plugin, world: World) -> None:
    mine = items_by_name(run_json(plugin, "-l", world.selector, "-n", world.ns))
    assert f"{world.ns}/{world.name('unbound')}" in mine and f"/{world.name('dl')}" in mine
    only_ns = run_json(plugin, "-l", world.selector, "-n", world.ns, "--kind", "namespaced")
    assert {i["kind"] for i in only_ns["items"]} == {"BaseModel"}
    # The context's namespace (default) has none of this run's BaseModels; -A finds them.
    here = run_json(plugin, "-l", world.selector, "--kind", "namespaced")
    assert here["items"] == []
    everywhere = run_json(plugin, "-l", world.selector, "--kind", "namespaced", "-A")
    assert len(everywhere["items"]) == 2


def test_fail_if_not_ready_and_empty_result(plugin: Plugin, world: World) -> None:
    failing = plugin("status", "-l", world.selector, "--fail-if-not-ready")
    assert failing.exit_code == 1
    fine = plugin("status", world.name("ready"), "--fail-if-not-ready")
    assert fine.exit_code == 0, fine.stderr
    empty = plugin("status", "-l", f"{RUN_LABEL}=nobody", "--fail-if-not-ready")
    assert empty.exit_code == 0
    assert empty.stdout == ""
    assert empty.stderr.startswith(f"No models found matching {RUN_LABEL}=nobody")


def test_unknown_model_names_the_closest(plugin: Plugin, world: World) -> None:
    result = plugin("status", world.name("redy"))
    assert result.exit_code == 1
    assert f'model "{world.name("redy")}" not found' in result.stderr
    assert f"did you mean: {world.name('ready')}" in result.stderr
    assert "Traceback" not in result.output


# -- detail ------------------------------------------------------------------------------------


def test_detail_of_a_downloading_model(plugin: Plugin, world: World) -> None:
    result = plugin("status", world.name("dl"))
    assert result.exit_code == 0, result.stderr
    out = flat(result.stdout)
    a, _, c = world.nodes
    assert "Kind: ClusterBaseModel" in out
    assert f"Node selector: {RUN_LABEL}={world.run}" in out
    assert "0/3 Ready, 1 Failed, 2 Updating" in out
    table = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("st-")}
    assert table[a][1:5] == ["Updating", "Updating", "Updating", "downloading"]
    assert table[a][5] == "4.0GiB/16.0GiB"
    assert table[c][1:4] == ["Failed", "Failed", "Failed"]
    assert "nodes-failed:" in out and "node-stalled:" in out
    assert "next: kubectl get pods -n ome -o wide" in out


def test_detail_of_a_pvc_model_with_pending_workloads(
    plugin: Plugin, world: World, admin: Client
) -> None:
    # kube-scheduler really leaves the engine pod Pending: no node has the model label.
    def pending_pod() -> bool:
        pods = admin.list(r.PODS, world.ns, label_selector=f"app={world.name('svc')}-engine")
        for pod in pods:
            for cond in (pod.get("status") or {}).get("conditions") or []:
                if cond["type"] == "PodScheduled" and cond.get("reason") == "Unschedulable":
                    return True
        return False

    wait_for("the engine pod to be unschedulable", pending_pod)
    wait_for(
        "the claim to bind",
        lambda: admin.get(r.PVCS, world.name("bound"), world.ns)["status"]["phase"] == "Bound",
    )
    out = flat(plugin("status", world.name("pvc")).stdout)
    assert f"Claim: {world.ns}/{world.name('bound')}" in out
    assert "Phase: Bound" in out
    assert "Capacity: 100Gi" in out
    assert f"Storage class: {world.name('local')}" in out
    assert f"Volume: {world.name('pv')}" in out
    assert f"kubernetes.io/hostname In [{world.nodes[0]}]" in out
    assert f"{world.name('svc')}-engine" in out and "Pending (model nodeSelector)" in out
    assert "pvc-not-supported:" in out and "In_Transit forever" in out
    assert f"next: kubectl edit inferenceservice {world.name('svc')} -n {world.ns}" in out
    assert f"`kubectl ome-pvc patch {world.name('svc')} -n {world.ns}" in out
    assert "a hostPath model" in out


def test_detail_shows_hostpath_and_patched_workloads(
    plugin: Plugin, world: World, admin: Client
) -> None:
    wait_for(
        "the hostPath engine to run",
        lambda: (
            admin.get(r.DEPLOYMENTS, f"{world.name('web')}-engine", world.ns)
            .get("status", {})
            .get("readyReplicas")
        ),
    )
    doc = run_json(plugin, world.name("ready"))
    (item,) = doc["items"]
    assert item["kind"] == "ClusterBaseModel"
    workloads = {w["name"]: w for s in item["inferenceServices"] for w in s["workloads"] or []}
    web = workloads[f"{world.name('web')}-engine"]
    assert (web["mode"], web["readyReplicas"]) == ("hostPath", 1)
    moved = workloads[f"{world.name('moved')}-engine"]
    assert (moved["mode"], moved["strategy"]) == ("pvc-patched", "policy")
    text = plugin("status", world.name("ready")).stdout
    assert "pvc (patched by kubectl-ome-pvc: policy)" in text


def test_namespace_flag_picks_the_base_model(plugin: Plugin, world: World) -> None:
    name = world.name("ready")
    as_base = run_json(plugin, name, "-n", world.ns)["items"][0]
    assert (as_base["kind"], as_base["namespace"]) == ("BaseModel", world.ns)
    assert run_json(plugin, name)["items"][0]["kind"] == "ClusterBaseModel"
    # -n with no BaseModel of that name there: the ClusterBaseModel.
    assert run_json(plugin, world.name("dl"), "-n", world.ns)["items"][0]["kind"] == (
        "ClusterBaseModel"
    )
    unbound = flat(plugin("status", world.name("unbound"), "-n", world.ns).stdout)
    assert "Phase: Pending" in unbound
    assert "pvc-not-bound:" in unbound


# -- newer OME ---------------------------------------------------------------------------------


def test_native_pvc_conditions_and_metadata_job(
    plugin: Plugin, world: World, admin: Client, native_ome: None
) -> None:
    cond = f.condition
    missing = world.model(
        f.base_model(
            world.ns,
            world.name("nat-missing"),
            path=None,
            uri=f"pvc://{world.name('nowhere')}/meta/llama",
            conditions=[
                {
                    **cond("Ready", "False", "PVCNotFound", "claim not found"),
                    "lastTransitionTime": ts(2),
                },
                {**cond("SourceReachable", "False", "PVCNotFound"), "lastTransitionTime": ts(2)},
            ],
        )
    )
    extract = world.model(
        f.base_model(
            world.ns,
            world.name("nat-extract"),
            path=None,
            uri=f"pvc://{world.name('bound')}/meta/llama",
            conditions=[
                {
                    **cond("Ready", "False", "PVCMetadataExtractionFailed", "no config.json"),
                    "lastTransitionTime": ts(1),
                }
            ],
        )
    )
    # OME's metadata Job mounts the claim; the Job controller fails it at its deadline.
    job_name = world.name("nat-extract-metadata")
    job: Obj = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name,
            # OME main's labels (backends/pvc/metadata_job.go at 5ed809d2)
            "labels": {"models.ome/model-name": extract, "models.ome/model-scope": "namespaced"},
        },
        "spec": {
            "activeDeadlineSeconds": 1,
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"models.ome/model-name": extract,
                                        "models.ome/model-scope": "namespaced"}},
                "spec": {
                    "restartPolicy": "Never",
                    "tolerations": [toleration(world.run)],
                    "containers": [
                        {"name": "ome-agent", "image": "ghcr.io/moirai-internal/ome-agent:v0.1.5",
                         "args": ["model-metadata"],
                         "volumeMounts": [
                             {"name": "model", "mountPath": "/model", "readOnly": True}]}
                    ],
                    "volumes": [
                        {"name": "model", "persistentVolumeClaim": {
                            "claimName": world.name("bound"), "readOnly": True}}
                    ],
                }
            },
        },
    }  # fmt: skip
    admin.create(r.JOBS, job, world.ns)

    def job_failed() -> bool:
        status = admin.get(r.JOBS, job_name, world.ns).get("status") or {}
        return any(
            c["type"] == "Failed" and c["status"] == "True" for c in status.get("conditions") or []
        )

    wait_for("the metadata Job to fail", job_failed)
    items = items_by_name(run_json(plugin, "-l", world.selector, "-n", world.ns))
    gone = items[f"{world.ns}/{missing}"]
    assert "pvc-not-supported" not in codes(gone)
    assert "pvc-not-found" in codes(gone)
    assert gone["conditions"][0]["reason"] == "PVCNotFound"
    assert 100 <= gone["conditions"][0]["ageSeconds"] < 300
    failed = items[f"{world.ns}/{extract}"]
    assert codes(failed)[0] == "pvc-extraction-failed"
    (meta_job,) = failed["metadataJobs"]
    assert (meta_job["name"], meta_job["state"]) == (job_name, "Failed")
    assert meta_job["reason"] == "DeadlineExceeded"
    text = plugin("status", extract, "-n", world.ns).stdout
    assert "Conditions:" in text and "PVCMetadataExtractionFailed" in text
    assert f"{world.ns}/{job['metadata']['name']}: Failed (DeadlineExceeded" in text


# -- least privilege ---------------------------------------------------------------------------


@pytest.fixture
def models_only_reader(admin: Client, world: World) -> Iterator[None]:
    """Grant the restricted user get/list/watch on the model kinds, nothing else."""
    name = world.name("models-reader")
    role = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [
            {
                "apiGroups": ["ome.io"],
                "resources": ["clusterbasemodels", "basemodels"],
                "verbs": ["get", "list", "watch"],
            }
        ],
    }
    binding = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": RBAC, "kind": "User", "name": "restricted"}],
    }
    admin.create(CLUSTER_ROLES, role)
    admin.create(CLUSTER_ROLE_BINDINGS, binding)
    try:
        yield
    finally:
        admin.delete(CLUSTER_ROLE_BINDINGS, name)
        admin.delete(CLUSTER_ROLES, name)


def test_least_privilege_shows_states_and_warns(
    plugin: Plugin, world: World, cluster: Cluster, models_only_reader: None
) -> None:
    def listed() -> Any:
        result = plugin("status", "--context", "local-restricted", "-l", world.selector)
        return result if result.exit_code == 0 else None

    result = wait_for("the binding to take effect", listed)
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert rows[world.name("ready")][3:5] == ["Ready", "3/?"]
    assert rows[world.name("dl")][3:6] == ["In_Transit", "0/?", "1"]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert (
        "Warning: cannot list configmaps in namespace ome (forbidden): per-node progress omitted"
        in warnings
    )
    assert any("cannot list nodes (forbidden)" in w for w in warnings)
    assert any(
        "cannot list inferenceservices.ome.io in all namespaces (forbidden)" in w for w in warnings
    )
    assert any("cannot list daemonsets.apps in namespace ome (forbidden)" in w for w in warnings)
    assert len(warnings) == len(set(warnings))
    assert "Traceback" not in result.output
    detail = plugin("status", "--context", "local-restricted", world.name("pvc"))
    assert detail.exit_code == 0, detail.stderr
    assert "claim details omitted" in detail.stderr
    assert "State:" in detail.stdout and "In_Transit" in detail.stdout


@pytest.fixture
def full_reader(admin: Client, world: World) -> Iterator[str]:
    """A user (impersonated: the shared restricted user keeps its rights) bound to the
    ClusterRole the plugin ships for full `status` output."""
    user = world.name("viewer")
    role = gather.cluster_role(world.name("status"))
    binding: Obj = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": role["metadata"]["name"]},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role["metadata"]["name"]},
        "subjects": [{"apiGroup": RBAC, "kind": "User", "name": user}],
    }
    admin.create(CLUSTER_ROLES, role)
    admin.create(CLUSTER_ROLE_BINDINGS, binding)
    try:
        yield user
    finally:
        admin.delete(CLUSTER_ROLE_BINDINGS, binding["metadata"]["name"])
        admin.delete(CLUSTER_ROLES, role["metadata"]["name"])


def test_the_shipped_cluster_role_gives_the_full_output(
    plugin: Plugin, world: World, full_reader: str
) -> None:
    def listed() -> Any:
        result = plugin("status", "--as", full_reader, "-l", world.selector, "-A", "-o", "json")
        return result if result.exit_code == 0 else None

    result = wait_for("the binding to take effect", listed)
    assert "forbidden" not in result.stderr
    items = items_by_name(json.loads(result.stdout))
    ready = items[f"/{world.name('ready')}"]
    assert (ready["ready"], ready["targeted"]) == (3, 3)
    assert {s["name"] for s in ready["inferenceServices"]} == {
        world.name("web"), world.name("moved"),
    }  # fmt: skip
    assert items[f"/{world.name('pvc')}"]["claim"]["exists"] is True
    detail = plugin("status", "--as", full_reader, world.name("pvc"))
    assert detail.exit_code == 0 and "forbidden" not in detail.stderr


# -- watch -------------------------------------------------------------------------------------


class Lines:
    """A subprocess stream read line by line in the background."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)


def test_watch_shows_a_state_change_after_the_stream_closed(
    cluster: Cluster, world: World, admin: Client
) -> None:
    name = world.model(f.cluster_base_model(world.name("watch")), labels={"watched": world.run})
    argv = [
        sys.executable, "-m", "kubectl_omepvc", "status", "--watch", "--watch-timeout", "1", "-v",
        "-l", f"watched={world.run}", "--kubeconfig", str(cluster.kubeconfig),
        "--context", "local-admin",
    ]  # fmt: skip
    env = {**cluster.env, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    try:
        wait_for("the first render", lambda: any(name in line for line in out.lines), 20)
        assert "In_Transit" in out.text()
        resumed = "watch of clusterbasemodels closed by the server; resuming at"
        wait_for("the server to close the watch", lambda: resumed in err.text(), 20)
        set_status(admin, r.CLUSTER_BASE_MODELS, name, None, {"state": "Ready"})
        wait_for(
            "the new state",
            lambda: any(name in line and " Ready " in line for line in out.lines),
            20,
        )
        assert proc.poll() is None  # still following
        # The resumed watch started from the last resourceVersion seen.
        watches = [
            line for line in err.lines if "clusterbasemodels?" in line and "watch=true" in line
        ]
        assert len(watches) >= 2 and all("resourceVersion=" in w for w in watches)
    finally:
        proc.kill()
        proc.wait(10)


def test_watch_relists_after_410_gone(world: World, admin: Client) -> None:
    name = world.model(f.cluster_base_model(world.name("gone410")), labels={"gone": world.run})
    spec = gather.WatchSpec(
        r.CLUSTER_BASE_MODELS,
        label_selector=f"gone={world.run}",
        resource_version="1",  # far older than the server's watch cache: 410 Gone
        slim=gather.slim_model(ModelKind.CLUSTER),
    )
    seen: list[gather.Change] = []
    logs: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=gather.follow,
        args=(admin, spec, seen.append),
        kwargs={"timeout_seconds": 1, "stop": stop, "log": logs.append},
        daemon=True,
    )
    thread.start()
    try:
        relisted = wait_for("a re-list", lambda: [c for c in seen if c.type == "RELISTED"], 10)
        assert [i["metadata"]["name"] for i in relisted[0].items or []] == [name]
        assert any("410 Gone" in line for line in logs)
        set_status(admin, r.CLUSTER_BASE_MODELS, name, None, {"state": "Failed"})
        wait_for(
            "the change after the re-list",
            lambda: any(
                c.type == "MODIFIED" and (c.obj or {}).get("status", {}).get("state") == "Failed"
                for c in seen
            ),
            10,
        )
    finally:
        stop.set()
        thread.join(5)
