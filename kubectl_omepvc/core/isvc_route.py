"""`--strategy isvc`: the claim in the InferenceService's own spec, beside a path-less copy (pure).

Released OME (v0.1.5) adds no model volume, mount or `MODEL_PATH` for a model without
`storage.path`, and its agents skip `pvc://` models. So the isvc can point at a copy of its
model with `storageUri: pvc://...` and no path, and carry the claim itself, as OME's own
desired state that it keeps through every rewrite:
- `spec.<component>[.leader|.worker].volumes`: the claim, read-only, named `VOLUME`;
- `...runner.volumeMounts`: the sub-path at the directory the engine read before (arguments
  naming that path keep working);
- `...runner.env`: `MODEL_PATH` at that directory (unless the isvc or runtime set another).
OME still selects nodes labelled `<copy's label key>=Ready`; those labels go on exactly the
nodes that reach the claim (`reaching_nodes`).

Everything changed is recorded in the isvc's `ome-pvc.io/original` annotation (`record`), so
`restore` gives the isvc back byte for byte, whatever else changed in it meanwhile.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubectl_omepvc import __version__
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import manifests, naming, selectors
from kubectl_omepvc.core.objects import MAPPING, dig
from kubectl_omepvc.core.served_model import ModelInfo
from kubectl_omepvc.errors import InputError

NAME = "isvc"
RECORD_FORMAT = 1
# Not the model's name: OME `main` adds its own volume named after a pvc:// model, and two
# volumes of one name would make the workload invalid before `patch` turns this route native.
VOLUME = naming.ISVC_ROUTE_VOLUME
MODEL_PATH_ENV = "MODEL_PATH"
READY = "Ready"
COMPONENTS = ("engine", "decoder")  # the router mounts no model
COMPONENT_LABEL = "component"
ROLE_OF_TEMPLATE = {jp.LWS_LEADER_TEMPLATE: "leader", jp.LWS_WORKER_TEMPLATE: "worker"}
# Server-owned fields a GitOps copy of an object must not carry.
SERVER_META = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields",
               "selfLink", "finalizers")  # fmt: skip

Obj = dict[str, Any]


# --- the copy model --------------------------------------------------------------------------


def copy_model(model: ModelInfo, name: str, namespace: str, claim: str, sub_path: str) -> Obj:
    """A copy of `model` (its descriptive fields) whose storage is the claim, with no path, its
    URI in the form OME `main` demands of the kind (so the copy is the native route later)."""
    model_ns = namespace if model.kind is naming.ModelKind.NAMESPACED else None
    return manifests.pvc_model(
        model.kind, name, model_ns, namespace, claim, sub_path, copy_from=model.obj
    )


# --- where in the isvc the model is mounted ----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Site:
    """A pod spec in the isvc (`spec.<component>` or its leader/worker) whose pods mount the
    model, with the container that mounts it and whether `MODEL_PATH` must be set there."""

    component: str
    role: str | None
    container: str
    set_env: bool

    @property
    def pointer(self) -> str:
        return jp.pointer("spec", self.component, *([self.role] if self.role else []))

    @property
    def field(self) -> str:
        return ".".join(["spec", self.component, *([self.role] if self.role else [])])


def component_of(workload: Mapping[str, Any]) -> str:
    """`engine`, `decoder` or `router`: OME's `component` label, else the name's suffix."""
    label = (dig(workload, "metadata", "labels") or {}).get(COMPONENT_LABEL)
    if label:
        return str(label)
    name = str(dig(workload, "metadata", "name") or "")
    return next((c for c in (*COMPONENTS, "router") if name.endswith(f"-{c}")), "engine")


def mounting_container(template: Mapping[str, Any], model_name: str) -> Obj | None:
    """The container that mounts the model volume (OME's `ome-container`), or None."""
    for container in dig(template, "spec", "containers") or []:
        if any(m.get("name") == model_name for m in container.get("volumeMounts") or []):
            return dict(container)
    return None


def _env_value(items: Iterable[Mapping[str, Any]] | None, name: str) -> tuple[bool, Any]:
    for item in items or []:
        if item.get("name") == name:
            return True, item.get("value")
    return False, None


def plan_sites(
    isvc: Mapping[str, Any],
    workloads: Sequence[Mapping[str, Any]],
    model_name: str,
    model_path: str,
    runtime: Mapping[str, Any] | None,
) -> list[Site]:
    """Each pod spec of the isvc whose pods mount the model, from what OME rendered.

    A LeaderWorkerSet's leader and worker come from `spec.<component>.leader|worker`, which
    OME merges over the runtime's; without one in the isvc or its runtime, OME builds the leader
    from the component's own pod spec. `runtime` is the ServingRuntime's spec, or None when it
    is not known (then a missing leader or worker cannot be placed, and the plan refuses).
    """
    spec = isvc.get("spec") or {}
    sites: dict[str, Site] = {}
    for workload in workloads:
        component = component_of(workload)
        if component not in COMPONENTS:
            continue
        for path, template in jp.pod_templates(workload):
            container = mounting_container(template, model_name)
            if container is None:
                continue
            role = None
            if workload.get("kind") == "LeaderWorkerSet":
                role = _role(spec, runtime, component, ROLE_OF_TEMPLATE[path], isvc)
            site = _site(spec, component, role, container, model_path)
            _check_free(spec, site, template, model_path, workload)
            sites.setdefault(site.pointer, site)
    return list(sites.values())


def _role(
    spec: Mapping[str, Any],
    runtime: Mapping[str, Any] | None,
    component: str,
    role: str,
    isvc: Mapping[str, Any],
) -> str | None:
    if isinstance(dig(spec, component, role), MAPPING):
        return role
    if runtime is not None:
        if isinstance(dig(runtime, f"{component}Config", role), MAPPING):
            return role
        if role == "leader":
            return None  # OME's fallback: the component's own pod spec and runner
    name = dig(isvc, "metadata", "name")
    raise InputError(
        f"cannot tell where OME takes the {role} pods of inferenceservice {name} from: the"
        f" isvc has no spec.{component}.{role} and its runtime could not be read",
        f"name the runtime in spec.runtime (and let this user read it), add spec.{component}."
        f"{role} to the isvc, or use --strategy policy",
    )


def _site(
    spec: Mapping[str, Any],
    component: str,
    role: str | None,
    container: Mapping[str, Any],
    model_path: str,
) -> Site:
    at = dig(spec, component, *([role] if role else [])) or {}
    runner = at.get("runner") or {}
    in_isvc, _ = _env_value(runner.get("env"), MODEL_PATH_ENV)
    rendered, value = _env_value(container.get("env"), MODEL_PATH_ENV)
    # OME set MODEL_PATH to the model's path unless the isvc or the runtime set it; a value
    # that differs came from them, and stays theirs.
    set_env = not in_isvc and (not rendered or value == model_path)
    return Site(component, role, str(runner.get("name") or container.get("name")), set_env)


def _check_free(
    spec: Mapping[str, Any],
    site: Site,
    template: Mapping[str, Any],
    model_path: str,
    workload: Mapping[str, Any],
) -> None:
    """Refuse when the volume name or the mount path is taken already."""
    at = dig(spec, site.component, *([site.role] if site.role else [])) or {}
    names = {v.get("name") for v in at.get("volumes") or []}
    names |= {v.get("name") for v in dig(template, "spec", "volumes") or []}
    if VOLUME in names:
        raise InputError(
            f"{site.field} of the isvc (or {jp.workload_ref(workload)}) already has a volume"
            f" named {VOLUME}",
            "rename that volume, or use --strategy policy",
        )
    mounts = dig(at, "runner", "volumeMounts") or []
    if any(m.get("mountPath") == model_path for m in mounts):
        raise InputError(
            f"{site.field}.runner of the isvc already mounts something at {model_path}, where"
            " the claim must go",
            "remove that mount from the isvc, or use --strategy policy",
        )


# --- changing the isvc, and the record that undoes it -----------------------------------------


def _ensure(doc: Obj, tokens: Sequence[str], empty: Any, created: list[str]) -> Any:
    """The node at `tokens`, created (and its pointer noted) where missing."""
    node: Any = doc
    for i, token in enumerate(tokens):
        last = i == len(tokens) - 1
        if not isinstance(node.get(token), dict | list):
            node[token] = copy.deepcopy(empty) if last else {}
            created.append(jp.pointer(*tokens[: i + 1]))
        node = node[token]
    return node


def claim_volume(claim: str) -> Obj:
    return {"name": VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}


def claim_mount(model_path: str, sub_path: str) -> Obj:
    mount: Obj = {"name": VOLUME, "mountPath": model_path, "readOnly": True}
    if sub_path:
        mount["subPath"] = sub_path
    return mount


def add_claim(
    isvc: Mapping[str, Any], sites: Sequence[Site], claim: str, sub_path: str, model_path: str
) -> tuple[Obj, list[Obj]]:
    """The isvc with the claim's volume, mount and env at each site; one edit record per site."""
    out: Obj = json.loads(json.dumps(isvc))
    edits = []
    for site in sites:
        created: list[str] = []
        base = ["spec", site.component, *([site.role] if site.role else [])]
        _ensure(out, [*base, "volumes"], [], created).append(claim_volume(claim))
        runner = _ensure(out, [*base, "runner"], {}, created)
        named = not runner.get("name")
        if named:
            # Without a name OME adds the runner as a new, empty container.
            runner["name"] = site.container
        mounts = _ensure(out, [*base, "runner", "volumeMounts"], [], created)
        mounts.append(claim_mount(model_path, sub_path))
        if site.set_env:
            env = _ensure(out, [*base, "runner", "env"], [], created)
            env.append({"name": MODEL_PATH_ENV, "value": model_path})
        edits.append(
            {
                "at": site.pointer,
                "created": created,
                "runnerName": site.container if named else None,
                "mountPath": model_path,
                "env": model_path if site.set_env else None,
            }
        )
    return out, edits


def set_model(isvc: Obj, field: str, name: str) -> None:
    spec = isvc.setdefault("spec", {})
    if field == "baseModel":
        spec["baseModel"] = name
    else:
        spec.setdefault("model", {})["name"] = name


def named_model(isvc: Mapping[str, Any], field: str) -> str | None:
    spec = isvc.get("spec") or {}
    value = spec.get("baseModel") if field == "baseModel" else dig(spec, "model", "name")
    return str(value) if value else None


def copy_label_key(model: ModelInfo, copy_name: str) -> str:
    """The node label OME's pods select on for the copy (same kind and namespace as `model`)."""
    return naming.model_label_key(model.kind, copy_name, model.namespace)


def record(
    model: ModelInfo,
    copy_name: str,
    created_copy: bool,
    claim: str,
    sub_path: str,
    edits: list[Obj],
    labels: Mapping[str, str | None],
    annotations_created: bool,
) -> Obj:
    """What `unpatch` needs (the native record's keys, plus the isvc edits and node labels)."""
    return {
        "format": RECORD_FORMAT,
        "plugin": __version__,
        "strategy": NAME,
        "field": model.field,
        "originalModel": {"kind": model.kind.value, "name": model.name},
        "model": {"kind": model.kind.value, "name": copy_name},
        "createdModel": created_copy,
        "claim": claim,
        "subPath": sub_path,
        "edits": edits,
        "annotationsCreated": annotations_created,
        "labels": {
            "key": copy_label_key(model, copy_name),
            "nodes": dict(labels),  # node → the label's value before (None: absent)
        },
    }


def switched(
    isvc: Mapping[str, Any],
    model: ModelInfo,
    sites: Sequence[Site],
    copy_name: str,
    created_copy: bool,
    claim: str,
    sub_path: str,
    labels: Mapping[str, str | None],
) -> Obj:
    """The isvc as `patch` leaves it (and as GitOps should commit it)."""
    if not model.path:
        raise InputError(f"model {model.name} has no storage.path: nothing to switch")
    out, edits = add_claim(isvc, sites, claim, sub_path, model.path)
    set_model(out, model.field, copy_name)
    meta = out.setdefault("metadata", {})
    created = not isinstance(meta.get("annotations"), MAPPING)
    rec = record(model, copy_name, created_copy, claim, sub_path, edits, labels, created)
    meta.setdefault("annotations", {})[jp.ANNOTATION] = json.dumps(rec, sort_keys=False)
    return out


def _without(items: Any, match: Mapping[str, Any]) -> Any:
    """`items` without the entries whose fields equal all of `match`."""
    if not isinstance(items, list):
        return items
    return [i for i in items if not all(i.get(k) == v for k, v in match.items())]


def undo_edits(isvc: Mapping[str, Any], edits: Sequence[Mapping[str, Any]]) -> Obj:
    """The isvc without the volume, mount, env and runner name the edits added, and without the
    objects and lists they created when nothing else is in them now."""
    out: Obj = json.loads(json.dumps(isvc))
    for edit in reversed(edits):
        try:
            at = jp.resolve(out, str(edit["at"]))
        except jp.PatchFailed:
            continue
        if not isinstance(at, dict):
            continue
        if "volumes" in at:
            at["volumes"] = _without(at["volumes"], {"name": VOLUME})
        runner = at.get("runner")
        if isinstance(runner, dict):
            path = edit.get("mountPath")
            if "volumeMounts" in runner:
                runner["volumeMounts"] = _without(
                    runner["volumeMounts"], {"name": VOLUME, "mountPath": path}
                )
            env = edit.get("env")
            if env is not None and "env" in runner:
                runner["env"] = _without(runner["env"], {"name": MODEL_PATH_ENV, "value": env})
            if edit.get("runnerName") and runner.get("name") == edit["runnerName"]:
                del runner["name"]
        for pointer in reversed(list(edit.get("created") or [])):
            try:
                node = jp.resolve(out, str(pointer))
            except jp.PatchFailed:
                continue
            if _holds_nothing(node):
                out = jp.apply_patch(out, [{"op": "remove", "path": str(pointer)}])
    return out


def _holds_nothing(node: Any) -> bool:
    """Empty, or only empty objects and lists: what OME's defaulting webhook leaves in a runner
    the edits created (`resources: {}`), which must go with it for a byte-exact restore."""
    if isinstance(node, dict):
        return all(_holds_nothing(v) for v in node.values())
    if isinstance(node, list):
        return not node
    return False


def restored(isvc: Mapping[str, Any], rec: Mapping[str, Any]) -> Obj:
    """The isvc as it was before `patch` (what it changed undone; anything else kept)."""
    out = undo_edits(isvc, rec.get("edits") or [])
    set_model(out, str(rec.get("field") or "model"), str(rec["originalModel"]["name"]))
    drop_record(out, bool(rec.get("annotationsCreated")))
    return out


def drop_record(isvc: Obj, annotations_created: bool) -> None:
    meta = isvc.get("metadata") or {}
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(jp.ANNOTATION, None)
        if annotations_created and not annotations:
            del meta["annotations"]


def as_native(isvc: Mapping[str, Any], rec: Mapping[str, Any], native_format: int) -> Obj:
    """After an OME upgrade: the isvc on the same copy, without the volume, mount and env
    (OME mounts the claim itself now), and a native record that undoes the model switch."""
    out = undo_edits(isvc, rec.get("edits") or [])
    keep = ("field", "originalModel", "model", "createdModel", "claim", "subPath")
    native = {"format": native_format, "plugin": __version__, "strategy": "native"}
    native.update({k: rec[k] for k in keep if k in rec})
    out.setdefault("metadata", {}).setdefault("annotations", {})[jp.ANNOTATION] = json.dumps(
        native, sort_keys=False
    )
    return out


def user_fields(isvc: Mapping[str, Any]) -> Any:
    """What a plan of the isvc is made from: its spec, labels and annotations."""
    meta = isvc.get("metadata") or {}
    return [isvc.get("spec"), meta.get("labels"), meta.get("annotations")]


def for_gitops(obj: Mapping[str, Any]) -> Obj:
    """The object without what the server owns (uid, resourceVersion, finalizers, status)."""
    out: Obj = json.loads(json.dumps(obj))
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in SERVER_META:
        meta.pop(key, None)
    return out


# --- which nodes carry the copy's label ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Reach:
    """The nodes that reach the claim and how that was found; `unknown` says why none could be
    named (then `nodes` is empty and no node is labelled)."""

    nodes: tuple[str, ...] = ()
    how: str = ""
    unknown: str | None = None


def parse_node_selector(text: str) -> dict[str, str]:
    """`k=v,k2=v2` (what `--node-selector` takes) → {k: v}."""
    out = {}
    for part in (p.strip() for p in text.split(",")):
        key, sep, value = part.partition("=")
        if not part or not sep or not key.strip():
            raise InputError(
                f"--node-selector {text!r} is not a list of key=value pairs",
                "write it as key=value[,key=value...]",
            )
        out[key.strip()] = value.strip()
    return out


def reaching_nodes(
    nodes: Sequence[Mapping[str, Any]],
    pv: Mapping[str, Any] | None,
    claim: Mapping[str, Any],
    pod_selectors: Mapping[str, Mapping[str, str]],
    named: Sequence[str] = (),
    selector: Mapping[str, str] | None = None,
) -> Reach:
    """The nodes to label: `--node`/`--node-selector` (each checked against the volume), else the
    nodes a local volume is pinned to, else, for a volume every node reaches, the nodes the
    isvc's pods may run on (`pod_selectors`: each template's nodeSelector without the model key).
    """
    claim_name = dig(claim, "metadata", "name") or ""
    terms = selectors.volume_terms(pv)
    by_name = {str(dig(n, "metadata", "name")): n for n in nodes}
    if named or selector:
        chosen = [by_name.get(n) or selectors.stand_in_node(n) for n in named]
        if selector:
            wanted = selectors.labels_selector_terms(selector)
            chosen += [n for n in nodes if selectors.node_matches(n, wanted)]
        names = sorted({str(dig(n, "metadata", "name")) for n in chosen})
        missing = [n for n in named if n not in by_name]
        if missing and nodes:
            raise InputError(f"node {missing[0]} not found", "name nodes from `kubectl get nodes`")
        far = [
            str(dig(n, "metadata", "name")) for n in chosen if not selectors.node_matches(n, terms)
        ]
        if far:
            raise InputError(
                f"node {far[0]} cannot reach claim {claim_name}: its volume is pinned to"
                f" {selectors.describe_terms(terms)}",
                "label only nodes the volume's node affinity allows",
            )
        if not names:
            raise InputError(
                f"--node-selector {_shown(selector or {})} matches no node",
                "check the labels with `kubectl get nodes --show-labels`",
            )
        return Reach(tuple(names), "the nodes named by --node/--node-selector")
    if pv is None:
        phase = dig(claim, "status", "phase")
        why = (
            f"claim {claim_name} is not bound yet, so which nodes reach it is not known"
            if phase != "Bound"
            else f"the volume of claim {claim_name} could not be read"
        )
        return Reach(unknown=why)
    if terms:
        names = sorted(
            str(dig(n, "metadata", "name")) for n in nodes if selectors.node_matches(n, terms)
        )
        if not names and not nodes:
            names = selectors.pinned_hostnames(terms)
        return Reach(
            tuple(names),
            f"the nodes volume {dig(pv, 'metadata', 'name')} is pinned to"
            f" ({selectors.describe_terms(terms)})",
        )
    if not nodes:
        return Reach(unknown="nodes could not be listed")
    wanted_sets = [selectors.labels_selector_terms(s) for s in pod_selectors.values()] or [[]]
    names = sorted(
        str(dig(n, "metadata", "name"))
        for n in nodes
        if any(selectors.node_matches(n, wanted) for wanted in wanted_sets)
    )
    return Reach(
        tuple(names),
        f"volume {dig(pv, 'metadata', 'name')} is reachable from any node: the nodes the"
        " isvc's pods may run on",
    )


def _shown(selector: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in selector.items())


def labels_to_set(
    nodes: Sequence[Mapping[str, Any]], names: Iterable[str], key: str
) -> dict[str, str | None]:
    """node → the label's current value (None: absent), for the nodes not yet `key=Ready`."""
    by_name = {str(dig(n, "metadata", "name")): n for n in nodes}
    out: dict[str, str | None] = {}
    for name in names:
        value = (dig(by_name.get(name), "metadata", "labels") or {}).get(key)
        if value != READY:
            out[name] = None if value is None else str(value)
    return out


def label_patch(key: str, value: str | None) -> Obj:
    """The merge patch setting (or, with None, removing) one node label."""
    return {"metadata": {"labels": {key: value}}}
