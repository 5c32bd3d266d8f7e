"""OME v0.1.5's real controllers for the tier: `hack/ome up` on a control plane of its own.

OME's manager watches every namespace and puts finalizers on isvcs and models, so the tier
never shares the plain e2e cluster: its state directory and ports are its own (hack/ome's
defaults: `.local-cluster-ome`, LOCAL_CLUSTER_PORT + 100). The session fixture reuses a running
one (and leaves it running), else builds (cached) and starts one, and stops it at the end unless
KEEP_LOCAL_CLUSTER is set. Failing to build or start is an error, never a skip.

The per-test fixtures (`namespace`, `admin`, `plugin`, `pv_names`) are the e2e ones, bound here
to this control plane.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import policy
from kubectl_omepvc.core import resources as r
from tests.e2e import conftest as e2e
from tests.e2e.conftest import POLICY_VERSION, REPO, Cluster, Plugin
from tests.ome import real

# The e2e fixtures and report hook, registered here by name for this control plane.
admin = e2e.admin
namespace = e2e.namespace
plugin = e2e.plugin
pv_names = e2e.pv_names
pytest_runtest_makereport = e2e.pytest_runtest_makereport

HACK_OME = REPO / "hack" / "ome"
STATE = Path(os.environ.get("OME_CLUSTER_DIR", REPO / ".local-cluster-ome"))
PORT = os.environ.get(
    "OME_CLUSTER_PORT", str(int(os.environ.get("LOCAL_CLUSTER_PORT", "16443")) + 100)
)


def hack_ome(*args: str) -> str:
    env = {**os.environ, "OME_CLUSTER_DIR": str(STATE), "OME_CLUSTER_PORT": PORT}
    done = subprocess.run(
        [str(HACK_OME), *args], env=env, capture_output=True, text=True, timeout=3600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"hack/ome {' '.join(args)} failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
        )
    return done.stdout


def _bin_dir() -> Path:
    done = subprocess.run(
        [str(REPO / "hack" / "local-cluster"), "bin-dir"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return Path(done.stdout.strip())


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    kubeconfig = STATE / "kubeconfig"
    started = not kubeconfig.exists()
    # Idempotent: starts whatever of the control plane, manager and agents is not running.
    hack_ome("up")
    bin_dir = _bin_dir()
    yield Cluster(kubeconfig, bin_dir, e2e.cluster_env(kubeconfig, bin_dir))
    if started and not os.environ.get("KEEP_LOCAL_CLUSTER"):
        hack_ome("down")


# -- what a user of OME has before using the plugin: a runtime, a model Ready on some nodes ------

READY_NODES = ("gpu-node-1", "gpu-node-2")


@dataclasses.dataclass(frozen=True)
class ReadyModel:
    name: str
    path: str
    root: str  # the directory that holds the model's directory, as a node's models root would
    nodes: tuple[str, ...]


@pytest.fixture
def models(admin: Client) -> Iterator[list[tuple[str, str | None]]]:
    """(name, namespace) of the models a test made; deleted while the manager runs."""
    made: list[tuple[str, str | None]] = []
    yield made
    for name, namespace in made:
        real.delete_model(admin, name, namespace)


@pytest.fixture(scope="session")
def runtime(admin: Client) -> Iterator[str]:
    """A ClusterServingRuntime for the tier's models (cluster-scoped, so named per run)."""
    name = f"kwok-rt-{real.run_id()}"
    real.create_runtime(admin, name)
    yield name
    admin.delete(real.RUNTIMES, name)


@pytest.fixture(scope="session")
def ready_model(admin: Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadyModel]:
    """A `local://` ClusterBaseModel the real agents made Ready on READY_NODES only."""
    root = tmp_path_factory.mktemp("models")
    name = f"llama-{real.run_id()}"
    model = real.local_model(admin, root, name, nodes=READY_NODES)
    real.wait_for_state(admin, name, "Ready", nodesReady=sorted(READY_NODES))
    yield ReadyModel(name, model["spec"]["storage"]["path"], str(root), READY_NODES)
    real.delete_model(admin, name)


# -- an isvc OME serves, and a claim made by the plugin ---------------------------------------

CLAIM = "weights"
Obj = dict[str, Any]


def claim(
    plugin: Plugin, admin: Client, namespace: str, model: ReadyModel, pv_names: list[str]
) -> Obj:
    """`create --from-model`: a local PV on the model's real status.nodesReady, and its claim."""
    made = plugin(
        "create", CLAIM, "-n", namespace, "--from-model", model.name,
        "--local-path", model.root, "--size", "1Gi",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    pvc = admin.get(r.PVCS, CLAIM, namespace)
    pv: Obj = admin.get(r.PVS, pvc["spec"]["volumeName"])
    pv_names.append(pv["metadata"]["name"])
    return pv


@pytest.fixture
def claimed(
    plugin: Plugin, admin: Client, namespace: str, ready_model: ReadyModel, pv_names: list[str]
) -> ReadyModel:
    """The claim of `claim` made in the test's namespace; the model it holds."""
    claim(plugin, admin, namespace, ready_model, pv_names)
    return ready_model


@pytest.fixture
def served(admin: Client, namespace: str, runtime: str, ready_model: ReadyModel) -> Iterator[str]:
    """isvc `llama` on the Ready model; its policy (cluster-scoped) goes afterwards."""
    real.create_isvc(admin, namespace, "llama", ready_model.name, runtime)
    real.engine(admin, namespace, "llama")
    yield "llama"
    name = policy.policy_name(namespace, "llama")
    admin.delete(r.mutating_policy_bindings(POLICY_VERSION), name)
    admin.delete(r.mutating_policies(POLICY_VERSION), name)
    real.delete_isvc(admin, namespace, "llama")
