"""JSON Patches for patch/unpatch: paths by name, `test` guards, the record, exact round trips."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from jsonpointer import JsonPointer

from kubectl_omepvc import __version__
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import transform
from kubectl_omepvc.errors import Conflict, InputError
from tests.expect import raises_exactly
from tests.unit import ome_objects as ome

Obj = dict[str, Any]


def patch_all(workload: Obj, strategy: str = "deployment", **kw: Any) -> list[jp.Operation]:
    return jp.workload_patch(
        workload,
        jp.pod_template_paths(workload),
        kw.get("model", ome.MODEL),
        ome.CLAIM,
        kw.get("sub_path", ome.SUB_PATH),
        kw.get("label_key", ome.LABEL_KEY),
        strategy,
    )


# --- pointers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "escaped"),
    [
        (ome.LABEL_KEY, "models.ome.io~1clusterbasemodel.llama-3-2-1b-instruct"),
        ("a~b/c", "a~0b~1c"),
        ("~1", "~01"),
        ("plain", "plain"),
    ],
    ids=["label-key", "both", "tilde-one-literal", "plain"],
)
def test_escape(token: str, escaped: str) -> None:
    assert jp.escape(token) == escaped
    assert JsonPointer("/" + escaped).parts == [token], "RFC 6901 reads back the same token"


def test_pointer_joins_escaped_tokens() -> None:
    assert jp.pointer("spec", "nodeSelector", "a/b", 3) == "/spec/nodeSelector/a~1b/3"
    assert JsonPointer(jp.pointer("spec", "a/b", 3)).parts == ["spec", "a/b", "3"]
    assert jp.pointer() == ""


# --- the applier ----------------------------------------------------------------------------


DOC: Obj = {"a": {"b": [1, 2, 3]}, "c": True, "k/y": "v"}


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ({"op": "add", "path": "/a/b/1", "value": 9}, {"a": {"b": [1, 9, 2, 3]}}),
        ({"op": "add", "path": "/a/b/-", "value": 9}, {"a": {"b": [1, 2, 3, 9]}}),
        ({"op": "add", "path": "/a/b/3", "value": 9}, {"a": {"b": [1, 2, 3, 9]}}),
        ({"op": "add", "path": "/a/n", "value": {}}, {"a": {"b": [1, 2, 3], "n": {}}}),
        ({"op": "add", "path": "/a", "value": 1}, {"a": 1}),
        ({"op": "remove", "path": "/a/b/0"}, {"a": {"b": [2, 3]}}),
        ({"op": "remove", "path": "/k~1y"}, {"k/y": None}),
        ({"op": "replace", "path": "/a/b/2", "value": "x"}, {"a": {"b": [1, 2, "x"]}}),
        ({"op": "test", "path": "/c", "value": True}, {}),
        ({"op": "test", "path": "/a", "value": {"b": [1, 2, 3.0]}}, {}),
        (
            {"op": "move", "from": "/k~1y", "path": "/a/m"},
            {"a": {"b": [1, 2, 3], "m": "v"}, "k/y": None},
        ),
        ({"op": "copy", "from": "/a/b/0", "path": "/a/b/-"}, {"a": {"b": [1, 2, 3, 1]}}),
        ({"op": "replace", "path": "", "value": {"a": 1}}, {"a": 1, "c": None, "k/y": None}),
    ],
    ids=[
        "add-index",
        "add-end",
        "add-at-length",
        "add-member",
        "add-over",
        "remove-index",
        "remove-escaped",
        "replace",
        "test-bool",
        "test-number",
        "move",
        "copy",
        "replace-whole-document",
    ],
)
def test_apply_patch(op: jp.Operation, expected: Obj) -> None:
    out = jp.apply_patch(DOC, [op])
    want = json.loads(json.dumps(DOC)) | expected
    want = {k: v for k, v in want.items() if v is not None}
    assert out == want
    assert DOC == {"a": {"b": [1, 2, 3]}, "c": True, "k/y": "v"}, "input must stay untouched"


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ({"op": "test", "path": "/c", "value": 1}, "test failed at /c: the object changed"),
        ({"op": "test", "path": "/a/b", "value": [1, 2]}, "test failed at /a/b: the object"),
        ({"op": "test", "path": "/missing", "value": None}, "test failed at /missing: the"),
        ({"op": "replace", "path": "/missing", "value": 1}, "replace /missing: can't replace"),
        ({"op": "remove", "path": "/a/b/3"}, "remove /a/b/3: can't remove a non-existent"),
        ({"op": "replace", "path": "/a/b/01", "value": 1}, "replace /a/b/01: '01' is not a valid"),
        ({"op": "add", "path": "/a/b/4", "value": 1}, "add /a/b/4: can't insert outside of list"),
        ({"op": "add", "path": "/nope/x", "value": 1}, "add /nope/x: member 'nope' not found"),
        ({"op": "add", "path": "/c/x", "value": 1}, "add /c/x: Document .* does not support"),
        ({"op": "add", "path": "/a/b/\u0661", "value": 1}, "add /a/b/.: '.' is not a valid"),
        ({"op": "remove", "path": "/a/b/-"}, "remove /a/b/-: invalid array index '-'"),
        ({"op": "move", "from": "/nope", "path": "/d"}, "move /d: 'nope'"),
        ({"op": "copy", "from": "/a/b/3", "path": "/d"}, "copy /d: list index out of range"),
    ],
    ids=[
        "test-true-is-not-1",
        "test-list",
        "test-missing",
        "replace-missing",
        "remove-out-of-range",
        "leading-zero",
        "add-past-end",
        "add-no-parent",
        "add-into-scalar",
        "arabic-indic-digit-is-no-index",
        "remove-end-marker",
        "move-from-missing",
        "copy-from-missing",
    ],
)
def test_apply_patch_fails(op: jp.Operation, message: str) -> None:
    with raises_exactly(jp.PatchFailed, match=message) as info:
        jp.apply_patch(DOC, [op])
    assert isinstance(info.value, Conflict)  # exit code and wording of a conflict


@pytest.mark.parametrize(
    "op",
    [
        {"op": "frobnicate", "path": "/a"},
        {"path": "/a", "value": 1},
        {"op": "add", "path": "/a"},
        {"op": "replace", "path": "/a"},
        {"op": "test", "path": "/a"},
        {"op": "move", "path": "/a"},
        {"op": "copy", "path": "/a"},
        {"op": "add", "value": 1},
        {"op": "add", "path": "/a~2", "value": 1},
        {"op": "add", "path": "/a~", "value": 1},
        {"op": "add", "path": "a", "value": 1},
        {"op": "replace", "path": "/a/b/-", "value": 1},
    ],
    ids=[
        "unknown-op",
        "no-op",
        "add-without-value",
        "replace-without-value",
        "test-without-value",
        "move-without-from",
        "copy-without-from",
        "no-path",
        "tilde-two",
        "lone-tilde",
        "pointer-without-slash",
        "replace-end-marker",
    ],
)
def test_apply_patch_refuses_what_is_not_rfc_6902(op: Any) -> None:
    with pytest.raises(jp.InvalidPatch, match="not a valid JSON Patch operation") as info:
        jp.apply_patch(DOC, [op])
    assert not isinstance(info.value, Conflict), "not 'the object changed': the patch is wrong"


def test_apply_patch_is_all_or_nothing() -> None:
    ops: list[jp.Operation] = [
        {"op": "replace", "path": "/c", "value": False},
        {"op": "test", "path": "/c", "value": True},
    ]
    with pytest.raises(jp.PatchFailed, match="test failed at /c"):
        jp.apply_patch(DOC, ops)
    assert DOC["c"] is True


# RFC 6902, appendix A: (section, document, patch, result); result None means "an error".
RFC_6902_APPENDIX_A: list[tuple[str, Any, list[Any], Any]] = [
    ("A.1", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}],
     {"baz": "qux", "foo": "bar"}),
    ("A.2", {"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
     {"foo": ["bar", "qux", "baz"]}),
    ("A.3", {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ("A.4", {"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}],
     {"foo": ["bar", "baz"]}),
    ("A.5", {"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
     {"baz": "boo", "foo": "bar"}),
    ("A.6", {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ("A.7", {"foo": ["all", "grass", "cows", "eat"]},
     [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ("A.8", {"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ("A.9", {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], None),
    ("A.10", {"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ("A.11", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
     {"foo": "bar", "baz": "qux"}),
    ("A.12", {"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], None),
    ("A.14", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}],
     {"/": 9, "~1": 10}),
    ("A.15", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}], None),
    ("A.16", {"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
     {"foo": ["bar", ["abc", "def"]]}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "ops", "result"),
    [case[1:] for case in RFC_6902_APPENDIX_A],
    ids=[case[0] for case in RFC_6902_APPENDIX_A],
)
def test_rfc_6902_appendix_a(doc: Any, ops: list[jp.Operation], result: Any) -> None:
    if result is None:
        with pytest.raises(jp.PatchFailed):
            jp.apply_patch(doc, ops)
    else:
        assert jp.apply_patch(doc, ops) == result


def test_rfc_6902_appendix_a_13_two_ops_in_one_operation() -> None:
    """A.13: an operation with `op` twice is not a patch. Read with both values kept (not the
    last one, as json.loads would), the operation's `op` is no string and is refused."""
    text = '[{"op": "add", "path": "/baz", "value": "qux", "op": "remove"}]'

    def keep_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, list[Any]] = {}
        for key, value in pairs:
            out.setdefault(key, []).append(value)
        return {k: v[0] if len(v) == 1 else v for k, v in out.items()}

    ops = json.loads(text, object_pairs_hook=keep_duplicates)
    assert ops[0]["op"] == ["add", "remove"]
    with pytest.raises(jp.InvalidPatch):
        jp.apply_patch({"foo": "bar"}, ops)


# --- template paths ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workload", "paths"),
    [
        (ome.deployment(), ["/spec/template"]),
        (
            ome.leader_worker_set(),
            [
                "/spec/leaderWorkerTemplate/leaderTemplate",
                "/spec/leaderWorkerTemplate/workerTemplate",
            ],
        ),
        (ome.leader_worker_set(with_leader=False), ["/spec/leaderWorkerTemplate/workerTemplate"]),
    ],
    ids=["deployment", "lws", "lws-no-leader"],
)
def test_pod_template_paths(workload: Obj, paths: list[str]) -> None:
    assert jp.pod_template_paths(workload) == paths


def test_pod_template_paths_refuses_knative() -> None:
    with raises_exactly(InputError, match="Service is not a Deployment or LeaderWorkerSet"):
        jp.pod_template_paths({"kind": "Service", "apiVersion": "serving.knative.dev/v1"})


# --- the patch --------------------------------------------------------------------------------


def test_engine_patch_operations_exactly() -> None:
    workload = ome.deployment()
    ops = jp.template_patch(
        workload, "/spec/template", ome.MODEL, ome.CLAIM, ome.SUB_PATH, ome.LABEL_KEY
    )
    spec = "/spec/template/spec"
    mount = ome.model_mount()
    key = "models.ome.io~1clusterbasemodel.llama-3-2-1b-instruct"
    assert [(o["op"], o["path"]) for o in ops] == [
        ("test", f"{spec}/volumes/1"),
        ("test", f"{spec}/containers/0/volumeMounts/1"),
        ("test", f"{spec}/nodeSelector/{key}"),
        ("replace", f"{spec}/volumes/1"),
        ("replace", f"{spec}/containers/0/volumeMounts/1"),
        ("remove", f"{spec}/nodeSelector/{key}"),
        ("add", "/metadata/annotations/ome-pvc.io~1original"),
    ]
    values = [o.get("value") for o in ops]
    assert values[:3] == [ome.model_volume(), mount, "Ready"]
    assert values[3] == {
        "name": ome.MODEL,
        "persistentVolumeClaim": {"claimName": ome.CLAIM, "readOnly": True},
    }
    assert values[4] == {
        "name": ome.MODEL,
        "mountPath": ome.MODEL_PATH,
        "subPath": ome.SUB_PATH,
        "readOnly": True,
    }


def test_engine_restore_operations_exactly() -> None:
    """The undo, as the server gets it: each element tested for the patched value, then put
    back, and the record removed (the local apply_patch would take an unknown op for `add`)."""
    workload = ome.deployment()
    patched = jp.apply_patch(workload, patch_all(workload))
    ops = jp.restore_patch(patched)
    spec = "/spec/template/spec"
    annotation = "/metadata/annotations/ome-pvc.io~1original"
    assert [(o["op"], o["path"]) for o in ops] == [
        ("test", f"{spec}/volumes/1"),
        ("test", f"{spec}/containers/0/volumeMounts/1"),
        ("test", f"{spec}/nodeSelector"),
        ("test", annotation),
        ("replace", f"{spec}/volumes/1"),
        ("replace", f"{spec}/containers/0/volumeMounts/1"),
        ("replace", f"{spec}/nodeSelector"),
        ("remove", annotation),
    ]
    values = [o.get("value") for o in ops]
    assert values[0] == {
        "name": ome.MODEL,
        "persistentVolumeClaim": {"claimName": ome.CLAIM, "readOnly": True},
    }
    assert values[1] == ome.model_mount() | {"subPath": ome.SUB_PATH}
    assert values[2] == {}
    assert values[3] == patched["metadata"]["annotations"][jp.ANNOTATION]
    assert values[4:7] == [ome.model_volume(), ome.model_mount(), {ome.LABEL_KEY: "Ready"}]


def test_patch_matches_the_transform() -> None:
    workload = ome.deployment(volume_index=3)
    patched = jp.apply_patch(workload, patch_all(workload))
    expected = transform.to_pvc(
        workload["spec"]["template"], ome.MODEL, ome.CLAIM, ome.SUB_PATH, ome.LABEL_KEY
    )
    assert json.dumps(patched["spec"]["template"]) == json.dumps(expected)


def test_record_annotation() -> None:
    workload = ome.deployment(node_selector={"gpu": "a100", ome.LABEL_KEY: "Ready"})
    patched = jp.apply_patch(workload, patch_all(workload, strategy="policy"))
    record = jp.read_record(patched)
    assert record is not None
    assert record["format"] == 1
    assert list(record["templates"]) == ["/spec/template"]
    assert record["templates"]["/spec/template"] == {
        "plugin": __version__,
        "strategy": "policy",
        "claim": ome.CLAIM,
        "subPath": ome.SUB_PATH,
        "modelName": ome.MODEL,
        "volumeIndex": 1,
        "volume": ome.model_volume(),
        "mounts": [
            {
                "field": "containers",
                "container": "ome-container",
                "index": 1,
                "mount": ome.model_mount(),
            }
        ],
        "nodeSelector": {"key": ome.LABEL_KEY, "value": "Ready", "position": 1},
    }
    assert isinstance(patched["metadata"]["annotations"][jp.ANNOTATION], str)


def test_original_record_of_a_router() -> None:
    record = jp.original_record(
        ome.pod_template(component="router", mounted=False),
        ome.MODEL,
        ome.CLAIM,
        ome.SUB_PATH,
        ome.LABEL_KEY,
        "deployment",
    )
    assert record["mounts"] == []
    assert record["volume"] == ome.model_volume()


def test_annotations_map_created_when_absent() -> None:
    workload = ome.deployment()
    del workload["metadata"]["annotations"]
    ops = patch_all(workload)
    assert ops[-1]["op"] == "add" and ops[-1]["path"] == "/metadata/annotations"
    restored = jp.apply_patch(
        jp.apply_patch(workload, ops), jp.restore_patch(jp.apply_patch(workload, ops))
    )
    assert "annotations" not in restored["metadata"]


def test_already_patched_workload_is_a_no_op() -> None:
    workload = ome.deployment()
    patched = jp.apply_patch(workload, patch_all(workload))
    with pytest.raises(transform.AlreadyPatched, match="deployment/llama-engine already serves"):
        patch_all(patched)


# --- round trips ------------------------------------------------------------------------------


def _lws_long() -> Obj:
    return ome.leader_worker_set(
        model=ome.LONG_MODEL, path=ome.LONG_MODEL_PATH, label_key=ome.LONG_LABEL_KEY
    )


ROUND_TRIPS: list[tuple[str, Callable[[], Obj], dict[str, Any]]] = [
    ("engine-ome-md", ome.deployment, {}),
    ("volume-index-0", lambda: ome.deployment(volume_index=0), {}),
    ("volume-index-1", lambda: ome.deployment(volume_index=1), {}),
    ("volume-index-3", lambda: ome.deployment(volume_index=3), {}),
    (
        "unrelated-hostpath",
        lambda: ome.deployment(volume_index=2, volumes_after=[ome.dshm_volume() | {"name": "x"}]),
        {},
    ),
    ("decoder", lambda: ome.deployment("decoder"), {}),
    ("router", lambda: ome.deployment("router"), {}),
    ("lws", ome.leader_worker_set, {}),
    ("lws-no-leader", lambda: ome.leader_worker_set(with_leader=False), {}),
    ("readOnly-absent", lambda: ome.deployment(read_only=None), {}),
    ("readOnly-true", lambda: ome.deployment(read_only=True), {}),
    (
        "selector-other-keys",
        lambda: ome.deployment(node_selector={"gpu": "a100", ome.LABEL_KEY: "Ready", "zone": "b"}),
        {},
    ),
    ("selector-only-model", lambda: ome.deployment(node_selector={ome.LABEL_KEY: "Ready"}), {}),
    ("selector-none", lambda: ome.deployment(node_selector=None), {}),
    ("hashed-label-key", _lws_long, {"model": ome.LONG_MODEL, "label_key": ome.LONG_LABEL_KEY}),
    ("root-sub-path", ome.deployment, {"sub_path": ""}),
]


def _dumps(workload: Obj) -> tuple[list[str], list[str]]:
    templates = [jp.resolve(workload, p) for p in jp.pod_template_paths(workload)]
    return (
        [json.dumps(t, sort_keys=False) for t in templates],
        [yaml.safe_dump(t, sort_keys=False) for t in templates],
    )


@pytest.mark.parametrize(
    ("build", "kw"), [(b, k) for _, b, k in ROUND_TRIPS], ids=[i for i, _, _ in ROUND_TRIPS]
)
def test_patch_then_restore_is_byte_identical(build: Callable[[], Obj], kw: dict[str, Any]) -> None:
    original = build()
    patched = jp.apply_patch(original, patch_all(original, **kw))
    assert _dumps(patched) != _dumps(original)
    restored = jp.apply_patch(patched, jp.restore_patch(patched))
    assert _dumps(restored) == _dumps(original)
    assert json.dumps(restored) == json.dumps(original), "the whole workload, annotations included"
    assert jp.restore_patch(restored) == [], "a second unpatch has nothing to do"


def test_restore_after_the_server_dropped_the_empty_node_selector() -> None:
    original = ome.deployment(node_selector={ome.LABEL_KEY: "Ready"})
    patched = jp.apply_patch(original, patch_all(original))
    del patched["spec"]["template"]["spec"]["nodeSelector"]  # the API server omits empty maps
    ops = jp.restore_patch(patched)
    assert {
        "op": "add",
        "path": "/spec/template/spec/nodeSelector",
        "value": {ome.LABEL_KEY: "Ready"},
    } in ops
    restored = jp.apply_patch(patched, ops)
    assert jp.json_equal(restored["spec"]["template"], original["spec"]["template"])


def test_restore_one_lws_template_at_a_time() -> None:
    original = ome.leader_worker_set()
    patched = jp.apply_patch(original, patch_all(original))
    leader = jp.apply_patch(patched, jp.restore_patch(patched, jp.LWS_LEADER_TEMPLATE))
    record = jp.read_record(leader)
    assert record is not None and list(record["templates"]) == [jp.LWS_WORKER_TEMPLATE]
    lwt = leader["spec"]["leaderWorkerTemplate"]
    assert lwt["leaderTemplate"] == original["spec"]["leaderWorkerTemplate"]["leaderTemplate"]
    assert lwt["workerTemplate"] == patched["spec"]["leaderWorkerTemplate"]["workerTemplate"]
    both = jp.apply_patch(leader, jp.restore_patch(leader, jp.LWS_WORKER_TEMPLATE))
    assert json.dumps(both) == json.dumps(original)


def test_patch_in_two_steps_keeps_the_first_steps_record() -> None:
    """The leader first, then the rest: the second record keeps the leader's, so unpatch
    restores both templates exactly."""
    original = ome.leader_worker_set()
    first = jp.workload_patch(
        original, [jp.LWS_LEADER_TEMPLATE], ome.MODEL, ome.CLAIM, ome.SUB_PATH, ome.LABEL_KEY
    )
    leader_only = jp.apply_patch(original, first)
    both = jp.apply_patch(leader_only, patch_all(leader_only))
    record = jp.read_record(both)
    assert record is not None
    assert list(record["templates"]) == [jp.LWS_LEADER_TEMPLATE, jp.LWS_WORKER_TEMPLATE]
    restored = jp.apply_patch(both, jp.restore_patch(both))
    assert json.dumps(restored) == json.dumps(original)


def test_restore_from_the_policy_record_when_the_workload_has_none() -> None:
    original = ome.deployment()
    patched = jp.apply_patch(original, patch_all(original, strategy="policy"))
    record = jp.read_record(patched)
    del patched["metadata"]["annotations"][jp.ANNOTATION]  # OME rewrote the annotations
    assert jp.restore_patch(patched) == []
    restored = jp.apply_patch(patched, jp.restore_patch(patched, record=record))
    assert json.dumps(restored["spec"]) == json.dumps(original["spec"])


def test_restore_when_ome_already_put_the_hostpath_back() -> None:
    original = ome.deployment()
    patched = jp.apply_patch(original, patch_all(original))
    reverted = json.loads(json.dumps(patched))
    reverted["spec"] = json.loads(json.dumps(original["spec"]))
    ops = jp.restore_patch(reverted)
    assert [o["path"] for o in ops] == ["/metadata/annotations/ome-pvc.io~1original"] * 2
    assert json.dumps(jp.apply_patch(reverted, ops)) == json.dumps(original)


# --- concurrent changes -------------------------------------------------------------------------


def _reorder_volumes(w: Obj) -> None:
    vols = w["spec"]["template"]["spec"]["volumes"]
    vols.reverse()


def _retarget_mount(w: Obj) -> None:
    w["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][1]["mountPath"] = "/elsewhere"


def _change_selector(w: Obj) -> None:
    w["spec"]["template"]["spec"]["nodeSelector"][ome.LABEL_KEY] = "Updating"


@pytest.mark.parametrize(
    "change",
    [_reorder_volumes, _retarget_mount, _change_selector],
    ids=["volumes-reordered", "mount-changed", "selector-changed"],
)
def test_concurrent_change_fails_the_patch(change: Callable[[Obj], None]) -> None:
    read = ome.deployment()
    ops = patch_all(read)
    live = ome.deployment()
    change(live)
    with pytest.raises(jp.PatchFailed, match="test failed"):
        jp.apply_patch(live, ops)


def test_concurrent_change_fails_the_restore() -> None:
    original = ome.deployment()
    patched = jp.apply_patch(original, patch_all(original))
    ops = jp.restore_patch(patched)
    patched["spec"]["template"]["spec"]["volumes"][1]["persistentVolumeClaim"]["claimName"] = "x"
    with pytest.raises(jp.PatchFailed, match="test failed at /spec/template/spec/volumes/1"):
        jp.apply_patch(patched, ops)


def test_restore_refuses_when_the_volume_is_gone() -> None:
    original = ome.deployment()
    patched = jp.apply_patch(original, patch_all(original))
    del patched["spec"]["template"]["spec"]["volumes"][1]
    with raises_exactly(InputError) as info:
        jp.restore_patch(patched)
    assert info.value.message == (
        f"deployment/llama-engine no longer has a volume named {ome.MODEL}: the workload"
        " changed since it was patched; restore it by hand"
    )


def test_unreadable_record_is_an_input_error() -> None:
    workload = ome.deployment()
    workload["metadata"]["annotations"][jp.ANNOTATION] = "{not json"
    with raises_exactly(InputError) as info:
        jp.restore_patch(workload)
    assert info.value.message == (
        f"the {jp.ANNOTATION} annotation of deployment/llama-engine is not a record this plugin"
        f" can read: restore the workload by hand, then remove the {jp.ANNOTATION} annotation"
    )


def test_policy_mark_survives_omes_metadata_and_goes_on_restore() -> None:
    """OME's Update replaces the workload's annotations, not its pod template's."""
    original = ome.deployment()
    ops = patch_all(original, strategy="policy") + jp.marker_ops(original, "policy")
    patched = jp.apply_patch(original, ops)
    template_annotations = patched["spec"]["template"]["metadata"]["annotations"]
    assert template_annotations[jp.MARKER] == "policy"
    record = jp.read_record(patched)
    patched["metadata"]["annotations"] = {}  # OME rewrote the workload's metadata
    restored = jp.apply_patch(patched, jp.restore_patch(patched, record=record))
    assert json.dumps(restored["spec"]) == json.dumps(original["spec"])


def test_mark_on_templates_without_annotations() -> None:
    original = ome.leader_worker_set()
    for path in jp.pod_template_paths(original):
        jp.resolve(original, path).pop("metadata", None)
    patched = jp.apply_patch(original, patch_all(original) + jp.marker_ops(original, "policy"))
    for path in jp.pod_template_paths(patched):
        assert jp.resolve(patched, path)["metadata"] == {"annotations": {jp.MARKER: "policy"}}
    restored = jp.apply_patch(patched, jp.restore_patch(patched))
    for path in jp.pod_template_paths(restored):
        assert jp.resolve(restored, path)["metadata"] == {}
