"""The real control plane for e2e tests, and a namespace per test.

The session fixture reuses a cluster that `hack/local-cluster up` already started (and leaves it
running); otherwise it builds (cached) and starts one, and stops it at the end. Failing to build
or start is an error, never a skip.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kubectl_omepvc import cli
from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import generation, policy
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.options import ConnectionOptions
from tests.e2e import ome_controller as ome

REPO = Path(__file__).resolve().parents[2]
# The MutatingAdmissionPolicy API the local server serves (hack/local-cluster's KUBE_VERSION).
_KUBE_MINOR = int(os.environ.get("KUBE_VERSION", "1.37.2").lstrip("v").split(".")[1])
POLICY_VERSION = "v1" if _KUBE_MINOR >= 36 else "v1beta1" if _KUBE_MINOR >= 34 else "v1alpha1"
LOCAL_CLUSTER = REPO / "hack" / "local-cluster"


@dataclasses.dataclass
class Cluster:
    kubeconfig: Path
    bin_dir: Path
    env: dict[str, str]

    def kubectl(self, *args: str, check: bool = True, context: str = "local-admin") -> str:
        done = subprocess.run(
            [str(self.bin_dir / "kubectl"), "--context", context, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def client(self, context: str = "local-admin", **extra: Any) -> Client:
        opts = ConnectionOptions(kubeconfig=str(self.kubeconfig), context=context, **extra)
        return Client(opts, environ=self.env)


def _local_cluster(*args: str) -> str:
    done = subprocess.run(
        [str(LOCAL_CLUSTER), *args], capture_output=True, text=True, timeout=3600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"hack/local-cluster {' '.join(args)} failed (exit {done.returncode}):\n"
            f"{done.stderr[-4000:]}"
        )
    return done.stdout


def _answers(kubectl: Path, kubeconfig: Path) -> bool:
    if not kubeconfig.exists() or not kubectl.exists():
        return False
    done = subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), "get", "--raw", "/readyz"],
        capture_output=True,
        timeout=20,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    state = Path(os.environ.get("LOCAL_CLUSTER_DIR", REPO / ".local-cluster"))
    kubeconfig = state / "kubeconfig"
    bin_dir = Path(_local_cluster("bin-dir").strip())
    started = False
    if not _answers(bin_dir / "kubectl", kubeconfig):
        _local_cluster("build")
        _local_cluster("up")
        started = True
    yield Cluster(kubeconfig, bin_dir, cluster_env(kubeconfig, bin_dir))
    if started and not os.environ.get("KEEP_LOCAL_CLUSTER"):
        _local_cluster("down")


def cluster_env(kubeconfig: Path, bin_dir: Path) -> dict[str, str]:
    """This process's environment pointed at one control plane and its kubectl."""
    return {
        **{k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "NO_COLOR")},
        "KUBECONFIG": str(kubeconfig),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }


@pytest.fixture(scope="session")
def admin(cluster: Cluster) -> Client:
    return cluster.client()


def make_namespace(admin: Client) -> str:
    """A new namespace with a random name."""
    name = f"t-{secrets.token_hex(4)}"
    admin.create(
        r.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    return name


@pytest.fixture
def namespace(request: pytest.FixtureRequest, admin: Client) -> Iterator[str]:
    """A fresh namespace; deleted afterwards unless the test failed (kept for post-mortem)."""
    name = make_namespace(admin)
    yield name
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"\nkeeping namespace {name} for post-mortem")
        return
    admin.delete(r.NAMESPACES, name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@dataclasses.dataclass
class Plugin:
    """Runs the real CLI in-process, against the test cluster."""

    cluster: Cluster

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> Result:
        runner = CliRunner()
        merged = {**self.cluster.env, **(env or {})}
        # CliRunner patches os.environ with `env`; keys set to None are removed.
        patch: dict[str, str | None] = {k: None for k in os.environ if k not in merged}
        patch.update(merged)
        return runner.invoke(
            cli.root, list(args), env=patch, input=input, prog_name="kubectl ome-pvc"
        )


@pytest.fixture
def plugin(cluster: Cluster) -> Plugin:
    return Plugin(cluster)


# -- one served InferenceService (test_patch, test_unpatch) ------------------------------------

KWOK_NODES = ("gpu-node-1", "gpu-node-2", "gpu-node-3")
SERVED_MODEL = "llama-3-2-1b-instruct"


def deleted_after(admin: Client, ref: r.ResourceRef) -> Iterator[list[str]]:
    """A list a test adds names of cluster-scoped objects to; deleted afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        admin.delete(ref, name)


@pytest.fixture
def pv_names(admin: Client) -> Iterator[list[str]]:
    """Names of PVs a test creates; deleted afterwards (they outlive the namespace)."""
    yield from deleted_after(admin, r.PVS)


@pytest.fixture
def isvc(admin: Client, namespace: str) -> Iterator[ome.Isvc]:
    """InferenceService `llama` serving SERVED_MODEL; its policy, if one was made, goes after."""
    yield ome.create_isvc(admin, namespace, "llama", SERVED_MODEL)
    # policies are cluster-scoped: they outlive the namespace
    name = policy.policy_name(namespace, "llama")
    admin.delete(r.mutating_policy_bindings(POLICY_VERSION), name)
    admin.delete(r.mutating_policies(POLICY_VERSION), name)


@pytest.fixture
def labelled(admin: Client, isvc: ome.Isvc) -> Iterator[ome.Isvc]:
    """The model's node label on every kwok node, as the model-agent writes it when Ready."""
    ome.label_nodes(admin, isvc.label_key, "Ready", KWOK_NODES)
    yield isvc
    ome.label_nodes(admin, isvc.label_key, None, KWOK_NODES)


# -- OME generations by their model CRDs (hack/gen-crds.py) --------------------------------------


def _swap_crds(cluster: Cluster, admin: Client, folder: str, native: bool | None) -> Iterator[None]:
    """The model CRDs of `hack/<folder>` for one test; hack/crds (released, full) afterwards."""
    hack = REPO / "hack"

    def schema_says() -> bool | None:
        return generation.from_schema(admin.get_raw("/openapi/v3/apis/ome.io/v1beta1")).native_pvc

    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(hack / folder))
    try:
        ome.wait_for(
            schema_says, lambda v: v is native, what=f"the schema of hack/{folder} to be published"
        )
        yield
    finally:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(hack / "crds"))
        ome.wait_for(schema_says, lambda v: v is False, what="the released schema again")


@pytest.fixture
def native_ome(cluster: Cluster, admin: Client) -> Iterator[None]:
    """OME built from main: its model CRDs (status.conditions as metav1.Condition)."""
    yield from _swap_crds(cluster, admin, "crds-native-pvc", True)


@pytest.fixture
def minimal_ome(cluster: Cluster, admin: Client) -> Iterator[None]:
    """Released OME installed from its minimal CRDs: a schemaless model status."""
    yield from _swap_crds(cluster, admin, "crds-minimal", None)


VAP = r.ResourceRef("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies", "", False)
VAP_BINDING = r.ResourceRef(
    "admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings", "", False
)


def create_denial(
    admin: Client, name: str, namespace: str, rule: dict[str, Any], when: str, message: str
) -> None:
    """A ValidatingAdmissionPolicy and binding denying, in `namespace`, the stored writes (dry
    runs pass) that `rule` matches and the CEL `when` holds for; `message` is the denial's.
    Delete both (VAP, VAP_BINDING, `name`) afterwards."""
    admin.create(
        VAP,
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [rule]},
                "matchConditions": [
                    {"name": "real-writes", "expression": "!request.dryRun"},
                    {"name": "these", "expression": when},
                ],
                "validations": [{"expression": "false", "message": message}],
            },
        },
    )
    admin.create(
        VAP_BINDING,
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                },
            },
        },
    )
