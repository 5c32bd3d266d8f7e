"""Least privilege: the RBAC objects that let a user run a command with full output (pure).

Each command's reads are a table of `Rule`s; a rule with a namespace is only needed there (the
model-agent's ConfigMaps and DaemonSet live in `ome`), so `roles` gives a ClusterRole for the
rest and a Role per namespace: tighter than one ClusterRole. `bindings` binds them to a user,
a group or a ServiceAccount.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Sequence
from typing import Any

from kubectl_omepvc.core import naming
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.core.manifests import MANAGED_BY, MANAGED_BY_LABEL, validate_dns_subdomain
from kubectl_omepvc.errors import InputError

RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_VERSION = f"{RBAC_GROUP}/v1"
DEFAULT_NAME = "kubectl-ome-pvc-status"

Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Rule:
    """Verbs on resources of one API group; `namespace`: needed only there (None: anywhere)."""

    group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    namespace: str | None = None

    def as_dict(self) -> Obj:
        return {
            "apiGroups": [self.group],
            "resources": list(self.resources),
            "verbs": list(self.verbs),
        }


READ = ("list",)
# Everything `status` reads (see `api.gather`): only the model kinds are required, each other
# rule turns one "cannot list ..." warning into output.
STATUS_RULES: tuple[Rule, ...] = (
    Rule(r.OME_GROUP, ("clusterbasemodels", "basemodels"), ("get", "list", "watch")),
    Rule(r.OME_GROUP, ("inferenceservices",), READ),
    Rule("", ("nodes", "persistentvolumes", "persistentvolumeclaims"), READ),
    Rule("", ("configmaps",), ("list", "watch"), naming.AGENT_NAMESPACE),
    Rule("apps", ("deployments",), READ),
    Rule("apps", ("daemonsets",), READ, naming.AGENT_NAMESPACE),
    Rule("leaderworkerset.x-k8s.io", ("leaderworkersets",), READ),
    Rule("serving.knative.dev", ("services",), READ),
    Rule("batch", ("jobs",), READ),
    Rule("", ("pods",), READ),  # the metadata Jobs' pods: why they fail
)


class SubjectKind(str, enum.Enum):
    USER = "User"
    GROUP = "Group"
    SERVICE_ACCOUNT = "ServiceAccount"


@dataclasses.dataclass(frozen=True)
class Subject:
    kind: SubjectKind
    name: str
    namespace: str | None = None  # a ServiceAccount's

    def as_dict(self) -> Obj:
        if self.kind is SubjectKind.SERVICE_ACCOUNT:
            return {"kind": self.kind.value, "name": self.name, "namespace": self.namespace}
        return {"apiGroup": RBAC_GROUP, "kind": self.kind.value, "name": self.name}


def service_account(text: str) -> Subject:
    """`NAMESPACE:NAME` → the ServiceAccount subject; InputError for any other form."""
    namespace, colon, name = text.partition(":")
    if not colon or not namespace or not name or ":" in name:
        raise InputError(
            f"service account {text!r} is not NAMESPACE:NAME",
            "such as --bind-service-account ome:viewer",
        )
    validate_dns_subdomain(namespace, "service account namespace")
    validate_dns_subdomain(name, "service account name")
    return Subject(SubjectKind.SERVICE_ACCOUNT, name, namespace)


def _meta(name: str, namespace: str | None = None) -> Obj:
    meta: Obj = {"name": name, "labels": {MANAGED_BY_LABEL: MANAGED_BY}}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def cluster_role(name: str, rules: Iterable[Rule]) -> Obj:
    """One ClusterRole with every rule, wherever it is needed (simple, not the tightest)."""
    return {
        "apiVersion": RBAC_VERSION,
        "kind": "ClusterRole",
        "metadata": _meta(name),
        "rules": [rule.as_dict() for rule in rules],
    }


def roles(name: str, rules: Sequence[Rule]) -> list[Obj]:
    """A ClusterRole for the rules needed anywhere, then a Role in each namespace of the rest."""
    out = [cluster_role(name, [rule for rule in rules if rule.namespace is None])]
    for namespace in sorted({rule.namespace for rule in rules if rule.namespace is not None}):
        out.append(
            {
                "apiVersion": RBAC_VERSION,
                "kind": "Role",
                "metadata": _meta(name, namespace),
                "rules": [rule.as_dict() for rule in rules if rule.namespace == namespace],
            }
        )
    return out


def bindings(role_objects: Iterable[Obj], subject: Subject) -> list[Obj]:
    """A ClusterRoleBinding for each ClusterRole and a RoleBinding for each Role, named after it."""
    out = []
    for role in role_objects:
        meta = role["metadata"]
        kind = "ClusterRoleBinding" if role["kind"] == "ClusterRole" else "RoleBinding"
        out.append(
            {
                "apiVersion": RBAC_VERSION,
                "kind": kind,
                "metadata": _meta(meta["name"], meta.get("namespace")),
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": role["kind"], "name": meta["name"]},
                "subjects": [subject.as_dict()],
            }
        )
    return out


def rbac_objects(name: str, rules: Sequence[Rule], subject: Subject | None) -> list[Obj]:
    """The roles, then (with a subject) their bindings: the order `kubectl apply` needs."""
    validate_dns_subdomain(name, "role name")
    made = roles(name, rules)
    return made + (bindings(made, subject) if subject is not None else [])
