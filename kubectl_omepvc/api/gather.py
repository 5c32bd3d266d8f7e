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
- newer OME only (model status with conditions): the metadata-extraction Jobs and their pods,
  by OME's label `models.ome/model-name`, in the claims' namespaces, and OME's per-model status
  ConfigMaps (label `models.ome/pvc-status=true`) in namespace `ome`; matched to a model by
  OME's labels and names (see core.metadata_jobs).

Only get/list/watch on the two model kinds are required; `core.rbac.STATUS_RULES` are the reads
above, as RBAC rules (`kubectl ome-pvc rbac` prints them as roles).
"""

from __future__ import annotations

import dataclasses
import gc
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, TypeVar

from kubectl_omepvc import errors
from kubectl_omepvc.api.client import JSON, METADATA_LIST, Client
from kubectl_omepvc.core import agent, capabilities, generation, metadata_jobs, naming, storage_uri
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.resources import ResourceRef
from kubectl_omepvc.core.storage_uri import StorageScheme

Obj = dict[str, Any]
Slim = Callable[[Obj], Obj]
T = TypeVar("T")

PAGE_SIZE = 500
# Nodes and agent ConfigMaps carry an entry per model each (labels, data keys). Every status
# waits for both lists, so each extra page is a round trip everyone waits for: at 100, 200
# nodes took three requests each and status 20 ms longer than with one. A page of 500 such
# objects with 100 models each is about 7 MB of JSON, decoded and slimmed one page at a time.
PER_NODE_PAGE_SIZE = 500
MAX_PARALLEL = 8
# Model pages read ahead of the build (see PageStream): enough to hide the server's latency.
PAGES_AHEAD = 2
# While a thread reads pages and the main thread builds, the reader needs the GIL after every
# chunk of the response; at CPython's default (5 ms) a busy builder keeps it waiting that long
# each time, and a 600 KB page took 0.5 s instead of 30 ms. 0.5 ms keeps the reads at speed.
READ_AHEAD_SWITCH_INTERVAL = 0.0005
WORKLOAD_LABEL = naming.ISVC_LABEL
METADATA_JOB_SELECTOR = metadata_jobs.JOB_SELECTOR
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
    r.PODS.plural: "metadata Job pods' failure reasons omitted",
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
    job_pods: list[Obj] | None = None
    pvc_status_configmaps: list[Obj] | None = None
    native_pvc: bool = False
    warnings: list[str] = dataclasses.field(default_factory=list)
    # What to watch from where the LISTs left off; empty when a source was not listed.
    watches: list[WatchSpec] = dataclasses.field(default_factory=list)

    @property
    def metadata(self) -> metadata_jobs.MetadataSources:
        """What `status` shows of OME's metadata Jobs."""
        return metadata_jobs.MetadataSources(self.jobs, self.job_pods, self.pvc_status_configmaps)

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


def cluster_role(name: str | None = None) -> Obj:
    """One ClusterRole with everything full `status` output reads (`core.rbac.STATUS_RULES`;
    `kubectl ome-pvc rbac` prints a tighter set: the `ome` namespace's reads as a Role).
    `name`: `core.rbac.DEFAULT_NAME` unless given."""
    from kubectl_omepvc.core import rbac  # not needed by `status` itself: keep start-up short

    return rbac.cluster_role(name or rbac.DEFAULT_NAME, rbac.STATUS_RULES)


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
    meta = _meta(obj, "uid")
    # Only the plugin's record: it tells which route (native, isvc) switched the isvc.
    record = ((obj.get("metadata") or {}).get("annotations") or {}).get(naming.ORIGINAL_ANNOTATION)
    if record is not None:
        meta["annotations"] = {naming.ORIGINAL_ANNOTATION: record}
    return {"metadata": meta, "spec": kept}


def _slim_pod_template(template: Any) -> Obj:
    spec = (template or {}).get("spec") or {}
    slim: Obj = {"spec": {k: spec[k] for k in ("nodeSelector", "volumes") if k in spec}}
    mark = (((template or {}).get("metadata") or {}).get("annotations") or {}).get(
        naming.STRATEGY_ANNOTATION
    )
    if mark is not None:
        slim["metadata"] = {"annotations": {naming.STRATEGY_ANNOTATION: mark}}
    return slim


# What `core.rollout.rollout_of` reads of a workload's status.
ROLLOUT_STATUS = (
    "readyReplicas",
    "replicas",
    "updatedReplicas",
    "availableReplicas",
    "terminatingReplicas",
    "observedGeneration",
    "conditions",
)


def slim_workload(kind: str) -> Slim:
    def slim(obj: Obj) -> Obj:
        spec = obj.get("spec") or {}
        out_spec: Obj = {k: spec[k] for k in ("replicas", "selector") if k in spec}
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
            "metadata": _meta(obj, "labels", "annotations", "ownerReferences", "generation"),
            "spec": out_spec,
            "status": {k: status[k] for k in ROLLOUT_STATUS if k in status},
        }

    return slim


def _as_listed(obj: Obj) -> Obj:
    return obj


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


def list_pages(
    client: Client,
    ref: ResourceRef,
    namespace: str | None = None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
    slim: Slim = slim_plain,
    page_size: int = PAGE_SIZE,
    accept: str = JSON,
) -> Iterator[tuple[list[Obj], str]]:
    """One LIST, page by page: (the page's items slimmed, the list's resourceVersion)."""
    version = ""
    for page in client.pages(
        ref, namespace, label_selector=label_selector, field_selector=field_selector,
        page_size=page_size, accept=accept,
    ):  # fmt: skip
        meta = page.get("metadata") or {}
        version = version or str(meta.get("resourceVersion") or "")
        items = [slim(item) for item in page.get("items") or ()]
        del page  # the raw page is dropped before the next arrives: memory stays flat
        yield items, version


def list_objects(
    client: Client,
    ref: ResourceRef,
    namespace: str | None = None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
    slim: Slim = slim_plain,
    page_size: int = PAGE_SIZE,
    accept: str = JSON,
) -> Listed:
    """Every item of one LIST, page by page, each item slimmed as its page arrives.

    Returns the list's resourceVersion too, so a watch can start where the LIST ended.
    """
    out = Listed([])
    for items, version in list_pages(
        client,
        ref,
        namespace,
        label_selector=label_selector,
        field_selector=field_selector,
        slim=slim,
        page_size=page_size,
        accept=accept,
    ):
        out.items.extend(items)
        out.resource_version = version
    return out


class PageStream:
    """One LIST read ahead on a daemon thread: its pages wait in a bounded queue, so the reader
    works on one page while the next ones load, and memory holds at most `depth` + 2 pages.

    `first()` waits for the first page (raising what the LIST raised, e.g. Forbidden);
    iterating yields every item; an error on a later page is raised there. `close()` stops
    the thread (a reader that gives up early must call it).
    """

    def __init__(
        self,
        client: Client,
        ref: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        slim: Slim = slim_plain,
        page_size: int = PAGE_SIZE,
        depth: int = PAGES_AHEAD,
    ) -> None:
        self.ref = ref
        self.namespace = namespace
        self.resource_version = ""
        self._queue: queue.Queue[list[Obj] | Exception | None] = queue.Queue(depth)
        self._stop = threading.Event()
        self._head: list[Obj] | None = None
        self._done = False
        pages = list_pages(
            client, ref, namespace, label_selector=label_selector, slim=slim, page_size=page_size
        )
        threading.Thread(
            target=self._run, args=(pages,), name=f"list-{ref.plural}", daemon=True
        ).start()

    def _run(self, pages: Iterator[tuple[list[Obj], str]]) -> None:
        try:
            for items, version in pages:
                self.resource_version = version
                if not self._put(items):
                    return
        except Exception as exc:  # handed to the reader, raised in its thread
            self._put(exc)
            return
        self._put(None)

    def _put(self, item: list[Obj] | Exception | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _next_page(self) -> list[Obj] | None:
        if self._done:
            return None
        item = self._queue.get()
        if isinstance(item, Exception):
            self._done = True
            raise item
        if item is None:
            self._done = True
        return item

    def first(self) -> None:
        """Wait for the first page; raises what the LIST raised."""
        if self._head is None:
            self._head = self._next_page() or []

    def __iter__(self) -> Iterator[Obj]:
        self.first()
        page, self._head = self._head or [], []
        while True:
            yield from page
            del page[:]  # the page is done with: free it before waiting for the next
            next_page = self._next_page()
            if next_page is None:
                return
            page = next_page

    def close(self) -> None:
        self._stop.set()


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
        accept: str = JSON,
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
                    accept=accept,
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


def read_native_pvc(client: Client, models: Iterable[Obj]) -> generation.Verdict:
    """Newer OME (model status has conditions): from the served schema, else from the models;
    the verdict names its basis (`decide_generation` says it when it is not the schema)."""
    try:
        openapi = client.get_raw(f"/openapi/v3/apis/{r.OME_GROUP}/{r.OME_VERSION}")
        schema = generation.from_schema(openapi, r.CLUSTER_BASE_MODELS.kind)
    except errors.PluginError as exc:
        schema = generation.Verdict(None, f"OME's schema is not readable ({exc.message})")
    if schema.native_pvc is not None:
        return generation.decide(schema)
    return generation.decide(schema, generation.from_models(models, datetime.now(timezone.utc)))


def decide_generation(
    verdict: generation.Verdict,
    models: Iterable[Obj],
    workloads: Callable[[], list[Obj] | None],
    warn: Callable[[str], None],
) -> bool:
    """The schema's or the models' verdict, else the workloads' (read only then); a warning
    says what it rests on when the schema could not tell."""
    if verdict.basis.startswith(generation.SCHEMA_BASIS):
        return bool(verdict.native_pvc)
    if verdict.native_pvc is not None:
        warn(f"OME's generation told from the objects: {verdict.basis}")
        return verdict.native_pvc
    found = generation.from_workloads(models, workloads() or ())
    if found is not None:
        warn(f"OME's generation told from the objects: {verdict.basis}; {found.basis}")
        return found.native_pvc is True
    warn(f"cannot tell OME's generation ({verdict.basis}): pvc:// models are described as on "
         "released OME")  # fmt: skip
    return False


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


def _isvc_namespaces_using(isvcs: Iterable[Obj], names: set[Any]) -> set[str]:
    """Namespaces of the InferenceServices that may use a listed model (`names`: theirs)."""
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


class _ModelFacts:
    """What the reads after the models need to know of them, noted as each model goes by (so
    the models themselves need not be kept)."""

    def __init__(self) -> None:
        self.names: set[Any] = set()
        self.pvc_models: list[tuple[Obj, storage_uri.PvcUri]] = []
        self.with_conditions: list[Obj] = []  # the first model whose status has conditions
        self.needs_agent_root = False

    def note(self, model: Obj) -> None:
        self.names.add((model.get("metadata") or {}).get("name"))
        self.pvc_models.extend(_pvc_models((model,)))
        if not self.with_conditions and "conditions" in (model.get("status") or {}):
            self.with_conditions.append(model)
        if not self.needs_agent_root:
            self.needs_agent_root = _needs_agent_root((model,))


@dataclasses.dataclass
class _Early:
    """The reads every status needs, done before the models are built."""

    configmaps: Listed | None
    nodes: Listed | None
    services: list[Obj] | None
    daemonsets: Listed | None  # None: not read, or not readable


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
    # Node labels are all status reads of a node: its metadata alone, without the status.
    nodes = reader.list(r.NODES, slim=slim_node, page_size=PER_NODE_PAGE_SIZE, accept=METADATA_LIST)
    daemonsets = reader.list(r.DAEMON_SETS, naming.AGENT_NAMESPACE) if want_agent else None
    return configmaps, nodes, daemonsets


def _resolve_isvcs(
    reader: _Reader, isvcs: Future[Listed | None], isvc_namespace: str | None
) -> list[Obj] | None:
    client = reader.client
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
    return _items(listed)


def _read_early(
    reader: _Reader, *, want_agent: bool, isvc_namespace: str | None
) -> Callable[[], _Early]:
    """Start the reads every status needs; the function returned waits for them.

    InferenceServices in `isvc_namespace`; None: in all namespaces, or in the current one
    when that is forbidden.
    """
    configmaps, nodes, daemonsets = _start_common(reader, want_agent)
    isvcs = reader.list(r.INFERENCE_SERVICES, isvc_namespace, slim=slim_isvc, warn=False)

    def wait() -> _Early:
        return _Early(
            configmaps=_result(configmaps),
            nodes=_result(nodes),
            services=_resolve_isvcs(reader, isvcs, isvc_namespace),
            daemonsets=None if daemonsets is None else _result(daemonsets),
        )

    return wait


def _early_sources(early: _Early) -> Sources:
    """What a status needs before any model (the agent DaemonSet without its warning)."""
    return Sources(
        [],
        configmaps=_items(early.configmaps),
        nodes=_items(early.nodes),
        inference_services=early.services,
        agent_daemonset=(
            None
            if early.daemonsets is None
            else pick_agent_daemonset(early.daemonsets.items, _quiet)
        ),
    )


def _quiet(message: str) -> None:
    del message


def _gather_rest(
    reader: _Reader,
    facts: _ModelFacts,
    early: _Early,
    *,
    model_watches: list[WatchSpec],
) -> Sources:
    """Everything after the models: the reads that depend on what the models are (the Sources
    returned have no models)."""
    client = reader.client
    sources = Sources([])
    pvc_models = facts.pvc_models
    native: Future[generation.Verdict] | None = None
    if pvc_models:  # the generation only changes what is said about pvc:// models
        witnesses = facts.with_conditions + [m for m, _ in pvc_models]
        native = reader.pool.submit(read_native_pvc, client, witnesses)
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

    services = early.services
    sources.inference_services = services
    workload_futures: list[Future[Listed | None]] = []
    used = _isvc_namespaces_using(services or (), facts.names)
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

    def workloads() -> list[Obj] | None:
        if workload_futures:
            parts = [_result(f) for f in workload_futures]
            if all(p is not None for p in parts):
                return [w for p in parts if p is not None for w in p.items]
            return None
        return None if services is None else []

    if native is not None:
        pvc_objects = [m for m, _ in pvc_models]
        sources.native_pvc = decide_generation(native.result(), pvc_objects, workloads, reader.warn)
    jobs: Future[Listed | None] | None = None
    job_pods: Future[Listed | None] | None = None
    status_cms: Future[Listed | None] | None = None
    if sources.native_pvc and claims:
        job_ns = _one_or_all({ns for ns, _ in claims})
        jobs = reader.list(r.JOBS, job_ns, label_selector=METADATA_JOB_SELECTOR)
        job_pods = reader.list(r.PODS, job_ns, label_selector=METADATA_JOB_SELECTOR)
        status_cms = reader.list(
            r.CONFIG_MAPS,
            naming.AGENT_NAMESPACE,
            label_selector=metadata_jobs.STATUS_CONFIGMAP_SELECTOR,
        )
    if pvcs is not None:
        sources.pvcs = _items(_result(pvcs))
        volumes = {v for p in sources.pvcs or () if (v := (p.get("spec") or {}).get("volumeName"))}
        if volumes:
            field = f"metadata.name={next(iter(volumes))}" if len(volumes) == 1 else None
            sources.pvs = _items(_result(reader.list(r.PVS, field_selector=field)))
        elif sources.pvcs is not None:
            sources.pvs = []
    sources.workloads = workloads()
    if jobs is not None:
        sources.jobs = _items(_result(jobs))
    if job_pods is not None:
        sources.job_pods = _items(_result(job_pods))
    if status_cms is not None:
        sources.pvc_status_configmaps = _items(_result(status_cms))

    cms = early.configmaps
    sources.configmaps = _items(cms)
    sources.nodes = _items(early.nodes)
    # Read either way (it is one small LIST, started before the models were known); used, and
    # its ambiguity reported, only when a model's path is downloaded by the agent.
    if early.daemonsets is not None and facts.needs_agent_root:
        sources.agent_daemonset = pick_agent_daemonset(early.daemonsets.items, reader.warn)
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


class _BulkReadTuning:
    """Interpreter settings for the overview's reads and build, until `restore()`:

    - a shorter GIL switch interval (READ_AHEAD_SWITCH_INTERVAL: the page readers keep pace);
    - no cyclic garbage collection. At 2,000 models the reads and the build allocate about a
      million dicts and lists that all live until the report is printed; the collector, run
      every 700 allocations, walked them again and again (70 ms of a 560 ms run). Reference
      counting still frees everything dropped. `restore()` freezes what is left (the report,
      the kept models) out of the collector's reach before turning it on again: else its first
      run would walk all of it once more.
    """

    def __init__(self) -> None:
        self._interval = sys.getswitchinterval()
        self._collecting = gc.isenabled()
        sys.setswitchinterval(min(self._interval, READ_AHEAD_SWITCH_INTERVAL))
        gc.disable()

    def restore(self) -> None:
        sys.setswitchinterval(self._interval)
        if self._collecting and not gc.isenabled():
            gc.freeze()
            gc.enable()


class OverviewStream:
    """The overview's reads while the ClusterBaseModels still arrive (see `stream_overview`).

    - `sources`: what building any status needs (agent ConfigMaps, nodes, InferenceServices,
      the agent DaemonSet), read already; no models, no warnings yet.
    - `base_models`: (namespace, name) of the BaseModels listed (`core.status.base_model_keys`).
    - `models()`: the models, once, in overview order (ClusterBaseModels as their pages arrive,
      then BaseModels); `note` sees each.
    - `finish()`, after `models()` is exhausted: the reads that depend on the models (workloads,
      claims, volumes, OME's generation, metadata Jobs), then the complete Sources without the
      models, warnings and watches included.
    Use it as a context manager: leaving early stops the reads.
    """

    def __init__(
        self,
        reader: _Reader,
        early: _Early,
        streams: list[tuple[WatchSpec, PageStream | Listed]],
        tuning: _BulkReadTuning,
    ) -> None:
        self._reader = reader
        self._early = early
        self._streams = streams
        self._tuning = tuning
        self._facts = _ModelFacts()
        self.sources = _early_sources(early)
        self.base_models = {
            (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
            for _, listed in streams
            if isinstance(listed, Listed)
            for meta in (m.get("metadata") or {} for m in listed.items)
        }

    def models(self) -> Iterator[Obj]:
        note = self._facts.note
        for _, source in self._streams:
            for model in source if isinstance(source, PageStream) else source.items:
                note(model)
                yield model

    def finish(self) -> Sources:
        watches = [
            dataclasses.replace(
                spec,
                resource_version=source.resource_version,
            )
            for spec, source in self._streams
        ]
        try:
            return _gather_rest(self._reader, self._facts, self._early, model_watches=watches)
        finally:
            self.close()

    def collect(self) -> Sources:
        """Every model and then `finish()`: the Sources `gather_overview` returns."""
        models = list(self.models())
        sources = self.finish()
        sources.models = models
        return sources

    def close(self) -> None:
        for _, source in self._streams:
            if isinstance(source, PageStream):
                source.close()
        self._reader.pool.shutdown(wait=False, cancel_futures=True)
        self._tuning.restore()

    def __enter__(self) -> OverviewStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _load_builder() -> None:
    """Import what builds the statuses while the reads are in flight: the build needs it as
    soon as they are done, and an import then would be 15 ms more to wait."""
    from kubectl_omepvc.core import diagnoses, status

    del diagnoses, status


def stream_overview(
    client: Client,
    *,
    kind: str | None,
    namespace: str | None,
    label_selector: str | None = None,
    slim_models: bool = True,
) -> OverviewStream:
    """The overview's reads, all started at once: models of `kind` (None: both) in `namespace`
    (None: all). Returns when everything but the ClusterBaseModels' later pages is read.

    `slim_models=False`: the ClusterBaseModels come as listed, for a reader that keeps none of
    them (slimming is for models held, as `--watch` holds them; else it only costs time).

    The ClusterBaseModels are read ahead on a thread (`PageStream`), so the caller builds each
    page while the next loads; the BaseModels (one namespace, usually few; all of them are
    needed to resolve legacy `baseModel` references) are read whole. What depends on the
    models (workloads, claims, volumes, metadata Jobs) is read in `finish()`, from what
    `models()` saw: claims and volumes only when a `pvc://` model is listed, then by name or
    in the one namespace needed, so no model waits for them and no cluster-wide PVC list is
    made for nothing.

    Raises NotFound when OME is not installed, Forbidden when no model kind is readable.
    """
    pool = ThreadPoolExecutor(MAX_PARALLEL)
    reader = _Reader(client, pool)
    cluster: PageStream | None = None
    tuning = _BulkReadTuning()  # restored by close()
    try:
        if kind != KIND_NAMESPACED:  # first: its pages are the longest chain of requests
            cluster = PageStream(
                client,
                r.CLUSTER_BASE_MODELS,
                label_selector=label_selector,
                slim=slim_model(ModelKind.CLUSTER) if slim_models else _as_listed,
            )
        base = None
        if kind != KIND_CLUSTER:
            base = reader.list(
                r.BASE_MODELS,
                namespace,
                label_selector=label_selector,
                slim=slim_model(ModelKind.NAMESPACED),
            )
        cluster_wide = kind != KIND_NAMESPACED or namespace is None
        isvc_namespace = None if cluster_wide else namespace
        wait_early = _read_early(reader, want_agent=True, isvc_namespace=isvc_namespace)
        _load_builder()

        streams: list[tuple[WatchSpec, PageStream | Listed]] = []
        first: tuple[ResourceRef, str | None] | None = None
        if cluster is not None:
            first = first or (r.CLUSTER_BASE_MODELS, None)
            try:
                cluster.first()
                spec = WatchSpec(
                    r.CLUSTER_BASE_MODELS,
                    None,
                    label_selector=label_selector,
                    slim=slim_model(ModelKind.CLUSTER),
                )
                streams.append((spec, cluster))
            except errors.Forbidden:
                reader.warn(forbidden_warning("list", r.CLUSTER_BASE_MODELS, None))
            except errors.NotFound:
                raise _not_installed(client) from None
        if base is not None:
            first = first or (r.BASE_MODELS, namespace)
            try:
                listed = base.result()
            except errors.NotFound:
                raise _not_installed(client) from None
            if listed is not None:
                spec = WatchSpec(
                    r.BASE_MODELS,
                    namespace,
                    label_selector=label_selector,
                    slim=slim_model(ModelKind.NAMESPACED),
                )
                streams.append((spec, listed))
        if not streams:
            assert first is not None
            ref, ns = first
            raise errors.Forbidden(
                f"cannot list {ref.display}{_where(ref, ns)} (forbidden)",
                f"ask an admin for get/list/watch on {r.CLUSTER_BASE_MODELS.display} and "
                f"{r.BASE_MODELS.display}",
            )
        return OverviewStream(reader, wait_early(), streams, tuning)
    except BaseException:
        if cluster is not None:
            cluster.close()
        pool.shutdown(wait=False, cancel_futures=True)
        tuning.restore()
        raise


def gather_overview(
    client: Client,
    *,
    kind: str | None,
    namespace: str | None,
    label_selector: str | None = None,
) -> Sources:
    """The sources for the overview: models of `kind` (None: both) in `namespace` (None: all).

    Every model at once (for `--watch`, which keeps them); `stream_overview` hands them over
    as they arrive. Raises NotFound when OME is not installed, Forbidden when no model kind is
    readable.
    """
    with stream_overview(
        client, kind=kind, namespace=namespace, label_selector=label_selector
    ) as stream:
        return stream.collect()


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
    hint = f"did you mean: {', '.join(close)}?" if close else None
    if lookup.kind != KIND_CLUSTER and not close:
        from kubectl_omepvc.api.lookup import whereabouts

        hint = whereabouts(client, r.BASE_MODELS, lookup.name, lookup.namespace)
    raise errors.NotFound(
        f'model "{lookup.name}" not found (no {where})',
        hint or "list the models with `kubectl ome-pvc status -A`",
    )


def gather_model(client: Client, lookup: ModelLookup) -> Sources:
    """The sources for the detail view of one model."""
    model, ref, ns = find_model(client, lookup)
    name = lookup.name
    with ThreadPoolExecutor(MAX_PARALLEL) as pool:
        reader = _Reader(client, pool)
        # A BaseModel is used only in its own namespace; a ClusterBaseModel from any.
        isvc_namespace = ns if ref is r.BASE_MODELS else None
        wait_early = _read_early(
            reader,
            want_agent=_needs_agent_root([model]),
            isvc_namespace=isvc_namespace,
        )
        kind = ModelKind.CLUSTER if ref is r.CLUSTER_BASE_MODELS else ModelKind.NAMESPACED
        watch = WatchSpec(
            ref,
            ns,
            field_selector=f"metadata.name={name}",
            resource_version=str((model.get("metadata") or {}).get("resourceVersion") or ""),
            slim=slim_model(kind),
        )
        facts = _ModelFacts()
        facts.note(model)
        sources = _gather_rest(reader, facts, wait_early(), model_watches=[watch])
        sources.models = [model]
        return sources


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


# -- pods of unfinished rollouts ----------------------------------------------------------------


def attach_pod_problems(client: Client, workloads: list[Obj] | None) -> None:
    """Read the pods of each Deployment whose rollout is unfinished, and put what keeps them
    from running on the workload (`core.status.POD_PROBLEMS`) for the status build.

    Only those few Deployments' pods are listed (a healthy cluster costs no request). Best
    effort: without the right to list pods, the rollout is shown as unfinished, not explained.
    """
    from kubectl_omepvc.api.workloads import stuck_pods
    from kubectl_omepvc.core import status

    for workload in workloads or ():
        namespace = (workload.get("metadata") or {}).get("namespace")
        if namespace and status.unfinished_rollout(workload):
            found = stuck_pods(client, str(namespace), {**workload, "kind": "Deployment"})
            workload[status.POD_PROBLEMS] = tuple(found)
