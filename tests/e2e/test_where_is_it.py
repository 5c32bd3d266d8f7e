"""A name not found where the user looked: the namespace that holds it, or the closest names.

For InferenceServices, claims and BaseModels, as for ClusterBaseModels.
"""

from __future__ import annotations

import secrets

from kubectl_omepvc.api.client import Client
from kubectl_omepvc.commands import completion as completion_command
from kubectl_omepvc.completion import Resource
from kubectl_omepvc.core import resources as r
from kubectl_omepvc.options import ConnectionOptions
from tests.e2e import ome_controller as ome
from tests.e2e.conftest import Cluster, Plugin


def test_an_isvc_in_another_namespace_or_misspelt(
    plugin: Plugin, admin: Client, namespace: str
) -> None:
    name = f"llama-{secrets.token_hex(3)}"  # names of other tests' isvcs stay apart
    ome.create_isvc(admin, namespace, name, "qwen-small")
    other = f"t-{secrets.token_hex(4)}"
    admin.create(
        r.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}}
    )
    try:
        wrong_ns = plugin("patch", name, "-n", other, "--claim", "c")
        assert wrong_ns.exit_code == 1, wrong_ns.output
        assert f"{name} is in {namespace}: pass -n {namespace}" in wrong_ns.stderr
    finally:
        admin.delete(r.NAMESPACES, other)
    typo = plugin("diff", name[1:], "-n", namespace, "--claim", "c")
    assert f"did you mean {name}?" in typo.stderr


def test_a_misspelt_claim_and_a_base_model_without_n(
    plugin: Plugin, admin: Client, namespace: str, pv_names: list[str]
) -> None:
    pv, _ = ome.create_local_claim(admin, namespace, "llama-weights")
    pv_names.append(pv["metadata"]["name"])
    typo = plugin("verify", "llama-weigths", "-n", namespace)
    assert typo.exit_code == 1, typo.output
    assert "did you mean llama-weights?" in typo.stderr

    model = f"qwen-{secrets.token_hex(3)}"
    ome.create_model(admin, namespace, model)
    missing_n = plugin("status", model)
    assert missing_n.exit_code == 1, missing_n.output
    assert f"{model} is in {namespace}: pass -n {namespace}" in missing_n.stderr


def test_completion_offers_the_namespaces_base_models(
    cluster: Cluster, admin: Client, namespace: str
) -> None:
    ome.create_model(admin, namespace, "qwen-small")
    opts = ConnectionOptions(
        kubeconfig=str(cluster.kubeconfig), context="local-admin", namespace=namespace
    )
    names = completion_command.list_names(Resource.SOURCE_MODEL, opts, cluster.env)
    assert "basemodel/qwen-small" in names
    assert "qwen-small" in completion_command.list_names(Resource.MODEL, opts, cluster.env)
