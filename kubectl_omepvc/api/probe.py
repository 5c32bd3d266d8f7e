"""The capability probe: which OME generation and admission APIs this cluster serves.

Only discovery endpoints are read (allowed to every authenticated user by default), so the
probe works for users with no rights on OME's objects. A failed look-up becomes a note and an
unknown (None) value, never an abort.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from kubectl_omepvc import errors
from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import capabilities, generation, naming
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.capabilities import Capabilities


def probe(client: Client) -> Capabilities:
    caps = Capabilities()
    version = client.get_raw("/version")
    caps.server_version = str(version.get("gitVersion") or "") or None
    groups = capabilities.served_group_versions(client.get_raw("/apis"))

    if "v1beta1" in groups.get("ome.io", []):
        names = capabilities.resource_names(client.get_raw("/apis/ome.io/v1beta1"))
        caps.ome_resources = {kind: kind in names for kind in capabilities.OME_KINDS}
        try:
            schema = generation.from_schema(client.get_raw("/openapi/v3/apis/ome.io/v1beta1"))
        except errors.PluginError as exc:
            schema = generation.Verdict(None, f"OME's schema is not readable ({exc.message})")
        verdict = schema
        if schema.native_pvc is None and caps.ome_resources.get("clusterbasemodels"):
            verdict = generation.decide(schema, *_object_evidence(client))
        caps.native_pvc, caps.generation_basis = verdict.native_pvc, verdict.basis
        if verdict.native_pvc is None:
            caps.notes.append(f"cannot tell OME's generation: {verdict.basis}")
    else:
        caps.ome_resources = {kind: False for kind in capabilities.OME_KINDS}
        caps.native_pvc = False
        caps.generation_basis = "OME's API group ome.io is not served"

    caps.leader_worker_set = "leaderworkerset.x-k8s.io" in groups

    served = groups.get("admissionregistration.k8s.io", [])
    for api_version in capabilities.POLICY_VERSIONS:
        if api_version not in served:
            continue
        try:
            names = capabilities.resource_names(
                client.get_raw(f"/apis/admissionregistration.k8s.io/{api_version}")
            )
        except errors.PluginError as exc:
            caps.notes.append(
                f"could not list admissionregistration.k8s.io/{api_version}: {exc.message}"
            )
            continue
        if "mutatingadmissionpolicies" in names:
            caps.mutating_policy_version = api_version
            break
    return caps


def _readable(client: Client, ref: r.ResourceRef, **kwargs: Any) -> list[dict[str, Any]]:
    try:
        return list(client.list(ref, **kwargs))
    except (errors.Forbidden, errors.NotFound):
        return []


def _object_evidence(client: Client) -> list[generation.Verdict | None]:
    """When the schema cannot tell: what the models, then OME's workloads, show (the reads the
    user may not make count as no evidence)."""
    models = _readable(client, r.CLUSTER_BASE_MODELS) + _readable(client, r.BASE_MODELS)
    found = generation.from_models(models, datetime.now(timezone.utc))
    if found is not None or not any(generation.is_pvc(m) for m in models):
        return [found]
    workloads = _readable(client, r.DEPLOYMENTS, label_selector=naming.ISVC_LABEL)
    return [generation.from_workloads(models, workloads)]
