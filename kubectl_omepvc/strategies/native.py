"""`--strategy native`: a `pvc://` model, and the isvc pointed at it (OME that serves pvc://).

Newer OME mounts a `pvc://` model's claim itself (read-only, `subPath` from the URI, no model
nodeSelector), so nothing has to be patched or defended: the plugin creates a copy of the
isvc's current model with `storageUri` the URI OME requires for its kind (a ClusterBaseModel's
`pvc://<ns>:<claim>/<sub-path>`, a BaseModel's `pvc://<claim>/<sub-path>`; see
`core.storage_uri.model_pvc_uri`) and no `path` (or reuses a model that already points there),
and switches the isvc's model reference to it. What was
replaced is recorded in the isvc's `ome-pvc.io/original` annotation for `unpatch`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kubectl_omepvc import __version__, errors
from kubectl_omepvc.core import claims, manifests
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.capabilities import Capabilities
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.rbac import MODELS, Rule
from kubectl_omepvc.core.storage_uri import (
    PvcUriError,
    StorageScheme,
    parse_model_pvc_uri,
    scheme_of,
)
from kubectl_omepvc.options import DryRun
from kubectl_omepvc.strategies import (
    NATIVE_RECORD_FORMAT,
    Job,
    Log,
    Obj,
    Outcome,
    Target,
    dry_run_suffix,
    strip_server_fields,
)

if TYPE_CHECKING:
    from kubectl_omepvc.api.client import Client

NAME = "native"
MERGE_PATCH = "application/merge-patch+json"


def model_line(kind: ModelKind | str, name: str) -> str:
    return f"{ModelKind(kind).resource}.ome.io/{name}"


def normal_sub_path(sub_path: str) -> str:
    return "/".join(p for p in sub_path.split("/") if p not in ("", "."))


def points_at(
    kind: ModelKind, model: Mapping[str, Any], namespace: str, claim: str, sub_path: str
) -> bool:
    """Whether a model of `kind` serves this claim and sub-path natively (pure): its URI is
    `pvc://` in the form OME requires for the kind, on this claim and sub-path.

    A BaseModel's URI has no namespace: the model's own is the claim's.
    """
    uri = str(((model.get("spec") or {}).get("storage") or {}).get("storageUri") or "")
    if scheme_of(uri) is not StorageScheme.PVC:
        return False
    try:
        parsed = parse_model_pvc_uri(kind, uri)
    except PvcUriError:
        return False
    claim_ns = parsed.namespace or (model.get("metadata") or {}).get("namespace")
    return (
        claim_ns == namespace
        and parsed.claim == claim
        and normal_sub_path(parsed.sub_path) == normal_sub_path(sub_path)
    )


class NativeStrategy:
    name = NAME
    summary = "a pvc:// model and the isvc pointed at it (OME mounts the claim itself)"
    # What `patch` writes and `unpatch` undoes: the pvc:// model (applied, awaited, deleted)
    # and the isvc pointed at it.
    rules: tuple[Rule, ...] = (
        Rule(r.OME_GROUP, MODELS, ("get", "list", "watch", "create", "patch", "delete")),
        Rule(r.OME_GROUP, ("inferenceservices",), ("patch",)),
    )

    def unavailable(self, caps: Capabilities) -> str | None:
        if caps.native_pvc:
            return None
        if caps.native_pvc is None:
            return "cannot tell whether this OME serves pvc:// models" + (
                f" ({caps.generation_basis})" if caps.generation_basis else ""
            )
        return (
            "this OME does not serve pvc:// models (its model CRDs have no status.conditions;"
            " that arrived with native pvc:// support in OME built from main after 2026-07-07)"
        )

    def run(self, job: Job) -> Outcome:
        target, settings, client = job.target, job.settings, job.client
        model = target.model
        if not target.sub_path:
            raise errors.InputError(
                f"model {model.name} is at the root of claim {target.claim}, and a pvc:// URI"
                " needs a sub-path",
                "use --strategy policy, or keep the model in a directory on the volume",
            )
        ref = r.model_resource(model.kind)
        model_ns = target.namespace if model.kind is ModelKind.NAMESPACED else None
        wanted = settings.model_name or f"{model.name}-pvc"
        manifests.validate_dns_subdomain(wanted, "model name")
        reuse = find_pvc_model(client, model.kind, model_ns, target, wanted)
        if reuse is None:
            taken = client.get_or_none(ref, wanted, model_ns)
            if taken is not None:
                uri = ((taken.get("spec") or {}).get("storage") or {}).get("storageUri")
                raise errors.InputError(
                    f"{model.kind.value} {wanted} already exists and serves {uri}, not claim"
                    f" {target.claim}",
                    "pass --model-name with another name",
                )
        new_name = str(reuse["metadata"]["name"]) if reuse else wanted
        new_model = (
            None
            if reuse
            else manifests.pvc_model(
                model.kind,
                wanted,
                model_ns,
                target.namespace,
                target.claim,
                target.sub_path,
                copy_from=model.obj,
            )
        )
        record = {
            "format": NATIVE_RECORD_FORMAT,
            "plugin": __version__,
            "strategy": NAME,
            "field": model.field,
            "originalModel": {"kind": model.kind.value, "name": model.name},
            "model": {"kind": model.kind.value, "name": new_name},
            "createdModel": reuse is None,
            "claim": target.claim,
            "subPath": target.sub_path,
        }
        isvc_patch = switch_patch(target.isvc, model.field, new_name, record)
        outcome = Outcome(NAME)
        suffix = dry_run_suffix(settings.dry_run)
        isvc_line = f"inferenceservice.ome.io/{target.isvc_name}"
        lines = [] if reuse else [f"{model_line(model.kind, new_name)} created{suffix}"]
        if reuse:
            job.log(f"reusing {model_line(model.kind, new_name)}: it already serves the claim")
        lines.append(f"{isvc_line} patched{suffix}")

        if settings.dry_run is DryRun.CLIENT:
            outcome.objects = [new_model] if new_model else []
            outcome.objects.append(_merged(target.isvc, isvc_patch))
            outcome.actions = lines
            return outcome

        isvcs = r.INFERENCE_SERVICES
        answers = []
        if new_model is not None:
            answers.append(client.apply(ref, new_model, namespace=model_ns, dry_run=True))
        answers.append(
            client.patch(
                isvcs,
                target.isvc_name,
                isvc_patch,
                namespace=target.namespace,
                content_type=MERGE_PATCH,
                dry_run=True,
            )
        )
        if settings.dry_run is DryRun.SERVER:
            outcome.objects = [strip_server_fields(a) for a in answers]
            outcome.actions = lines
            return outcome
        if new_model is not None:
            outcome.objects.append(
                strip_server_fields(client.apply(ref, new_model, namespace=model_ns))
            )
        try:
            answer = client.patch(
                isvcs,
                target.isvc_name,
                isvc_patch,
                namespace=target.namespace,
                content_type=MERGE_PATCH,
            )
        except errors.PluginError:
            if new_model is not None:
                client.delete(ref, new_name, model_ns)
            raise
        outcome.objects.append(strip_server_fields(answer))
        outcome.actions = lines
        outcome.rollout = list(target.workloads)
        return outcome


def find_pvc_model(
    client: Client, kind: ModelKind, model_ns: str | None, target: Target, wanted: str
) -> Obj | None:
    """A model of `kind` already serving the claim and sub-path (`wanted` first), or None."""
    try:
        models = list(client.list(r.model_resource(kind), model_ns))
    except errors.Forbidden:
        return None
    matching = [
        m for m in models if points_at(kind, m, target.namespace, target.claim, target.sub_path)
    ]
    matching.sort(key=lambda m: (m["metadata"]["name"] != wanted, m["metadata"]["name"]))
    return matching[0] if matching else None


def switch_patch(isvc: Mapping[str, Any], field: str, name: str | None, record: Any) -> Obj:
    """The merge patch naming model `name` in the isvc and setting (or with None, removing) the
    record; the resourceVersion makes it fail instead of overwriting a concurrent change."""
    spec: Obj = {"baseModel": name} if field == "baseModel" else {"model": {"name": name}}
    value = None if record is None else json.dumps(record, sort_keys=False)
    return {
        "metadata": {
            "resourceVersion": (isvc.get("metadata") or {}).get("resourceVersion"),
            "annotations": {jp.ANNOTATION: value},
        },
        "spec": spec,
    }


def _merged(obj: Mapping[str, Any], patch: Mapping[str, Any]) -> Obj:
    """RFC 7386 merge of `patch` into a copy of `obj` (for --dry-run=client output)."""
    out: Obj = json.loads(json.dumps(obj))
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        elif isinstance(value, Mapping):
            out[key] = _merged({}, value)
        else:
            out[key] = value
    return out


def undo(client: Client, isvc: Obj, record: Mapping[str, Any], mode: DryRun, log: Log) -> Outcome:
    """Point the isvc back at its original model; delete the pvc:// model if ours and unused."""
    meta = isvc["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    field = str(record.get("field") or "model")
    original = str(record["originalModel"]["name"])
    created = record["model"]
    spec = isvc.get("spec") or {}
    current = (
        spec.get("baseModel") if field == "baseModel" else (spec.get("model") or {}).get("name")
    )
    if current != created["name"]:
        raise errors.InputError(
            f"inferenceservice {name} now names model {current}, not {created['name']} that"
            " `patch` set",
            f"point it at the model you want by hand and remove its {jp.ANNOTATION} annotation",
        )
    patch = switch_patch(isvc, field, original, None)
    kind = ModelKind(str(created["kind"]))
    ref = r.model_resource(kind)
    model_ns = namespace if kind is ModelKind.NAMESPACED else None
    delete = bool(record.get("createdModel"))
    if delete:
        users = other_users(client, kind, str(created["name"]), namespace, name)
        if users is None:
            log(
                f"cannot list inferenceservices to see who else uses model {created['name']};"
                " keeping it"
            )
            delete = False
        elif users:
            log(f"keeping {model_line(kind, created['name'])}: also used by {', '.join(users)}")
            delete = False
    outcome = Outcome(NAME)
    suffix = dry_run_suffix(mode)
    isvc_line = f"inferenceservice.ome.io/{name}"
    outcome.actions = [f"{isvc_line} patched{suffix}"]
    if delete:
        outcome.actions.append(f"{model_line(kind, created['name'])} deleted{suffix}")
    if mode is DryRun.CLIENT:
        outcome.objects = [_merged(isvc, patch)]
        return outcome
    answer = client.patch(
        r.INFERENCE_SERVICES,
        name,
        patch,
        namespace=namespace,
        content_type=MERGE_PATCH,
        dry_run=True,
    )
    if delete:
        client.delete(ref, str(created["name"]), model_ns, dry_run=True)
    if mode is DryRun.SERVER:
        outcome.objects = [strip_server_fields(answer)]
        return outcome
    answer = client.patch(
        r.INFERENCE_SERVICES, name, patch, namespace=namespace, content_type=MERGE_PATCH
    )
    outcome.objects = [strip_server_fields(answer)]
    if delete:
        client.delete(ref, str(created["name"]), model_ns)
    return outcome


def other_users(
    client: Client, kind: ModelKind, model: str, namespace: str, isvc: str
) -> list[str] | None:
    """Other isvcs naming `model` (`ns/name`), or None when they cannot be listed."""
    scope = namespace if kind is ModelKind.NAMESPACED else None
    try:
        items = list(client.list(r.INFERENCE_SERVICES, scope))
    except errors.Forbidden:
        return None
    users = []
    for item in items:
        meta = item.get("metadata") or {}
        if (meta.get("namespace"), meta.get("name")) == (namespace, isvc):
            continue
        spec = item.get("spec") or {}
        names = {(spec.get("model") or {}).get("name"), spec.get("baseModel")}
        if model in names:
            users.append(f"{meta.get('namespace')}/{meta.get('name')}")
    return users


NATIVE = NativeStrategy()


def wait_until_served(client: Client, target: Target, timeout: float, log: Log) -> None:
    """Newer OME re-renders the workloads for the pvc:// model: wait for that, then the rollout."""
    from kubectl_omepvc.api import workloads as w

    deadline = time.monotonic() + timeout
    log(f"waiting for OME to mount claim {target.claim} in the workloads")
    while True:
        current = w.find_workloads(client, target.isvc, target.caps.leader_worker_set)
        if current and all(claims.uses_claim(wl, target.claim) for wl in current):
            break
        if time.monotonic() >= deadline:
            raise w.RolloutFailed(
                f"OME has not switched the workloads of inferenceservice {target.isvc_name} to"
                f" claim {target.claim} after {timeout:g}s",
                f"see the pvc:// model's conditions (`kubectl get {target.model.kind.resource}"
                " -o yaml`) and OME's controller logs",
            )
        time.sleep(1)
    w.follow_rollouts(client, target.namespace, current, max(1.0, deadline - time.monotonic()), log)
