"""The hostPath → PersistentVolumeClaim rewrite of one pod template (pure).

OME gives each serving pod a volume named after the model, `hostPath: {path: <storage.path>}`,
mounts it read-only at the same path in `ome-container`, and pins the pod with a nodeSelector on
the model's node label. Serving the same files from a claim means, in that one pod template:

- the model volume (found by name, never by index) gets `persistentVolumeClaim: {claimName,
  readOnly: true}` in place of `hostPath`, keeping its name (OME's model-init webhook finds it by
  that name) and its place in the list;
- every mount of it, in every container and init container, gets `subPath` = the model's
  directory relative to the claim's root, keeping `mountPath` (so `MODEL_PATH` stays valid) and
  `readOnly`;
- the model's nodeSelector key is removed; other keys stay. When it was the only key,
  `nodeSelector: {}` is left in place: the API server drops an empty map anyway, and keeping the
  map lets the inverse put the key back where it was.

Everything else is left as it is, key order included. `plan_template` says what would change
(the JSON Patch and the undo record are built from that plan); `to_pvc` applies it.

Sub-paths: `sub_path_for` gives the model path relative to the PV's root; a model at the root
itself gives "" which means "mount the claim's root" (no `subPath` is written).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from kubectl_omepvc.errors import InputError

CONTAINER_FIELDS = ("containers", "initContainers")


class AlreadyPatched(InputError):
    """The model volume is already a claim: `patch` has nothing to do (callers report a no-op)."""

    def __init__(self, where: str, model_name: str, claim: str) -> None:
        self.where = where
        self.model_name = model_name
        self.claim = claim
        super().__init__(
            f"{where} already serves model {model_name} from claim {claim}",
            "nothing to do; `kubectl ome-pvc unpatch` goes back to the hostPath",
        )


@dataclasses.dataclass(frozen=True)
class MountChange:
    """One mount of the model volume: where it is and what it becomes."""

    field: str  # "containers" or "initContainers"
    container_index: int
    container: str
    index: int
    before: dict[str, Any]
    after: dict[str, Any]

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclasses.dataclass(frozen=True)
class NodeSelectorChange:
    """The model's nodeSelector entry, and its position so the inverse can put it back there."""

    key: str
    value: str
    position: int
    before: dict[str, str]
    after: dict[str, str]


@dataclasses.dataclass(frozen=True)
class TemplateChange:
    """What switching one pod template to the claim changes (indexes are in that template)."""

    model_name: str
    claim: str
    sub_path: str
    volume_index: int
    volume_before: dict[str, Any]
    volume_after: dict[str, Any]
    mounts: tuple[MountChange, ...]  # every mount of the model volume, changed or not
    node_selector: NodeSelectorChange | None


def plan_template(
    template: Mapping[str, Any],
    model_name: str,
    claim: str,
    sub_path: str,
    label_key: str,
    where: str = "the pod template",
) -> TemplateChange:
    """Find the model volume by name and say how it, its mounts and the nodeSelector change.

    Raises `AlreadyPatched` when the volume is already a claim, `InputError` when the volume is
    missing or not a hostPath, or a mount has another `subPath` (or a `subPathExpr`).
    """
    spec = template.get("spec") or {}
    volumes = spec.get("volumes") or []
    matches = [i for i, v in enumerate(volumes) if v.get("name") == model_name]
    if not matches:
        names = ", ".join(str(v.get("name")) for v in volumes) or "none"
        raise InputError(
            f"{where} has no volume named {model_name} (volumes: {names})",
            "the volume is named after the model in the ome.io/base-model-name annotation;"
            " check that annotation",
        )
    if len(matches) > 1:
        raise InputError(
            f"{where} has {len(matches)} volumes named {model_name}",
            "fix the workload: volume names must be unique",
        )
    index = matches[0]
    volume = volumes[index]
    pvc = volume.get("persistentVolumeClaim")
    if isinstance(pvc, Mapping):
        raise AlreadyPatched(where, model_name, str(pvc.get("claimName", "")))
    if "hostPath" not in volume:
        kinds = ", ".join(k for k in volume if k != "name") or "no source"
        raise InputError(
            f"volume {model_name} of {where} is not a hostPath volume ({kinds})",
            "only OME's hostPath model volume can be switched to a claim",
        )
    return TemplateChange(
        model_name=model_name,
        claim=claim,
        sub_path=sub_path,
        volume_index=index,
        volume_before=copy.deepcopy(volume),
        volume_after=pvc_volume(volume, claim),
        mounts=tuple(_plan_mounts(spec, model_name, sub_path, where)),
        node_selector=_plan_node_selector(spec, label_key),
    )


def pvc_volume(volume: Mapping[str, Any], claim: str) -> dict[str, Any]:
    """The volume with `hostPath` swapped for the claim in the same place among its keys."""
    out: dict[str, Any] = {}
    for key, value in volume.items():
        if key == "hostPath":
            out["persistentVolumeClaim"] = {"claimName": claim, "readOnly": True}
        else:
            out[key] = copy.deepcopy(value)
    return out


def mount_with_sub_path(mount: Mapping[str, Any], sub_path: str) -> dict[str, Any]:
    """The mount with `subPath` set (after `mountPath` when new); "" leaves it untouched."""
    out = copy.deepcopy(dict(mount))
    if not sub_path or out.get("subPath") == sub_path:
        return out
    if "subPath" in out:
        out["subPath"] = sub_path
        return out
    ordered: dict[str, Any] = {}
    for key, value in out.items():
        ordered[key] = value
        if key == "mountPath":
            ordered["subPath"] = sub_path
    ordered.setdefault("subPath", sub_path)
    return ordered


def _plan_mounts(
    spec: Mapping[str, Any], model_name: str, sub_path: str, where: str
) -> list[MountChange]:
    changes = []
    for field in CONTAINER_FIELDS:
        for ci, container in enumerate(spec.get(field) or []):
            cname = str(container.get("name", ""))
            for mi, mount in enumerate(container.get("volumeMounts") or []):
                if mount.get("name") != model_name:
                    continue
                if mount.get("subPathExpr"):
                    raise InputError(
                        f"container {cname} of {where} mounts {model_name} with subPathExpr",
                        "remove subPathExpr from that mount; the claim needs a fixed subPath",
                    )
                existing = mount.get("subPath") or ""
                if existing and existing != sub_path:
                    raise InputError(
                        f"container {cname} of {where} mounts {model_name} with subPath"
                        f" {existing!r}, not {sub_path!r}",
                        "remove that subPath, or pass --sub-path matching it",
                    )
                after = mount_with_sub_path(mount, sub_path)
                changes.append(MountChange(field, ci, cname, mi, copy.deepcopy(mount), after))
    return changes


def _plan_node_selector(spec: Mapping[str, Any], label_key: str) -> NodeSelectorChange | None:
    selector = spec.get("nodeSelector")
    if not isinstance(selector, Mapping) or label_key not in selector:
        return None
    keys = list(selector)
    return NodeSelectorChange(
        key=label_key,
        value=str(selector[label_key]),
        position=keys.index(label_key),
        before=dict(selector),
        after={k: v for k, v in selector.items() if k != label_key},
    )


def apply_change(template: Mapping[str, Any], change: TemplateChange) -> dict[str, Any]:
    """A copy of `template` with `change` applied (the template it was planned on)."""
    out = copy.deepcopy(dict(template))
    spec = out["spec"]
    spec["volumes"][change.volume_index] = copy.deepcopy(change.volume_after)
    for m in change.mounts:
        spec[m.field][m.container_index]["volumeMounts"][m.index] = copy.deepcopy(m.after)
    if change.node_selector is not None:
        spec["nodeSelector"] = dict(change.node_selector.after)
    return out


def to_pvc(
    template: Mapping[str, Any],
    model_name: str,
    claim: str,
    sub_path: str,
    label_key: str,
    where: str = "the pod template",
) -> dict[str, Any]:
    """The pod template served from `claim` (see the module docstring for what changes)."""
    change = plan_template(template, model_name, claim, sub_path, label_key, where)
    return apply_change(template, change)


def sub_path_for(model_path: str, pv_root: str) -> str:
    """`model_path` relative to `pv_root` (a PV's `local.path` or `nfs.path`).

    Both must be absolute; trailing and repeated slashes and `.` segments are ignored; `..` is
    refused. A model at the root itself gives "" (mount the claim's root).
    """
    model = _segments(model_path, "model path")
    root = _segments(pv_root, "volume root")
    if model[: len(root)] != root:
        raise InputError(
            f"model path {model_path} is outside the volume's root {pv_root}",
            "use a volume whose path contains the model directory",
        )
    return "/".join(model[len(root) :])


def clean_sub_path(text: str) -> str:
    """A user's `--sub-path`: relative, no `..`; slashes and `.` segments normalised."""
    if text.startswith("/"):
        raise InputError(f"sub-path {text!r} is absolute", "give it relative to the claim's root")
    return "/".join(_segments("/" + text, "sub-path"))


def _segments(path: str, what: str) -> list[str]:
    if not path.startswith("/"):
        raise InputError(f"{what} {path!r} is not absolute", "give an absolute path")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InputError(f"{what} {path!r} contains '..'", "give the path without '..'")
    return parts
