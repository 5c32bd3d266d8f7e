"""Shell completion: kubectl's plugin protocol (pure) and the `completion` command's scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kubectl_omepvc import cli, completion
from kubectl_omepvc.commands import completion as completion_command
from kubectl_omepvc.completion import Answer, Candidate, Directive, Resource
from kubectl_omepvc.options import ConnectionOptions, Output, connection_options, output_option


class FakeLister:
    """Answers from a fixed table and records what it was asked."""

    def __init__(self, names: dict[Resource, list[str]] | None = None, fail: bool = False):
        self.names = names or {}
        self.fail = fail
        self.calls: list[tuple[Resource, ConnectionOptions]] = []

    def __call__(self, resource: Resource, opts: ConnectionOptions) -> Iterable[str]:
        self.calls.append((resource, opts))
        if self.fail:
            raise OSError("connection refused")
        return self.names.get(resource, [])


@click.group()
def tree() -> None:
    """A command tree shaped like the plugin's."""


@tree.command("status")
@click.argument("isvc", required=False)
@click.option("--model", help="The ClusterBaseModel.")
@click.option("--claim", help="The PersistentVolumeClaim.")
@click.option("--field-manager", help="Name of the field manager.")
@click.option("--out-dir", type=click.Path(file_okay=False))
@click.option("--from-file", type=click.Path(dir_okay=False))
@output_option(Output.JSON, Output.YAML)
@connection_options
def status(**_: object) -> None:
    """Show status."""


@tree.command("migrate")
@click.argument("model")
@connection_options
def migrate(**_: object) -> None:
    """Move a model's weights."""


NAMES = {
    Resource.INFERENCE_SERVICE: ["llama-chat", "qwen-chat", "llama-batch"],
    Resource.MODEL: ["llama-3-8b", "qwen3-8b"],
    Resource.CLAIM: ["models-rwx"],
    Resource.CONTEXT: ["local-admin", "local-restricted"],
    Resource.NAMESPACE: ["default", "team-a"],
}


def values(answer: Answer) -> list[str]:
    return [c.value for c in answer.candidates]


# -- the text kubectl reads ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("directive", "number"),
    [
        (Directive.DEFAULT, 0),
        (Directive.ERROR, 1),
        (Directive.NO_SPACE, 2),
        (Directive.NO_FILE_COMP, 4),
        (Directive.FILTER_FILE_EXT, 8),
        (Directive.FILTER_DIRS, 16),
        (Directive.KEEP_ORDER, 32),
    ],
    ids=str,
)
def test_directives_are_cobras_numbers(directive: Directive, number: int) -> None:
    assert int(directive) == number


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        (Answer((), Directive.NO_FILE_COMP), ":4\n"),
        (Answer((), Directive.DEFAULT), ":0\n"),
        (Answer((Candidate("a"), Candidate("b")), Directive.NO_FILE_COMP), "a\nb\n:4\n"),
        (
            Answer((Candidate("status", "Show status."),), Directive.NO_FILE_COMP),
            "status\tShow status.\n:4\n",
        ),
        (
            Answer((Candidate("x", "first line\nsecond\tline"),), Directive.NO_FILE_COMP),
            "x\tfirst line\n:4\n",
        ),
        (Answer((Candidate("x", "tab\there"),), Directive.DEFAULT), "x\ttab here\n:0\n"),
    ],
    ids=["empty", "files", "plain", "described", "multi-line-help", "tab-in-help"],
)
def test_render(answer: Answer, text: str) -> None:
    assert answer.render() == text


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ([], ([], "")),
        ([""], ([], "")),
        (["st"], ([], "st")),
        (["status", ""], (["status"], "")),
        (["__complete", "status", "-n", "x", "ll"], (["status", "-n", "x"], "ll")),
        (["__complete"], ([], "")),
    ],
    ids=["nothing", "empty-word", "partial", "after-command", "cobra-form", "cobra-only"],
)
def test_split_request(words: list[str], expected: tuple[list[str], str]) -> None:
    assert completion.split_request(words) == expected


# -- what gets completed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "expected", "directive"),
    [
        ([""], ["migrate", "status"], Directive.NO_FILE_COMP),
        (["st"], ["status"], Directive.NO_FILE_COMP),
        (["status", "--cla"], ["--claim"], Directive.NO_FILE_COMP),
        (["status", "--kubec"], ["--kubeconfig"], Directive.NO_FILE_COMP),
        (["status", "-o", ""], ["json", "yaml"], Directive.NO_FILE_COMP),
        (["status", "--output=y"], ["yaml"], Directive.NO_FILE_COMP),
        (["status", "--field-manager", ""], [], Directive.NO_FILE_COMP),
        (["status", "--kubeconfig", ""], [], Directive.DEFAULT),
        (["status", "--certificate-authority", "ca"], [], Directive.DEFAULT),
        (["status", "--from-file", ""], [], Directive.DEFAULT),
        (["status", "--out-dir", ""], [], Directive.FILTER_DIRS),
        (["status", ""], ["llama-batch", "llama-chat", "qwen-chat"], Directive.NO_FILE_COMP),
        (["status", "llama"], ["llama-batch", "llama-chat"], Directive.NO_FILE_COMP),
        (["status", "--model", "q"], ["qwen3-8b"], Directive.NO_FILE_COMP),
        (["status", "--claim", ""], ["models-rwx"], Directive.NO_FILE_COMP),
        (["status", "--context", "local-r"], ["local-restricted"], Directive.NO_FILE_COMP),
        (["status", "-n", ""], ["default", "team-a"], Directive.NO_FILE_COMP),
        (["migrate", ""], ["llama-3-8b", "qwen3-8b"], Directive.NO_FILE_COMP),
        (["status", "nomatch"], [], Directive.NO_FILE_COMP),
    ],
    ids=[
        "subcommands",
        "subcommand-prefix",
        "flag-prefix",
        "connection-flag",
        "choice-values",
        "choice-after-equals",
        "free-text-value",
        "kubeconfig-is-a-file",
        "ca-is-a-file",
        "path-option-files",
        "path-option-dirs",
        "isvc-argument",
        "isvc-prefix",
        "model-option",
        "claim-option",
        "context-names",
        "namespace-names",
        "model-argument",
        "no-match",
    ],
)
def test_complete(words: list[str], expected: list[str], directive: Directive) -> None:
    answer = completion.complete(tree, words, FakeLister(NAMES))
    assert values(answer) == expected
    assert answer.directive is directive


def test_subcommands_come_with_their_help() -> None:
    answer = completion.complete(tree, [""], FakeLister())
    assert answer.candidates == (
        Candidate("migrate", "Move a model's weights."),
        Candidate("status", "Show status."),
    )


def test_lister_sees_the_connection_flags_typed_so_far() -> None:
    lister = FakeLister(NAMES)
    words = ["status", "--context", "prod", "-n", "team-a", "--kubeconfig", "/k", "--model", ""]
    completion.complete(tree, words, lister)
    [(resource, opts)] = lister.calls
    assert resource is Resource.MODEL
    assert (opts.context, opts.namespace, opts.kubeconfig) == ("prod", "team-a", "/k")


def test_lister_is_not_asked_for_subcommands_or_flags() -> None:
    lister = FakeLister(NAMES)
    completion.complete(tree, [""], lister)
    completion.complete(tree, ["status", "--"], lister)
    completion.complete(tree, ["status", "-o", ""], lister)
    assert lister.calls == []


def test_unreachable_cluster_offers_nothing_and_no_files() -> None:
    answer = completion.complete(tree, ["status", ""], FakeLister(fail=True))
    assert answer == Answer((), Directive.NO_FILE_COMP)
    assert answer.render() == ":4\n"


def test_our_own_failure_is_cobras_error_directive() -> None:
    class Broken(click.Group):
        def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
            raise RuntimeError("a command module failed to import")

    broken = Broken("broken", commands={"x": click.Command("x")})
    assert completion.answer(broken, ["x", ""], FakeLister()) == ":1\n"


def test_real_cli_completes_its_subcommands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        cli.COMMANDS, "completion", ("kubectl_omepvc.commands.completion", "Shell completion.")
    )
    answer = completion.complete(cli.root, ["__complete", ""], FakeLister())
    assert {"completion", "version"} <= set(values(answer))
    answer = completion.complete(cli.root, ["version", "--cli"], FakeLister())
    assert values(answer) == ["--client"]


def test_from_model_offers_models_as_create_takes_them() -> None:
    lister = FakeLister({Resource.SOURCE_MODEL: ["llama-3-8b", "basemodel/qwen3-8b"]})
    answer = completion.complete(cli.root, ["create", "w", "--from-model", ""], lister)
    assert values(answer) == ["basemodel/qwen3-8b", "llama-3-8b"]
    status = completion.complete(cli.root, ["status", "-n", "team-a", ""], FakeLister(NAMES))
    assert values(status) == ["llama-3-8b", "qwen3-8b"]


# -- kubectl_complete-ome_pvc -------------------------------------------------------------------


def test_cobra_main_writes_only_the_answer(capsys: pytest.CaptureFixture[str]) -> None:
    completion_command.cobra_main(["vers"])
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("version\t")
    assert out.endswith("\n:4\n")
    assert err == ""


def test_names_from_an_unreachable_server_fail_quietly(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u, namespace: ns}}]\n"
    )
    words = ["status", "--kubeconfig", str(kubeconfig), ""]
    assert completion.answer(tree, words, completion_command.list_names) == ":4\n"
    callback = completion_command.complete_names(Resource.INFERENCE_SERVICE)
    ctx = click.Context(status, obj=ConnectionOptions(kubeconfig=str(kubeconfig)))
    assert callback(ctx, status.params[0], "") == []


def test_context_names_come_from_the_merged_kubeconfig(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("contexts: [{name: one, context: {}}, {name: two, context: {}}]\n")
    second.write_text("contexts: [{name: two, context: {}}, {name: three, context: {}}]\n")
    environ = {"KUBECONFIG": f"{first}{os.pathsep}{second}", "HOME": str(tmp_path)}
    names = completion_command.list_names(Resource.CONTEXT, ConnectionOptions(), environ)
    assert names == ["one", "two", "three"]
    only = completion_command.list_names(
        Resource.CONTEXT, ConnectionOptions(kubeconfig=str(second)), environ
    )
    assert only == ["two", "three"]


# -- `completion bash|zsh|fish` -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _kubectl_ome_pvc_completion kubectl-ome_pvc"),
        ("zsh", "#compdef kubectl-ome_pvc"),
        ("fish", "complete --no-files --command kubectl-ome_pvc"),
    ],
    ids=["bash", "zsh", "fish"],
)
def test_completion_command_prints_the_script(shell: str, marker: str) -> None:
    result = CliRunner().invoke(completion_command.command, [shell])
    assert result.exit_code == 0, result.output
    assert marker in result.stdout
    assert "_KUBECTL_OME_PVC_COMPLETE=" in result.stdout
    assert result.stdout == completion_command.script(shell)


def test_completion_command_rejects_other_shells() -> None:
    result = CliRunner().invoke(completion_command.command, ["powershell"])
    assert result.exit_code == 2


def test_scripts_variable_is_the_one_cli_main_answers() -> None:
    """The scripts call the executable with COMPLETE_VAR set; cli.main must answer it."""
    env = {
        **os.environ,
        completion_command.COMPLETE_VAR: "bash_complete",
        "COMP_WORDS": "kubectl-ome_pvc vers",
        "COMP_CWORD": "1",
    }
    code = "from kubectl_omepvc import cli; cli.main()"
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["plain,version"]
