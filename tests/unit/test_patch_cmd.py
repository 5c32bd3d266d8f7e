"""patch/diff/unpatch without a cluster: flags, `diff --local`, exit codes, preflight rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from kubectl_omepvc import cli
from kubectl_omepvc.commands import patch
from kubectl_omepvc.core import jsonpatch as jp
from tests.unit import ome_objects as ome

Obj = dict[str, Any]
NO_CLUSTER = {"KUBECONFIG": "/nonexistent/kubeconfig", "KUBECTL_EXTERNAL_DIFF": None}


def run(*args: str, stdin: str | None = None, env: dict[str, Any] | None = None) -> Result:
    merged = {**NO_CLUSTER, **(env or {})}
    return CliRunner().invoke(
        cli.root, list(args), input=stdin, env=merged, prog_name="kubectl ome-pvc"
    )


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(ome.deployment(volume_index=2), sort_keys=False))
    return path


# --- flags ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["patch", "llama"], "Missing option '--claim'"),
        (["patch", "llama", "--claim", "m", "--strategy", "sidecar"], "'sidecar' is not one of"),
        (["patch", "llama", "--claim", "m", "--settle", "soon"], "invalid duration"),
        (["patch", "llama", "--claim", "m", "--timeout", "5x"], "invalid duration"),
        (["patch", "llama", "--claim", "m", "--dry-run", "maybe"], "'maybe' is not one of"),
        (["patch", "llama", "--claim", "m", "-o", "wide"], "'wide' is not one of"),
        (["unpatch"], "Missing argument 'ISVC'"),
        (["diff", "--claim", "m"], "name the InferenceService"),
        (["diff", "llama"], "Missing option '--claim'"),
        (["diff", "llama", "--claim", "m", "--pv-root", "/r"], "go with --local"),
        (["diff", "--local", "--claim", "m"], "--local needs -f FILE"),
    ],
    ids=["patch-no-claim", "bad-strategy", "bad-settle", "bad-timeout", "bad-dry-run",
         "bad-output", "unpatch-no-isvc", "diff-no-isvc", "diff-no-claim",
         "diff-local-flag-without-local", "diff-local-without-file"],
)  # fmt: skip
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_patch_help_names_the_strategies_and_defaults() -> None:
    result = run("patch", "--help")
    assert result.exit_code == 0
    for text in ("native", "policy", "deployment", "[default: 15s]", "[default: 5m]"):
        assert text in result.stdout


# --- diff --local (no cluster) -------------------------------------------------------------------


def test_local_diff_from_the_pv_root(manifest: Path) -> None:
    result = run(
        "diff", "--local", "-f", str(manifest), "--claim", "models", "--pv-root", "/raid/models"
    )
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        "--- deployment/llama-engine (hostPath)",
        "+++ deployment/llama-engine (pvc)",
    ]
    assert f"+      subPath: {ome.SUB_PATH}" in lines
    assert f"-    {ome.LABEL_KEY}: Ready" in lines
    assert "+  nodeSelector: {}" not in lines  # the server drops the emptied map
    assert "-      path: /var/cache/llm" not in lines  # the unrelated hostPath stays
    assert "\033[" not in result.stdout


def test_local_diff_reads_stdin_and_a_sub_path(manifest: Path) -> None:
    result = run(
        "diff", "--local", "-f", "-", "--claim", "models", "--sub-path", "./meta//llama/",
        stdin=manifest.read_text(),
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "+      subPath: meta/llama" in result.stdout.splitlines()


def test_local_json_prints_the_patches(manifest: Path) -> None:
    result = run(
        "diff", "--local", "-f", str(manifest), "--claim", "models", "--sub-path", ome.SUB_PATH,
        "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    patches = json.loads(result.stdout)
    assert [(p["kind"], p["name"], p["namespace"]) for p in patches] == [
        ("Deployment", "llama-engine", ome.NAMESPACE)
    ]
    patched = jp.apply_patch(ome.deployment(volume_index=2), patches[0]["patch"])
    volume = patched["spec"]["template"]["spec"]["volumes"][2]
    assert volume["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}


def test_local_diff_of_a_switched_workload_exits_0(tmp_path: Path) -> None:
    workload = ome.deployment()
    ops = jp.workload_patch(
        workload, [jp.DEPLOYMENT_TEMPLATE], ome.MODEL, "models", ome.SUB_PATH, ome.LABEL_KEY
    )
    path = tmp_path / "patched.yaml"
    path.write_text(yaml.safe_dump(jp.apply_patch(workload, ops)))
    result = run("diff", "--local", "-f", str(path), "--claim", "models", "--sub-path", "x")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "already serves its model from a claim" in result.stderr


def test_local_diff_of_a_leader_worker_set_list(tmp_path: Path) -> None:
    items = {"apiVersion": "v1", "kind": "List", "items": [ome.leader_worker_set()]}
    path = tmp_path / "lws.json"
    path.write_text(json.dumps(items))
    result = run(
        "diff", "--local", "-f", str(path), "--claim", "models", "--pv-root", "/raid/models"
    )
    assert result.exit_code == 1, result.output
    assert "--- leaderworkerset/lws-llama-engine leaderTemplate (hostPath)" in result.stdout
    assert "--- leaderworkerset/lws-llama-engine workerTemplate (hostPath)" in result.stdout


@pytest.mark.parametrize(
    ("content", "flags", "message"),
    [
        ("kind: ConfigMap\napiVersion: v1\n", ["--sub-path", "x"], "holds no Deployment"),
        ("a: [b", ["--sub-path", "x"], "is not valid YAML"),
        (None, [], "needs to know where the model is on the claim"),
        (None, ["--pv-root", "/data"], "is outside the volume's root /data"),
        (None, ["--sub-path", "../up"], "contains '..'"),
    ],
    ids=["no-workload", "bad-yaml", "no-sub-path", "outside-root", "escaping-sub-path"],
)
def test_local_diff_errors_exit_2(
    manifest: Path, content: str | None, flags: list[str], message: str
) -> None:
    if content is not None:
        manifest.write_text(content)
    result = run("diff", "--local", "-f", str(manifest), "--claim", "models", *flags)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


@pytest.mark.parametrize(
    ("program", "code"),
    [("true", 0), ("false", 1), ("sh -c 'exit 3'", 3), ("no-such-diff-program", 2)],
    ids=["same", "different", "failed", "missing"],
)
def test_external_diff_decides_the_exit_code(manifest: Path, program: str, code: int) -> None:
    result = run(
        "diff", "--local", "-f", str(manifest), "--claim", "models", "--sub-path", "x",
        env={"KUBECTL_EXTERNAL_DIFF": program},
    )  # fmt: skip
    assert result.exit_code == code, result.output


def test_external_diff_gets_one_file_per_workload_in_kubectl_dirs(manifest: Path) -> None:
    result = run(
        "diff", "--local", "-f", str(manifest), "--claim", "models", "--sub-path", "x",
        env={"KUBECTL_EXTERNAL_DIFF": "ls"},
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert any(line.startswith("/") and "/LIVE-" in line for line in lines)
    assert any("/MERGED-" in line for line in lines)
    assert lines.count(f"apps.v1.Deployment.{ome.NAMESPACE}.llama-engine") == 2


@pytest.mark.parametrize(
    ("objects", "output", "kind"),
    [([{"kind": "A"}], "json", "A"), ([{"kind": "A"}, {"kind": "B"}], "yaml", "List")],
    ids=["one-object", "several"],
)
def test_render_objects(objects: list[Obj], output: str, kind: str) -> None:
    text = patch.render_objects(objects, output)
    loaded = json.loads(text) if output == "json" else yaml.safe_load(text)
    assert loaded["kind"] == kind
