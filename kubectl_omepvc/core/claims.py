"""Whether a claim can serve an InferenceService's pods, and where the model is on it (pure).

`patch` checks these before its first write: the model's sub-path on the claim, whether the
claim's access modes let every replica mount it, and whether any Ready node can run the pods
with the claim's volume (its node affinity) and what else places them (their nodeSelector).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import manifests, selectors, transform
from kubectl_omepvc.core.objects import dig
from kubectl_omepvc.errors import InputError

SHARED_MODES = ("ReadOnlyMany", "ReadWriteMany")
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"

Obj = dict[str, Any]


def node_root(pv: Mapping[str, Any] | None) -> str | None:
    """The PV's root when it is a directory on the node itself (`local.path`), else None.

    Only then can the node's model path say where the model is on the claim. An NFS export's
    path is a path on the server, and a provisioned volume has none: the model sits wherever
    `create`, `copy` or the user put it.
    """
    path = dig(pv, "spec", "local", "path")
    return str(path) if path else None


def _under(model_path: str, root: str) -> bool:
    try:
        transform.sub_path_for(model_path, root)
    except InputError:
        return False
    return True


def choose_sub_path(
    model_path: str,
    pv: Mapping[str, Any] | None,
    claim: Mapping[str, Any],
    flag: str | None,
) -> str:
    """The model's directory relative to the claim's root.

    A local PV rooted at or above the node's model directory fixes it (and `--sub-path` must
    agree: a wrong sub-path is what leaves the server unable to read config.json). Any other
    claim (NFS, a StorageClass, a local PV elsewhere) holds a copy: `--sub-path`, else the
    claim's `ome-pvc.io/sub-path` annotation (written by `create` and `copy`). Whether the
    files are there is for `verify` to check, on the claim; the node's path cannot tell.
    """
    name = dig(claim, "metadata", "name") or ""
    root = node_root(pv)
    if root is not None and _under(model_path, root):
        derived = transform.sub_path_for(model_path, root)
        if flag is not None and transform.clean_sub_path(flag) != derived:
            raise InputError(
                f"--sub-path {flag} does not match the volume: the model is at {model_path} on"
                f" the node and the local volume of claim {name} is rooted at {root}, so the"
                f" model is at {derived or 'its root'} on the claim",
                "leave --sub-path out (it is derived from the volume)",
            )
        return derived
    if flag is not None:
        return transform.clean_sub_path(flag)
    annotated = (dig(claim, "metadata", "annotations") or {}).get(manifests.SUB_PATH_ANNOTATION)
    if annotated:
        return transform.clean_sub_path(str(annotated))
    kind = (
        f"its local volume's root {root} does not hold the node's model directory"
        if root is not None
        else "its volume is not a directory on the node (NFS or provisioned)"
    )
    raise InputError(
        f"cannot tell where model directory {model_path} is on claim {name}: {kind} and the"
        f" claim has no {manifests.SUB_PATH_ANNOTATION} annotation",
        "pass --sub-path DIR, the model's directory relative to the claim's root (what"
        " `create --sub-path` or `copy` used)",
    )


def access_modes(claim: Mapping[str, Any]) -> list[str]:
    """The claim's access modes: as bound (status), else as requested (spec)."""
    modes = dig(claim, "status", "accessModes") or dig(claim, "spec", "accessModes") or []
    return [str(m) for m in modes]


def access_problem(modes: Sequence[str], pods: int, pinned_node: str | None) -> str | None:
    """Why the claim's access modes cannot serve `pods` pods, or None."""
    if not modes or any(m in SHARED_MODES for m in modes):
        return None
    if "ReadWriteOnce" in modes:
        if pods > 1 and pinned_node is None:
            return (
                f"it is ReadWriteOnce (usable from one node only) and the workloads run {pods}"
                " pods, which may land on different nodes"
            )
        return None
    if "ReadWriteOncePod" in modes and pods > 1:
        return f"it is ReadWriteOncePod (one pod only) and the workloads run {pods} pods"
    return None


def placement_problem(
    nodes: Iterable[Mapping[str, Any]],
    pv: Mapping[str, Any] | None,
    node_selectors: Mapping[str, Mapping[str, str]],
) -> str | None:
    """Why no Ready node can run some workload's pods with this volume, or None.

    `node_selectors`: each workload's nodeSelector once the model key is gone.
    """
    terms = selectors.volume_terms(pv)
    ready = [n for n in nodes if selectors.schedulable(n)]
    volume_ok = [n for n in ready if selectors.node_matches(n, terms)]
    pv_name = dig(pv, "metadata", "name") or ""
    if terms and not volume_ok:
        return (
            f"volume {pv_name} can only be used on nodes matching"
            f" {selectors.describe_terms(terms)}, and none of the {len(ready)} Ready nodes does"
        )
    for workload, selector in node_selectors.items():
        wanted = selectors.labels_selector_terms(selector)
        if not any(selectors.node_matches(n, wanted) for n in volume_ok):
            where = f" on nodes matching {selectors.describe_terms(terms)}" if terms else ""
            shown = ", ".join(f"{k}={v}" for k, v in selector.items())
            return f"no Ready node{where} has the labels {workload} selects ({shown})"
    return None


def remaining_selectors(workloads: Sequence[Obj], label_key: str) -> dict[str, dict[str, str]]:
    """Each pod template's nodeSelector without the model key: what still places the pods."""
    out: dict[str, dict[str, str]] = {}
    for workload in workloads:
        for path, template in jp.pod_templates(workload):
            selector = dig(template, "spec", "nodeSelector") or {}
            out[f"{jp.workload_ref(workload)}{path}"] = {
                str(k): str(v) for k, v in selector.items() if k != label_key
            }
    return out


def uses_claim(workload: Mapping[str, Any], claim: str) -> bool:
    """Whether every pod template of the workload mounts `claim`."""
    for path in jp.pod_template_paths(workload):
        spec = jp.resolve(workload, path).get("spec") or {}
        claims = {dig(v, "persistentVolumeClaim", "claimName") for v in spec.get("volumes") or []}
        if claim not in claims:
            return False
    return True
