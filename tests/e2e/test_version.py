"""`kubectl ome-pvc version` against the real server, for both OME generations."""

from __future__ import annotations

import json

from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import resources as r
from tests import factories as f
from tests.e2e.conftest import Plugin


def test_version_reports_server_and_capabilities(plugin: Plugin) -> None:
    result = plugin("version")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "Plugin Version: v0." in out
    assert "Server Version: v1.37." in out
    assert "OME CRDs (ome.io/v1beta1): served" in out
    assert "OME native pvc:// models: no" in out
    assert "LeaderWorkerSet: served" in out
    assert "MutatingAdmissionPolicy: v1" in out


def test_version_yaml_and_json_agree(plugin: Plugin) -> None:
    as_json = json.loads(plugin("version", "-o", "json").stdout)
    assert as_json["server"]["mutatingAdmissionPolicy"] == "v1"
    assert as_json["server"]["ome"]["generation"] == "released"
    as_yaml = plugin("version", "-o", "yaml").stdout
    assert "generation: released" in as_yaml


def test_version_detects_native_pvc_ome(plugin: Plugin, native_ome: None) -> None:
    info = json.loads(plugin("version", "-o", "json").stdout)["server"]
    assert info["ome"]["nativePVC"] is True
    assert info["ome"]["generation"] == "native-pvc"
    assert (
        info["ome"]["generationBasis"]
        == "schema: the ClusterBaseModel schema has status.conditions"
    )


def test_version_says_when_the_schema_cannot_tell(
    plugin: Plugin, admin: Client, namespace: str, minimal_ome: None
) -> None:
    # OME v0.1.5's minimal CRDs: the model status is schemaless
    text = plugin("version").stdout
    assert "the ClusterBaseModel schema's status is schemaless" in text
    ours = f.base_model(namespace, "qwen", path=None, uri="pvc://models/qwen")
    ours["metadata"].pop("finalizers", None)
    ours.pop("status", None)
    admin.create(r.BASE_MODELS, ours, namespace)
    admin.request(
        "PATCH", r.BASE_MODELS.path(namespace, "qwen") + "/status",
        body={"status": {"state": "In_Transit", "conditions": [
            f.condition("Ready", "False", "PVCNotBound", "PVC is not Bound")]}},
        content_type="application/merge-patch+json", verb="patch",
    )  # fmt: skip
    info = json.loads(plugin("version", "-o", "json").stdout)["server"]["ome"]
    assert info["nativePVC"] is True and info["generation"] == "native-pvc"
    basis = info["generationBasis"]
    assert basis.startswith(
        "the ClusterBaseModel schema's status is schemaless (OME's minimal CRDs?), so the schema"
        " cannot tell; objects: BaseModel "
    )
    assert basis.endswith(" has status.conditions")  # ours, or any other with conditions


def test_restricted_user_can_still_probe(plugin: Plugin) -> None:
    result = plugin("version", "--context", "local-restricted", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["server"]["ome"]["served"] is True
