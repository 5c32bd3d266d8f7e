"""The user's journey from a Ready model to its isvc on a claim, with OME v0.1.5's real manager.

`create --from-model` reads the model's real `status.nodesReady`; `patch` picks its strategy by
itself (policy: released OME has no native pvc:// route); then the isvc changes the way users
change it and OME's manager rewrites its Deployment each time. What stays is what OME and the
policy between them converge on, not what a re-enactment of OME does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from kubectl_omepvc.api.client import MERGE_PATCH, Client
from kubectl_omepvc.core import jsonpatch as jp
from kubectl_omepvc.core import policy
from kubectl_omepvc.core import resources as r
from tests.e2e.conftest import POLICY_VERSION, Plugin
from tests.e2e.test_status import wait_for
from tests.ome import real
from tests.ome.conftest import CLAIM, ReadyModel, claim

Obj = dict[str, Any]

MAP = r.mutating_policies(POLICY_VERSION)
# How long a Deployment must stay untouched to count as converged: OME answers an edit within
# 20-80 ms, so a write loop would show many times over.
QUIET_SECONDS = 3.0


def model_volume(obj: Obj, model: str) -> Obj:
    spec = jp.resolve(obj, jp.DEPLOYMENT_TEMPLATE)["spec"]
    found: Obj = next(v for v in spec["volumes"] if v["name"] == model)
    return found


def on_claim(obj: Obj, model: str) -> bool:
    claim = (model_volume(obj, model).get("persistentVolumeClaim") or {}).get("claimName")
    return bool(claim == CLAIM)


def settled(admin: Client, namespace: str, name: str) -> Obj:
    """The Deployment once it has stopped changing for QUIET_SECONDS (no write loop)."""

    def quiet() -> Obj | None:
        before = admin.get(r.DEPLOYMENTS, name, namespace)
        time.sleep(QUIET_SECONDS)
        after = admin.get(r.DEPLOYMENTS, name, namespace)
        same = after["metadata"]["generation"] == before["metadata"]["generation"]
        return after if same else None

    found: Obj = wait_for(f"{name} to settle", quiet, 60)
    return found


def change_isvc(admin: Client, namespace: str, name: str, patch: Obj) -> None:
    admin.patch(r.INFERENCE_SERVICES, name, patch, namespace=namespace, content_type=MERGE_PATCH)


def rewritten(
    admin: Client,
    namespace: str,
    isvc: str,
    change: Callable[[], None],
    check: Callable[[Obj], bool],
) -> Obj:
    """Make `change` to the isvc and wait until OME's Deployment shows it (`check`)."""
    change()
    found: Obj = wait_for(
        f"OME to rewrite {isvc}-engine",
        lambda: (d := admin.get(r.DEPLOYMENTS, f"{isvc}-engine", namespace)) and check(d) and d,
        60,
    )
    return found


def test_policy_holds_through_omes_rewrites(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    served: str,
    ready_model: ReadyModel,
    runtime: str,
    pv_names: list[str],
) -> None:
    model = ready_model.name
    engine = f"{served}-engine"
    written = real.engine(admin, namespace, served)
    assert "hostPath" in model_volume(written, model)

    # A claim on the nodes the agents made the model Ready on.
    pv = claim(plugin, admin, namespace, ready_model, pv_names)
    terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert sorted(terms[0]["matchExpressions"][0]["values"]) == sorted(ready_model.nodes)

    diff = plugin("diff", served, "-n", namespace, "--claim", CLAIM)
    assert diff.exit_code == 1, diff.output
    assert "persistentVolumeClaim" in diff.stdout

    patched = plugin("patch", served, "-n", namespace, "--claim", CLAIM, "--timeout", "180s")
    assert patched.exit_code == 0, patched.output
    assert f"mutatingadmissionpolicy.admissionregistration.k8s.io/ome-pvc-{namespace}." in (
        patched.stdout
    )
    live = settled(admin, namespace, engine)
    assert on_claim(live, model)

    # The isvc changes as users change it; OME rewrites its Deployment each time.
    steps: list[tuple[str, Callable[[], None], Callable[[Obj], bool]]] = [
        (
            "replicas",
            lambda: change_isvc(
                admin, namespace, served, {"spec": {"engine": {"minReplicas": 2, "maxReplicas": 2}}}
            ),
            lambda d: d["spec"].get("replicas") == 2,
        ),
        (
            "annotation",
            lambda: change_isvc(
                admin, namespace, served, {"metadata": {"annotations": {"team": "nlp"}}}
            ),
            lambda d: (
                (d["metadata"].get("annotations") or {}).get("team") == "nlp"
                or jp.ANNOTATION not in (d["metadata"].get("annotations") or {})
            ),
        ),
    ]
    other_runtime = f"{runtime}-next"
    real.create_runtime(admin, other_runtime, image="docker.io/lmsysorg/sglang:v0.5.6")
    steps.append(
        (
            "runtime",
            lambda: change_isvc(
                admin, namespace, served, {"spec": {"runtime": {"name": other_runtime}}}
            ),
            lambda d: d["spec"]["template"]["spec"]["containers"][0]["image"].endswith("v0.5.6"),
        )
    )
    for what, change, check in steps:
        rewritten(admin, namespace, served, change, check)
        live = settled(admin, namespace, engine)
        assert on_claim(live, model), what
        shown = plugin("status", model, "-o", "json")
        assert shown.exit_code == 0, shown.output
        doc = json.loads(shown.stdout)
        item = doc["items"][0] if "items" in doc else doc
        uses = [w for s in item["inferenceServices"] for w in s["workloads"]]
        used = next(w for w in uses if w["name"] == engine)
        assert (used["mode"], used["strategy"]) == ("pvc-patched", "policy"), (what, used)
        if what == "annotation":  # OME's Update replaced the Deployment's annotations
            assert jp.ANNOTATION not in (live["metadata"].get("annotations") or {})
    same = plugin("diff", served, "-n", namespace, "--claim", CLAIM)
    assert same.exit_code == 0, same.output

    # unpatch: OME's own current template comes back, and OME has nothing more to write.
    undone = plugin("unpatch", served, "-n", namespace, "--timeout", "180s")
    assert undone.exit_code == 0, undone.output
    back = settled(admin, namespace, engine)
    assert "hostPath" in model_volume(back, model)
    assert back["spec"]["replicas"] == 2
    assert admin.get_or_none(MAP, policy.policy_name(namespace, served)) is None
    template = back["spec"]["template"]
    assert jp.MARKER not in (template["metadata"].get("annotations") or {})
    assert template["spec"]["containers"][0]["image"].endswith("v0.5.6")  # OME's current one
    real.delete_isvc(admin, namespace, served)
    admin.delete(real.RUNTIMES, other_runtime)


def test_one_shot_deployment_patch_is_reverted_and_reported(
    plugin: Plugin, admin: Client, namespace: str, served: str, claimed: ReadyModel
) -> None:
    result = plugin(
        "patch", served, "-n", namespace, "--claim", CLAIM,
        "--strategy", "deployment", "--settle", "5s", "--no-wait",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert f"deployment.apps/{served}-engine patched" in result.stdout
    assert "is back on its hostPath" in result.stderr
    assert "hostPath" in model_volume(settled(admin, namespace, f"{served}-engine"), claimed.name)


def test_native_is_refused_on_released_ome(
    plugin: Plugin, admin: Client, namespace: str, served: str, claimed: ReadyModel
) -> None:
    before = admin.get(r.DEPLOYMENTS, f"{served}-engine", namespace)
    result = plugin("patch", served, "-n", namespace, "--claim", CLAIM, "--strategy", "native")
    assert result.exit_code == 1, result.output
    assert "strategy native is not possible here" in result.stderr
    assert "this OME does not serve pvc:// models" in result.stderr
    after = admin.get(r.DEPLOYMENTS, f"{served}-engine", namespace)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
