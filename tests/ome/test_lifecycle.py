"""What happens around a patch when the isvc goes and comes back, with OME's real manager.

The policy is tied to the isvc it was made for by uid: an isvc deleted and created again under
the same name is served by OME from its hostPath, not switched to a claim nobody asked for, and
`unpatch` removes a policy by the isvc's name whether or not that isvc still exists.
"""

from __future__ import annotations

from kubectl_omepvc.api.client import Client
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
