"""Least-privilege roles: the rule table, roles and bindings, and the `rbac` command."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from kubectl_omepvc import cli
from kubectl_omepvc.core import rbac
from kubectl_omepvc.errors import InputError

RBAC = "rbac.authorization.k8s.io"


def run(*args: str) -> Result:
    return CliRunner().invoke(
        cli.root, ["rbac", *args], env={"KUBECONFIG": "/nonexistent"}, prog_name="kubectl ome-pvc"
    )


def test_status_roles_split_cluster_wide_and_ome_reads() -> None:
    cluster_role, role = rbac.roles("r", rbac.STATUS_RULES)
    assert cluster_role["kind"] == "ClusterRole" and "namespace" not in cluster_role["metadata"]
    assert role["kind"] == "Role" and role["metadata"]["namespace"] == "ome"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "watch"]},
        {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["list"]},
    ]
    cluster_resources = {res for rule in cluster_role["rules"] for res in rule["resources"]}
    assert "configmaps" not in cluster_resources and "daemonsets" not in cluster_resources
    assert {"apiGroups": ["ome.io"], "resources": ["clusterbasemodels", "basemodels"],
            "verbs": ["get", "list", "watch"]} in cluster_role["rules"]  # fmt: skip
    assert all(set(rule["verbs"]) <= {"get", "list", "watch"} for rule in cluster_role["rules"])


def test_one_cluster_role_has_every_rule() -> None:
    role = rbac.cluster_role("all", rbac.STATUS_RULES)
    assert len(role["rules"]) == len(rbac.STATUS_RULES)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (rbac.Subject(rbac.SubjectKind.USER, "jane"),
         {"apiGroup": RBAC, "kind": "User", "name": "jane"}),
        (rbac.Subject(rbac.SubjectKind.GROUP, "ml"),
         {"apiGroup": RBAC, "kind": "Group", "name": "ml"}),
        (rbac.service_account("monitoring:watcher"),
         {"kind": "ServiceAccount", "name": "watcher", "namespace": "monitoring"}),
    ],
    ids=["user", "group", "service-account"],
)  # fmt: skip
def test_bindings_follow_their_roles(subject: rbac.Subject, expected: dict[str, Any]) -> None:
    objects = rbac.rbac_objects("viewer", rbac.STATUS_RULES, subject)
    assert [(o["kind"], o["metadata"].get("namespace")) for o in objects] == [
        ("ClusterRole", None), ("Role", "ome"),
        ("ClusterRoleBinding", None), ("RoleBinding", "ome"),
    ]  # fmt: skip
    for binding, role in zip(objects[2:], objects[:2], strict=True):
        assert binding["roleRef"] == {"apiGroup": RBAC, "kind": role["kind"], "name": "viewer"}
        assert binding["subjects"] == [expected]


@pytest.mark.parametrize("text", ["watcher", "ns:", ":name", "a:b:c", "NS:x"], ids=str)
def test_service_account_must_be_namespace_and_name(text: str) -> None:
    with pytest.raises(InputError):
        rbac.service_account(text)


def test_command_prints_a_yaml_stream_to_apply() -> None:
    result = run("--bind-user", "jane")
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in docs] == ["ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding"]
    assert {d["metadata"]["name"] for d in docs} == {"kubectl-ome-pvc-status"}


def test_command_json_without_a_subject_lists_the_roles() -> None:
    result = run("--name", "readers", "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["kind"] == "List"
    assert [(i["kind"], i["metadata"]["name"]) for i in doc["items"]] == [
        ("ClusterRole", "readers"), ("Role", "readers"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--bind-user", "a", "--bind-group", "b"], 2,
         "--bind-user and --bind-group were both given"),
        (["--bind-service-account", "nocolon"], 1, "is not NAMESPACE:NAME"),
        (["--name", "Bad_Name"], 1, "role name 'Bad_Name'"),
        (["--for", "delete"], 2, "Invalid value for '--for'"),
    ],
    ids=["two-subjects", "service-account-form", "bad-name", "unknown-command"],
)  # fmt: skip
def test_command_refusals(args: list[str], code: int, message: str) -> None:
    result = run(*args)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert result.stdout == ""


# -- rules per command and strategy ----------------------------------------------------------


def verbs_of(rules: tuple[rbac.Rule, ...]) -> dict[tuple[str, str, str | None], set[str]]:
    found: dict[tuple[str, str, str | None], set[str]] = {}
    for rule in rules:
        for resource in rule.resources:
            found.setdefault((rule.group, resource, rule.namespace), set()).update(rule.verbs)
    return found


def test_merge_unions_verbs_and_regroups_resources() -> None:
    merged = rbac.merge(
        [rbac.Rule("", ("pods", "events"), ("list",))],
        [rbac.Rule("", ("pods",), ("get", "list")), rbac.Rule("", ("events",), ("get",))],
        [rbac.Rule("apps", ("daemonsets",), ("list",), "ome")],
    )
    assert merged == (
        rbac.Rule("", ("pods", "events"), ("get", "list")),
        rbac.Rule("apps", ("daemonsets",), ("list",), "ome"),
    )


def test_create_covers_verify() -> None:
    rules = rbac.rules_for("create", {})
    assert verbs_of(rules)[("", "pods/log", None)] == {"get"}
    assert {"create", "patch", "delete"} <= verbs_of(rules)[("", "persistentvolumes", None)]


@pytest.mark.parametrize("strategy", ["native", "policy", "deployment"])
def test_patch_rules_per_strategy(strategy: str) -> None:
    from kubectl_omepvc.strategies import registry

    strategies = {s.name: s.rules for s in registry().values()}
    one = verbs_of(rbac.rules_for("patch", strategies, strategy))
    every = verbs_of(rbac.rules_for("patch", strategies))
    assert all(verbs <= every[key] for key, verbs in one.items())
    writes = {k for k, v in one.items() if v & {"create", "patch", "delete"}}
    expected = {
        "native": {("ome.io", "inferenceservices", None), ("ome.io", "basemodels", None),
                   ("ome.io", "clusterbasemodels", None)},
        "policy": {("admissionregistration.k8s.io", "mutatingadmissionpolicies", None),
                   ("admissionregistration.k8s.io", "mutatingadmissionpolicybindings", None),
                   ("apps", "deployments", None),
                   ("leaderworkerset.x-k8s.io", "leaderworkersets", None)},
        "deployment": {("apps", "deployments", None),
                       ("leaderworkerset.x-k8s.io", "leaderworkersets", None)},
    }[strategy]  # fmt: skip
    assert writes == expected


def test_all_is_every_command() -> None:
    from kubectl_omepvc.strategies import registry

    strategies = {s.name: s.rules for s in registry().values()}
    every = verbs_of(rbac.rules_for("all", strategies))
    for command in ("status", "create", "patch"):
        for key, verbs in verbs_of(rbac.rules_for(command, strategies)).items():
            assert verbs <= every[key], (command, key)


def test_without_removes_exactly_one_permission() -> None:
    rules = (rbac.Rule("", ("pods", "events"), ("get", "list")),)
    assert verbs_of(rbac.without(rules, 0, "list", "pods")) == {
        ("", "events", None): {"get", "list"},
        ("", "pods", None): {"get"},
    }


def test_rbac_for_patch_with_a_strategy_is_named_after_both() -> None:
    result = run("--for", "patch", "--strategy", "policy")
    assert result.exit_code == 0, result.output
    names = {doc["metadata"]["name"] for doc in yaml.safe_load_all(result.output)}
    assert names == {"kubectl-ome-pvc-patch-policy"}


def test_rbac_strategy_needs_patch() -> None:
    result = run("--for", "create", "--strategy", "policy")
    assert result.exit_code == 2
    assert "--strategy goes with --for patch" in result.output
