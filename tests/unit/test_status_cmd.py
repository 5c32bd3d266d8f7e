"""`kubectl ome-pvc status` at the command line, without a cluster: flags, exit codes, and the
text, JSON and watch output rendered from reports the core builds out of OME-shaped objects."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kubectl_omepvc import cli, printers
from kubectl_omepvc.api import gather
from kubectl_omepvc.commands import common
from kubectl_omepvc.commands import status as cmd
from kubectl_omepvc.core import naming, status
from kubectl_omepvc.core.metadata_jobs import MetadataSources
from tests import factories as f
from tests.unit.test_metadata_jobs import job, ome_labels, pod

Obj = dict[str, Any]
CBM = "llama-3-2-1b-instruct"
KEY = naming.cluster_model_configmap_key(CBM)
LABEL = naming.cluster_model_label_key(CBM)
GIB = 2**30
COLOUR = printers.Palette(True)


def report(models: list[Obj], **sources: Any) -> status.StatusReport:
    return status.build_statuses(models, now=f.NOW, **sources)


def downloading() -> dict[str, Any]:
    """node-a Updating at 25% one minute ago, node-b Failed."""
    entry = f.agent_entry(CBM, "Updating", f.progress(minutes_ago=1))
    return {
        "nodes": [f.node("node-a", {LABEL: "Updating"}), f.node("node-b", {LABEL: "Failed"})],
        "configmaps": [
            f.agent_configmap("node-a", {KEY: entry}),
            f.agent_configmap("node-b", {KEY: f.agent_entry(CBM, "Failed")}),
        ],
    }


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli.root, ["status", *args], prog_name="kubectl ome-pvc")


# -- flags -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["llama", "-A"], "cannot be combined with -l/--selector or -A"),
        (["llama", "-l", "team=a"], "cannot be combined with -l/--selector or -A"),
        (["--watch", "--fail-if-not-ready"], "drop --fail-if-not-ready"),
        (["--kind", "both"], "'both' is not one of 'cluster', 'namespaced'"),
        (["-o", "table"], "'table' is not one of 'wide', 'json', 'yaml', 'name'"),
        (["--watch-timeout", "0"], "0 is not in the range x>=1"),
    ],
    ids=["name-and-all", "name-and-selector", "watch-and-fail", "bad-kind", "bad-output",
         "bad-watch-timeout"],
)  # fmt: skip
def test_bad_flags_are_usage_errors(args: list[str], words: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert words in result.stderr


def test_help_lists_the_flags_but_not_the_test_hook() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for flag in ("--selector", "--all-namespaces", "--kind", "--output", "--no-headers",
                 "--watch", "--fail-if-not-ready"):  # fmt: skip
        assert flag in result.stdout
    assert "--watch-timeout" not in result.stdout


# -- the command with a fake cluster -----------------------------------------------------------


class FakeClient:
    namespace = "team-a"
    context = "local"
    verbose = 0


class FakeStream:
    """`gather.OverviewStream` over Sources read already: the early part, then the models,
    then the rest."""

    def __init__(self, sources: gather.Sources) -> None:
        self.all = sources
        self.sources = gather.Sources(
            [],
            configmaps=sources.configmaps,
            nodes=sources.nodes,
            inference_services=sources.inference_services,
            agent_daemonset=sources.agent_daemonset,
        )
        self.base_models = status.base_model_keys(sources.models)
        self.closed = False

    def models(self) -> Iterator[Obj]:
        yield from self.all.models

    def finish(self) -> gather.Sources:
        return dataclasses.replace(self.all, models=[])

    def __enter__(self) -> FakeStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replaces the reads: `calls` records them, `sources` is what they return."""
    state: dict[str, Any] = {"calls": [], "sources": gather.Sources([])}

    def overview(client: Any, **kw: Any) -> gather.Sources:
        state["calls"].append(("overview", kw))
        return state["sources"]  # type: ignore[no-any-return]

    def stream(client: Any, **kw: Any) -> FakeStream:
        state["calls"].append(("overview", kw))
        return FakeStream(state["sources"])

    def one(client: Any, lookup: gather.ModelLookup) -> gather.Sources:
        state["calls"].append(("model", lookup))
        return state["sources"]  # type: ignore[no-any-return]

    monkeypatch.setattr(common, "connect", lambda opts: FakeClient())
    monkeypatch.setattr(gather, "gather_overview", overview)
    monkeypatch.setattr(gather, "stream_overview", stream)
    monkeypatch.setattr(gather, "gather_model", one)
    monkeypatch.setattr(cmd, "_now", lambda: f.NOW)
    return state


def test_overview_table_warnings_and_notes(served: dict[str, Any]) -> None:
    served["sources"] = gather.Sources(
        [f.cluster_base_model("ok", state="Ready"), f.cluster_base_model(CBM)],
        warnings=["cannot list nodes (forbidden): node labels and node selection omitted"],
        **{k: v for k, v in downloading().items() if k == "configmaps"},
    )
    result = invoke("-l", "team=a")
    assert result.exit_code == 0, result.output
    # Streamed and not kept: the models need not be slimmed.
    assert served["calls"] == [
        (
            "overview",
            {"kind": None, "namespace": "team-a", "label_selector": "team=a", "slim_models": False},
        )
    ]
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "NAMESPACE", "STORAGE", "STATE"]
    assert lines[2].split()[3:7] == ["In_Transit", "0/2", "1", "1"]
    assert result.stderr.splitlines() == [
        "Warning: cannot list nodes (forbidden): node labels and node selection omitted",
        f"{CBM}: the download failed on 1 node(s): node-b",
    ]


@pytest.mark.parametrize(
    ("states", "code"),
    [(["Ready", "Ready"], 0), (["Ready", "In_Transit"], 1), (["Failed"], 1), ([], 0)],
    ids=["all-ready", "one-in-transit", "failed", "none"],
)
def test_fail_if_not_ready(served: dict[str, Any], states: list[str], code: int) -> None:
    served["sources"] = gather.Sources(
        [f.cluster_base_model(f"m{i}", state=s) for i, s in enumerate(states)]
    )
    assert invoke("--fail-if-not-ready").exit_code == code
    assert invoke().exit_code == 0


def test_empty_result_is_a_sentence_on_stderr(served: dict[str, Any]) -> None:
    result = invoke("-A", "--kind", "namespaced")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == "No models found (no BaseModels in any namespace).\n"
    as_json = json.loads(invoke("-o", "json").stdout)
    assert as_json["items"] == [] and as_json["kind"] == "ModelStatusList"


def test_json_carries_the_schema_and_metadata_jobs(served: dict[str, Any]) -> None:
    served["sources"] = gather.Sources([f.cluster_base_model(CBM)], **downloading())
    doc = json.loads(invoke("-o", "json").stdout)
    (item,) = doc["items"]
    assert item["metadataJobs"] is None
    assert [n["node"] for n in item["nodes"]] == ["node-a", "node-b"]  # rows kept for -o json
    assert item["diagnoses"][0]["code"] == "nodes-failed"


def test_name_output(served: dict[str, Any]) -> None:
    served["sources"] = gather.Sources([f.cluster_base_model(CBM), f.base_model("t", "q")])
    result = invoke("-o", "name")
    assert result.stdout == f"clusterbasemodel.ome.io/{CBM}\nbasemodel.ome.io/q\n"
    assert result.stderr == ""  # notes are for the table


@pytest.mark.parametrize(
    ("args", "namespace", "explicit", "kind"),
    [
        ([CBM], "team-a", False, None),
        ([CBM, "-n", "team-b"], "team-a", True, None),  # FakeClient's namespace stands for -n
        ([CBM, "--kind", "cluster"], "team-a", False, "cluster"),
    ],
    ids=["context-namespace", "explicit-namespace", "kind"],
)
def test_detail_lookup(
    served: dict[str, Any], args: list[str], namespace: str, explicit: bool, kind: str | None
) -> None:
    served["sources"] = gather.Sources([f.cluster_base_model(CBM)], **downloading())
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    ((what, lookup),) = served["calls"]
    assert what == "model"
    assert lookup == gather.ModelLookup(CBM, namespace, explicit, kind)
    assert result.stdout.startswith(f"Name:            {CBM}\n")
    assert "No models found" not in result.stderr


# -- rendering ---------------------------------------------------------------------------------


def test_states_are_coloured_only_with_a_palette() -> None:
    models = report([f.cluster_base_model("a", state="Ready"), f.cluster_base_model("b")]).models
    plain = cmd.overview_table(models)
    coloured = cmd.overview_table(models, palette=COLOUR)
    assert "\033[" not in plain
    assert "\033[32mReady\033[0m" in coloured and "\033[33mIn_Transit\033[0m" in coloured
    # Padding is computed on the visible text: columns line up either way.
    strip = coloured.replace("\033[32m", "").replace("\033[33m", "").replace("\033[0m", "")
    assert strip == plain


@pytest.mark.parametrize(
    ("state", "code"),
    [("Ready", "32"), ("Failed", "31"), ("unknown", "31"), ("In_Transit", "33"),
     ("Updating", "33"), ("-", None)],
    ids=["ready", "failed", "unknown", "in-transit", "updating", "dash"],
)  # fmt: skip
def test_paint_state(state: str, code: str | None) -> None:
    painted = cmd.paint_state(COLOUR, state)
    assert painted == (f"\033[{code}m{state}\033[0m" if code else state)


def test_footer_notes_are_capped() -> None:
    models = report([f.cluster_base_model(f"m{i:02d}") for i in range(25)]).models
    notes = cmd.footer_notes(models, limit=20)
    assert len(notes) == 21
    assert notes[0] == "m00: state In_Transit"
    assert notes[-1].startswith("... and 5 more model(s) not Ready")
    assert cmd.footer_notes(models[:3]) == [f"m0{i}: state In_Transit" for i in range(3)]


def test_detail_of_a_downloading_model() -> None:
    (m,) = report([f.cluster_base_model(CBM, nodes_failed=["node-b"])], **downloading()).models
    text = cmd.detail_text(m)
    lines = text.splitlines()
    assert lines[:4] == [
        f"Name:            {CBM}",
        "Kind:            ClusterBaseModel",
        "State:           In_Transit",
        "Age:             60m",
    ]
    assert f"  Path:          {f.MODELS_ROOT}/meta/{CBM}" in lines
    assert "Nodes:           0/2 Ready, 1 Failed, 1 Updating (25% of bytes)" in lines
    assert "OME reports:     nodesReady [], nodesFailed [node-b]" in lines
    node_a = next(line for line in lines if line.startswith("node-a"))
    assert node_a.split() == [
        "node-a", "Updating", "Updating", "Updating", "downloading", "4.0GiB/16.0GiB", "5/20",
        "100.0MiB/s", "2m2s", "60s",
    ]  # fmt: skip
    assert "InferenceServices:\n  unknown (not readable)" in text
    assert (
        "  error    nodes-failed: the download failed on 1 node(s): node-b\n"
        "           next: kubectl get pods -n ome -o wide --field-selector spec.nodeName=node-b"
    ) in text


def test_detail_of_a_pvc_model_with_its_claim_and_workloads() -> None:
    path = f"{f.MODELS_ROOT}/meta/{CBM}"
    (m,) = report(
        [f.cluster_base_model(CBM, path=None, uri="pvc://team-a:models/meta/llama")],
        nodes=[f.node("node-a")],
        pvcs=[f.pvc("team-a", "models")],
        pvs=[f.pv("pv-models", nodes=["node-a", "node-b"])],
        inference_services=[f.inference_service("team-a", "llama", CBM)],
        workloads=[f.engine_deployment("llama", CBM, path, namespace="team-a")],
    ).models
    text = cmd.detail_text(m)
    assert "Nodes:           none: OME's agent downloads nothing for a pvc:// model" in text
    for line in (
        "  Claim:         team-a/models",
        "  Sub-path:      meta/llama",
        "  Exists:        yes",
        "  Phase:         Bound",
        "  Capacity:      100Gi",
        "  Access modes:  ReadOnlyMany",
        "  Storage class: local-models",
        "  Volume:        pv-models",
        "  Volume nodes:  kubernetes.io/hostname In [node-a, node-b]",
    ):
        assert line in text.splitlines()
    workload = next(line for line in text.splitlines() if "llama-engine" in line)
    assert workload.split()[:5] == ["team-a", "llama", "llama-engine", "Deployment", "0/1"]
    assert workload.endswith("Pending (model nodeSelector)")
    assert "next: kubectl ome-pvc patch llama -n team-a --claim models" in text


def test_detail_with_conditions_and_a_failed_metadata_job() -> None:
    model = f.base_model(
        "team-a", "qwen", path=None, uri="pvc://models/qwen",
        conditions=[
            f.condition("Ready", "False", "PVCMetadataExtractionFailed", "no config.json", 3)
        ],
    )  # fmt: skip
    (m,) = report([model], pvcs=[f.pvc("team-a", "models")], native_pvc=True).models
    failed_job = job("extract", labels=ome_labels("qwen"), failed=True)
    failing = pod("extract-x1", "extract", {"phase": "Failed", "containerStatuses": [
        {"state": {"terminated": {"reason": "Error", "exitCode": 1}}}]})  # fmt: skip
    view = cmd.View(detail=True, output=None, no_headers=False, palette=cmd.PLAIN, tty=False)
    text = cmd.render(
        status.StatusReport((m,)), view, MetadataSources([failed_job], [failing], []), f.NOW
    )
    conditions = text.split("Conditions:\n")[1].splitlines()
    assert conditions[1].split() == [
        "Ready",
        "False",
        "PVCMetadataExtractionFailed",
        "3m",
        "no",
        "config.json",
    ]
    assert (
        "Metadata Jobs:\n  team-a/extract: Failed (BackoffLimitExceeded: Job has reached the "
        "specified backoff limit), 10m old\n"
        "    pod extract-x1: Failed (Error (exit code 1))\n"
        "  status ConfigMap ome/pvc-metadata-"
    ) in text
    assert "pvc-extraction-failed:" in text
    assert "pvc-metadata-pod-failing: metadata Job team-a/extract: pod extract-x1 Error" in text


def test_detail_without_a_claim_list() -> None:
    (m,) = report([f.base_model("t", "q", path=None, uri="pvc://c/x")]).models
    assert "  Exists:        unknown (claims not readable)" in cmd.detail_text(m).splitlines()


@pytest.mark.parametrize(
    ("kind", "namespace", "selector", "sentence"),
    [
        (None, "team-a", None,
         "No models found (no ClusterBaseModels, no BaseModels in namespace team-a)."),
        ("cluster", None, "a=b", "No models found matching a=b (no ClusterBaseModels)."),
        ("namespaced", None, None, "No models found (no BaseModels in any namespace)."),
    ],
    ids=["both", "cluster-selector", "namespaced-all"],
)  # fmt: skip
def test_empty_sentence(kind: str | None, namespace: str | None, selector: str | None,
                        sentence: str) -> None:  # fmt: skip
    assert cmd.empty_sentence(kind, namespace, selector) == sentence
