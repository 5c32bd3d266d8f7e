"""The capability probe: which OME generation and admission APIs this cluster serves.

Only discovery endpoints are read (allowed to every authenticated user by default), so the
probe works for users with no rights on OME's objects. A failed look-up becomes a note and an
unknown (None) value, never an abort.
"""

from __future__ import annotations

from kubectl_omepvc import errors
from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import capabilities
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
            openapi = client.get_raw("/openapi/v3/apis/ome.io/v1beta1")
            caps.native_pvc = bool(capabilities.status_has_conditions(openapi, "ClusterBaseModel"))
        except errors.PluginError as exc:
            caps.notes.append(f"could not read OME's schema to tell its generation: {exc.message}")
    else:
        caps.ome_resources = {kind: False for kind in capabilities.OME_KINDS}
        caps.native_pvc = False

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
