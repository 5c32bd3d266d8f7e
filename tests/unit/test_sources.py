"""`create`'s storage sources: which one the flags name, model references, class warnings."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_omepvc.core import manifests as m
from kubectl_omepvc.core import sources
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.sources import FlagError, Source
from tests.expect import raises_exactly

NONE: dict[str, Any] = {
    "local_path": None,
    "nodes": (),
    "from_model": None,
    "nfs_server": None,
    "nfs_path": None,
    "storage_class": None,
    "no_storage_class": False,
    "sub_path": None,
}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"local_path": "/m", "nodes": ("n",)}, Source.LOCAL),
        ({"from_model": "llama"}, Source.FROM_MODEL),
        ({"from_model": "llama", "local_path": "/m", "nodes": ("n",)}, Source.FROM_MODEL),
        ({"nfs_server": "h", "nfs_path": "/e"}, Source.NFS),
        ({"storage_class": "rwx"}, Source.CLASS),
        ({"local_path": "/m", "nodes": ("n",), "no_storage_class": True}, Source.LOCAL),
    ],
    ids=["local", "from-model", "from-model-with-root", "nfs", "class", "classless-local"],
)
def test_choose_source(flags: dict[str, Any], expected: Source) -> None:
    assert sources.choose_source(**{**NONE, **flags}) is expected


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"local_path": "/m", "nodes": ("n",), "storage_class": "x"},
         "--local-path/--node and --storage-class were both given"),
        ({"from_model": "m", "nfs_server": "h"},
         "--from-model and --nfs-server/--nfs-path were both given"),
        ({"nodes": ("n",), "nfs_path": "/e", "storage_class": "x"},
         "--local-path/--node and --nfs-server/--nfs-path and --storage-class were both given"),
    ],
    ids=["local+class", "model+nfs", "three"],
)  # fmt: skip
def test_two_sources_are_a_usage_error(flags: dict[str, Any], message: str) -> None:
    with raises_exactly(sources.FlagError) as caught:
        sources.choose_source(**{**NONE, **flags})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({}, "name one storage source"),
        ({"nodes": ("n",)}, "--node needs --local-path"),
        ({"local_path": "/m"}, "--local-path needs --node"),
        ({"nfs_server": "h"}, "both --nfs-server HOST and --nfs-path"),
        ({"storage_class": "x", "no_storage_class": True}, "applies to local volumes"),
        ({"from_model": "m", "sub_path": "x"}, "comes from the model"),
    ],
    ids=["none", "node-alone", "path-alone", "nfs-half", "class-classless", "model+sub-path"],
)
def test_flags_that_do_not_go_together(flags: dict[str, Any], message: str) -> None:
    with raises_exactly(FlagError, match=message):
        sources.choose_source(**{**NONE, **flags})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("llama", (ModelKind.CLUSTER, "llama")),
        ("clusterbasemodel/llama", (ModelKind.CLUSTER, "llama")),
        ("ClusterBaseModels.ome.io/llama", (ModelKind.CLUSTER, "llama")),
        ("basemodel/qwen", (ModelKind.NAMESPACED, "qwen")),
        ("basemodels/qwen", (ModelKind.NAMESPACED, "qwen")),
    ],
    ids=["bare", "cluster", "plural-group", "base", "base-plural"],
)
def test_parse_model_ref(text: str, expected: tuple[ModelKind, str]) -> None:
    assert sources.parse_model_ref(text, "--from-model") == expected


@pytest.mark.parametrize("text", ["pod/x", "basemodel/", "a/b/c"], ids=str)
def test_parse_model_ref_refuses(text: str) -> None:
    with raises_exactly(FlagError, match="basemodel/NAME"):
        sources.parse_model_ref(text, "--from-model")


@pytest.mark.parametrize(
    ("provisioner", "mode", "warns"),
    [
        ("ebs.csi.aws.com", m.AccessMode.READ_ONLY_MANY, "ReadWriteOnce volumes"),
        ("ebs.csi.aws.com", m.AccessMode.READ_WRITE_ONCE, None),
        ("efs.csi.aws.com", m.AccessMode.READ_WRITE_MANY, None),
        ("kubernetes.io/no-provisioner", m.AccessMode.READ_ONLY_MANY, "provisions nothing"),
    ],
    ids=["block-rox", "block-rwo", "files-rwx", "no-provisioner"],
)
def test_class_access_warning(provisioner: str, mode: m.AccessMode, warns: str | None) -> None:
    storage_class = {"metadata": {"name": "sc"}, "provisioner": provisioner}
    warning = sources.class_access_warning(storage_class, mode)
    assert (warning is None) if warns is None else (warns in str(warning))
