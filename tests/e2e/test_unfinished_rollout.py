"""A rollout that cannot finish: never called healthy by `status` or a second `patch`, and
Ctrl-C while `patch --wait` follows it says what is in place.

The claim waits for its first consumer and no volume exists, so kube-scheduler leaves the new
pod Pending ("didn't find available persistent volumes to bind") while the old hostPath pod
keeps serving: READY stays 1/1, which alone would read as done.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import resources as r
from tests.e2e import ome_controller as ome
from tests.e2e.conftest import REPO, SERVED_MODEL, Cluster, Plugin

CLAIM = "late"
NO_VOLUME = "didn't find available persistent volumes to bind"


@pytest.fixture
def waiting_claim(admin: Client, namespace: str) -> Iterator[str]:
    """A WaitForFirstConsumer claim that no volume can ever satisfy."""
    name = f"wffc-{namespace}"
    admin.create(
        r.STORAGE_CLASSES,
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "WaitForFirstConsumer",
        },
    )
    admin.create(
        r.PVCS,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": CLAIM, "namespace": namespace},
            "spec": {
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": name,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        namespace,
    )
    yield CLAIM
    admin.delete(r.STORAGE_CLASSES, name)


def test_a_stuck_rollout_is_diagnosed_and_not_called_unchanged(
    plugin: Plugin, admin: Client, namespace: str, labelled: ome.Isvc, waiting_claim: str
) -> None:
    isvc = labelled
    ome.create_workload(isvc, ome.component_deployment(isvc))
    ome.wait_for(
        isvc.deployment,
        lambda d: (d.get("status") or {}).get("availableReplicas") == 1,
        what="the hostPath pod to run",
        timeout=120,
    )
    first = plugin(
        "patch", "llama", "-n", namespace, "--claim", CLAIM, "--strategy", "policy",
        "--sub-path", f"{namespace}/{SERVED_MODEL}", "--timeout", "20s",
    )  # fmt: skip
    assert first.exit_code == 1, first.output
    assert "not rolled out after 20s" in first.stderr

    shown = plugin("status", SERVED_MODEL, "-n", namespace, "-o", "json")
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.stdout)
    item = doc["items"][0] if "items" in doc else doc
    engine = item["inferenceServices"][0]["workloads"][0]
    assert engine["mode"] == "pvc-patched"
    assert engine["readyReplicas"] == 1  # the old pod: READY alone looks healthy
    assert engine["rollout"] == "1 replica of the old template left"
    stuck = {d["code"]: d for d in item["diagnoses"]}["rollout-stuck"]
    assert stuck["severity"] == "error"
    assert NO_VOLUME in stuck["message"]
    assert stuck["next"].startswith("kubectl describe pod llama-engine-")

    text = plugin("status", SERVED_MODEL, "-n", namespace)
    assert "rollout: 1 replica of the old template left" in text.stdout
    assert "Diagnoses:\n  none" not in text.stdout

    same = ["llama", "-n", namespace, "--claim", CLAIM, "--sub-path", f"{namespace}/{SERVED_MODEL}"]
    again = plugin("patch", *same, "--no-wait")
    assert again.exit_code == 0, again.output
    assert "unchanged" not in again.stdout
    assert "but its rollout has not finished" in again.stdout
    assert "deployment/llama-engine: 1 replica of the old template left" in again.stdout
    assert NO_VOLUME in again.stderr

    listed = plugin("status", "--patched", "-n", namespace, "--no-headers")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.split() == [
        namespace, "llama", "policy", CLAIM, "deployment/llama-engine",
        f"ome-pvc-{namespace}.llama", "-",
    ]  # fmt: skip

    followed = plugin("patch", *same, "--timeout", "3s")
    assert followed.exit_code == 1, followed.output
    assert "not rolled out after 3s" in followed.stderr


# --- Ctrl-C, as a real SIGINT to a real process ---------------------------------------------


class Running:
    """The plugin as its own process; stderr is read line by line as it comes."""

    def __init__(self, cluster: Cluster, *args: str) -> None:
        # As from a terminal: a runner that started this suite in the background (bash `&`
        # without job control) has SIGINT ignored, a child inherits that, and Python then never
        # raises KeyboardInterrupt. A handled SIGINT is reset to the default at exec.
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kubectl_omepvc", *args, "--context", "local-admin"],
            env={**cluster.env, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def wait_for_line(self, part: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None, f"exited {self.proc.returncode}: {self.seen}"
                continue
            self.seen.append(line)
            if part in line:
                return
        raise AssertionError(f"no line with {part!r} in {timeout}s: {self.seen}")

    def interrupt(self) -> tuple[int, list[str]]:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=30)
        time.sleep(0.2)  # the reader threads drain what is left
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code, self.seen


def test_ctrl_c_during_patch_wait_says_what_is_in_place(
    cluster: Cluster, namespace: str, labelled: ome.Isvc, waiting_claim: str
) -> None:
    ome.create_workload(labelled, ome.component_deployment(labelled))
    run = Running(
        cluster, "patch", "llama", "-n", namespace, "--claim", CLAIM,
        "--sub-path", f"{namespace}/{SERVED_MODEL}",
    )  # fmt: skip
    run.wait_for_line("now served from claim")
    run.wait_for_line("deployment/llama-engine:")  # --wait is following the rollout
    code, lines = run.interrupt()
    assert code == 130, lines
    said = [line for line in lines if line.startswith("interrupted:")]
    assert len(said) == 1, lines
    assert "Aborted!" not in lines and "Traceback" not in "\n".join(lines)
    line = said[0]
    assert f"mutatingadmissionpolicy.admissionregistration.k8s.io/ome-pvc-{namespace}.llama" in line
    assert "deployment.apps/llama-engine patched" in line
    assert "in place; the rollout goes on" in line
    assert f"`kubectl rollout status deployment/llama-engine -n {namespace}`" in line
    assert f"`kubectl ome-pvc unpatch llama -n {namespace}`" in line


@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0])
def test_ctrl_c_ends_status_watch_with_130_every_time(
    cluster: Cluster, namespace: str, delay: float
) -> None:
    for _ in range(3):
        run = Running(cluster, "status", "-w", "-n", namespace, "--kind", "namespaced")
        run.wait_for_line("No models found")  # the first render: nothing in this namespace
        time.sleep(delay)
        code, lines = run.interrupt()
        assert code == 130, lines
        assert lines[-1] == "interrupted: stopped watching (status only reads: nothing was changed)"
