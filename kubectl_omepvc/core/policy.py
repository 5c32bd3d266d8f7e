"""The MutatingAdmissionPolicy (and Binding) that keeps one InferenceService on its claim.

OME re-applies its hostPath pod template on every reconcile (a dry-run Update, a diff, a full
Update). A policy that rewrites the isvc's workloads on CREATE and UPDATE, dry-run included,
makes the dry-run already come back with the claim, so OME's diff is empty and it stops writing.

What the policy matches, narrowest first:
- the binding: the isvc's namespace (`kubernetes.io/metadata.name`) and workloads labelled
  `ome.io/inferenceservice: <isvc>` (the same selectors are on the policy's constraints);
- the policy: CREATE and UPDATE of apps/v1 Deployments and leaderworkerset.x-k8s.io/v1
  LeaderWorkerSets;
- match conditions on the incoming object: the label still says this isvc (the object selector
  also matches on the *old* object) and a controller ownerReference to the ome.io
  InferenceService of that name and uid (an isvc deleted and created again under the same name
  is another isvc: its workloads are not switched to a claim nobody asked for).

The mutations are `JSONPatch` (an apply configuration merges volumes by name and would leave
`hostPath` beside `persistentVolumeClaim`), one per pod template: the Deployment's
`spec.template` and the LeaderWorkerSet's leader and worker templates. Each finds the model
volume by name and emits nothing (an empty list) unless that volume is there *and* still a
hostPath, so a workload already on the claim, or no longer OME's, is left alone and
reinvocation is a no-op. The same patch marks the pod template `ome-pvc.io/strategy: policy`,
so what OME rewrites still says it is patched (OME's templates always have annotations; one
without gets the map, the metadata being always there once the API server has defaulted it).
Names, claim, sub-path and label key are embedded only as CEL string literals (`cel_string`).

`failurePolicy: Fail` by default. The policy's scope is one isvc's workloads, so a failure
blocks writes to those only; the plugin's own first write after creating the policy surfaces
any error at once (and `unpatch` removes the policy). `Ignore` would let the hostPath template
through silently: pods pinned back to nodes that may no longer hold the model, and a rollout
every time the policy fails and then works again.

API versions: `v1` (Kubernetes 1.36+), `v1beta1` (1.34-1.35) and `v1alpha1` (1.32-1.33) have
the same fields for everything used here (spec.failurePolicy, matchConstraints, matchConditions,
mutations[].patchType/jsonPatch.expression, reinvocationPolicy; binding spec.policyName and
matchResources), per the API reference of each; only `apiVersion` differs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from kubectl_omepvc import __version__
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import naming
from kubectl_omepvc.core.jsonpatch import ANNOTATION, RECORD_FORMAT
from kubectl_omepvc.errors import InputError

POLICY_VERSIONS = ("v1", "v1beta1", "v1alpha1")
GROUP = "admissionregistration.k8s.io"
ISVC_LABEL = naming.ISVC_LABEL
NAMESPACE_LABEL = "kubernetes.io/metadata.name"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kubectl-ome-pvc"}
LABEL_NAMESPACE = "ome-pvc.io/namespace"
LABEL_ISVC = "ome-pvc.io/inferenceservice"
NAME_PREFIX = "ome-pvc-"
MAX_NAME = 253

FailurePolicy = Literal["Fail", "Ignore"]

# (API group of the workload, fields from the object to its pod template)
TEMPLATE_SITES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("apps", ("spec", "template")),
    ("leaderworkerset.x-k8s.io", ("spec", "leaderWorkerTemplate", "leaderTemplate")),
    ("leaderworkerset.x-k8s.io", ("spec", "leaderWorkerTemplate", "workerTemplate")),
)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def cel_string(text: str) -> str:
    """`text` as a double-quoted CEL string literal; anything not plain ASCII is escaped."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"lone surrogate U+{code:04X} cannot be a CEL string")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def policy_name(namespace: str, isvc: str) -> str:
    """`ome-pvc-<namespace>.<isvc>`: a DNS subdomain, one per isvc, cluster-wide.

    A dot separates the two because neither a namespace nor an isvc name can hold one, so
    `team-a`/`llama` and `team`/`a-llama` cannot collide. Hash-shortened past 253 characters.
    """
    for what, value in (("namespace", namespace), ("InferenceService name", isvc)):
        if not _DNS_LABEL.match(value):
            raise InputError(
                f"{what} {value!r} is not a DNS label",
                "give the name exactly as Kubernetes shows it",
            )
    name = f"{NAME_PREFIX}{namespace}.{isvc}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(f"{namespace}/{isvc}".encode()).hexdigest()[:10]
    return f"{name[: MAX_NAME - 11].rstrip('-.')}-{digest}"


def policy_objects(
    version: str,
    namespace: str,
    isvc: str,
    model_name: str,
    claim: str,
    sub_path: str,
    label_key: str,
    workloads: Mapping[str, Any] | None = None,
    failure_policy: FailurePolicy = "Fail",
    isvc_uid: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The policy and its binding for `isvc`, as dicts ready to create.

    `workloads` ({"deployment/llama-engine": <workload record>, ...}, see `jsonpatch`) is kept
    in the policy's `ome-pvc.io/original` annotation with the claim and sub-path, so `unpatch`
    can restore the workloads from the policy alone. `isvc_uid` ties the policy to that one
    InferenceService: a later isvc of the same name owns its workloads under another uid, and
    the policy leaves them alone.
    """
    if version not in POLICY_VERSIONS:
        raise InputError(
            f"MutatingAdmissionPolicy version {version!r} is unknown",
            f"use one of {', '.join(POLICY_VERSIONS)}",
        )
    name = policy_name(namespace, isvc)
    labels = {**MANAGED_BY, LABEL_NAMESPACE: namespace, LABEL_ISVC: isvc}
    selectors = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: namespace}},
        "objectSelector": {"matchLabels": {ISVC_LABEL: isvc}},
    }
    record = {
        "format": RECORD_FORMAT,
        "plugin": __version__,
        "strategy": "policy",
        "namespace": namespace,
        "inferenceService": isvc,
        "inferenceServiceUID": isvc_uid,
        "modelName": model_name,
        "claim": claim,
        "subPath": sub_path,
        "labelKey": label_key,
        "workloads": dict(workloads or {}),
    }
    policy = {
        "apiVersion": f"{GROUP}/{version}",
        "kind": "MutatingAdmissionPolicy",
        "metadata": {
            "name": name,
            "labels": dict(labels),
            "annotations": {ANNOTATION: json.dumps(record, sort_keys=False)},
        },
        "spec": {
            "failurePolicy": failure_policy,
            "reinvocationPolicy": "IfNeeded",
            "matchConstraints": {
                "resourceRules": [
                    _rule("apps", "v1", "deployments"),
                    _rule("leaderworkerset.x-k8s.io", "v1", "leaderworkersets"),
                ],
                "matchPolicy": "Equivalent",
                **selectors,
            },
            "matchConditions": match_conditions(isvc, isvc_uid),
            "mutations": [
                {
                    "patchType": "JSONPatch",
                    "jsonPatch": {
                        "expression": mutation_expression(
                            group, fields, model_name, claim, sub_path, label_key
                        )
                    },
                }
                for group, fields in TEMPLATE_SITES
            ],
        },
    }
    binding = {
        "apiVersion": f"{GROUP}/{version}",
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {"policyName": name, "matchResources": selectors},
    }
    return policy, binding


def read_policy_record(policy: Mapping[str, Any]) -> dict[str, Any] | None:
    """The record a policy carries, or None when it has none this plugin can read."""
    raw = ((policy.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    try:
        record = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        return None
    return record


def _rule(group: str, version: str, resource: str) -> dict[str, Any]:
    return {
        "apiGroups": [group],
        "apiVersions": [version],
        "resources": [resource],
        "operations": ["CREATE", "UPDATE"],
    }


def match_conditions(isvc: str, uid: str | None = None) -> list[dict[str, str]]:
    name = cel_string(isvc)
    label = cel_string(ISVC_LABEL)
    same_uid = f" && r.uid == {cel_string(uid)}" if uid else ""
    return [
        {
            "name": "labelled-for-inferenceservice",
            "expression": (
                f"has(object.metadata.labels) && {label} in object.metadata.labels"
                f" && object.metadata.labels[{label}] == {name}"
            ),
        },
        {
            "name": "controlled-by-inferenceservice",
            "expression": (
                "has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists("
                f'r, r.kind == "InferenceService" && r.apiVersion.startsWith("ome.io/")'
                f" && r.name == {name}{same_uid} && has(r.controller) && r.controller == true)"
            ),
        },
    ]


def mutation_expression(
    group: str,
    fields: tuple[str, ...],
    model_name: str,
    claim: str,
    sub_path: str,
    label_key: str,
) -> str:
    """CEL returning the JSON Patch that moves the pod template at `fields` onto the claim.

    The empty list unless the request is for `group` and the template has the model volume as
    a hostPath: the guards are `has()` chains, so no field access can fail.
    """
    spec_fields = (*fields, "spec")
    spec = "object." + ".".join(spec_fields)
    otype = "Object." + ".".join(spec_fields)
    ptr = "/" + "/".join(spec_fields)
    model = cel_string(model_name)
    guards = [f"request.resource.group == {cel_string(group)}"]
    guards += [f"has(object.{'.'.join(spec_fields[:i])})" for i in range(1, len(spec_fields) + 1)]
    guards += [
        f"has({spec}.volumes)",
        f"{spec}.volumes.exists(v, v.name == {model} && has(v.hostPath))",
    ]
    volume = (
        "[JSONPatch{\n"
        '    op: "replace",\n'
        f"    path: {cel_string(ptr + '/volumes/')}"
        f" + string({spec}.volumes.map(v, v.name).indexOf({model})),\n"
        f"    value: {otype}.volumes{{name: {model},"
        f" persistentVolumeClaim: {otype}.volumes.persistentVolumeClaim{{"
        f"claimName: {cel_string(claim)}, readOnly: true}}}}\n"
        "  }]"
    )
    parts = [volume]
    if sub_path:
        parts += [_mounts_expression(spec, otype, ptr, f, model, sub_path) for f in _CONTAINERS]
    template = "object." + ".".join(fields)
    annotations = "/" + "/".join(fields) + "/metadata/annotations"
    marker = cel_string(annotations + "/" + jp.escape(jp.MARKER))
    parts.append(
        f"(has({template}.metadata) && has({template}.metadata.annotations)\n"
        f'    ? [JSONPatch{{op: "add", path: {marker}, value: "policy"}}]\n'
        f'    : [JSONPatch{{op: "add", path: {cel_string(annotations)},'
        f' value: {{{cel_string(jp.MARKER)}: "policy"}}}}])'
    )
    key = cel_string(label_key)
    parts.append(
        f"(has({spec}.nodeSelector) && {key} in {spec}.nodeSelector\n"
        '    ? [JSONPatch{op: "remove",'
        f" path: {cel_string(ptr + '/nodeSelector/')} + jsonpatch.escapeKey({key})}}]\n"
        "    : [])"
    )
    return " &&\n".join(guards) + "\n? " + "\n  + ".join(parts) + "\n: []"


_CONTAINERS = ("containers", "initContainers")


def _mounts_expression(
    spec: str, otype: str, ptr: str, field: str, model: str, sub_path: str
) -> str:
    """`add` of `subPath` on the mounts of the model volume, one op per mount (string values).

    Only the `subPath` member is written, so every other mount field stays as it is. Values are
    plain strings on purpose: a list of mounts as a patch value makes Kubernetes 1.35's CEL
    (cel-go 0.26) panic in the API server ("value of type *structpb.Struct is not assignable
    to type *structpb.Value"), and 1.37 fails to marshal a passed-through VolumeMount. A
    container's first and last mount of the volume are covered (`indexOf`/`lastIndexOf`);
    the `policy` strategy refuses a workload that mounts it three times in one container.
    """
    del otype  # the ops carry strings only

    def op(index_of: str) -> str:
        return (
            "JSONPatch{\n"
            '          op: "add",\n'
            f"          path: {cel_string(ptr + '/' + field + '/')}"
            f" + string({spec}.{field}.map(x, x.name).indexOf(c.name))"
            f' + "/volumeMounts/" + string(c.volumeMounts.map(m, m.name).{index_of}({model}))'
            ' + "/subPath",\n'
            f"          value: {cel_string(sub_path)}\n"
            "        }"
        )

    mounting = (
        f"{spec}.{field}"
        f".filter(c, has(c.volumeMounts) && c.volumeMounts.exists(m, m.name == {model}))"
    )
    twice = (
        f"c.volumeMounts.map(m, m.name).indexOf({model})"
        f" != c.volumeMounts.map(m, m.name).lastIndexOf({model})"
    )
    return (
        f"(has({spec}.{field})\n"
        f"    ? {mounting}.map(c, {op('indexOf')})\n"
        f"      + {mounting}.filter(c, {twice}).map(c, {op('lastIndexOf')})\n"
        "    : [])"
    )


def containers_mounting_too_often(workload: Mapping[str, Any], model: str) -> list[str]:
    """Containers that mount the model volume three or more times (the policy covers two)."""
    crowded = []
    for _path, template in jp.pod_templates(workload):
        spec = template.get("spec") or {}
        for field in _CONTAINERS:
            for container in spec.get(field) or []:
                mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") == model]
                if len(mounts) > 2:
                    crowded.append(str(container.get("name")))
    return crowded
