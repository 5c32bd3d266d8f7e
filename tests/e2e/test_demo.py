"""The README's first command and typical session, as written, on `hack/local-cluster demo`.

The demo's sample objects are seeded on this test cluster by the script itself, the session's
commands are read from README.md and run one by one, and everything is removed afterwards (other
tests need to find the only model-agent DaemonSet). `verify` is left out, as the README says:
kwok starts no container.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
from collections.abc import Iterator

import pytest

from kubectl_omepvc import errors
from kubectl_omepvc.api.client import MERGE_PATCH, Client
from kubectl_omepvc.core import manifests, naming
from kubectl_omepvc.core import resources as r
from tests.e2e.conftest import KWOK_NODES, LOCAL_CLUSTER, POLICY_VERSION, REPO, Plugin

MODEL = "llama-3-2-1b-instruct"
NAMESPACE = "team-a"


def readme_session() -> list[str]:
    """The `kubectl ome-pvc` lines of the README's typical session, continuations joined."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"### A typical session.*?```sh\n(.*?)```", text, re.S)
    assert block, "README.md has no typical session"
    joined = block.group(1).replace("\\\n", " ")
    lines = [line.split("#")[0].strip() for line in joined.splitlines()]
    return [" ".join(line.split()) for line in lines if line.startswith("kubectl ome-pvc")]


def first_command() -> str:
    text = (REPO / "README.md").read_text()
    found = re.search(r"```sh\n(pip install .*?)\n```", text)
    assert found
    return found.group(1)


@pytest.fixture
def demo(admin: Client) -> Iterator[None]:
    done = subprocess.run(
        [str(LOCAL_CLUSTER), "demo"], capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "sample objects on the test CRDs" in done.stderr
    yield
    label = naming.cluster_model_label_key(MODEL)
    for node in KWOK_NODES:
        admin.patch(
            r.NODES, node, {"metadata": {"labels": {label: None}}}, content_type=MERGE_PATCH
        )
        admin.delete(r.CONFIG_MAPS, node, naming.AGENT_NAMESPACE)
    admin.delete(r.DAEMON_SETS, "ome-model-agent-daemonset", naming.AGENT_NAMESPACE)
    policy = f"ome-pvc-{NAMESPACE}.llama"
    admin.delete(r.mutating_policy_bindings(POLICY_VERSION), policy)
    admin.delete(r.mutating_policies(POLICY_VERSION), policy)
    admin.delete(r.NAMESPACES, NAMESPACE)
    admin.delete(r.CLUSTER_BASE_MODELS, MODEL)
    with contextlib.suppress(errors.PluginError):
        admin.delete(r.PVS, manifests.pv_name(NAMESPACE, "llama-weights"))


def test_the_first_command_ends_with_status_and_the_session_runs_as_written(
    plugin: Plugin, demo: None
) -> None:
    assert first_command().endswith(
        "hack/local-cluster up --demo && kubectl ome-pvc status --kubeconfig"
        " .local-cluster/kubeconfig"
    )
    overview = plugin("status")
    assert overview.exit_code == 0, overview.output
    row = next(line.split() for line in overview.stdout.splitlines() if line.startswith(MODEL))
    assert row[3:5] == ["Ready", "2/3"]

    session = readme_session()
    assert [c.split()[2] for c in session] == [
        "status", "create", "verify", "diff", "patch", "status", "status", "unpatch",
    ]  # fmt: skip
    for command in session:
        args = shlex.split(command)[2:]
        if args[0] == "verify":
            continue
        result = plugin(*args)
        expected = 1 if args[0] == "diff" else 0  # diff: differences found
        assert result.exit_code == expected, f"{command}: {result.output}"
        if args[0] == "diff":
            assert "mutatingadmissionpolicy.admissionregistration.k8s.io/" in result.stdout
        if args[:2] == ["status", MODEL]:
            assert "pvc (patched by kubectl-ome-pvc: policy)" in result.stdout
        if "--patched" in args:
            assert f"{NAMESPACE} llama policy llama-weights" in " ".join(result.stdout.split())
