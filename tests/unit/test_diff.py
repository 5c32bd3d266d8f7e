"""The before/after diff of a pod template."""

from __future__ import annotations

import json

import pytest

from kubectl_omepvc.commands.diff import patches_json
from kubectl_omepvc.core import diff, transform
from kubectl_omepvc.printers import Palette
from tests.unit import ome_objects as ome

RED, GREEN, BOLD, DIM, RESET = "\033[31m", "\033[32m", "\033[1m", "\033[2m", "\033[0m"


def engine_diff(color: Palette | None = None) -> str:
    before = ome.pod_template()
    after = transform.to_pvc(before, ome.MODEL, ome.CLAIM, ome.SUB_PATH, ome.LABEL_KEY)
    return diff.template_diff("deployment/llama-engine", before, after, color)


def test_headers_and_changed_lines() -> None:
    lines = engine_diff().splitlines()
    assert lines[:2] == [
        "--- deployment/llama-engine (hostPath)",
        "+++ deployment/llama-engine (pvc)",
    ]
    removed = [ln[1:].strip() for ln in lines[2:] if ln.startswith("-")]
    added = [ln[1:].strip() for ln in lines[2:] if ln.startswith("+")]
    assert removed == [
        "nodeSelector:",
        f"{ome.LABEL_KEY}: Ready",
        "hostPath:",
        f"path: {ome.MODEL_PATH}",
        "type: ''",
    ]
    assert added == [
        f"subPath: {ome.SUB_PATH}",
        "nodeSelector: {}",
        "persistentVolumeClaim:",
        f"claimName: {ome.CLAIM}",
        "readOnly: true",
    ]
    assert all(ln.startswith(("---", "+++", "@@", " ", "-", "+")) for ln in lines)


def test_equal_templates_give_nothing() -> None:
    assert diff.template_diff("deployment/x", ome.pod_template(), ome.pod_template()) == ""


@pytest.mark.parametrize("palette", [None, Palette(False)], ids=["none", "disabled"])
def test_plain_without_an_enabled_palette(palette: Palette | None) -> None:
    assert "\033[" not in engine_diff(palette)


def test_colours_with_an_enabled_palette() -> None:
    plain = engine_diff().splitlines()
    coloured = engine_diff(Palette(True)).splitlines()
    assert len(plain) == len(coloured)
    for p, c in zip(plain, coloured, strict=True):
        if p.startswith(("---", "+++")):
            assert c == f"{BOLD}{p}{RESET}"
        elif p.startswith("@@"):
            assert c == f"{DIM}{p}{RESET}"
        elif p.startswith("-"):
            assert c == f"{RED}{p}{RESET}"
        elif p.startswith("+"):
            assert c == f"{GREEN}{p}{RESET}"
        else:
            assert c == p


def test_labels_for_the_way_back() -> None:
    before = ome.pod_template()
    after = transform.to_pvc(before, ome.MODEL, ome.CLAIM, ome.SUB_PATH, ome.LABEL_KEY)
    out = diff.template_diff("deployment/llama-engine", after, before, labels=("pvc", "hostPath"))
    assert out.splitlines()[:2] == [
        "--- deployment/llama-engine (pvc)",
        "+++ deployment/llama-engine (hostPath)",
    ]
    assert f"-      subPath: {ome.SUB_PATH}" in out.splitlines()


# --- planning a workload's switch ---------------------------------------------------------------


def test_unified_colours_only_with_an_enabled_palette() -> None:
    workload = ome.deployment()
    plan = diff.plan_workload(workload, ome.MODEL, "models", ome.SUB_PATH, ome.LABEL_KEY)
    plain = diff.unified([plan], Palette(False))
    coloured = diff.unified([plan], Palette(True))
    assert "\033[" not in plain
    assert "\033[31m-" in coloured and "\033[32m+" in coloured


NAMESPACED_KEY = f"models.ome.io/team-a.basemodel.{ome.MODEL}"


@pytest.mark.parametrize(
    ("namespace", "selector_key", "expected"),
    [
        ("team-a", ome.LABEL_KEY, ome.LABEL_KEY),
        ("team-a", NAMESPACED_KEY, NAMESPACED_KEY),
        ("team-a", "gpu", ome.LABEL_KEY),
    ],
    ids=["cluster-model", "namespaced-model", "none-defaults-to-cluster"],
)  # fmt: skip
def test_label_key_of_a_local_workload(namespace: str, selector_key: str, expected: str) -> None:
    workload = ome.deployment(node_selector={selector_key: "Ready"})
    assert diff.label_key_of(workload, ome.MODEL, namespace) == expected


POLICY = {
    "apiVersion": "admissionregistration.k8s.io/v1",
    "kind": "MutatingAdmissionPolicy",
    "metadata": {"name": "ome-pvc-team-a-llama"},
    "spec": {"failurePolicy": "Fail"},
}


def test_an_object_patch_creates_is_all_added_lines() -> None:
    text = diff.extra_diff(diff.Extra(None, POLICY), Palette(False))
    lines = text.splitlines()
    assert lines[:2] == [
        "--- /dev/null",
        "+++ mutatingadmissionpolicy.admissionregistration.k8s.io/ome-pvc-team-a-llama (created)",
    ]
    assert "+kind: MutatingAdmissionPolicy" in lines
    assert not [line for line in lines[2:] if line.startswith("-")]


def test_json_lists_created_objects_before_the_workload_patches() -> None:
    items = json.loads(patches_json([], [diff.Extra(None, POLICY)]))
    assert [(i["kind"], i["action"]) for i in items] == [("MutatingAdmissionPolicy", "create")]
    assert items[0]["object"] == POLICY
