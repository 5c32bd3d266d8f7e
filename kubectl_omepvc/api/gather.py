"""The reads behind `kubectl ome-pvc status`: one paginated LIST per resource type, and watches.

Every source is read with at most one LIST (never one GET per model or node), pages are slimmed
to the fields `core.status` reads as they arrive (so a page's raw JSON is never held beside the
whole result), and independent LISTs run in parallel. A read the user may not make (403) becomes
one warning naming it and `None` for that source: `status` still shows what the model objects say.

What is read, and in which scope:
- ClusterBaseModels (cluster) and BaseModels (one namespace, or all); the detail view GETs its
  one model by name instead.
- model-agent ConfigMaps: namespace `ome`, label `models.ome/basemodel-status=true`.
- Nodes: all of them (node selection is evaluated client-side, as OME's agent does).
- InferenceServices: all namespaces when ClusterBaseModels are shown (any namespace may use one),
  else the BaseModels' namespace; if the cluster-wide LIST is forbidden, the current namespace.
- Deployments, LeaderWorkerSets and Knative Services labelled `ome.io/inferenceservice`, only when
  an InferenceService uses a listed model; in that namespace, or all when there are several.
- PersistentVolumeClaims and PersistentVolumes, only when a `pvc://` model is listed.
- the model-agent DaemonSet: the DaemonSets in `ome`, the one whose container takes
  `--models-root-dir` (else one named `*model-agent*`).
- newer OME only (model status with conditions): metadata-extraction Jobs, labelled
  `app.kubernetes.io/component=metadata-extraction` (OME's documented label), in the claims'
  namespaces. They are matched to a model by the claim they mount (see commands.status).

Only get/list/watch on the two model kinds are required; `core.rbac.STATUS_RULES` are the reads
above, as RBAC rules (`kubectl ome-pvc rbac` prints them as roles).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from kubectl_omepvc import errors
from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import agent, capabilities, naming, rbac, storage_uri
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.resources import ResourceRef
from kubectl_omepvc.core.storage_uri import StorageScheme

Obj = dict[str, Any]
Slim = Callable[[Obj], Obj]
T = TypeVar("T")

PAGE_SIZE = 500
# Nodes and agent ConfigMaps carry an entry per model each (labels, data keys): smaller pages
# keep the raw page, held while it is decoded and slimmed, small as models grow.
PER_NODE_PAGE_SIZE = 50
MAX_PARALLEL = 8
WORKLOAD_LABEL = "ome.io/inferenceservice"
METADATA_JOB_SELECTOR = "app.kubernetes.io/component=metadata-extraction"
# What each unreadable source costs the output (one warning line each).
CONSEQUENCES = {
    r.CLUSTER_BASE_MODELS.plural: "ClusterBaseModels omitted",
    r.BASE_MODELS.plural: "BaseModels omitted",
    r.CONFIG_MAPS.plural: "per-node progress omitted",
    r.NODES.plural: "node labels and node selection omitted",
    r.INFERENCE_SERVICES.plural: "InferenceServices using the models omitted",
    r.DEPLOYMENTS.plural: "serving workloads omitted",
    r.LEADER_WORKER_SETS.plural: "serving workloads omitted",
    r.KNATIVE_SERVICES.plural: "serving workloads omitted",
    r.DAEMON_SETS.plural: "the model-agent's host directory is not checked",
    r.PVCS.plural: "claim details omitted",
    r.PVS.plural: "the bound volume's node affinity omitted",
    r.JOBS.plural: "metadata Job state omitted",
}


# `--kind` values: which model kinds to show (None: both).
KIND_CLUSTER = "cluster"
KIND_NAMESPACED = "namespaced"


@dataclasses.dataclass
class Sources:
    """Everything `core.status.build_statuses` takes; `None`: not readable (see `warnings`)."""

    models: list[Obj]
    configmaps: list[Obj] | None = None
    nodes: list[Obj] | None = None
    inference_services: list[Obj] | None = None
    workloads: list[Obj] | None = None
    pvcs: list[Obj] | None = None
    pvs: list[Obj] | None = None
    agent_daemonset: Obj | None = None
    jobs: list[Obj] | None = None
    native_pvc: bool = False
    warnings: list[str] = dataclasses.field(default_factory=list)
    # What to watch from where the LISTs left off; empty when a source was not listed.
    watches: list[WatchSpec] = dataclasses.field(default_factory=list)

    def build_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `build_statuses` (besides `now` and `keep_node_rows`)."""
        return {
            "configmaps": self.configmaps,
            "nodes": self.nodes,
            "inference_services": self.inference_services,
            "workloads": self.workloads,
            "pvcs": self.pvcs,
            "pvs": self.pvs,
            "agent_daemonset": self.agent_daemonset,
            "native_pvc": self.native_pvc,
        }


def cluster_role(name: str = rbac.DEFAULT_NAME) -> Obj:
    """One ClusterRole with everything full `status` output reads (`core.rbac.STATUS_RULES`;
    `kubectl ome-pvc rbac` prints a tighter set: the `ome` namespace's reads as a Role)."""
    return rbac.cluster_role(name, rbac.STATUS_RULES)


# -- slimming: keep what core.status reads ----------------------------------------------------


def _meta(obj: Obj, *keys: str) -> Obj:
    meta = obj.get("metadata") or {}
    return {k: meta[k] for k in ("name", "namespace", "resourceVersion", *keys) if k in meta}


def slim_model(kind: ModelKind) -> Slim:
    def slim(obj: Obj) -> Obj:
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        return {
            "kind": kind.value,
            "metadata": _meta(obj, "creationTimestamp"),
            "spec": {k: spec[k] for k in ("storage", "disabled") if k in spec},
            "status": {
                k: status[k]
                for k in ("state", "nodesReady", "nodesFailed", "conditions")
                if k in status
            },
        }

    return slim


def slim_node(obj: Obj) -> Obj:
    return {"metadata": _meta(obj, "labels")}


def slim_configmap(obj: Obj) -> Obj:
    return {"metadata": _meta(obj), "data": obj.get("data") or {}}


def slim_isvc(obj: Obj) -> Obj:
    spec = obj.get("spec") or {}
    kept = {k: spec[k] for k in ("model", "baseModel") if k in spec}
    legacy = ((spec.get("predictor") or {}).get("model") or {}).get("baseModel")
    if legacy:
        kept["predictor"] = {"model": {"baseModel": legacy}}
    return {"metadata": _meta(obj, "uid"), "spec": kept}


def _slim_pod_template(template: Any) -> Obj:
    spec = (template or {}).get("spec") or {}
    return {"spec": {k: spec[k] for k in ("nodeSelector", "volumes") if k in spec}}


def slim_workload(kind: str) -> Slim:
    def slim(obj: Obj) -> Obj:
        spec = obj.get("spec") or {}
        out_spec: Obj = {k: spec[k] for k in ("replicas",) if k in spec}
        if "template" in spec:
            out_spec["template"] = _slim_pod_template(spec["template"])
        lwt = spec.get("leaderWorkerTemplate")
        if isinstance(lwt, Mapping):
            out_spec["leaderWorkerTemplate"] = {
                k: _slim_pod_template(lwt[k])
                for k in ("leaderTemplate", "workerTemplate")
                if k in lwt
            }
        status = obj.get("status") or {}
        return {
            "kind": kind,
            "metadata": _meta(obj, "labels", "annotations", "ownerReferences"),
            "spec": out_spec,
            "status": {k: status[k] for k in ("readyReplicas", "replicas") if k in status},
        }

    return slim


def slim_plain(obj: Obj) -> Obj:
    """Drop what no reader needs and costs the most: managed fields."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    return {**obj, "metadata": meta}


# -- reading -----------------------------------------------------------------------------------


@dataclasses.dataclass
class Listed:
    items: list[Obj]
    resource_version: str = ""


def list_objects(
    client: Client,
    ref: ResourceRef,
    namespace: str | None = None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
    slim: Slim = slim_plain,
    page_size: int = PAGE_SIZE,
) -> Listed:
    """Every item of one LIST, page by page, each item slimmed as its page arrives.

    Returns the list's resourceVersion too, so a watch can start where the LIST ended.
    """
    out = Listed([])
    token: str | None = None
    while True:
        page = client.request(
            "GET",
            ref.path(namespace),
            query={
                "limit": page_size,
                "continue": token,
                "labelSelector": label_selector,
                "fieldSelector": field_selector,
            },
            verb="list",
            resource=ref.display,
            namespace=namespace,
        )
        meta = page.get("metadata") or {}
        out.resource_version = out.resource_version or str(meta.get("resourceVersion") or "")
        out.items.extend(slim(item) for item in page.get("items") or ())
        del page
        token = meta.get("continue")
        if not token:
            return out


def _where(ref: ResourceRef, namespace: str | None) -> str:
    if not ref.namespaced:
        return ""
    return f" in namespace {namespace}" if namespace else " in all namespaces"


def forbidden_warning(verb: str, ref: ResourceRef, namespace: str | None) -> str:
    """`cannot list configmaps in namespace ome (forbidden): per-node progress omitted`."""
    consequence = CONSEQUENCES.get(ref.plural, "omitted")
    return f"cannot {verb} {ref.display}{_where(ref, namespace)} (forbidden): {consequence}"


class _Reader:
    """Runs reads in parallel; a forbidden read becomes a warning and None."""

    def __init__(self, client: Client, pool: ThreadPoolExecutor) -> None:
        self.client = client
        self.pool = pool
        self.warnings: list[str] = []
        self._lock = threading.Lock()

    def warn(self, message: str) -> None:
        with self._lock:
            if message not in self.warnings:
                self.warnings.append(message)

    def list(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        slim: Slim = slim_plain,
        not_served_is_empty: bool = False,
        warn: bool = True,
        page_size: int = PAGE_SIZE,
    ) -> Future[Listed | None]:
        def run() -> Listed | None:
            try:
                return list_objects(
                    self.client,
                    ref,
                    namespace,
                    label_selector=label_selector,
                    field_selector=field_selector,
                    slim=slim,
                    page_size=page_size,
                )
            except errors.Forbidden:
                if warn:
                    self.warn(forbidden_warning("list", ref, namespace))
                return None
            except errors.NotFound:
                if not_served_is_empty:  # an API group this cluster does not serve
                    return Listed([])
                raise

        return self.pool.submit(run)


def _items(listed: Listed | None) -> list[Obj] | None:
    return None if listed is None else listed.items


def _result(future: Future[T]) -> T:
    return future.result()


def _not_installed(client: Client) -> errors.PluginError:
    where = f' in context "{client.context}"' if client.context else ""
    return errors.NotFound(
        f"OME is not installed{where}: the server does not serve "
        f"{r.CLUSTER_BASE_MODELS.display}/{r.CLUSTER_BASE_MODELS.version}",
        "install OME's CRDs, or pick the cluster with --context",
    )


def ome_served(client: Client) -> bool:
    """Whether the server serves OME's model kinds (discovery: readable by every user)."""
    try:
        found = client.get_raw(f"/apis/{r.OME_GROUP}/{r.OME_VERSION}")
    except errors.NotFound:
        return False
    return r.CLUSTER_BASE_MODELS.plural in capabilities.resource_names(found)


def read_native_pvc(client: Client, models: Iterable[Obj], warn: Callable[[str], None]) -> bool:
    """Newer OME (model status has conditions): from the served schema, else from the models."""
    try:
        openapi = client.get_raw(f"/openapi/v3/apis/{r.OME_GROUP}/{r.OME_VERSION}")
        found = capabilities.status_has_conditions(openapi, r.CLUSTER_BASE_MODELS.kind)
        if found is not None:
            return found
    except errors.PluginError as exc:
        warn(f"cannot read OME's schema ({exc.message}): telling its generation from the models")
    return any("conditions" in (m.get("status") or {}) for m in models)


# -- the plan ----------------------------------------------------------------------------------


def _pvc_models(models: Iterable[Obj]) -> list[tuple[Obj, storage_uri.PvcUri]]:
    out = []
    for model in models:
        uri = ((model.get("spec") or {}).get("storage") or {}).get("storageUri")
        if not isinstance(uri, str) or storage_uri.scheme_of(uri) is not StorageScheme.PVC:
            continue
        try:
            out.append((model, storage_uri.parse_pvc_uri(uri)))
        except storage_uri.PvcUriError:
            continue  # core reports the parse error; there is no claim to read
    return out


def _claim_ref(model: Obj, uri: storage_uri.PvcUri) -> tuple[str, str] | None:
    """(namespace, claim) where OME looks for the claim, as core.status.claim_namespace."""
    if model.get("kind") == ModelKind.NAMESPACED.value:
        namespace = (model.get("metadata") or {}).get("namespace")
    else:
        namespace = uri.namespace
    return (namespace, uri.claim) if namespace else None


def _needs_agent_root(models: Iterable[Obj]) -> bool:
    for model in models:
        storage = (model.get("spec") or {}).get("storage") or {}
        scheme = storage_uri.scheme_of(storage.get("storageUri"))
        if storage.get("path") and (scheme.agent_downloads or scheme is StorageScheme.LOCAL):
            return True
    return False


def pick_agent_daemonset(daemonsets: Iterable[Obj], warn: Callable[[str], None]) -> Obj | None:
    """The one model-agent DaemonSet; with several, none (which one serves which node is not
    known here, so the host directory is not checked) and a warning."""
    found = agent.model_agents(daemonsets)
    if len(found) > 1:
        names = ", ".join(sorted(str((d.get("metadata") or {}).get("name")) for d in found))
        warn(
            f"{len(found)} model-agent DaemonSets in namespace {naming.AGENT_NAMESPACE} "
            f"({names}): the model-agent's host directory is not checked"
        )
        return None
    return found[0] if found else None


def _isvc_namespaces_using(isvcs: Iterable[Obj], models: Iterable[Obj]) -> set[str]:
    """Namespaces of the InferenceServices that may use a listed model (by name)."""
    names = {(m.get("metadata") or {}).get("name") for m in models}
    namespaces = set()
    for isvc in isvcs:
        spec = isvc.get("spec") or {}
        wanted = (
            (spec.get("model") or {}).get("name")
            or spec.get("baseModel")
            or ((spec.get("predictor") or {}).get("model") or {}).get("baseModel")
        )
        if wanted in names:
            namespaces.add((isvc.get("metadata") or {}).get("namespace") or "")
    return namespaces


def _one_or_all(namespaces: set[str]) -> str | None:
    """A LIST in the one namespace needed, else across all namespaces (still one LIST)."""
    return next(iter(namespaces)) if len(namespaces) == 1 else None


def _gather_rest(
    reader: _Reader,
    models: list[Obj],
    *,
    isvc_namespace: str | None,
    configmaps: Future[Listed | None],
    nodes: Future[Listed | None],
    isvcs: Future[Listed | None] | None,
    daemonsets: Future[Listed | None] | None,
    model_watches: list[WatchSpec],
) -> Sources:
    """Everything after the models: the reads that depend on what the models are."""
    client = reader.client
    sources = Sources(models)
    pvc_models = _pvc_models(models)
    native: Future[bool] | None = None
    if pvc_models:  # the generation only changes what is said about pvc:// models
        native = reader.pool.submit(read_native_pvc, client, models, reader.warn)
    claims = {ref for m, uri in pvc_models if (ref := _claim_ref(m, uri)) is not None}
    pvcs: Future[Listed | None] | None = None
    if claims:
        claim_ns = _one_or_all({ns for ns, _ in claims})
        names = {name for _, name in claims}
        pvcs = reader.list(
            r.PVCS,
            claim_ns,
            field_selector=f"metadata.name={next(iter(names))}" if len(names) == 1 else None,
        )

    services: list[Obj] | None = None
    if isvcs is not None:
        listed = _result(isvcs)
        if listed is None and isvc_namespace is None and client.namespace:
            # No cluster-wide access: the current namespace is better than nothing.
            listed = _result(
                reader.list(r.INFERENCE_SERVICES, client.namespace, slim=slim_isvc, warn=False)
            )
            if listed is not None:
                reader.warn(
                    f"cannot list {r.INFERENCE_SERVICES.display} in all namespaces (forbidden): "
                    f"only those of namespace {client.namespace} are shown"
                )
        if listed is None:
            reader.warn(forbidden_warning("list", r.INFERENCE_SERVICES, isvc_namespace))
        services = _items(listed)
    sources.inference_services = services
    workload_futures: list[Future[Listed | None]] = []
    used = _isvc_namespaces_using(services or (), models)
    if used:
        scope = _one_or_all(used)
        for workload_ref, served_optional in (
            (r.DEPLOYMENTS, False),
            (r.LEADER_WORKER_SETS, True),
            (r.KNATIVE_SERVICES, True),
        ):
            workload_futures.append(
                reader.list(
                    workload_ref,
                    scope,
                    label_selector=WORKLOAD_LABEL,
                    slim=slim_workload(workload_ref.kind),
                    not_served_is_empty=served_optional,
                )
            )

    sources.native_pvc = bool(native and native.result())
    jobs: Future[Listed | None] | None = None
    if sources.native_pvc and claims:
        jobs = reader.list(
            r.JOBS, _one_or_all({ns for ns, _ in claims}), label_selector=METADATA_JOB_SELECTOR
        )
    if pvcs is not None:
        sources.pvcs = _items(_result(pvcs))
        volumes = {v for p in sources.pvcs or () if (v := (p.get("spec") or {}).get("volumeName"))}
        if volumes:
            field = f"metadata.name={next(iter(volumes))}" if len(volumes) == 1 else None
            sources.pvs = _items(_result(reader.list(r.PVS, field_selector=field)))
        elif sources.pvcs is not None:
            sources.pvs = []
    if workload_futures:
        parts = [_result(f) for f in workload_futures]
        sources.workloads = (
            None
            if any(p is None for p in parts)
            else [w for p in parts if p is not None for w in p.items]
        )
    elif services is not None:
        sources.workloads = []
    if jobs is not None:
        sources.jobs = _items(_result(jobs))

    cms = _result(configmaps)
    sources.configmaps = _items(cms)
    sources.nodes = _items(_result(nodes))
    if daemonsets is not None:
        listed_ds = _result(daemonsets)
        sources.agent_daemonset = (
            None if listed_ds is None else pick_agent_daemonset(listed_ds.items, reader.warn)
        )
    sources.watches = list(model_watches)
    if cms is not None:
        sources.watches.append(
            WatchSpec(
                r.CONFIG_MAPS,
                naming.AGENT_NAMESPACE,
                label_selector=naming.AGENT_CONFIGMAP_LABEL_SELECTOR,
                resource_version=cms.resource_version,
                slim=slim_configmap,
            )
        )
    sources.warnings = sorted(reader.warnings)  # threads finish in any order
    return sources


def _start_common(
    reader: _Reader, want_agent: bool
) -> tuple[Future[Listed | None], Future[Listed | None], Future[Listed | None] | None]:
    configmaps = reader.list(
        r.CONFIG_MAPS,
        naming.AGENT_NAMESPACE,
        label_selector=naming.AGENT_CONFIGMAP_LABEL_SELECTOR,
        slim=slim_configmap,
        page_size=PER_NODE_PAGE_SIZE,
    )
    nodes = reader.list(r.NODES, slim=slim_node, page_size=PER_NODE_PAGE_SIZE)
    daemonsets = reader.list(r.DAEMON_SETS, naming.AGENT_NAMESPACE) if want_agent else None
    return configmaps, nodes, daemonsets


def gather_overview(
    client: Client,
    *,
    kind: str | None,
    namespace: str | None,
    label_selector: str | None = None,
) -> Sources:
    """The sources for the overview: models of `kind` (None: both) in `namespace` (None: all).

    Raises NotFound when OME is not installed, Forbidden when no model kind is readable.
    """
    with ThreadPoolExecutor(MAX_PARALLEL) as pool:
        reader = _Reader(client, pool)
        wanted: list[tuple[ResourceRef, ModelKind, str | None]] = []
        if kind != KIND_NAMESPACED:
            wanted.append((r.CLUSTER_BASE_MODELS, ModelKind.CLUSTER, None))
        if kind != KIND_CLUSTER:
            wanted.append((r.BASE_MODELS, ModelKind.NAMESPACED, namespace))
        futures = [
            (ref, ns, reader.list(ref, ns, label_selector=label_selector, slim=slim_model(mk)))
            for ref, mk, ns in wanted
        ]
        # Started before the models arrive: these do not depend on them.
        configmaps, nodes, daemonsets = _start_common(reader, want_agent=True)
        cluster_wide = kind != KIND_NAMESPACED or namespace is None
        isvc_namespace = None if cluster_wide else namespace
        isvcs = reader.list(r.INFERENCE_SERVICES, isvc_namespace, slim=slim_isvc, warn=False)

        models: list[Obj] = []
        watches: list[WatchSpec] = []
        readable = 0
        for ref, ns, future in futures:
            try:
                listed = future.result()
            except errors.NotFound:
                raise _not_installed(client) from None
            if listed is None:
                continue
            readable += 1
            models.extend(listed.items)
            model_kind = ModelKind.CLUSTER if ref is r.CLUSTER_BASE_MODELS else ModelKind.NAMESPACED
            watches.append(
                WatchSpec(
                    ref,
                    ns,
                    label_selector=label_selector,
                    resource_version=listed.resource_version,
                    slim=slim_model(model_kind),
                )
            )
        if not readable:
            ref, ns, _ = futures[0]
            raise errors.Forbidden(
                f"cannot list {ref.display}{_where(ref, ns)} (forbidden)",
                f"ask an admin for get/list/watch on {r.CLUSTER_BASE_MODELS.display} and "
                f"{r.BASE_MODELS.display}",
            )
        if not _needs_agent_root(models) and daemonsets is not None:
            daemonsets.cancel()
            daemonsets = None
        return _gather_rest(
            reader,
            models,
            isvc_namespace=isvc_namespace,
            configmaps=configmaps,
            nodes=nodes,
            isvcs=isvcs,
            daemonsets=daemonsets,
            model_watches=watches,
        )


@dataclasses.dataclass(frozen=True)
class ModelLookup:
    """Which model `status MODEL` shows (see `find_model` for the order)."""

    name: str
    namespace: str  # for a BaseModel
    namespace_explicit: bool  # -n was given
    kind: str | None = None  # --kind


def lookup_order(lookup: ModelLookup) -> list[tuple[ResourceRef, str | None]]:
    """Where to look, in order.

    With -n given: the BaseModel in that namespace, then the ClusterBaseModel. Without -n: the
    ClusterBaseModel, then a BaseModel in the context's namespace. --kind keeps one of the two.
    """
    cluster = (r.CLUSTER_BASE_MODELS, None)
    namespaced = (r.BASE_MODELS, lookup.namespace)
    order = [namespaced, cluster] if lookup.namespace_explicit else [cluster, namespaced]
    if lookup.kind == KIND_CLUSTER:
        return [cluster]
    if lookup.kind == KIND_NAMESPACED:
        return [namespaced]
    return order


def _close_names(client: Client, lookup: ModelLookup) -> list[str]:
    import difflib

    names: list[str] = []
    for ref, ns in lookup_order(lookup):
        try:
            for item in list_objects(client, ref, ns, slim=_meta_only).items:
                name = str((item.get("metadata") or {}).get("name") or "")
                names.append(name if ref is r.CLUSTER_BASE_MODELS else f"{name} -n {ns}")
        except errors.PluginError:
            continue
    plain = {n.split(" ")[0]: n for n in names}
    return [plain[n] for n in difflib.get_close_matches(lookup.name, list(plain), n=3)]


def _meta_only(obj: Obj) -> Obj:
    return {"metadata": _meta(obj)}


def find_model(client: Client, lookup: ModelLookup) -> tuple[Obj, ResourceRef, str | None]:
    """GET the one model; NotFound naming the closest names when it exists nowhere."""
    forbidden: errors.Forbidden | None = None
    for ref, ns in lookup_order(lookup):
        try:
            found = client.get_or_none(ref, lookup.name, ns)
        except errors.Forbidden as exc:
            forbidden = forbidden or exc
            continue
        if found is not None:
            kind = ModelKind.CLUSTER if ref is r.CLUSTER_BASE_MODELS else ModelKind.NAMESPACED
            return slim_model(kind)(found), ref, ns
    if not ome_served(client):
        raise _not_installed(client)
    if forbidden is not None:
        raise forbidden
    where = " or ".join(
        "ClusterBaseModel" if ref is r.CLUSTER_BASE_MODELS else f"BaseModel in namespace {ns}"
        for ref, ns in lookup_order(lookup)
    )
    close = _close_names(client, lookup)
    raise errors.NotFound(
        f'model "{lookup.name}" not found (no {where})',
        f"did you mean: {', '.join(close)}?"
        if close
        else "list the models with `kubectl ome-pvc status -A`",
    )


def gather_model(client: Client, lookup: ModelLookup) -> Sources:
    """The sources for the detail view of one model."""
    model, ref, ns = find_model(client, lookup)
    name = lookup.name
    with ThreadPoolExecutor(MAX_PARALLEL) as pool:
        reader = _Reader(client, pool)
        configmaps, nodes, daemonsets = _start_common(reader, want_agent=_needs_agent_root([model]))
        # A BaseModel is used only in its own namespace; a ClusterBaseModel from any.
        isvc_namespace = ns if ref is r.BASE_MODELS else None
        isvcs = reader.list(r.INFERENCE_SERVICES, isvc_namespace, slim=slim_isvc, warn=False)
        kind = ModelKind.CLUSTER if ref is r.CLUSTER_BASE_MODELS else ModelKind.NAMESPACED
        watch = WatchSpec(
            ref,
            ns,
            field_selector=f"metadata.name={name}",
            resource_version=str((model.get("metadata") or {}).get("resourceVersion") or ""),
            slim=slim_model(kind),
        )
        return _gather_rest(
            reader,
            [model],
            isvc_namespace=isvc_namespace,
            configmaps=configmaps,
            nodes=nodes,
            isvcs=isvcs,
            daemonsets=daemonsets,
            model_watches=[watch],
        )


# -- watching ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WatchSpec:
    """One resource to follow, from where its LIST (or GET) left off."""

    ref: ResourceRef
    namespace: str | None = None
    label_selector: str | None = None
    field_selector: str | None = None
    resource_version: str = ""
    slim: Slim = slim_plain

    @property
    def source(self) -> str:
        return self.ref.plural


@dataclasses.dataclass(frozen=True)
class Change:
    """What a watch reports: an object event, a fresh list after 410 Gone, or a failure.

    `type`: ADDED, MODIFIED, DELETED (with `obj`), RELISTED (with `items`: the whole new list),
    STOPPED (with `message`: the watch cannot go on).
    """

    spec: WatchSpec
    type: str
    obj: Obj | None = None
    items: list[Obj] | None = None
    message: str | None = None


# -- the watched state --------------------------------------------------------------------------


def model_key(obj: Obj) -> tuple[int, str, str]:
    """Overview order: ClusterBaseModels first, then BaseModels by namespace and name."""
    meta = obj.get("metadata") or {}
    cluster = obj.get("kind") == "ClusterBaseModel"
    return (0 if cluster else 1, "" if cluster else str(meta.get("namespace")), str(meta["name"]))


@dataclasses.dataclass
class WatchState:
    """The watched objects, updated in place by the changes the watches report."""

    models: dict[tuple[int, str, str], dict[str, Any]]
    configmaps: dict[str, dict[str, Any]] | None

    @classmethod
    def start(cls, sources: Sources) -> WatchState:
        models = {model_key(m): m for m in sources.models}
        cms = sources.configmaps
        return cls(models, None if cms is None else {c["metadata"]["name"]: c for c in cms})

    def apply(self, change: Change) -> str | None:
        """Apply one change; returns a warning to print, if any."""
        if change.type == "STOPPED":
            return change.message
        is_cm = change.spec.ref.plural == "configmaps"
        if is_cm and self.configmaps is None:
            return None
        if change.type == "RELISTED":
            if is_cm:
                self.configmaps = {c["metadata"]["name"]: c for c in change.items or ()}
            else:
                kind = change.spec.ref.kind
                self.models = {k: m for k, m in self.models.items() if m.get("kind") != kind}
                self.models.update((model_key(m), m) for m in change.items or ())
            return None
        obj = change.obj or {}
        if is_cm:
            assert self.configmaps is not None
            name = str((obj.get("metadata") or {}).get("name"))
            if change.type == "DELETED":
                self.configmaps.pop(name, None)
            else:
                self.configmaps[name] = obj
        elif change.type == "DELETED":
            self.models.pop(model_key(obj), None)
        else:
            self.models[model_key(obj)] = obj
        return None

    def sources(self, base: Sources) -> Sources:
        return dataclasses.replace(
            base,
            models=[self.models[k] for k in sorted(self.models)],
            configmaps=None if self.configmaps is None else list(self.configmaps.values()),
        )


class Gone(Exception):
    """The server no longer has the resourceVersion we watch from (410)."""


RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)


def follow(
    client: Client,
    spec: WatchSpec,
    emit: Callable[[Change], None],
    *,
    timeout_seconds: int = 300,
    stop: threading.Event | None = None,
    log: Callable[[str], None] | None = None,
) -> None:
    """Stream one resource's changes until `stop` is set (or for good, in a daemon thread).

    When the server closes the stream (its timeoutSeconds, a restart), watch again from the last
    resourceVersion seen (bookmarks included); on 410 Gone, LIST again (RELISTED) and watch from
    there. A forbidden watch ends with STOPPED; a lost connection is retried with a back-off.
    """
    stop = stop or threading.Event()
    version = spec.resource_version
    relist = not version
    failures = 0
    while not stop.is_set():
        try:
            if relist:
                listed = list_objects(
                    client,
                    spec.ref,
                    spec.namespace,
                    label_selector=spec.label_selector,
                    field_selector=spec.field_selector,
                    slim=spec.slim,
                )
                version, relist = listed.resource_version, False
                emit(Change(spec, "RELISTED", items=listed.items))
            for event in client.watch(
                spec.ref,
                spec.namespace,
                resource_version=version,
                label_selector=spec.label_selector,
                field_selector=spec.field_selector,
                timeout_seconds=timeout_seconds,
            ):
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise errors.ServerError(f"watch error: {obj.get('message') or obj}")
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                failures = 0
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    emit(Change(spec, str(kind), obj=spec.slim(obj)))
            if log:
                log(f"watch of {spec.source} closed by the server; resuming at {version}")
        except Gone:
            relist = True
            if log:
                log(f"watch of {spec.source} expired (410 Gone); listing again")
        except errors.Forbidden:
            verb = "list" if relist else "watch"
            message = forbidden_warning(verb, spec.ref, spec.namespace)
            emit(Change(spec, "STOPPED", message=message))
            return
        except errors.PluginError as exc:
            if "HTTP 410" in exc.message:  # refused before streaming
                relist = True
                continue
            delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
            failures += 1
            if log:
                log(f"watch of {spec.source} failed ({exc.message}); retrying in {delay:g}s")
            if stop.wait(delay):
                return


def start_watches(
    client: Client,
    specs: Iterable[WatchSpec],
    *,
    timeout_seconds: int = 300,
    log: Callable[[str], None] | None = None,
) -> queue.Queue[Change]:
    """One daemon thread per spec, all feeding one queue (the caller blocks on it)."""
    changes: queue.Queue[Change] = queue.Queue()
    for spec in specs:
        threading.Thread(
            target=follow,
            args=(client, spec, changes.put),
            kwargs={"timeout_seconds": timeout_seconds, "log": log},
            name=f"watch-{spec.source}",
            daemon=True,
        ).start()
    return changes


def settle(changes: queue.Queue[Change], first: Change, window: float = 0.15) -> list[Change]:
    """`first` and whatever arrives within `window` seconds: one re-render per burst."""
    batch = [first]
    deadline = time.monotonic() + window
    while (left := deadline - time.monotonic()) > 0:
        try:
            batch.append(changes.get(timeout=left))
        except queue.Empty:
            break
    return batch
