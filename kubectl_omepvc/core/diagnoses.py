"""Why a model is not Ready, in plain words, with the next command to run.

Each rule is a small function `(ModelStatus, RuleContext) -> list[Diagnosis]`; `diagnose` runs
them all, keeps the first diagnosis of each code and orders them error, warning, info. Codes are
stable kebab-case ids (scripts may match on them); messages are one line for people.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence

from kubectl_omepvc.core import naming, storage_uri
from kubectl_omepvc.core.agent import AgentRoot
from kubectl_omepvc.core.durations import human_age
from kubectl_omepvc.core.model_status import ISVC_ROUTE, ModelStatus, NodeState, WorkloadMode
from kubectl_omepvc.core.model_status import Diagnosis as Diagnosis
from kubectl_omepvc.core.model_status import Severity as Severity
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.storage_uri import StorageScheme

STALL_AFTER_SECONDS = 30 * 60
MAX_NAMED_NODES = 5


@dataclasses.dataclass(frozen=True)
class RuleContext:
    """What the rules need beyond the model: the OME generation and what was readable."""

    native_pvc: bool = False
    agent_root: AgentRoot | None = None
    nodes_known: bool = True
    configmaps_known: bool = True


Rule = Callable[[ModelStatus, RuleContext], list[Diagnosis]]


# -- commands the diagnoses point to -----------------------------------------------------------


def _ns_flag(namespace: str | None) -> str:
    return f" -n {namespace}" if namespace else ""


def model_ref(m: ModelStatus) -> str:
    """`clusterbasemodel NAME` / `basemodel NAME -n NS`, as kubectl takes it."""
    return f"{m.kind.resource} {m.name}{_ns_flag(m.namespace)}"


def create_command(m: ModelStatus, namespace: str | None = None) -> str:
    """`kubectl ome-pvc create CLAIM --from-model [basemodel/]MODEL --size SIZE -n NS`.

    Only for a model the agent downloaded to a node path (what --from-model reads); the user
    chooses CLAIM and SIZE. The namespace is the one given (where the serving workloads run),
    else the BaseModel's.
    """
    model = f"basemodel/{m.name}" if m.kind is ModelKind.NAMESPACED else m.name
    where = namespace or m.namespace
    return f"kubectl ome-pvc create CLAIM --from-model {model} --size SIZE{_ns_flag(where)}"


def edit_isvc_command(namespace: str, isvc: str) -> str:
    return f"kubectl edit inferenceservice {isvc} -n {namespace}"


def patch_command(namespace: str, isvc: str, claim: str | None) -> str:
    return f"kubectl ome-pvc patch {isvc} -n {namespace} --claim {claim or 'CLAIM'}"


def status_command(m: ModelStatus) -> str:
    return f"kubectl ome-pvc status {m.name}{_ns_flag(m.namespace)} --watch"


def agent_pods_command(node: str) -> str:
    return (
        f"kubectl get pods -n {naming.AGENT_NAMESPACE} -o wide "
        f"--field-selector spec.nodeName={node}"
    )


def _names(nodes: Sequence[str]) -> str:
    shown = ", ".join(nodes[:MAX_NAMED_NODES])
    more = len(nodes) - MAX_NAMED_NODES
    return shown + (f" and {more} more" if more > 0 else "")


def _claim_text(m: ModelStatus) -> str:
    claim = m.claim
    if claim is None or claim.uri is None:
        return "the claim"
    return f"claim {claim.namespace or '?'}/{claim.uri.claim}"


def _first_service(m: ModelStatus) -> tuple[str, str] | None:
    for service in m.services or ():
        return service.namespace, service.name
    return None


# -- pvc:// rules ------------------------------------------------------------------------------


def _isvc_route_users(m: ModelStatus) -> list[str]:
    """`ns/name` of each isvc that serves this model's claim from its own spec (isvc route)."""
    return [
        f"{s.namespace}/{s.name}"
        for s in m.services or ()
        if s.route == ISVC_ROUTE or any(w.strategy == ISVC_ROUTE for w in s.workloads or ())
    ]


def pvc_on_released_ome(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    """Released OME (no model conditions) never serves a pvc:// model: `patch` cannot help an
    isvc on it either (its pods mount nothing). The way out is a hostPath model plus `patch`.
    On the isvc route that is by design: the isvc mounts the claim from its own spec."""
    if m.scheme is not StorageScheme.PVC or ctx.native_pvc:
        return []
    users = _isvc_route_users(m)
    if users:
        return [
            Diagnosis(
                "pvc-isvc-route",
                Severity.INFO,
                f"{m.state or 'In_Transit'} is expected here: this OME does not serve pvc://"
                " models itself (its agents skip them), and InferenceService"
                f" {_names(users)} mount{'s' if len(users) == 1 else ''} the claim from"
                " their own spec (kubectl-ome-pvc's isvc route)",
            )
        ]
    service = _first_service(m)
    claim = m.claim.name if m.claim else None
    base = (
        "this OME does not serve pvc:// models: its agent skips them and its controller has "
        "no PVC support (OEP-0004 is provisional), so the model stays In_Transit forever"
    )
    if service:
        namespace, isvc = service
        message = (
            f"{base}; InferenceService {namespace}/{isvc} on it gets pods that mount no claim: "
            "point it at a model with a storage.path (a hostPath model), then serve that from "
            f"the claim with `{patch_command(namespace, isvc, claim)}`"
        )
        step = edit_isvc_command(namespace, isvc)
    else:
        message = (
            f"{base}; delete it, and serve the isvcs of a hostPath model from the claim with "
            f"`kubectl ome-pvc patch ISVC --claim {claim or 'CLAIM'}`"
        )
        step = f"kubectl delete {model_ref(m)}"
    return [Diagnosis("pvc-not-supported", Severity.ERROR, message, step)]


@dataclasses.dataclass(frozen=True)
class _Reason:
    code: str
    severity: Severity
    explain: str  # {claim}, {sub_path}, {name} are filled in
    next: str  # {ref}, {ns}, {claim_name}, {sub_path}, {status}, {name} are filled in


# OME `main`'s reasons on a pvc:// model's SourceReachable and Ready conditions, spelt as OME
# writes them (pkg/controller/v1beta1/basemodel/backends/pvc/pvc.go at 5ed809d2). PVCInvalid
# is kind-specific (see `_pvc_invalid`); PVCValidated and PVCMetadataReady come with True.
VERIFY = "kubectl ome-pvc verify {claim_name} -n {ns} --sub-path {sub_path}"
JOBS = "kubectl get jobs,pods -n {ns} -l models.ome/model-name={name}"
PVC_REASONS: dict[str, _Reason] = {
    "PVCNotFound": _Reason(
        "pvc-not-found",
        Severity.ERROR,
        "{claim} does not exist; OME looks for it in that namespace and checks again every 5s",
        "kubectl get pvc -n {ns}",
    ),
    "PVCNotBound": _Reason(
        "pvc-not-bound",
        Severity.WARNING,
        "{claim} is not Bound yet: check its storage class, a matching volume, and whether "
        "the class waits for a first consumer",
        "kubectl describe pvc {claim_name} -n {ns}",
    ),
    "PVCConfigMissing": _Reason(
        "pvc-config-missing",
        Severity.ERROR,
        "OME's controller has no ome-agent image configured to run the metadata Job: an "
        "operator setting (the omeAgent block of ConfigMap inferenceservice-config in the OME "
        "namespace), not a missing config.json; fix it and OME retries",
        f"kubectl get configmap inferenceservice-config -n {naming.AGENT_NAMESPACE} -o yaml",
    ),
    "PVCMetadataPending": _Reason(  # defined by OME, never written today
        "pvc-metadata-pending",
        Severity.INFO,
        "OME has not started reading the model's config.json from {claim} yet",
        "{status}",
    ),
    "PVCMetadataExtracting": _Reason(
        "pvc-metadata-extracting",
        Severity.INFO,
        "OME's metadata Job is reading config.json from {claim}; OME recreates the Job an "
        "hour after it finishes, and the model shows In_Transit for a while then: that is "
        "normal",
        JOBS,
    ),
    "PVCMetadataExtractionFailed": _Reason(
        "pvc-extraction-failed",
        Severity.ERROR,
        "OME's metadata Job could not read the model on {claim} (is config.json under "
        "{sub_path}, readable by the Job's user?)",
        VERIFY,
    ),
}


def _fill(m: ModelStatus, text: str) -> str:
    claim = m.claim
    uri = claim.uri if claim else None
    return text.format(
        claim=_claim_text(m),
        claim_name=uri.claim if uri else "CLAIM",
        sub_path=uri.sub_path if uri else "SUB_PATH",
        ns=(claim.namespace if claim else None) or m.namespace or "NAMESPACE",
        ref=model_ref(m),
        status=status_command(m),
        name=m.name,
    )


def _pvc_invalid(m: ModelStatus, said: str) -> Diagnosis:
    """OME refused the URI: the fix depends on the model kind (its webhook's rule)."""
    uri = m.claim.uri if m.claim else None
    if uri is not None:
        problem = storage_uri.kind_problem(m.kind, uri)
        if problem:
            return Diagnosis(
                "pvc-invalid", Severity.ERROR, problem + said, f"kubectl edit {model_ref(m)}"
            )
    form = (
        "pvc://<namespace>:<claim>/<sub-path>"
        if m.kind is ModelKind.CLUSTER
        else "pvc://<claim>/<sub-path> (no namespace)"
    )
    return Diagnosis(
        "pvc-invalid",
        Severity.ERROR,
        f"OME refused the pvc:// URI; a {m.kind.value} needs {form}{said}",
        f"kubectl edit {model_ref(m)}",
    )


def condition_reasons(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    """Newer OME: explain each condition that is not True, by OME's reason."""
    out = []
    for cond in m.conditions or ():
        if cond.status == "True":
            continue
        said = f" (OME: {cond.message})" if cond.message else ""
        if cond.reason == "PVCInvalid":
            out.append(_pvc_invalid(m, said))
            continue
        reason = PVC_REASONS.get(cond.reason or "")
        if reason is not None:
            out.append(
                Diagnosis(
                    reason.code,
                    reason.severity,
                    _fill(m, reason.explain) + said,
                    _fill(m, reason.next),
                )
            )
        elif cond.type == "Ready":
            out.append(
                Diagnosis(
                    "not-ready-condition",
                    Severity.WARNING,
                    f"condition Ready is {cond.status or 'unset'}"
                    f" ({cond.reason or 'no reason'}){said}",
                    f"kubectl describe {model_ref(m)}",
                )
            )
    return out


def pvc_claim_observed(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    """What the plugin itself saw of the claim (both OME generations need a Bound claim)."""
    claim = m.claim
    if claim is None or claim.uri is None or claim.exists is None:
        return []
    if claim.exists is False:
        reason = PVC_REASONS["PVCNotFound"]
    elif claim.phase != "Bound":
        reason = PVC_REASONS["PVCNotBound"]
    else:
        return []
    return [
        Diagnosis(reason.code, reason.severity, _fill(m, reason.explain), _fill(m, reason.next))
    ]


def pvc_uri_invalid(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    if m.claim is None or m.claim.error is None:
        return []
    return [
        Diagnosis(
            "pvc-uri-invalid",
            Severity.ERROR,
            f"OME cannot parse the storage URI: {m.claim.error}",
            f"kubectl edit {model_ref(m)}",
        )
    ]


def pvc_uri_unsafe(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    if m.claim is None or not m.claim.strict_problems:
        return []
    return [
        Diagnosis(
            "pvc-uri-unsafe",
            Severity.WARNING,
            "OME accepts the pvc:// URI but " + "; ".join(m.claim.strict_problems),
            f"kubectl edit {model_ref(m)}",
        )
    ]


def pvc_uri_wrong_form(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    """OME `main` refuses a ClusterBaseModel URI without a namespace and a BaseModel URI with
    one (webhook denial, else PVCInvalid): an error, whatever the conditions say yet."""
    uri = m.claim.uri if m.claim else None
    problem = storage_uri.kind_problem(m.kind, uri) if uri else None
    if problem is None or any(c.reason == "PVCInvalid" for c in m.conditions or ()):
        return []  # condition_reasons says it, with OME's own words
    code = "pvc-uri-no-namespace" if m.kind is ModelKind.CLUSTER else "pvc-uri-has-namespace"
    return [Diagnosis(code, Severity.ERROR, problem, f"kubectl edit {model_ref(m)}")]


# -- storage rules -----------------------------------------------------------------------------


def undownloadable_scheme(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    if m.scheme.agent_cannot_download:
        return [
            Diagnosis(
                "unsupported-scheme",
                Severity.ERROR,
                f"OME's model-agent cannot download {m.scheme.value}:// URIs (unknown storage "
                "type): its nodes stay Updating; use an hf:// or oci:// URI, or serve the "
                "weights from a claim",
                f"kubectl edit {model_ref(m)}",
            )
        ]
    if m.scheme is StorageScheme.UNKNOWN:
        what = f"scheme of {m.uri!r}" if m.uri else "missing storageUri"
        return [
            Diagnosis(
                "unknown-scheme",
                Severity.ERROR,
                f"OME does not recognise the {what} (schemes are lower-case: oci, hf, pvc, ...)",
                f"kubectl edit {model_ref(m)}",
            )
        ]
    return []


def path_outside_agent_root(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    """The agent writes storage.path inside its container: only its hostPath reaches the node."""
    root = ctx.agent_root
    relevant = m.scheme.agent_downloads or m.scheme is StorageScheme.LOCAL
    if root is None or not m.path or not relevant or root.reaches_node(m.path):
        return []
    landing = root.node_path(m.path)
    if landing is None:
        message = (
            f"storage.path {m.path} is outside the model-agent's host directory "
            f"{root.host_path}: the download stays inside the agent's container and serving "
            "pods find an empty directory on the node"
        )
    else:
        message = (
            f"storage.path {m.path} lands on the node at {landing} (the agent mounts "
            f"{root.host_path} at {root.mount_path}), but serving pods mount {m.path}"
        )
    return [
        Diagnosis(
            "path-outside-agent-root", Severity.ERROR, message, f"kubectl edit {model_ref(m)}"
        )
    ]


# -- per-node rules ----------------------------------------------------------------------------


def failed_nodes(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    if not m.failed_nodes:
        return []
    return [
        Diagnosis(
            "nodes-failed",
            Severity.ERROR,
            f"the download failed on {len(m.failed_nodes)} node(s): {_names(m.failed_nodes)}",
            agent_pods_command(m.failed_nodes[0]),
        )
    ]


def stalled_nodes(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    stalled = [
        row
        for row in m.nodes
        if row.state is NodeState.UPDATING
        and row.exists is not False
        and row.last_update_age_seconds is not None
        and row.last_update_age_seconds > STALL_AFTER_SECONDS
    ]
    if not stalled:
        return []
    oldest = max(row.last_update_age_seconds or 0 for row in stalled)
    return [
        Diagnosis(
            "node-stalled",
            Severity.WARNING,
            f"no download progress for up to {human_age(oldest)} on "
            f"{len(stalled)} node(s): {_names([r.node for r in stalled])}",
            agent_pods_command(stalled[0].node),
        )
    ]


def orphaned_configmaps(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    if not ctx.nodes_known:
        return []
    gone = [r.node for r in m.nodes if r.exists is False and r.config_map is not None]
    if not gone:
        return []
    return [
        Diagnosis(
            "configmap-orphaned",
            Severity.WARNING,
            f"model-agent ConfigMap(s) for node(s) that no longer exist: {_names(gone)}; "
            "OME ignores them",
            f"kubectl delete configmap {gone[0]} -n {naming.AGENT_NAMESPACE}",
        )
    ]


def label_configmap_mismatch(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    """The label (what pods select on) and the ConfigMap (what OME counts) disagree.

    A label without a ConfigMap entry is skipped: the agent writes the label first.
    """
    if not (ctx.nodes_known and ctx.configmaps_known):
        return []
    differ = [
        (r, r.config_map)
        for r in m.nodes
        if r.exists
        and r.config_map is not None
        and r.config_map is not NodeState.UNKNOWN
        and r.label != r.config_map  # a str enum: compares by value, without .value per row
    ]
    if not differ:
        return []
    first, entry = differ[0]
    return [
        Diagnosis(
            "label-configmap-mismatch",
            Severity.WARNING,
            f"node label and model-agent ConfigMap disagree on {len(differ)} node(s), e.g. "
            f"{first.node}: label {first.label or 'missing'}, ConfigMap {entry.value}",
            f"kubectl get node {first.node} -L {m.label_key}",
        )
    ]


def no_matching_nodes(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    if not ctx.nodes_known or m.scheme is StorageScheme.PVC or m.targeted != 0:
        return []
    selector = ",".join(f"{k}={v}" for k, v in sorted(m.node_selector.items()))
    step = f"kubectl get nodes -l {selector}" if selector else "kubectl get nodes --show-labels"
    return [
        Diagnosis(
            "no-matching-nodes",
            Severity.ERROR,
            "no node matches the model's nodeSelector/nodeAffinity, so no node downloads it",
            step,
        )
    ]


# -- model rules -------------------------------------------------------------------------------


def disabled_model(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    if not m.disabled:
        return []
    patch = json.dumps({"spec": {"disabled": False}}, separators=(",", ":"))
    return [
        Diagnosis(
            "model-disabled",
            Severity.WARNING,
            "the model is disabled (spec.disabled: true)",
            f"kubectl patch {model_ref(m)} --type merge -p '{patch}'",
        )
    ]


def hashed_label_key(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    if not m.label_key_hashed:
        return []
    return [
        Diagnosis(
            "hashed-label-key",
            Severity.INFO,
            f"the name is too long for a node label, so OME uses the shortened key {m.label_key}",
            f"kubectl get nodes -L {m.label_key}",
        )
    ]


def workloads_pending(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    """Serving pods wait for a node labelled Ready for the model."""
    if m.scheme is StorageScheme.PVC and not ctx.native_pvc and not _isvc_route_users(m):
        return []  # pvc_on_released_ome says what to do: `patch` alone cannot help here
    for service in m.services or ():
        for workload in service.workloads or ():
            if workload.mode is WorkloadMode.PENDING:
                return [
                    Diagnosis(
                        "workloads-pending",
                        Severity.WARNING,
                        f"{workload.kind} {service.namespace}/{workload.name} of "
                        f"InferenceService {service.name} waits for a node labelled "
                        f"{m.label_key}, which no node has",
                        _unblock_command(m, ctx, service.namespace, service.name),
                    )
                ]
    return []


def _unblock_command(m: ModelStatus, ctx: RuleContext, namespace: str, isvc: str) -> str:
    """What gets a model's pending serving pods going, as far as a command can."""
    if m.claim is not None:  # a pvc:// model
        if f"{namespace}/{isvc}" in _isvc_route_users(m):
            # On the isvc route `patch` again labels the nodes that reach the claim.
            return patch_command(namespace, isvc, m.claim.name)
        return status_command(m) if ctx.native_pvc else edit_isvc_command(namespace, isvc)
    if (
        m.path and m.reported_ready
    ):  # weights on some node (what --from-model reads): a claim over them can serve everywhere
        return create_command(m, namespace)
    if m.failed_nodes:
        return agent_pods_command(m.failed_nodes[0])
    return status_command(m)


def rollout_stuck(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    """A serving workload's new pods do not run: the scheduler's or the kubelet's reason.

    A rollout that is merely unfinished is said as such (info); the old pods still serve, so
    READY alone would call it healthy.
    """
    for service in m.services or ():
        for workload in service.workloads or ():
            if workload.rollout is None:
                continue
            what = (
                f"{workload.kind} {service.namespace}/{workload.name} of InferenceService"
                f" {service.name} is not rolled out ({workload.rollout})"
            )
            if workload.problems:
                first = workload.problems[0]
                more = len(workload.problems) - 1
                also = f" (and {more} more pod{'s' if more > 1 else ''})" if more else ""
                return [
                    Diagnosis(
                        "rollout-stuck",
                        Severity.ERROR,
                        f"{what}: {first.text}{also}",
                        f"kubectl describe pod {first.pod} -n {service.namespace}",
                    )
                ]
            return [
                Diagnosis(
                    "rollout-unfinished",
                    Severity.INFO,
                    what,
                    f"kubectl describe {workload.kind.lower()} {workload.name}"
                    f" -n {service.namespace}",
                )
            ]
    return []


def isvc_route_can_go_native(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    """After an OME upgrade the isvc route's own volume, mount and env can go."""
    if not ctx.native_pvc or m.scheme is not StorageScheme.PVC:
        return []
    for service in m.services or ():
        if service.route == ISVC_ROUTE:
            claim = m.claim.name if m.claim else None
            return [
                Diagnosis(
                    "isvc-route-can-go-native",
                    Severity.INFO,
                    "this OME serves pvc:// models itself: InferenceService"
                    f" {service.namespace}/{service.name} can drop its own claim volume, mount"
                    " and MODEL_PATH and the node labels (the native route), in one step",
                    patch_command(service.namespace, service.name, claim),
                )
            ]
    return []


def labelled_node_unreachable(m: ModelStatus, ctx: RuleContext) -> list[Diagnosis]:
    """A node labelled Ready for a pvc:// model that its claim's volume cannot be used on."""
    stray = m.claim.unreachable_labelled if m.claim else ()
    if not stray:
        return []
    return [
        Diagnosis(
            "labelled-node-unreachable",
            Severity.WARNING,
            f"node{'s' if len(stray) > 1 else ''} {_names(stray)} carr"
            f"{'y' if len(stray) > 1 else 'ies'} {m.label_key}=Ready but cannot reach"
            f" {_claim_text(m)} (its volume is pinned to other nodes): pods placed there"
            " cannot mount it",
            f"kubectl label node {stray[0]} {m.label_key}-",
        )
    ]


RULES: tuple[Rule, ...] = (
    pvc_on_released_ome,
    pvc_uri_invalid,
    condition_reasons,
    pvc_claim_observed,
    pvc_uri_wrong_form,
    pvc_uri_unsafe,
    undownloadable_scheme,
    path_outside_agent_root,
    disabled_model,
    no_matching_nodes,
    failed_nodes,
    stalled_nodes,
    orphaned_configmaps,
    label_configmap_mismatch,
    workloads_pending,
    rollout_stuck,
    hashed_label_key,
    isvc_route_can_go_native,
    labelled_node_unreachable,
)


def diagnose(m: ModelStatus, ctx: RuleContext) -> tuple[Diagnosis, ...]:
    """All diagnoses for one model: first of each code, most severe first, rule order kept."""
    seen: set[str] = set()
    found = []
    for rule in RULES:
        for d in rule(m, ctx):
            if d.code not in seen:
                seen.add(d.code)
                found.append(d)
    return tuple(sorted(found, key=lambda d: d.severity.rank))
