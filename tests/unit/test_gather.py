"""The reads behind `status`, against a fake API: which LISTs, in which scope, what on 403/404,
what slimming keeps, and how a watch resumes (server closed the stream, 410 Gone, 403)."""

from __future__ import annotations

import dataclasses
import gc
import json
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from kubectl_omepvc import errors
from kubectl_omepvc.api import gather
from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import naming, rbac, status
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.naming import ModelKind
from tests import factories as f
from tests.expect import raises_exactly

Obj = dict[str, Any]
CBM = "llama-3-2-1b-instruct"


def cbm_openapi(status: Obj) -> Obj:
    """The ClusterBaseModel schema as the server publishes it, with this `status` schema."""
    gvk = [{"group": "ome.io", "kind": "ClusterBaseModel"}]
    schema = {"x-kubernetes-group-version-kind": gvk, "properties": {"status": status}}
    return {"components": {"schemas": {"io.ome.v1beta1.ClusterBaseModel": schema}}}


NATIVE_OPENAPI = cbm_openapi({"properties": {"conditions": {"type": "array"}}})
RELEASED_OPENAPI = cbm_openapi({"properties": {"state": {"type": "string"}}})


def noisy(obj: Obj) -> Obj:
    """An object as the server returns it: managed fields and other bulk the plugin drops."""
    out: Obj = json.loads(json.dumps(obj))
    out.setdefault("metadata", {})["managedFields"] = [{"manager": "x", "fieldsV1": {"f:a": {}}}]
    out["metadata"]["resourceVersion"] = "7"
    return out


@dataclasses.dataclass
class FakeApi:
    """Answers LIST (paginated), GET, discovery and watch from in-memory tables."""

    lists: dict[str, list[Obj]] = dataclasses.field(default_factory=dict)
    forbidden: set[str] = dataclasses.field(default_factory=set)
    missing: set[str] = dataclasses.field(default_factory=set)
    raw: dict[str, Obj] = dataclasses.field(default_factory=dict)
    objects: dict[str, Obj] = dataclasses.field(default_factory=dict)
    watches: list[Any] = dataclasses.field(default_factory=list)
    namespace: str = "default"
    context: str | None = "local"
    verbose: int = 0
    requests: list[tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    resource_version: str = "100"

    def request(self, method: str, path: str, *, query: Any = None, **_: Any) -> Obj:
        query = {k: v for k, v in (query or {}).items() if v is not None}
        self.requests.append((path, query))
        if path in self.forbidden:
            raise errors.Forbidden(f"forbidden: {path}")
        if path in self.missing:
            raise errors.NotFound(f"not found: {path}")
        items = self.lists.get(path, [])
        label = query.get("labelSelector")
        if label and "=" in label:
            key, value = label.split("=", 1)
            items = [i for i in items if (i["metadata"].get("labels") or {}).get(key) == value]
        elif label:  # an existence selector
            items = [i for i in items if label in (i["metadata"].get("labels") or {})]
        field = query.get("fieldSelector")
        if field:
            items = [i for i in items if i["metadata"]["name"] == field.split("=", 1)[1]]
        start = int(query.get("continue") or 0)
        limit = int(query.get("limit") or len(items) or 1)
        page = items[start : start + limit]
        more = start + limit < len(items)
        meta = {"resourceVersion": self.resource_version}
        if more:
            meta["continue"] = str(start + limit)
        return {"items": [noisy(i) for i in page], "metadata": meta}

    # The client's own pagination (continue tokens), run over the fake `request`.
    pages = Client.pages

    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]

    def get_or_none(self, ref: r.ResourceRef, name: str, namespace: str | None = None) -> Any:
        path = ref.path(namespace, name)
        self.requests.append((path, {}))
        if ref.path(namespace) in self.forbidden:
            raise errors.Forbidden(f"forbidden: {path}")
        found = self.objects.get(path)
        return noisy(found) if found else None

    def get_raw(self, path: str) -> Obj:
        self.requests.append((path, {}))
        if path not in self.raw:
            raise errors.NotFound(path)
        return self.raw[path]

    def watch(self, ref: r.ResourceRef, namespace: str | None = None, **kw: Any) -> Iterator[Obj]:
        self.requests.append((ref.path(namespace), {"watch": True, **kw}))
        if not self.watches:
            raise errors.Forbidden("no more scripted watches")  # ends `follow`
        step = self.watches.pop(0)
        if isinstance(step, Exception):
            raise step
        yield from step


def served() -> FakeApi:
    api = FakeApi()
    api.raw["/apis/ome.io/v1beta1"] = {"resources": [{"name": "clusterbasemodels"}]}
    api.raw["/openapi/v3/apis/ome.io/v1beta1"] = RELEASED_OPENAPI
    return api


CBMS = r.CLUSTER_BASE_MODELS.path()
CMS = r.CONFIG_MAPS.path(naming.AGENT_NAMESPACE)
NODES = r.NODES.path()
ISVCS = r.INFERENCE_SERVICES.path()
DSS = r.DAEMON_SETS.path(naming.AGENT_NAMESPACE)


def overview(api: FakeApi, **kw: Any) -> gather.Sources:
    kw.setdefault("kind", None)
    kw.setdefault("namespace", "default")
    return gather.gather_overview(api, **kw)  # type: ignore[arg-type]


# -- reads -------------------------------------------------------------------------------------


def test_list_objects_pages_slims_and_keeps_the_resource_version() -> None:
    api = served()
    api.lists[CBMS] = [f.cluster_base_model(f"m{i}") for i in range(5)]
    listed = gather.list_objects(
        api,  # type: ignore[arg-type]
        r.CLUSTER_BASE_MODELS,
        slim=gather.slim_model(ModelKind.CLUSTER),
        page_size=2,
    )
    assert [m["metadata"]["name"] for m in listed.items] == ["m0", "m1", "m2", "m3", "m4"]
    assert listed.resource_version == "100"
    assert [q.get("continue") for _, q in api.requests] == [None, "2", "4"]
    assert "managedFields" not in listed.items[0]["metadata"]


def test_slimming_keeps_everything_the_core_reads() -> None:
    """build_statuses gives the same answer from slimmed objects as from full ones."""
    path = f"{f.MODELS_ROOT}/meta/{CBM}"
    label = naming.cluster_model_label_key(CBM)
    models = [
        f.cluster_base_model(CBM, node_selector={"gpu": "h100"}, nodes_failed=["n2"]),
        f.base_model("team-a", "qwen", uri="pvc://models/qwen", disabled=True),
    ]
    nodes = [f.node("n1", {"gpu": "h100", label: "Updating"}), f.node("n2", {"gpu": "h100"})]
    cms = [
        f.agent_configmap(
            "n1",
            {naming.cluster_model_configmap_key(CBM): f.agent_entry(CBM, "Updating", f.progress())},
        )
    ]
    isvcs = [f.inference_service("default", "llama", CBM)]
    workloads = [f.engine_deployment("llama", CBM, path), f.leader_worker_set("big", CBM, path)]
    full = status.build_statuses(
        [noisy(m) for m in models], configmaps=cms, nodes=nodes, inference_services=isvcs,
        workloads=workloads, now=f.NOW,
    )  # fmt: skip
    kinds = [ModelKind.CLUSTER, ModelKind.NAMESPACED]
    slim = status.build_statuses(
        [gather.slim_model(k)(noisy(m)) for k, m in zip(kinds, models, strict=True)],
        configmaps=[gather.slim_configmap(noisy(c)) for c in cms],
        nodes=[gather.slim_node(noisy(n)) for n in nodes],
        inference_services=[gather.slim_isvc(noisy(i)) for i in isvcs],
        workloads=[gather.slim_workload(w["kind"])(noisy(w)) for w in workloads],
        now=f.NOW,
    )
    assert slim.as_dict() == full.as_dict()
    assert full.models[0].services and full.models[0].services[0].workloads  # not vacuous


def test_overview_reads_one_list_per_type_and_skips_what_no_model_needs() -> None:
    api = served()
    api.lists[CBMS] = [f.cluster_base_model(f"m{i}", uri="oci://x/y") for i in range(3)]
    api.lists[NODES] = [f.node("n1")]
    sources = overview(api)
    paths = api.paths()
    assert sorted(set(paths)) == sorted(paths)  # never the same read twice
    assert set(paths) == {
        CBMS, r.BASE_MODELS.path("default"), CMS, NODES, ISVCS, DSS,
    }  # fmt: skip
    assert sources.workloads == []  # no InferenceService uses a listed model: nothing to list
    assert sources.pvcs is None and sources.jobs is None
    assert sources.warnings == []
    assert [w.source for w in sources.watches] == ["clusterbasemodels", "basemodels", "configmaps"]
    assert all(w.resource_version == "100" for w in sources.watches)


def test_configmaps_are_listed_by_the_agent_label_in_ome() -> None:
    api = served()
    overview(api)
    (query,) = [q for p, q in api.requests if p == CMS]
    assert query["labelSelector"] == "models.ome/basemodel-status=true"


def test_forbidden_reads_become_one_warning_each() -> None:
    api = served()
    api.lists[CBMS] = [f.cluster_base_model(CBM)]
    api.forbidden |= {CMS, NODES, ISVCS, r.INFERENCE_SERVICES.path("default"), DSS}
    sources = overview(api)
    assert (sources.configmaps, sources.nodes, sources.inference_services) == (None, None, None)
    assert sources.workloads is None and sources.agent_daemonset is None
    assert sources.warnings == [
        "cannot list configmaps in namespace ome (forbidden): per-node progress omitted",
        "cannot list daemonsets.apps in namespace ome (forbidden): "
        "the model-agent's host directory is not checked",
        "cannot list inferenceservices.ome.io in all namespaces (forbidden): "
        "InferenceServices using the models omitted",
        "cannot list nodes (forbidden): node labels and node selection omitted",
    ]
    assert [w.source for w in sources.watches] == ["clusterbasemodels", "basemodels"]


def test_isvcs_fall_back_to_the_current_namespace() -> None:
    api = served()
    api.lists[CBMS] = [f.cluster_base_model(CBM)]
    api.lists[r.INFERENCE_SERVICES.path("default")] = [f.inference_service("default", "x", CBM)]
    api.forbidden.add(ISVCS)
    sources = overview(api)
    assert [i["metadata"]["name"] for i in sources.inference_services or []] == ["x"]
    assert sources.warnings == [
        "cannot list inferenceservices.ome.io in all namespaces (forbidden): "
        "only those of namespace default are shown"
    ]
    # The workloads are then read in that one namespace.
    assert r.DEPLOYMENTS.path("default") in api.paths()


def test_one_readable_model_kind_is_enough() -> None:
    api = served()
    api.forbidden.add(r.BASE_MODELS.path("default"))
    api.lists[CBMS] = [f.cluster_base_model(CBM)]
    sources = overview(api)
    assert len(sources.models) == 1
    assert sources.warnings == [
        "cannot list basemodels.ome.io in namespace default (forbidden): BaseModels omitted"
    ]


def test_no_readable_model_kind_is_an_error() -> None:
    api = served()
    api.forbidden |= {CBMS, r.BASE_MODELS.path("default")}
    with pytest.raises(errors.Forbidden, match=r"cannot list clusterbasemodels\.ome\.io"):
        overview(api)


def test_ome_not_installed_is_one_line_naming_the_context() -> None:
    api = served()
    api.missing.add(CBMS)
    with pytest.raises(errors.NotFound) as caught:
        overview(api)
    assert caught.value.message == (
        'OME is not installed in context "local": the server does not serve '
        "clusterbasemodels.ome.io/v1beta1: install OME's CRDs, or pick the cluster with --context"
    )


def test_workloads_are_read_by_the_isvc_label_in_the_isvcs_namespace() -> None:
    api = served()
    path = f"{f.MODELS_ROOT}/meta/{CBM}"
    api.lists[CBMS] = [f.cluster_base_model(CBM)]
    api.lists[ISVCS] = [f.inference_service("team-a", "llama", CBM)]
    api.lists[r.DEPLOYMENTS.path("team-a")] = [
        f.engine_deployment("llama", CBM, path, namespace="team-a")
    ]
    api.missing.add(r.KNATIVE_SERVICES.path("team-a"))  # Knative not installed: no workloads
    sources = overview(api)
    assert [w["kind"] for w in sources.workloads or []] == ["Deployment"]
    (query,) = [q for p, q in api.requests if p == r.DEPLOYMENTS.path("team-a")]
    assert query["labelSelector"] == "ome.io/inferenceservice"


def pvc_world(api: FakeApi, openapi: Obj) -> None:
    api.raw["/openapi/v3/apis/ome.io/v1beta1"] = openapi
    api.lists[CBMS] = [f.cluster_base_model(CBM, path=None, uri="pvc://team-a:models/llama")]
    api.lists[r.PVCS.path("team-a")] = [f.pvc("team-a", "models"), f.pvc("team-a", "other")]
    api.lists[r.PVS.path()] = [f.pv("pv-models"), f.pv("pv-other")]
    # OME main labels its Jobs and their pods (backends/pvc/metadata_job.go at 5ed809d2)
    ome_labels = {"models.ome/model-name": CBM, "models.ome/model-scope": "cluster"}
    api.lists[r.JOBS.path("team-a")] = [
        {"metadata": {"name": "extract", "namespace": "team-a", "labels": ome_labels}},
        {"metadata": {"name": "unrelated", "namespace": "team-a", "labels": {
            "app.kubernetes.io/component": "metadata-extraction"}}},
    ]  # fmt: skip
    api.lists[r.PODS.path("team-a")] = [
        {"metadata": {"name": "extract-x1", "namespace": "team-a", "labels": ome_labels}},
        {"metadata": {"name": "web", "namespace": "team-a"}},
    ]  # fmt: skip
    api.lists[r.CONFIG_MAPS.path("ome")] = [
        {"metadata": {"name": "pvc-metadata-0badf00d", "namespace": "ome",
                      "labels": {"models.ome/pvc-status": "true"}}},
    ]  # fmt: skip


def test_pvc_models_read_their_claim_and_volume_only() -> None:
    api = served()
    pvc_world(api, RELEASED_OPENAPI)
    sources = overview(api)
    assert [p["metadata"]["name"] for p in sources.pvcs or []] == ["models"]
    assert [p["metadata"]["name"] for p in sources.pvs or []] == ["pv-models"]
    assert sources.native_pvc is False
    assert sources.jobs is None  # released OME runs no metadata Job
    assert r.JOBS.path("team-a") not in api.paths()


def test_newer_ome_reads_the_metadata_jobs_by_label() -> None:
    api = served()
    pvc_world(api, NATIVE_OPENAPI)
    sources = overview(api)
    assert sources.native_pvc is True
    assert [j["metadata"]["name"] for j in sources.jobs or []] == ["extract"]
    assert [p["metadata"]["name"] for p in sources.job_pods or []] == ["extract-x1"]
    assert [c["metadata"]["name"] for c in sources.pvc_status_configmaps or []] == [
        "pvc-metadata-0badf00d"
    ]
    assert sources.metadata.jobs == sources.jobs


def test_generation_from_the_models_when_the_schema_is_unreadable() -> None:
    api = served()
    pvc_world(api, NATIVE_OPENAPI)
    del api.raw["/openapi/v3/apis/ome.io/v1beta1"]
    api.lists[CBMS][0]["status"]["conditions"] = [f.condition("Ready", "False", "PVCNotBound")]
    sources = overview(api)
    assert sources.native_pvc is True
    assert any(
        "OME's schema is not readable" in w and "has status.conditions" in w
        for w in sources.warnings
    )


# OME v0.1.5's minimal CRDs (config/crd/minimal): the model status is schemaless
SCHEMALESS_OPENAPI = cbm_openapi({"type": "object", "x-kubernetes-preserve-unknown-fields": True})


def test_schemaless_status_says_so_and_asks_the_models() -> None:
    api = served()
    pvc_world(api, SCHEMALESS_OPENAPI)  # an In_Transit pvc:// model without conditions, 60m old
    sources = overview(api)
    assert sources.native_pvc is False
    (said,) = [w for w in sources.warnings if "generation" in w]
    assert "schemaless" in said and "cannot tell" in said
    assert "is In_Transit without conditions" in said and "told from the objects" in said
    api.lists[CBMS][0]["status"]["conditions"] = [f.condition("Ready", "False", "PVCNotBound")]
    assert overview(api).native_pvc is True


def test_schemaless_status_and_young_models_ask_the_workloads() -> None:
    api = served()
    pvc_world(api, SCHEMALESS_OPENAPI)
    just_now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    api.lists[CBMS][0]["metadata"]["creationTimestamp"] = just_now
    api.lists[ISVCS] = [f.inference_service("team-a", "llama", CBM)]
    # released OME renders the pvc:// model's engine on the node label, with no claim
    engine = f.engine_deployment("llama", CBM, "/raid/x", namespace="team-a")
    engine["spec"]["template"]["spec"]["volumes"] = []
    api.lists[r.DEPLOYMENTS.path("team-a")] = [engine]
    api.missing.add(r.KNATIVE_SERVICES.path("team-a"))
    sources = overview(api)
    assert sources.native_pvc is False
    (said,) = [w for w in sources.warnings if "generation" in w]
    assert said.startswith("OME's generation told from the objects: the ClusterBaseModel schema")
    assert said.endswith("selects the model's node label, mounts no claim")


def test_schemaless_status_and_no_evidence_says_it_cannot_tell() -> None:
    api = served()
    pvc_world(api, SCHEMALESS_OPENAPI)
    # created just now: OME from main may not have reconciled it yet, so it is no evidence
    just_now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    api.lists[CBMS][0]["metadata"]["creationTimestamp"] = just_now
    sources = overview(api)
    assert sources.native_pvc is False  # described as on released OME, and said so
    (said,) = [w for w in sources.warnings if "generation" in w]
    assert said.startswith("cannot tell OME's generation (the ClusterBaseModel schema's status")
    assert "no model or workload shows the generation" in said


def test_agent_daemonset_unused_when_no_model_downloads() -> None:
    api = served()
    api.lists[CBMS] = [f.cluster_base_model(CBM, path=None, uri="pvc://team-a:models/llama")]
    api.lists[DSS] = [f.agent_daemonset()]
    assert overview(api, kind="cluster").agent_daemonset is None
    assert r.BASE_MODELS.path("default") not in api.paths()  # --kind cluster
    api.lists[CBMS] = [f.cluster_base_model(CBM)]
    assert overview(api, kind="cluster").agent_daemonset is not None


# -- the agent DaemonSet -----------------------------------------------------------------------


def _named(ds: Obj, name: str) -> Obj:
    return {**ds, "metadata": {**ds["metadata"], "name": name}}


@pytest.mark.parametrize(
    ("daemonsets", "picked", "warned"),
    [
        ([], None, False),
        ([_named(f.agent_daemonset(), "agent")], "agent", False),
        ([_named(f.agent_daemonset(root_arg_style="none"), "ome-model-agent")], "ome-model-agent",
         False),
        ([_named(f.agent_daemonset(root_arg_style="none"), "other")], None, False),
        ([_named(f.agent_daemonset(root_arg_style="none"), "ome-model-agent"),
          _named(f.agent_daemonset(), "flagged")], "flagged", False),
        ([_named(f.agent_daemonset(), "a"), _named(f.agent_daemonset(), "b")], None, True),
    ],
    ids=["none", "by-flag", "by-name", "unrelated", "flag-wins", "ambiguous"],
)  # fmt: skip
def test_pick_agent_daemonset(daemonsets: list[Obj], picked: str | None, warned: bool) -> None:
    warnings: list[str] = []
    found = gather.pick_agent_daemonset(daemonsets, warnings.append)
    assert (found["metadata"]["name"] if found else None) == picked
    assert bool(warnings) == warned
    if warned:
        assert warnings[0] == (
            "2 model-agent DaemonSets in namespace ome (a, b): "
            "the model-agent's host directory is not checked"
        )


# -- the detail view's model -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("explicit", "kind", "expected"),
    [
        (True, None, ["basemodels@team-a", "clusterbasemodels@-"]),
        (False, None, ["clusterbasemodels@-", "basemodels@team-a"]),
        (True, "cluster", ["clusterbasemodels@-"]),
        (False, "namespaced", ["basemodels@team-a"]),
    ],
    ids=["n-given", "no-n", "kind-cluster", "kind-namespaced"],
)
def test_lookup_order(explicit: bool, kind: str | None, expected: list[str]) -> None:
    order = gather.lookup_order(gather.ModelLookup("m", "team-a", explicit, kind))
    assert [f"{ref.plural}@{ns or '-'}" for ref, ns in order] == expected


def test_find_model_prefers_the_base_model_with_n() -> None:
    api = served()
    api.objects[r.BASE_MODELS.path("team-a", CBM)] = f.base_model("team-a", CBM)
    api.objects[r.CLUSTER_BASE_MODELS.path(None, CBM)] = f.cluster_base_model(CBM)
    model, ref, ns = gather.find_model(api, gather.ModelLookup(CBM, "team-a", True))  # type: ignore[arg-type]
    assert (ref, ns, model["kind"]) == (r.BASE_MODELS, "team-a", "BaseModel")
    model, ref, _ = gather.find_model(api, gather.ModelLookup(CBM, "team-a", False))  # type: ignore[arg-type]
    assert (ref, model["kind"]) == (r.CLUSTER_BASE_MODELS, "ClusterBaseModel")


def test_unknown_model_names_the_closest() -> None:
    api = served()
    api.lists[CBMS] = [f.cluster_base_model(n) for n in (CBM, "qwen3-8b", "mistral-7b")]
    api.lists[r.BASE_MODELS.path("team-a")] = [f.base_model("team-a", "llama-3-2-1b")]
    with pytest.raises(errors.NotFound) as caught:
        gather.find_model(api, gather.ModelLookup("llama-3-2-1b-instrct", "team-a", False))  # type: ignore[arg-type]
    assert caught.value.message.startswith(
        'model "llama-3-2-1b-instrct" not found (no ClusterBaseModel or BaseModel in '
        "namespace team-a): "
    )
    assert caught.value.hint == f"did you mean: {CBM}, llama-3-2-1b -n team-a?"


def test_unknown_model_when_ome_is_not_installed() -> None:
    api = FakeApi()  # no discovery document for ome.io
    with pytest.raises(errors.NotFound, match="OME is not installed"):
        gather.find_model(api, gather.ModelLookup("x", "default", False))  # type: ignore[arg-type]


def test_detail_reads_isvcs_of_a_base_model_in_its_namespace_only() -> None:
    api = served()
    api.objects[r.BASE_MODELS.path("team-a", "qwen")] = f.base_model("team-a", "qwen")
    sources = gather.gather_model(api, gather.ModelLookup("qwen", "team-a", True))  # type: ignore[arg-type]
    assert r.INFERENCE_SERVICES.path("team-a") in api.paths()
    assert ISVCS not in api.paths()
    (watch,) = [w for w in sources.watches if w.ref is r.BASE_MODELS]
    assert (watch.field_selector, watch.resource_version) == ("metadata.name=qwen", "7")


# -- watching ----------------------------------------------------------------------------------


def event(kind: str, name: str, rv: str, state: str = "Ready") -> Obj:
    model = f.cluster_base_model(name, state=state)
    model["metadata"]["resourceVersion"] = rv
    return {"type": kind, "object": model}


def gone() -> Obj:
    return {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}


def spec(rv: str = "100") -> gather.WatchSpec:
    return gather.WatchSpec(
        r.CLUSTER_BASE_MODELS, resource_version=rv, slim=gather.slim_model(ModelKind.CLUSTER)
    )


def run_follow(api: FakeApi, watch_spec: gather.WatchSpec) -> list[gather.Change]:
    seen: list[gather.Change] = []
    gather.follow(api, watch_spec, seen.append, timeout_seconds=5)  # type: ignore[arg-type]
    return seen


def watched_versions(api: FakeApi) -> list[Any]:
    return [q.get("resource_version") for _, q in api.requests if q.get("watch")]


def test_follow_rewatches_from_the_last_version_when_the_stream_closes() -> None:
    api = served()
    bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "130"}}}
    api.watches = [[event("ADDED", "a", "110"), event("MODIFIED", "a", "120")], [bookmark], []]
    seen = run_follow(api, spec())
    assert [(c.type, (c.obj or {}).get("metadata", {}).get("resourceVersion")) for c in seen] == [
        ("ADDED", "110"), ("MODIFIED", "120"), ("STOPPED", None),
    ]  # fmt: skip
    assert watched_versions(api) == ["100", "120", "130", "130"]
    assert "managedFields" not in (seen[0].obj or {}).get("metadata", {})


def test_follow_relists_after_410_gone_then_watches_from_the_list() -> None:
    api = served()
    api.lists[CBMS] = [f.cluster_base_model("a"), f.cluster_base_model("b")]
    api.resource_version = "500"
    api.watches = [[gone()], [event("DELETED", "b", "510")]]
    seen = run_follow(api, spec("1"))
    assert [c.type for c in seen] == ["RELISTED", "DELETED", "STOPPED"]
    assert [m["metadata"]["name"] for m in seen[0].items or []] == ["a", "b"]
    assert watched_versions(api) == ["1", "500", "510"]


def test_follow_relists_when_the_watch_is_refused_with_410() -> None:
    api = served()
    api.watches = [errors.ServerError("watch clusterbasemodels.ome.io failed: HTTP 410 Gone"), []]
    seen = run_follow(api, spec("1"))
    assert [c.type for c in seen] == ["RELISTED", "STOPPED"]


def test_forbidden_watch_stops_with_a_warning() -> None:
    api = served()
    api.watches = [errors.Forbidden("no")]
    (change,) = run_follow(api, spec())
    assert change.type == "STOPPED"
    assert change.message == (
        "cannot watch clusterbasemodels.ome.io (forbidden): ClusterBaseModels omitted"
    )


def test_settle_gathers_a_burst() -> None:
    import queue

    changes: queue.Queue[gather.Change] = queue.Queue()
    first = gather.Change(spec(), "ADDED")
    for _ in range(3):
        changes.put(gather.Change(spec(), "MODIFIED"))
    assert len(gather.settle(changes, first, window=0.05)) == 4
    assert changes.empty()


def test_the_shipped_cluster_role_covers_every_read() -> None:
    api = served()
    pvc_world(api, NATIVE_OPENAPI)
    path = f"{f.MODELS_ROOT}/meta/{CBM}"
    api.lists[CBMS].append(f.cluster_base_model("hostpath"))
    api.lists[ISVCS] = [f.inference_service("team-a", "llama", "hostpath")]
    api.lists[r.DEPLOYMENTS.path("team-a")] = [
        f.engine_deployment("llama", "hostpath", path, namespace="team-a")
    ]
    overview(api)
    granted = {
        (rule.group, resource)
        for rule in rbac.STATUS_RULES
        for resource in rule.resources
        if "list" in rule.verbs
    }
    only_in = {
        (rule.group, resource): rule.namespace
        for rule in rbac.STATUS_RULES
        for resource in rule.resources
        if rule.namespace is not None
    }
    read = set()
    for p in api.paths():
        if p.startswith("/openapi/") or p == "/apis/ome.io/v1beta1":
            continue  # discovery: open to every authenticated user
        parts = p.strip("/").split("/")
        group = "" if parts[0] == "api" else parts[1]
        read.add((group, parts[-1]))
        if (group, parts[-1]) in only_in:  # a Role's read: only in its namespace
            assert f"/namespaces/{only_in[group, parts[-1]]}/" in p, p
    assert {"jobs", "persistentvolumes", "deployments", "daemonsets"} <= {res for _, res in read}
    assert read <= granted
    role = gather.cluster_role()
    assert role["kind"] == "ClusterRole" and role["metadata"]["name"] == "kubectl-ome-pvc-status"
    assert {"apiGroups": ["ome.io"], "resources": ["clusterbasemodels", "basemodels"],
            "verbs": ["get", "list", "watch"]} in role["rules"]  # fmt: skip


# -- the watched state -----------------------------------------------------------------------------


def _change(ref: r.ResourceRef, kind: str, obj: Obj | None = None, **kw: Any) -> gather.Change:
    return gather.Change(gather.WatchSpec(ref), kind, obj=obj, **kw)


def test_watch_state_follows_models_and_configmaps() -> None:
    sources = gather.Sources(
        [f.cluster_base_model("a"), f.base_model("t", "b")],
        configmaps=[f.agent_configmap("n1", {})],
    )
    state = gather.WatchState.start(sources)
    cbms, bms, cms = r.CLUSTER_BASE_MODELS, r.BASE_MODELS, r.CONFIG_MAPS
    assert state.apply(_change(cbms, "MODIFIED", f.cluster_base_model("a", state="Ready"))) is None
    state.apply(_change(cbms, "ADDED", f.cluster_base_model("c")))
    state.apply(_change(bms, "DELETED", f.base_model("t", "b")))
    state.apply(_change(cms, "ADDED", f.agent_configmap("n2", {})))
    now = state.sources(sources)
    assert [(m["metadata"]["name"], m["status"]["state"]) for m in now.models] == [
        ("a", "Ready"), ("c", "In_Transit"),
    ]  # fmt: skip
    assert [c["metadata"]["name"] for c in now.configmaps or []] == ["n1", "n2"]
    # After 410 Gone the kind's whole list is replaced; other kinds stay.
    state.apply(_change(bms, "RELISTED", items=[f.base_model("t", "z")]))
    state.apply(_change(cbms, "RELISTED", items=[]))
    assert [m["metadata"]["name"] for m in state.sources(sources).models] == ["z"]
    warning = state.apply(_change(cms, "STOPPED", message="cannot watch configmaps"))
    assert warning == "cannot watch configmaps"


def test_watch_state_without_readable_configmaps_ignores_their_events() -> None:
    state = gather.WatchState.start(gather.Sources([f.cluster_base_model("a")]))
    state.apply(_change(r.CONFIG_MAPS, "ADDED", f.agent_configmap("n1", {})))
    assert state.configmaps is None


# -- the overview as a stream ------------------------------------------------------------------


def _wait_until(check: Any, seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_page_stream_reads_a_bounded_number_of_pages_ahead() -> None:
    api = served()
    api.lists[CBMS] = [f.cluster_base_model(f"m{i:02d}") for i in range(20)]
    pages = gather.PageStream(
        api,  # type: ignore[arg-type]
        r.CLUSTER_BASE_MODELS,
        slim=gather.slim_model(ModelKind.CLUSTER),
        page_size=2,
        depth=1,
    )
    pages.first()
    # one page in hand, one queued, one read and waiting for room: then it stops
    assert _wait_until(lambda: len(api.requests) == 3)
    time.sleep(0.05)
    assert len(api.requests) == 3
    names = [m["metadata"]["name"] for m in pages]
    assert names == [f"m{i:02d}" for i in range(20)]
    assert len(api.requests) == 10
    assert pages.resource_version == "100"


def test_page_stream_raises_a_later_pages_error_where_it_is_read() -> None:
    api = served()
    api.lists[CBMS] = [f.cluster_base_model(f"m{i}") for i in range(6)]
    request = api.request

    def failing(method: str, path: str, **kw: Any) -> Obj:
        if (kw.get("query") or {}).get("continue") == "4":
            raise errors.ServerError("the server is gone")
        return request(method, path, **kw)

    api.request = failing  # type: ignore[method-assign]
    pages = gather.PageStream(api, r.CLUSTER_BASE_MODELS, page_size=2)  # type: ignore[arg-type]
    seen = []
    with pytest.raises(errors.ServerError, match="the server is gone"):
        for model in pages:
            seen.append(model["metadata"]["name"])
    assert seen == ["m0", "m1", "m2", "m3"]


def test_page_stream_close_stops_the_reading_thread() -> None:
    api = served()
    api.lists[CBMS] = [f.cluster_base_model(f"m{i}") for i in range(10)]
    pages = gather.PageStream(api, r.CLUSTER_BASE_MODELS, page_size=1, depth=1)  # type: ignore[arg-type]
    pages.first()
    pages.close()

    def stopped() -> bool:
        return not any(t.name == "list-clusterbasemodels" for t in threading.enumerate())

    assert _wait_until(stopped)
    assert len(api.requests) < 10


def test_stream_overview_reads_what_every_status_needs_before_the_models() -> None:
    api = served()
    api.lists[CBMS] = [f.cluster_base_model(f"m{i}") for i in range(5)]
    api.lists[r.BASE_MODELS.path("default")] = [f.base_model("default", "b")]
    api.lists[NODES] = [f.node("n1")]
    api.lists[DSS] = [f.agent_daemonset()]
    with gather.stream_overview(api, kind=None, namespace="default") as stream:  # type: ignore[arg-type]
        assert {CMS, NODES, ISVCS, DSS} <= set(api.paths())
        assert [n["metadata"]["name"] for n in stream.sources.nodes or []] == ["n1"]
        assert stream.sources.agent_daemonset is not None
        assert stream.base_models == {("default", "b")}
        names = [(m["kind"], m["metadata"]["name"]) for m in stream.models()]
        sources = stream.finish()
    assert names == [*(("ClusterBaseModel", f"m{i}") for i in range(5)), ("BaseModel", "b")]
    assert sources.models == [] and sources.workloads == [] and sources.warnings == []
    assert sources.agent_daemonset is not None  # the models' paths are the agent's to fill
    assert [w.source for w in sources.watches] == ["clusterbasemodels", "basemodels", "configmaps"]


def test_forbidden_cluster_models_still_show_the_base_models() -> None:
    api = served()
    api.forbidden.add(CBMS)
    api.lists[r.BASE_MODELS.path("default")] = [f.base_model("default", "b")]
    sources = overview(api)
    assert [m["metadata"]["name"] for m in sources.models] == ["b"]
    assert sources.warnings == [
        "cannot list clusterbasemodels.ome.io (forbidden): ClusterBaseModels omitted"
    ]
    assert [w.source for w in sources.watches] == ["basemodels", "configmaps"]


def test_stream_overview_tunes_the_interpreter_and_restores_it() -> None:
    """A short GIL switch interval and no cyclic GC while it reads; both back after, also
    when the read fails."""
    api = served()
    api.lists[CBMS] = [f.cluster_base_model("m")]
    before = sys.getswitchinterval()
    assert gc.isenabled()
    with gather.stream_overview(api, kind=None, namespace="default") as stream:  # type: ignore[arg-type]
        assert sys.getswitchinterval() == min(before, gather.READ_AHEAD_SWITCH_INTERVAL)
        assert not gc.isenabled()
        list(stream.models())
        stream.finish()
    assert sys.getswitchinterval() == before
    assert gc.isenabled()
    api.missing.add(CBMS)
    with raises_exactly(errors.NotFound, match="OME is not installed"):
        gather.stream_overview(api, kind=None, namespace="default")  # type: ignore[arg-type]
    assert sys.getswitchinterval() == before
    assert gc.isenabled()
    gc.unfreeze()  # what the stream froze belongs to this test process, not to later tests


def test_slimming_an_isvc_keeps_only_the_plugins_record_of_its_annotations() -> None:
    isvc = f.inference_service("team-a", "llama", "m")
    isvc["metadata"]["annotations"] = {
        naming.ORIGINAL_ANNOTATION: '{"strategy": "isvc"}',
        "kubectl.kubernetes.io/last-applied-configuration": "x" * 1000,
    }
    assert gather.slim_isvc(isvc)["metadata"]["annotations"] == {
        naming.ORIGINAL_ANNOTATION: '{"strategy": "isvc"}'
    }
    assert "annotations" not in gather.slim_isvc(f.inference_service("a", "b", "m"))["metadata"]
