"""`kubectl ome-pvc create` from what OME's real agents reported, and what OME then does."""

from __future__ import annotations

import posixpath

from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import naming
from kubectl_omepvc.core import resources as r
from tests.e2e.conftest import Plugin
from tests.ome import real
from tests.ome.conftest import CLAIM, ReadyModel
from tests.ome.test_status import codes, status_json


def test_register_model_gives_a_pvc_model_released_ome_leaves_in_transit(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    ready_model: ReadyModel,
    pv_names: list[str],
    models: list[tuple[str, str | None]],
) -> None:
    name = f"{ready_model.name}-pvc"
    made = plugin(
        "create", CLAIM, "-n", namespace, "--from-model", ready_model.name,
        "--local-path", ready_model.root, "--size", "1Gi", "--register-model", name,
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    models.append((name, None))
    pv_names.append(admin.get(r.PVCS, CLAIM, namespace)["spec"]["volumeName"])
    sub_path = posixpath.basename(ready_model.path)
    model = admin.get(r.CLUSTER_BASE_MODELS, name)
    assert model["spec"]["storage"]["storageUri"] == f"pvc://{namespace}:{CLAIM}/{sub_path}"

    # Released OME: the agents skip pvc:// (no label, no ConfigMap entry), the manager keeps
    # computing In_Transit.
    real.wait_for_state(admin, name, "In_Transit")
    assert dict(real.nodes_labelled(admin, naming.cluster_model_label_key(name))) == {}
    item = status_json(plugin, name)
    assert item["state"] == "In_Transit"
    assert "pvc-not-supported" in codes(item)
    assert item["claim"]["phase"] == "Bound"
