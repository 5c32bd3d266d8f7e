"""Least privilege, proven: each command runs as a fresh user bound to exactly its printed roles.

For every command (and strategy) the roles `kubectl ome-pvc rbac --for ...` prints are bound to
a new user (impersonated by the admin: RBAC judges the impersonated user alone). With them, each
scenario of the command succeeds. Then, for every single permission (one verb on one resource)
taken out of the roles, the scenarios run again as another fresh user: at least one of them must
fail with a 403 naming that verb and resource (or, for a read the command can do without, warn
naming it), and a failed run must have changed nothing.

Covered: `create` and `verify` (create), `diff`, `patch` and `unpatch` with the policy and the
deployment strategies. Not covered: the native strategy (it needs OME's native pvc:// CRDs,
which this cluster does not serve), and the permissions listed in `UNEXERCISED`, whose paths the
scenarios do not reach (each says which path).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import Result

from kubectl_omepvc import errors
from kubectl_omepvc.api.client import Client
from kubectl_omepvc.core import manifests as m
from kubectl_omepvc.core import policy, rbac
from kubectl_omepvc.core import resources as r
from tests.e2e import ome_controller as ome
from tests.e2e.conftest import KWOK_NODES, POLICY_VERSION, SERVED_MODEL, Plugin

Obj = dict[str, Any]
RBAC_REFS = {
    "ClusterRole": r.ResourceRef(rbac.RBAC_GROUP, "v1", "clusterroles", "ClusterRole", False),
    "ClusterRoleBinding": r.ResourceRef(
        rbac.RBAC_GROUP, "v1", "clusterrolebindings", "ClusterRoleBinding", False
    ),
    "Role": r.ResourceRef(rbac.RBAC_GROUP, "v1", "roles", "Role"),
    "RoleBinding": r.ResourceRef(rbac.RBAC_GROUP, "v1", "rolebindings", "RoleBinding"),
}
REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


def strategy_rules() -> dict[str, tuple[rbac.Rule, ...]]:
    from kubectl_omepvc.strategies import registry

    return {s.name: s.rules for s in registry().values()}


@dataclasses.dataclass
class Context:
    plugin: Plugin
    admin: Client
    namespace: str
    pv_names: list[str]
    user: str = ""
    cleanups: list[Callable[[], Any]] = dataclasses.field(default_factory=list)

    def run(self, *args: str) -> Result:
        return self.plugin(*args, "-n", self.namespace, "--as", self.user)


Step = tuple[list[str], tuple[int, ...]]  # a command line and the exit codes that are success


@dataclasses.dataclass
class Scenario:
    """Commands run as the user, after `prepare` (as the admin); `state` is what they may
    change, read by the admin before and after each run."""

    id: str
    steps: Callable[[Context], list[Step]]
    state: Callable[[Context], Any]
    prepare: Callable[[Context], None] = lambda ctx: None


@dataclasses.dataclass
class Run:
    """How a scenario went: every result; the failed step's, with the state around it."""

    results: list[Result]
    failed: Result | None = None
    changed: bool = False


def play(ctx: Context, scenario: Scenario) -> Run:
    run = Run([])
    for args, ok in scenario.steps(ctx):
        before = scenario.state(ctx)
        result = ctx.run(*args)
        run.results.append(result)
        refused = result.exit_code != 0 and "forbidden" in result.output.lower()
        if result.exit_code not in ok or refused:
            run.failed = result
            run.changed = scenario.state(ctx) != before
            break
    return run


# -- granting ---------------------------------------------------------------------------------


def allowed(admin: Client, user: str, rule: rbac.Rule) -> bool:
    resource, _, sub = rule.resources[0].partition("/")
    attributes = {
        "group": rule.group, "resource": resource, "subresource": sub, "verb": rule.verbs[0],
        "namespace": rule.namespace or "default",
    }  # fmt: skip
    review = admin.request(
        "POST",
        REVIEWS,
        body={"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": user, "resourceAttributes": attributes}},
    )  # fmt: skip
    return bool(review.get("status", {}).get("allowed"))


@contextlib.contextmanager
def granted(admin: Client, user: str, rules: tuple[rbac.Rule, ...]) -> Iterator[None]:
    """`rules` bound to `user` (as `rbac` prints them), in effect, removed afterwards."""
    name = f"ome-pvc-least-{secrets.token_hex(4)}"
    subject = rbac.Subject(rbac.SubjectKind.USER, user)
    objects = rbac.rbac_objects(name, rules, subject)
    try:
        for obj in objects:
            ns = obj["metadata"].get("namespace")
            if ns and admin.get_or_none(r.NAMESPACES, ns) is None:
                with contextlib.suppress(errors.Conflict):
                    admin.create(r.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                                "metadata": {"name": ns}})  # fmt: skip
            admin.create(RBAC_REFS[obj["kind"]], obj, ns)
        deadline = time.monotonic() + 20
        while not all(allowed(admin, user, rule) for rule in rules):
            assert time.monotonic() < deadline, "the roles did not take effect"
            time.sleep(0.2)
        yield
    finally:
        for obj in reversed(objects):
            with contextlib.suppress(errors.NotFound):
                admin.delete(RBAC_REFS[obj["kind"]], obj["metadata"]["name"],
                             obj["metadata"].get("namespace"))  # fmt: skip


def fresh_user() -> str:
    return f"least-{secrets.token_hex(4)}"


# -- create (and verify) ------------------------------------------------------------------------


def claims_and_volumes(ctx: Context) -> Any:
    pvcs = sorted(c["metadata"]["name"] for c in ctx.admin.list(r.PVCS, ctx.namespace))
    pvs = sorted(
        pv["metadata"]["name"]
        for pv in ctx.admin.list(r.PVS)
        if (pv["spec"].get("claimRef") or {}).get("namespace") == ctx.namespace
        or pv["metadata"]["name"].startswith(m.pv_name(ctx.namespace, ""))
    )
    models = sorted(b["metadata"]["name"] for b in ctx.admin.list(r.BASE_MODELS, ctx.namespace))
    return pvcs, pvs, models


def track_volume(ctx: Context, claim: str) -> None:
    ctx.pv_names.append(m.pv_name(ctx.namespace, claim))


def create_local(ctx: Context) -> list[Step]:
    claim = f"local-{secrets.token_hex(2)}"
    track_volume(ctx, claim)
    args = ["create", claim, "--local-path", "/raid/models", "--size", "1Gi",
            "--node", KWOK_NODES[0], "--timeout", "30s"]  # fmt: skip
    return [(args, (0,))]


def create_nfs_registered(ctx: Context) -> list[Step]:
    claim = f"nfs-{secrets.token_hex(2)}"
    track_volume(ctx, claim)
    args = ["create", claim, "--nfs-server", "10.0.0.5", "--nfs-path", "/export/models",
            "--size", "1Gi", "--sub-path", "qwen/qwen3-8b",
            "--register-model", f"basemodel/{claim}-model", "--timeout", "30s"]  # fmt: skip
    return [(args, (0,))]


def create_nfs_cluster_model(ctx: Context) -> list[Step]:
    claim = f"nfs-{secrets.token_hex(2)}"
    track_volume(ctx, claim)
    model = f"{ctx.namespace}-{claim}"
    ctx.cleanups.append(lambda: ctx.admin.delete(r.CLUSTER_BASE_MODELS, model))
    args = ["create", claim, "--nfs-server", "10.0.0.5", "--nfs-path", "/export/models",
            "--size", "1Gi", "--sub-path", "qwen/qwen3-8b",
            "--register-model", f"clusterbasemodel/{model}", "--timeout", "30s"]  # fmt: skip
    return [(args, (0,))]


def verify_claim(ctx: Context) -> None:
    """A local claim (as the admin) for `verify`; no kubelet runs here, so its pod times out."""
    result = ctx.plugin("create", "llama", "-n", ctx.namespace, "--local-path", "/raid/models",
                        "--node", KWOK_NODES[1], "--size", "1Gi", "--sub-path", "meta/llama",
                        "--no-storage-class")  # fmt: skip
    assert result.exit_code == 0, result.output
    track_volume(ctx, "llama")


def verify_steps(ctx: Context) -> list[Step]:
    return [(["verify", "llama", "--timeout", "3s"], (1,))]  # 1: did not finish (no kubelet)


def pods(ctx: Context) -> Any:
    return sorted(p["metadata"]["name"] for p in ctx.admin.list(r.PODS, ctx.namespace))


def without_local_class(ctx: Context) -> None:
    """The local StorageClass is shared: gone, `create` must make it (and may)."""
    ctx.admin.delete(r.STORAGE_CLASSES, m.DEFAULT_LOCAL_STORAGE_CLASS)


CREATE_SCENARIOS = [
    Scenario("local", create_local, claims_and_volumes, without_local_class),
    Scenario("nfs-register-model", create_nfs_registered, claims_and_volumes),
    Scenario("nfs-register-cluster-model", create_nfs_cluster_model, claims_and_volumes),
    Scenario("verify-timeout", verify_steps, pods, verify_claim),
]

PATCH_PATHS = {
    ("list", "inferenceservices"): "native: other isvcs still using a pvc:// model",
    ("get", "clusterbasemodels"): "an isvc whose model is a ClusterBaseModel",
    ("list", "persistentvolumeclaims"): "a claim not found in the isvc's namespace",
    ("get", "storageclasses"): "a claim with a StorageClass (the scenario's is classless)",
    ("list", "services"): "refusing a serverless (Knative) isvc",
    ("get", "deployments"): "re-reading a workload after a write conflict",
    ("get", "leaderworkersets"): "multi-node isvcs (LeaderWorkerSets)",
    ("watch", "leaderworkersets"): "multi-node isvcs (LeaderWorkerSets)",
    ("patch", "leaderworkersets"): "multi-node isvcs (LeaderWorkerSets)",
    ("list", "pods"): "explaining a rollout that does not finish",
    ("list", "events"): "explaining a rollout that does not finish",
}

# Permissions of paths no scenario here can reach, left out of the "needed" proof (each is in
# the roles because the code calls it on that path): verify's log and engine lookup need a
# kubelet and an isvc; --from-model needs the model-agent's DaemonSet; replacing a claim
# (--force-conflicts) and a claim that never binds are failure paths of their own.
UNEXERCISED = {
    "create": {
        ("get", "deployments"): "verify --isvc looks up the engine Deployment",
        ("list", "daemonsets"): "create --from-model reads the model-agent's DaemonSet",
        ("list", "events"): "read only to explain a claim that does not bind in time",
        ("list", "persistentvolumes"): "waiting for a replaced volume to go (--force-conflicts)",
        ("watch", "persistentvolumes"): "waiting for a replaced volume to go (--force-conflicts)",
        ("list", "pods"): "whether a claim to replace is in use (--force-conflicts)",
    },
    "patch-policy": {
        **PATCH_PATHS,
        ("patch", "mutatingadmissionpolicies"): "patching again adds workloads' records",
    },
    "patch-deployment": PATCH_PATHS,
}


# -- patch (diff, patch, unpatch) per strategy --------------------------------------------------


def served(ctx: Context) -> None:
    isvc = ome.create_isvc(ctx.admin, ctx.namespace, "llama", SERVED_MODEL)
    ome.label_nodes(ctx.admin, isvc.label_key, "Ready", KWOK_NODES)
    ome.create_workload(isvc, ome.component_deployment(isvc))
    pv, _ = ome.create_local_claim(ctx.admin, ctx.namespace, "models")
    ctx.pv_names.append(pv["metadata"]["name"])


def patch_round_trip(strategy: str) -> Callable[[Context], list[Step]]:
    def steps(ctx: Context) -> list[Step]:
        return [
            (["diff", "llama", "--claim", "models"], (0, 1)),  # 1: differences found
            (["patch", "llama", "--claim", "models", "--strategy", strategy, "--timeout", "60s"],
             (0,)),
            (["unpatch", "llama", "--timeout", "60s"], (0,)),
        ]  # fmt: skip

    return steps


def isvc_and_workloads(ctx: Context) -> Any:
    deployments = {
        d["metadata"]["name"]: d["spec"]["template"]
        for d in ctx.admin.list(r.DEPLOYMENTS, ctx.namespace)
    }
    isvcs = {
        i["metadata"]["name"]: (i["spec"], i["metadata"].get("annotations"))
        for i in ctx.admin.list(r.INFERENCE_SERVICES, ctx.namespace)
    }
    name = policy.policy_name(ctx.namespace, "llama")
    found = ctx.admin.get_or_none(r.mutating_policies(POLICY_VERSION), name)
    return deployments, isvcs, found is not None


PATCH_SCENARIOS = {
    strategy: [Scenario(strategy, patch_round_trip(strategy), isvc_and_workloads, served)]
    for strategy in ("policy", "deployment")
}


# -- the proof ------------------------------------------------------------------------------------


def permissions(rules: tuple[rbac.Rule, ...]) -> list[tuple[int, str, str]]:
    return [
        (i, resource, verb)
        for i, rule in enumerate(rules)
        for resource in rule.resources
        for verb in rule.verbs
    ]


def names_it(result: Result, verb: str, resource: str) -> bool:
    """The 403 (the server's words quoted in our one-line error, the access check's, or a
    warning about a read the command did without) names the verb and the resource."""
    stem = re.escape(resource.removesuffix("s"))
    pattern = rf'cannot (?:{verb}|read) (?:resource ")?{stem}'
    return re.search(pattern, result.output + (result.stderr or "")) is not None


JOBS: dict[str, tuple[tuple[rbac.Rule, ...], list[Scenario]]] = {
    "create": (rbac.rules_for("create", {}), CREATE_SCENARIOS),
    **{
        f"patch-{strategy}": (rbac.rules_for("patch", strategy_rules(), strategy), scenarios)
        for strategy, scenarios in PATCH_SCENARIOS.items()
    },
}


@pytest.fixture
def context(
    plugin: Plugin, admin: Client, namespace: str, pv_names: list[str]
) -> Iterator[Context]:
    ctx = Context(plugin, admin, namespace, pv_names)
    yield ctx
    for cleanup in ctx.cleanups:
        cleanup()
    name = policy.policy_name(namespace, "llama")  # cluster-scoped: outlives the namespace
    admin.delete(r.mutating_policy_bindings(POLICY_VERSION), name)
    admin.delete(r.mutating_policies(POLICY_VERSION), name)


def ome_for(job: str, request: pytest.FixtureRequest) -> None:
    """`create --register-model` writes only where OME serves pvc:// models (OME from main)."""
    if job == "create":
        request.getfixturevalue("native_ome")


@pytest.mark.parametrize("job", sorted(JOBS))
def test_printed_roles_suffice(context: Context, job: str, request: pytest.FixtureRequest) -> None:
    ome_for(job, request)
    rules, scenarios = JOBS[job]
    context.user = fresh_user()
    with granted(context.admin, context.user, rules):
        for scenario in scenarios:
            scenario.prepare(context)
            run = play(context, scenario)
            assert run.failed is None, (scenario.id, run.failed and run.failed.output)
            for result in run.results:
                assert "forbidden" not in result.output.lower(), (scenario.id, result.output)


CASES = [
    pytest.param(job, index, resource, verb, id=f"{job}-{verb}-{resource}")
    for job, (rules, _) in sorted(JOBS.items())
    for index, resource, verb in permissions(rules)
    if (verb, resource) not in UNEXERCISED.get(job, {})
]


@pytest.mark.parametrize(("job", "index", "resource", "verb"), CASES)
def test_each_permission_is_needed(
    context: Context,
    job: str,
    index: int,
    resource: str,
    verb: str,
    request: pytest.FixtureRequest,
) -> None:
    ome_for(job, request)
    rules, scenarios = JOBS[job]
    fewer = rbac.without(rules, index, verb, resource)
    needed_by = []
    for scenario in scenarios:
        scenario.prepare(context)
        context.user = fresh_user()
        with granted(context.admin, context.user, fewer):
            run = play(context, scenario)
        if run.failed is None:
            if any(names_it(result, verb, resource) for result in run.results):
                needed_by.append(scenario.id)  # a read it can do without: it warned, naming it
            continue
        assert names_it(run.failed, verb, resource), (scenario.id, run.failed.output)
        assert not run.changed, f"{scenario.id}: the refused command changed something"
        needed_by.append(scenario.id)
    assert needed_by, f"no scenario needs {verb} on {resource}: drop it or add a scenario"
