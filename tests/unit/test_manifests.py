from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any

import pytest

from kubectl_omepvc.core import manifests as m
from kubectl_omepvc.core.manifests import (
    AccessMode,
    ClaimRequest,
    ClassSource,
    LocalSource,
    ModelRef,
    NfsSource,
)
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.storage_uri import check_pvc_uri_strict
from kubectl_omepvc.errors import InputError
from tests.unit.create_objects import base_model, bound_pv, bound_pvc, cluster_base_model

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

LLAMA = ModelRef(ModelKind.CLUSTER, "llama-3-2-1b-instruct")


def local_request(**changes: Any) -> ClaimRequest:
    req = ClaimRequest(
        claim="llama-weights",
        namespace="serving",
        size="100Gi",
        source=LocalSource("/raid/models", ("gpu-node-2", "gpu-node-1")),
        model=LLAMA,
        sub_path="meta/llama-3-2-1b-instruct",
    )
    return dataclasses.replace(req, **changes)


# --- PersistentVolume --------------------------------------------------------------------------


def test_local_pv_is_complete() -> None:
    assert m.persistent_volume(local_request()) == {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": "ome-pvc-serving-llama-weights",
            "labels": {
                "app.kubernetes.io/managed-by": "kubectl-ome-pvc",
                "ome-pvc.io/model": "llama-3-2-1b-instruct",
                "ome-pvc.io/model-kind": "ClusterBaseModel",
            },
        },
        "spec": {
            "capacity": {"storage": "100Gi"},
            "accessModes": ["ReadOnlyMany"],
            "volumeMode": "Filesystem",
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "local-storage",
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": "serving",
                "name": "llama-weights",
            },
            "local": {"path": "/raid/models"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": ["gpu-node-1", "gpu-node-2"],
                                }
                            ]
                        }
                    ]
                }
            },
        },
    }


def _node_values(pv: dict[str, Any]) -> list[str]:
    terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    values: list[str] = terms[0]["matchExpressions"][0]["values"]
    return values


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        (("b", "a"), ["a", "b"]),
        (("a", "b", "a"), ["a", "b"]),
        (("only",), ["only"]),
    ],
    ids=["sorted", "deduplicated", "single"],
)
def test_local_pv_nodes_are_stable(nodes: tuple[str, ...], expected: list[str]) -> None:
    pv = m.persistent_volume(local_request(source=LocalSource("/raid/models", nodes)))
    assert _node_values(pv) == expected


@pytest.mark.parametrize(
    ("mode", "read_only"),
    [(AccessMode.READ_ONLY_MANY, True), (AccessMode.READ_WRITE_MANY, None)],
    ids=["rox-mounts-read-only", "rwx-writable"],
)
def test_nfs_pv(mode: AccessMode, read_only: bool | None) -> None:
    req = local_request(source=NfsSource("nfs.lab.internal", "/export/models"), access_mode=mode)
    pv = m.persistent_volume(req)
    spec = pv["spec"]
    assert spec["nfs"].get("readOnly") is read_only
    assert spec["nfs"]["server"] == "nfs.lab.internal"
    assert spec["nfs"]["path"] == "/export/models"
    assert "local" not in spec and "nodeAffinity" not in spec
    assert spec["accessModes"] == [mode.value]
    # The local class never applies to NFS; "" keeps the default class away.
    assert spec["storageClassName"] == ""
    assert spec["persistentVolumeReclaimPolicy"] == "Retain"
    assert spec["claimRef"]["name"] == "llama-weights"


def test_local_pv_without_storage_class() -> None:
    pv = m.persistent_volume(local_request(storage_class=None))
    assert pv["spec"]["storageClassName"] == ""


def test_local_pv_with_custom_class() -> None:
    pv = m.persistent_volume(local_request(storage_class="fast-local"))
    assert pv["spec"]["storageClassName"] == "fast-local"


def test_storage_class_source_has_no_pv() -> None:
    with pytest.raises(ValueError, match="StorageClass"):
        m.persistent_volume(local_request(source=ClassSource("standard")))


def test_pv_without_model_has_only_the_plugin_label() -> None:
    pv = m.persistent_volume(local_request(model=None))
    assert pv["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "kubectl-ome-pvc"}


def test_pv_labels_for_a_namespaced_model() -> None:
    model = ModelRef(ModelKind.NAMESPACED, "qwen3-8b", "team-a")
    labels = m.persistent_volume(local_request(model=model))["metadata"]["labels"]
    assert labels["ome-pvc.io/model"] == "qwen3-8b"
    assert labels["ome-pvc.io/model-kind"] == "BaseModel"
    assert labels["ome-pvc.io/model-namespace"] == "team-a"


def test_long_model_name_label_is_hashed() -> None:
    name = "a" * 70 + ".b" * 20
    labels = m.persistent_volume(local_request(model=ModelRef(ModelKind.CLUSTER, name)))
    value = labels["metadata"]["labels"]["ome-pvc.io/model"]
    assert len(value) <= 63
    assert LABEL_VALUE.fullmatch(value)
    assert value.startswith("aaaa")
    assert value != m.label_value(name[:-1] + "c")


# --- names and label values --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "claim", "expected"),
    [
        ("serving", "llama", "ome-pvc-serving-llama"),
        ("a", "model.v1", "ome-pvc-a-model.v1"),
        ("n" * 20, "c" * 34, "ome-pvc-" + "n" * 20 + "-" + "c" * 34),  # exactly 63
    ],
    ids=["plain", "dotted-claim", "exactly-63"],
)
def test_pv_name_short(namespace: str, claim: str, expected: str) -> None:
    assert m.pv_name(namespace, claim) == expected


@pytest.mark.parametrize(
    ("namespace", "claim"),
    [
        ("n" * 63, "c" * 253),
        ("team-a", "c" * 60),
        ("serving", "x" * 47 + "." + "y" * 20),  # the cut lands right after a dot
        ("serving", "x" * 48 + "-" + "y" * 20),  # ... or a hyphen
    ],
    ids=["longest", "long-claim", "cut-at-dot", "cut-at-hyphen"],
)
def test_pv_name_long_is_valid_and_distinct(namespace: str, claim: str) -> None:
    name = m.pv_name(namespace, claim)
    assert len(name) <= 63
    assert DNS_SUBDOMAIN.fullmatch(name), name
    assert name.startswith("ome-pvc-")
    assert name == m.pv_name(namespace, claim)
    assert name != m.pv_name(namespace, claim[:-1] + "z")


@pytest.mark.parametrize(
    ("text", "same"),
    [
        ("llama", True),
        ("Model_v1.2", True),
        ("x" * 63, True),
        ("", True),
        ("x" * 64, False),
        ("has space", False),
        ("-leading", False),
        ("trailing.", False),
        ("team/a", False),
    ],
    ids=["plain", "mixed", "63", "empty", "64", "space", "leading", "trailing", "slash"],
)
def test_label_value(text: str, same: bool) -> None:
    value = m.label_value(text)
    assert (value == text) is same
    assert len(value) <= 63
    assert LABEL_VALUE.fullmatch(value)


# --- PersistentVolumeClaim ---------------------------------------------------------------------


def test_local_pvc_is_complete() -> None:
    assert m.persistent_volume_claim(local_request()) == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "llama-weights",
            "namespace": "serving",
            "labels": {
                "app.kubernetes.io/managed-by": "kubectl-ome-pvc",
                "ome-pvc.io/model": "llama-3-2-1b-instruct",
                "ome-pvc.io/model-kind": "ClusterBaseModel",
            },
            "annotations": {
                "ome-pvc.io/sub-path": "meta/llama-3-2-1b-instruct",
                "ome-pvc.io/uri": "pvc://serving:llama-weights/meta/llama-3-2-1b-instruct",
            },
        },
        "spec": {
            "accessModes": ["ReadOnlyMany"],
            "volumeMode": "Filesystem",
            "resources": {"requests": {"storage": "100Gi"}},
            "storageClassName": "local-storage",
            "volumeName": "ome-pvc-serving-llama-weights",
        },
    }


def test_pvc_uri_annotation_parses_under_the_strict_rules() -> None:
    pvc = m.persistent_volume_claim(local_request())
    parsed = check_pvc_uri_strict(pvc["metadata"]["annotations"]["ome-pvc.io/uri"])
    assert (parsed.namespace, parsed.claim, parsed.sub_path) == (
        "serving",
        "llama-weights",
        "meta/llama-3-2-1b-instruct",
    )


def test_pvc_binds_to_the_pv_it_was_given() -> None:
    pvc = m.persistent_volume_claim(local_request(), "existing-pv")
    assert pvc["spec"]["volumeName"] == "existing-pv"


def test_nfs_pvc_binds_to_its_pv() -> None:
    req = local_request(source=NfsSource("10.0.0.5", "/export/models"))
    pvc = m.persistent_volume_claim(req)
    assert pvc["spec"]["volumeName"] == m.persistent_volume(req)["metadata"]["name"]
    assert pvc["spec"]["storageClassName"] == ""


def test_class_pvc_is_dynamically_provisioned() -> None:
    req = local_request(source=ClassSource("rwx-nfs"), access_mode=AccessMode.READ_WRITE_MANY)
    spec = m.persistent_volume_claim(req)["spec"]
    assert "volumeName" not in spec
    assert spec["storageClassName"] == "rwx-nfs"
    assert spec["accessModes"] == ["ReadWriteMany"]


def test_pvc_without_class_says_so_explicitly() -> None:
    spec = m.persistent_volume_claim(local_request(storage_class=None))["spec"]
    assert spec["storageClassName"] == ""


def test_pvc_without_sub_path_has_no_annotations() -> None:
    pvc = m.persistent_volume_claim(local_request(sub_path=None))
    assert "annotations" not in pvc["metadata"]


def test_pv_and_pvc_agree() -> None:
    req = local_request()
    pv, pvc = m.persistent_volume(req), m.persistent_volume_claim(req)
    assert pv["spec"]["storageClassName"] == pvc["spec"]["storageClassName"]
    assert pv["spec"]["accessModes"] == pvc["spec"]["accessModes"]
    assert pv["spec"]["capacity"] == pvc["spec"]["resources"]["requests"]
    assert pv["metadata"]["name"] == pvc["spec"]["volumeName"]
    ref = pv["spec"]["claimRef"]
    assert (ref["namespace"], ref["name"]) == (
        pvc["metadata"]["namespace"],
        pvc["metadata"]["name"],
    )


def test_local_storage_class() -> None:
    assert m.local_storage_class() == {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": "local-storage",
            "labels": {"app.kubernetes.io/managed-by": "kubectl-ome-pvc"},
        },
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    assert m.local_storage_class("other")["metadata"]["name"] == "other"


# --- pvc:// models -----------------------------------------------------------------------------


def test_pvc_model_copies_descriptive_fields_only() -> None:
    source = cluster_base_model(quantization="fp8", maxTokens=8192, distribution="PerNode")
    model = m.pvc_model(
        ModelKind.CLUSTER,
        "llama-pvc",
        None,
        "serving",
        "llama-weights",
        "meta/llama-3-2-1b-instruct",
        source,
    )
    assert model["apiVersion"] == "ome.io/v1beta1"
    assert model["kind"] == "ClusterBaseModel"
    assert "namespace" not in model["metadata"]
    assert model["metadata"]["name"] == "llama-pvc"
    assert model["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "kubectl-ome-pvc",
        "ome-pvc.io/claim": "llama-weights",
        "ome-pvc.io/claim-namespace": "serving",
    }
    assert model["spec"] == {
        "modelFormat": {"name": "safetensors", "version": "1.0.0"},
        "modelFramework": {"name": "transformers", "version": "4.43.0"},
        "modelArchitecture": "LlamaForCausalLM",
        "modelParameterSize": "1.24B",
        "modelCapabilities": ["TEXT_GENERATION"],
        "vendor": "meta",
        "displayName": "meta.llama-3.2-1b-instruct",
        "version": "1.0.0",
        "quantization": "fp8",
        "maxTokens": 8192,
        "storage": {"storageUri": "pvc://serving:llama-weights/meta/llama-3-2-1b-instruct"},
    }


def test_pvc_model_does_not_share_structures_with_its_source() -> None:
    source = cluster_base_model()
    model = m.pvc_model(ModelKind.CLUSTER, "x", None, "ns", "claim", "a", source)
    model["spec"]["modelFormat"]["name"] = "changed"
    model["spec"]["modelCapabilities"].append("CHAT")
    assert source["spec"]["modelFormat"]["name"] == "safetensors"
    assert source["spec"]["modelCapabilities"] == ["TEXT_GENERATION"]


def test_pvc_model_without_source_has_only_storage() -> None:
    model = m.pvc_model("BaseModel", "qwen-pvc", "team-a", "team-a", "qwen", "qwen/qwen3-8b")
    assert model["kind"] == "BaseModel"
    assert model["metadata"]["namespace"] == "team-a"
    # a BaseModel's URI names no namespace (OME pkg/validation/basemodel.go at aab06ebe)
    assert model["spec"] == {"storage": {"storageUri": "pvc://qwen/qwen/qwen3-8b"}}


def test_pvc_model_from_a_base_model() -> None:
    source = base_model()
    model = m.pvc_model(ModelKind.NAMESPACED, "q", "team-a", "team-a", "c", "qwen", source)
    assert "path" not in model["spec"]["storage"]
    assert model["spec"]["vendor"] == "meta"


@pytest.mark.parametrize(
    ("kind", "namespace", "claim_namespace", "message"),
    [
        (ModelKind.NAMESPACED, None, "team-a", "needs a namespace"),
        (ModelKind.NAMESPACED, "team-a", "team-b", "cannot use claim team-b/c"),
        (ModelKind.CLUSTER, "team-a", "team-a", "cluster-scoped"),
    ],
    ids=["basemodel-without-namespace", "basemodel-other-namespace", "cluster-with-namespace"],
)
def test_pvc_model_refuses(
    kind: ModelKind, namespace: str | None, claim_namespace: str, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        m.pvc_model(kind, "model", namespace, claim_namespace, "c", "sub")


@pytest.mark.parametrize("sub_path", ["", "/abs", "a/../b", "a/"], ids=repr)
def test_pvc_model_refuses_a_bad_sub_path(sub_path: str) -> None:
    with pytest.raises(InputError, match="sub-path"):
        m.pvc_model(ModelKind.CLUSTER, "model", None, "ns", "c", sub_path)


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Llama", "llama_3", "-llama", "llama-", "llama..v1", "", "a" * 254, "llama/x", "ll ama"],
    ids=["upper", "underscore", "leading", "trailing", "double-dot", "empty", "254", "slash", "sp"],
)
def test_bad_object_names(name: str) -> None:
    with pytest.raises(InputError) as err:
        m.validate_dns_subdomain(name, "claim name")
    assert f"claim name {name!r}" in str(err.value)
    assert "DNS-1123" in str(err.value)


@pytest.mark.parametrize("name", ["llama", "llama-3.2", "a", "a" * 253, "0x"], ids=str)
def test_good_object_names(name: str) -> None:
    assert m.validate_dns_subdomain(name, "claim name") == name


@pytest.mark.parametrize(
    "name",
    ["team.a", "a" * 64, "Team", "team_a", ""],
    ids=["dot", "64", "upper", "underscore", "empty"],
)
def test_bad_namespaces(name: str) -> None:
    with pytest.raises(InputError, match="DNS-1123 label"):
        m.validate_dns_label(name, "namespace")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("raid/models", "not absolute"),
        ("", "not absolute"),
        ("/raid/../models", "'..'"),
        ("/..", "'..'"),
        ("/raid//models", "write it as /raid/models"),
        ("/raid/models/", "write it as /raid/models"),
        ("/raid/./models", "write it as /raid/models"),
        ("//raid", "write it as /raid"),
        ("/raid/\nmodels", "control characters"),
    ],
    ids=[
        "relative",
        "empty",
        "dotdot",
        "root-dotdot",
        "double-slash",
        "trailing",
        "dot",
        "lead2",
        "nl",
    ],
)
def test_bad_absolute_paths(path: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        m.validate_absolute_path(path, "local path")
    assert message in str(err.value)
    assert f"local path {path!r}" in str(err.value)


@pytest.mark.parametrize("path", ["/", "/raid/models", "/mnt/data/models", "/a b"], ids=str)
def test_good_absolute_paths(path: str) -> None:
    assert m.validate_absolute_path(path, "local path") == path


@pytest.mark.parametrize(
    ("sub_path", "message"),
    [
        ("", "empty"),
        ("/meta/llama", "starts with '/'"),
        ("meta/../llama", "'..'"),
        ("..", "'..'"),
        ("meta/llama/", "write it as meta/llama"),
        ("meta//llama", "write it as meta/llama"),
        ("./meta", "write it as meta"),
        (".", "not normalised"),
    ],
    ids=[
        "empty",
        "leading-slash",
        "dotdot",
        "only-dotdot",
        "trailing",
        "double",
        "dot",
        "only-dot",
    ],
)
def test_bad_sub_paths(sub_path: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        m.validate_sub_path(sub_path)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("model_path", "root", "expected"),
    [
        ("/raid/models/meta/llama", "/raid/models", "meta/llama"),
        ("/raid/models/llama", "/raid/models", "llama"),
        ("/raid/models/x", "/", "raid/models/x"),
    ],
    ids=["two-levels", "one-level", "root-slash"],
)
def test_model_sub_path(model_path: str, root: str, expected: str) -> None:
    assert m.model_sub_path(model_path, root) == expected


@pytest.mark.parametrize(
    ("model_path", "root", "message"),
    [
        ("/raid/models-old/llama", "/raid/models", "not under the volume root /raid/models"),
        ("/mnt/models/llama", "/raid/models", "not under the volume root"),
        ("/raid/models", "/raid/models", "is the volume root itself"),
        ("/raid", "/raid/models", "not under"),
        ("raid/models/llama", "/raid/models", "model path 'raid/models/llama' is not absolute"),
        ("/raid/models/llama", "/raid/models/", "volume root '/raid/models/' is not normalised"),
        ("/raid/models/../etc", "/raid/models", "'..'"),
    ],
    ids=["sibling-prefix", "elsewhere", "equal", "parent", "relative", "root-trailing", "dotdot"],
)
def test_model_sub_path_refuses(model_path: str, root: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        m.model_sub_path(model_path, root)
    assert message in str(err.value)


def test_nodes_must_be_given() -> None:
    with pytest.raises(InputError, match="--node"):
        m.validate_nodes(())
    with pytest.raises(InputError, match="node 'GPU_1'"):
        m.validate_nodes(("gpu-1", "GPU_1"))
    assert m.validate_nodes(["gpu-1", "gpu-2"]) == ("gpu-1", "gpu-2")


@pytest.mark.parametrize(
    ("server", "ok"),
    [
        ("nfs.lab.internal", True),
        ("10.0.0.5", True),
        ("[fd00::5]", True),
        ("", False),
        ("nfs server", False),
        ("nfs:/export", False),
        ("nfs;rm", False),
    ],
    ids=["host", "ipv4", "ipv6", "empty", "space", "path", "semicolon"],
)
def test_nfs_server(server: str, ok: bool) -> None:
    if ok:
        assert m.validate_nfs_server(server) == server
    else:
        with pytest.raises(InputError, match="NFS server"):
            m.validate_nfs_server(server)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ReadOnlyMany", AccessMode.READ_ONLY_MANY),
        ("ReadWriteMany", AccessMode.READ_WRITE_MANY),
        ("ReadWriteOnce", AccessMode.READ_WRITE_ONCE),
        ("ReadWriteOncePod", AccessMode.READ_WRITE_ONCE_POD),
    ],
    ids=["rox", "rwx", "rwo", "rwop"],
)
def test_access_modes(text: str, expected: AccessMode) -> None:
    assert m.parse_access_mode(text) is expected


@pytest.mark.parametrize("text", ["ROX", "readonlymany", "", "ReadOnly"], ids=repr)
def test_bad_access_modes(text: str) -> None:
    with pytest.raises(InputError) as err:
        m.parse_access_mode(text)
    assert repr(text) in str(err.value)
    assert "ReadOnlyMany, ReadWriteMany" in str(err.value)


@pytest.mark.parametrize(
    ("size", "message"),
    [("100GB", "not valid"), ("0", "not positive"), ("-1Gi", "negative"), ("", "not valid")],
    ids=["GB", "zero", "negative", "empty"],
)
def test_bad_sizes(size: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        m.validate_size(size)
    assert message in str(err.value)
    assert repr(size) in str(err.value)


def test_good_size() -> None:
    assert m.validate_size("1.5Gi") == 1536 * 2**20


def test_valid_requests_pass() -> None:
    m.validate_claim_request(local_request())
    m.validate_claim_request(local_request(source=NfsSource("10.0.0.5", "/")))
    m.validate_claim_request(local_request(source=ClassSource("standard"), sub_path=None))
    m.validate_claim_request(
        local_request(storage_class=None, model=ModelRef(ModelKind.NAMESPACED, "q", "team-a"))
    )


BAD_REQUESTS = [
    ({"claim": "Llama"}, "claim name 'Llama'"),
    ({"namespace": "team.a"}, "namespace 'team.a'"),
    ({"size": "lots"}, "size 'lots'"),
    ({"size": "0Gi"}, "not positive"),
    ({"access_mode": "ROX"}, "access mode 'ROX'"),
    ({"sub_path": "../etc"}, "'..'"),
    ({"sub_path": "/meta"}, "starts with '/'"),
    ({"model": ModelRef(ModelKind.CLUSTER, "Bad_Name")}, "model name 'Bad_Name'"),
    ({"model": ModelRef(ModelKind.NAMESPACED, "q", "Team")}, "model namespace 'Team'"),
    ({"source": LocalSource("raid/models", ("n1",))}, "local path 'raid/models' is not absolute"),
    ({"source": LocalSource("/raid/models/", ("n1",))}, "not normalised"),
    ({"source": LocalSource("/raid/models", ())}, "at least one node"),
    ({"storage_class": "Local_Storage"}, "storage class 'Local_Storage'"),
    ({"source": NfsSource("", "/export")}, "NFS server ''"),
    ({"source": NfsSource("nfs", "export")}, "NFS path 'export' is not absolute"),
    ({"source": ClassSource("")}, "storage class ''"),
]


@pytest.mark.parametrize(
    ("changes", "message"),
    BAD_REQUESTS,
    ids=[b[1].split(" '")[0] + str(i) for i, b in enumerate(BAD_REQUESTS)],
)
def test_bad_requests_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as err:
        m.validate_claim_request(local_request(**changes))
    assert message in str(err.value)


# --- spec_difference ---------------------------------------------------------------------------


def test_no_difference_with_what_the_server_returns() -> None:
    req = local_request()
    pv, pvc = m.persistent_volume(req), m.persistent_volume_claim(req)
    assert m.spec_difference(bound_pv(pv), pv) == []
    assert m.spec_difference(bound_pvc(pvc), pvc) == []
    nfs = m.persistent_volume(local_request(source=NfsSource("10.0.0.5", "/export")))
    assert m.spec_difference(bound_pv(nfs), nfs) == []


def test_dynamically_bound_claim_is_not_a_difference() -> None:
    pvc = m.persistent_volume_claim(local_request(source=ClassSource("standard")))
    assert m.spec_difference(bound_pvc(pvc, "pvc-1234"), pvc) == []


@pytest.mark.parametrize(
    ("have", "want"),
    [("1Ti", "1024Gi"), ("1000M", "1G"), ("100Gi", "100Gi")],
    ids=["Ti-Gi", "M-G", "same"],
)
def test_equal_quantities_are_no_difference(have: str, want: str) -> None:
    pv = m.persistent_volume(local_request(size=want))
    live = bound_pv(pv)
    live["spec"]["capacity"] = {"storage": have}
    assert m.spec_difference(live, pv) == []


def test_differences_are_named() -> None:
    existing = m.persistent_volume(local_request(size="50Gi"))
    existing["spec"]["local"]["path"] = "/mnt/models"
    existing["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0][
        "values"
    ] = ["gpu-node-1"]
    del existing["spec"]["storageClassName"]
    desired = m.persistent_volume(local_request())
    assert m.spec_difference(existing, desired) == [
        'spec.capacity.storage: has "50Gi", wants "100Gi"',
        'spec.storageClassName: not set, wants "local-storage"',
        'spec.local.path: has "/mnt/models", wants "/raid/models"',
        "spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values: "
        'has ["gpu-node-1"], wants ["gpu-node-1","gpu-node-2"]',
    ]


def test_claim_bound_elsewhere_is_a_difference() -> None:
    desired = m.persistent_volume(local_request())
    existing = bound_pv(desired)
    existing["spec"]["claimRef"]["namespace"] = "other"
    assert m.spec_difference(existing, desired) == [
        'spec.claimRef.namespace: has "other", wants "serving"'
    ]


def test_nfs_existing_as_local_is_a_difference() -> None:
    desired = m.persistent_volume(local_request(source=NfsSource("10.0.0.5", "/export")))
    existing = m.persistent_volume(local_request())
    lines = m.spec_difference(existing, desired)
    assert (
        'spec.nfs: not set, wants {"path":"/export","readOnly":true,"server":"10.0.0.5"}' in lines
    )


def test_storage_class_difference_has_no_spec() -> None:
    desired = m.local_storage_class()
    existing = {**desired, "volumeBindingMode": "Immediate", "reclaimPolicy": "Delete"}
    assert m.spec_difference(existing, desired) == [
        'volumeBindingMode: has "Immediate", wants "WaitForFirstConsumer"'
    ]
    assert m.spec_difference({"metadata": {}}, desired)[0].startswith("provisioner: not set")


def test_model_spec_difference() -> None:
    desired = m.pvc_model(ModelKind.CLUSTER, "x", None, "ns", "claim", "a/b")
    existing = copy.deepcopy(desired)
    existing["spec"]["storage"]["storageUri"] = "pvc://ns:claim/a"
    existing["spec"]["modelFormat"] = {"name": "safetensors"}  # set by someone else: kept
    assert m.spec_difference(existing, desired) == [
        'spec.storage.storageUri: has "pvc://ns:claim/a", wants "pvc://ns:claim/a/b"'
    ]
