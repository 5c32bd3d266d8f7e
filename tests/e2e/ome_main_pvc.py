"""OME `main`'s PVC backend for models, re-enacted against the real API server, for e2e tests.

No runnable snapshot of OME `main` exists here, so its behaviour is written down from its source
(sgl-project/ome; each piece names the file and commit it follows) and runs as plain API calls,
using none of the plugin's code:

- `reconcile`: one pass of `Reconcile` in pkg/controller/v1beta1/basemodel/backends/pvc/pvc.go at
  5ed809d2440dd47fcabcafa46bf1200d93236cc5: parse the URI, the namespace rule per model kind,
  the claim (missing, not Bound), the ome-agent image, the metadata Job
  (metadata_job.go at the same commit), then the per-model status ConfigMap
  (pkg/constants/pvc.go at the same commit). State, conditions (SourceReachable and Ready,
  always written together), observedGeneration and lastReconcileTime go through the status
  subresource, as updatePVCConditionedStatus does.
- `agent_reports`: what `ome-agent model-metadata` in the Job writes into that ConfigMap.
- `webhook_policy`: OME's validating webhook for the model kinds
  (pkg/webhook/admission/basemodel/basemodel_webhook.go at 39b5dd06 calling
  pkg/validation/basemodel.go ValidatePVCStorage at aab06ebe, failurePolicy Fail), as a
  ValidatingAdmissionPolicy: the real server denies what OME's webhook denies.
- `native_engine`: the engine Deployment OME `main` renders for an isvc on a pvc:// model
  (pkg/controller/v1beta1/inferenceservice/components/base.go at e67a86ac): the claim as a
  volume named after the model, read-only at /opt/ml/model with the URI's sub-path, no model
  nodeSelector; the URI's namespace is dropped, so the claim is the isvc namespace's.

Kept apart from `ome_controller` (released OME's reconcile) on purpose.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from typing import Any

from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import resources as r
from tests import factories

Obj = dict[str, Any]
OME_NAMESPACE = "ome"
IMAGE = "ome-agent:test"
SERVICE_ACCOUNT = "ome-model-metadata"
NAME_LABEL = "models.ome/model-name"
SCOPE_LABEL = "models.ome/model-scope"
STATUS_LABEL = "models.ome/pvc-status"
LAST_ERROR = "models.ome/pvc-metadata-last-error"
MERGE_PATCH = "application/merge-patch+json"
SERVICE_ACCOUNTS = r.ResourceRef("", "v1", "serviceaccounts", "ServiceAccount")
POLICIES = r.ResourceRef(
    "admissionregistration.k8s.io",
    "v1",
    "validatingadmissionpolicies",
    "ValidatingAdmissionPolicy",
    namespaced=False,
)
BINDINGS = r.ResourceRef(
    "admissionregistration.k8s.io",
    "v1",
    "validatingadmissionpolicybindings",
    "ValidatingAdmissionPolicyBinding",
    namespaced=False,
)
_NAMESPACE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


# --- pkg/utils/storage/storage.go ParsePVCStorageURI and pvc.go resolvePVCNamespace -------------


class Invalid(ValueError):
    pass


def parse(uri: str) -> tuple[str, str, str]:
    """(namespace or "", claim, sub-path), or Invalid with OME's reason."""
    rest = uri.removeprefix("pvc://")
    if rest == uri or not rest:
        raise Invalid("invalid PVC storage URI format")
    head, slash, sub_path = rest.partition("/")
    if not slash:
        raise Invalid("invalid PVC storage URI format: missing subpath")
    namespace, colon, claim = head.partition(":")
    if not colon:
        namespace, claim = "", head
    elif not namespace or not claim or ":" in claim or not _NAMESPACE.fullmatch(namespace):
        raise Invalid("invalid PVC storage URI format: bad namespace or PVC name")
    if not claim:
        raise Invalid("invalid PVC storage URI format: missing PVC name")
    if not sub_path:
        raise Invalid("invalid PVC storage URI format: missing subpath")
    return namespace, claim, sub_path


def resolve_namespace(model_namespace: str, cluster: bool, uri_namespace: str) -> str:
    if cluster:
        if not uri_namespace:
            raise Invalid(
                "ClusterBaseModel PVC URI must specify a namespace (format: "
                "pvc://{namespace}:{pvc-name}/{sub-path})"
            )
        return uri_namespace
    if uri_namespace:
        raise Invalid(
            "namespaced BaseModel PVC URI must not specify a namespace; the BaseModel's own "
            "namespace is used"
        )
    return model_namespace


# --- pkg/constants/pvc.go and metadata_job.go ---------------------------------------------------


def _hash8(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def status_configmap_name(name: str, namespace: str | None) -> str:
    return "pvc-metadata-" + _hash8(name if namespace is None else f"{namespace}/{name}")


def configmap_key(name: str, namespace: str | None) -> str:
    return f"clusterbasemodel.{name}" if namespace is None else f"{namespace}.basemodel.{name}"


def job_name(model: str, uri: str) -> str:
    name = f"{model}-metadata-{_hash8(uri)}"
    if len(name) > 63:
        trimmed = model[: len(model) - (len(name) - 63)]
        name = (
            f"{trimmed}-metadata-{_hash8(uri)}" if trimmed else f"metadata-metadata-{_hash8(uri)}"
        )
    return name


def labels(name: str, cluster: bool) -> dict[str, str]:
    return {NAME_LABEL: name, SCOPE_LABEL: "cluster" if cluster else "namespaced"}


def metadata_job(
    model: Obj,
    claim_ns: str,
    claim: str,
    sub_path: str,
    image: str,
    node_selector: dict[str, str] | None = None,
) -> Obj:
    meta = model["metadata"]
    cluster = model["kind"] == "ClusterBaseModel"
    uri = model["spec"]["storage"]["storageUri"]
    args = [
        "model-metadata",
        "--config",
        "/ome-agent.yaml",
        "--model-path",
        "/model",
        "--basemodel-name",
        meta["name"],
    ]
    args += ["--cluster-scoped"] if cluster else ["--basemodel-namespace", meta["namespace"]]
    job_labels = labels(meta["name"], cluster)
    owner = {
        "apiVersion": model["apiVersion"],
        "kind": model["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(meta["name"], uri),
            "namespace": claim_ns,
            "labels": job_labels,
            "ownerReferences": [owner],
        },
        "spec": {
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": job_labels},
                "spec": {
                    "serviceAccountName": SERVICE_ACCOUNT,
                    # MetadataJobConfig.NodeSelector: the operator's pass-through
                    "nodeSelector": node_selector,
                    "restartPolicy": "Never",
                    "volumes": [
                        {
                            "name": "model",
                            "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
                        }
                    ],
                    "containers": [
                        {
                            "name": "model-metadata",
                            "image": image,
                            "args": args,
                            "env": [{"name": "POD_NAMESPACE", "value": OME_NAMESPACE}],
                            "volumeMounts": [
                                {
                                    "name": "model",
                                    "mountPath": "/model",
                                    "subPath": sub_path,
                                    "readOnly": True,
                                }
                            ],
                        }
                    ],
                },
            },
        },
    }


# --- pvc.go Reconcile ---------------------------------------------------------------------------


def _ref(model: Obj) -> r.ResourceRef:
    return r.CLUSTER_BASE_MODELS if model["kind"] == "ClusterBaseModel" else r.BASE_MODELS


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_status(client: Client, model: Obj, state: str, conditions: list[Obj]) -> Obj:
    """updatePVCConditionedStatus: meta.SetStatusCondition per condition (the transition time
    moves only when the status does), the state, observedGeneration, lastReconcileTime."""
    ref = _ref(model)
    meta = model["metadata"]
    live = client.get(ref, meta["name"], meta.get("namespace"))
    status = dict(live.get("status") or {})
    current = {c["type"]: c for c in status.get("conditions") or []}
    for cond in conditions:
        before = current.get(cond["type"])
        stamp = (
            before["lastTransitionTime"]
            if before and before["status"] == cond["status"]
            else _now()
        )
        current[cond["type"]] = {**cond, "lastTransitionTime": stamp}
    status.update(
        state=state,
        conditions=list(current.values()),
        observedGeneration=live["metadata"].get("generation"),
        lastReconcileTime=_now(),
    )
    return client.request(
        "PUT",
        ref.path(meta.get("namespace"), meta["name"]) + "/status",
        body={**live, "status": status},
        verb="update",
        resource=ref.display,
    )


def _pair(
    reachable: str,
    reason: str,
    message: str,
    ready: str | None = None,
    ready_reason: str | None = None,
    ready_message: str | None = None,
) -> list[Obj]:
    return [
        {"type": "SourceReachable", "status": reachable, "reason": reason, "message": message},
        {
            "type": "Ready",
            "status": ready or "False",
            "reason": ready_reason or reason,
            "message": ready_message or message,
        },
    ]


def failed(client: Client, model: Obj, reason: str, message: str) -> str:
    write_status(client, model, "Failed", _pair("False", reason, message))
    return reason


def in_transit(client: Client, model: Obj, reason: str, message: str) -> str:
    write_status(client, model, "In_Transit", _pair("True", reason, message))
    return reason


def extraction_failed(client: Client, model: Obj, message: str) -> str:
    conditions = _pair(
        "True", "PVCValidated", "PVC is reachable", "False", "PVCMetadataExtractionFailed", message
    )
    write_status(client, model, "Failed", conditions)
    return "PVCMetadataExtractionFailed"


def reconcile(
    client: Client,
    kind: str,
    name: str,
    namespace: str | None = None,
    *,
    image: str = IMAGE,
    node_selector: dict[str, str] | None = None,
) -> str | None:
    """One pass of OME main's PVC reconcile for a model; the reason it wrote (None: none)."""
    ref = r.CLUSTER_BASE_MODELS if kind == "ClusterBaseModel" else r.BASE_MODELS
    model = client.get(ref, name, namespace)
    model.setdefault("kind", kind)
    cluster = kind == "ClusterBaseModel"
    uri = model["spec"]["storage"]["storageUri"]
    try:
        uri_ns, claim, sub_path = parse(uri)
    except Invalid as exc:
        return failed(client, model, "PVCInvalid", f"invalid PVC storage URI {uri!r}: {exc}")
    try:
        claim_ns = resolve_namespace(namespace or "", cluster, uri_ns)
    except Invalid as exc:
        return failed(client, model, "PVCInvalid", str(exc))
    pvc = client.get_or_none(r.PVCS, claim, claim_ns)
    if pvc is None:
        return failed(client, model, "PVCNotFound", f"PVC {claim_ns}/{claim} not found")
    phase = (pvc.get("status") or {}).get("phase", "")
    if phase != "Bound":
        return in_transit(
            client, model, "PVCNotBound", f"PVC {claim_ns}/{claim} is not Bound (phase: {phase})"
        )
    if not image:
        return failed(
            client,
            model,
            "PVCConfigMissing",
            "ome-agent image is not configured (set the omeAgent block in inferenceservice-config)",
        )
    want = metadata_job(model, claim_ns, claim, sub_path, image, node_selector)
    job = client.get_or_none(r.JOBS, want["metadata"]["name"], claim_ns)
    if job is None:
        if client.get_or_none(SERVICE_ACCOUNTS, SERVICE_ACCOUNT, claim_ns) is None:
            client.create(
                SERVICE_ACCOUNTS,
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": SERVICE_ACCOUNT},
                },
                claim_ns,
            )
        client.create(r.JOBS, want, claim_ns)
        return in_transit(
            client,
            model,
            "PVCMetadataExtracting",
            f"metadata extraction Job {claim_ns}/{want['metadata']['name']} created",
        )
    cm_name = status_configmap_name(name, None if cluster else namespace)
    cm = client.get_or_none(r.CONFIG_MAPS, cm_name, OME_NAMESPACE)
    if cm is None:
        for cond in (job.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Failed" and cond.get("status") == "True":
                message = cond.get("message") or ""
                if cond.get("reason"):
                    message = f"{cond['reason']}: {message}"
                return extraction_failed(
                    client, model, message or "metadata extraction Job exhausted its retry budget"
                )
        return None
    key = configmap_key(name, None if cluster else namespace)
    raw = (cm.get("data") or {}).get(key)
    if raw is None:
        return in_transit(
            client,
            model,
            "PVCMetadataExtracting",
            f"PVC metadata ConfigMap {cm_name} lacks entry {key!r} yet",
        )
    entry = json.loads(raw)
    if entry.get("status") == "Ready":
        conditions = _pair(
            "True",
            "PVCValidated",
            "PVC is reachable",
            "True",
            "PVCMetadataReady",
            f"PVC metadata extraction succeeded; ConfigMap {cm_name} applied",
        )
        write_status(client, model, "Ready", conditions)
        return "PVCMetadataReady"
    if entry.get("status") == "Failed":
        said = ((cm.get("metadata") or {}).get("annotations") or {}).get(LAST_ERROR)
        return extraction_failed(
            client, model, said or "agent reported Failed without an error message"
        )
    return in_transit(
        client,
        model,
        "PVCMetadataExtracting",
        f"PVC metadata extraction in progress (ConfigMap status={entry.get('status')!r})",
    )


def agent_reports(
    client: Client, name: str, namespace: str | None, status: str, error: str | None = None
) -> Obj:
    """What `ome-agent model-metadata` writes: the entry, and the last error as annotation."""
    cluster = namespace is None
    cm_name = status_configmap_name(name, namespace)
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": cm_name,
            "namespace": OME_NAMESPACE,
            "labels": {STATUS_LABEL: "true", **labels(name, cluster)},
            "annotations": {LAST_ERROR: error} if error else {},
        },
        "data": {configmap_key(name, namespace): json.dumps({"name": name, "status": status})},
    }
    if client.get_or_none(r.CONFIG_MAPS, cm_name, OME_NAMESPACE) is None:
        return client.create(r.CONFIG_MAPS, cm, OME_NAMESPACE)
    return client.patch(
        r.CONFIG_MAPS, cm_name, cm, namespace=OME_NAMESPACE, content_type=MERGE_PATCH
    )


def delete_status_configmap(client: Client, name: str, namespace: str | None) -> None:
    client.delete(r.CONFIG_MAPS, status_configmap_name(name, namespace), OME_NAMESPACE)


# --- the webhook, as a ValidatingAdmissionPolicy ------------------------------------------------

_PVC = "object.spec.storage.storageUri"
_NS = "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"


def webhook_policy(name: str) -> tuple[Obj, Obj]:
    """OME's model webhook as a policy and its binding (deny, like failurePolicy Fail)."""
    is_pvc = (
        "has(object.spec) && has(object.spec.storage) && has(object.spec.storage.storageUri)"
        f" && {_PVC}.startsWith('pvc://')"
    )
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["ome.io"],
                        "apiVersions": ["v1beta1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["basemodels", "clusterbasemodels"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": f"!({is_pvc}) || request.resource.resource != 'basemodels' || "
                    f"{_PVC}.matches('^pvc://[^/:]+/.+$')",
                    "message": "namespaced BaseModel PVC URI must not specify a namespace; the "
                    "BaseModel's own namespace is used",
                },
                {
                    "expression": f"!({is_pvc}) || request.resource.resource != 'clusterbasemodels'"
                    f" || {_PVC}.matches('^pvc://{_NS}:[^/:]+/.+$')",
                    "message": "ClusterBaseModel PVC URI must specify a namespace (format: "
                    "pvc://{namespace}:{pvc-name}/{sub-path})",
                },
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }
    return policy, binding


# --- components/base.go: the engine of an isvc on a pvc:// model --------------------------------


def native_engine(
    isvc_name: str,
    namespace: str,
    model: str,
    claim: str,
    sub_path: str,
    isvc_uid: str,
    model_kind: Any,
) -> Obj:
    """OME main's engine Deployment for a pvc:// model: the claim, not the node label."""
    engine = factories.engine_deployment(
        isvc_name, model, "/unused", namespace=namespace, model_kind=model_kind, isvc_uid=isvc_uid
    )
    engine.pop("status", None)
    spec = engine["spec"]["template"]["spec"]
    spec.pop("nodeSelector", None)
    spec["volumes"] = [v for v in spec.get("volumes") or [] if v["name"] != model] + [
        {"name": model, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
    ]
    for container in spec["containers"]:
        mounts = [m for m in container.get("volumeMounts") or [] if m["name"] != model]
        if container["name"] == "ome-container":
            mounts.append(
                {"name": model, "mountPath": "/opt/ml/model", "subPath": sub_path, "readOnly": True}
            )
            env = [e for e in container.get("env") or [] if e["name"] != "MODEL_PATH"]
            container["env"] = [*env, {"name": "MODEL_PATH", "value": "/opt/ml/model"}]
        container["volumeMounts"] = mounts
    return engine
