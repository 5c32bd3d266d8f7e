"""Each diagnosis rule on OME-shaped objects: when it fires, what it says, what to run next."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_omepvc.core import agent, diagnoses, naming, rollout, status
from kubectl_omepvc.core.diagnoses import Diagnosis, RuleContext, Severity
from tests import factories as f

CBM = "llama-3-2-1b-instruct"
LABEL = naming.cluster_model_label_key(CBM)
KEY = naming.cluster_model_configmap_key(CBM)
RELEASED = RuleContext(native_pvc=False)
NATIVE = RuleContext(native_pvc=True)


def one(model: dict[str, Any], **sources: Any) -> status.ModelStatus:
    (m,) = status.build_statuses([model], now=f.NOW, **sources).models
    return m


def codes(m: status.ModelStatus) -> list[str]:
    return [d.code for d in m.diagnoses]


def only(found: list[Diagnosis]) -> Diagnosis:
    assert len(found) == 1, found
    return found[0]


# -- pvc:// ------------------------------------------------------------------------------------


def test_pvc_model_on_released_ome_gives_the_way_out_not_patch_alone() -> None:
    m = one(
        f.cluster_base_model(CBM, uri="pvc://team-a:models/llama"),
        inference_services=[f.inference_service("team-a", "llama", CBM)],
    )
    d = only(diagnoses.pvc_on_released_ome(m, RELEASED))
    assert (d.code, d.severity) == ("pvc-not-supported", Severity.ERROR)
    assert "In_Transit forever" in d.message and "OEP-0004" in d.message
    assert "point it at a model with a storage.path (a hostPath model)" in d.message
    assert "`kubectl ome-pvc patch llama -n team-a --claim models`" in d.message
    assert d.next == "kubectl edit inferenceservice llama -n team-a"
    assert diagnoses.pvc_on_released_ome(m, NATIVE) == []


def test_pvc_model_on_released_ome_unused_is_to_be_deleted() -> None:
    m = one(f.base_model("team-a", "qwen", uri="pvc://models/qwen"), inference_services=[])
    d = only(diagnoses.pvc_on_released_ome(m, RELEASED))
    assert d.next == "kubectl delete basemodel qwen -n team-a"
    assert "kubectl ome-pvc patch ISVC --claim models" in d.message


def test_not_fired_for_other_schemes() -> None:
    assert diagnoses.pvc_on_released_ome(one(f.cluster_base_model(CBM)), RELEASED) == []


# OME main's reasons, pkg/controller/v1beta1/basemodel/backends/pvc/pvc.go at 5ed809d2
VERIFY = "kubectl ome-pvc verify models -n team-a --sub-path meta/llama"


@pytest.mark.parametrize(
    ("reason", "code", "severity", "next_", "words"),
    [
        ("PVCNotFound", "pvc-not-found", Severity.ERROR, "kubectl get pvc -n team-a",
         "claim team-a/models does not exist"),
        ("PVCNotBound", "pvc-not-bound", Severity.WARNING,
         "kubectl describe pvc models -n team-a", "not Bound"),
        ("PVCMetadataPending", "pvc-metadata-pending", Severity.INFO,
         f"kubectl ome-pvc status {CBM} --watch", "has not started"),
        ("PVCMetadataExtracting", "pvc-metadata-extracting", Severity.INFO,
         f"kubectl get jobs,pods -n team-a -l models.ome/model-name={CBM}",
         "In_Transit for a while then: that is normal"),
        ("PVCMetadataExtractionFailed", "pvc-extraction-failed", Severity.ERROR, VERIFY,
         "config.json under meta/llama"),
        ("PVCConfigMissing", "pvc-config-missing", Severity.ERROR,
         "kubectl get configmap inferenceservice-config -n ome -o yaml",
         "not a missing config.json"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("PVC") else None,
)  # fmt: skip
def test_each_pvc_condition_reason_is_explained(
    reason: str, code: str, severity: Severity, next_: str, words: str
) -> None:
    cond = f.condition("Ready", "False", reason, "from OME")
    m = one(f.cluster_base_model(CBM, uri="pvc://team-a:models/meta/llama", conditions=[cond]))
    d = only(diagnoses.condition_reasons(m, NATIVE))
    assert (d.code, d.severity, d.next) == (code, severity, next_)
    assert words in d.message and d.message.endswith("(OME: from OME)")


def test_extraction_failure_shows_the_agents_message_and_points_at_verify() -> None:
    said = "open /model/config.json: no such file or directory"
    conds = [
        f.condition("SourceReachable", "True", "PVCValidated", "PVC is reachable"),
        f.condition("Ready", "False", "PVCMetadataExtractionFailed", said),
    ]
    m = one(
        f.base_model("team-a", "qwen", uri="pvc://models/qwen/8b", conditions=conds),
        native_pvc=True,
    )
    (d,) = [d for d in m.diagnoses if d.severity is Severity.ERROR]
    assert d.code == "pvc-extraction-failed" and said in d.message
    assert d.next == "kubectl ome-pvc verify models -n team-a --sub-path qwen/8b"


@pytest.mark.parametrize(
    ("model", "words"),
    [
        (f.cluster_base_model(CBM, uri="pvc://models/x"),
         "must name the claim's namespace: pvc://<namespace>:models/x"),
        (f.base_model("team-a", "qwen", uri="pvc://team-a:models/x"),
         "must not name a namespace (OME uses the model's own): pvc://models/x"),
        (f.cluster_base_model(CBM, uri="pvc://team-a:models/x"),
         "a ClusterBaseModel needs pvc://<namespace>:<claim>/<sub-path>"),
        (f.base_model("team-a", "qwen", uri="pvc://models/x"),
         "a BaseModel needs pvc://<claim>/<sub-path> (no namespace)"),
    ],
    ids=["cluster-without-namespace", "basemodel-with-namespace", "cluster-other",
         "basemodel-other"],
)  # fmt: skip
def test_pvc_invalid_advice_depends_on_the_model_kind(model: Any, words: str) -> None:
    model["status"]["conditions"] = [f.condition("Ready", "False", "PVCInvalid", "denied")]
    m = one(model)
    d = only(diagnoses.condition_reasons(m, NATIVE))
    assert (d.code, d.severity) == ("pvc-invalid", Severity.ERROR)
    assert words in d.message and d.message.endswith("(OME: denied)")
    assert [x.code for x in m.diagnoses].count("pvc-invalid") == 1
    assert "pvc-uri-no-namespace" not in codes(m) and "pvc-uri-has-namespace" not in codes(m)


def test_true_conditions_and_duplicates_say_nothing_extra() -> None:
    conds = [
        f.condition("SourceReachable", "True", "PVCValidated"),
        f.condition("SourceReachable", "False", "PVCNotFound"),
        f.condition("Ready", "False", "PVCNotFound"),
        f.condition("Ready", "True", "Ready"),
    ]
    m = one(f.cluster_base_model(CBM, uri="pvc://team-a:models/x", conditions=conds))
    assert [d.code for d in diagnoses.condition_reasons(m, NATIVE)] == ["pvc-not-found"] * 2
    assert codes(m).count("pvc-not-found") == 1  # diagnose() keeps one per code


def test_unknown_ready_reason_is_still_reported() -> None:
    cond = f.condition("Ready", "False", "Throttled", "slow down")
    m = one(f.cluster_base_model(CBM, conditions=[cond]))
    d = only(diagnoses.condition_reasons(m, NATIVE))
    assert d.code == "not-ready-condition" and "Throttled" in d.message


@pytest.mark.parametrize(
    ("pvcs", "expected"),
    [
        ([], "pvc-not-found"),
        ([f.pvc("team-a", "models", phase="Pending")], "pvc-not-bound"),
        ([f.pvc("team-a", "models")], None),
        (None, None),
    ],
    ids=["missing", "pending", "bound", "not-readable"],
)
def test_claim_as_the_plugin_sees_it(pvcs: list[Any] | None, expected: str | None) -> None:
    m = one(f.cluster_base_model(CBM, uri="pvc://team-a:models/x"), pvcs=pvcs)
    found = diagnoses.pvc_claim_observed(m, RELEASED)
    assert [d.code for d in found] == ([expected] if expected else [])


def test_invalid_pvc_uri() -> None:
    m = one(f.cluster_base_model(CBM, uri="pvc://a:b:c/x"))
    d = only(diagnoses.pvc_uri_invalid(m, NATIVE))
    assert d.code == "pvc-uri-invalid" and "more than one ':'" in d.message
    assert d.next == f"kubectl edit clusterbasemodel {CBM}"
    assert codes(m) == ["pvc-not-supported", "pvc-uri-invalid"]  # released OME, the default


def test_unsafe_pvc_uri() -> None:
    m = one(f.cluster_base_model(CBM, uri="pvc://ns:models/../../etc"))
    d = only(diagnoses.pvc_uri_unsafe(m, NATIVE))
    assert d.severity is Severity.WARNING and "'..' segment" in d.message
    assert (
        diagnoses.pvc_uri_unsafe(one(f.cluster_base_model(CBM, uri="pvc://ns:m/x")), NATIVE) == []
    )


@pytest.mark.parametrize("ctx", [NATIVE, RELEASED], ids=["native", "released"])
def test_uri_in_the_wrong_form_for_its_kind_is_an_error(ctx: diagnoses.RuleContext) -> None:
    # OME refuses both (pkg/validation/basemodel.go at aab06ebe)
    m = one(f.cluster_base_model(CBM, uri="pvc://models/x"))
    d = only(diagnoses.pvc_uri_wrong_form(m, ctx))
    assert (d.code, d.severity) == ("pvc-uri-no-namespace", Severity.ERROR)
    assert "pvc://<namespace>:models/x" in d.message
    namespaced = one(f.base_model("ns", "m", uri="pvc://ns:models/x"))
    d = only(diagnoses.pvc_uri_wrong_form(namespaced, ctx))
    assert (d.code, d.severity) == ("pvc-uri-has-namespace", Severity.ERROR)
    assert "pvc://models/x" in d.message
    for fine in (f.base_model("ns", "m", uri="pvc://models/x"),
                 f.cluster_base_model(CBM, uri="pvc://ns:models/x")):  # fmt: skip
        assert diagnoses.pvc_uri_wrong_form(one(fine), ctx) == []


# -- storage -----------------------------------------------------------------------------------


@pytest.mark.parametrize("uri", ["s3://b/x", "az://acct/c/x", "gs://b/x", "github://o/r@v1"])
def test_schemes_the_agent_cannot_download(uri: str) -> None:
    m = one(f.cluster_base_model(CBM, uri=uri))
    d = only(diagnoses.undownloadable_scheme(m, RELEASED))
    assert (d.code, d.severity) == ("unsupported-scheme", Severity.ERROR)
    assert f"{uri.partition(':')[0]}:// URIs" in d.message and "stay Updating" in d.message


@pytest.mark.parametrize(
    ("uri", "expected"),
    [("HF://meta/x", "unknown-scheme"), ("hf://meta/x", None), ("oci://n/a/b/c/o/x", None)],
    ids=["upper-case", "hf", "oci"],
)
def test_unknown_scheme(uri: str, expected: str | None) -> None:
    found = diagnoses.undownloadable_scheme(one(f.cluster_base_model(CBM, uri=uri)), RELEASED)
    assert [d.code for d in found] == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("path", "fires"),
    [
        ("/raid/models/meta/llama", False),
        ("/mnt/data/models/llama", True),
        ("/raid/models-2/llama", True),
    ],
    ids=["inside", "elsewhere", "sibling-prefix"],
)
def test_path_outside_agent_root(path: str, fires: bool) -> None:
    m = one(f.cluster_base_model(CBM, path=path), agent_daemonset=f.agent_daemonset())
    ctx = RuleContext(agent_root=agent.agent_root(f.agent_daemonset()))
    found = diagnoses.path_outside_agent_root(m, ctx)
    assert [d.code for d in found] == (["path-outside-agent-root"] if fires else [])
    if fires:
        assert (
            f"{path} is outside the model-agent's host directory /raid/models" in found[0].message
        )
    assert codes(m) == (["path-outside-agent-root"] if fires else [])


def test_path_check_skipped_without_the_daemonset() -> None:
    m = one(f.cluster_base_model(CBM, path="/elsewhere/llama"))
    assert diagnoses.path_outside_agent_root(m, RuleContext(agent_root=None)) == []
    assert codes(m) == []


def test_path_mapped_to_another_host_directory() -> None:
    ds = f.agent_daemonset(models_root="/mnt/models", host_path="/raid/models")
    m = one(f.cluster_base_model(CBM, path="/mnt/models/llama"), agent_daemonset=ds)
    assert codes(m) == ["path-outside-agent-root"]
    d = m.diagnoses[0]
    assert "lands on the node at /raid/models/llama" in d.message


def test_path_check_skipped_for_pvc_and_vendor_models() -> None:
    ctx = RuleContext(agent_root=agent.AgentRoot("/raid", "/raid", "/raid"))
    for uri in ("pvc://ns:c/x", "vendor://meta/model/x"):
        m = one(f.cluster_base_model(CBM, uri=uri, path="/elsewhere"))
        assert diagnoses.path_outside_agent_root(m, ctx) == []


# -- per-node ----------------------------------------------------------------------------------


def test_failed_nodes_are_named() -> None:
    nodes = [f.node(f"gpu-{i}", {LABEL: "Failed"}) for i in range(7)]
    m = one(f.cluster_base_model(CBM), nodes=nodes)
    d = only(diagnoses.failed_nodes(m, RELEASED))
    assert d.message == (
        "the download failed on 7 node(s): gpu-0, gpu-1, gpu-2, gpu-3, gpu-4 and 2 more"
    )
    assert d.next == "kubectl get pods -n ome -o wide --field-selector spec.nodeName=gpu-0"


@pytest.mark.parametrize(
    ("minutes_ago", "stalled"), [(29, False), (31, True), (600, True)], ids=["29m", "31m", "10h"]
)
def test_stalled_updating_node(minutes_ago: float, stalled: bool) -> None:
    entry = f.agent_entry(CBM, "Updating", f.progress(minutes_ago=minutes_ago))
    m = one(
        f.cluster_base_model(CBM),
        nodes=[f.node("n1", {LABEL: "Updating"})],
        configmaps=[f.agent_configmap("n1", {KEY: entry})],
    )
    found = diagnoses.stalled_nodes(m, RELEASED)
    assert [d.code for d in found] == (["node-stalled"] if stalled else [])
    if stalled:
        assert found[0].message.endswith("on 1 node(s): n1")


def test_updating_without_progress_is_not_called_stalled() -> None:
    m = one(
        f.cluster_base_model(CBM, uri="s3://b/x"),
        nodes=[f.node("n1")],
        configmaps=[f.agent_configmap("n1", {KEY: f.agent_entry(CBM, "Updating")})],
    )
    assert diagnoses.stalled_nodes(m, RELEASED) == []


def test_configmap_for_a_node_that_does_not_exist() -> None:
    m = one(
        f.cluster_base_model(CBM),
        nodes=[f.node("n1", {LABEL: "Ready"})],
        configmaps=[
            f.agent_configmap("n1", {KEY: f.agent_entry(CBM)}),
            f.agent_configmap("old-node", {KEY: f.agent_entry(CBM)}),
        ],
    )
    d = only(diagnoses.orphaned_configmaps(m, RELEASED))
    assert "old-node" in d.message and "OME ignores them" in d.message
    assert d.next == "kubectl delete configmap old-node -n ome"
    unknown_nodes = RuleContext(nodes_known=False)
    assert diagnoses.orphaned_configmaps(m, unknown_nodes) == []


@pytest.mark.parametrize(
    ("label", "entry_status", "fires"),
    [
        ("Ready", "Ready", False),
        ("Updating", "Ready", True),
        (None, "Ready", True),
        ("Ready", None, False),  # the agent writes the label first
    ],
    ids=["agree", "differ", "label-missing", "configmap-missing"],
)
def test_label_and_configmap_disagree(
    label: str | None, entry_status: str | None, fires: bool
) -> None:
    labels = {LABEL: label} if label else {}
    entries = {KEY: f.agent_entry(CBM, entry_status)} if entry_status else {}
    m = one(
        f.cluster_base_model(CBM),
        nodes=[f.node("n1", labels)],
        configmaps=[f.agent_configmap("n1", entries)],
    )
    found = diagnoses.label_configmap_mismatch(m, RELEASED)
    assert [d.code for d in found] == (["label-configmap-mismatch"] if fires else [])
    if fires:
        assert f"label {label or 'missing'}, ConfigMap {entry_status}" in found[0].message
        assert found[0].next == f"kubectl get node n1 -L {LABEL}"


@pytest.mark.parametrize(
    "entry",
    ["{not json", '"a string"', '{"name": "x", "status": "Bogus"}'],
    ids=["not-json", "not-an-object", "unknown-status"],
)
def test_malformed_entry_is_unknown_not_a_mismatch(entry: str) -> None:
    """A ConfigMap entry the plugin cannot read says nothing about what OME counts: a warning
    (status's, not a diagnosis), never `label-configmap-mismatch`."""
    m = one(
        f.cluster_base_model(CBM),
        nodes=[f.node("n1", {LABEL: "Ready"})],
        configmaps=[f.agent_configmap("n1", {KEY: entry})],
    )
    assert diagnoses.label_configmap_mismatch(m, RELEASED) == []
    assert codes(m) == []


def test_no_node_matches_the_selection() -> None:
    model = f.cluster_base_model(CBM, node_selector={"gpu": "h100", "pool": "a"})
    m = one(model, nodes=[f.node("n1", {"gpu": "a10"})])
    d = only(diagnoses.no_matching_nodes(m, RELEASED))
    assert d.code == "no-matching-nodes" and d.next == "kubectl get nodes -l gpu=h100,pool=a"
    assert one(f.cluster_base_model(CBM)).targeted is None  # nodes unreadable: no claim made
    assert (
        diagnoses.no_matching_nodes(one(f.cluster_base_model(CBM)), RuleContext(nodes_known=False))
        == []
    )


def test_no_nodes_at_all() -> None:
    m = one(f.cluster_base_model(CBM), nodes=[])
    d = only(diagnoses.no_matching_nodes(m, RELEASED))
    assert d.next == "kubectl get nodes --show-labels"


# -- model-level -------------------------------------------------------------------------------


def test_disabled_model() -> None:
    d = only(diagnoses.disabled_model(one(f.cluster_base_model(CBM, disabled=True)), RELEASED))
    assert d.code == "model-disabled"
    assert d.next == (
        f'kubectl patch clusterbasemodel {CBM} --type merge -p \'{{"spec":{{"disabled":false}}}}\''
    )
    assert diagnoses.disabled_model(one(f.cluster_base_model(CBM, disabled=False)), RELEASED) == []


def test_hashed_label_key_is_info() -> None:
    m = one(f.cluster_base_model("llama-4-maverick-17b-128e-instruct-fp8"))
    d = only(diagnoses.hashed_label_key(m, RELEASED))
    assert d.severity is Severity.INFO
    assert "clusterbasemodel.321a5921-k-17b-128e-instruct-fp8" in d.message
    assert status.reason_cell(m) == "-"  # info is not a reason
    assert diagnoses.hashed_label_key(one(f.cluster_base_model(CBM)), RELEASED) == []


def _pending(model: dict[str, Any]) -> Diagnosis:
    path = f"{f.MODELS_ROOT}/meta/{CBM}"
    m = one(
        model,
        nodes=[f.node("n1")],
        inference_services=[f.inference_service("default", "llama", CBM)],
        workloads=[f.engine_deployment("llama", CBM, path)],
    )
    return only(diagnoses.workloads_pending(m, RELEASED))


def test_pending_workloads_point_to_create_when_weights_are_on_a_node() -> None:
    d = _pending(f.cluster_base_model(CBM, nodes_ready=["n2"]))
    assert "Deployment default/llama-engine of InferenceService llama waits" in d.message
    assert d.next == f"kubectl ome-pvc create CLAIM --from-model {CBM} --size SIZE -n default"


def test_pending_workloads_of_a_model_failed_everywhere_point_to_the_agent() -> None:
    d = _pending(f.cluster_base_model(CBM, nodes_failed=["n1"]))
    # create --from-model refuses a model Ready on no node
    assert d.next == diagnoses.agent_pods_command("n1")


def test_pending_workloads_of_a_downloading_model_watch_it() -> None:
    assert _pending(f.cluster_base_model(CBM)).next == f"kubectl ome-pvc status {CBM} --watch"


def test_create_hint_names_a_base_model_as_create_takes_it() -> None:
    m = one(f.base_model("team-a", "qwen", nodes_ready=["n1"]))
    assert diagnoses.create_command(m) == (
        "kubectl ome-pvc create CLAIM --from-model basemodel/qwen --size SIZE -n team-a"
    )


def _rolling(pods: list[Any] | None) -> status.ModelStatus:
    path = f"{f.MODELS_ROOT}/meta/{CBM}"
    engine = f.engine_deployment("llama", CBM, path, ready_replicas=1)
    engine["metadata"]["generation"] = 2
    engine["status"].update(observedGeneration=2, updatedReplicas=1, replicas=2)
    if pods is not None:
        engine[status.POD_PROBLEMS] = tuple(rollout.pod_problems(pods))
    return one(
        f.cluster_base_model(CBM, state="Ready", nodes_ready=["n1"]),
        nodes=[f.node("n1", {LABEL: "Ready"})],
        inference_services=[f.inference_service("default", "llama", CBM)],
        workloads=[engine],
    )


UNSCHEDULABLE = {
    "metadata": {"name": "llama-engine-new"},
    "status": {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": "0/3 nodes are available: 3 node(s) didn't find available"
                                   " persistent volumes to bind."}],
    },
}  # fmt: skip
CRASHING = {
    "metadata": {"name": "llama-engine-new"},
    "status": {
        "phase": "Running",
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [{"name": "engine", "ready": False, "restartCount": 4,
                               "state": {"waiting": {"reason": "CrashLoopBackOff",
                                                     "message": "back-off 1m0s"}}}],
    },
}  # fmt: skip


def test_a_stuck_rollout_is_an_error_with_the_schedulers_reason() -> None:
    m = _rolling([UNSCHEDULABLE])
    (d,) = [d for d in m.diagnoses if d.code == "rollout-stuck"]
    assert d.severity is Severity.ERROR
    assert "Deployment default/llama-engine of InferenceService llama is not rolled out" in (
        d.message
    )
    assert "1 replica of the old template left" in d.message
    assert "didn't find available persistent volumes to bind" in d.message
    assert d.next == "kubectl describe pod llama-engine-new -n default"


def test_a_crashing_new_pod_is_named_with_the_kubelets_reason() -> None:
    (d,) = [d for d in _rolling([CRASHING]).diagnoses if d.code == "rollout-stuck"]
    assert "container engine CrashLoopBackOff (4 restarts): back-off 1m0s" in d.message


def test_an_unfinished_rollout_without_pod_problems_is_info() -> None:
    assert "rollout-stuck" not in codes(_rolling([]))
    (d,) = [d for d in _rolling(None).diagnoses if d.code == "rollout-unfinished"]
    assert d.severity is Severity.INFO
    assert d.next == "kubectl describe deployment llama-engine -n default"


# -- diagnose() --------------------------------------------------------------------------------


def test_diagnose_orders_by_severity_and_keeps_rule_order() -> None:
    name = "llama-4-maverick-17b-128e-instruct-fp8"
    label = naming.cluster_model_label_key(name)
    m = one(
        f.cluster_base_model(name, disabled=True),
        nodes=[f.node("n1", {label: "Failed"}), f.node("n2", {label: "Failed"})],
    )
    assert codes(m) == ["nodes-failed", "model-disabled", "hashed-label-key"]


def test_healthy_model_has_no_diagnoses() -> None:
    m = one(
        f.cluster_base_model(CBM, state="Ready", nodes_ready=["n1"]),
        nodes=[f.node("n1", {LABEL: "Ready"})],
        configmaps=[f.agent_configmap("n1", {KEY: f.agent_entry(CBM)})],
        agent_daemonset=f.agent_daemonset(),
        inference_services=[],
        workloads=[],
        pvcs=[],
        pvs=[],
    )
    assert m.diagnoses == ()


def test_every_rule_yields_stable_kebab_case_codes() -> None:
    seen = set()
    scenarios = [
        one(f.cluster_base_model(CBM, uri="pvc://a:b:c/x")),
        one(f.cluster_base_model(CBM, uri="s3://b/x", disabled=True), nodes=[]),
        one(
            f.cluster_base_model(CBM, uri="pvc://ns:models/x",
                                 conditions=[f.condition("Ready", "False", "PVCNotBound")]),
            pvcs=[],
        ),
    ]  # fmt: skip
    for m in scenarios:
        for ctx in (RELEASED, NATIVE):
            for d in diagnoses.diagnose(m, ctx):
                assert d.code == d.code.lower() and " " not in d.code
                assert "\n" not in d.message
                seen.add(d.code)
    assert {"pvc-uri-invalid", "unsupported-scheme", "model-disabled", "pvc-not-bound"} <= seen


@pytest.mark.parametrize(
    ("reason", "message", "next_"),
    [
        ("PVCNotFound", "the claim does not exist; OME looks for it in that namespace and checks"
         " again every 5s", "kubectl get pvc -n NAMESPACE"),
        ("PVCNotBound", "the claim is not Bound yet: check its storage class, a matching volume,"
         " and whether the class waits for a first consumer",
         "kubectl describe pvc CLAIM -n NAMESPACE"),
        ("PVCMetadataExtractionFailed", "OME's metadata Job could not read the model on the claim"
         " (is config.json under SUB_PATH, readable by the Job's user?)",
         "kubectl ome-pvc verify CLAIM -n NAMESPACE --sub-path SUB_PATH"),
        ("PVCConfigMissing", "OME's controller has no ome-agent image configured to run the"
         " metadata Job: an operator setting (the omeAgent block of ConfigMap"
         " inferenceservice-config in the OME namespace), not a missing config.json; fix it and"
         " OME retries", "kubectl get configmap inferenceservice-config -n ome -o yaml"),
    ],
    ids=["not-found", "not-bound", "extraction", "config"],
)  # fmt: skip
def test_pvc_reason_without_a_readable_claim_says_so_in_placeholders(
    reason: str, message: str, next_: str
) -> None:
    """OME's reason on a model whose URI names no claim: the words and the command to run use
    placeholders, never another model's values."""
    m = one(f.cluster_base_model(CBM, conditions=[f.condition("Ready", "False", reason, "")]))
    d = only(diagnoses.condition_reasons(m, NATIVE))
    assert (d.message, d.next) == (message, next_)


@pytest.mark.parametrize(
    ("model", "message", "next_"),
    [
        (f.cluster_base_model(CBM, uri="s3://b/x"),
         "OME's model-agent cannot download s3:// URIs (unknown storage type): its nodes stay"
         " Updating; use an hf:// or oci:// URI, or serve the weights from a claim",
         f"kubectl edit clusterbasemodel {CBM}"),
        (f.cluster_base_model(CBM, uri="HF://x"),
         "OME does not recognise the scheme of 'HF://x' (schemes are lower-case: oci, hf, pvc,"
         " ...)", f"kubectl edit clusterbasemodel {CBM}"),
        (f.base_model("team-a", "qwen", uri="s3://b/x"),
         "OME's model-agent cannot download s3:// URIs (unknown storage type): its nodes stay"
         " Updating; use an hf:// or oci:// URI, or serve the weights from a claim",
         "kubectl edit basemodel qwen -n team-a"),
    ],
    ids=["s3", "upper-case", "namespaced"],
)  # fmt: skip
def test_scheme_diagnoses_exactly(model: dict[str, Any], message: str, next_: str) -> None:
    d = only(diagnoses.undownloadable_scheme(one(model), RELEASED))
    assert (d.message, d.next, d.severity) == (message, next_, Severity.ERROR)


# -- the isvc route ----------------------------------------------------------------------------

COPY = f"{CBM}-pvc"
COPY_LABEL = naming.cluster_model_label_key(COPY)


def isvc_route_service(namespace: str = "team-a", name: str = "llama") -> dict[str, Any]:
    isvc = f.inference_service(namespace, name, COPY)
    record = '{"format": 1, "strategy": "isvc", "claim": "models"}'
    isvc["metadata"]["annotations"] = {naming.ORIGINAL_ANNOTATION: record}
    return isvc


def isvc_route_engine() -> dict[str, Any]:
    """The engine OME renders for the copy: no model volume, the claim from the isvc's spec."""
    engine = f.engine_deployment("llama", COPY, "/raid/models/meta/llama", namespace="team-a")
    spec = engine["spec"]["template"]["spec"]
    spec["volumes"] = [
        {"name": naming.ISVC_ROUTE_VOLUME, "persistentVolumeClaim": {"claimName": "models"}}
    ]
    spec["containers"][0]["volumeMounts"][-1]["name"] = naming.ISVC_ROUTE_VOLUME
    engine["status"] = {"replicas": 1, "readyReplicas": 1}
    return engine


def test_in_transit_of_an_isvc_route_copy_is_expected_not_an_error() -> None:
    m = one(
        f.cluster_base_model(COPY, uri="pvc://team-a:models/meta/llama", state="In_Transit"),
        inference_services=[isvc_route_service()],
        workloads=[isvc_route_engine()],
        nodes=[f.node("node-a", {COPY_LABEL: "Ready"})],
    )
    assert "pvc-not-supported" not in codes(m)
    d = next(d for d in m.diagnoses if d.code == "pvc-isvc-route")
    assert d.severity is Severity.INFO
    assert "In_Transit is expected" in d.message and "team-a/llama" in d.message
    assert m.services is not None
    (service,) = m.services
    assert service.route == "isvc"
    assert service.workloads is not None
    assert [w.description for w in service.workloads] == ["pvc (isvc)"]


def test_an_isvc_route_workload_is_recognised_by_its_volume_alone() -> None:
    workload = isvc_route_engine()
    use = status.classify_workload(workload, COPY, None, COPY_LABEL, {"node-a": "Ready"}, True)
    assert (use.mode, use.strategy, use.description) == (
        status.WorkloadMode.PATCHED,
        "isvc",
        "pvc (isvc)",
    )


def test_on_native_ome_the_isvc_route_can_turn_native() -> None:
    m = one(
        f.cluster_base_model(COPY, uri="pvc://team-a:models/meta/llama"),
        inference_services=[isvc_route_service()],
        native_pvc=True,
    )
    d = only(diagnoses.isvc_route_can_go_native(m, NATIVE))
    assert d.next == "kubectl ome-pvc patch llama -n team-a --claim models"
    assert diagnoses.isvc_route_can_go_native(m, RELEASED) == []


def test_a_labelled_node_the_claim_cannot_reach_is_flagged() -> None:
    m = one(
        f.cluster_base_model(COPY, uri="pvc://team-a:models/meta/llama"),
        inference_services=[isvc_route_service()],
        nodes=[f.node("node-a", {COPY_LABEL: "Ready"}), f.node("node-b", {COPY_LABEL: "Ready"})],
        pvcs=[f.pvc("team-a", "models", volume_name="pv-models")],
        pvs=[f.pv("pv-models", nodes=("node-a",))],
    )
    assert m.claim is not None and m.claim.unreachable_labelled == ("node-b",)
    d = only(diagnoses.labelled_node_unreachable(m, RELEASED))
    assert d.severity is Severity.WARNING
    assert "node-b carries" in d.message and "cannot reach claim team-a/models" in d.message
    assert d.next == f"kubectl label node node-b {COPY_LABEL}-"


def test_isvc_route_pods_waiting_for_the_copys_label_point_to_patch_again() -> None:
    engine = isvc_route_engine()
    engine["spec"]["template"]["spec"]["nodeSelector"] = {COPY_LABEL: "Ready"}
    engine["status"] = {"replicas": 1}
    m = one(
        f.cluster_base_model(COPY, uri="pvc://team-a:models/meta/llama"),
        inference_services=[isvc_route_service()],
        workloads=[engine],
        nodes=[f.node("node-a")],
    )
    d = only(diagnoses.workloads_pending(m, RELEASED))
    assert d.next == "kubectl ome-pvc patch llama -n team-a --claim models"
