"""patch/diff/unpatch without a cluster: flags, `diff --local`, exit codes, preflight rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from kubectl_omepvc import cli, errors
from kubectl_omepvc.commands import diff, patch
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.printers import Palette
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


def test_unified_colours_only_with_an_enabled_palette() -> None:
    workload = ome.deployment()
    plan = diff._plan(workload, ome.MODEL, "models", ome.SUB_PATH, ome.LABEL_KEY)
    plain = diff.unified([plan], Palette(False))
    coloured = diff.unified([plan], Palette(True))
    assert "\033[" not in plain
    assert "\033[31m-" in coloured and "\033[32m+" in coloured


NAMESPACED_KEY = f"models.ome.io/team-a.basemodel.{ome.MODEL}"


@pytest.mark.parametrize(
    ("namespace", "selector_key", "expected"),
    [
        ("team-a", ome.LABEL_KEY, ome.LABEL_KEY),
        ("team-a", NAMESPACED_KEY, NAMESPACED_KEY),
        ("team-a", "gpu", ome.LABEL_KEY),
    ],
    ids=["cluster-model", "namespaced-model", "none-defaults-to-cluster"],
)  # fmt: skip
def test_label_key_of_a_local_workload(namespace: str, selector_key: str, expected: str) -> None:
    workload = ome.deployment(node_selector={selector_key: "Ready"})
    assert diff.label_key_of(workload, ome.MODEL, namespace) == expected


# --- preflight rules ----------------------------------------------------------------------------


def _pv(root: dict[str, Any] | None = None, nodes: list[str] | None = None) -> Obj:
    spec: Obj = dict(root or {})
    if nodes is not None:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": nodes}
        ]}]}}  # fmt: skip
    return {"metadata": {"name": "pv-models"}, "spec": spec}


def _claim(annotation: str | None = None) -> Obj:
    meta: Obj = {"name": "models"}
    if annotation is not None:
        meta["annotations"] = {"ome-pvc.io/sub-path": annotation}
    return {"metadata": meta}


@pytest.mark.parametrize(
    ("pv", "claim", "flag", "expected"),
    [
        (_pv({"local": {"path": "/raid/models"}}), _claim(), None, "meta/llama"),
        (_pv({"nfs": {"server": "s", "path": "/raid/models/"}}), _claim(), None, "meta/llama"),
        (_pv({"local": {"path": "/raid/models"}}), _claim(), "meta//llama", "meta/llama"),
        (_pv({"local": {"path": "/raid/models/meta/llama"}}), _claim(), None, ""),
        (_pv({"csi": {"driver": "x"}}), _claim("a/b"), None, "a/b"),
        (_pv({"csi": {"driver": "x"}}), _claim("a/b"), "c/d", "c/d"),
        (None, _claim(), "c/d", "c/d"),
    ],
    ids=["local-root", "nfs-root", "flag-agrees", "model-at-root", "annotation",
         "flag-over-annotation", "unbound-with-flag"],
)  # fmt: skip
def test_choose_sub_path(pv: Obj | None, claim: Obj, flag: str | None, expected: str) -> None:
    assert patch.choose_sub_path("/raid/models/meta/llama", pv, claim, flag) == expected


@pytest.mark.parametrize(
    ("pv", "flag", "message"),
    [
        (_pv({"local": {"path": "/data"}}), None, "is outside the volume's root /data"),
        (_pv({"local": {"path": "/raid/models"}}), "llama", "does not match the volume"),
        (_pv({"csi": {"driver": "x"}}), None, "pass --sub-path DIR"),
    ],
    ids=["outside-root", "flag-disagrees", "provisioned-without-flag"],
)
def test_choose_sub_path_refuses(pv: Obj, flag: str | None, message: str) -> None:
    with pytest.raises(errors.InputError, match=message.replace(".", r"\.")):
        patch.choose_sub_path("/raid/models/meta/llama", pv, _claim(), flag)


@pytest.mark.parametrize(
    ("modes", "pods", "pinned", "problem"),
    [
        (["ReadOnlyMany"], 8, None, None),
        (["ReadWriteMany"], 8, None, None),
        (["ReadWriteOnce"], 1, None, None),
        (["ReadWriteOnce"], 3, "gpu-node-2", None),
        (["ReadWriteOnce"], 3, None, "ReadWriteOnce"),
        (["ReadWriteOnce", "ReadOnlyMany"], 3, None, None),
        (["ReadWriteOncePod"], 1, None, None),
        (["ReadWriteOncePod"], 2, "gpu-node-2", "ReadWriteOncePod"),
        ([], 5, None, None),
    ],
    ids=["rox", "rwx", "rwo-one-pod", "rwo-one-node", "rwo-many-nodes", "rwo-and-rox",
         "rwop-one-pod", "rwop-two-pods", "unknown"],
)  # fmt: skip
def test_access_problem(
    modes: list[str], pods: int, pinned: str | None, problem: str | None
) -> None:
    found = patch.access_problem(modes, pods, pinned)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found and str(pods) in found


def _node(name: str, ready: bool = True, **labels: str) -> Obj:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


NODES = [_node("gpu-node-1", pool="a"), _node("gpu-node-2", pool="b"), _node("gpu-node-3", False)]


@pytest.mark.parametrize(
    ("pv", "selectors", "problem"),
    [
        (_pv(nodes=["gpu-node-2"]), {"w": {}}, None),
        (_pv(), {"w": {"pool": "a"}}, None),
        (_pv(nodes=["gpu-node-2"]), {"w": {"pool": "b"}}, None),
        (_pv(nodes=["no-such-node"]), {"w": {}}, "kubernetes.io/hostname In [no-such-node]"),
        (_pv(nodes=["gpu-node-3"]), {"w": {}}, "none of the 2 Ready nodes"),
        (_pv(nodes=["gpu-node-2"]), {"w": {"pool": "a"}}, "has the labels w selects (pool=a)"),
    ],
    ids=["pinned-ready", "no-affinity", "pinned-and-selected", "no-such-node", "node-not-ready",
         "selector-elsewhere"],
)  # fmt: skip
def test_placement_problem(
    pv: Obj, selectors: dict[str, dict[str, str]], problem: str | None
) -> None:
    found = patch.placement_problem(NODES, pv, selectors)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


@pytest.mark.parametrize(
    ("expr", "labels", "expected"),
    [
        ({"key": "k", "operator": "In", "values": ["a"]}, {"k": "a"}, True),
        ({"key": "k", "operator": "NotIn", "values": ["a"]}, {"k": "a"}, False),
        ({"key": "k", "operator": "NotIn", "values": ["a"]}, {}, True),
        ({"key": "k", "operator": "Exists"}, {"k": ""}, True),
        ({"key": "k", "operator": "DoesNotExist"}, {"k": ""}, False),
        ({"key": "k", "operator": "Gt", "values": ["3"]}, {"k": "4"}, True),
        ({"key": "k", "operator": "Lt", "values": ["3"]}, {"k": "4"}, False),
        ({"key": "k", "operator": "Gt", "values": ["3"]}, {"k": "x"}, False),
    ],
    ids=["in", "not-in-has", "not-in-missing", "exists", "does-not-exist", "gt", "lt", "gt-nan"],
)
def test_node_matches(expr: Obj, labels: dict[str, str], expected: bool) -> None:
    node = {"metadata": {"name": "n", "labels": labels}}
    assert patch.node_matches(node, [{"matchExpressions": [expr]}]) is expected


def test_node_matches_fields_and_empty_terms() -> None:
    node = {"metadata": {"name": "n1", "labels": {}}}
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
    assert patch.node_matches(node, [by_name])
    assert not patch.node_matches(node, [{}])  # an empty term selects nothing
    assert patch.node_matches(node, [])  # no terms: any node


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"model": {"name": "m", "kind": "BaseModel"}}, ("m", "BaseModel", "model")),
        ({"model": {"name": "m"}}, ("m", None, "model")),
        ({"baseModel": "m"}, ("m", None, "baseModel")),
    ],
    ids=["kind", "no-kind", "legacy"],
)
def test_model_reference(spec: Obj, expected: tuple[str, str | None, str]) -> None:
    assert patch.model_reference({"metadata": {"name": "i"}, "spec": spec}) == expected


def test_model_reference_needs_a_model() -> None:
    with pytest.raises(errors.InputError, match="names no model"):
        patch.model_reference({"metadata": {"name": "i"}, "spec": {}})


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (None, [(ModelKind.NAMESPACED, "ns"), (ModelKind.CLUSTER, None)]),
        ("BaseModel", [(ModelKind.NAMESPACED, "ns")]),
        ("ClusterBaseModel", [(ModelKind.CLUSTER, None)]),
    ],
    ids=["ome-order", "namespaced", "cluster"],
)
def test_model_candidates(kind: str | None, expected: list[tuple[ModelKind, str | None]]) -> None:
    assert patch.model_candidates(kind, "ns") == expected


def test_model_candidates_refuse_other_kinds() -> None:
    with pytest.raises(errors.InputError, match="FineTunedWeight"):
        patch.model_candidates("FineTunedWeight", "ns")


@pytest.mark.parametrize(
    ("objects", "output", "kind"),
    [([{"kind": "A"}], "json", "A"), ([{"kind": "A"}, {"kind": "B"}], "yaml", "List")],
    ids=["one-object", "several"],
)
def test_render_objects(objects: list[Obj], output: str, kind: str) -> None:
    text = patch.render_objects(objects, output)
    loaded = json.loads(text) if output == "json" else yaml.safe_load(text)
    assert loaded["kind"] == kind
