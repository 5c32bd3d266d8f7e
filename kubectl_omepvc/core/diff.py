"""What `patch` would change in each workload, as unified YAML diffs or JSON Patches (pure).

`plan_workload` computes one workload's JSON Patch; `unified` renders the changed pod templates
as `diff -u` of their YAML (coloured like git when asked; the command prints `-o json`). For
`diff --local`, `load_workloads` and `local_plans` stand in for what the cluster would say.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import yaml

from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import naming, transform
from kubectl_omepvc.core.served_model import workload_model_name
from kubectl_omepvc.errors import InputError

Obj = dict[str, Any]
WORKLOAD_KINDS = ("Deployment", "LeaderWorkerSet")


class Palette(Protocol):
    """Colours by meaning (printers.Palette is one): core says which lines are added or
    removed, presentation decides how that looks."""

    def good(self, text: str) -> str: ...
    def bad(self, text: str) -> str: ...
    def dim(self, text: str) -> str: ...
    def bold(self, text: str) -> str: ...


class _Plain:
    """The palette without colour."""

    def good(self, text: str) -> str:
        return text

    bad = dim = bold = good


def template_yaml(template: Mapping[str, Any]) -> str:
    """The template as YAML in its own key order (what both sides of the diff are made of)."""
    return yaml.safe_dump(dict(template), sort_keys=False, default_flow_style=False)


def template_diff(
    name: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    color: Palette | None = None,
    labels: tuple[str, str] = ("hostPath", "pvc"),
    context: int = 3,
) -> str:
    """`--- <name> (hostPath)` / `+++ <name> (pvc)` and hunks; "" when the templates are equal.

    Removed lines are red and added lines green when `color` is an enabled palette; headers
    are bold and hunk markers dim, as git shows them.
    """
    return object_diff(name, before, after, color, labels, context)


def object_diff(
    name: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    color: Palette | None = None,
    labels: tuple[str, str] = ("live", "patched"),
    context: int = 3,
) -> str:
    """A unified YAML diff of two objects (None on one side: created or deleted)."""
    lines = difflib.unified_diff(
        template_yaml(before).splitlines() if before is not None else [],
        template_yaml(after).splitlines() if after is not None else [],
        fromfile=f"{name} ({labels[0] if before is not None else 'absent'})",
        tofile=f"{name} ({labels[1] if after is not None else 'absent'})",
        n=context,
        lineterm="",
    )
    palette = color or _Plain()
    return "\n".join(_paint(i, line, palette) for i, line in enumerate(lines))


def _paint(i: int, line: str, palette: Palette) -> str:
    if i < 2:  # the two file headers come first, and only there
        return palette.bold(line)
    if line.startswith("@@"):
        return palette.dim(line)
    if line.startswith("-"):
        return palette.bad(line)
    if line.startswith("+"):
        return palette.good(line)
    return line


# -- planning ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Planned:
    """One workload and the JSON Patch that switches it (empty when already switched)."""

    workload: Obj
    ops: list[jp.Operation]

    @property
    def after(self) -> Obj:
        """The workload as the server stores it: an emptied nodeSelector is dropped."""
        result: Obj = jp.apply_patch(self.workload, self.ops)
        for path in jp.pod_template_paths(result):
            spec = jp.resolve(result, path).get("spec") or {}
            if spec.get("nodeSelector") == {}:
                del spec["nodeSelector"]
        return result


# -- workloads read from a file (`diff --local`) ---------------------------------------------


def load_workloads(text: str, source: str) -> list[Obj]:
    """Deployments and LeaderWorkerSets from YAML/JSON documents (a `List` is unpacked)."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise InputError(f"{source} is not valid YAML: {exc}") from None
    found: list[Obj] = []
    for doc in documents:
        if not isinstance(doc, dict):
            raise InputError(f"{source} holds a document that is not an object")
        items = doc.get("items") if str(doc.get("kind", "")).endswith("List") else [doc]
        found += [i for i in items or [] if isinstance(i, dict) and i.get("kind") in WORKLOAD_KINDS]
    if not found:
        raise InputError(
            f"{source} holds no Deployment or LeaderWorkerSet",
            "pass the manifest of an OME workload (`kubectl get deploy NAME -o yaml`)",
        )
    return found


def model_name_of(workload: Mapping[str, Any], flag: str | None) -> str:
    """The model a workload serves: `flag`, else what OME wrote on the workload."""
    name = flag or workload_model_name(workload)
    if not name:
        raise InputError(
            f"{jp.workload_ref(workload)} does not say which model it serves"
            " (no ome.io/base-model-name annotation)",
            "pass --model NAME",
        )
    return name


def label_key_of(workload: Mapping[str, Any], model: str, namespace: str) -> str:
    """The model's node label key: whichever of OME's two forms the pod templates select on."""
    candidates = [
        naming.cluster_model_label_key(model),
        naming.namespaced_model_label_key(namespace, model),
    ]
    for path in jp.pod_template_paths(workload):
        selector = (jp.resolve(workload, path).get("spec") or {}).get("nodeSelector") or {}
        for key in candidates:
            if key in selector:
                return key
    return candidates[0]


def model_host_path(workload: Mapping[str, Any], model: str) -> str:
    for path in jp.pod_template_paths(workload):
        for volume in (jp.resolve(workload, path).get("spec") or {}).get("volumes") or []:
            if volume.get("name") == model and "hostPath" in volume:
                return str(volume["hostPath"].get("path", ""))
    raise InputError(
        f"{jp.workload_ref(workload)} has no hostPath volume named {model}",
        "pass --sub-path, or --model-path with --pv-root",
    )


def local_plans(
    workloads: Sequence[Obj],
    claim: str,
    sub_path: str | None,
    pv_root: str | None,
    model_path: str | None,
    model: str | None,
    namespace: str,
    strategy: str = "policy",
) -> list[Planned]:
    """The patches for workloads read from a file: flags replace what the cluster would say."""
    if sub_path is None and pv_root is None:
        raise InputError(
            "--local needs to know where the model is on the claim",
            "pass --sub-path DIR, or --pv-root DIR (with --model-path when the workload's"
            " hostPath is not the model's path)",
        )
    plans = []
    for workload in workloads:
        name = model_name_of(workload, model)
        ns = str((workload.get("metadata") or {}).get("namespace") or namespace)
        if sub_path is not None:
            sub = transform.clean_sub_path(sub_path)
        else:
            assert pv_root is not None
            sub = transform.sub_path_for(model_path or model_host_path(workload, name), pv_root)
        key = label_key_of(workload, name, ns)
        plans.append(plan_workload(workload, name, claim, sub, key, strategy))
    return plans


def plan_workload(
    workload: Obj,
    model: str,
    claim: str,
    sub_path: str,
    label_key: str,
    strategy: str = "deployment",
) -> Planned:
    """The patch switching one workload (none when it is on a claim already)."""
    try:
        ops = jp.workload_patch(
            workload, jp.pod_template_paths(workload), model, claim, sub_path, label_key, strategy
        )
    except transform.AlreadyPatched:
        ops = []
    return Planned(workload, ops)


@dataclasses.dataclass(frozen=True)
class Extra:
    """An object `patch` writes besides the workloads: created (`before` None) or changed."""

    before: Obj | None
    after: Obj

    @property
    def name(self) -> str:
        kind = str(self.after.get("kind", "")).lower()
        group = str(self.after.get("apiVersion", "")).rpartition("/")[0]
        name = (self.after.get("metadata") or {}).get("name", "")
        return f"{kind}.{group}/{name}" if group else f"{kind}/{name}"


def extra_diff(extra: Extra, palette: Palette) -> str:
    """The whole object as a unified diff: every line added when `patch` creates it."""
    before = template_yaml(extra.before).splitlines() if extra.before is not None else []
    lines = difflib.unified_diff(
        before,
        template_yaml(extra.after).splitlines(),
        fromfile=f"{extra.name} (now)" if extra.before is not None else "/dev/null",
        tofile=f"{extra.name} ({'patched' if extra.before is not None else 'created'})",
        n=3,
        lineterm="",
    )
    return "\n".join(_paint(i, line, palette) for i, line in enumerate(lines))


# -- output ------------------------------------------------------------------------------------


def template_name(workload: Mapping[str, Any], path: str) -> str:
    if path == jp.LWS_LEADER_TEMPLATE:
        return f"{jp.workload_ref(workload)} leaderTemplate"
    if path == jp.LWS_WORKER_TEMPLATE:
        return f"{jp.workload_ref(workload)} workerTemplate"
    return jp.workload_ref(workload)


def unified(plans: Sequence[Planned], palette: Palette, extras: Sequence[Extra] = ()) -> str:
    """Each object `patch` creates or changes besides the workloads, then each changed pod
    template, as unified YAML diffs."""
    parts = [text for extra in extras if (text := extra_diff(extra, palette))]
    for plan in plans:
        if not plan.ops:
            continue
        after = plan.after
        for path in jp.pod_template_paths(plan.workload):
            text = template_diff(
                template_name(plan.workload, path),
                jp.resolve(plan.workload, path),
                jp.resolve(after, path),
                color=palette,
            )
            if text:
                parts.append(text)
    return "\n".join(parts)


def object_file_name(obj: Mapping[str, Any]) -> str:
    """kubectl diff's name for an object's file: `apps.v1.Deployment.<ns>.<name>`."""
    api_version = str(obj.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    meta = obj.get("metadata") or {}
    parts = [group, version] if group else [version]
    parts += [str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name"))]
    return ".".join(p for p in parts if p)
