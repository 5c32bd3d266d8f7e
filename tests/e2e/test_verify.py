"""`kubectl ome-pvc verify` against the real control plane.

What the servers here really do: the API server admits the pod, kube-scheduler places it on a
node the claim's PV allows (its node affinity), kwok marks it Running, and the command deletes
it on every way out. What no server here can do is run a container: kwok has no kubelet that
executes the script or serves its log. `StandInKubelet` (tests/e2e/kubelet.py) is the ONE place
that stands in for a kubelet: it runs the pod's own command locally (over a temporary directory
standing in for the claim), hands its output to the command as the pod's log, and marks the pod
Succeeded. Everything else is real.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubectl_omepvc.api import storage
from kubectl_omepvc.api.client import JSON_PATCH, MERGE_PATCH, Client
from kubectl_omepvc.core import manifests as m
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core import verify as v
from kubectl_omepvc.errors import PluginError
from tests.e2e.conftest import Plugin
from tests.e2e.kubelet import StandInKubelet

Obj = dict[str, Any]
PV_NODE = "gpu-node-2"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


@pytest.fixture(scope="module", autouse=True)
def schedulable_nodes(admin: Client) -> None:
    """Lifts the stale not-ready taint from Ready nodes, as the node lifecycle controller would.

    The API server taints every new node `node.kubernetes.io/not-ready`; the node lifecycle
    controller lifts it only on its next pass over a node kwok reports Ready, and the verify
    pod would wait for that. Nodes that are not Ready keep it.
    """
    for node in admin.list(r.NODES):
        conditions = node.get("status", {}).get("conditions") or []
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        taints = node["spec"].get("taints") or []
        kept = [t for t in taints if t.get("key") != NOT_READY_TAINT]
        if ready and kept != taints:
            patch = [
                {"op": "test", "path": "/spec/taints", "value": taints},
                {"op": "replace", "path": "/spec/taints", "value": kept},
            ]
            # A failed test means someone else changed the taints meanwhile: fine either way.
            with contextlib.suppress(PluginError):
                admin.patch(r.NODES, node["metadata"]["name"], patch, content_type=JSON_PATCH)


@pytest.fixture
def claim(plugin: Plugin, admin: Client, namespace: str) -> Iterator[str]:
    """A local PV pinned to PV_NODE and its claim `llama`, sub-path recorded by `create`."""
    result = plugin(
        "create", "llama", "-n", namespace, "--local-path", "/raid/models", "--node", PV_NODE,
        "--size", "1Gi", "--sub-path", "meta/llama", "--no-storage-class",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    yield "llama"
    admin.delete(r.PVS, m.pv_name(namespace, "llama"))


class PodWatcher(threading.Thread):
    """Records the verify pod as the server has it, while the command runs in the foreground.

    With `finish` it also plays the kubelet (see the module docstring): once the pod
    runs on a node it is marked Succeeded, and `log` is what the command reads as its log.
    """

    def __init__(self, admin: Client, namespace: str, claim: str, finish: bool = False) -> None:
        super().__init__(daemon=True)
        self.admin, self.namespace, self.finish = admin, namespace, finish
        self.selector = f"{v.VERIFY_LABEL}={claim}"
        self.pod: Obj | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for pod in self.admin.list(r.PODS, self.namespace, label_selector=self.selector):
                if pod["spec"].get("nodeName"):
                    self.pod = self.pod or pod
                    if self.finish and pod["status"].get("phase") == "Running":
                        self._complete(pod)
            time.sleep(0.1)

    def _complete(self, pod: Obj) -> None:
        terminated = {"exitCode": 0, "reason": "Completed"}
        status = {
            "phase": "Succeeded",
            "containerStatuses": [
                {
                    "name": v.CONTAINER_NAME,
                    "image": pod["spec"]["containers"][0]["image"],
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": terminated},
                }
            ],
        }
        self.admin.request(
            "PATCH",
            r.PODS.path(self.namespace, pod["metadata"]["name"]) + "/status",
            body={"status": status},
            content_type=MERGE_PATCH,
        )

    def __enter__(self) -> PodWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(timeout=5)


def no_pods_left(admin: Client, namespace: str) -> bool:
    return eventually(lambda: list(admin.list(r.PODS, namespace)) == [])


def test_pod_spec_placement_and_cleanup_on_timeout(
    plugin: Plugin, admin: Client, namespace: str, claim: str
) -> None:
    with PodWatcher(admin, namespace, claim) as watcher:
        result = plugin(
            "verify", claim, "-n", namespace, "--timeout", "3s", "--run-as-user", "1000"
        )
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert f"did not finish within 3s (still running on {PV_NODE})" in last, last
    pod = watcher.pod
    assert pod is not None, "the verify pod was never scheduled"
    assert pod["spec"]["nodeName"] == PV_NODE  # the scheduler honoured the PV's node affinity
    container = pod["spec"]["containers"][0]
    assert container["image"] == v.DEFAULT_IMAGE
    assert container["volumeMounts"][0] == {
        "name": v.VOLUME_NAME,
        "mountPath": "/mnt/models",
        "readOnly": True,
        "subPath": "meta/llama",
    }
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"] == {
        "claimName": claim,
        "readOnly": True,
    }
    assert pod["spec"]["securityContext"]["runAsUser"] == 1000
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["activeDeadlineSeconds"] == 3
    assert no_pods_left(admin, namespace)


def test_progress_keep_and_the_report_on_failure(
    plugin: Plugin, admin: Client, namespace: str, claim: str
) -> None:
    with PodWatcher(admin, namespace, claim):
        result = plugin("verify", claim, "-n", namespace, "--timeout", "3s", "--keep", "-o", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)  # the chosen format, even when the pod never finished
    assert report["passed"] is False and report["checks"] == []
    assert "did not finish within 3s" in report["error"]
    assert f"running the checks on {PV_NODE}" in result.stderr  # progress as it happens
    kept = [p["metadata"]["name"] for p in admin.list(r.PODS, namespace)]
    assert len(kept) == 1 and f"pod {kept[0]} kept" in result.stderr
    admin.delete(r.PODS, kept[0], namespace)


MODEL_FILES = {"config.json": "{}", "tokenizer.json": "{}", "model.safetensors": "weights"}


@pytest.mark.parametrize(
    ("files", "code", "expected"),
    [
        (MODEL_FILES, 0, ["config.json   ok", "weights       ok       1 files"]),
        ({"README.md": "x"}, 1, ["config.json   FAILED", "Fixes:", "checks failed"]),
    ],
    ids=["complete-model", "wrong-directory"],
)
def test_checks_from_the_pods_log(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    claim: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    files: dict[str, str],
    code: int,
    expected: list[str],
) -> None:
    model = tmp_path / "claim" / "meta" / "llama"  # the sub-path `create` recorded
    model.mkdir(parents=True)
    for name, text in files.items():
        (model / name).write_text(text)
    kubelet = StandInKubelet(
        admin,
        namespace,
        monkeypatch,
        host_root=tmp_path / "node",
        claims={claim: tmp_path / "claim"},
    )
    with kubelet:
        result = plugin("verify", claim, "-n", namespace, "--timeout", "20s")
    assert result.exit_code == code, result.output
    for text in expected:
        assert text in result.output
    (pod,) = kubelet.pods.values()
    assert pod["spec"]["nodeName"] == PV_NODE
    assert f"ran on {PV_NODE}" in result.stderr
    assert no_pods_left(admin, namespace)


def test_interrupt_still_deletes_the_pod(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    claim: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[str] = []

    def interrupted(client: Client, ref: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        created.append(name)
        assert client.get_or_none(r.PODS, name, namespace) is not None
        raise KeyboardInterrupt

    monkeypatch.setattr(storage, "watch_until", interrupted)
    result = plugin("verify", claim, "-n", namespace)
    assert result.exit_code == 130
    assert "interrupted: nothing was changed" in result.stderr
    assert created, "the pod was never created"
    assert no_pods_left(admin, namespace)


def test_node_the_volume_does_not_allow_is_refused(
    plugin: Plugin, admin: Client, namespace: str, claim: str
) -> None:
    result = plugin("verify", claim, "-n", namespace, "--node", "gpu-node-3")
    assert result.exit_code == 1
    assert f"allows {PV_NODE}" in result.stderr
    assert "cannot mount volume" in result.stderr
    assert list(admin.list(r.PODS, namespace)) == []


def test_missing_claim(plugin: Plugin, namespace: str) -> None:
    result = plugin("verify", "nope", "-n", namespace)
    assert result.exit_code == 1
    assert f'claim "nope" not found in namespace {namespace}' in result.stderr


def test_unreadable_pod_log_is_one_line_and_the_pod_is_deleted(
    plugin: Plugin, admin: Client, namespace: str, claim: str
) -> None:
    """The pod finished, but the server cannot serve its log (kwok runs no kubelet to ask):
    the real `pods/log` error reaches the user as one line, and the pod still goes."""
    with PodWatcher(admin, namespace, claim, finish=True) as watcher:
        result = plugin("verify", claim, "-n", namespace, "--timeout", "20s")
    assert watcher.pod is not None, "the verify pod was never scheduled"
    assert result.exit_code == 1, result.output
    last = result.stderr.strip().splitlines()[-1]
    name = watcher.pod["metadata"]["name"]
    assert f"pod {name} finished on {PV_NODE}, but its log could not be read (" in last, last
    assert "`kubectl logs`" in last
    assert "Traceback" not in result.output
    assert no_pods_left(admin, namespace)
