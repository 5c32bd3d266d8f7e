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


def test_register_model_refused_on_released_ome_and_a_pvc_model_stays_in_transit(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    ready_model: ReadyModel,
    pv_names: list[str],
    models: list[tuple[str, str | None]],
) -> None:
    name = f"{ready_model.name}-pvc"
    args = ("create", CLAIM, "-n", namespace, "--from-model", ready_model.name,
            "--local-path", ready_model.root, "--size", "1Gi")  # fmt: skip

    # Released OME never serves a pvc:// model: refused before any write, with the way out.
    refused = plugin(*args, "--register-model", name)
    assert refused.exit_code == 1, refused.output
    assert "this OME does not serve pvc:// models" in refused.stderr
    assert "drop --register-model" in refused.stderr
    assert admin.get_or_none(r.PVCS, CLAIM, namespace) is None
    assert admin.get_or_none(r.CLUSTER_BASE_MODELS, name) is None

    # Without it: the claim over the model's directory on the nodes OME reports it Ready on.
    made = plugin(*args)
    assert made.exit_code == 0, made.output
    pv_names.append(admin.get(r.PVCS, CLAIM, namespace)["spec"]["volumeName"])

    # A pvc:// model made anyway: the agents skip it (no label, no ConfigMap entry), the manager
    # keeps computing In_Transit, and status says why.
    sub_path = posixpath.basename(ready_model.path)
    uri = f"pvc://{namespace}:{CLAIM}/{sub_path}"
    real.create_model(admin, name, uri)
    models.append((name, None))
    real.wait_for_state(admin, name, "In_Transit")
    assert dict(real.nodes_labelled(admin, naming.cluster_model_label_key(name))) == {}
    item = status_json(plugin, name)
    assert item["state"] == "In_Transit"
    assert "pvc-not-supported" in codes(item)
    assert item["claim"]["phase"] == "Bound"
