"""Paths the unit tests cover with fakes, here on the real server.

Name completion lists real objects; LIST follows the server's continue tokens page by page; OME's
CRDs really absent; a cluster-wide LIST really forbidden; and the Retry-After retry of a
throttled request, through a recording relay in front of the real server (tests/e2e/relay.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubectl_omepvc.api.client import MERGE_PATCH, Client
from kubectl_omepvc.commands import completion as completion_command
from kubectl_omepvc.core import manifests
from kubectl_omepvc.core import resources as r
from tests import factories as f
from tests.e2e import ome_controller as ome
from tests.e2e import relay
from tests.e2e.conftest import REPO, Cluster, Plugin

Obj = dict[str, Any]
RBAC = "rbac.authorization.k8s.io"
CLUSTER_ROLES = r.ResourceRef(RBAC, "v1", "clusterroles", "", False)
CLUSTER_ROLE_BINDINGS = r.ResourceRef(RBAC, "v1", "clusterrolebindings", "", False)
ROLES = r.ResourceRef(RBAC, "v1", "roles", "", True)
ROLE_BINDINGS = r.ResourceRef(RBAC, "v1", "rolebindings", "", True)


@pytest.fixture
def cluster_models(admin: Client) -> Iterator[list[str]]:
    """Names of ClusterBaseModels a test creates; deleted afterwards (they are cluster-scoped)."""
    names: list[str] = []
    yield names
    for name in names:
        admin.delete(r.CLUSTER_BASE_MODELS, name)


def cluster_model(admin: Client, names: list[str], name: str, labels: dict[str, str]) -> None:
    model = f.cluster_base_model(name)
    model["metadata"] = {"name": name, "labels": labels}
    model.pop("status", None)
    admin.create(r.CLUSTER_BASE_MODELS, model)
    names.append(name)


def isvc(admin: Client, namespace: str, name: str, model: str) -> None:
    obj = f.inference_service(namespace, name, model)
    del obj["metadata"]["uid"]
    admin.create(r.INFERENCE_SERVICES, obj, namespace)


def claim(admin: Client, namespace: str, name: str) -> None:
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadOnlyMany"],
            "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": "",
        },
    }
    admin.create(r.PVCS, pvc, namespace)


# --- name completion ---------------------------------------------------------------------------


@pytest.fixture
def complete(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Any]:
    """`kubectl_complete-ome_pvc WORDS...` in-process; returns (stdout, stderr)."""
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))

    def run(*words: str) -> tuple[str, str]:
        with warnings.catch_warnings():
            completion_command.cobra_main(list(words))
        captured = capsys.readouterr()
        return captured.out, captured.err

    yield run
    logging.disable(logging.NOTSET)  # cobra_main silences logging for its process


def test_completion_lists_names_from_the_server(
    complete: Any, admin: Client, namespace: str, cluster_models: list[str]
) -> None:
    for name in ("llama", "llava", "qwen"):
        isvc(admin, namespace, name, "m")
    for name in ("weights-a", "weights-b"):
        claim(admin, namespace, name)
    prefix = f"cmpl-{secrets.token_hex(3)}"
    for name in (f"{prefix}-a", f"{prefix}-b"):
        cluster_model(admin, cluster_models, name, {})

    assert complete("patch", "-n", namespace, "ll") == ("llama\nllava\n:4\n", "")
    assert complete("unpatch", "-n", namespace, "") == ("llama\nllava\nqwen\n:4\n", "")
    assert complete("verify", "--namespace", namespace, "w") == ("weights-a\nweights-b\n:4\n", "")
    assert complete("status", prefix) == (f"{prefix}-a\n{prefix}-b\n:4\n", "")
    assert complete("status", "-n", namespace) == (f"{namespace}\n:4\n", "")
    # Another namespace's names are not offered.
    assert complete("patch", "-n", "default", "ll") == (":4\n", "")


def test_completion_without_rights_offers_nothing_quietly(
    complete: Any, admin: Client, namespace: str
) -> None:
    isvc(admin, namespace, "llama", "m")
    assert complete("patch", "--context", "local-restricted", "-n", namespace, "") == (":4\n", "")


# --- pagination --------------------------------------------------------------------------------


def test_status_reads_every_page_of_a_small_page_size(
    plugin: Plugin, admin: Client, cluster: Cluster, cluster_models: list[str], tmp_path: Path
) -> None:
    run = secrets.token_hex(3)
    names = [f"page-{run}-{i}" for i in range(5)]
    for name in names:
        cluster_model(admin, cluster_models, name, {"page": run})
    with relay.running(cluster.kubeconfig) as front:
        front.max_limit = 2
        kubeconfig = front.kubeconfig(cluster.kubeconfig, tmp_path / "kubeconfig")
        result = plugin(
            "status", "--kubeconfig", str(kubeconfig), "-l", f"page={run}", "--kind", "cluster",
            "-o", "json",
        )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert [i["name"] for i in json.loads(result.stdout)["items"]] == names
    pages = front.requests(r.CLUSTER_BASE_MODELS.path())
    assert [p.query["limit"] for p in pages] == [["2"]] * 3
    tokens = [p.query.get("continue") for p in pages]
    assert tokens[0] is None and all(t and t[0] for t in tokens[1:]), tokens
    assert len({t[0] for t in tokens[1:] if t}) == 2  # each page continues where the last ended


# --- OME's CRDs absent -------------------------------------------------------------------------

OME_CRDS = sorted((REPO / "hack" / "crds").glob("ome.io_*.yaml"))


@pytest.fixture
def without_ome(cluster: Cluster, admin: Client) -> Iterator[None]:
    """OME's CRDs deleted (their objects with them), then put back."""
    # Objects with a finalizer would keep a CRD terminating (and served): no OME removes them.
    for ref in (r.CLUSTER_BASE_MODELS, r.BASE_MODELS, r.INFERENCE_SERVICES):
        for obj in admin.list(ref):
            if obj["metadata"].get("finalizers"):
                meta = obj["metadata"]
                admin.patch(
                    ref, meta["name"], {"metadata": {"finalizers": None}},
                    namespace=meta.get("namespace"), content_type=MERGE_PATCH,
                )  # fmt: skip
    args = [a for crd in OME_CRDS for a in ("-f", str(crd))]
    cluster.kubectl("delete", *args, "--wait=true", "--timeout=60s")
    try:
        yield
    finally:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", *args)
        cluster.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s",
            *[a for crd in OME_CRDS for a in ("-f", str(crd))],
        )  # fmt: skip
        ome.wait_for(lambda: _served(admin), bool, what="OME's kinds to be served again")


def _served(admin: Client) -> bool:
    with contextlib.suppress(Exception):
        list(admin.list(r.CLUSTER_BASE_MODELS))
        return True
    return False


def test_without_omes_crds_each_command_says_so(plugin: Plugin, without_ome: None) -> None:
    not_installed = (
        'OME is not installed in context "local-admin": the server does not serve '
        "clusterbasemodels.ome.io/v1beta1"
    )
    status = plugin("status")
    assert status.exit_code == 1
    assert len(status.stderr.strip().splitlines()) == 1 and not_installed in status.stderr
    detail = plugin("status", "llama-3-2-1b-instruct")
    assert detail.exit_code == 1 and not_installed in detail.stderr
    version = plugin("version", "-o", "json")
    assert version.exit_code == 0, version.stderr
    ome_info = json.loads(version.stdout)["server"]["ome"]
    assert ome_info["served"] is False
    isvc_absent = (
        'OME is not installed in context "local-admin": the server does not serve '
        "inferenceservices.ome.io/v1beta1"
    )
    for command in ("patch", "unpatch", "diff"):
        args = ["--claim", "weights"] if command != "unpatch" else []
        result = plugin(command, "llama", "-n", "default", *args)
        assert result.exit_code == 1 if command != "diff" else 2, (command, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and isvc_absent in lines[0], (command, lines)


# --- a forbidden cluster-wide LIST -------------------------------------------------------------


@pytest.fixture
def namespace_reader(admin: Client, namespace: str) -> Iterator[str]:
    """A user who may read the model kinds cluster-wide, but InferenceServices only in
    `namespace` (impersonated with --as)."""
    user = f"ns-reader-{secrets.token_hex(3)}"
    subject = [{"apiGroup": RBAC, "kind": "User", "name": user}]
    models = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": user},
        "rules": [
            {"apiGroups": ["ome.io"], "resources": ["clusterbasemodels", "basemodels"],
             "verbs": ["get", "list", "watch"]},
        ],
    }  # fmt: skip
    isvcs = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "Role",
        "metadata": {"name": user},
        "rules": [{"apiGroups": ["ome.io"], "resources": ["inferenceservices"], "verbs": ["list"]}],
    }
    admin.create(CLUSTER_ROLES, models)
    admin.create(
        CLUSTER_ROLE_BINDINGS,
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": user},
         "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": user}, "subjects": subject},
    )  # fmt: skip
    admin.create(ROLES, isvcs, namespace)
    admin.create(
        ROLE_BINDINGS,
        {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": user},
         "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": user}, "subjects": subject},
        namespace,
    )  # fmt: skip
    try:
        yield user
    finally:
        admin.delete(CLUSTER_ROLE_BINDINGS, user)
        admin.delete(CLUSTER_ROLES, user)


def test_forbidden_cluster_wide_isvc_list_falls_back_to_the_namespace(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    cluster_models: list[str],
    namespace_reader: str,
) -> None:
    run = secrets.token_hex(3)
    model = f"fallback-{run}"
    cluster_model(admin, cluster_models, model, {"fallback": run})
    isvc(admin, namespace, "llama", model)
    args = ["--as", namespace_reader, "-n", namespace, "-l", f"fallback={run}", "-o", "json"]

    def listed() -> Any:
        result = plugin("status", "--kind", "cluster", *args)
        return result if result.exit_code == 0 else None

    result = ome.wait_for(listed, bool, what="the bindings to take effect")
    (item,) = json.loads(result.stdout)["items"]
    assert [(s["namespace"], s["name"]) for s in item["inferenceServices"]] == [
        (namespace, "llama")
    ]
    assert (
        "Warning: cannot list inferenceservices.ome.io in all namespaces (forbidden): "
        f"only those of namespace {namespace} are shown"
    ) in result.stderr.splitlines()


# --- Retry-After -------------------------------------------------------------------------------


@pytest.fixture
def front(cluster: Cluster, tmp_path: Path) -> Iterator[tuple[relay.Relay, str]]:
    with relay.running(cluster.kubeconfig) as running:
        yield running, str(running.kubeconfig(cluster.kubeconfig, tmp_path / "kubeconfig"))


def test_429_and_503_with_retry_after_are_retried_after_the_delay(
    plugin: Plugin, front: tuple[relay.Relay, str]
) -> None:
    relay_, kubeconfig = front
    relay_.inject(lambda method, path, query: path == "/version", 429, retry_after="1")
    relay_.inject(lambda method, path, query: path == "/version", 503, retry_after="0")
    start = time.monotonic()
    result = plugin("version", "--kubeconfig", kubeconfig, "-o", "json")
    elapsed = time.monotonic() - start
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["server"]["serverVersion"].startswith("v1.")
    assert [s.status for s in relay_.requests("/version")] == [429, 503, 200]
    assert elapsed >= 1.0, "the 429's Retry-After: 1 was not waited for"


def test_5xx_without_retry_after_is_not_retried(
    plugin: Plugin, front: tuple[relay.Relay, str]
) -> None:
    relay_, kubeconfig = front
    relay_.inject(lambda method, path, query: path == r.CLUSTER_BASE_MODELS.path(), 500)
    result = plugin("status", "--kubeconfig", kubeconfig, "--kind", "cluster")
    assert result.exit_code == 1
    assert [s.status for s in relay_.requests(r.CLUSTER_BASE_MODELS.path())] == [500]


def test_a_throttled_write_is_sent_again_and_happens_once(
    plugin: Plugin, admin: Client, namespace: str, front: tuple[relay.Relay, str]
) -> None:
    """A 429 on the stored create of a PersistentVolumeClaim (server-side apply): the plugin
    waits, sends it again, and the claim exists once."""
    relay_, kubeconfig = front
    path = r.PVCS.path(namespace, "weights")

    def stored_write(method: str, at: str, query: dict[str, list[str]]) -> bool:
        return relay.is_write(method, query) and at == path

    relay_.inject(stored_write, 429, retry_after="0")
    pv = manifests.pv_name(namespace, "weights")
    try:
        result = plugin(
            "create", "weights", "-n", namespace, "--kubeconfig", kubeconfig, "--local-path",
            "/raid/models", "--node", "gpu-node-1", "--size", "1Gi", "--no-storage-class",
            "--no-wait",
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        assert [s.status for s in relay_.writes() if s.path == path] == [429, 201]
        assert [c["metadata"]["name"] for c in admin.list(r.PVCS, namespace)] == ["weights"]
    finally:
        admin.delete(r.PVS, pv)
