"""The before/after diff of a pod template."""

from __future__ import annotations

import pytest

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
