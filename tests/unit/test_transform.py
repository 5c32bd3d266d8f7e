"""The hostPath → claim rewrite of one pod template, and the sub-path arithmetic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubectl_omepvc.core import transform
from kubectl_omepvc.errors import InputError
from tests.expect import raises_exactly
from tests.unit import ome_objects as ome

PVC_SOURCE = {"claimName": ome.CLAIM, "readOnly": True}


def convert(template: dict[str, Any], sub_path: str = ome.SUB_PATH, **kw: Any) -> dict[str, Any]:
    return transform.to_pvc(
        template,
        kw.get("model", ome.MODEL),
        ome.CLAIM,
        sub_path,
        kw.get("label_key", ome.LABEL_KEY),
        "deployment/llama-engine",
    )


# --- sub-paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_path", "root", "expected"),
    [
        ("/raid/models/meta/llama-3-2-1b-instruct", "/raid/models", "meta/llama-3-2-1b-instruct"),
        ("/raid/models/meta/llama-3-2-1b-instruct", "/raid/models/", "meta/llama-3-2-1b-instruct"),
        ("/raid/models/meta/llama/", "/raid/models", "meta/llama"),
        ("//raid//models/./meta/llama", "/raid/models", "meta/llama"),
        ("/raid/models/meta/llama", "/", "raid/models/meta/llama"),
        ("/raid/models", "/raid/models", ""),
        ("/raid/models/", "/raid/models", ""),
    ],
    ids=[
        "plain",
        "root-slash",
        "model-slash",
        "doubled-and-dot",
        "root-is-slash",
        "equal",
        "equal-slash",
    ],
)
def test_sub_path_for(model_path: str, root: str, expected: str) -> None:
    assert transform.sub_path_for(model_path, root) == expected


@pytest.mark.parametrize(
    ("model_path", "root", "says"),
    [
        ("/raid/other/llama", "/raid/models", "outside the volume's root"),
        ("/raid/models2/llama", "/raid/models", "outside the volume's root"),
        ("/raid", "/raid/models", "outside the volume's root"),
        ("/raid/models/../etc", "/raid/models", "contains '..'"),
        ("/raid/models/llama", "/raid/../models", "contains '..'"),
        ("raid/models/llama", "/raid/models", "not absolute"),
        ("/raid/models/llama", "raid/models", "not absolute"),
    ],
    ids=[
        "elsewhere",
        "name-prefix-only",
        "parent",
        "dotdot-model",
        "dotdot-root",
        "rel-model",
        "rel-root",
    ],
)
def test_sub_path_for_refuses(model_path: str, root: str, says: str) -> None:
    with raises_exactly(InputError, match=says):
        transform.sub_path_for(model_path, root)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("meta/llama", "meta/llama"),
        ("meta/llama/", "meta/llama"),
        ("./meta//llama", "meta/llama"),
        ("", ""),
    ],
    ids=["plain", "trailing", "dot-double", "empty"],
)
def test_clean_sub_path(text: str, expected: str) -> None:
    assert transform.clean_sub_path(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/meta/llama", "sub-path '/meta/llama' is absolute"),
        ("meta/../../etc", r"sub-path '/meta/\.\./\.\./etc' contains '\.\.'"),
    ],
    ids=["absolute", "dotdot"],
)
def test_clean_sub_path_refuses(text: str, message: str) -> None:
    with raises_exactly(InputError, match=message):
        transform.clean_sub_path(text)


# --- the transform ----------------------------------------------------------------------------


def test_realistic_engine_template_exactly() -> None:
    """The ome.md engine template: everything but the three changes stays as it was."""
    before = ome.pod_template()
    after = convert(before)
    expected = ome.pod_template()
    expected["spec"]["volumes"][1] = {"name": ome.MODEL, "persistentVolumeClaim": PVC_SOURCE}
    expected["spec"]["containers"][0]["volumeMounts"][1] = {
        "name": ome.MODEL,
        "mountPath": ome.MODEL_PATH,
        "subPath": ome.SUB_PATH,
        "readOnly": True,
    }
    expected["spec"]["nodeSelector"] = {}
    assert json.dumps(after) == json.dumps(expected)
    assert before == ome.pod_template(), "the input must not be modified"


@pytest.mark.parametrize("index", [0, 1, 3], ids=["first", "second", "fourth"])
def test_volume_found_by_name_at_any_index(index: int) -> None:
    before = ome.pod_template(volume_index=index, volumes_after=[ome.dshm_volume() | {"name": "z"}])
    after = convert(before)
    vols = after["spec"]["volumes"]
    assert vols[index] == {"name": ome.MODEL, "persistentVolumeClaim": PVC_SOURCE}
    others = [v for i, v in enumerate(vols) if i != index]
    assert others == [v for i, v in enumerate(before["spec"]["volumes"]) if i != index]


def test_unrelated_hostpath_volume_stays() -> None:
    before = ome.pod_template(volume_index=2)  # dshm, then the hostPath "cache" volume
    after = convert(before)
    assert after["spec"]["volumes"][1] == {
        "name": "cache",
        "hostPath": {"path": "/var/cache/llm", "type": "DirectoryOrCreate"},
    }


def test_volume_keeps_its_key_order() -> None:
    volume = {"hostPath": {"path": ome.MODEL_PATH}, "name": ome.MODEL}
    assert list(transform.pvc_volume(volume, "c")) == ["persistentVolumeClaim", "name"]


@pytest.mark.parametrize(
    ("read_only", "expected_keys"),
    [
        (True, ["name", "mountPath", "subPath", "readOnly"]),
        (False, ["name", "mountPath", "subPath", "readOnly"]),
        (None, ["name", "mountPath", "subPath"]),
    ],
    ids=["readOnly-true", "readOnly-false", "readOnly-absent"],
)
def test_mount_keeps_mount_path_and_read_only(
    read_only: bool | None, expected_keys: list[str]
) -> None:
    after = convert(ome.pod_template(read_only=read_only))
    mount = after["spec"]["containers"][0]["volumeMounts"][1]
    assert list(mount) == expected_keys
    assert mount["mountPath"] == ome.MODEL_PATH
    assert mount.get("readOnly") == read_only


def test_router_without_mount() -> None:
    before = ome.pod_template(component="router", mounted=False)
    after = convert(before)
    assert after["spec"]["volumes"][1] == {"name": ome.MODEL, "persistentVolumeClaim": PVC_SOURCE}
    assert after["spec"]["containers"] == before["spec"]["containers"]
    assert after["spec"]["nodeSelector"] == {}


def test_every_mount_in_every_container_and_init_container() -> None:
    before = ome.pod_template()
    spec = before["spec"]
    spec["containers"].append(
        {
            "name": "sidecar",
            "image": "busybox",
            "volumeMounts": [ome.model_mount(path="/model", read_only=None)],
        }
    )
    spec["initContainers"] = [
        {"name": "check", "image": "busybox", "volumeMounts": [ome.model_mount(path="/check")]}
    ]
    spec["containers"][0]["volumeMounts"].append(ome.model_mount(path="/second"))
    after = convert(before)["spec"]
    assert [m.get("subPath") for m in after["containers"][0]["volumeMounts"]] == [
        None,
        ome.SUB_PATH,
        ome.SUB_PATH,
    ]
    assert after["containers"][1]["volumeMounts"][0] == {
        "name": ome.MODEL,
        "mountPath": "/model",
        "subPath": ome.SUB_PATH,
    }
    assert after["initContainers"][0]["volumeMounts"][0]["subPath"] == ome.SUB_PATH


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({ome.LABEL_KEY: "Ready"}, {}),
        ({"gpu": "a100", ome.LABEL_KEY: "Ready", "zone": "b"}, {"gpu": "a100", "zone": "b"}),
        ({"gpu": "a100"}, {"gpu": "a100"}),
        (None, None),
    ],
    ids=["only-model-key", "with-other-keys", "no-model-key", "no-selector"],
)
def test_node_selector(selector: dict[str, str] | None, expected: dict[str, str] | None) -> None:
    after = convert(ome.pod_template(node_selector=selector))
    assert after["spec"].get("nodeSelector") == expected
    if expected is not None:
        assert list(after["spec"]["nodeSelector"]) == list(expected)


def test_hashed_long_label_key() -> None:
    template = ome.pod_template(
        model=ome.LONG_MODEL,
        path=ome.LONG_MODEL_PATH,
        label_key=ome.LONG_LABEL_KEY,
        node_selector={ome.LONG_LABEL_KEY: "Ready", "gpu": "h100"},
    )
    after = transform.to_pvc(template, ome.LONG_MODEL, ome.CLAIM, "meta/x", ome.LONG_LABEL_KEY)
    assert after["spec"]["nodeSelector"] == {"gpu": "h100"}


def test_empty_sub_path_mounts_the_root() -> None:
    after = convert(ome.pod_template(), sub_path="")
    assert after["spec"]["containers"][0]["volumeMounts"][1] == ome.model_mount()


def test_existing_equal_sub_path_is_kept() -> None:
    before = ome.pod_template()
    before["spec"]["containers"][0]["volumeMounts"][1]["subPath"] = ome.SUB_PATH
    change = transform.plan_template(before, ome.MODEL, ome.CLAIM, ome.SUB_PATH, ome.LABEL_KEY)
    assert [m.changed for m in change.mounts] == [False]


def test_plan_reports_positions() -> None:
    change = transform.plan_template(
        ome.pod_template(volume_index=3, node_selector={"a": "1", ome.LABEL_KEY: "Ready"}),
        ome.MODEL,
        ome.CLAIM,
        ome.SUB_PATH,
        ome.LABEL_KEY,
    )
    assert change.volume_index == 3
    assert [(m.field, m.container_index, m.container, m.index) for m in change.mounts] == [
        ("containers", 0, "ome-container", 1)
    ]
    assert change.node_selector is not None
    assert (
        change.node_selector.key,
        change.node_selector.value,
        change.node_selector.position,
    ) == (ome.LABEL_KEY, "Ready", 1)


# --- refusals ---------------------------------------------------------------------------------


def _with_pvc() -> dict[str, Any]:
    t = ome.pod_template()
    t["spec"]["volumes"][1] = {"name": ome.MODEL, "persistentVolumeClaim": {"claimName": "other"}}
    return t


def _with_empty_dir() -> dict[str, Any]:
    t = ome.pod_template()
    t["spec"]["volumes"][1] = {"name": ome.MODEL, "emptyDir": {}}
    return t


def _with_sub_path(key: str, value: str) -> dict[str, Any]:
    t = ome.pod_template()
    t["spec"]["containers"][0]["volumeMounts"][1][key] = value
    return t


def _with_duplicate() -> dict[str, Any]:
    t = ome.pod_template()
    t["spec"]["volumes"].append(ome.model_volume())
    return t


@pytest.mark.parametrize(
    ("template", "says"),
    [
        (ome.pod_template(model="other-model"), "has no volume named llama-3-2-1b-instruct"),
        (_with_empty_dir(), "is not a hostPath volume \\(emptyDir\\)"),
        (_with_sub_path("subPath", "elsewhere"), "with subPath 'elsewhere', not 'meta/"),
        (_with_sub_path("subPathExpr", "$(POD)"), "with subPathExpr"),
        (_with_duplicate(), "has 2 volumes named"),
        ({"metadata": {}}, "has no volume named"),
    ],
    ids=["no-volume", "not-hostpath", "other-subpath", "subpathexpr", "duplicate", "no-spec"],
)
def test_refusals(template: dict[str, Any], says: str) -> None:
    with raises_exactly(InputError, match=says) as info:
        convert(template)
    assert not isinstance(info.value, transform.AlreadyPatched)
    assert "deployment/llama-engine" in info.value.message


def test_already_patched_is_its_own_answer() -> None:
    with pytest.raises(transform.AlreadyPatched) as info:
        convert(_with_pvc())
    assert isinstance(info.value, InputError)
    assert info.value.claim == "other"
    assert "already serves model llama-3-2-1b-instruct from claim other" in info.value.message
