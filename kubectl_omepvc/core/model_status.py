"""The model-status records: what `status` knows about one model, its nodes and its users.

`core.status` builds them from the API's objects and `core.diagnoses` reads them (and adds its
`Diagnosis` records); both import this module and neither imports the other's records. JSON
shapes (`as_dict`) are documented in `core.status`.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.rollout import PodProblem
from kubectl_omepvc.core.storage_uri import PvcUri, StorageScheme

Obj = Mapping[str, Any]


# The strategy name of the isvc route (patch --strategy isvc).
ISVC_ROUTE = "isvc"


class NodeState(str, enum.Enum):
    """A model's state on one node."""

    READY = "Ready"
    UPDATING = "Updating"
    FAILED = "Failed"
    UNKNOWN = "unknown"  # an entry or label we cannot read
    PENDING = "Pending"  # selected, but the agent has reported nothing yet


class WorkloadMode(str, enum.Enum):
    """How a serving workload gets the model's weights."""

    HOST_PATH = "hostPath"
    PATCHED = "pvc-patched"  # switched to a claim by this plugin
    NATIVE_PVC = "pvc-native"  # OME mounts the claim itself (pvc:// model, newer OME)
    PENDING = "pending-node-selector"
    UNKNOWN = "unknown"


# -- small readers (core.status reads the API's values with them too) -----------------------


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})?"
)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (Go writes up to 9 fraction digits) → aware datetime, or None."""
    if not isinstance(value, str):
        return None
    match = _RFC3339.fullmatch(value.strip())
    if not match:
        return None
    date, clock, fraction, zone = match.groups()
    micro = f".{(fraction or '0')[:6]:0<6}"
    offset = "+00:00" if zone in (None, "Z", "z") else zone
    try:
        return datetime.fromisoformat(f"{date}T{clock}{micro}{offset}")
    except ValueError:
        return None


def _whole(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds)


# -- per-node records --------------------------------------------------------------------------


# The per-node records are NamedTuples: at scale there is one per (model, node) pair, and a
# tuple is built several times faster than a frozen dataclass (status builds 20,000 per run).


class Progress(NamedTuple):
    """The agent's download progress on one node (cleared by OME at Ready/Failed)."""

    phase: str | None = None
    total_bytes: int | None = None
    completed_bytes: int | None = None
    total_files: int | None = None
    completed_files: int | None = None
    speed_bytes_per_sec: float | None = None
    last_updated: datetime | None = None

    @classmethod
    def from_dict(cls, data: Obj) -> Progress:
        return cls(
            phase=_str(data.get("phase")),
            total_bytes=_int(data.get("totalBytes")),
            completed_bytes=_int(data.get("completedBytes")),
            total_files=_int(data.get("totalFiles")),
            completed_files=_int(data.get("completedFiles")),
            speed_bytes_per_sec=_num(data.get("speedBytesPerSec")),
            last_updated=parse_time(data.get("lastUpdated")),
        )

    @property
    def percent(self) -> float | None:
        if not self.total_bytes or self.completed_bytes is None:
            return None
        return 100.0 * self.completed_bytes / self.total_bytes

    @property
    def eta_seconds(self) -> float | None:
        if not self.speed_bytes_per_sec or self.total_bytes is None:
            return None
        remaining = self.total_bytes - (self.completed_bytes or 0)
        return max(remaining, 0) / self.speed_bytes_per_sec


class NodeRow(NamedTuple):
    """One node's view of one model."""

    node: str
    state: NodeState
    exists: bool | None = None
    selected: bool | None = None
    label: str | None = None
    config_map: NodeState | None = None  # the ConfigMap entry's status; None: no entry
    progress: Progress | None = None
    last_update_age_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        p = self.progress or Progress()
        return {
            "node": self.node,
            "state": self.state.value,
            "exists": self.exists,
            "selected": self.selected,
            "label": self.label,
            "configMap": None if self.config_map is None else self.config_map.value,
            "phase": p.phase,
            "bytes": {"completed": p.completed_bytes, "total": p.total_bytes},
            "files": {"completed": p.completed_files, "total": p.total_files},
            "speedBytesPerSec": p.speed_bytes_per_sec,
            "etaSeconds": _whole(p.eta_seconds),
            "lastUpdateAgeSeconds": _whole(self.last_update_age_seconds),
        }


# -- diagnoses ---------------------------------------------------------------------------------


class Severity(str, enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    code: str
    severity: Severity
    message: str
    next: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "next": self.next,
        }


# -- model-level records -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    age_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "ageSeconds": _whole(self.age_seconds),
        }


@dataclasses.dataclass(frozen=True)
class ClaimStatus:
    """The claim behind a `pvc://` model; `None` fields were not readable or not set."""

    uri: PvcUri | None
    error: str | None = None
    strict_problems: tuple[str, ...] = ()
    namespace: str | None = None
    exists: bool | None = None
    phase: str | None = None
    capacity: str | None = None
    access_modes: tuple[str, ...] = ()
    storage_class: str | None = None
    volume: str | None = None
    volume_node_affinity: Obj | None = None
    # Nodes labelled Ready for the model that the volume's node affinity excludes.
    unreachable_labelled: tuple[str, ...] = ()

    @property
    def name(self) -> str | None:
        return self.uri.claim if self.uri else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri.as_dict() if self.uri else None,
            "error": self.error,
            "strictProblems": list(self.strict_problems),
            "namespace": self.namespace,
            "exists": self.exists,
            "phase": self.phase,
            "capacity": self.capacity,
            "accessModes": list(self.access_modes),
            "storageClass": self.storage_class,
            "volume": self.volume,
            "volumeNodeAffinity": self.volume_node_affinity,
            "unreachableLabelledNodes": list(self.unreachable_labelled),
        }


@dataclasses.dataclass(frozen=True)
class WorkloadUse:
    kind: str
    name: str
    mode: WorkloadMode
    strategy: str | None = None
    replicas: int | None = None
    ready_replicas: int | None = None
    rollout: str | None = None  # where an unfinished rollout stands; None when rolled out
    problems: tuple[PodProblem, ...] = ()  # why its new pods do not run

    @property
    def description(self) -> str:
        if self.mode is WorkloadMode.PATCHED:
            if self.strategy == ISVC_ROUTE:
                return "pvc (isvc)"  # OME renders it from the isvc's own spec
            return f"pvc (patched by kubectl-ome-pvc: {self.strategy or 'unknown'})"
        return {
            WorkloadMode.HOST_PATH: "hostPath",
            WorkloadMode.NATIVE_PVC: "pvc (OME native)",
            WorkloadMode.PENDING: "Pending (model nodeSelector)",
            WorkloadMode.UNKNOWN: "no model volume found",
        }[self.mode]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "mode": self.mode.value,
            "strategy": self.strategy,
            "description": self.description,
            "replicas": self.replicas,
            "readyReplicas": self.ready_replicas,
            "rollout": self.rollout,
            "problems": [p.text for p in self.problems],
        }


@dataclasses.dataclass(frozen=True)
class ServiceUse:
    """An InferenceService that uses the model; `workloads` None when not readable; `route` the
    strategy recorded on the isvc itself by kubectl-ome-pvc (native or isvc), if any."""

    namespace: str
    name: str
    workloads: tuple[WorkloadUse, ...] | None = None
    route: str | None = None

    def as_dict(self) -> dict[str, Any]:
        workloads = None if self.workloads is None else [w.as_dict() for w in self.workloads]
        return {
            "namespace": self.namespace,
            "name": self.name,
            "route": self.route,
            "workloads": workloads,
        }


@dataclasses.dataclass(frozen=True)
class ModelStatus:
    kind: ModelKind
    namespace: str | None
    name: str
    uri: str | None
    scheme: StorageScheme
    path: str | None
    state: str | None
    label_key: str
    label_key_hashed: bool
    key: str | None = None
    node_selector: Mapping[str, str] = dataclasses.field(default_factory=dict)
    node_affinity: Obj | None = None
    disabled: bool = False
    age_seconds: float | None = None
    nodes: tuple[NodeRow, ...] = ()
    ready: int = 0
    targeted: int | None = 0
    failed_nodes: tuple[str, ...] = ()
    updating_nodes: tuple[str, ...] = ()
    progress_percent: float | None = None
    reported_ready: tuple[str, ...] = ()
    reported_failed: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] | None = None
    claim: ClaimStatus | None = None
    services: tuple[ServiceUse, ...] | None = None
    diagnoses: tuple[Diagnosis, ...] = ()

    @property
    def display_name(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def is_ready(self) -> bool:
        return self.state == "Ready"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "namespace": self.namespace,
            "name": self.name,
            "state": self.state,
            "disabled": self.disabled,
            "ageSeconds": _whole(self.age_seconds),
            "storage": {
                "uri": self.uri,
                "scheme": self.scheme.value,
                "path": self.path,
                "key": self.key,
                "nodeSelector": dict(self.node_selector),
                "nodeAffinity": self.node_affinity,
            },
            "labelKey": self.label_key,
            "labelKeyHashed": self.label_key_hashed,
            "ready": self.ready,
            "targeted": self.targeted,
            "failedNodes": list(self.failed_nodes),
            "updatingNodes": list(self.updating_nodes),
            "progressPercent": (
                None if self.progress_percent is None else round(self.progress_percent, 1)
            ),
            "reported": {
                "nodesReady": list(self.reported_ready),
                "nodesFailed": list(self.reported_failed),
            },
            "nodes": [row.as_dict() for row in self.nodes],
            "conditions": (
                None if self.conditions is None else [c.as_dict() for c in self.conditions]
            ),
            "claim": self.claim.as_dict() if self.claim else None,
            "inferenceServices": (
                None if self.services is None else [s.as_dict() for s in self.services]
            ),
            "diagnoses": [d.as_dict() for d in self.diagnoses],
        }
