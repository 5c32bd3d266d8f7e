"""`create` without a cluster: flags, usage errors, client dry run, and its pure helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from kubectl_omepvc import cli
from kubectl_omepvc.commands import create
from kubectl_omepvc.core import manifests as m
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.errors import InputError
from tests import factories

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
    assert "URI: pvc://default:llama/meta/llama" in result.stderr
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
    assert model["spec"]["storage"] == {"storageUri": "pvc://team-a:w/qwen"}


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
    (["c", *LOCAL, "--storage-class", "x"], "--local-path/--node and --storage-class"),
    (["c", "--from-model", "m", "--nfs-server", "h", "--nfs-path", "/e"], "one storage source"),
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
        "none", "local+class", "model+nfs", "node-alone", "path-alone", "nfs-half",
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
]


@pytest.mark.parametrize(
    ("args", "message"),
    BAD,
    ids=[
        "claim", "namespace", "relative", "trailing", "size", "zero", "dotdot", "pv-name",
        "node", "nfs-server", "model-name",
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


# --- pure helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("llama", (ModelKind.CLUSTER, "llama")),
        ("clusterbasemodel/llama", (ModelKind.CLUSTER, "llama")),
        ("ClusterBaseModels.ome.io/llama", (ModelKind.CLUSTER, "llama")),
        ("basemodel/qwen", (ModelKind.NAMESPACED, "qwen")),
        ("basemodels/qwen", (ModelKind.NAMESPACED, "qwen")),
    ],
    ids=["bare", "cluster", "plural-group", "base", "base-plural"],
)
def test_parse_model_ref(text: str, expected: tuple[ModelKind, str]) -> None:
    assert create.parse_model_ref(text, "--from-model") == expected


@pytest.mark.parametrize("text", ["pod/x", "basemodel/", "a/b/c"], ids=str)
def test_parse_model_ref_refuses(text: str) -> None:
    with pytest.raises(Exception, match="basemodel/NAME"):
        create.parse_model_ref(text, "--from-model")


def agent(name: str, **kwargs: Any) -> dict[str, Any]:
    ds = factories.agent_daemonset(**kwargs)
    ds["metadata"]["name"] = name
    return ds


def test_agent_root_is_the_host_directory() -> None:
    choice = create.pick_agent_root([agent("ome-model-agent")], "/raid/models/meta/llama")
    assert choice.daemonset == "ome-model-agent"
    assert choice.host_root == "/raid/models"
    assert choice.root.models_root == "/raid/models"


def test_agent_root_follows_a_host_path_mounted_elsewhere() -> None:
    ds = agent("agent", models_root="/models", host_path="/mnt/nvme/models", mount_path="/models")
    choice = create.pick_agent_root([ds], "/models/meta/llama")
    assert choice.host_root == "/mnt/nvme/models"


def test_agent_root_below_the_mount() -> None:
    ds = agent("agent", models_root="/data/models", host_path="/disk", mount_path="/data")
    assert create.pick_agent_root([ds], "/data/models/x").host_root == "/disk/models"


def test_the_agent_holding_the_model_wins() -> None:
    others = [
        agent("ome-model-agent-a", models_root="/mnt/data/models", host_path="/mnt/data/models"),
        {"metadata": {"name": "node-exporter"}, "spec": {"template": {"spec": {}}}},
        agent("ome-model-agent-b"),
    ]
    assert create.pick_agent_root(others, "/raid/models/x/y").daemonset == "ome-model-agent-b"


@pytest.mark.parametrize(
    ("daemonsets", "path", "message"),
    [
        ([], "/raid/models/x", "found no model-agent DaemonSet"),
        ([agent("ome-model-agent")], "/raid/models-old/x", "is outside the model-agent's"),
        ([agent("ome-model-agent")], "/opt/x", "daemonset/ome-model-agent"),
        (
            [
                agent("ome-model-agent-1", host_path="/a"),
                agent("ome-model-agent-2", host_path="/b"),
            ],
            "/raid/models/x",
            "disagree on the host directory",
        ),
    ],
    ids=["none", "sibling", "elsewhere", "ambiguous"],
)
def test_agent_root_refusals(daemonsets: list[dict[str, Any]], path: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        create.pick_agent_root(daemonsets, path)


@pytest.mark.parametrize(
    ("provisioner", "mode", "warns"),
    [
        ("ebs.csi.aws.com", m.AccessMode.READ_ONLY_MANY, "ReadWriteOnce volumes"),
        ("ebs.csi.aws.com", m.AccessMode.READ_WRITE_ONCE, None),
        ("efs.csi.aws.com", m.AccessMode.READ_WRITE_MANY, None),
        ("kubernetes.io/no-provisioner", m.AccessMode.READ_ONLY_MANY, "provisions nothing"),
    ],
    ids=["block-rox", "block-rwo", "files-rwx", "no-provisioner"],
)
def test_class_access_warning(provisioner: str, mode: m.AccessMode, warns: str | None) -> None:
    storage_class = {"metadata": {"name": "sc"}, "provisioner": provisioner}
    warning = create.class_access_warning(storage_class, mode)
    assert (warning is None) if warns is None else (warns in str(warning))


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (r.PVS, "persistentvolume"),
        (r.STORAGE_CLASSES, "storageclass.storage.k8s.io"),
        (r.CLUSTER_BASE_MODELS, "clusterbasemodel.ome.io"),
    ],
    ids=["core", "storage", "ome"],
)
def test_kind_name(ref: r.ResourceRef, expected: str) -> None:
    assert create.kind_name(ref) == expected


def test_server_omitted_empty_class_is_no_difference() -> None:
    """The API server drops a PV's `storageClassName: ""`: a re-run must not see a change."""
    req = m.ClaimRequest("c", "ns", "1Gi", m.LocalSource("/m", ("n",)), storage_class=None)
    desired = m.persistent_volume(req)
    live = json.loads(json.dumps(desired))
    del live["spec"]["storageClassName"]
    assert m.spec_difference(live, desired) == []
    live["spec"]["storageClassName"] = "other"
    assert m.spec_difference(live, desired) == ['spec.storageClassName: has "other", wants ""']
