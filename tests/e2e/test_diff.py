"""`kubectl ome-pvc diff`: kubectl's exit codes, the diff, -o json, KUBECTL_EXTERNAL_DIFF."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import resources as r
from tests import factories
from tests.e2e import ome_controller as ome
from tests.e2e.conftest import Plugin

CLAIM = "models"
MODEL = "llama-3-2-1b-instruct"
CACHE = {"name": "cache", "hostPath": {"path": "/var/cache/llm", "type": "Directory"}}


@pytest.fixture
def setup(admin: Client, namespace: str) -> Iterator[ome.Isvc]:
    """An engine with the model volume third, after dshm and an unrelated hostPath; a claim."""
    isvc = ome.create_isvc(admin, namespace, "llama", MODEL)
    engine = ome.component_deployment(isvc, extra_volumes=[factories.DSHM_VOLUME, CACHE])
    ome.create_workload(isvc, engine)
    pv, _ = ome.create_local_claim(admin, namespace, CLAIM)
    yield isvc
    admin.delete(r.PVS, pv["metadata"]["name"])


def test_diff_shows_each_template_change(plugin: Plugin, namespace: str, setup: ome.Isvc) -> None:
    before = setup.deployment()
    result = plugin("diff", "llama", "-n", namespace, "--claim", CLAIM)
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "--- deployment/llama-engine (hostPath)\n+++ deployment/llama-engine (pvc)\n" in out
    changed = [line for line in out.splitlines() if line[:1] in "+-" and line[:3] not in "+++---"]
    assert f"+      subPath: {namespace}/{MODEL}" in changed
    assert f"-    {setup.label_key}: Ready" in changed
    assert "+      claimName: models" in changed
    assert f"-      path: {setup.model_path}" in changed
    assert not any("/var/cache/llm" in line for line in changed), "the other hostPath stays"
    assert "\033[" not in out  # no colour off a terminal
    assert setup.deployment()["metadata"]["generation"] == before["metadata"]["generation"]


def test_json_prints_patches_the_server_accepts(
    plugin: Plugin, admin: Client, namespace: str, setup: ome.Isvc
) -> None:
    result = plugin("diff", "llama", "-n", namespace, "--claim", CLAIM, "-o", "json")
    assert result.exit_code == 1, result.output
    items = json.loads(result.stdout)
    # patch's own choice here is policy: the policy and its binding come first, to be created
    created = [(i["kind"], i["action"]) for i in items if i["action"] == "create"]
    assert created == [
        ("MutatingAdmissionPolicy", "create"),
        ("MutatingAdmissionPolicyBinding", "create"),
    ]
    patches = [i for i in items if i["action"] == "patch"]
    assert [(p["kind"], p["name"]) for p in patches] == [("Deployment", "llama-engine")]
    ops = patches[0]["patch"]
    recorded = [op["value"] for op in ops if op["path"].endswith("ome-pvc.io~1original")]
    assert '"strategy": "policy"' in recorded[0] or '"strategy":"policy"' in recorded[0]
    assert {op["op"] for op in ops} == {"test", "replace", "remove", "add"}
    answer = admin.patch(r.DEPLOYMENTS, "llama-engine", ops, namespace=namespace, dry_run=True)
    volume = answer["spec"]["template"]["spec"]["volumes"][2]
    assert volume == {
        "name": MODEL,
        "persistentVolumeClaim": {"claimName": CLAIM, "readOnly": True},
    }


def test_external_diff_gets_kubectl_style_directories(
    plugin: Plugin, namespace: str, setup: ome.Isvc
) -> None:
    result = plugin(
        "diff", "llama", "-n", namespace, "--claim", CLAIM,
        env={"KUBECTL_EXTERNAL_DIFF": "diff -u -N -r"},
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    file_name = f"apps.v1.Deployment.{namespace}.llama-engine"
    assert "LIVE-" in result.stdout and "MERGED-" in result.stdout
    assert f"/{file_name}" in result.stdout
    added = [line[1:].strip() for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert "claimName: models" in added

    missing = plugin(
        "diff", "llama", "-n", namespace, "--claim", CLAIM,
        env={"KUBECTL_EXTERNAL_DIFF": "no-such-diff-program"},
    )  # fmt: skip
    assert missing.exit_code == 2
    assert "program not found" in missing.stderr


def test_no_difference_once_patched(plugin: Plugin, namespace: str, setup: ome.Isvc) -> None:
    patched = plugin(
        "patch", "llama", "-n", namespace, "--claim", CLAIM,
        "--strategy", "deployment", "--settle", "0", "--no-wait",
    )  # fmt: skip
    assert patched.exit_code == 0, patched.output
    result = plugin("diff", "llama", "-n", namespace, "--claim", CLAIM)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"already served from claim {CLAIM} (strategy deployment)" in result.stderr


def test_strategy_flag_shows_that_strategys_writes(
    plugin: Plugin, namespace: str, setup: ome.Isvc
) -> None:
    result = plugin("diff", "llama", "-n", namespace, "--claim", CLAIM, "--strategy", "deployment")
    assert result.exit_code == 1, result.output
    assert "mutatingadmissionpolicy" not in result.stdout
    assert "strategy deployment:" in result.stderr
    as_policy = plugin("diff", "llama", "-n", namespace, "--claim", CLAIM)
    assert "+++ mutatingadmissionpolicy.admissionregistration.k8s.io/" in as_policy.stdout
    assert "strategy policy:" in as_policy.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "--claim", CLAIM], 'inferenceservice "nope" not found'),
        (["llama", "--claim", "nope"], 'persistentvolumeclaim "nope" not found'),
        (["llama", "--claim", CLAIM, "--sub-path", "other/dir"], "does not match the volume"),
    ],
    ids=["isvc-not-found", "claim-not-found", "sub-path-disagrees"],
)
def test_errors_exit_2_or_more(
    plugin: Plugin, namespace: str, setup: ome.Isvc, args: list[str], message: str
) -> None:
    result = plugin("diff", *args, "-n", namespace)
    assert result.exit_code >= 2
    assert message in result.stderr
