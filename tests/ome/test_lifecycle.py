"""What happens around a patch when the isvc goes and comes back, with OME's real manager.

The policy is tied to the isvc it was made for by uid: an isvc deleted and created again under
the same name is served by OME from its hostPath, not switched to a claim nobody asked for, and
`unpatch` removes a policy by the isvc's name whether or not that isvc still exists.
"""

from __future__ import annotations

from pathlib import Path

from kubectl_omepvc.api.client import MERGE_PATCH, Client
from kubectl_omepvc.core import policy
from kubectl_omepvc.core import resources as r
from tests.e2e.conftest import POLICY_VERSION, Plugin
from tests.e2e.test_status import wait_for
from tests.ome import real
from tests.ome.conftest import CLAIM, ReadyModel
from tests.ome.test_patch import MAP, model_volume, on_claim, settled

BINDINGS = r.mutating_policy_bindings(POLICY_VERSION)


def patch(plugin: Plugin, namespace: str, isvc: str) -> None:
    done = plugin("patch", isvc, "-n", namespace, "--claim", CLAIM, "--timeout", "180s")
    assert done.exit_code == 0, done.output


def delete_isvc_and_workloads(admin: Client, namespace: str, isvc: str) -> None:
    real.delete_isvc(admin, namespace, isvc)
    wait_for(
        f"{isvc}-engine collected",
        lambda: admin.get_or_none(r.DEPLOYMENTS, f"{isvc}-engine", namespace) is None,
        60,
    )


def test_recreated_isvc_is_not_switched_by_the_old_policy(
    plugin: Plugin,
    admin: Client,
    namespace: str,
    served: str,
    claimed: ReadyModel,
    runtime: str,
) -> None:
    patch(plugin, namespace, served)
    assert on_claim(settled(admin, namespace, f"{served}-engine"), claimed.name)
    name = policy.policy_name(namespace, served)

    delete_isvc_and_workloads(admin, namespace, served)
    real.create_isvc(admin, namespace, served, claimed.name, runtime)
    real.engine(admin, namespace, served)
    fresh = settled(admin, namespace, f"{served}-engine")
    assert "hostPath" in model_volume(fresh, claimed.name), "the old policy must not apply"
    assert admin.get_or_none(MAP, name) is not None

    again = plugin("patch", served, "-n", namespace, "--claim", CLAIM)
    assert again.exit_code == 1, again.output
    assert "was made for an earlier inferenceservice" in again.stderr

    undone = plugin("unpatch", served, "-n", namespace, "--no-wait")
    assert undone.exit_code == 0, undone.output
    assert "made for an earlier inferenceservice" in undone.stderr
    assert admin.get_or_none(MAP, name) is None and admin.get_or_none(BINDINGS, name) is None
    after = settled(admin, namespace, f"{served}-engine")
    assert after["metadata"]["generation"] == fresh["metadata"]["generation"]

    patch(plugin, namespace, served)  # the new isvc can be switched now
    assert on_claim(settled(admin, namespace, f"{served}-engine"), claimed.name)


def test_unpatch_by_name_after_the_isvc_is_gone(
    plugin: Plugin, admin: Client, namespace: str, served: str, claimed: ReadyModel
) -> None:
    patch(plugin, namespace, served)
    name = policy.policy_name(namespace, served)
    delete_isvc_and_workloads(admin, namespace, served)
    assert admin.get_or_none(MAP, name) is not None

    undone = plugin("unpatch", served, "-n", namespace)
    assert undone.exit_code == 0, undone.output
    assert f"mutatingadmissionpolicy.admissionregistration.k8s.io/{name} deleted" in undone.stdout
    assert admin.get_or_none(MAP, name) is None and admin.get_or_none(BINDINGS, name) is None


def test_switch_to_another_model_then_unpatch(
    plugin: Plugin,
    admin: Client,
    models: list[tuple[str, str | None]],  # first, so the isvc is deleted before its model:
    namespace: str,  # OME's own validator refuses to let go of an isvc whose model is gone
    served: str,
    claimed: ReadyModel,
    tmp_path: Path,
) -> None:
    """The claim holds the first model's files: the policy leaves the second model's hostPath
    alone, OME serves it from there without a write loop, and unpatch still undoes the policy."""
    patch(plugin, namespace, served)
    other = f"other-{real.run_id()}"
    real.local_model(admin, tmp_path, other, nodes=claimed.nodes)
    models.append((other, None))
    real.wait_for_state(admin, other, "Ready", nodesReady=sorted(claimed.nodes))

    admin.patch(
        r.INFERENCE_SERVICES, served, {"spec": {"model": {"name": other}}},
        namespace=namespace, content_type=MERGE_PATCH,
    )  # fmt: skip
    wait_for(
        "OME to render the other model",
        lambda: any(
            v["name"] == other
            for v in admin.get(r.DEPLOYMENTS, f"{served}-engine", namespace)["spec"]["template"][
                "spec"
            ]["volumes"]
        ),
        60,
    )
    live = settled(admin, namespace, f"{served}-engine")
    assert "hostPath" in model_volume(live, other)

    undone = plugin("unpatch", served, "-n", namespace, "--no-wait")
    assert undone.exit_code == 0, undone.output
    assert "no longer mounts model" in undone.stderr
    name = policy.policy_name(namespace, served)
    assert admin.get_or_none(MAP, name) is None
    after = settled(admin, namespace, f"{served}-engine")
    assert "hostPath" in model_volume(after, other)
