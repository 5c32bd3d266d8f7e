"""Strategies: the registry, selection from Capabilities, declines, records and the retry."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from kubectl_omepvc import errors
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.capabilities import OME_KINDS, Capabilities
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.strategies import (
    ORDER,
    Declined,
    ModelInfo,
    Target,
    current_patch,
    isvc_record,
    native,
    patch_workload,
    registry,
    reworded,
    select,
    workload_ops,
)
from kubectl_omepvc.strategies import deployment as deployment_strategy
from tests.expect import raises_exactly
from tests.unit import ome_objects as ome

Obj = dict[str, Any]

NATIVE = Capabilities(native_pvc=True, mutating_policy_version="v1")
POLICY_ONLY = Capabilities(native_pvc=False, mutating_policy_version="v1beta1")
NOTHING = Capabilities(native_pvc=False, mutating_policy_version=None)
UNKNOWN = Capabilities()
RELEASED_OME = {k: True for k in OME_KINDS}
NO_OME = Capabilities(native_pvc=False, ome_resources={k: False for k in OME_KINDS})


def target(workloads: tuple[Obj, ...] = (), caps: Capabilities = POLICY_ONLY) -> Target:
    model = ModelInfo(
        kind=ModelKind.CLUSTER,
        name=ome.MODEL,
        namespace=None,
        obj={"spec": {"storage": {"storageUri": "hf://x", "path": ome.MODEL_PATH}}},
        path=ome.MODEL_PATH,
        uri="hf://x",
        label_key=ome.LABEL_KEY,
    )
    isvc = {"metadata": {"name": ome.ISVC, "namespace": ome.NAMESPACE}}
    return Target(ome.NAMESPACE, isvc, model, ome.CLAIM, {}, ome.SUB_PATH, workloads, caps)


# --- registry and selection -------------------------------------------------------------------


def test_registry_holds_one_strategy_per_name_best_first() -> None:
    strategies = registry()
    assert tuple(strategies) == ORDER == ("native", "policy", "isvc", "deployment")
    for name, strategy in strategies.items():
        assert strategy.name == name
        assert strategy.summary


@pytest.mark.parametrize(
    ("caps", "expected"),
    [
        (NATIVE, "native"),
        (POLICY_ONLY, "policy"),
        (NOTHING, "isvc"),
        (UNKNOWN, "isvc"),
        (Capabilities(native_pvc=False, ome_resources=RELEASED_OME), "isvc"),
    ],
    ids=["native-pvc-ome", "policy-api-only", "released-ome-no-policy-api", "unknown", "1.34"],
)
def test_default_is_the_best_the_cluster_offers(caps: Capabilities, expected: str) -> None:
    assert select(caps).name == expected


def test_deployment_alone_is_refused_unless_named() -> None:
    with pytest.raises(Declined) as info:
        select(NO_OME)
    assert "no durable strategy is possible" in info.value.message
    assert "native: this OME does not serve" in info.value.message
    assert "policy: the server serves no MutatingAdmissionPolicy API" in info.value.message
    assert "isvc: the server does not serve OME's" in info.value.message
    assert "--strategy deployment" in str(info.value.hint)
    assert select(NO_OME, "deployment").name == "deployment"


@pytest.mark.parametrize(
    ("caps", "requested", "reason", "hint"),
    [
        (POLICY_ONLY, "native", "does not serve pvc:// models", "use --strategy policy"),
        (NOTHING, "native", "does not serve pvc:// models", "use --strategy isvc"),
        (NOTHING, "policy", "no MutatingAdmissionPolicy API", "use --strategy isvc"),
        (NO_OME, "isvc", "does not serve OME's", "kubectl ome-pvc version"),
    ],
    ids=["native-on-released-ome", "native-on-bare", "policy-without-api", "isvc-without-ome"],
)
def test_named_strategy_the_cluster_lacks_is_declined(
    caps: Capabilities, requested: str, reason: str, hint: str
) -> None:
    with pytest.raises(Declined) as info:
        select(caps, requested)
    assert info.value.message.startswith(f"strategy {requested} is not possible here")
    assert reason in info.value.reason
    assert hint in str(info.value.hint)


def test_unknown_strategy_is_declined() -> None:
    with pytest.raises(Declined, match="unknown strategy 'sidecar'"):
        select(NATIVE, "sidecar")


@pytest.mark.parametrize(
    ("caps", "policy_hint", "native_hint"),
    [
        (POLICY_ONLY, "this server serves v1beta1", "after upgrading to an OME"),
        (NATIVE, "this server serves v1", "this OME serves pvc:// models itself"),
        (NOTHING, "once the server serves MutatingAdmissionPolicy", "after upgrading"),
    ],
    ids=["policy-served", "both-served", "none-served"],
)
def test_revert_names_the_lasting_alternatives(
    caps: Capabilities, policy_hint: str, native_hint: str
) -> None:
    error = deployment_strategy.revert_error(
        target(caps=caps), [("deployment.apps/llama-engine", 1.25)]
    )
    assert error.message.startswith("deployment.apps/llama-engine is back on its hostPath 1.2s")
    assert policy_hint in str(error.hint)
    assert native_hint in str(error.hint)


# --- records ------------------------------------------------------------------------------------


def test_isvc_record_reads_the_native_record_and_refuses_garbage() -> None:
    record = {"strategy": "native", "claim": "models"}
    isvc: Obj = {"metadata": {"name": "llama", "annotations": {jp.ANNOTATION: json.dumps(record)}}}
    assert isvc_record(isvc) == record
    assert isvc_record({"metadata": {"name": "llama"}}) is None
    isvc["metadata"]["annotations"][jp.ANNOTATION] = "{not json"
    with raises_exactly(errors.InputError, match="not a record this plugin can read"):
        isvc_record(isvc)


class FakeClient:
    """Answers `patch` from a queue of results and `get` with the current object."""

    def __init__(self, current: Obj, answers: list[Any]) -> None:
        self.current = current
        self.answers = answers
        self.sent: list[Any] = []
        self.policy: Obj | None = None

    def patch(self, ref: r.ResourceRef, name: str, patch: Any, **kw: Any) -> Obj:
        self.sent.append(patch)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        result: Obj = answer
        return result

    def get(self, ref: r.ResourceRef, name: str, namespace: str | None = None) -> Obj:
        return self.current

    def get_or_none(self, ref: r.ResourceRef, name: str, namespace: str | None = None) -> Any:
        return self.policy


def test_current_patch_reads_workload_records() -> None:
    workload = ome.deployment()
    ops = jp.workload_patch(
        workload, [jp.DEPLOYMENT_TEMPLATE], ome.MODEL, "other", ome.SUB_PATH, ome.LABEL_KEY
    )
    patched = jp.apply_patch(workload, ops)
    isvc = {"metadata": {"name": ome.ISVC, "namespace": ome.NAMESPACE}}
    client: Any = FakeClient({}, [])
    applied = current_patch(client, isvc, (ome.deployment(), patched), POLICY_ONLY)
    assert applied is not None
    assert (applied.strategy, applied.claim) == ("deployment", "other")
    assert applied.where == "deployment.apps/llama-engine"
    assert current_patch(client, isvc, (ome.deployment(),), POLICY_ONLY) is None


def _moved(workload: Obj) -> Obj:
    """The workload after someone put a volume before the model's."""
    out = ome.fresh(workload)
    out["spec"]["template"]["spec"]["volumes"].insert(0, {"name": "x", "emptyDir": {}})
    return out


def _ops_for(workload: Obj) -> list[jp.Operation]:
    return workload_ops(target((workload,)), workload, "deployment")


def test_failed_test_op_is_retried_once_on_a_fresh_read() -> None:
    workload = ome.deployment()
    fresh = _moved(workload)
    client: Any = FakeClient(fresh, [errors.Invalid("rejected"), {"ok": True}])
    notes: list[str] = []
    assert patch_workload(client, workload, _ops_for, log=notes.append) == {"ok": True}
    first, second = client.sent
    assert first[0]["path"] == "/spec/template/spec/volumes/1"
    assert second[0]["path"] == "/spec/template/spec/volumes/2"  # planned on the fresh read
    assert notes == [
        "deployment.apps/llama-engine changed while it was being written; read it again,"
        " trying once more"
    ]


def test_second_failure_says_it_was_retried() -> None:
    workload = ome.deployment()
    client: Any = FakeClient(_moved(workload), [errors.Invalid("a"), errors.Invalid("b")])
    with raises_exactly(errors.Conflict, match="re-read and retried once"):
        patch_workload(client, workload, _ops_for)


def test_a_real_rejection_is_not_retried() -> None:
    workload = ome.deployment()
    rejected = errors.Invalid("spec.template.spec.volumes[1]: Invalid value")
    client: Any = FakeClient(ome.fresh(workload), [rejected])
    with pytest.raises(errors.Invalid) as info:
        patch_workload(client, workload, _ops_for)
    assert info.value is rejected
    assert len(client.sent) == 1


def test_retry_finds_it_already_switched() -> None:
    workload = ome.deployment()
    done = jp.apply_patch(workload, _ops_for(workload))
    client: Any = FakeClient(done, [errors.Invalid("rejected")])
    out = patch_workload(client, workload, _ops_for)
    assert out["spec"] == done["spec"]
    assert len(client.sent) == 1


def test_reworded_keeps_the_kind_and_moves_the_hint() -> None:
    original = errors.Forbidden("forbidden: cannot create x", "ask an admin")
    again = reworded(original, "; nothing was changed")
    assert isinstance(again, errors.Forbidden)
    assert again.message == "forbidden: cannot create x; nothing was changed: ask an admin"


# --- helpers of the strategies ------------------------------------------------------------------


def _model(uri: str, namespace: str | None = None) -> Obj:
    meta: Obj = {"name": "m"}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta, "spec": {"storage": {"storageUri": uri}}}


CLUSTER, NAMESPACED = ModelKind.CLUSTER, ModelKind.NAMESPACED


@pytest.mark.parametrize(
    ("kind", "model", "expected"),
    [
        (CLUSTER, _model("pvc://team-a:models/meta/llama"), True),
        (CLUSTER, _model("pvc://team-a:models/meta/llama/"), True),
        (NAMESPACED, _model("pvc://models/meta/llama", namespace="team-a"), True),
        (CLUSTER, _model("pvc://models/meta/llama"), False),
        # OME (pkg/validation/basemodel.go at aab06ebe) refuses a namespace in a BaseModel's URI
        (NAMESPACED, _model("pvc://team-a:models/meta/llama", namespace="team-a"), False),
        (NAMESPACED, _model("pvc://models/meta/llama", namespace="team-b"), False),
        (CLUSTER, _model("pvc://team-b:models/meta/llama"), False),
        (CLUSTER, _model("pvc://team-a:other/meta/llama"), False),
        (CLUSTER, _model("pvc://team-a:models/meta/qwen"), False),
        (CLUSTER, _model("hf://meta/llama"), False),
        (CLUSTER, _model("pvc://bad:ns:x/y"), False),
    ],
    ids=["same", "trailing-slash", "basemodel-own-namespace", "cluster-model-no-namespace",
         "basemodel-with-namespace", "basemodel-other-namespace", "other-namespace",
         "other-claim", "other-sub-path", "not-pvc", "unparsable"],
)  # fmt: skip
def test_points_at(kind: ModelKind, model: Obj, expected: bool) -> None:
    assert native.points_at(kind, model, "team-a", "models", "meta/llama") is expected


@pytest.mark.parametrize(
    ("field", "spec"),
    [("model", {"model": {"name": "new"}}), ("baseModel", {"baseModel": "new"})],
    ids=["spec-model", "legacy-base-model"],
)
def test_switch_patch_names_the_model_and_guards_the_version(field: str, spec: Obj) -> None:
    isvc = {"metadata": {"name": "llama", "resourceVersion": "42"}}
    patch = native.switch_patch(isvc, field, "new", {"strategy": "native"})
    assert patch["spec"] == spec
    assert patch["metadata"]["resourceVersion"] == "42"
    assert json.loads(patch["metadata"]["annotations"][jp.ANNOTATION]) == {"strategy": "native"}
    removal = native.switch_patch(isvc, field, "old", None)
    assert removal["metadata"]["annotations"] == {jp.ANNOTATION: None}


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda w: w, True),
        (lambda w: jp.apply_patch(w, _ops_for(w)), False),
    ],
    ids=["hostpath", "on-claim"],
)
def test_is_reverted(make: Callable[[Obj], Obj], expected: bool) -> None:
    assert deployment_strategy.is_reverted(make(ome.deployment()), ome.MODEL) is expected


def test_version_names_each_route_and_the_default_on_released_ome_without_policy_api() -> None:
    from kubectl_omepvc.commands import version

    caps = Capabilities(native_pvc=False, ome_resources=RELEASED_OME, server_version="v1.34.2")
    routes = {r["name"]: r for r in version.routes(caps)}
    assert [n for n, r in routes.items() if r["default"]] == ["isvc"]
    assert routes["policy"]["available"] is False
    assert "MutatingAdmissionPolicy" in str(routes["policy"]["reason"])
    assert routes["native"]["available"] is False
    text = version.render_text(
        {
            "client": {"version": "0", "python": "3"},
            "server": {**caps.as_dict(), "routes": list(routes.values())},
        }
    )
    assert "Route isvc: default: the claim in the isvc's own spec" in text
    assert "Route policy: not possible: the server serves no MutatingAdmissionPolicy" in text
