"""What the cluster offers, read from discovery documents (pure: documents in, facts out)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

OME_KINDS = ("clusterbasemodels", "basemodels", "inferenceservices")
POLICY_VERSIONS = ("v1", "v1beta1", "v1alpha1")  # best first


@dataclasses.dataclass
class Capabilities:
    """The probe's answer; `None` means "could not be determined" (see `notes`)."""

    server_version: str | None = None
    ome_resources: dict[str, bool] = dataclasses.field(default_factory=dict)
    native_pvc: bool | None = None
    leader_worker_set: bool | None = None
    mutating_policy_version: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def ome_served(self) -> bool:
        return bool(self.ome_resources) and all(self.ome_resources.get(k) for k in OME_KINDS)

    @property
    def ome_generation(self) -> str:
        """`native-pvc` (OME from main since July 2026), `released` (hostPath only) or `absent`."""
        if not self.ome_resources.get("clusterbasemodels"):
            return "absent"
        return "native-pvc" if self.native_pvc else "released"

    def as_dict(self) -> dict[str, Any]:
        return {
            "serverVersion": self.server_version,
            "ome": {
                "served": self.ome_served,
                "resources": dict(self.ome_resources),
                "generation": self.ome_generation,
                "nativePVC": self.native_pvc,
            },
            "leaderWorkerSet": self.leader_worker_set,
            "mutatingAdmissionPolicy": self.mutating_policy_version,
            "notes": list(self.notes),
        }


def served_group_versions(apis: Mapping[str, Any]) -> dict[str, list[str]]:
    """`/apis` (APIGroupList) → {group: [versions]}."""
    out: dict[str, list[str]] = {}
    for group in apis.get("groups") or []:
        out[group.get("name", "")] = [v.get("version", "") for v in group.get("versions") or []]
    return out


def resource_names(resource_list: Mapping[str, Any]) -> set[str]:
    """An APIResourceList → its top-level resource names (no subresources)."""
    return {
        str(r.get("name"))
        for r in resource_list.get("resources") or []
        if "/" not in str(r.get("name", ""))
    }


def status_has_conditions(openapi: Mapping[str, Any], kind: str) -> bool | None:
    """Whether the OpenAPI v3 schema of ome.io `kind` has `status.conditions`.

    This is the capability probe for native `pvc://` support: OME gained model conditions in the
    same change set that taught it to serve models from claims. None when the kind is absent.
    """
    schemas = (openapi.get("components") or {}).get("schemas") or {}
    for name, schema in schemas.items():
        if not name.endswith(f".{kind}"):
            continue
        gvk = schema.get("x-kubernetes-group-version-kind") or []
        if gvk and not any(g.get("group") == "ome.io" for g in gvk):
            continue
        status = (schema.get("properties") or {}).get("status") or {}
        if "allOf" in status:  # OpenAPI v3 may wrap a $ref
            status = status["allOf"][0]
        ref = status.get("$ref")
        if isinstance(ref, str):
            status = schemas.get(ref.rsplit("/", 1)[-1], {})
        return "conditions" in (status.get("properties") or {})
    return None
