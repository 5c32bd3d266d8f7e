"""`kubectl ome-pvc version` against the real server, for both OME generations."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import REPO, Cluster, Plugin


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


@pytest.fixture
def native_ome(cluster: Cluster) -> Iterator[None]:
    """Model CRDs of OME from main (status.conditions), restored afterwards."""
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "hack/crds-native-pvc")
    )
    try:
        yield
    finally:
        cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "hack/crds")
        )


def test_version_detects_native_pvc_ome(plugin: Plugin, native_ome: None) -> None:
    info = json.loads(plugin("version", "-o", "json").stdout)["server"]
    assert info["ome"]["nativePVC"] is True
    assert info["ome"]["generation"] == "native-pvc"


def test_restricted_user_can_still_probe(plugin: Plugin) -> None:
    result = plugin("version", "--context", "local-restricted", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["server"]["ome"]["served"] is True
