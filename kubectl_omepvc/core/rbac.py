"""Least privilege: the RBAC objects that let a user run a command (pure).

Each command's API calls are a table of `Rule`s; a rule with a namespace is only needed there
(the model-agent's ConfigMaps and DaemonSet live in `ome`), so `roles` gives a ClusterRole for
the rest and a Role per namespace: tighter than one ClusterRole. `bindings` binds them to a
user, a group or a ServiceAccount.

The tables: `STATUS_RULES`; `CREATE_RULES` (with `VERIFY_RULES`: `create` then `verify` is one
job); `PATCH_RULES`, what `patch`, `diff` and `unpatch` need whatever the strategy; and each
strategy's own rules, declared next to it (`Strategy.rules` in `kubectl_omepvc.strategies`),
so a new strategy brings its rules in its own module. `merge` unions tables verb by verb.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping, Sequence
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


MODELS = ("clusterbasemodels", "basemodels")
READ_ONE = ("get",)
WATCH = ("get", "list", "watch")  # a wait: GET, a LIST for the resourceVersion, then WATCH
ADMISSION = "admissionregistration.k8s.io"
LWS = "leaderworkerset.x-k8s.io"

# `create CLAIM`: its checks, server-side apply of the PV and PVC (and with --register-model the
# pvc:// model: apply needs create for a new object), the rebind patch, undo on failure, and
# the wait for the claim to bind.
CREATE_RULES: tuple[Rule, ...] = (
    Rule("", ("namespaces",), READ_ONE),
    Rule("", ("nodes",), READ_ONE),
    Rule("storage.k8s.io", ("storageclasses",), READ_ONE),
    Rule("", ("persistentvolumes", "persistentvolumeclaims"),
         ("get", "list", "watch", "create", "patch", "delete")),
    Rule(r.OME_GROUP, MODELS, ("get", "create", "patch", "delete")),
    Rule("", ("pods", "events"), ("list",)),
    Rule("apps", ("daemonsets",), ("list",), naming.AGENT_NAMESPACE),
)  # fmt: skip

# `verify CLAIM`: the claim, its volume and nodes, the isvc's engine and model, and a
# short-lived pod whose log is the verdict.
VERIFY_RULES: tuple[Rule, ...] = (
    Rule("", ("persistentvolumeclaims", "persistentvolumes", "nodes"), READ_ONE),
    Rule("apps", ("deployments",), READ_ONE),
    Rule(r.OME_GROUP, MODELS, READ_ONE),
    Rule("", ("pods",), ("get", "list", "watch", "create", "delete")),
    Rule("", ("pods/log",), READ_ONE),
    Rule("", ("events",), ("list",)),
)

# `patch`, `diff` and `unpatch` whatever the strategy: the isvc, its model and workloads, the
# claim and where it is bound, the rollout that follows, and which switch is in place.
PATCH_RULES: tuple[Rule, ...] = (
    Rule(r.OME_GROUP, ("inferenceservices",), ("get", "list")),
    Rule(r.OME_GROUP, MODELS, READ_ONE),
    Rule("", ("persistentvolumeclaims",), ("get", "list")),
    Rule("", ("persistentvolumes",), READ_ONE),
    Rule("", ("nodes",), ("list",)),
    Rule("storage.k8s.io", ("storageclasses",), READ_ONE),
    Rule("serving.knative.dev", ("services",), ("list",)),
    Rule("apps", ("deployments",), WATCH),
    Rule(LWS, ("leaderworkersets",), WATCH),
    Rule("", ("pods", "events"), ("list",)),
    Rule(ADMISSION, ("mutatingadmissionpolicies",), READ_ONE),
)


def merge(*tables: Iterable[Rule]) -> tuple[Rule, ...]:
    """The union of rule tables: verbs joined per resource, resources regrouped by verbs."""
    verbs: dict[tuple[str, str, str | None], set[str]] = {}
    for table in tables:
        for rule in table:
            for resource in rule.resources:
                verbs.setdefault((rule.group, resource, rule.namespace), set()).update(rule.verbs)
    grouped: dict[tuple[str, tuple[str, ...], str | None], list[str]] = {}
    for (group, resource, namespace), found in verbs.items():
        ordered = tuple(v for v in VERB_ORDER if v in found) + tuple(
            sorted(found - set(VERB_ORDER))
        )
        grouped.setdefault((group, ordered, namespace), []).append(resource)
    return tuple(
        Rule(group, tuple(resources), ordered, namespace)
        for (group, ordered, namespace), resources in grouped.items()
    )


VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete")
COMMANDS = ("status", "create", "patch", "all")


def rules_for(
    command: str, strategy_rules: Mapping[str, Sequence[Rule]], strategy: str | None = None
) -> tuple[Rule, ...]:
    """The rules `command` needs; for `patch` (and `all`) with one strategy or every one."""
    chosen = [strategy_rules[strategy]] if strategy else list(strategy_rules.values())
    tables: dict[str, list[Sequence[Rule]]] = {
        "status": [STATUS_RULES],
        "create": [CREATE_RULES, VERIFY_RULES],
        "patch": [PATCH_RULES, *chosen],
    }
    if command == "all":
        return merge(*(t for name in ("status", "create", "patch") for t in tables[name]))
    return merge(*tables[command])


def without(rules: Sequence[Rule], index: int, verb: str, resource: str) -> tuple[Rule, ...]:
    """`rules` less one verb on one resource (tests prove every permission is needed)."""
    out = []
    for i, rule in enumerate(rules):
        if i != index:
            out.append(rule)
            continue
        rest = tuple(x for x in rule.resources if x != resource)
        if rest:
            out.append(dataclasses.replace(rule, resources=rest))
        verbs = tuple(v for v in rule.verbs if v != verb)
        if verbs:
            out.append(dataclasses.replace(rule, resources=(resource,), verbs=verbs))
    return tuple(out)


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
