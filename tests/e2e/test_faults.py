"""Faults between writes: each stored write of patch, unpatch and create refused in turn.

A recording relay in front of the real server (tests/e2e/relay.py) answers exactly one stored
write (the n-th; dry runs pass) as an admission policy denying it would: 422 Invalid. Every
other request, the rollbacks included, reaches the real server. For each write of each
strategy three things are checked on the server:
- what is left is nothing new, or what the error message says is in place;
- following the message (run again, or `unpatch`) reaches the intended end state;
- no workload is left mounting the claim without a policy or a record `unpatch` can find.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from kubectl_omepvc import errors
from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import manifests, policy
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.naming import ModelKind
from tests.e2e import ome_controller as ome
from tests.e2e import relay
from tests.e2e.conftest import POLICY_VERSION, VAP, VAP_BINDING, Cluster, Plugin, create_denial

Obj = dict[str, Any]
CLAIM = "models"
MAP = r.mutating_policies(POLICY_VERSION)
MAPB = r.mutating_policy_bindings(POLICY_VERSION)
REFUSAL = "denied by the test's admission policy"


# --- the server's state, and the invariant ------------------------------------------------------


def workloads(admin: Client, namespace: str) -> list[Obj]:
    found = [{**d, "kind": "Deployment"} for d in admin.list(r.DEPLOYMENTS, namespace)]
    found += [{**x, "kind": "LeaderWorkerSet"} for x in admin.list(r.LEADER_WORKER_SETS, namespace)]
    return found


def on_claim(workload: Obj) -> bool:
    return any(
        "persistentVolumeClaim" in v
        for p in jp.pod_template_paths(workload)
        for v in jp.resolve(workload, p)["spec"].get("volumes") or []
    )


def state(admin: Client, namespace: str) -> Obj:
    """What patch, unpatch and create may change, as the server has it."""
    name = policy.policy_name(namespace, "llama")
    isvc = admin.get_or_none(r.INFERENCE_SERVICES, "llama", namespace)
    return {
        "workloads": {
            jp.workload_ref(w): {
                "templates": [json.dumps(jp.resolve(w, p)) for p in jp.pod_template_paths(w)],
                "record": (w["metadata"].get("annotations") or {}).get(jp.ANNOTATION),
            }
            for w in workloads(admin, namespace)
        },
        "policy": admin.get_or_none(MAP, name) is not None,
        "binding": admin.get_or_none(MAPB, name) is not None,
        "isvc": None
        if isvc is None
        else {
            "spec": isvc["spec"],
            "record": (isvc["metadata"].get("annotations") or {}).get(jp.ANNOTATION),
        },
        "claims": sorted(c["metadata"]["name"] for c in admin.list(r.PVCS, namespace)),
    }


def assert_findable(admin: Client, namespace: str) -> None:
    """No workload on the claim without a record or a policy that `unpatch` can find."""
    name = policy.policy_name(namespace, "llama")
    found = admin.get_or_none(MAP, name)
    kept = (policy.read_policy_record(found) or {}).get("workloads") or {} if found else {}
    for workload in workloads(admin, namespace):
        if on_claim(workload):
            ref = jp.workload_ref(workload)
            assert jp.read_record(workload) is not None or ref in kept, (
                f"{ref} mounts the claim with no record and no policy holding one"
            )


# --- running through the relay ------------------------------------------------------------------


@pytest.fixture
def through(cluster: Cluster, plugin: Plugin, tmp_path: Path) -> Iterator[Any]:
    """Runs the plugin through a relay that refuses the n-th stored write (None: none)."""
    with relay.running(cluster.kubeconfig) as front:
        kubeconfig = str(front.kubeconfig(cluster.kubeconfig, tmp_path / "kubeconfig"))

        def run(refuse: int | None, *args: str) -> tuple[Result, list[relay.Seen]]:
            front.seen.clear()
            front.refuse_write = refuse
            result = plugin(*args, "--kubeconfig", kubeconfig)
            return result, front.writes()

        yield run


def writes_of(seen: list[relay.Seen]) -> list[tuple[str, str]]:
    return [(s.method, s.path) for s in seen]


def error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert lines, result.output
    assert REFUSAL in lines[-1], lines
    return lines[-1]


@pytest.fixture
def two_deployments(
    admin: Client, namespace: str, labelled: ome.Isvc, pv_names: list[str]
) -> ome.Isvc:
    """isvc `llama`, its claim, and its engine and decoder Deployments on the hostPath."""
    pv, _ = ome.create_local_claim(admin, namespace, CLAIM)
    pv_names.append(pv["metadata"]["name"])
    ome.create_workload(labelled, ome.component_deployment(labelled, "engine"))
    ome.create_workload(labelled, ome.component_deployment(labelled, "decoder"))
    return labelled


def deployment_path(namespace: str, name: str) -> str:
    return r.DEPLOYMENTS.path(namespace, name)


PATCH = ("patch", "llama", "--claim", CLAIM, "--no-wait")
IN_ORDER = ("llama-decoder", "llama-engine")  # the workloads, as the plugin writes them


# --- policy: patch ------------------------------------------------------------------------------


def policy_writes(namespace: str) -> list[tuple[str, str]]:
    return [
        ("POST", MAP.path()),
        ("POST", MAPB.path()),
        *(("PATCH", deployment_path(namespace, name)) for name in IN_ORDER),
    ]


@pytest.mark.parametrize("refused", [None, 0, 1, 2, 3], ids=lambda k: f"write-{k}")
def test_policy_patch_refused_at_each_write(
    through: Any, admin: Client, namespace: str, two_deployments: ome.Isvc, refused: int | None
) -> None:
    before = state(admin, namespace)
    args = (*PATCH, "-n", namespace, "--strategy", "policy")
    result, seen = through(refused, *args)
    wanted = policy_writes(namespace)
    if refused is None:
        assert result.exit_code == 0, result.output
        assert writes_of(seen) == wanted
        return
    assert writes_of(seen)[: refused + 1] == wanted[: refused + 1]
    message = error_line(result)
    after = state(admin, namespace)
    assert_findable(admin, namespace)
    name = policy.policy_name(namespace, "llama")
    if refused <= 1:
        assert after == before, "a refused policy or binding leaves nothing new"
    else:
        assert f"policy {name} is in place" in message
        assert (after["policy"], after["binding"]) == (True, True)
        patched = [ref for ref, w in after["workloads"].items() if w["record"]]
        assert patched == [f"deployment/{name}" for name in IN_ORDER[: refused - 2]]
        for ref in patched:
            assert ref.split("/")[1] in message, f"{ref} is patched, the message must say so"
        assert "run the command again to finish" in message
    # Following the message: run again.
    again, _ = through(None, *args)
    assert again.exit_code == 0, again.output
    done = state(admin, namespace)
    assert (done["policy"], done["binding"]) == (True, True)
    assert all(w["record"] for w in done["workloads"].values())
    assert all(on_claim(w) for w in workloads(admin, namespace))
    # ... and unpatch gives back exactly the start.
    undone, _ = through(None, "unpatch", "llama", "-n", namespace, "--no-wait")
    assert undone.exit_code == 0, undone.output
    assert state(admin, namespace) == before


# --- deployment: patch --------------------------------------------------------------------------


@pytest.mark.parametrize("refused", [None, 0, 1], ids=lambda k: f"write-{k}")
def test_deployment_patch_refused_at_each_write(
    through: Any, admin: Client, namespace: str, two_deployments: ome.Isvc, refused: int | None
) -> None:
    before = state(admin, namespace)
    args = (*PATCH, "-n", namespace, "--strategy", "deployment", "--settle", "0")
    result, seen = through(refused, *args)
    wanted = policy_writes(namespace)[2:]
    if refused is None:
        assert result.exit_code == 0, result.output
        assert writes_of(seen) == wanted
        return
    message = error_line(result)
    after = state(admin, namespace)
    assert_findable(admin, namespace)
    if refused == 0:
        assert after == before
    else:
        assert after["workloads"]["deployment/llama-decoder"]["record"]
        assert not after["workloads"]["deployment/llama-engine"]["record"]
        assert "llama-decoder" in message, "the patched decoder must be named"
        assert "run the command again to finish" in message
    again, _ = through(None, *args)
    assert again.exit_code == 0, again.output
    assert all(w["record"] for w in state(admin, namespace)["workloads"].values())
    undone, _ = through(None, "unpatch", "llama", "-n", namespace, "--no-wait")
    assert undone.exit_code == 0, undone.output
    assert state(admin, namespace) == before


# --- unpatch, policy and deployment -------------------------------------------------------------


@pytest.mark.parametrize("ome_dropped_records", [False, True], ids=["records", "ome-updated"])
@pytest.mark.parametrize("refused", [None, 0, 1, 2, 3], ids=lambda k: f"write-{k}")
def test_policy_unpatch_refused_at_each_write(
    through: Any,
    admin: Client,
    namespace: str,
    two_deployments: ome.Isvc,
    refused: int | None,
    ome_dropped_records: bool,
) -> None:
    before = state(admin, namespace)
    patched, _ = through(None, *PATCH, "-n", namespace, "--strategy", "policy")
    assert patched.exit_code == 0, patched.output
    if ome_dropped_records:
        # OME's full Update of the engine sends its own metadata: only the policy keeps its record.
        updated = {**ome.update(admin, namespace, "llama"), "kind": "Deployment"}
        assert jp.read_record(updated) is None and on_claim(updated)
    result, seen = through(refused, "unpatch", "llama", "-n", namespace, "--no-wait")
    name = policy.policy_name(namespace, "llama")
    if refused is None:
        assert result.exit_code == 0, result.output
        assert writes_of(seen) == [
            ("DELETE", MAPB.path(None, name)),
            *(("PATCH", deployment_path(namespace, w)) for w in IN_ORDER),
            ("DELETE", MAP.path(None, name)),
        ]
        assert state(admin, namespace) == before
        return
    message = error_line(result)
    assert_findable(admin, namespace)
    after = state(admin, namespace)
    assert after["policy"], "the policy holds the records until every workload is restored"
    if refused == 0:
        assert after["binding"]
    else:
        assert not after["binding"]
        assert f"binding {name} deleted" in message or refused == 3, message
        assert name in message, message
    again, _ = through(None, "unpatch", "llama", "-n", namespace, "--no-wait")
    assert again.exit_code == 0, again.output
    assert state(admin, namespace) == before


@pytest.mark.parametrize("refused", [None, 0, 1], ids=lambda k: f"write-{k}")
def test_deployment_unpatch_refused_at_each_write(
    through: Any, admin: Client, namespace: str, two_deployments: ome.Isvc, refused: int | None
) -> None:
    before = state(admin, namespace)
    args = (*PATCH, "-n", namespace, "--strategy", "deployment", "--settle", "0")
    patched, _ = through(None, *args)
    assert patched.exit_code == 0, patched.output
    result, seen = through(refused, "unpatch", "llama", "-n", namespace, "--no-wait")
    if refused is None:
        assert result.exit_code == 0, result.output
        assert writes_of(seen) == policy_writes(namespace)[2:]
        assert state(admin, namespace) == before
        return
    message = error_line(result)
    assert_findable(admin, namespace)
    if refused == 1:
        assert "llama-decoder" in message, "the restored decoder must be named"
    again, _ = through(None, "unpatch", "llama", "-n", namespace, "--no-wait")
    assert again.exit_code == 0, again.output
    assert state(admin, namespace) == before


# --- native -------------------------------------------------------------------------------------


@pytest.fixture
def native_isvc(
    admin: Client, namespace: str, pv_names: list[str], native_ome: None
) -> Iterator[ome.Isvc]:
    model = f"llama-native-{secrets.token_hex(3)}"
    isvc = ome.create_isvc(admin, namespace, "llama", model, kind=ModelKind.CLUSTER)
    ome.create_workload(isvc, ome.component_deployment(isvc))
    pv, _ = ome.create_local_claim(admin, namespace, CLAIM)
    pv_names.append(pv["metadata"]["name"])
    yield isvc
    for leftover in (model, f"{model}-pvc"):
        admin.delete(r.CLUSTER_BASE_MODELS, leftover)


def models(admin: Client, prefix: str) -> list[str]:
    return sorted(
        m["metadata"]["name"]
        for m in admin.list(r.CLUSTER_BASE_MODELS)
        if m["metadata"]["name"].startswith(prefix)
    )


@pytest.mark.parametrize("refused", [None, 0, 1], ids=lambda k: f"write-{k}")
def test_native_patch_and_unpatch_refused_at_each_write(
    through: Any, admin: Client, namespace: str, native_isvc: ome.Isvc, refused: int | None
) -> None:
    before = (state(admin, namespace), models(admin, native_isvc.model))
    args = (*PATCH, "-n", namespace, "--strategy", "native")
    result, seen = through(refused, *args)
    created = f"{native_isvc.model}-pvc"
    wanted = [
        ("PATCH", r.CLUSTER_BASE_MODELS.path(None, created)),
        ("PATCH", r.INFERENCE_SERVICES.path(namespace, "llama")),
    ]
    if refused is None:
        assert result.exit_code == 0, result.output
        assert writes_of(seen) == wanted
    else:
        error_line(result)
        assert writes_of(seen)[: refused + 1] == wanted[: refused + 1]
        assert (state(admin, namespace), models(admin, native_isvc.model)) == before
        again, _ = through(None, *args)
        assert again.exit_code == 0, again.output
    assert models(admin, native_isvc.model) == [native_isvc.model, created]

    # unpatch: the isvc back to its model, then the copy deleted.
    undo_wanted = [
        ("PATCH", r.INFERENCE_SERVICES.path(namespace, "llama")),
        ("DELETE", r.CLUSTER_BASE_MODELS.path(None, created)),
    ]
    result, seen = through(refused, "unpatch", "llama", "-n", namespace, "--no-wait")
    if refused is None:
        assert result.exit_code == 0, result.output
        assert writes_of(seen) == undo_wanted
    else:
        message = error_line(result)
        if refused == 1:
            # The isvc is back on its model; the copy is left, and the message says so.
            assert state(admin, namespace) == before[0]
            assert created in message and "delete" in message.lower()
        again, _ = through(None, "unpatch", "llama", "-n", namespace, "--no-wait")
        assert again.exit_code == 0, again.output
        if refused == 1:
            admin.delete(r.CLUSTER_BASE_MODELS, created)  # what the message said to do
    assert (state(admin, namespace), models(admin, native_isvc.model)) == before


# --- create -------------------------------------------------------------------------------------


@pytest.mark.parametrize("refused", [None, 0, 1, 2], ids=lambda k: f"write-{k}")
def test_create_refused_at_each_write(
    through: Any, admin: Client, namespace: str, refused: int | None, native_ome: None
) -> None:
    """`--register-model` writes only where OME serves pvc:// models: OME built from main."""
    model = f"weights-{secrets.token_hex(3)}"
    args = (
        "create", "weights", "-n", namespace, "--local-path", "/raid/models", "--node",
        "gpu-node-1", "--size", "1Gi", "--no-storage-class", "--sub-path", "meta/llama",
        "--register-model", f"basemodel/{model}", "--no-wait",
    )  # fmt: skip
    pv = manifests.pv_name(namespace, "weights")
    wanted = [
        ("PATCH", r.PVS.path(None, pv)),
        ("PATCH", r.PVCS.path(namespace, "weights")),
        ("PATCH", r.BASE_MODELS.path(namespace, model)),
    ]
    try:
        result, seen = through(refused, *args)
        if refused is None:
            assert result.exit_code == 0, result.output
            assert writes_of(seen) == wanted
            return
        message = error_line(result)
        left = (
            admin.get_or_none(r.PVS, pv) is not None,
            admin.get_or_none(r.PVCS, "weights", namespace) is not None,
            admin.get_or_none(r.BASE_MODELS, model, namespace) is not None,
        )
        assert left == (False, False, False), f"{left} left after: {message}"
        again, _ = through(None, *args)
        assert again.exit_code == 0, again.output
        assert admin.get_or_none(r.BASE_MODELS, model, namespace) is not None
    finally:
        admin.delete(r.PVS, pv)


# --- the same fault from a real admission policy ------------------------------------------------


@pytest.fixture
def frozen_engine(admin: Client, namespace: str, two_deployments: ome.Isvc) -> Iterator[str]:
    """A ValidatingAdmissionPolicy denying stored updates of Deployment llama-engine (dry runs
    pass), as a policy an admin added meanwhile would; yields its name once it denies."""
    name = f"{namespace}-frozen-engine"
    rule = {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE"],
            "resources": ["deployments"]}  # fmt: skip
    when = "object.metadata.name == 'llama-engine'"
    create_denial(admin, name, namespace, rule, when, "the engine is frozen")

    def denies() -> bool:
        """An unchanged update of the engine (harmless if it passes) is refused."""
        live = admin.get(r.DEPLOYMENTS, "llama-engine", namespace)
        try:
            admin.replace(r.DEPLOYMENTS, live, namespace)
        except errors.PluginError as exc:
            return "the engine is frozen" in exc.message
        return False

    try:
        ome.wait_for(denies, bool, what="the admission policy to take effect", timeout=120)
        yield name
    finally:
        admin.delete(VAP_BINDING, name)
        admin.delete(VAP, name)


def test_a_real_admission_policy_refusing_the_second_workload(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    two_deployments: ome.Isvc,
    frozen_engine: str,
) -> None:
    before = state(admin, namespace)
    args = (*PATCH, "-n", namespace, "--strategy", "deployment", "--settle", "0")

    def refused() -> Result | None:
        result = plugin(*args)
        if result.exit_code == 0:  # the policy was not served yet: start again
            undone = plugin("unpatch", "llama", "-n", namespace, "--no-wait")
            assert undone.exit_code == 0, undone.output
            return None
        return result

    result = ome.wait_for(refused, bool, what="the admission policy to take effect")
    message = result.stderr.strip().splitlines()[-1]
    assert "the engine is frozen" in message
    assert "deployment.apps/llama-decoder patched already" in message
    assert "run the command again to finish" in message
    after = state(admin, namespace)
    assert after["workloads"]["deployment/llama-decoder"]["record"]
    assert (
        after["workloads"]["deployment/llama-engine"]
        == before["workloads"]["deployment/llama-engine"]
    )
    assert_findable(admin, namespace)
    # The admin lifts the policy; the message's way finishes the switch, unpatch undoes it.
    admin.delete(VAP_BINDING, frozen_engine)
    admin.delete(VAP, frozen_engine)

    def finished() -> bool:
        return plugin(*args).exit_code == 0

    ome.wait_for(finished, bool, what="the lifted policy to stop denying")
    assert all(w["record"] for w in state(admin, namespace)["workloads"].values())
    undone = plugin("unpatch", "llama", "-n", namespace, "--no-wait")
    assert undone.exit_code == 0, undone.output
    assert state(admin, namespace) == before
