"""`verify` without a cluster: flags, and the helpers that read PVs, engines and pod states."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubectl_omepvc import cli, printers
from kubectl_omepvc.commands import verify
from kubectl_omepvc.core.verify import Check
from tests import factories


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["c", "--timeout", "0"], "--timeout must be positive"),
        (["c", "--run-as-user", "-1"], "-1 is not in the range x>=0"),
        (["c", "-o", "wide"], "'wide' is not one of"),
    ],
    ids=["timeout", "uid", "output"],
)
def test_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(
        cli.root, ["verify", *args], env={"KUBECONFIG": "", "HOME": str(tmp_path)}
    )
    assert result.exit_code == 2
    assert message in result.stderr


def test_bad_sub_path_fails_before_connecting(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.root,
        ["verify", "c", "--sub-path", "/abs"],
        env={"KUBECONFIG": "", "HOME": str(tmp_path)},
    )
    assert result.exit_code == 1
    assert "starts with '/'" in result.stderr
    assert "kubeconfig" not in result.stderr


def test_pv_nodes() -> None:
    pv = factories.pv("p", nodes=("a", "b"))
    assert verify.pv_nodes(pv) == {"a", "b"}
    nfs = {"spec": {"nfs": {"server": "x", "path": "/"}}}
    assert verify.pv_nodes(nfs) is None
    assert verify.pv_nodes(None) is None


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ({"storageUri": "hf://x", "path": "/raid/models/x"}, "/raid/models/x"),
        ({"storageUri": "pvc://ns:c/x"}, "/opt/ml/model"),
        ({"storageUri": "hf://x"}, None),
    ],
    ids=["host-path", "native-pvc", "unknown"],
)
def test_model_mount_path(storage: dict[str, str], expected: str | None) -> None:
    assert verify.model_mount_path({"spec": {"storage": storage}}) == expected


def test_engine_identity() -> None:
    deployment = factories.engine_deployment("llama", "llama-1b", "/raid/models/meta/llama-1b")
    assert verify.engine_identity(deployment) == ("/raid/models/meta/llama-1b", None)
    spec = deployment["spec"]["template"]["spec"]
    spec["securityContext"] = {"runAsUser": 1000}
    assert verify.engine_identity(deployment)[1] == 1000
    spec["containers"][0]["securityContext"] = {"runAsUser": 2000}  # the container's wins
    assert verify.engine_identity(deployment)[1] == 2000


def pod(status: dict[str, Any], node: str | None = None) -> dict[str, Any]:
    return {"spec": {"nodeName": node} if node else {}, "status": status}


UNSCHEDULED = {
    "phase": "Pending",
    "conditions": [{"type": "PodScheduled", "status": "False", "message": "0/3 nodes fit"}],
}
PULL_FAILED = {
    "phase": "Pending",
    "containerStatuses": [
        {"state": {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}}
    ],
}
CREATING = {
    "phase": "Pending",
    "containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}],
}


@pytest.mark.parametrize(
    ("obj", "state", "is_finished"),
    [
        (None, "the pod was deleted", True),
        (pod(UNSCHEDULED), "not scheduled: 0/3 nodes fit", False),
        (pod(PULL_FAILED, "n1"), "ImagePullBackOff: no such image", True),
        (pod(CREATING, "n1"), "ContainerCreating", False),
        (pod({"phase": "Running"}, "n1"), "still running on n1", False),
        (pod({"phase": "Succeeded"}, "n1"), "Succeeded on n1", True),
        (pod({"phase": "Failed"}, "n1"), "Failed on n1", True),
    ],
    ids=["deleted", "unscheduled", "pull", "creating", "running", "succeeded", "failed"],
)
def test_pod_states(obj: dict[str, Any] | None, state: str, is_finished: bool) -> None:
    assert verify.pod_state(obj) == state
    assert verify.finished(obj) is is_finished


def test_render_checks_lists_fixes_for_failures_only() -> None:
    checks = [
        Check("mount", True, "/m: 3 entries"),
        Check("config.json", False, "no config.json", "use sub-path meta/llama"),
    ]
    text = verify.render_checks(checks, printers.Palette(False))
    assert text.splitlines() == [
        "CHECK         RESULT   DETAIL",
        "mount         ok       /m: 3 entries",
        "config.json   FAILED   no config.json",
        "",
        "Fixes:",
        "  config.json: use sub-path meta/llama",
    ]
