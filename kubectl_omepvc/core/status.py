"""Every model's transit state, per node, built from the objects the API returned (pure).

`build_statuses` takes plain dicts as the API returns them and gives one `ModelStatus` per model,
with the diagnoses of `kubectl_omepvc.core.diagnoses` attached. A source passed as `None` was not
readable (forbidden, not served): the status says "unknown" for what depended on it instead of
guessing. Everything is indexed once (ConfigMap entries and node labels by model key, nodes by
label, workloads by InferenceService), so the work is linear in the size of the input.

JSON schema (`StatusReport.as_dict()`, for `-o json|yaml`; keys are stable, new keys may be added):

    apiVersion: ome-pvc.io/v1alpha1
    kind: ModelStatusList
    warnings: [str]                  # input problems (malformed ConfigMap entries or keys)
    items:                           # one per model, ModelStatus.as_dict():
      kind: ClusterBaseModel | BaseModel
      namespace: str | null          # null for a ClusterBaseModel
      name: str
      state: str | null              # status.state as OME wrote it (In_Transit, Ready, Failed)
      disabled: bool                 # spec.disabled
      ageSeconds: int | null         # since metadata.creationTimestamp
      storage:
        uri: str | null              # spec.storage.storageUri
        scheme: oci|pvc|vendor|hf|s3|az|gs|github|local|unknown
        path: str | null             # spec.storage.path
        key: str | null              # spec.storage.key (a Secret name)
        nodeSelector: {str: str}
        nodeAffinity: object | null  # spec.storage.nodeAffinity, as given
      labelKey: str                  # the node label OME's agent writes for this model
      labelKeyHashed: bool           # OME shortened it (long name)
      ready: int                     # nodes in state Ready
      targeted: int | null           # nodes selected, labelled or with a ConfigMap entry;
                                     # null when neither nodes nor ConfigMaps were readable
      failedNodes: [str]
      updatingNodes: [str]
      progressPercent: float | null  # bytes done / bytes total over the Updating nodes
      reported: {nodesReady: [str], nodesFailed: [str]}   # status lists written by OME
      nodes:                         # one per node that is selected, labelled, has a
        - node: str                  # ConfigMap entry or is in the reported lists
          state: Ready | Updating | Failed | unknown | Pending   # Pending: nothing reported yet
          exists: bool | null        # the Node exists (null: nodes not readable)
          selected: bool | null      # matches the model's node selection
          label: str | null          # value of labelKey on the node
          configMap: str | null      # status of the node's ConfigMap entry (unknown: malformed)
          phase: str | null          # scanning | downloading | finalizing
          bytes: {completed: int | null, total: int | null}
          files: {completed: int | null, total: int | null}
          speedBytesPerSec: float | null
          etaSeconds: int | null
          lastUpdateAgeSeconds: int | null
      conditions: null | [           # null: the model status has no conditions (released OME)
          {type, status, reason, message: str | null, ageSeconds: int | null}]
      claim: null | {                # only for pvc:// models
          uri: {namespace: str | null, claim: str, subPath: str} | null,
          error: str | null,         # why OME's parser rejects the URI
          strictProblems: [str],     # what the plugin's stricter rules reject
          namespace: str | null,     # where OME looks for the claim
          exists: bool | null, phase: str | null, capacity: str | null,
          accessModes: [str], storageClass: str | null,
          volume: str | null,        # the bound PersistentVolume
          volumeNodeAffinity: object | null,
          unreachableLabelledNodes: [str]}   # labelled Ready, but the volume excludes them
      inferenceServices: null | [    # null: InferenceServices not readable
          {namespace, name,
           route: native | isvc | null,   # the strategy recorded on the isvc itself
           workloads: null | [            # null: workloads not readable
              {kind, name, mode: hostPath | pvc-patched | pvc-native |
                                 pending-node-selector | unknown,
               strategy: str | null, description: str,
               replicas: int | null, readyReplicas: int | null}]}]
      diagnoses: [{code: str, severity: info | warning | error, message: str, next: str | null}]
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from kubectl_omepvc.core import naming, rollout, selectors, storage_uri
from kubectl_omepvc.core.agent import agent_root
from kubectl_omepvc.core.durations import human_age
from kubectl_omepvc.core.model_status import ISVC_ROUTE as ISVC_ROUTE
from kubectl_omepvc.core.model_status import ClaimStatus as ClaimStatus
from kubectl_omepvc.core.model_status import Condition as Condition
from kubectl_omepvc.core.model_status import Diagnosis as Diagnosis
from kubectl_omepvc.core.model_status import ModelStatus as ModelStatus
from kubectl_omepvc.core.model_status import NodeRow as NodeRow
from kubectl_omepvc.core.model_status import NodeState as NodeState
from kubectl_omepvc.core.model_status import Progress as Progress
from kubectl_omepvc.core.model_status import ServiceUse as ServiceUse
from kubectl_omepvc.core.model_status import WorkloadMode as WorkloadMode
from kubectl_omepvc.core.model_status import WorkloadUse as WorkloadUse
from kubectl_omepvc.core.model_status import _int, _str
from kubectl_omepvc.core.model_status import parse_time as parse_time
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.objects import MAPPING, dig
from kubectl_omepvc.core.storage_uri import PvcUri, PvcUriError, StorageScheme

if TYPE_CHECKING:
    from kubectl_omepvc.core.diagnoses import RuleContext

API_VERSION = "ome-pvc.io/v1alpha1"
LIST_KIND = "ModelStatusList"

ISVC_LABEL = naming.ISVC_LABEL
STORAGE_COLUMN_WIDTH = 48
# ConfigMap keys the agent writes beside model entries (e.g. Hugging Face artifact records).
NON_MODEL_KEY_PREFIXES = ("artifact.",)

Obj = Mapping[str, Any]


# -- small readers -----------------------------------------------------------------------------


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo else now.replace(tzinfo=timezone.utc)


def _seconds_since(then: datetime | None, now: datetime) -> float | None:
    return None if then is None else (now - then).total_seconds()


# -- per-node records --------------------------------------------------------------------------


class AgentEntry(NamedTuple):
    """One value of a model-agent ConfigMap; `problem` says why it reads as unknown."""

    status: NodeState
    progress: Progress | None = None
    problem: str | None = None


_ENTRY_STATES = {s.value: s for s in (NodeState.READY, NodeState.UPDATING, NodeState.FAILED)}


def parse_agent_entry(raw: Any) -> AgentEntry:
    """A ConfigMap value (`{"name", "status", "progress"?}` as JSON) → AgentEntry."""
    if not isinstance(raw, str):
        return AgentEntry(NodeState.UNKNOWN, problem="the value is not a string")
    try:
        data = json.loads(raw)
    except ValueError:
        return AgentEntry(NodeState.UNKNOWN, problem="the value is not valid JSON")
    if not isinstance(data, MAPPING):
        return AgentEntry(NodeState.UNKNOWN, problem="the value is not a JSON object")
    status = _ENTRY_STATES.get(data.get("status"))
    progress = data.get("progress")
    parsed = Progress.from_dict(progress) if isinstance(progress, MAPPING) else None
    if status is None:
        return AgentEntry(
            NodeState.UNKNOWN, parsed, problem=f"unknown status {data.get('status')!r}"
        )
    return AgentEntry(status, parsed)


# -- model-level records -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StatusReport:
    models: tuple[ModelStatus, ...]
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": LIST_KIND,
            "warnings": list(self.warnings),
            "items": [m.as_dict() for m in self.models],
        }


# -- indexes -----------------------------------------------------------------------------------


class _NodeIndex:
    """Nodes by name, model labels by key, and (label, value) → nodes for nodeSelectors."""

    def __init__(self, nodes: Iterable[Obj] | None) -> None:
        self.known = nodes is not None
        self.labels_of: dict[str, Mapping[str, str]] = {}
        self.model_labels: dict[str, dict[str, str]] = {}
        self._by_pair: dict[tuple[str, str], set[str]] = {}
        self._selection_memo: dict[Any, frozenset[str]] = {}
        prefix = f"{naming.LABEL_DOMAIN}/"
        for node in nodes or ():
            name = _str(dig(node, "metadata", "name"))
            if name is None:
                continue
            labels = dig(node, "metadata", "labels")
            labels = labels if isinstance(labels, MAPPING) else {}
            self.labels_of[name] = labels
            for key, value in labels.items():
                # Model labels (one per model per node) stay out of the selector index.
                if key.startswith(prefix):
                    self.model_labels.setdefault(key, {})[name] = value
                else:
                    self._by_pair.setdefault((key, value), set()).add(name)

    def _nodes_with(self, key: str, value: str) -> set[str]:
        if key.startswith(f"{naming.LABEL_DOMAIN}/"):
            return {n for n, v in self.model_labels.get(key, {}).items() if v == value}
        return self._by_pair.get((key, value), set())

    def select(self, node_selector: Mapping[str, str], node_affinity: Any) -> frozenset[str]:
        """Nodes the agent downloads on; memoised, since most models share a selection."""
        terms = selectors.required_terms(node_affinity)
        # Most models select by nodeSelector alone: a tuple key is much cheaper than JSON.
        pairs = node_selector.items()
        memo_key: Any = (
            tuple(sorted(pairs))
            if not terms and all(type(k) is str and type(v) is str for k, v in pairs)
            else json.dumps([node_selector, terms], sort_keys=True, default=str)
        )
        hit = self._selection_memo.get(memo_key)
        if hit is not None:
            return hit
        candidates: Iterable[str] = self.labels_of
        for key, value in node_selector.items():
            candidates = self._nodes_with(key, value).intersection(candidates)
        selected = frozenset(
            n
            for n in candidates
            if selectors.agent_node_matches(self.labels_of[n], n, node_selector, terms)
        )
        self._selection_memo[memo_key] = selected
        return selected


_CLUSTER_KEY_PREFIX = f"{naming.CLUSTER_TYPE}."


class _AgentIndex:
    """Model-agent ConfigMap entries by data key, parsed lazily and once per distinct value."""

    def __init__(self, configmaps: Iterable[Obj] | None) -> None:
        self.known = configmaps is not None
        self.entries: dict[str, dict[str, Any]] = {}
        self.bad_keys: dict[str, list[str]] = {}
        self.parsed: dict[str, AgentEntry] = {}  # raw value → entry
        for cm in configmaps or ():
            node = _str(dig(cm, "metadata", "name"))
            data = cm.get("data")
            if node is None or not isinstance(data, MAPPING):
                continue
            for key, raw in data.items():
                if (
                    not key.startswith(_CLUSTER_KEY_PREFIX)
                    and naming.parse_configmap_key(key) is None
                ):
                    if not key.startswith(NON_MODEL_KEY_PREFIXES):
                        self.bad_keys.setdefault(key, []).append(node)
                    continue
                # The API only stores strings; anything else reads as malformed.
                self.entries.setdefault(key, {})[node] = raw if isinstance(raw, str) else ""

    def parse(self, raw: Any) -> AgentEntry:
        # Entries for one model are often byte-identical across nodes: parse each text once.
        if not isinstance(raw, str):
            return parse_agent_entry(raw)
        entry = self.parsed.get(raw)
        if entry is None:
            entry = self.parsed[raw] = parse_agent_entry(raw)
        return entry


def _isvc_model_ref(isvc: Obj) -> tuple[ModelKind | None, str] | None:
    """(kind, model name) an InferenceService points at; kind None for the legacy field."""
    model = dig(isvc, "spec", "model")
    if isinstance(model, MAPPING) and _str(model.get("name")):
        kind = model.get("kind") or ModelKind.CLUSTER.value  # the CRD's default
        try:
            return ModelKind(kind), model["name"]
        except ValueError:
            return None
    legacy = _str(dig(isvc, "spec", "baseModel")) or _str(
        dig(isvc, "spec", "predictor", "model", "baseModel")
    )
    return (None, legacy) if legacy else None


class _ServiceIndex:
    """InferenceServices by the model they use; workloads by their InferenceService."""

    def __init__(
        self,
        isvcs: Iterable[Obj] | None,
        workloads: Iterable[Obj] | None,
        base_models: set[tuple[str, str]],
    ) -> None:
        self.known = isvcs is not None
        self.by_model: dict[tuple[ModelKind, str | None, str], list[Obj]] = {}
        for isvc in isvcs or ():
            ns = _str(dig(isvc, "metadata", "namespace")) or ""
            ref = _isvc_model_ref(isvc)
            if ref is None:
                continue
            kind, name = ref
            if kind is None:  # legacy reference: a BaseModel in the namespace wins
                kind = ModelKind.NAMESPACED if (ns, name) in base_models else ModelKind.CLUSTER
            key = (kind, ns if kind is ModelKind.NAMESPACED else None, name)
            self.by_model.setdefault(key, []).append(isvc)
        self.workloads_of: dict[tuple[str, str], list[Obj]] = {}
        self.add_workloads(workloads)

    def add_workloads(self, workloads: Iterable[Obj] | None) -> None:
        """Index the workloads (None: not readable), for a `StatusBuilder` given them late."""
        self.workloads_known = workloads is not None
        for workload in workloads or ():
            owner = _workload_owner(workload)
            if owner:
                ns = _str(dig(workload, "metadata", "namespace")) or ""
                self.workloads_of.setdefault((ns, owner), []).append(workload)


def _workload_owner(workload: Obj) -> str | None:
    for ref in dig(workload, "metadata", "ownerReferences") or []:
        if (
            isinstance(ref, MAPPING)
            and ref.get("kind") == "InferenceService"
            and ref.get("controller")
        ):
            return _str(ref.get("name"))
    return _str(dig(workload, "metadata", "labels", ISVC_LABEL))


# -- workloads ---------------------------------------------------------------------------------


def workload_kind(workload: Obj) -> str:
    """The kind of a listed workload (LIST items of built-in types carry no `kind`)."""
    kind = _str(workload.get("kind"))
    if kind:
        return kind
    if dig(workload, "spec", "leaderWorkerTemplate") is not None:
        return "LeaderWorkerSet"
    return "Deployment"


def pod_specs(workload: Obj) -> list[Obj]:
    """Every pod template spec of a Deployment, Knative Service or LeaderWorkerSet."""
    specs = [
        dig(workload, "spec", "template", "spec"),
        dig(workload, "spec", "leaderWorkerTemplate", "leaderTemplate", "spec"),
        dig(workload, "spec", "leaderWorkerTemplate", "workerTemplate", "spec"),
    ]
    return [s for s in specs if isinstance(s, MAPPING)]


def template_mark(workload: Obj) -> str | None:
    """The strategy a pod template of `workload` is marked with (`ome-pvc.io/strategy`)."""
    templates = [
        dig(workload, "spec", "template"),
        dig(workload, "spec", "leaderWorkerTemplate", "leaderTemplate"),
        dig(workload, "spec", "leaderWorkerTemplate", "workerTemplate"),
    ]
    for template in templates:
        mark = dig(template, "metadata", "annotations", naming.STRATEGY_ANNOTATION)
        if isinstance(mark, str) and mark:
            return mark
    return None


def patch_strategy(annotation: Any) -> str:
    """The `strategy` recorded in the plugin's `ome-pvc.io/original` annotation."""
    try:
        data = json.loads(annotation) if isinstance(annotation, str) else None
    except ValueError:
        data = None
    strategy = data.get("strategy") if isinstance(data, MAPPING) else None
    if strategy is None and isinstance(data, MAPPING):
        # A workload record (core.jsonpatch) keeps one entry per pod template, each with its
        # strategy; they are written together, so the first tells.
        templates = data.get("templates")
        if isinstance(templates, MAPPING):
            first = next(iter(templates.values()), None)
            strategy = first.get("strategy") if isinstance(first, MAPPING) else None
    return strategy if isinstance(strategy, str) and strategy else "unknown"


# Where the command puts what the pods of a workload whose rollout is unfinished say
# (`core.rollout.pod_problems`): only those pods are read, so they come with the workload.
POD_PROBLEMS = "ome-pvc.io/podProblems"


def with_rollout(use: WorkloadUse, workload: Obj) -> WorkloadUse:
    """`use` with where the workload's rollout stands, when it has not finished."""
    if use.kind != "Deployment" or use.mode is WorkloadMode.PENDING or not workload.get("status"):
        return use
    state = rollout.rollout_of({**workload, "kind": use.kind})
    if state.done:
        return use
    problems = tuple(workload.get(POD_PROBLEMS) or ())
    return dataclasses.replace(use, rollout=state.failed or state.message, problems=problems)


def unfinished_rollout(workload: Obj) -> bool:
    """A listed Deployment whose rollout has not finished (its pods are worth reading)."""
    if workload_kind(workload) != "Deployment" or not workload.get("status"):
        return False
    return not rollout.rollout_of({**workload, "kind": "Deployment"}).done


def classify_workload(
    workload: Obj,
    model_name: str,
    path: str | None,
    label_key: str,
    labelled: Mapping[str, str],
    nodes_known: bool,
) -> WorkloadUse:
    """How one workload gets the model: patched, Pending on the nodeSelector, hostPath, claim."""
    kind = workload_kind(workload)
    name = _str(dig(workload, "metadata", "name")) or "?"
    replicas = _int(dig(workload, "spec", "replicas"))
    if replicas is None and kind in ("Deployment", "LeaderWorkerSet"):
        replicas = 1
    ready = _int(dig(workload, "status", "readyReplicas")) or 0
    annotations = dig(workload, "metadata", "annotations") or {}
    strategy = None
    if naming.ORIGINAL_ANNOTATION in annotations:
        # On the isvc route OME copies the isvc's record here; its pods still select the
        # copy's node label, so they can be Pending on it.
        strategy = patch_strategy(annotations[naming.ORIGINAL_ANNOTATION])
        if strategy != ISVC_ROUTE:
            return WorkloadUse(kind, name, WorkloadMode.PATCHED, strategy, replicas, ready)
    marked = template_mark(workload)
    if marked:  # the workload's record went with OME's last Update; the policy's mark stays
        return WorkloadUse(kind, name, WorkloadMode.PATCHED, marked, replicas, ready)
    specs = pod_specs(workload)
    if nodes_known and (replicas is None or ready < replicas):
        for spec in specs:
            wanted = dig(spec, "nodeSelector", label_key)
            if wanted is not None and wanted not in labelled.values():
                return WorkloadUse(kind, name, WorkloadMode.PENDING, None, replicas, ready)
    volumes = [v for s in specs for v in s.get("volumes") or [] if isinstance(v, MAPPING)]
    if strategy == ISVC_ROUTE or any(
        v.get("name") == naming.ISVC_ROUTE_VOLUME and "persistentVolumeClaim" in v for v in volumes
    ):
        return WorkloadUse(kind, name, WorkloadMode.PATCHED, ISVC_ROUTE, replicas, ready)
    for volume in volumes:
        host = dig(volume, "hostPath", "path")
        if volume.get("name") == model_name or (path and host == path):
            if host is not None:
                return WorkloadUse(kind, name, WorkloadMode.HOST_PATH, None, replicas, ready)
            if volume.get("persistentVolumeClaim") is not None:
                return WorkloadUse(kind, name, WorkloadMode.NATIVE_PVC, None, replicas, ready)
    return WorkloadUse(kind, name, WorkloadMode.UNKNOWN, None, replicas, ready)


# -- building ----------------------------------------------------------------------------------


def _model_kind(model: Obj) -> ModelKind:
    kind = model.get("kind")
    if kind in (ModelKind.CLUSTER.value, ModelKind.NAMESPACED.value):
        return ModelKind(kind)
    # LIST items of custom resources carry their kind; fall back on the scope otherwise.
    return ModelKind.NAMESPACED if dig(model, "metadata", "namespace") else ModelKind.CLUSTER


def _conditions(status: Obj, now: datetime) -> tuple[Condition, ...] | None:
    raw = status.get("conditions")
    if not isinstance(raw, list):
        return None
    return tuple(
        Condition(
            type=str(c.get("type") or ""),
            status=str(c.get("status") or ""),
            reason=_str(c.get("reason")),
            message=_str(c.get("message")),
            age_seconds=_seconds_since(parse_time(c.get("lastTransitionTime")), now),
        )
        for c in raw
        if isinstance(c, MAPPING)
    )


def claim_namespace(kind: ModelKind, model_namespace: str | None, uri: PvcUri) -> str | None:
    """Where OME looks for the claim: a BaseModel's own namespace, else the URI's."""
    return model_namespace if kind is ModelKind.NAMESPACED else uri.namespace


def _claim_status(
    kind: ModelKind,
    model_namespace: str | None,
    uri: str,
    pvcs: Mapping[tuple[str, str], Obj] | None,
    pvs: Mapping[str, Obj] | None,
) -> ClaimStatus:
    try:
        parsed = storage_uri.parse_pvc_uri(uri)
    except PvcUriError as exc:
        return ClaimStatus(uri=None, error=str(exc))
    namespace = claim_namespace(kind, model_namespace, parsed)
    problems = tuple(storage_uri.strict_problems(parsed))
    if pvcs is None or namespace is None:
        return ClaimStatus(parsed, strict_problems=problems, namespace=namespace)
    pvc = pvcs.get((namespace, parsed.claim))
    if pvc is None:
        return ClaimStatus(parsed, strict_problems=problems, namespace=namespace, exists=False)
    volume = _str(dig(pvc, "spec", "volumeName"))
    pv = pvs.get(volume) if pvs is not None and volume else None
    affinity = dig(pv, "spec", "nodeAffinity") if pv is not None else None
    return ClaimStatus(
        parsed,
        strict_problems=problems,
        namespace=namespace,
        exists=True,
        phase=_str(dig(pvc, "status", "phase")),
        capacity=_str(dig(pvc, "status", "capacity", "storage"))
        or _str(dig(pvc, "spec", "resources", "requests", "storage")),
        access_modes=_strings(dig(pvc, "status", "accessModes"))
        or _strings(dig(pvc, "spec", "accessModes")),
        storage_class=_str(dig(pvc, "spec", "storageClassName")),
        volume=volume,
        volume_node_affinity=affinity if isinstance(affinity, MAPPING) else None,
    )


def _node_rows(
    kind: ModelKind,
    namespace: str | None,
    name: str,
    label_key: str,
    storage: Obj,
    scheme: StorageScheme,
    reported_ready: tuple[str, ...],
    reported_failed: tuple[str, ...],
    nodes: _NodeIndex,
    agents: _AgentIndex,
    now: datetime,
    warnings: list[str],
) -> list[NodeRow]:
    labelled = nodes.model_labels.get(label_key, {})
    cm_key = naming.model_configmap_key(kind, name, namespace or "-")
    entries = agents.entries.get(cm_key, {})
    selected: frozenset[str] = frozenset()
    if nodes.known and scheme is not StorageScheme.PVC:  # the agent skips pvc:// models
        selector = storage.get("nodeSelector")
        selector = selector if isinstance(selector, MAPPING) else {}
        selected = nodes.select(selector, storage.get("nodeAffinity"))
    names = set(selected).union(labelled, entries, reported_ready, reported_failed)
    ready_set, failed_set = set(reported_ready), set(reported_failed)
    parse, cache, existing, known = agents.parse, agents.parsed, nodes.labels_of, nodes.known
    rows = []
    # This loop runs once per (model, node) pair: keep it to dict lookups.
    for node in sorted(names):
        label = labelled.get(node)
        raw = entries.get(node)
        entry = None if raw is None else cache.get(raw) or parse(raw)
        if entry is not None:
            state = entry.status
            if entry.problem:
                warnings.append(
                    f"ConfigMap {naming.AGENT_NAMESPACE}/{node}, key {cm_key}: "
                    f"{entry.problem}; the node is shown as unknown"
                )
        elif label is not None:
            state = _ENTRY_STATES.get(label, NodeState.UNKNOWN)
        elif node in ready_set:
            state = NodeState.READY
        elif node in failed_set:
            state = NodeState.FAILED
        else:
            state = NodeState.PENDING
        progress = None if entry is None else entry.progress
        updated = None if progress is None else progress.last_updated
        rows.append(
            NodeRow(
                node,
                state,
                (node in existing) if known else None,
                (node in selected) if known else None,
                label,
                None if entry is None else entry.status,
                progress,
                None if updated is None else (now - updated).total_seconds(),
            )
        )
    return rows


def _aggregate_percent(rows: Iterable[NodeRow]) -> float | None:
    done = total = 0
    for row in rows:
        p = row.progress
        if p and p.total_bytes and p.completed_bytes is not None:
            done += p.completed_bytes
            total += p.total_bytes
    return 100.0 * done / total if total else None


def base_model_keys(models: Iterable[Obj]) -> set[tuple[str, str]]:
    """(namespace, name) of the BaseModels among `models` (see `build_statuses`' base_models)."""
    return {
        (dig(m, "metadata", "namespace") or "", dig(m, "metadata", "name") or "")
        for m in models
        if _model_kind(m) is ModelKind.NAMESPACED
    }


_PVC_PREFIX = StorageScheme.PVC.prefix  # scheme_of(uri) is PVC, without trying every scheme


class StatusBuilder:
    """`build_statuses` one model at a time, for models that arrive page by page.

    With `late=True`, the sources that depend on which models were listed (workloads, claims,
    volumes, the OME generation) come afterwards, through `complete`: a model whose status reads
    them (a `pvc://` model, or one an InferenceService uses) is held until then; every other
    model is built on `add`. `report` keeps input order, for the models and for their warnings,
    so the result is the same as with every source given up front.
    """

    def __init__(
        self,
        *,
        configmaps: Iterable[Obj] | None = None,
        nodes: Iterable[Obj] | None = None,
        inference_services: Iterable[Obj] | None = None,
        workloads: Iterable[Obj] | None = None,
        pvcs: Iterable[Obj] | None = None,
        pvs: Iterable[Obj] | None = None,
        agent_daemonset: Obj | None = None,
        native_pvc: bool = False,
        base_models: set[tuple[str, str]],
        now: datetime,
        keep_node_rows: bool = True,
        late: bool = False,
    ) -> None:
        # The rules; they read the records from core.model_status, never from this module.
        from kubectl_omepvc.core import diagnoses

        self._diagnose = diagnoses.diagnose
        self._rule_context = diagnoses.RuleContext
        self.now = _aware(now)
        self.keep_node_rows = keep_node_rows
        self.nodes = _NodeIndex(nodes)
        self.agents = _AgentIndex(configmaps)
        self.services = _ServiceIndex(inference_services, None, base_models)
        self.agent_root = agent_root(agent_daemonset)
        self._late = late
        self._held: list[tuple[int, Obj]] = []
        self._out: list[ModelStatus | None] = []
        self._warnings: list[tuple[int, str]] = []
        self._pvcs: Mapping[tuple[str, str], Obj] | None = None
        self._pvs: Mapping[str, Obj] | None = None
        # native_pvc is late: only pvc:// models (held until `complete`) read it.
        self._context = self._rule_context(
            agent_root=self.agent_root,
            nodes_known=self.nodes.known,
            configmaps_known=self.agents.known,
        )
        if not late:
            self._set_late(workloads, pvcs, pvs, native_pvc)

    def _set_late(
        self,
        workloads: Iterable[Obj] | None,
        pvcs: Iterable[Obj] | None,
        pvs: Iterable[Obj] | None,
        native_pvc: bool,
    ) -> None:
        self.services.add_workloads(workloads)
        self._pvcs = (
            None
            if pvcs is None
            else {
                (dig(p, "metadata", "namespace") or "", dig(p, "metadata", "name") or ""): p
                for p in pvcs
            }
        )
        self._pvs = None if pvs is None else {dig(p, "metadata", "name") or "": p for p in pvs}
        self._context = dataclasses.replace(self._context, native_pvc=native_pvc)

    def _needs_late(self, model: Obj) -> bool:
        uri = dig(model, "spec", "storage", "storageUri")
        if isinstance(uri, str) and uri.startswith(_PVC_PREFIX):
            return True  # its claim, volume and the OME generation
        if not self.services.by_model:
            return False
        kind = _model_kind(model)
        name = _str(dig(model, "metadata", "name")) or ""
        namespace = (
            _str(dig(model, "metadata", "namespace")) if kind is ModelKind.NAMESPACED else None
        )
        return (kind, namespace, name) in self.services.by_model  # its workloads

    def add(self, model: Obj) -> None:
        """Build one model's status now, or hold it until `complete` (see the class)."""
        index = len(self._out)
        self._out.append(None)
        if self._late and self._needs_late(model):
            self._held.append((index, model))
        else:
            self._out[index] = self._build(index, model)

    def complete(
        self,
        *,
        workloads: Iterable[Obj] | None = None,
        pvcs: Iterable[Obj] | None = None,
        pvs: Iterable[Obj] | None = None,
        native_pvc: bool = False,
    ) -> None:
        """The late sources (with `late=True`): builds the models held for them."""
        if not self._late:
            raise ValueError("complete() is for a StatusBuilder made with late=True")
        self._late = False
        self._set_late(workloads, pvcs, pvs, native_pvc)
        held, self._held = self._held, []
        for index, model in held:
            self._out[index] = self._build(index, model)

    def _build(self, index: int, model: Obj) -> ModelStatus:
        warnings: list[str] = []
        status = _build_one(
            model, self.nodes, self.agents, self.services, self._pvcs, self._pvs, self.now,
            warnings, self._diagnose, self._context, self.keep_node_rows,
        )  # fmt: skip
        self._warnings.extend((index, w) for w in warnings)
        return status

    def report(self) -> StatusReport:
        """Every status added, in input order, with the input warnings."""
        if self._late:
            raise ValueError("complete() first: models are held for the late sources")
        warnings = [w for _, w in sorted(self._warnings, key=lambda iw: iw[0])]
        bad_keys = self.agents.bad_keys
        if bad_keys:
            shown = ", ".join(sorted(bad_keys)[:5])
            more = len(bad_keys) - 5
            warnings.append(
                f"{len(bad_keys)} key(s) in the model-agent ConfigMaps are not model "
                f"keys and were ignored: {shown}" + (f" and {more} more" if more > 0 else "")
            )
        return StatusReport(tuple(m for m in self._out if m is not None), tuple(warnings))


def build_statuses(
    models: Iterable[Obj],
    *,
    configmaps: Iterable[Obj] | None = None,
    nodes: Iterable[Obj] | None = None,
    inference_services: Iterable[Obj] | None = None,
    workloads: Iterable[Obj] | None = None,
    pvcs: Iterable[Obj] | None = None,
    pvs: Iterable[Obj] | None = None,
    agent_daemonset: Obj | None = None,
    native_pvc: bool = False,
    now: datetime,
    keep_node_rows: bool = True,
    base_models: set[tuple[str, str]] | None = None,
) -> StatusReport:
    """One ModelStatus per model, in input order, with diagnoses; plus input warnings.

    `configmaps`: the model-agent ConfigMaps in `ome` (listed by label); `workloads`: the
    Deployments/LeaderWorkerSets/Knative Services of the InferenceServices' namespaces;
    `native_pvc`: the cluster's OME has model conditions (the capability probe).
    Any source may be None: not readable. `keep_node_rows=False` drops the per-node rows once
    counted and diagnosed (the overview table needs none), so memory stays O(models).
    `base_models`: (namespace, name) of every BaseModel listed (`base_model_keys`), which an
    InferenceService naming its model by the legacy `baseModel` field means before a
    ClusterBaseModel; given, `models` is read lazily, once (e.g. as its pages arrive).
    """
    if base_models is None:
        models = list(models)
        base_models = base_model_keys(models)
    builder = StatusBuilder(
        configmaps=configmaps,
        nodes=nodes,
        inference_services=inference_services,
        workloads=workloads,
        pvcs=pvcs,
        pvs=pvs,
        agent_daemonset=agent_daemonset,
        native_pvc=native_pvc,
        base_models=base_models,
        now=now,
        keep_node_rows=keep_node_rows,
    )
    for model in models:
        builder.add(model)
    return builder.report()


def _build_one(
    model: Obj,
    nodes: _NodeIndex,
    agents: _AgentIndex,
    services: _ServiceIndex,
    pvcs: Mapping[tuple[str, str], Obj] | None,
    pvs: Mapping[str, Obj] | None,
    now: datetime,
    warnings: list[str],
    diagnose: Callable[[ModelStatus, RuleContext], tuple[Diagnosis, ...]],
    context: RuleContext,
    keep_node_rows: bool,
) -> ModelStatus:
    kind = _model_kind(model)
    name = _str(dig(model, "metadata", "name")) or ""
    namespace = _str(dig(model, "metadata", "namespace")) if kind is ModelKind.NAMESPACED else None
    storage = dig(model, "spec", "storage")
    storage = storage if isinstance(storage, MAPPING) else {}
    status = model.get("status")
    status = status if isinstance(status, MAPPING) else {}
    uri = _str(storage.get("storageUri"))
    scheme = storage_uri.scheme_of(uri)
    path = _str(storage.get("path"))
    # A BaseModel always has a namespace; "-" only keeps a malformed object from aborting the run.
    label_key = naming.model_label_key(kind, name, namespace or "-")
    reported_ready = _strings(status.get("nodesReady"))
    reported_failed = _strings(status.get("nodesFailed"))
    rows = _node_rows(
        kind, namespace, name, label_key, storage, scheme, reported_ready, reported_failed,
        nodes, agents, now, warnings,
    )  # fmt: skip
    counted = [r for r in rows if r.exists is not False]  # OME ignores ConfigMaps of gone nodes
    per_node_known = nodes.known or agents.known
    if per_node_known:
        ready = sum(r.state is NodeState.READY for r in counted)
        targeted: int | None = len(counted)
    else:
        ready, targeted = len(reported_ready), None
    updating = [r for r in counted if r.state is NodeState.UPDATING]
    selector = storage.get("nodeSelector")
    affinity = storage.get("nodeAffinity")
    claim = (
        _claim_status(kind, namespace, uri, pvcs, pvs)
        if scheme is StorageScheme.PVC and uri
        else None
    )
    if claim is not None and claim.volume_node_affinity and nodes.known:
        stray = _unreachable(label_key, nodes, claim.volume_node_affinity)
        claim = dataclasses.replace(claim, unreachable_labelled=stray) if stray else claim
    fields: dict[str, Any] = dict(
        kind=kind,
        namespace=namespace,
        name=name,
        uri=uri,
        scheme=scheme,
        path=path,
        state=_str(status.get("state")),
        label_key=label_key,
        label_key_hashed=naming.label_key_is_hashed(kind, name, namespace),
        key=_str(storage.get("key")),
        node_selector=dict(selector) if isinstance(selector, MAPPING) else {},
        node_affinity=affinity if isinstance(affinity, MAPPING) else None,
        disabled=dig(model, "spec", "disabled") is True,
        age_seconds=_seconds_since(parse_time(dig(model, "metadata", "creationTimestamp")), now),
        nodes=tuple(rows),
        ready=ready,
        targeted=targeted,
        failed_nodes=tuple(r.node for r in counted if r.state is NodeState.FAILED)
        if per_node_known
        else reported_failed,
        updating_nodes=tuple(r.node for r in updating),
        progress_percent=_aggregate_percent(updating),
        reported_ready=reported_ready,
        reported_failed=reported_failed,
        conditions=_conditions(status, now),
        claim=claim,
        services=_services_for(kind, namespace, name, path, label_key, services, nodes),
    )
    # The rules read the whole status, node rows included; the result then gets its diagnoses
    # (and, for the overview, loses the rows: memory O(models)). It is set on the record made
    # here, before anything else holds it: a second construction cost 10% of the overview.
    result = ModelStatus(**fields)
    object.__setattr__(result, "diagnoses", diagnose(result, context))
    if not keep_node_rows:
        object.__setattr__(result, "nodes", ())
    return result


def _unreachable(label_key: str, nodes: _NodeIndex, affinity: Obj) -> tuple[str, ...]:
    """Nodes labelled `label_key=Ready` that a volume with this node affinity cannot be used on."""
    terms = selectors.volume_terms({"spec": {"nodeAffinity": affinity}})
    labelled = nodes.model_labels.get(label_key, {})
    return tuple(
        sorted(
            node
            for node, value in labelled.items()
            if value == "Ready"
            and terms
            and not selectors.node_matches(
                {"metadata": {"name": node, "labels": nodes.labels_of.get(node, {})}}, terms
            )
        )
    )


def _services_for(
    kind: ModelKind,
    namespace: str | None,
    name: str,
    path: str | None,
    label_key: str,
    services: _ServiceIndex,
    nodes: _NodeIndex,
) -> tuple[ServiceUse, ...] | None:
    if not services.known:
        return None
    labelled = nodes.model_labels.get(label_key, {})
    out = []
    for isvc in services.by_model.get((kind, namespace, name), []):
        ns = _str(dig(isvc, "metadata", "namespace")) or ""
        isvc_name = _str(dig(isvc, "metadata", "name")) or ""
        workloads: tuple[WorkloadUse, ...] | None = None
        if services.workloads_known:
            workloads = tuple(
                with_rollout(classify_workload(w, name, path, label_key, labelled, nodes.known), w)
                for w in services.workloads_of.get((ns, isvc_name), [])
            )
        record = (dig(isvc, "metadata", "annotations") or {}).get(naming.ORIGINAL_ANNOTATION)
        route = patch_strategy(record) if record is not None else None
        out.append(ServiceUse(ns, isvc_name, workloads, route))
    return tuple(out)


# -- table rendering ---------------------------------------------------------------------------

OVERVIEW_HEADERS = (
    "NAME", "NAMESPACE", "STORAGE", "STATE", "READY", "FAILED", "DOWNLOADING", "AGE",
)  # fmt: skip
WIDE_HEADERS = (*OVERVIEW_HEADERS, "PATH", "REASON")


def overview_headers(wide: bool) -> tuple[str, ...]:
    return WIDE_HEADERS if wide else OVERVIEW_HEADERS


def ready_cell(m: ModelStatus) -> str:
    if m.scheme is StorageScheme.PVC and not m.targeted and not m.ready:
        return "-"  # no per-node downloads for a claim-backed model
    return f"{m.ready}/{'?' if m.targeted is None else m.targeted}"


def downloading_cell(m: ModelStatus) -> str:
    count = len(m.updating_nodes)
    if count and m.progress_percent is not None:
        return f"{count} ({m.progress_percent:.0f}%)"
    return str(count)


def reason_cell(m: ModelStatus) -> str:
    """The most severe warning or error; info-level diagnoses are not a reason."""
    for d in m.diagnoses:
        if d.severity.value != "info":
            return d.code
    return "-"


def overview_row(m: ModelStatus, wide: bool = False) -> list[str]:
    """One overview table row; columns as in `overview_headers(wide)`."""
    if not m.uri:
        storage = "-"
    else:  # -o wide shows it whole, as kubectl's wide output does
        storage = m.uri if wide else storage_uri.shorten_uri(m.uri, STORAGE_COLUMN_WIDTH)
    row = [
        m.name,
        m.namespace or "-",
        storage,
        m.state or "-",
        ready_cell(m),
        str(len(m.failed_nodes)),
        downloading_cell(m),
        human_age(m.age_seconds),
    ]
    if wide:
        row += [m.path or "-", reason_cell(m)]
    return row


DELETED = "<deleted>"  # the STATE of a row whose model went away (`status --watch`)
STATE_COLUMN = 3
AGE_COLUMN = 7
RowKey = tuple[int, str, str]


def row_key(m: ModelStatus) -> RowKey:
    """Overview order: ClusterBaseModels first, then BaseModels by namespace and name."""
    return (0 if m.kind is ModelKind.CLUSTER else 1, m.namespace or "", m.name)


def _without_age(row: Sequence[str]) -> list[str]:
    return [c for i, c in enumerate(row) if i != AGE_COLUMN]


def changed_rows(
    before: Mapping[RowKey, list[str]], after: Mapping[RowKey, list[str]]
) -> list[list[str]]:
    """Overview rows that changed (age aside), appeared, or went away (state `<deleted>`)."""
    out = []
    for key, row in after.items():
        old = before.get(key)
        if old is None or _without_age(old) != _without_age(row):
            out.append(row)
    for key, row in before.items():
        if key not in after:
            gone = list(row)
            gone[STATE_COLUMN] = DELETED
            out.append(gone)
    return out


def footer_note(m: ModelStatus) -> str | None:
    """One line explaining a model that is not Ready (None when it is Ready)."""
    if m.is_ready:
        return None
    for d in m.diagnoses:
        if d.severity.value != "info":
            return f"{m.display_name}: {d.message}"
    if m.updating_nodes:
        pct = "" if m.progress_percent is None else f", {m.progress_percent:.0f}% of bytes"
        return f"{m.display_name}: downloading on {len(m.updating_nodes)} node(s){pct}"
    return f"{m.display_name}: state {m.state or 'not reported yet'}"


def resource_name(m: ModelStatus) -> str:
    """`-o name` form: `clusterbasemodel.ome.io/<name>`."""
    return f"{m.kind.resource}.ome.io/{m.name}"
