"""The one stand-in for a kubelet, for pods whose container must really run (kwok runs none).

kwok nodes run no containers: kube-scheduler places a pod, kwok marks it Running (and a Job's pod
Succeeded), and nothing executes. Where a test needs what the container does, `StandInKubelet`
runs the pod's OWN command locally with /bin/sh, each volume mount mapped to a local directory
(a hostPath to `host_root/<path>`, a claim to `claims[<claim>]/<subPath>`, read-only mounts
included), serves the output as the pod's log (`api.storage.read_pod_log`), and marks the pod
Succeeded or Failed by the exit code. It runs only the plugin's own pods (verify, copy). The API
objects, scheduling and the Job controller stay real; only the container runtime and the
kubelet's log endpoint are replaced.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kubectl_omepvc.api import storage
from kubectl_omepvc.api.client import MERGE_PATCH, Client
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.manifests import MANAGED_BY, MANAGED_BY_LABEL
from kubectl_omepvc.errors import PluginError

Obj = dict[str, Any]
PLUGIN_PODS = f"{MANAGED_BY_LABEL}={MANAGED_BY}"


class StandInKubelet(threading.Thread):
    def __init__(
        self,
        admin: Client,
        namespace: str,
        monkeypatch: pytest.MonkeyPatch,
        *,
        host_root: Path,
        claims: dict[str, Path],
    ) -> None:
        super().__init__(daemon=True)
        self.admin, self.namespace = admin, namespace
        self.host_root, self.claims = host_root, claims
        self.logs: dict[str, str] = {}
        self.pods: dict[str, Obj] = {}  # every pod as first seen on a node, by name
        self.lock = threading.Lock()
        self.stop = threading.Event()
        monkeypatch.setattr(storage, "read_pod_log", self._read_pod_log)

    # -- running a pod -----------------------------------------------------------------------

    def _local(self, pod: Obj, mount: Obj) -> Path:
        volume = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])
        if "hostPath" in volume:
            base = self.host_root / volume["hostPath"]["path"].lstrip("/")
        else:
            base = self.claims[volume["persistentVolumeClaim"]["claimName"]]
        local: Path = base / mount.get("subPath", "")
        local.mkdir(parents=True, exist_ok=True)  # as the kubelet creates a missing sub-path
        return local

    def _run(self, pod: Obj) -> tuple[int, str]:
        container = pod["spec"]["containers"][0]
        mounts = {m["mountPath"]: str(self._local(pod, m)) for m in container["volumeMounts"]}
        command = [mounts.get(arg, arg) for arg in container["command"]]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        log = done.stdout + done.stderr
        for mount_path, local in mounts.items():
            log = log.replace(local, mount_path)
        return done.returncode, log

    def _ensure_ran(self, name: str) -> str:
        with self.lock:
            if name not in self.logs:
                pod = self.admin.get(r.PODS, name, self.namespace)
                code, self.logs[name] = self._run(pod)
                self._finish(pod, code)
            return self.logs[name]

    def _finish(self, pod: Obj, code: int) -> None:
        if pod["status"].get("phase") in ("Succeeded", "Failed"):
            return  # kwok completes a Job's pod by itself
        container = pod["spec"]["containers"][0]
        terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}
        status = {
            "phase": "Succeeded" if code == 0 else "Failed",
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": terminated},
                }
            ],
        }
        with contextlib.suppress(PluginError):  # deleted meanwhile: the command gave up
            self.admin.request(
                "PATCH",
                r.PODS.path(self.namespace, pod["metadata"]["name"]) + "/status",
                body={"status": status},
                content_type=MERGE_PATCH,
            )

    def _read_pod_log(self, client: Client, namespace: str, name: str, container: str) -> str:
        assert namespace == self.namespace
        client.get(r.PODS, name, namespace)  # the pod must still exist when its log is read
        return self._ensure_ran(name)

    # -- the node's loop ---------------------------------------------------------------------

    def run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(PluginError):
                # Only the plugin's own pods (verify, copy): the engines kwok "runs" stay as is.
                for pod in self.admin.list(r.PODS, self.namespace, label_selector=PLUGIN_PODS):
                    name = pod["metadata"]["name"]
                    if pod["spec"].get("nodeName"):
                        self.pods.setdefault(name, pod)
                    if pod["status"].get("phase") == "Running":
                        self._ensure_ran(name)
            time.sleep(0.1)

    def __enter__(self) -> StandInKubelet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(timeout=10)
