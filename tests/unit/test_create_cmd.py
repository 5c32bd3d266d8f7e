"""`create` without a cluster: flags, usage errors, client dry run, and its pure helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from kubectl_omepvc import cli
from kubectl_omepvc.core import manifests as m

LOCAL = ["--local-path", "/raid/models", "--node", "gpu-node-1", "--size", "100Gi"]


@pytest.fixture
def offline(tmp_path: Path) -> dict[str, str]:
    """An environment with no kubeconfig at all."""
    return {"KUBECONFIG": "", "HOME": str(tmp_path)}


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli.root, ["create", *args], env=env, prog_name="kubectl ome-pvc")


# --- client dry run: no cluster, no kubeconfig ---------------------------------------------------


def test_client_dry_run_prints_the_manifests(offline: dict[str, str]) -> None:
    result = run(offline, "llama", *LOCAL, "--sub-path", "meta/llama", "--dry-run=client")
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in docs] == [
        "StorageClass",
        "PersistentVolume",
        "PersistentVolumeClaim",
    ]
    pv, pvc = docs[1], docs[2]
    assert pv["metadata"]["name"] == "ome-pvc-default-llama"
    assert pv["spec"]["claimRef"]["namespace"] == "default"
    assert pvc["spec"]["volumeName"] == "ome-pvc-default-llama"
    assert pvc["metadata"]["annotations"][m.SUB_PATH_ANNOTATION] == "meta/llama"
    assert "URI: pvc://llama/meta/llama (for a BaseModel in namespace default)" in result.stderr
    assert "URI: pvc://default:llama/meta/llama (for a ClusterBaseModel)" in result.stderr
    assert "created only if it does not exist" in result.stderr


def test_client_dry_run_json_name_and_namespace(offline: dict[str, str]) -> None:
    args = ["llama", "-n", "serving", *LOCAL, "--no-storage-class", "--dry-run=client"]
    as_json = json.loads(run(offline, *args, "-o", "json").stdout)
    assert as_json["kind"] == "List"
    assert [i["kind"] for i in as_json["items"]] == ["PersistentVolume", "PersistentVolumeClaim"]
    assert as_json["items"][1]["metadata"]["namespace"] == "serving"
    names = run(offline, *args, "-o", "name").stdout.split()
    assert names == ["persistentvolume/ome-pvc-serving-llama", "persistentvolumeclaim/llama"]


def test_client_dry_run_registers_a_model(offline: dict[str, str]) -> None:
    result = run(
        offline, "w", "-n", "team-a", "--nfs-server", "10.0.0.5", "--nfs-path", "/export",
        "--size", "1Gi", "--sub-path", "qwen", "--register-model", "basemodel/qwen-pvc",
        "--dry-run=client", "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    model = json.loads(result.stdout)["items"][-1]
    assert model["kind"] == "BaseModel"
    assert model["metadata"]["namespace"] == "team-a"
    # OME main refuses a namespace in a BaseModel's URI (pkg/validation/basemodel.go, aab06ebe)
    assert model["spec"]["storage"] == {"storageUri": "pvc://w/qwen"}
    assert "URI: pvc://w/qwen (BaseModel)" in result.stderr


def test_storage_class_source_renders_only_a_claim(offline: dict[str, str]) -> None:
    result = run(offline, "c", "--storage-class", "rwx", "--size", "1Gi", "--dry-run=client")
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in docs] == ["PersistentVolumeClaim"]
    assert docs[0]["spec"]["storageClassName"] == "rwx"
    assert "volumeName" not in docs[0]["spec"]


def test_client_dry_run_never_loads_the_kubernetes_client(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from kubectl_omepvc import cli\n"
        "try:\n"
        "    cli.main(['create', 'x', '--local-path', '/m', '--node', 'n', '--size', '1Gi',\n"
        "              '--dry-run=client', '--server', 'https://127.0.0.1:1'])\n"
        "except SystemExit as e:\n"
        "    print('exit', e.code)\n"
        "print('kubernetes' in sys.modules, 'urllib3' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"KUBECONFIG": "", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.stdout.strip().splitlines()[-2:] == ["exit 0", "False False"]


# --- usage errors (exit 2) and bad input (exit 1), all before any connection --------------------

USAGE = [
    (["c", "--size", "1Gi"], "name one storage source"),
    (["c", "--node", "n", "--size", "1Gi"], "--node needs --local-path"),
    (["c", "--local-path", "/m", "--size", "1Gi"], "--local-path needs --node"),
    (["c", "--nfs-server", "h", "--size", "1Gi"], "both --nfs-server HOST and --nfs-path"),
    (["c", "--from-model", "m"], "spec.modelParameterSize counts parameters"),
    (["c", "--local-path", "/m", "--node", "n"], "--size is required"),
    (["c", "--from-model", "m", "--sub-path", "x", "--size", "1Gi"], "comes from the model"),
    (["c", "--storage-class", "x", "--size", "1Gi", "--no-storage-class"], "local volumes"),
    (["c", *LOCAL, "--register-model", "x"], "--register-model needs --sub-path"),
    (["c", *LOCAL, "--sub-path", "a", "--register-model", "deployment/x"], "basemodel/NAME"),
    (["c", *LOCAL, "--access-mode", "ROX"], "'ROX' is not one of"),
    (["c", *LOCAL, "--timeout", "soon"], "invalid duration"),
]


@pytest.mark.parametrize(
    ("args", "message"),
    USAGE,
    ids=[
        "none", "node-alone", "path-alone", "nfs-half",
        "model-no-size", "no-size", "model+sub-path", "nfs-no-class", "register-no-sub",
        "register-kind", "access-mode", "timeout",
    ],
)  # fmt: skip
def test_usage_errors(offline: dict[str, str], args: list[str], message: str) -> None:
    result = run(offline, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


BAD = [
    (["Llama", *LOCAL], "claim name 'Llama' is not a valid name"),
    (["c", *LOCAL, "-n", "team.a"], "namespace 'team.a'"),
    (["c", "--local-path", "raid", "--node", "n", "--size", "1Gi"], "is not absolute"),
    (["c", "--local-path", "/raid/", "--node", "n", "--size", "1Gi"], "write it as /raid"),
    (["c", "--local-path", "/m", "--node", "n", "--size", "10GB"], "size '10GB' is not valid"),
    (["c", "--local-path", "/m", "--node", "n", "--size", "0"], "not positive"),
    (["c", *LOCAL, "--sub-path", "a/../b"], "'..'"),
    (["c", *LOCAL, "--pv-name", "PV_1"], "PV name 'PV_1'"),
    (["c", "--local-path", "/m", "--node", "Node_1", "--size", "1Gi"], "node 'Node_1'"),
    (["c", "--nfs-server", "a b", "--nfs-path", "/e", "--size", "1Gi"], "NFS server 'a b'"),
    (["c", *LOCAL, "--sub-path", "a", "--register-model", "Bad"], "model name 'Bad'"),
    (
        ["c", *LOCAL, "--storage-class", "x"],
        "one storage source per claim: --local-path/--node and --storage-class were both given",
    ),
    (
        ["c", "--from-model", "m", "--nfs-server", "h", "--nfs-path", "/e", "--size", "1Gi"],
        "--from-model and --nfs-server/--nfs-path were both given",
    ),
    (
        ["c", "--nfs-server", "h", "--nfs-path", "/e", "--storage-class", "x", "--size", "1Gi"],
        "--nfs-server/--nfs-path and --storage-class were both given",
    ),
]


@pytest.mark.parametrize(
    ("args", "message"),
    BAD,
    ids=[
        "claim", "namespace", "relative", "trailing", "size", "zero", "dotdot", "pv-name",
        "node", "nfs-server", "model-name", "local+class", "model+nfs", "nfs+class",
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_1(
    offline: dict[str, str], args: list[str], message: str
) -> None:
    result = run(offline, *args, "--dry-run=client")
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: ")
    assert message in lines[0]
    assert result.stdout == ""


# --- manifests as create renders them ---------------------------------------------------------


def test_server_omitted_empty_class_is_no_difference() -> None:
    """The API server drops a PV's `storageClassName: ""`: a re-run must not see a change."""
    req = m.ClaimRequest("c", "ns", "1Gi", m.LocalSource("/m", ("n",)), storage_class=None)
    desired = m.persistent_volume(req)
    live = json.loads(json.dumps(desired))
    del live["spec"]["storageClassName"]
    assert m.spec_difference(live, desired) == []
    live["spec"]["storageClassName"] = "other"
    assert m.spec_difference(live, desired) == ['spec.storageClassName: has "other", wants ""']
