"""The MutatingAdmissionPolicy and Binding: names, scope, version fields, CEL hygiene."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from kubectl_omepvc.core import policy
from kubectl_omepvc.core.jsonpatch import ANNOTATION
from kubectl_omepvc.errors import InputError
from tests.expect import raises_exactly
from tests.unit import ome_objects as ome

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def lex(expr: str) -> tuple[str, list[str]]:
    """Split CEL into (the code with each string literal replaced by `S`, decoded literals).

    Independent of `cel_string`: it reads literals the way a CEL parser does, so a literal the
    helper failed to close or escape shows up as stray code or a wrong decoded value.
    """
    code: list[str] = []
    literals: list[str] = []
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch not in "\"'":
            code.append(ch)
            i += 1
            continue
        quote, i, value = ch, i + 1, []
        while True:
            if i >= len(expr):
                raise AssertionError(f"unterminated CEL string in {expr!r}")
            c = expr[i]
            if c == quote:
                i += 1
                break
            if c == "\n":
                raise AssertionError("raw newline inside a CEL string")
            if c == "\\":
                nxt = expr[i + 1]
                if nxt in _ESCAPES:
                    value.append(_ESCAPES[nxt])
                    i += 2
                elif nxt in "uU":
                    width = 4 if nxt == "u" else 8
                    value.append(chr(int(expr[i + 2 : i + 2 + width], 16)))
                    i += 2 + width
                else:
                    raise AssertionError(f"unknown escape \\{nxt}")
                continue
            value.append(c)
            i += 1
        literals.append("".join(value))
        code.append("S")
    return "".join(code), literals


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("llama", '"llama"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ('\\"', '"\\\\\\""'),
        ("line\nbreak\t", '"line\\nbreak\\t"'),
        ("it's", '"it\'s"'),
        ("é", '"\\u00e9"'),
        ("\U0001f999", '"\\U0001f999"'),
        ("\x00", '"\\u0000"'),
        ("", '""'),
    ],
    ids=[
        "plain",
        "quote",
        "backslash",
        "backslash-quote",
        "controls",
        "single-quote",
        "latin",
        "astral",
        "nul",
        "empty",
    ],
)
def test_cel_string(text: str, literal: str) -> None:
    assert policy.cel_string(text) == literal
    assert lex(literal) == ("S", [text])


def test_cel_string_refuses_lone_surrogates() -> None:
    with raises_exactly(ValueError, match="surrogate"):
        policy.cel_string("\ud800")


# --- names ------------------------------------------------------------------------------------


def test_policy_name() -> None:
    assert policy.policy_name("team-a", "llama") == "ome-pvc-team-a.llama"


def test_policy_names_do_not_collide_on_dashes() -> None:
    assert policy.policy_name("team-a", "llama") != policy.policy_name("team", "a-llama")


@pytest.mark.parametrize(
    ("namespace", "isvc"),
    [("Team", "llama"), ("team", "llama.v2"), ("team", ""), ("team", "x" * 64), ("-a", "b")],
    ids=["upper", "dot", "empty", "too-long", "leading-dash"],
)
def test_policy_name_refuses_non_labels(namespace: str, isvc: str) -> None:
    with raises_exactly(InputError, match="is not a DNS label"):
        policy.policy_name(namespace, isvc)


def test_policy_name_longest_inputs_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    longest = policy.policy_name("n" * 63, "i" * 63)
    assert len(longest) == 8 + 63 + 1 + 63
    monkeypatch.setattr(policy, "MAX_NAME", 60)
    a = policy.policy_name("n" * 63, "i" * 63)
    b = policy.policy_name("n" * 63, "i" * 62 + "j")
    assert len(a) <= 60 and len(b) <= 60 and a != b
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", a)


# --- the objects ------------------------------------------------------------------------------


def render(version: str = "v1", **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    args: dict[str, Any] = {
        "namespace": ome.NAMESPACE,
        "isvc": ome.ISVC,
        "model_name": ome.MODEL,
        "claim": ome.CLAIM,
        "sub_path": ome.SUB_PATH,
        "label_key": ome.LABEL_KEY,
    } | kw
    return policy.policy_objects(version, **args)


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha1"])
def test_objects_per_version(version: str) -> None:
    pol, binding = render(version)
    name = "ome-pvc-team-a.llama"
    assert pol["apiVersion"] == binding["apiVersion"] == f"admissionregistration.k8s.io/{version}"
    assert (pol["kind"], binding["kind"]) == (
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
    )
    assert pol["metadata"]["name"] == binding["metadata"]["name"] == name
    assert binding["spec"]["policyName"] == name
    # The same fields in every version (see the module docstring): nothing version-specific.
    assert sorted(pol["spec"]) == [
        "failurePolicy",
        "matchConditions",
        "matchConstraints",
        "mutations",
        "reinvocationPolicy",
    ]
    assert sorted(binding["spec"]) == ["matchResources", "policyName"]


def test_scope() -> None:
    pol, binding = render()
    selectors = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-a"}},
        "objectSelector": {"matchLabels": {"ome.io/inferenceservice": "llama"}},
    }
    assert binding["spec"]["matchResources"] == selectors
    constraints = pol["spec"]["matchConstraints"]
    assert {k: constraints[k] for k in selectors} == selectors
    assert constraints["resourceRules"] == [
        {
            "apiGroups": ["apps"],
            "apiVersions": ["v1"],
            "resources": ["deployments"],
            "operations": ["CREATE", "UPDATE"],
        },
        {
            "apiGroups": ["leaderworkerset.x-k8s.io"],
            "apiVersions": ["v1"],
            "resources": ["leaderworkersets"],
            "operations": ["CREATE", "UPDATE"],
        },
    ]
    assert pol["spec"]["failurePolicy"] == "Fail"
    assert pol["spec"]["reinvocationPolicy"] == "IfNeeded"
    assert render(failure_policy="Ignore")[0]["spec"]["failurePolicy"] == "Ignore"
    labels = {
        "app.kubernetes.io/managed-by": "kubectl-ome-pvc",
        "ome-pvc.io/namespace": "team-a",
        "ome-pvc.io/inferenceservice": "llama",
    }
    assert pol["metadata"]["labels"] == binding["metadata"]["labels"] == labels


def test_match_conditions_require_label_and_controller_owner() -> None:
    conditions = render()[0]["spec"]["matchConditions"]
    assert [c["name"] for c in conditions] == [
        "labelled-for-inferenceservice",
        "controlled-by-inferenceservice",
    ]
    label_code, label_lits = lex(conditions[0]["expression"])
    assert label_lits == ["ome.io/inferenceservice", "ome.io/inferenceservice", "llama"]
    assert "object.metadata.labels[S] == S" in label_code
    owner_code, owner_lits = lex(conditions[1]["expression"])
    assert owner_lits == ["InferenceService", "ome.io/", "llama"]
    for part in (
        "r.kind == S",
        "r.apiVersion.startsWith(S)",
        "r.name == S",
        "r.controller == true",
    ):
        assert part in owner_code


def test_mutations_cover_deployment_and_both_lws_templates() -> None:
    mutations = render()[0]["spec"]["mutations"]
    assert [m["patchType"] for m in mutations] == ["JSONPatch"] * 3
    exprs = [m["jsonPatch"]["expression"] for m in mutations]
    for expr, pointer, group in zip(
        exprs,
        [
            "/spec/template/spec/",
            "/spec/leaderWorkerTemplate/leaderTemplate/spec/",
            "/spec/leaderWorkerTemplate/workerTemplate/spec/",
        ],
        ["apps", "leaderworkerset.x-k8s.io", "leaderworkerset.x-k8s.io"],
        strict=True,
    ):
        code, literals = lex(expr)
        assert literals[0] == group
        assert code.startswith("request.resource.group == S &&")
        assert code.rstrip().endswith(": []"), "no volume or no hostPath → no operations"
        assert f"{pointer}volumes/" in literals
        assert f"{pointer}containers/" in literals and f"{pointer}initContainers/" in literals
        assert f"{pointer}nodeSelector/" in literals
        assert "jsonpatch.escapeKey(S)" in code
        assert "has(v.hostPath)" in code
        # Only subPath members are written, as strings: no mount list as a value (1.35 panics
        # on a list of structs, 1.37 cannot marshal a passed-through mount; see policy).
        assert "add" in literals and "/subPath" in literals
        assert "c.volumeMounts.map(m, Object." not in code
        assert ".indexOf(S)" in code and ".lastIndexOf(S)" in code
        assert ome.LABEL_KEY in literals and ome.SUB_PATH in literals and ome.CLAIM in literals
        # The pod template's mark, which outlives OME's rewrites of the workload's metadata.
        mark = pointer.removesuffix("spec/") + "metadata/annotations/ome-pvc.io~1strategy"
        assert mark in literals and "policy" in literals


def test_root_sub_path_leaves_mounts_alone() -> None:
    expr = render(sub_path="")[0]["spec"]["mutations"][0]["jsonPatch"]["expression"]
    assert "volumeMounts" not in expr


HOSTILE = {
    "model_name": 'm" || true || "',
    "claim": 'c\\" + "x',
    "sub_path": "s\n)]}",
    "label_key": "k'/~\"",
}


def test_user_input_only_inside_string_literals() -> None:
    pol, _ = render(**HOSTILE)
    exprs = [m["jsonPatch"]["expression"] for m in pol["spec"]["mutations"]]
    exprs += [c["expression"] for c in pol["spec"]["matchConditions"]]
    clean_code = lex(render()[0]["spec"]["mutations"][0]["jsonPatch"]["expression"])[0]
    for expr in exprs:
        code, literals = lex(expr)
        for value in HOSTILE.values():
            assert value not in code
        assert code.count("(") == code.count(")") and code.count("[") == code.count("]")
        assert code.count("{") == code.count("}")
    code, literals = lex(exprs[0])
    assert code == clean_code, "hostile values change literals only, never the code"
    for value in HOSTILE.values():
        assert value in literals


def test_record_on_the_policy() -> None:
    workloads = {"deployment/llama-engine": {"format": 1, "templates": {}}}
    pol, binding = render(workloads=workloads)
    record = json.loads(pol["metadata"]["annotations"][ANNOTATION])
    assert record["strategy"] == "policy"
    assert (record["namespace"], record["inferenceService"], record["modelName"]) == (
        "team-a",
        "llama",
        ome.MODEL,
    )
    assert (record["claim"], record["subPath"], record["labelKey"]) == (
        ome.CLAIM,
        ome.SUB_PATH,
        ome.LABEL_KEY,
    )
    assert record["workloads"] == workloads
    assert policy.read_policy_record(pol) == record
    assert policy.read_policy_record(binding) is None


def test_unknown_version() -> None:
    with raises_exactly(InputError, match="version 'v2' is unknown"):
        render("v2")


@pytest.mark.parametrize(("mounts", "crowded"), [(1, []), (2, []), (3, ["ome-container"])])
def test_containers_mounting_the_model_too_often(mounts: int, crowded: list[str]) -> None:
    deployment = ome.deployment()
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["volumeMounts"] = [
        {"name": ome.MODEL, "mountPath": f"/m{i}", "readOnly": True} for i in range(mounts)
    ]
    assert policy.containers_mounting_too_often(deployment, ome.MODEL) == crowded


def test_match_conditions_name_the_isvc_uid_when_known() -> None:
    conditions = policy.match_conditions("llama", "1234-abcd")
    owner = next(c for c in conditions if c["name"] == "controlled-by-inferenceservice")
    assert 'r.uid == "1234-abcd"' in owner["expression"]
    without = policy.match_conditions("llama")
    assert "r.uid" not in json.dumps(without)
