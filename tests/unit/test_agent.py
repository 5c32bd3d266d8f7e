"""The model-agent DaemonSet: which DaemonSets are agents, and where their downloads land."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_omepvc.core import agent
from kubectl_omepvc.errors import InputError
from tests import factories as f
from tests.expect import raises_exactly

# -- where an agent's downloads land ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, agent.AgentRoot("/raid/models", "/raid/models", "/raid/models")),
        ({"root_arg_style": "equals", "models_root": "/mnt/data/models",
          "host_path": "/mnt/data/models"},
         agent.AgentRoot("/mnt/data/models", "/mnt/data/models", "/mnt/data/models")),
        ({"root_arg_style": "none", "models_root": "/mnt/models", "host_path": "/data"},
         agent.AgentRoot("/mnt/models", "/mnt/models", "/data")),
        ({"models_root": "/mnt/models/llm", "mount_path": "/mnt/models", "host_path": "/raid"},
         agent.AgentRoot("/mnt/models/llm", "/mnt/models", "/raid")),
    ],
    ids=["kustomize", "helm-equals", "binary-default", "root-below-mount"],
)  # fmt: skip
def test_agent_root(kwargs: dict[str, str], expected: agent.AgentRoot) -> None:
    assert agent.agent_root(f.agent_daemonset(**kwargs)) == expected


def test_agent_root_unknown_without_a_matching_hostpath_mount() -> None:
    ds = f.agent_daemonset(models_root="/elsewhere", mount_path="/raid/models")
    assert agent.agent_root(ds) is None
    assert agent.agent_root(None) is None


@pytest.mark.parametrize(
    ("path", "node_path", "reaches"),
    [
        ("/raid/models/meta/llama", "/raid/models/meta/llama", True),
        ("/raid/models", "/raid/models", True),
        ("/raid/models-old/llama", None, False),
        ("/mnt/models/llama", None, False),
        ("/raid/models/../etc", None, False),
    ],
    ids=["inside", "the-root", "sibling-prefix", "elsewhere", "escapes"],
)
def test_agent_root_paths(path: str, node_path: str | None, reaches: bool) -> None:
    root = agent.AgentRoot("/raid/models", "/raid/models", "/raid/models")
    assert root.node_path(path) == node_path
    assert root.reaches_node(path) is reaches


def test_agent_root_with_a_different_host_directory() -> None:
    root = agent.AgentRoot("/mnt/models", "/mnt/models", "/raid/models")
    assert root.node_path("/mnt/models/llama") == "/raid/models/llama"
    assert not root.reaches_node("/mnt/models/llama")  # serving pods mount /mnt/models/llama


# -- which DaemonSets are model-agents ----------------------------------------------------------


def _named(name: str, **kwargs: Any) -> dict[str, Any]:
    ds = f.agent_daemonset(**kwargs)
    ds["metadata"]["name"] = name
    return ds


EXPORTER = {"metadata": {"name": "node-exporter"}, "spec": {"template": {"spec": {}}}}
NAMED_ONLY = {"metadata": {"name": "ome-model-agent-x"}, "spec": {"template": {"spec": {}}}}


@pytest.mark.parametrize(
    ("daemonsets", "names"),
    [
        ([_named("agent"), EXPORTER], ["agent"]),
        ([_named("agent", root_arg_style="equals"), NAMED_ONLY], ["agent"]),
        ([NAMED_ONLY, EXPORTER], ["ome-model-agent-x"]),
        ([EXPORTER], []),
    ],
    ids=["by-flag", "flag-wins-over-name", "by-name", "none"],
)
def test_model_agents(daemonsets: list[dict[str, Any]], names: list[str]) -> None:
    assert [d["metadata"]["name"] for d in agent.model_agents(daemonsets)] == names


# -- the agent that holds a model (create --from-model) -----------------------------------------


def agent_ds(name: str, **kwargs: Any) -> dict[str, Any]:
    ds = f.agent_daemonset(**kwargs)
    ds["metadata"]["name"] = name
    return ds


def test_agent_root_is_the_host_directory() -> None:
    choice = agent.pick_agent_root([agent_ds("ome-model-agent")], "/raid/models/meta/llama")
    assert choice.daemonset == "ome-model-agent"
    assert choice.host_root == "/raid/models"
    assert choice.root.models_root == "/raid/models"


def test_agent_root_follows_a_host_path_mounted_elsewhere() -> None:
    ds = agent_ds(
        "agent", models_root="/models", host_path="/mnt/nvme/models", mount_path="/models"
    )
    choice = agent.pick_agent_root([ds], "/models/meta/llama")
    assert choice.host_root == "/mnt/nvme/models"


def test_agent_root_below_the_mount() -> None:
    ds = agent_ds("agent", models_root="/data/models", host_path="/disk", mount_path="/data")
    assert agent.pick_agent_root([ds], "/data/models/x").host_root == "/disk/models"


def test_the_agent_holding_the_model_wins() -> None:
    others = [
        agent_ds("ome-model-agent-a", models_root="/mnt/data/models", host_path="/mnt/data/models"),
        {"metadata": {"name": "node-exporter"}, "spec": {"template": {"spec": {}}}},
        agent_ds("ome-model-agent-b"),
    ]
    assert agent.pick_agent_root(others, "/raid/models/x/y").daemonset == "ome-model-agent-b"


@pytest.mark.parametrize(
    ("daemonsets", "path", "message"),
    [
        ([], "/raid/models/x", "found no model-agent DaemonSet"),
        ([agent_ds("ome-model-agent")], "/raid/models-old/x", "is outside the model-agent's"),
        ([agent_ds("ome-model-agent")], "/opt/x", "daemonset/ome-model-agent"),
        (
            [
                agent_ds("ome-model-agent-1", host_path="/a"),
                agent_ds("ome-model-agent-2", host_path="/b"),
            ],
            "/raid/models/x",
            "disagree on the host directory",
        ),
    ],
    ids=["none", "sibling", "elsewhere", "ambiguous"],
)
def test_agent_root_refusals(daemonsets: list[dict[str, Any]], path: str, message: str) -> None:
    with raises_exactly(InputError, match=message):
        agent.pick_agent_root(daemonsets, path)
