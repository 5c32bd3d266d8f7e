"""Model statuses built from OME-shaped objects: per-node rows, claims, workloads, output."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from kubectl_omepvc.core import naming, selectors, status
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.status import NodeState, WorkloadMode
from kubectl_omepvc.core.storage_uri import StorageScheme
from tests import factories as f
from tests.expect import raises_exactly

CBM = "llama-3-2-1b-instruct"
CBM_KEY = naming.cluster_model_configmap_key(CBM)
CBM_LABEL = naming.cluster_model_label_key(CBM)
GIB = 2**30


def build(models: list[dict[str, Any]], **sources: Any) -> status.StatusReport:
    return status.build_statuses(models, now=f.NOW, **sources)


def one(model: dict[str, Any], **sources: Any) -> status.ModelStatus:
    report = build([model], **sources)
    assert len(report.models) == 1
    return report.models[0]


def rows_by_node(m: status.ModelStatus) -> dict[str, status.NodeRow]:
    return {r.node: r for r in m.nodes}


def three_node_cluster() -> dict[str, Any]:
    """node-a Ready, node-b Updating (4 of 16 GiB), node-c Failed; node-d selected, silent."""
    updating = f.agent_entry(CBM, "Updating", f.progress(minutes_ago=1))
    return {
        "nodes": [
            f.node("node-a", {CBM_LABEL: "Ready"}),
            f.node("node-b", {CBM_LABEL: "Updating"}),
            f.node("node-c", {CBM_LABEL: "Failed"}),
            f.node("node-d"),
        ],
        "configmaps": [
            f.agent_configmap("node-a", {CBM_KEY: f.agent_entry(CBM, "Ready")}),
            f.agent_configmap("node-b", {CBM_KEY: updating}),
            f.agent_configmap("node-c", {CBM_KEY: f.agent_entry(CBM, "Failed")}),
        ],
    }


# -- per-node state ----------------------------------------------------------------------------


def test_per_node_rows_from_labels_and_configmaps() -> None:
    m = one(f.cluster_base_model(CBM, nodes_ready=["node-a"]), **three_node_cluster())
    rows = rows_by_node(m)
    assert list(rows) == ["node-a", "node-b", "node-c", "node-d"]
    assert [rows[n].state for n in rows] == [
        NodeState.READY, NodeState.UPDATING, NodeState.FAILED, NodeState.PENDING,
    ]  # fmt: skip
    assert (m.ready, m.targeted) == (1, 4)
    assert m.failed_nodes == ("node-c",)
    assert m.updating_nodes == ("node-b",)
    assert m.progress_percent == pytest.approx(25.0)
    b = rows["node-b"]
    assert (b.label, b.config_map, b.exists, b.selected) == (
        "Updating", NodeState.UPDATING, True, True,
    )  # fmt: skip
    assert b.progress is not None and b.progress.phase == "downloading"
    assert b.progress.eta_seconds == pytest.approx(12 * GIB / (100 * 2**20))
    assert b.last_update_age_seconds == pytest.approx(60)
    assert rows["node-d"].label is None and rows["node-d"].config_map is None


def test_node_selection_limits_the_targeted_nodes() -> None:
    model = f.cluster_base_model(CBM, node_selector={"gpu": "h100"})
    m = one(model, nodes=[f.node("n1", {"gpu": "h100"}), f.node("n2", {"gpu": "a10"})])
    assert [(r.node, r.selected) for r in m.nodes] == [("n1", True)]
    assert m.targeted == 1


def test_labelled_nodes_count_even_when_no_longer_selected() -> None:
    model = f.cluster_base_model(CBM, node_selector={"gpu": "h100"})
    m = one(model, nodes=[f.node("n1", {"gpu": "h100"}), f.node("n2", {CBM_LABEL: "Ready"})])
    rows = rows_by_node(m)
    assert rows["n2"].selected is False and rows["n2"].state is NodeState.READY
    assert (m.ready, m.targeted) == (1, 2)


def test_configmap_of_a_missing_node_is_shown_but_not_counted() -> None:
    m = one(
        f.cluster_base_model(CBM),
        nodes=[f.node("node-a", {CBM_LABEL: "Ready"})],
        configmaps=[
            f.agent_configmap("node-a", {CBM_KEY: f.agent_entry(CBM)}),
            f.agent_configmap("gone", {CBM_KEY: f.agent_entry(CBM)}),
        ],
    )
    rows = rows_by_node(m)
    assert rows["gone"].exists is False and rows["gone"].state is NodeState.READY
    assert (m.ready, m.targeted) == (1, 1)


def test_without_nodes_the_configmaps_still_give_per_node_state() -> None:
    m = one(f.cluster_base_model(CBM), configmaps=three_node_cluster()["configmaps"])
    assert (m.ready, m.targeted, m.failed_nodes) == (1, 3, ("node-c",))
    assert all(r.exists is None and r.selected is None for r in m.nodes)


def test_without_nodes_and_configmaps_the_model_status_lists_are_used() -> None:
    model = f.cluster_base_model(CBM, nodes_ready=["n1", "n2"], nodes_failed=["n3"])
    m = one(model)
    assert (m.ready, m.targeted, m.failed_nodes) == (2, None, ("n3",))
    assert status.ready_cell(m) == "2/?"
    assert [(r.node, r.state) for r in m.nodes] == [
        ("n1", NodeState.READY), ("n2", NodeState.READY), ("n3", NodeState.FAILED),
    ]  # fmt: skip


def test_malformed_entry_shows_unknown_and_warns() -> None:
    report = build(
        [f.cluster_base_model(CBM)],
        nodes=[f.node("n1"), f.node("n2")],
        configmaps=[
            f.agent_configmap("n1", {CBM_KEY: "{not json"}),
            f.agent_configmap("n2", {CBM_KEY: json.dumps({"status": "Sideways"})}),
        ],
    )
    rows = rows_by_node(report.models[0])
    assert rows["n1"].state is NodeState.UNKNOWN and rows["n1"].config_map is NodeState.UNKNOWN
    assert rows["n2"].state is NodeState.UNKNOWN
    assert any("ome/n1" in w and "not valid JSON" in w for w in report.warnings)
    assert any("ome/n2" in w and "'Sideways'" in w for w in report.warnings)


def test_configmap_keys_that_are_not_model_keys_give_one_warning() -> None:
    report = build(
        [f.cluster_base_model(CBM)],
        configmaps=[
            f.agent_configmap("n1", {"junk": "{}", "artifact.huggingface.x": "{}"}),
            f.agent_configmap("n2", {"junk": "{}", "other": "{}"}),
        ],
    )
    assert len(report.warnings) == 1
    assert "2 key(s)" in report.warnings[0] and "junk, other" in report.warnings[0]
    assert "artifact" not in report.warnings[0]


def test_long_names_are_found_under_the_hashed_label() -> None:
    name = "llama-4-maverick-17b-128e-instruct-fp8"
    label = "models.ome.io/clusterbasemodel.321a5921-k-17b-128e-instruct-fp8"
    m = one(f.cluster_base_model(name), nodes=[f.node("n1", {label: "Ready"})])
    assert m.label_key == label and m.label_key_hashed
    assert (m.ready, m.targeted) == (1, 1)


def test_base_model_uses_its_namespaced_keys() -> None:
    label = naming.namespaced_model_label_key("team-a", "qwen3-8b")
    key = naming.namespaced_model_configmap_key("team-a", "qwen3-8b")
    m = one(
        f.base_model("team-a", "qwen3-8b"),
        nodes=[f.node("n1", {label: "Ready"}), f.node("n2")],
        configmaps=[f.agent_configmap("n1", {key: f.agent_entry("qwen3-8b")})],
    )
    assert (m.kind, m.namespace, m.label_key) == (ModelKind.NAMESPACED, "team-a", label)
    assert (m.ready, m.targeted) == (1, 2)


def test_identical_entries_are_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = status.parse_agent_entry

    def counting(raw: object) -> status.AgentEntry:
        calls.append(raw)
        return real(raw)

    monkeypatch.setattr(status, "parse_agent_entry", counting)
    nodes = [f.node(f"n{i}") for i in range(20)]
    cms = [f.agent_configmap(f"n{i}", {CBM_KEY: f.agent_entry(CBM)}) for i in range(20)]
    m = one(f.cluster_base_model(CBM), nodes=nodes, configmaps=cms)
    assert m.ready == 20
    assert len(calls) == 1


def test_node_selection_is_evaluated_once_per_distinct_selection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0
    real = selectors.agent_node_matches

    def counting(*args: Any) -> bool:
        nonlocal calls
        calls += 1
        return real(*args)

    monkeypatch.setattr(selectors, "agent_node_matches", counting)
    nodes = [f.node(f"n{i}", {"pool": "gpu" if i % 2 else "cpu"}) for i in range(10)]
    models = [f.cluster_base_model(f"m{i}", node_selector={"pool": "gpu"}) for i in range(50)]
    models += [f.cluster_base_model(f"x{i}") for i in range(50)]
    report = build(models, nodes=nodes)
    assert {m.targeted for m in report.models[:50]} == {5}
    assert {m.targeted for m in report.models[50:]} == {10}
    # The selector pre-filters by label index (5 gpu nodes), then one pass for the empty one.
    assert calls == 5 + 10


def test_affinity_selects_nodes_end_to_end() -> None:
    affinity = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["h100"]}]}
            ]
        }
    }
    m = one(
        f.cluster_base_model(CBM, node_affinity=affinity),
        nodes=[f.node("n1", {"gpu": "h100"}), f.node("n2", {"gpu": "a10"}), f.node("n3")],
    )
    assert [r.node for r in m.nodes] == ["n1"]


# -- conditions and claims ---------------------------------------------------------------------


def test_conditions_are_read_with_their_age() -> None:
    cond = f.condition("Ready", "False", "PVCNotBound", "claim is Pending", minutes_ago=5)
    m = one(f.cluster_base_model(CBM, uri="pvc://ns:models/llama", conditions=[cond]))
    assert m.conditions == (
        status.Condition("Ready", "False", "PVCNotBound", "claim is Pending", 300.0),
    )
    assert one(f.cluster_base_model(CBM)).conditions is None


def test_claim_details_of_a_bound_claim() -> None:
    m = one(
        f.cluster_base_model(CBM, uri="pvc://team-a:models/meta/llama", path=None),
        pvcs=[f.pvc("team-a", "models", volume_name="pv-1"), f.pvc("team-b", "models")],
        pvs=[f.pv("pv-1", nodes=["node-a"])],
    )
    claim = m.claim
    assert claim is not None and claim.uri is not None
    assert (claim.namespace, claim.uri.claim, claim.uri.sub_path) == (
        "team-a",
        "models",
        "meta/llama",
    )
    assert (claim.exists, claim.phase, claim.capacity) == (True, "Bound", "100Gi")
    assert claim.access_modes == ("ReadOnlyMany",)
    assert (claim.storage_class, claim.volume) == ("local-models", "pv-1")
    terms = claim.volume_node_affinity["required"]["nodeSelectorTerms"]  # type: ignore[index]
    assert terms[0]["matchExpressions"][0]["values"] == ["node-a"]
    assert m.nodes == () and status.ready_cell(m) == "-"


@pytest.mark.parametrize(
    ("pvcs", "exists", "phase"),
    [
        (None, None, None),
        ([], False, None),
        ([f.pvc("team-a", "models", phase="Pending")], True, "Pending"),
    ],
    ids=["not-readable", "missing", "pending"],
)
def test_claim_existence(pvcs: list[Any] | None, exists: bool | None, phase: str | None) -> None:
    m = one(f.cluster_base_model(CBM, uri="pvc://team-a:models/llama"), pvcs=pvcs)
    assert m.claim is not None
    assert (m.claim.exists, m.claim.phase, m.claim.volume) == (exists, phase, None)


def test_base_model_claim_lives_in_the_models_namespace() -> None:
    m = one(
        f.base_model("team-a", "qwen", uri="pvc://other:models/qwen"),
        pvcs=[f.pvc("team-a", "models"), f.pvc("other", "models", phase="Lost")],
    )
    assert m.claim is not None and m.claim.namespace == "team-a" and m.claim.phase == "Bound"


def test_unparseable_pvc_uri_keeps_ome_error() -> None:
    m = one(f.cluster_base_model(CBM, uri="pvc://ns:/llama"), pvcs=[])
    assert m.claim is not None and m.claim.uri is None
    assert m.claim.error is not None and "empty claim name" in m.claim.error
    assert m.claim.exists is None


def test_strict_problems_are_recorded_for_pvc_models() -> None:
    m = one(f.cluster_base_model(CBM, uri="pvc://ns:models/../x"))
    assert m.claim is not None and m.claim.uri is not None
    assert any("'..'" in p for p in m.claim.strict_problems)


# -- InferenceServices and workloads -----------------------------------------------------------

PATH = f"{f.MODELS_ROOT}/meta/{CBM}"


def serving(
    *workloads: dict[str, Any], isvc_kwargs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "inference_services": [f.inference_service("default", "llama", CBM, **(isvc_kwargs or {}))],
        "workloads": list(workloads),
    }


def services_of(m: status.ModelStatus) -> list[tuple[str, list[tuple[str, str]]]]:
    assert m.services is not None
    return [(s.name, [(w.name, w.description) for w in s.workloads or ()]) for s in m.services]


def test_workload_on_hostpath() -> None:
    deployment = f.engine_deployment("llama", CBM, PATH, ready_replicas=1)
    m = one(
        f.cluster_base_model(CBM),
        nodes=[f.node("n1", {CBM_LABEL: "Ready"})],
        **serving(deployment),
    )
    assert services_of(m) == [("llama", [("llama-engine", "hostPath")])]


def test_model_volume_index_does_not_matter() -> None:
    extra = [{"name": f"v{i}", "emptyDir": {}} for i in range(3)]
    deployment = f.engine_deployment("llama", CBM, PATH, extra_volumes=extra, extra_mounts=[])
    workload = status.classify_workload(deployment, CBM, PATH, CBM_LABEL, {"n": "Ready"}, True)
    assert workload.mode is WorkloadMode.HOST_PATH


def test_workload_patched_by_the_plugin_names_its_strategy() -> None:
    deployment = f.patched(f.engine_deployment("llama", CBM, PATH), "policy")
    m = one(f.cluster_base_model(CBM), nodes=[], **serving(deployment))
    assert services_of(m) == [
        ("llama", [("llama-engine", "pvc (patched by kubectl-ome-pvc: policy)")])
    ]
    assert m.services is not None and m.services[0].workloads is not None
    assert m.services[0].workloads[0].strategy == "policy"


@pytest.mark.parametrize(
    ("annotation", "strategy"),
    [('{"strategy": "deployment"}', "deployment"), ("{broken", "unknown"), ('{"x": 1}', "unknown")],
    ids=["ok", "malformed", "no-strategy"],
)
def test_patch_strategy(annotation: str, strategy: str) -> None:
    assert status.patch_strategy(annotation) == strategy


def test_workload_pending_on_the_model_node_selector() -> None:
    deployment = f.engine_deployment("llama", CBM, PATH, ready_replicas=0)
    m = one(
        f.cluster_base_model(CBM),
        nodes=[f.node("n1", {CBM_LABEL: "Updating"})],
        **serving(deployment),
    )
    assert services_of(m) == [("llama", [("llama-engine", "Pending (model nodeSelector)")])]


def test_running_workload_is_not_pending_even_if_the_label_went_away() -> None:
    deployment = f.engine_deployment("llama", CBM, PATH, ready_replicas=1)
    m = one(f.cluster_base_model(CBM), nodes=[f.node("n1")], **serving(deployment))
    assert services_of(m) == [("llama", [("llama-engine", "hostPath")])]


def test_pending_is_not_claimed_when_nodes_are_not_readable() -> None:
    deployment = f.engine_deployment("llama", CBM, PATH)
    m = one(f.cluster_base_model(CBM), **serving(deployment))
    assert services_of(m) == [("llama", [("llama-engine", "hostPath")])]


def test_leader_worker_set_and_native_pvc_workloads() -> None:
    lws = f.leader_worker_set("llama", CBM, PATH)
    native = f.engine_deployment("llama", CBM, PATH)
    native["metadata"]["name"] = "llama-decoder"
    native["spec"]["template"]["spec"]["volumes"][-1] = {
        "name": CBM,
        "persistentVolumeClaim": {"claimName": "models", "readOnly": True},
    }
    del native["kind"]  # LIST items of built-in kinds carry no kind
    m = one(
        f.cluster_base_model(CBM),
        nodes=[f.node("n1", {CBM_LABEL: "Ready"})],
        **serving(lws, native),
    )
    assert services_of(m) == [
        ("llama", [("lws-llama-engine", "hostPath"), ("llama-decoder", "pvc (OME native)")])
    ]
    assert m.services is not None and m.services[0].workloads is not None
    assert [w.kind for w in m.services[0].workloads] == ["LeaderWorkerSet", "Deployment"]


def test_isvcs_refer_by_kind_and_legacy_field() -> None:
    models = [f.cluster_base_model("shared"), f.base_model("team-a", "shared")]
    isvcs = [
        f.inference_service("team-a", "by-default-kind", "shared"),
        f.inference_service("team-a", "by-base-kind", "shared", kind=ModelKind.NAMESPACED),
        f.inference_service("team-a", "legacy-in-ns", "shared", legacy=True),
        f.inference_service("team-b", "legacy-elsewhere", "shared", legacy=True),
        f.inference_service("team-b", "other-model", "nope"),
    ]
    cluster, namespaced = build(models, inference_services=isvcs).models
    assert [s.name for s in cluster.services or ()] == ["by-default-kind", "legacy-elsewhere"]
    assert [s.name for s in namespaced.services or ()] == ["by-base-kind", "legacy-in-ns"]
    assert all(s.workloads is None for s in cluster.services or ())


def test_unreadable_isvcs_leave_services_unknown() -> None:
    assert one(f.cluster_base_model(CBM)).services is None
    assert one(f.cluster_base_model(CBM), inference_services=[]).services == ()


# -- serialisation and table rows --------------------------------------------------------------


def test_as_dict_is_json_with_camel_case_keys() -> None:
    report = build([f.cluster_base_model(CBM, nodes_ready=["node-a"])], **three_node_cluster())
    data = report.as_dict()
    assert (data["apiVersion"], data["kind"]) == ("ome-pvc.io/v1alpha1", "ModelStatusList")
    item = json.loads(json.dumps(data))["items"][0]
    assert set(item) == {
        "kind", "namespace", "name", "state", "disabled", "ageSeconds", "storage", "labelKey",
        "labelKeyHashed", "ready", "targeted", "failedNodes", "updatingNodes",
        "progressPercent", "reported", "nodes", "conditions", "claim", "inferenceServices",
        "diagnoses",
    }  # fmt: skip
    assert item["storage"]["scheme"] == "hf" and item["ageSeconds"] == 3600
    assert (item["ready"], item["targeted"], item["progressPercent"]) == (1, 4, 25.0)
    node_b = next(n for n in item["nodes"] if n["node"] == "node-b")
    assert node_b["bytes"] == {"completed": 4 * GIB, "total": 16 * GIB}
    assert node_b["files"] == {"completed": 5, "total": 20}
    assert (node_b["etaSeconds"], node_b["lastUpdateAgeSeconds"]) == (122, 60)
    assert {d["code"] for d in item["diagnoses"]} >= {"nodes-failed"}
    assert item["diagnoses"][0]["severity"] == "error"


def test_overview_rows() -> None:
    report = build(
        [
            f.cluster_base_model(CBM, nodes_ready=["node-a"]),
            f.base_model("team-a", "qwen", uri="pvc://models/qwen", path=None),
        ],
        **three_node_cluster(),
    )
    cbm, bm = report.models
    assert status.overview_row(cbm) == [
        CBM, "-", f"hf://meta-llama/{CBM}", "In_Transit", "1/4", "1", "1 (25%)", "60m",
    ]  # fmt: skip
    wide = status.overview_row(cbm, wide=True)
    assert wide[-2:] == [PATH, "nodes-failed"]
    assert len(wide) == len(status.overview_headers(True))
    assert status.overview_row(bm, wide=True) == [
        "qwen", "team-a", "pvc://models/qwen", "In_Transit", "-", "0", "0", "60m", "-",
        "pvc-not-supported",
    ]  # fmt: skip


def test_rows_can_be_dropped_after_counting() -> None:
    model = f.cluster_base_model(CBM, nodes_ready=["node-a"])
    kept = build([model], **three_node_cluster()).models[0]
    lean = build([model], keep_node_rows=False, **three_node_cluster()).models[0]
    assert lean.nodes == () and len(kept.nodes) == 4
    assert status.overview_row(lean, wide=True) == status.overview_row(kept, wide=True)
    assert lean.diagnoses == kept.diagnoses


def test_storage_column_is_shortened() -> None:
    uri = "oci://n/tenancy/b/a-very-long-bucket-name-for-models/o/meta/" + CBM
    row = status.overview_row(one(f.cluster_base_model(CBM, uri=uri)))
    assert len(row[2]) == status.STORAGE_COLUMN_WIDTH
    assert row[2].startswith("oci://...") and row[2].endswith(CBM)
    assert status.overview_row(one(f.cluster_base_model(CBM, uri=uri)), wide=True)[2] == uri


def test_footer_notes() -> None:
    report = build(
        [
            f.cluster_base_model("done", state="Ready"),
            f.cluster_base_model(CBM, nodes_ready=["node-a"]),
            f.cluster_base_model("fresh", state=None),
        ],
        configmaps=[],
    )
    done, failing, fresh = report.models
    assert status.footer_note(done) is None
    assert status.footer_note(fresh) == "fresh: state not reported yet"
    m = one(f.cluster_base_model(CBM), **three_node_cluster())
    assert status.footer_note(m) == f"{CBM}: the download failed on 1 node(s): node-c"
    assert failing.state == "In_Transit"


def test_resource_name() -> None:
    assert status.resource_name(one(f.base_model("ns", "m"))) == "basemodel.ome.io/m"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2026-07-01T11:59:00Z", 60.0),
        ("2026-07-01T11:59:00.123456789Z", 59.876544),
        ("2026-07-01T13:59:00+02:00", 60.0),
        ("not a time", None),
        (None, None),
    ],
    ids=["z", "nanoseconds", "offset", "garbage", "none"],
)
def test_parse_time(value: str | None, seconds: float | None) -> None:
    parsed = status.parse_time(value)
    if seconds is None:
        assert parsed is None
    else:
        assert parsed is not None
        assert (f.NOW - parsed).total_seconds() == pytest.approx(seconds)


def test_scheme_is_recorded() -> None:
    assert one(f.cluster_base_model(CBM, uri="s3://b/x")).scheme is StorageScheme.S3


# -- status --watch: changed overview rows -------------------------------------------------------


# -- watch -------------------------------------------------------------------------------------


def test_changed_rows_ignore_age_and_mark_deletions() -> None:
    def row(name: str, state: str, age: str = "5m") -> list[str]:
        return [name, "-", "hf://x", state, "0/1", "0", "0", age]

    before = {(0, "", "a"): row("a", "In_Transit"), (0, "", "b"): row("b", "Ready"),
              (0, "", "c"): row("c", "Ready")}  # fmt: skip
    after = {(0, "", "a"): row("a", "Ready", "6m"), (0, "", "b"): row("b", "Ready", "6m"),
             (0, "", "d"): row("d", "In_Transit")}  # fmt: skip
    changed = status.changed_rows(before, after)
    assert [(r[0], r[3]) for r in changed] == [
        ("a", "Ready"), ("d", "In_Transit"), ("c", status.DELETED),
    ]  # fmt: skip


def test_row_key_orders_cluster_models_first() -> None:
    models = build([f.base_model("a", "m"), f.cluster_base_model("z")]).models
    assert sorted(status.row_key(m) for m in models) == [(0, "", "z"), (1, "a", "m")]


# -- building one model at a time (the overview builds while pages arrive) ---------------------


def mixed_world() -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Models of every kind of dependency, the sources known up front, and the late ones."""
    path = f"{f.MODELS_ROOT}/meta/{CBM}"
    bad = naming.cluster_model_configmap_key("broken")
    models = [
        f.cluster_base_model("broken"),  # a malformed entry: a warning, in input order
        f.cluster_base_model(CBM),  # used by an InferenceService: needs the workloads
        f.cluster_base_model("claimed", uri="pvc://team-a:models/llama", path=None),
        f.base_model("team-a", "shared"),  # the legacy reference below means this one
        f.cluster_base_model("shared", state="Ready"),
        f.cluster_base_model("outside", path="/opt/models/x"),  # reads the agent's root
    ]
    early = {
        "nodes": [f.node("node-a"), f.node("node-b")],
        "configmaps": [
            f.agent_configmap("node-a", {bad: "{not json", "not-a-model-key": "x"}),
            f.agent_configmap("node-b", {CBM_KEY: f.agent_entry(CBM, "Failed")}),
        ],
        "inference_services": [
            f.inference_service("default", "llama", CBM),
            f.inference_service("team-a", "legacy", "shared", legacy=True),
        ],
        "agent_daemonset": f.agent_daemonset(),
    }
    late = {
        "workloads": [f.engine_deployment("llama", CBM, path)],
        "pvcs": [f.pvc("team-a", "models", volume_name="pv-1")],
        "pvs": [f.pv("pv-1")],
        "native_pvc": True,
    }
    return models, early, late


@pytest.mark.parametrize(
    "unreadable", [(), ("nodes",), ("configmaps",), ("nodes", "configmaps", "inference_services")],
    ids=["all-readable", "no-nodes", "no-configmaps", "only-models"],
)  # fmt: skip
def test_builder_with_late_sources_equals_building_with_all_up_front(
    unreadable: tuple[str, ...],
) -> None:
    models, early, late = mixed_world()
    early.update(dict.fromkeys(unreadable))
    up_front = build(models, **early, **late)
    builder = status.StatusBuilder(
        **early, base_models=status.base_model_keys(models), now=f.NOW, late=True
    )
    for model in models:
        builder.add(model)
    with raises_exactly(ValueError, match="complete"):
        builder.report()
    builder.complete(**late)
    streamed = builder.report()
    assert streamed.as_dict() == up_front.as_dict()
    codes = {m.name: [d.code for d in m.diagnoses] for m in streamed.models}
    assert "path-outside-agent-root" in codes["outside"]
    if unreadable:
        return
    # not vacuous: the late sources show, and the warnings keep input order
    by_key = {(m.kind, m.name): m for m in streamed.models}
    used = by_key[ModelKind.CLUSTER, CBM]
    assert used.services and used.services[0].workloads
    claimed = by_key[ModelKind.CLUSTER, "claimed"].claim
    assert claimed and claimed.exists is True
    assert [s.name for s in by_key[ModelKind.NAMESPACED, "shared"].services or ()] == ["legacy"]
    assert by_key[ModelKind.CLUSTER, "shared"].services == ()
    assert "configmap-orphaned" not in codes[CBM] and "nodes-failed" in codes[CBM]
    assert "ome/node-a" in streamed.warnings[0]
    assert "not-a-model-key" in streamed.warnings[-1]


def test_builder_holds_only_the_models_that_read_late_sources() -> None:
    models, early, _ = mixed_world()
    builder = status.StatusBuilder(
        **early, base_models=status.base_model_keys(models), now=f.NOW, late=True
    )
    for model in models:
        builder.add(model)
    held = [m["metadata"]["name"] for _, m in builder._held]
    # used, pvc://, the BaseModel a legacy reference means; not the unused "shared" CBM
    assert held == [CBM, "claimed", "shared"]


def test_given_base_models_the_models_are_read_once_lazily() -> None:
    models, early, late = mixed_world()
    read: list[str] = []

    def once() -> Any:
        for model in models:
            read.append(model["metadata"]["name"])
            yield model

    lazy = status.build_statuses(
        once(), base_models=status.base_model_keys(models), now=f.NOW, **early, **late
    )
    assert len(read) == len(models)
    assert lazy.as_dict() == build(models, **early, **late).as_dict()


def test_without_base_models_a_legacy_reference_means_the_cluster_model() -> None:
    models, early, _ = mixed_world()
    report = status.build_statuses(models, base_models=set(), now=f.NOW, **early)
    by_key = {(m.kind, m.name): m for m in report.models}
    assert [s.name for s in by_key[ModelKind.CLUSTER, "shared"].services or ()] == ["legacy"]


def test_policy_mark_on_the_pod_template_outlives_the_workload_record() -> None:
    """After OME's next Update the workload's record is gone; the policy's mark is not."""
    deployment = f.patched(f.engine_deployment("llama", CBM, PATH), "policy")
    deployment["metadata"]["annotations"] = {"ome.io/deploymentMode": "RawDeployment"}
    deployment["spec"]["template"].setdefault("metadata", {})["annotations"] = {
        "ome-pvc.io/strategy": "policy"
    }
    workload = status.classify_workload(deployment, CBM, PATH, CBM_LABEL, {}, True)
    assert (workload.mode, workload.strategy) == (WorkloadMode.PATCHED, "policy")
    unmarked = f.patched(f.engine_deployment("llama", CBM, PATH), "policy")
    unmarked["metadata"]["annotations"] = {}
    native = status.classify_workload(unmarked, CBM, PATH, CBM_LABEL, {}, True)
    assert native.mode is WorkloadMode.NATIVE_PVC
