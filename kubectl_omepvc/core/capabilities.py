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
    generation_basis: str | None = None  # what native_pvc was told from (core.generation)
    leader_worker_set: bool | None = None
    mutating_policy_version: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def ome_served(self) -> bool:
        return bool(self.ome_resources) and all(self.ome_resources.get(k) for k in OME_KINDS)

    @property
    def ome_generation(self) -> str:
        """`native-pvc` (OME from main since July 2026), `released` (hostPath only), `unknown`
        (neither schema nor objects tell) or `absent`."""
        if not self.ome_resources.get("clusterbasemodels"):
            return "absent"
        if self.native_pvc is None:
            return "unknown"
        return "native-pvc" if self.native_pvc else "released"

    def as_dict(self) -> dict[str, Any]:
        return {
            "serverVersion": self.server_version,
            "ome": {
                "served": self.ome_served,
                "resources": dict(self.ome_resources),
                "generation": self.ome_generation,
                "nativePVC": self.native_pvc,
                "generationBasis": self.generation_basis,
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
    """Whether the OpenAPI v3 schema of ome.io `kind` has `status.conditions`: the capability
    probe for native `pvc://` support (OME gained model conditions in the same change set). None
    when the kind is absent or its status is schemaless (see `core.generation.from_schema`)."""
    from kubectl_omepvc.core import generation

    return generation.from_schema(openapi, kind).native_pvc
