"""RFC 6902 JSON Patches that switch a workload to a claim and back.

Paths are found by name in the workload as read (see `transform`), and every change is preceded
by a `test` of the value it replaces: when the workload changed between read and write (say OME
reordered its volumes), the API server rejects the whole patch instead of editing the wrong
element.

What was replaced is recorded on the workload in the `ome-pvc.io/original` annotation, a JSON
string `{"format": 1, "templates": {<template path>: <record>}}`, so `restore_patch` can undo it
with the workload alone, byte for byte. Each record keeps the original volume, every original
mount of it (container, index, mount), the removed nodeSelector entry and its position, and the
strategy, claim, sub-path and plugin version that made the change.

Building the patches is this module's job; applying them (client-side previews, dry runs, and
telling a failed `test` from a rejected result) is the `jsonpatch` package's, which follows
RFC 6902 and RFC 6901 to the letter.

The `policy` strategy also marks each switched pod template with `ome-pvc.io/strategy`
(`marker_ops`); `restore_patch` removes the mark with the rest.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypedDict, cast

from kubectl_omepvc import __version__
from kubectl_omepvc.core import naming, transform
from kubectl_omepvc.errors import Conflict, InputError

ANNOTATION = "ome-pvc.io/original"
MARKER = naming.STRATEGY_ANNOTATION
RECORD_FORMAT = 1

DEPLOYMENT_TEMPLATE = "/spec/template"
LWS_LEADER_TEMPLATE = "/spec/leaderWorkerTemplate/leaderTemplate"
LWS_WORKER_TEMPLATE = "/spec/leaderWorkerTemplate/workerTemplate"


class OpAdd(TypedDict):
    op: Literal["add"]
    path: str
    value: Any


class OpRemove(TypedDict):
    op: Literal["remove"]
    path: str


class OpReplace(TypedDict):
    op: Literal["replace"]
    path: str
    value: Any


class OpTest(TypedDict):
    op: Literal["test"]
    path: str
    value: Any


Operation = OpAdd | OpRemove | OpReplace | OpTest


class PatchFailed(Conflict):
    """A patch did not apply: a `test` failed or a path is missing (the document changed)."""


class InvalidPatch(InputError):
    """Not a JSON Patch at all (RFC 6902): an unknown op, a member missing, a bad pointer."""


# --- JSON pointers (RFC 6901) -------------------------------------------------------------------


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def pointer(*tokens: str | int) -> str:
    return "".join("/" + escape(str(t)) for t in tokens)


def resolve(doc: Any, path: str) -> Any:
    """The value at `path` in `doc`; `PatchFailed` when there is none."""
    from jsonpointer import JsonPointer, JsonPointerException  # with jsonpatch: see apply_patch

    try:
        return JsonPointer(path).resolve(doc)
    except JsonPointerException as exc:
        raise PatchFailed(f"{path}: {exc}", "re-read the object and try again") from None


# --- applying ---------------------------------------------------------------------------------


def apply_patch(doc: Any, ops: Iterable[Operation]) -> Any:
    """`doc` with `ops` applied, as a new object; all or nothing (`doc` is never changed).

    `PatchFailed` when an op does not apply to this document (a `test` failed, a path is
    missing); `InvalidPatch` when an op is not valid RFC 6902 whatever the document.
    """
    # Imported here: only previews, dry runs and a rejected write apply patches (~8 ms).
    from jsonpatch import InvalidJsonPatch, JsonPatch, JsonPatchConflict, JsonPatchTestFailed
    from jsonpointer import JsonPointerException

    out = copy.deepcopy(doc)
    for op in ops:  # one at a time, so that an error names its op
        raw = cast(Mapping[str, Any], op)
        where = f"{raw.get('op')} {raw.get('path')}"
        try:
            patch = JsonPatch([raw])
        except (InvalidJsonPatch, JsonPointerException) as exc:
            raise InvalidPatch(f"{where}: not a valid JSON Patch operation: {exc}") from None
        try:
            out = patch.apply(out, in_place=True)
        except JsonPatchTestFailed:
            raise PatchFailed(
                f"test failed at {raw['path']}: the object changed since it was read",
                "re-read it and try again",
            ) from None
        except (JsonPatchConflict, JsonPointerException) as exc:
            raise PatchFailed(f"{where}: {exc}", "re-read the object and try again") from None
        except InvalidJsonPatch as exc:  # e.g. a `replace` at `-`
            raise InvalidPatch(f"{where}: not a valid JSON Patch operation: {exc}") from None
    return out


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: member order does not matter, `true` is not `1`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# --- workload templates -----------------------------------------------------------------------


def pod_template_paths(workload: Mapping[str, Any]) -> list[str]:
    """Where the pod templates of a Deployment or LeaderWorkerSet are (JSON pointers)."""
    kind = workload.get("kind")
    if kind == "Deployment":
        return [DEPLOYMENT_TEMPLATE]
    if kind == "LeaderWorkerSet":
        lwt = (workload.get("spec") or {}).get("leaderWorkerTemplate") or {}
        paths = [LWS_LEADER_TEMPLATE] if lwt.get("leaderTemplate") else []
        return [*paths, LWS_WORKER_TEMPLATE]
    raise InputError(
        f"{kind or 'an object without kind'} is not a Deployment or LeaderWorkerSet",
        "only those workloads carry OME's model volume",
    )


def pod_templates(workload: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(path, template) for each pod template the workload has; a missing one is skipped."""
    found = []
    for path in pod_template_paths(workload):
        try:
            found.append((path, resolve(workload, path)))
        except PatchFailed:
            continue
    return found


def workload_ref(workload: Mapping[str, Any]) -> str:
    """`deployment/llama-engine`: kubectl's way of naming a workload in messages."""
    name = (workload.get("metadata") or {}).get("name", "")
    return f"{str(workload.get('kind', '')).lower()}/{name}"


def _template(workload: Mapping[str, Any], template_path: str) -> Mapping[str, Any]:
    try:
        template = resolve(workload, template_path)
    except PatchFailed:
        raise InputError(
            f"{workload_ref(workload)} has no pod template at {template_path}",
            "pass the template path of a Deployment or LeaderWorkerSet",
        ) from None
    if not isinstance(template, Mapping):
        raise InputError(f"{workload_ref(workload)}: {template_path} is not a pod template")
    return template


def _where(workload: Mapping[str, Any], template_path: str) -> str:
    ref = workload_ref(workload)
    if template_path == LWS_LEADER_TEMPLATE:
        return f"{ref} (leader)"
    if template_path == LWS_WORKER_TEMPLATE:
        return f"{ref} (worker)"
    return ref


# --- the record of what was replaced --------------------------------------------------------


def original_record(
    template: Mapping[str, Any],
    model_name: str,
    claim: str,
    sub_path: str,
    label_key: str,
    strategy: str,
    where: str = "the pod template",
) -> dict[str, Any]:
    """What switching `template` to the claim replaces, as a JSON-ready dict."""
    change = transform.plan_template(template, model_name, claim, sub_path, label_key, where)
    return _record(change, strategy)


def _record(change: transform.TemplateChange, strategy: str) -> dict[str, Any]:
    ns = change.node_selector
    return {
        "plugin": __version__,
        "strategy": strategy,
        "claim": change.claim,
        "subPath": change.sub_path,
        "modelName": change.model_name,
        "volumeIndex": change.volume_index,
        "volume": copy.deepcopy(change.volume_before),
        "mounts": [
            {
                "field": m.field,
                "container": m.container,
                "index": m.index,
                "mount": copy.deepcopy(m.before),
            }
            for m in change.mounts
        ],
        "nodeSelector": (
            None if ns is None else {"key": ns.key, "value": ns.value, "position": ns.position}
        ),
    }


def read_record(workload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The workload's `ome-pvc.io/original` record, or None when it has none."""
    raw = ((workload.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    if raw is None or isvc_level(str(raw)):
        return None
    return parse_record(str(raw), workload_ref(workload))


def isvc_level(raw: str) -> bool:
    """Whether an annotation holds an isvc's record (strategy native or isvc), which OME copies
    from the isvc onto every workload it renders: the workload itself was not patched."""
    try:
        record = json.loads(raw)
    except ValueError:
        return False
    return (
        isinstance(record, dict)
        and "templates" not in record
        and record.get("strategy") in ("native", "isvc")
    )


def parse_record(raw: str, where: str) -> dict[str, Any]:
    try:
        record = json.loads(raw)
    except ValueError:
        record = None
    if (
        not isinstance(record, dict)
        or record.get("format") != RECORD_FORMAT
        or not isinstance(record.get("templates"), dict)
    ):
        raise InputError(
            f"the {ANNOTATION} annotation of {where} is not a record this plugin can read",
            f"restore the workload by hand, then remove the {ANNOTATION} annotation",
        )
    return record


def encode_record(templates: Mapping[str, Any]) -> str:
    return json.dumps({"format": RECORD_FORMAT, "templates": dict(templates)}, sort_keys=False)


# --- patch and restore ------------------------------------------------------------------------


def template_patch(
    workload: Mapping[str, Any],
    template_path: str,
    model_name: str,
    claim: str,
    sub_path: str,
    label_key: str,
    strategy: str = "deployment",
) -> list[Operation]:
    """The JSON Patch switching one pod template of `workload` to `claim`, record included."""
    return workload_patch(
        workload, [template_path], model_name, claim, sub_path, label_key, strategy
    )


def workload_patch(
    workload: Mapping[str, Any],
    template_paths: Sequence[str],
    model_name: str,
    claim: str,
    sub_path: str,
    label_key: str,
    strategy: str = "deployment",
) -> list[Operation]:
    """The JSON Patch switching each of `template_paths` to `claim`, with one record for all.

    Raises `transform.AlreadyPatched` when every template is already a claim (a no-op); a
    template already switched is otherwise skipped.
    """
    tests: list[Operation] = []
    changes: list[Operation] = []
    records: dict[str, Any] = {}
    already: transform.AlreadyPatched | None = None
    for path in template_paths:
        template = _template(workload, path)
        try:
            change = transform.plan_template(
                template, model_name, claim, sub_path, label_key, _where(workload, path)
            )
        except transform.AlreadyPatched as exc:
            already = exc
            continue
        t, c = _change_ops(f"{path}/spec", change)
        tests += t
        changes += c
        records[path] = _record(change, strategy)
    if not records:
        assert already is not None  # template_paths was not empty
        raise already
    previous = read_record(workload)
    merged = {**(previous["templates"] if previous else {}), **records}
    t, c = _annotation_ops(workload, encode_record(merged))
    return [*tests, *t, *changes, *c]


def _change_ops(
    spec_path: str, change: transform.TemplateChange
) -> tuple[list[Operation], list[Operation]]:
    tests: list[Operation] = []
    changes: list[Operation] = []
    vol = f"{spec_path}/volumes/{change.volume_index}"
    tests.append(OpTest(op="test", path=vol, value=change.volume_before))
    changes.append(OpReplace(op="replace", path=vol, value=change.volume_after))
    for m in change.mounts:
        if not m.changed:
            continue
        path = f"{spec_path}/{m.field}/{m.container_index}/volumeMounts/{m.index}"
        tests.append(OpTest(op="test", path=path, value=m.before))
        changes.append(OpReplace(op="replace", path=path, value=m.after))
    ns = change.node_selector
    if ns is not None:
        path = f"{spec_path}/nodeSelector/{escape(ns.key)}"
        tests.append(OpTest(op="test", path=path, value=ns.value))
        changes.append(OpRemove(op="remove", path=path))
    return tests, changes


def _annotation_ops(
    workload: Mapping[str, Any], value: str | None
) -> tuple[list[Operation], list[Operation]]:
    """Set (or with None remove) the record annotation, testing the value it replaces."""
    meta = workload.get("metadata") or {}
    annotations = meta.get("annotations")
    key = f"/metadata/annotations/{escape(ANNOTATION)}"
    if annotations is None:
        if value is None:
            return [], []
        return [], [OpAdd(op="add", path="/metadata/annotations", value={ANNOTATION: value})]
    old = annotations.get(ANNOTATION)
    tests: list[Operation] = [] if old is None else [OpTest(op="test", path=key, value=old)]
    if value is not None:
        return tests, [OpAdd(op="add", path=key, value=value)]
    if old is None:
        return [], []
    if set(annotations) == {ANNOTATION}:  # leave no empty map behind
        return tests, [OpRemove(op="remove", path="/metadata/annotations")]
    return tests, [OpRemove(op="remove", path=key)]


def marker_ops(workload: Mapping[str, Any], strategy: str) -> list[Operation]:
    """Mark each pod template of `workload` with the strategy that switches it."""
    ops: list[Operation] = []
    for path, template in pod_templates(workload):
        meta = template.get("metadata")
        if not isinstance(meta, Mapping):
            ops.append(OpAdd(op="add", path=f"{path}/metadata", value={"annotations": {}}))
            meta = {"annotations": {}}
        if meta.get("annotations") is None:
            ops.append(OpAdd(op="add", path=f"{path}/metadata/annotations", value={}))
        key = f"{path}/metadata/annotations/{escape(MARKER)}"
        ops.append(OpAdd(op="add", path=key, value=strategy))
    return ops


def _unmark_ops(template_path: str, template: Mapping[str, Any]) -> list[Operation]:
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    if MARKER not in annotations:
        return []
    if set(annotations) == {MARKER}:  # leave no empty map behind
        return [OpRemove(op="remove", path=f"{template_path}/metadata/annotations")]
    return [OpRemove(op="remove", path=f"{template_path}/metadata/annotations/{escape(MARKER)}")]


def restore_patch(
    workload: Mapping[str, Any],
    template_path: str | None = None,
    record: Mapping[str, Any] | None = None,
) -> list[Operation]:
    """The JSON Patch putting back what the record says was replaced; [] when nothing is.

    `template_path` None restores every template in the record. `record` defaults to the
    workload's annotation (pass the policy's copy when OME dropped the workload's). Each change
    tests that the element still holds the patched value; an element already back to its
    original (OME re-applied its spec after the policy went) is left alone. The annotation is
    removed once no template is left in it.
    """
    own = read_record(workload)
    rec = dict(record) if record is not None else own
    if rec is None:
        return []
    templates: dict[str, Any] = dict(rec.get("templates") or {})
    paths = list(templates) if template_path is None else [template_path]
    tests: list[Operation] = []
    changes: list[Operation] = []
    for path in paths:
        if path not in templates:
            continue
        template = _template(workload, path)
        t, c = _restore_ops(f"{path}/spec", template, templates.pop(path), _where(workload, path))
        tests += t
        changes += c + _unmark_ops(path, template)
    if own is not None:
        left = {p: r for p, r in own["templates"].items() if p in templates}
        t, c = _annotation_ops(workload, encode_record(left) if left else None)
        tests += t
        changes += c
    return [*tests, *changes]


def _restore_ops(
    spec_path: str, template: Mapping[str, Any], rec: Mapping[str, Any], where: str
) -> tuple[list[Operation], list[Operation]]:
    spec = template.get("spec") or {}
    model = str(rec["modelName"])
    claim = str(rec["claim"])
    sub_path = str(rec.get("subPath") or "")
    tests: list[Operation] = []
    changes: list[Operation] = []

    original = rec["volume"]
    volumes = spec.get("volumes") or []
    index = next((i for i, v in enumerate(volumes) if v.get("name") == model), None)
    if index is None:
        raise InputError(
            f"{where} no longer has a volume named {model}",
            "the workload changed since it was patched; restore it by hand",
        )
    if not json_equal(volumes[index], original):
        path = f"{spec_path}/volumes/{index}"
        patched = transform.pvc_volume(original, claim)
        tests.append(OpTest(op="test", path=path, value=patched))
        changes.append(OpReplace(op="replace", path=path, value=copy.deepcopy(original)))

    for m, current_index in _locate_mounts(spec, rec, model, where):
        field, ci = m["field"], current_index[0]
        mount = m["mount"]
        current = spec[field][ci]["volumeMounts"][current_index[1]]
        if json_equal(current, mount):
            continue
        path = f"{spec_path}/{field}/{ci}/volumeMounts/{current_index[1]}"
        patched_mount = transform.mount_with_sub_path(mount, sub_path)
        tests.append(OpTest(op="test", path=path, value=patched_mount))
        changes.append(OpReplace(op="replace", path=path, value=copy.deepcopy(mount)))

    entry = rec.get("nodeSelector")
    if entry:
        key, value = str(entry["key"]), str(entry["value"])
        selector = spec.get("nodeSelector")
        if selector is None:
            changes.append(OpAdd(op="add", path=f"{spec_path}/nodeSelector", value={key: value}))
        elif key not in selector:
            items = list(selector.items())
            items.insert(min(int(entry.get("position", len(items))), len(items)), (key, value))
            path = f"{spec_path}/nodeSelector"
            tests.append(OpTest(op="test", path=path, value=dict(selector)))
            changes.append(OpReplace(op="replace", path=path, value=dict(items)))
    return tests, changes


def _locate_mounts(
    spec: Mapping[str, Any], rec: Mapping[str, Any], model: str, where: str
) -> list[tuple[Mapping[str, Any], tuple[int, int]]]:
    """Pair each recorded mount with the current (container, mount) index, by names."""
    out: list[tuple[Mapping[str, Any], tuple[int, int]]] = []
    by_container: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for m in rec.get("mounts") or []:
        by_container.setdefault((str(m["field"]), str(m["container"])), []).append(m)
    for (field, name), recorded in by_container.items():
        containers = spec.get(field) or []
        ci = next((i for i, c in enumerate(containers) if c.get("name") == name), None)
        current = (
            []
            if ci is None
            else [
                i
                for i, mount in enumerate(containers[ci].get("volumeMounts") or [])
                if mount.get("name") == model
            ]
        )
        if ci is None or len(current) != len(recorded):
            raise InputError(
                f"container {name} of {where} no longer mounts {model} as when it was patched",
                "the workload changed since it was patched; restore it by hand",
            )
        out += [(m, (ci, mi)) for m, mi in zip(recorded, current, strict=True)]
    return out
