"""core.isvc_route: the copy model, where the isvc mounts the claim, the exact undo, the nodes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubectl_omepvc.core import isvc_route as core
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.served_model import ModelInfo
from kubectl_omepvc.errors import InputError
from tests import factories
from tests.unit import ome_objects as ome

Obj = dict[str, Any]
COPY = f"{ome.MODEL}-pvc"


def model(kind: ModelKind = ModelKind.CLUSTER, field: str = "model") -> ModelInfo:
    namespace = ome.NAMESPACE if kind is ModelKind.NAMESPACED else None
    obj = {
        "metadata": {"name": ome.MODEL, **({"namespace": namespace} if namespace else {})},
        "spec": {
            "vendor": "meta",
            "modelFormat": {"name": "safetensors"},
            "storage": {"storageUri": "hf://meta/llama", "path": ome.MODEL_PATH},
        },
    }
    return ModelInfo(
        kind, ome.MODEL, namespace, obj, ome.MODEL_PATH, "hf://meta/llama", ome.LABEL_KEY, field
    )


def isvc(**engine: Any) -> Obj:
    out = factories.inference_service(ome.NAMESPACE, ome.ISVC, ome.MODEL)
    out["metadata"]["resourceVersion"] = "41"
    out["metadata"]["annotations"] = {"team": "a"}
    out["spec"]["engine"].update(engine)
    return out


def sites_for(obj: Obj, *workloads: Obj, runtime: Obj | None = None) -> list[core.Site]:
    return core.plan_sites(obj, list(workloads), ome.MODEL, ome.MODEL_PATH, runtime)


def switch(obj: Obj, *workloads: Obj, runtime: Obj | None = None, **kw: Any) -> Obj:
    sites = sites_for(obj, *workloads, runtime=runtime)
    info = kw.pop("info", model())
    return core.switched(obj, info, sites, COPY, True, ome.CLAIM, ome.SUB_PATH, kw or {})


def record_of(obj: Obj) -> Obj:
    return dict(json.loads(obj["metadata"]["annotations"][jp.ANNOTATION]))


# --- the copy model ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "uri"),
    [
        (ModelKind.CLUSTER, f"pvc://{ome.NAMESPACE}:{ome.CLAIM}/{ome.SUB_PATH}"),
        (ModelKind.NAMESPACED, f"pvc://{ome.CLAIM}/{ome.SUB_PATH}"),
    ],
)
def test_copy_uri_takes_the_form_omes_main_demands_of_each_kind(kind: ModelKind, uri: str) -> None:
    copy = core.copy_model(model(kind), COPY, ome.NAMESPACE, ome.CLAIM, ome.SUB_PATH)
    assert copy["spec"]["storage"] == {"storageUri": uri}  # no path: OME adds no volume
    assert copy["spec"]["vendor"] == "meta"
    assert copy["kind"] == kind.value


def test_copy_needs_a_sub_path() -> None:
    with pytest.raises(InputError, match="sub-path is empty"):
        core.copy_model(model(), COPY, ome.NAMESPACE, ome.CLAIM, "")


# --- where the isvc mounts the model -------------------------------------------------------


def test_a_raw_deployment_is_switched_in_spec_engine_and_the_router_is_left_alone() -> None:
    sites = sites_for(isvc(), ome.deployment(), ome.deployment("router"))
    assert sites == [core.Site("engine", None, "ome-container", True)]


def test_engine_and_decoder_are_both_switched() -> None:
    obj = isvc()
    obj["spec"]["decoder"] = {"minReplicas": 1}
    sites = sites_for(obj, ome.deployment(), ome.deployment("decoder"))
    assert [s.field for s in sites] == ["spec.engine", "spec.decoder"]


def test_leader_and_worker_of_a_multi_node_isvc_are_both_switched() -> None:
    obj = isvc(leader={"runner": {"name": "ome-container"}}, worker={"size": 1})
    sites = sites_for(obj, ome.leader_worker_set())
    assert [s.field for s in sites] == ["spec.engine.leader", "spec.engine.worker"]


def test_roles_only_the_runtime_defines_are_added_to_the_isvc() -> None:
    runtime = {"engineConfig": {"leader": {}, "worker": {"size": 1}}}
    obj = isvc()
    after = switch(obj, ome.leader_worker_set(), runtime=runtime)
    engine = after["spec"]["engine"]
    for role in ("leader", "worker"):
        assert engine[role]["volumes"] == [core.claim_volume(ome.CLAIM)]
        assert engine[role]["runner"]["name"] == "ome-container"
        assert engine[role]["runner"]["volumeMounts"] == [
            {
                "name": core.VOLUME,
                "mountPath": ome.MODEL_PATH,
                "readOnly": True,
                "subPath": ome.SUB_PATH,
            }
        ]
    assert "volumes" not in engine  # a leader from the runtime: the top level is not used
    assert core.restored(after, record_of(after)) == obj


def test_a_leader_nobody_defines_is_built_from_the_component_itself() -> None:
    runtime = {"engineConfig": {"worker": {"size": 1}}}
    sites = sites_for(isvc(), ome.leader_worker_set(), runtime=runtime)
    assert [s.field for s in sites] == ["spec.engine", "spec.engine.worker"]


def test_a_role_that_cannot_be_placed_is_refused() -> None:
    with pytest.raises(InputError, match="cannot tell where OME takes the leader pods"):
        sites_for(isvc(), ome.leader_worker_set())


def test_model_path_env_is_left_to_whoever_set_another_value() -> None:
    own = isvc(runner={"name": "ome-container", "env": [{"name": "MODEL_PATH", "value": "/x"}]})
    assert not sites_for(own, ome.deployment())[0].set_env
    runtime_set = ome.deployment()
    runtime_set["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "MODEL_PATH", "value": "/opt/model"}
    ]
    assert not sites_for(isvc(), runtime_set)[0].set_env


def test_a_taken_volume_name_or_mount_path_is_refused() -> None:
    taken = isvc(volumes=[{"name": core.VOLUME, "emptyDir": {}}])
    with pytest.raises(InputError, match=f"already has a volume named {core.VOLUME}"):
        sites_for(taken, ome.deployment())
    mounted = isvc(runner={"volumeMounts": [{"name": "x", "mountPath": ome.MODEL_PATH}]})
    with pytest.raises(InputError, match="already mounts something at"):
        sites_for(mounted, ome.deployment())


# --- the switch and its exact undo -----------------------------------------------------------


def test_the_switched_isvc_names_the_copy_and_mounts_the_claim_where_the_engine_read() -> None:
    after = switch(isvc(), ome.deployment())
    engine = after["spec"]["engine"]
    assert after["spec"]["model"] == {"name": COPY}
    assert engine["volumes"] == [core.claim_volume(ome.CLAIM)]
    assert engine["runner"] == {
        "name": "ome-container",
        "volumeMounts": [core.claim_mount(ome.MODEL_PATH, ome.SUB_PATH)],
        "env": [{"name": "MODEL_PATH", "value": ome.MODEL_PATH}],
    }
    rec = record_of(after)
    assert rec["strategy"] == "isvc"
    assert rec["originalModel"] == {"kind": "ClusterBaseModel", "name": ome.MODEL}
    assert rec["labels"]["key"] == f"models.ome.io/clusterbasemodel.{COPY}"


@pytest.mark.parametrize(
    "shape",
    [
        {},
        {"runner": {"name": "ome-container", "args": ["--tp", "2"]}},
        {"runner": {"env": [{"name": "HF_HOME", "value": "/tmp"}]}},  # no name: one is set
        {"volumes": [{"name": "dshm", "emptyDir": {}}], "runner": {"volumeMounts": []}},
    ],
    ids=["bare", "named-runner", "unnamed-runner-with-env", "own-volumes"],
)
def test_restore_gives_the_isvc_back_byte_for_byte(shape: Obj) -> None:
    before = isvc(**json.loads(json.dumps(shape)))
    after = switch(before, ome.deployment())
    assert after != before
    assert json.dumps(core.restored(after, record_of(after))) == json.dumps(before)


def test_restore_without_annotations_before_leaves_none() -> None:
    before = isvc()
    del before["metadata"]["annotations"]
    after = switch(before, ome.deployment())
    assert core.restored(after, record_of(after)) == before


def test_legacy_base_model_field_is_switched_and_restored() -> None:
    before = factories.inference_service(ome.NAMESPACE, ome.ISVC, ome.MODEL, legacy=True)
    after = switch(before, ome.deployment(), info=model(field="baseModel"))
    assert after["spec"]["baseModel"] == COPY
    assert core.restored(after, record_of(after)) == before


def test_restore_keeps_what_changed_in_the_isvc_meanwhile() -> None:
    before = isvc()
    after = switch(before, ome.deployment())
    after["spec"]["engine"]["maxReplicas"] = 3
    after["metadata"]["annotations"]["new"] = "yes"
    after["spec"]["runtime"] = {"name": "srt-other"}
    after["spec"]["engine"]["runner"]["args"] = ["--debug"]
    back = core.restored(after, record_of(after))
    assert back["spec"]["engine"]["maxReplicas"] == 3
    assert back["spec"]["engine"]["runner"] == {"args": ["--debug"]}
    assert back["spec"]["runtime"] == {"name": "srt-other"}
    assert back["metadata"]["annotations"] == {"team": "a", "new": "yes"}
    assert back["spec"]["model"] == {"name": ome.MODEL}


def test_as_native_drops_the_mount_and_keeps_the_copy() -> None:
    before = isvc()
    after = switch(before, ome.deployment())
    native = core.as_native(after, record_of(after), 1)
    assert native["spec"]["model"] == {"name": COPY}
    assert native["spec"]["engine"] == before["spec"]["engine"]
    rec = record_of(native)
    assert rec["strategy"] == "native"
    assert rec["originalModel"]["name"] == ome.MODEL
    assert "edits" not in rec


def test_for_gitops_drops_what_the_server_owns() -> None:
    obj = isvc()
    obj["metadata"].update(uid="u", finalizers=["inferenceservice.finalizers"], generation=2)
    obj["status"] = {"ready": True}
    clean = core.for_gitops(obj)
    assert set(clean["metadata"]) == {"name", "namespace", "annotations"}
    assert "status" not in clean


def test_a_workload_carrying_the_isvcs_record_has_no_record_of_its_own() -> None:
    # OME copies the isvc's annotations onto the workloads it renders.
    after = switch(isvc(), ome.deployment())
    workload = ome.deployment()
    workload["metadata"]["annotations"][jp.ANNOTATION] = after["metadata"]["annotations"][
        jp.ANNOTATION
    ]
    assert jp.read_record(workload) is None


# --- which nodes carry the label -------------------------------------------------------------


def nodes(*specs: tuple[str, dict[str, str]]) -> list[Obj]:
    return [factories.node(name, labels) for name, labels in specs]


NODES = nodes(("node-a", {"gpu": "a100"}), ("node-b", {"gpu": "a100"}), ("node-c", {"gpu": "h100"}))
CLAIM = factories.pvc(ome.NAMESPACE, ome.CLAIM)


def test_a_local_volume_labels_exactly_the_nodes_it_is_pinned_to() -> None:
    reach = core.reaching_nodes(NODES, factories.pv("pv", nodes=("node-a", "node-c")), CLAIM, {})
    assert reach.nodes == ("node-a", "node-c")
    assert "pinned to" in reach.how


def test_a_shared_volume_labels_the_nodes_the_pods_may_run_on() -> None:
    shared = factories.pv("pv")
    del shared["spec"]["nodeAffinity"]
    reach = core.reaching_nodes(
        NODES, shared, CLAIM, {"deployment/x/spec/template": {"gpu": "a100"}}
    )
    assert reach.nodes == ("node-a", "node-b")


def test_an_unbound_claim_labels_nothing_and_says_why() -> None:
    pending = factories.pvc(ome.NAMESPACE, ome.CLAIM, phase="Pending")
    reach = core.reaching_nodes(NODES, None, pending, {})
    assert reach.nodes == ()
    assert reach.unknown and "not bound yet" in reach.unknown


def test_named_nodes_must_reach_the_volume() -> None:
    pv = factories.pv("pv", nodes=("node-a",))
    assert core.reaching_nodes(NODES, pv, CLAIM, {}, named=["node-a"]).nodes == ("node-a",)
    with pytest.raises(InputError, match="node node-b cannot reach claim"):
        core.reaching_nodes(NODES, pv, CLAIM, {}, named=["node-b"])
    with pytest.raises(InputError, match="node node-z not found"):
        core.reaching_nodes(NODES, pv, CLAIM, {}, named=["node-z"])


def test_a_node_selector_picks_the_nodes_to_label() -> None:
    shared = factories.pv("pv")
    del shared["spec"]["nodeAffinity"]
    selector = core.parse_node_selector("gpu=h100")
    assert core.reaching_nodes(NODES, shared, CLAIM, {}, selector=selector).nodes == ("node-c",)
    with pytest.raises(InputError, match="matches no node"):
        core.reaching_nodes(NODES, shared, CLAIM, {}, selector={"gpu": "tpu"})
    with pytest.raises(InputError, match="not a list of key=value"):
        core.parse_node_selector("gpu")


def test_only_nodes_without_the_ready_label_are_labelled() -> None:
    key = "models.ome.io/clusterbasemodel.x"
    have = nodes(("node-a", {key: "Ready"}), ("node-b", {key: "Failed"}), ("node-c", {}))
    assert core.labels_to_set(have, ["node-a", "node-b", "node-c"], key) == {
        "node-b": "Failed",
        "node-c": None,
    }


# --- the isvc's PUT, against OME's own status and finalizer writes -----------------------------


class PutClient:
    """`replace` answers from a queue (an exception is raised); `get` returns `fresh`."""

    def __init__(self, fresh: Obj, answers: list[Any]) -> None:
        self.fresh, self.answers, self.sent = fresh, answers, []  # type: ignore[var-annotated]

    def replace(self, ref: Any, obj: Obj, namespace: str, dry_run: bool = False) -> Obj:
        self.sent.append(obj)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    def get(self, ref: Any, name: str, namespace: str | None = None) -> Obj:
        return self.fresh


def test_a_put_refused_for_omes_own_writes_is_sent_once_more_on_the_fresh_version() -> None:
    from kubectl_omepvc.errors import Conflict
    from kubectl_omepvc.strategies.isvc import put_isvc

    read = isvc()
    after = switch(read, ome.deployment())
    fresh = json.loads(json.dumps(read))
    fresh["metadata"].update(resourceVersion="42", finalizers=["inferenceservice.finalizers"])
    fresh["status"] = {"ready": False}
    client: Any = PutClient(fresh, [Conflict("conflict"), {"ok": True}])
    assert put_isvc(client, ome.NAMESPACE, after, read) == {"ok": True}
    retried = client.sent[1]["metadata"]
    assert (retried["resourceVersion"], retried["finalizers"]) == (
        "42",
        ["inferenceservice.finalizers"],
    )

    fresh["spec"]["engine"]["maxReplicas"] = 9  # a user's change: the plan is stale
    client = PutClient(fresh, [Conflict("conflict")])
    with pytest.raises(Conflict, match="changed while it was being written"):
        put_isvc(client, ome.NAMESPACE, after, read)


def test_restore_drops_a_created_runner_that_omes_defaulting_filled_with_empties() -> None:
    """OME's isvc webhook adds `resources: {}` to the runner the switch created; the restored
    isvc has no runner, as before (else the webhook turns it into `{name: "", resources: {}}`)."""
    before = isvc()
    after = switch(before, ome.deployment())
    after["spec"]["engine"]["runner"]["resources"] = {}
    assert json.dumps(core.restored(after, record_of(after))) == json.dumps(before)
