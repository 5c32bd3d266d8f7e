"""Whether a claim can serve an isvc's pods: sub-path, access modes, placement (preflight)."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_omepvc.core import claims
from kubectl_omepvc.errors import InputError
from tests.expect import raises_exactly

Obj = dict[str, Any]


def _pv(root: dict[str, Any] | None = None, nodes: list[str] | None = None) -> Obj:
    spec: Obj = dict(root or {})
    if nodes is not None:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": nodes}
        ]}]}}  # fmt: skip
    return {"metadata": {"name": "pv-models"}, "spec": spec}


def _claim(annotation: str | None = None) -> Obj:
    meta: Obj = {"name": "models"}
    if annotation is not None:
        meta["annotations"] = {"ome-pvc.io/sub-path": annotation}
    return {"metadata": meta}


@pytest.mark.parametrize(
    ("pv", "claim", "flag", "expected"),
    [
        (_pv({"local": {"path": "/raid/models"}}), _claim(), None, "meta/llama"),
        (_pv({"local": {"path": "/raid/models"}}), _claim(), "meta//llama", "meta/llama"),
        (_pv({"local": {"path": "/raid/models/meta/llama"}}), _claim(), None, ""),
        (_pv({"local": {"path": "/raid/models"}}), _claim("x/y"), None, "meta/llama"),
        (_pv({"local": {"path": "/data"}}), _claim("copies/llama"), None, "copies/llama"),
        (_pv({"local": {"path": "/data"}}), _claim(), "copies/llama", "copies/llama"),
        (_pv({"csi": {"driver": "x"}}), _claim("a/b"), None, "a/b"),
        (_pv({"csi": {"driver": "x"}}), _claim("a/b"), "c/d", "c/d"),
        (None, _claim(), "c/d", "c/d"),
        # NFS: the export's path is on the server, never compared with the node's model path.
        (_pv({"nfs": {"server": "s", "path": "/export/models"}}), _claim("llama"), None, "llama"),
        (_pv({"nfs": {"server": "s", "path": "/export/models"}}), _claim(), "llama", "llama"),
        (_pv({"nfs": {"server": "s", "path": "/"}}), _claim(), "llama", "llama"),
        (_pv({"nfs": {"server": "s", "path": "/raid/models"}}), _claim("m"), "other", "other"),
    ],
    ids=["local-root", "flag-agrees", "model-at-root", "local-root-over-annotation",
         "local-elsewhere-annotation", "local-elsewhere-flag", "annotation",
         "flag-over-annotation", "unbound-with-flag", "nfs-annotation", "nfs-flag",
         "nfs-export-root-flag", "nfs-same-path-as-node-flag"],
)  # fmt: skip
def test_choose_sub_path(pv: Obj | None, claim: Obj, flag: str | None, expected: str) -> None:
    assert claims.choose_sub_path("/raid/models/meta/llama", pv, claim, flag) == expected


@pytest.mark.parametrize(
    ("pv", "flag", "message"),
    [
        (_pv({"local": {"path": "/data"}}), None, "local volume's root /data does not hold"),
        (_pv({"local": {"path": "/raid/models"}}), "llama", "does not match the volume"),
        (_pv({"csi": {"driver": "x"}}), None, "pass --sub-path DIR"),
        (_pv({"nfs": {"server": "s", "path": "/raid/models"}}), None, "not a directory on the"),
        (_pv({"nfs": {"server": "s", "path": "/export"}}), "../x", "contains '..'"),
        (_pv({"nfs": {"server": "s", "path": "/export"}}), "/x", "is absolute"),
    ],
    ids=["local-elsewhere-without-flag", "flag-disagrees", "provisioned-without-flag",
         "nfs-without-flag", "nfs-flag-escapes", "nfs-flag-absolute"],
)  # fmt: skip
def test_choose_sub_path_refuses(pv: Obj, flag: str | None, message: str) -> None:
    with raises_exactly(InputError, match=message.replace(".", r"\.")):
        claims.choose_sub_path("/raid/models/meta/llama", pv, _claim(), flag)


@pytest.mark.parametrize(
    ("modes", "pods", "pinned", "problem"),
    [
        (["ReadOnlyMany"], 8, None, None),
        (["ReadWriteMany"], 8, None, None),
        (["ReadWriteOnce"], 1, None, None),
        (["ReadWriteOnce"], 3, "gpu-node-2", None),
        (["ReadWriteOnce"], 3, None, "ReadWriteOnce"),
        (["ReadWriteOnce", "ReadOnlyMany"], 3, None, None),
        (["ReadWriteOncePod"], 1, None, None),
        (["ReadWriteOncePod"], 2, "gpu-node-2", "ReadWriteOncePod"),
        ([], 5, None, None),
    ],
    ids=["rox", "rwx", "rwo-one-pod", "rwo-one-node", "rwo-many-nodes", "rwo-and-rox",
         "rwop-one-pod", "rwop-two-pods", "unknown"],
)  # fmt: skip
def test_access_problem(
    modes: list[str], pods: int, pinned: str | None, problem: str | None
) -> None:
    found = claims.access_problem(modes, pods, pinned)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found and str(pods) in found


def _node(name: str, ready: bool = True, **labels: str) -> Obj:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


NODES = [_node("gpu-node-1", pool="a"), _node("gpu-node-2", pool="b"), _node("gpu-node-3", False)]


@pytest.mark.parametrize(
    ("pv", "selectors", "problem"),
    [
        (_pv(nodes=["gpu-node-2"]), {"w": {}}, None),
        (_pv(), {"w": {"pool": "a"}}, None),
        (_pv(nodes=["gpu-node-2"]), {"w": {"pool": "b"}}, None),
        (_pv(nodes=["no-such-node"]), {"w": {}}, "kubernetes.io/hostname In [no-such-node]"),
        (_pv(nodes=["gpu-node-3"]), {"w": {}}, "none of the 2 Ready nodes"),
        (_pv(nodes=["gpu-node-2"]), {"w": {"pool": "a"}}, "has the labels w selects (pool=a)"),
    ],
    ids=["pinned-ready", "no-affinity", "pinned-and-selected", "no-such-node", "node-not-ready",
         "selector-elsewhere"],
)  # fmt: skip
def test_placement_problem(
    pv: Obj, selectors: dict[str, dict[str, str]], problem: str | None
) -> None:
    found = claims.placement_problem(NODES, pv, selectors)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
