"""`kubectl ome-pvc copy` against the real control plane.

Real here: the API server admits the Job, the Job controller makes its pod, kube-scheduler puts
it on the chosen node, the garbage collector and the command delete them. The copy itself runs
in `StandInKubelet` (tests/e2e/kubelet.py), the one stand-in for a kubelet: it runs the pod's
own command with /bin/sh over local directories standing in for the node's hostPath and the
claim, because kwok runs no containers.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_omepvc.api.client import MERGE_PATCH, Client
from kubectl_omepvc.commands import copy as copy_command
from kubectl_omepvc.core import copy as c
from kubectl_omepvc.core import manifests as m
from kubectl_omepvc.core import naming
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.naming import ModelKind
from tests import factories
from tests.e2e.conftest import Plugin
from tests.e2e.kubelet import StandInKubelet
from tests.e2e.test_verify import eventually, schedulable_nodes  # noqa: F401 (autouse fixture)

Obj = dict[str, Any]
NODE = "gpu-node-2"
CLAIM = "shared"
FILES = {
    "config.json": b'{"model_type": "llama"}\n',
    "tokenizer.json": b"{}\n",
    "model-00001-of-00002.safetensors": b"\1" * 70_000,
    "model-00002-of-00002.safetensors": b"\2" * 50_000,
    "model.safetensors.index.json": b"{}\n",
}


class Setup:
    """A ClusterBaseModel Ready on NODE under its own agent root, its files on the 'node',
    and an NFS claim (ReadWriteMany) whose 'volume' is a local directory."""

    def __init__(self, admin: Client, namespace: str, tmp_path: Path) -> None:
        token = secrets.token_hex(3)
        self.admin, self.namespace = admin, namespace
        self.root = f"/raid/models-{token}"
        self.model = f"copy-{token}"
        self.path = f"{self.root}/meta/{self.model}"
        self.sub_path = f"meta/{self.model}"
        self.label_key = naming.model_label_key(ModelKind.CLUSTER, self.model)
        self.host_root = tmp_path / "node"
        self.claim_dir = tmp_path / "claim"
        self.cleanups: list[Callable[[], object]] = []
        self.claim_dir.mkdir()
        self.source = self.host_root / self.path.lstrip("/")
        self.source.mkdir(parents=True)
        for name, data in FILES.items():
            (self.source / name).write_bytes(data)

    def kubelet(self, monkeypatch: pytest.MonkeyPatch) -> StandInKubelet:
        return StandInKubelet(
            self.admin,
            self.namespace,
            monkeypatch,
            host_root=self.host_root,
            claims={CLAIM: self.claim_dir},
        )

    def jobs_and_pods(self) -> list[str]:
        found = [f"job/{j['metadata']['name']}" for j in self.admin.list(r.JOBS, self.namespace)]
        return found + [
            f"pod/{p['metadata']['name']}" for p in self.admin.list(r.PODS, self.namespace)
        ]

    def nothing_left(self) -> bool:
        return eventually(lambda: self.jobs_and_pods() == [], timeout=20)


@pytest.fixture
def setup(plugin: Plugin, admin: Client, namespace: str, tmp_path: Path) -> Iterator[Setup]:
    s = Setup(admin, namespace, tmp_path)
    agent = factories.agent_daemonset(models_root=s.root, host_path=s.root)
    agent["metadata"]["name"] = f"ome-model-agent-{s.model}"
    if admin.get_or_none(r.NAMESPACES, "ome") is None:
        admin.create(
            r.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ome"}}
        )
    admin.create(r.DAEMON_SETS, agent, "ome")
    model = factories.cluster_base_model(s.model, path=s.path, nodes_ready=(NODE,))
    status = model.pop("status")
    del model["metadata"]["finalizers"]
    admin.create(r.CLUSTER_BASE_MODELS, model)
    admin.request(
        "PATCH",
        r.CLUSTER_BASE_MODELS.path(None, s.model) + "/status",
        body={"status": status},
        content_type=MERGE_PATCH,
    )
    admin.patch(
        r.NODES, NODE, {"metadata": {"labels": {s.label_key: "Ready"}}}, content_type=MERGE_PATCH
    )
    created = plugin(
        "create", CLAIM, "-n", namespace, "--nfs-server", "10.0.0.50", "--nfs-path",
        "/export/models", "--size", "10Gi", "--access-mode", "ReadWriteMany",
    )  # fmt: skip
    assert created.exit_code == 0, created.stderr
    yield s
    admin.patch(
        r.NODES, NODE, {"metadata": {"labels": {s.label_key: None}}}, content_type=MERGE_PATCH
    )
    admin.delete(r.CLUSTER_BASE_MODELS, s.model)
    admin.delete(r.DAEMON_SETS, agent["metadata"]["name"], "ome")
    admin.delete(r.PVS, m.pv_name(namespace, CLAIM))


def test_copy_runs_on_the_source_node_and_leaves_nothing(
    plugin: Plugin, setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = setup
    with s.kubelet(monkeypatch) as kubelet:
        result = plugin("copy", s.model, "--claim", CLAIM, "-n", s.namespace)
    assert result.exit_code == 0, result.output
    # The pod as kube-scheduler placed it, with the volumes the copy needs.
    (pod,) = kubelet.pods.values()
    assert pod["spec"]["nodeName"] == NODE
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["source"]["hostPath"] == {"path": s.path, "type": "Directory"}
    assert volumes["target"]["persistentVolumeClaim"] == {"claimName": CLAIM}
    mounts = {v["name"]: v for v in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["source"]["readOnly"] is True
    assert mounts["target"]["subPath"] == s.sub_path and not mounts["target"].get("readOnly")
    # The files, checked, on the 'claim' at the sub-path; the manifest next to them.
    target = s.claim_dir / s.sub_path
    assert {p.name: p.read_bytes() for p in target.iterdir() if p.name in FILES} == FILES
    manifest = json.loads((target / ".ome-pvc-copy.json").read_text())
    assert manifest["sourceNode"] == NODE and manifest["count"] == len(FILES)
    assert f"copied {len(FILES)} files" in result.stdout
    # Progress, as plain lines off a terminal: files and bytes done of the total.
    assert f"{len(FILES)}/{len(FILES)} files, " in result.stderr
    assert f"kubectl ome-pvc verify {CLAIM} -n {s.namespace}" in result.stderr
    assert f"--claim {CLAIM}" in result.stderr.splitlines()[-1]  # patch comes last
    # The sub-path is recorded on the claim for patch and verify.
    claim = s.admin.get(r.PVCS, CLAIM, s.namespace)
    assert claim["metadata"]["annotations"][m.SUB_PATH_ANNOTATION] == s.sub_path
    assert s.nothing_left()

    # A rerun copies nothing and still leaves nothing behind.
    with s.kubelet(monkeypatch):
        again = plugin("copy", s.model, "--claim", CLAIM, "-n", s.namespace, "-o", "json")
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert (report["skipped"], report["copied"]) == (len(FILES), 0)
    assert s.nothing_left()


def test_failed_copy_is_reported_and_cleaned_up(
    plugin: Plugin, setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = setup
    (s.source / "config.json").unlink()
    with s.kubelet(monkeypatch):
        result = plugin("copy", s.model, "--claim", CLAIM, "-n", s.namespace)
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert f"the copy failed: source {s.path} on node {NODE} has no config.json" in last
    assert list((s.claim_dir / s.sub_path).iterdir()) == []
    assert s.nothing_left()


def test_interrupt_deletes_the_job_and_its_pod(
    plugin: Plugin, setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = setup
    seen: list[str] = []

    def interrupted(*args: Any) -> None:
        seen.extend(s.jobs_and_pods())
        raise KeyboardInterrupt

    # Ctrl-C while the command follows the Job it created.
    monkeypatch.setattr(copy_command, "_read_progress", interrupted)
    result = plugin("copy", s.model, "--claim", CLAIM, "-n", s.namespace)
    assert result.exit_code == 130  # as a shell reports Ctrl-C
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"interrupted: job/{c.job_name(CLAIM)} was deleted; the files copied so far stay on"
        f" claim {CLAIM}: run the same command again to resume"
    )
    assert f"job/{c.job_name(CLAIM)}" in seen
    assert s.nothing_left()


def test_keep_job_and_no_wait_then_status(
    plugin: Plugin, setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = setup
    job = c.job_name(CLAIM)
    started = plugin("copy", s.model, "--claim", CLAIM, "-n", s.namespace, "--no-wait")
    assert started.exit_code == 0, started.output
    assert f"copy --status --claim {CLAIM}" in started.stderr
    kept = s.admin.get(r.JOBS, job, s.namespace)
    assert kept["spec"]["ttlSecondsAfterFinished"] == 24 * 3600
    busy = plugin("copy", s.model, "--claim", CLAIM, "-n", s.namespace)
    assert busy.exit_code == 1 and "already running" in busy.stderr
    shown = plugin("status", s.model)
    assert shown.exit_code == 0, shown.output
    assert (
        f"copy to claim {s.namespace}/{CLAIM} from {NODE}:{s.path}: Running; progress:"
        f" kubectl ome-pvc copy --status --claim {CLAIM} -n {s.namespace}"
    ) in shown.stderr
    with s.kubelet(monkeypatch):
        assert eventually(
            lambda: c.job_finished(s.admin.get(r.JOBS, job, s.namespace)) == "Complete", 30
        )
        status = plugin("copy", "--status", "--claim", CLAIM, "-n", s.namespace, "-o", "json")
    assert status.exit_code == 0, status.output
    doc = json.loads(status.stdout)
    assert doc["state"] == "Complete" and doc["node"] == NODE
    assert doc["progress"]["files"] == {"done": len(FILES), "total": len(FILES)}
    assert doc["progress"]["done"] is True
    s.admin.delete(r.JOBS, job, s.namespace, propagation="Background")
    assert eventually(lambda: s.admin.get_or_none(r.JOBS, job, s.namespace) is None, 20)

    # --keep-job: followed to its end like any copy, then left for a look.
    with s.kubelet(monkeypatch):
        kept_run = plugin("copy", s.model, "--claim", CLAIM, "-n", s.namespace, "--keep-job")
    assert kept_run.exit_code == 0, kept_run.output
    left = s.admin.get(r.JOBS, job, s.namespace)
    assert c.job_finished(left) == "Complete" and "ttlSecondsAfterFinished" not in left["spec"]
    s.admin.delete(r.JOBS, job, s.namespace, propagation="Background")


def test_dry_runs_write_nothing(plugin: Plugin, setup: Setup) -> None:
    s = setup
    client = plugin("copy", s.model, "--claim", CLAIM, "-n", s.namespace, "--dry-run=client")
    assert client.exit_code == 0, client.output
    job = yaml.safe_load(client.stdout)
    assert job["kind"] == "Job" and job["metadata"]["name"] == c.job_name(CLAIM)
    server = plugin(
        "copy", s.model, "--claim", CLAIM, "-n", s.namespace, "--dry-run=server", "-o", "json"
    )
    assert server.exit_code == 0, server.output
    answer = json.loads(server.stdout)
    assert answer["metadata"]["uid"]  # the server built it ...
    assert s.jobs_and_pods() == []  # ... and stored nothing


def _claim_pending(s: Setup) -> list[str]:
    s.admin.create(r.PVCS, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "ro"},
        "spec": {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": "1Gi"}},
                 "storageClassName": "", "volumeName": "nothing-yet"},
    }, s.namespace)  # fmt: skip
    return ["--claim", "ro"]


def _not_ready_anywhere(s: Setup) -> list[str]:
    s.admin.request(
        "PATCH",
        r.CLUSTER_BASE_MODELS.path(None, s.model) + "/status",
        body={"status": {"nodesReady": None}},
        content_type=MERGE_PATCH,
    )
    return []


def _agent_reports_a_larger_model(s: Setup) -> list[str]:
    """The agent's ConfigMap entry for the model on NODE, with its size (20 GiB > 10Gi)."""
    entry = {"name": s.model, "status": "Ready", "progress": {"totalBytes": 20 << 30}}
    key = naming.model_configmap_key(ModelKind.CLUSTER, s.model)
    data = {key: json.dumps(entry)}
    if s.admin.get_or_none(r.CONFIG_MAPS, NODE, "ome") is None:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": NODE}}
        s.admin.create(r.CONFIG_MAPS, {**body, "data": data}, "ome")
    else:
        s.admin.patch(
            r.CONFIG_MAPS, NODE, {"data": data}, namespace="ome", content_type=MERGE_PATCH
        )
    s.cleanups.append(
        lambda: s.admin.patch(
            r.CONFIG_MAPS, NODE, {"data": {key: None}}, namespace="ome", content_type=MERGE_PATCH
        )
    )
    return []


REFUSALS: dict[str, tuple[Callable[[Setup], list[str]], str]] = {
    "ready-on-no-node": (_not_ready_anywhere, "is Ready on no node"),
    "node-without-the-model": (
        lambda s: ["--from-node", "gpu-node-1"],
        "node gpu-node-1 does not hold model",
    ),
    "missing-claim": (lambda s: ["--claim", "nope"], 'claim "nope" not found'),
    "claim-not-bound": (_claim_pending, "Pending, not Bound"),
    "claim-smaller-than-model": (_agent_reports_a_larger_model, "is too small: it holds 10Gi"),
    "escaping-sub-path": (lambda s: ["--sub-path", "../etc"], "'..'"),
    "absolute-sub-path": (lambda s: ["--sub-path", "/etc"], "starts with '/'"),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_refusals_change_nothing(
    plugin: Plugin, setup: Setup, case: tuple[Callable[[Setup], list[str]], str]
) -> None:
    s = setup
    arrange, says = case
    flags = arrange(s)
    before = s.admin.get(r.PVCS, CLAIM, s.namespace)
    argv = ["copy", s.model, "-n", s.namespace]
    if "--claim" not in flags:
        argv += ["--claim", CLAIM]
    result = plugin(*argv, *flags)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert s.jobs_and_pods() == []
    after = s.admin.get(r.PVCS, CLAIM, s.namespace)
    # (its resourceVersion moves as the volume controller finishes binding it)
    assert after["metadata"].get("annotations") == before["metadata"].get("annotations")
    assert after["spec"] == before["spec"]
    assert list(s.claim_dir.iterdir()) == []


def test_read_only_many_claim_is_refused(plugin: Plugin, setup: Setup) -> None:
    s = setup
    made = plugin(
        "create", "ro-nfs", "-n", s.namespace, "--nfs-server", "10.0.0.50", "--nfs-path",
        "/export/models", "--size", "1Gi",
    )  # fmt: skip
    try:
        assert made.exit_code == 0, made.stderr
        result = plugin("copy", s.model, "--claim", "ro-nfs", "-n", s.namespace)
        assert result.exit_code == 1
        assert "it is ReadOnlyMany: no pod may write to it" in result.stderr
        assert "--access-mode ReadWriteMany" in result.stderr
        assert s.jobs_and_pods() == []
    finally:
        s.admin.delete(r.PVS, m.pv_name(s.namespace, "ro-nfs"))


def test_timeout_or_no_log_still_cleans_up(plugin: Plugin, setup: Setup) -> None:
    """No stand-in here: nothing runs the container, so no log ever shows the copy done. The
    command gives up (at --timeout, or when kwok reports the pod done without a log) and
    deletes what it made."""
    s = setup
    result = plugin("copy", s.model, "--claim", CLAIM, "-n", s.namespace, "--timeout", "3s")
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "did not finish within 3s" in last or "the copy failed" in last, last
    assert "it resumes" in last or "raise --timeout" in last
    assert f"job/{c.job_name(CLAIM)} and its pod deleted" in result.stderr
    assert s.nothing_left()
    assert list((s.claim_dir).iterdir()) == []
