"""plugin.yaml: what krew's own validator does not check.

krew's `validate-krew-manifest` runs on a loopback copy of plugin.yaml in
tests/e2e/test_krew_validator.py: structure, name, semver, sha256 format, selectors, platform
overlap, and installing every platform (sha256 of the built archive, bin, licence file). Left
here: this project's choices (name, version, bin, platforms, descriptions, the release URI and
template) and one rule stricter than krew's, a clean relative `to` for every file.
"""

from __future__ import annotations

import copy
import posixpath
import re
from typing import Any

import pytest
import yaml

from kubectl_omepvc import __version__
from tests.unit.test_dist import REPO, Dist, build_once

WANTED_PLATFORMS = {
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
}

Manifest = dict[str, Any]


def to_problems(manifest: Manifest) -> list[str]:
    """krew accepts `./bin` or `/usr/local/bin` as a `to` (it joins them under the plugin's
    directory); we want every `to` clean and relative, so the manifest reads as it installs."""
    problems = []
    for platform in manifest["spec"]["platforms"]:
        for op in platform.get("files") or []:
            path = str(op.get("to", ""))
            if posixpath.isabs(path) or ".." in path.split("/") or posixpath.normpath(path) != path:
                problems.append(f"`to` path {path!r} is not clean")
    return problems


# -- plugin.yaml --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    loaded: Manifest = yaml.safe_load((REPO / "plugin.yaml").read_text())
    return loaded


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    return build_once(tmp_path_factory)


def test_every_file_goes_to_a_clean_relative_path(manifest: Manifest) -> None:
    assert to_problems(manifest) == []


@pytest.mark.parametrize("to", ["./bin", "../bin", "/usr/local/bin"])
def test_an_unclean_to_is_rejected(manifest: Manifest, to: str) -> None:
    broken = copy.deepcopy(manifest)
    broken["spec"]["platforms"][0]["files"][0]["to"] = to
    assert to_problems(broken) == [f"`to` path {to!r} is not clean"]


def test_name_version_and_bin_agree(manifest: Manifest) -> None:
    assert manifest["metadata"]["name"] == "ome-pvc"
    assert manifest["spec"]["version"] == f"v{__version__}"
    for platform in manifest["spec"]["platforms"]:
        # kubectl maps `kubectl ome-pvc` to the executable kubectl-ome_pvc.
        assert platform["bin"] == "kubectl-" + manifest["metadata"]["name"].replace("-", "_")


def test_platforms_are_linux_and_darwin_on_amd64_and_arm64(manifest: Manifest) -> None:
    selectors = [p["selector"] for p in manifest["spec"]["platforms"]]
    assert all(set(s) == {"matchLabels"} for s in selectors), selectors
    covered = {(s["matchLabels"]["os"], s["matchLabels"]["arch"]) for s in selectors}
    assert covered == WANTED_PLATFORMS
    assert len(selectors) == len(WANTED_PLATFORMS)


def test_every_platform_points_at_the_release_archive(manifest: Manifest) -> None:
    tag = f"v{__version__}"
    for platform in manifest["spec"]["platforms"]:
        assert platform["uri"].startswith("https://")
        assert platform["uri"].endswith(f"/releases/download/{tag}/kubectl-ome_pvc-{tag}.tar.gz")
    # One archive serves every platform. Whether it is this tree's archive is
    # `hack/build-dist --check`'s job: a sha256 comparison here would fail on every edit.
    assert len({platform["sha256"] for platform in manifest["spec"]["platforms"]}) == 1


def test_descriptions_say_what_ome_is_and_which_python(manifest: Manifest) -> None:
    spec = manifest["spec"]
    assert "OME (Open Model Engine)" in spec["shortDescription"]
    assert "Open Model Engine" in spec["description"]
    assert re.search(r"\bPython 3\.10\b", spec["caveats"]), spec["caveats"]
    setup = (REPO / "setup.cfg").read_text()
    assert "python_requires = >=3.10" in setup, "caveats and setup.cfg disagree on Python"
    assert spec["homepage"].startswith("https://")


def test_release_template_renders_to_plugin_yaml(manifest: Manifest) -> None:
    """krew-release-bot's rendering of krew/.krew.yaml for this version is plugin.yaml."""
    template = (REPO / "krew" / ".krew.yaml").read_text()
    tag = f"v{__version__}"
    # plugin.yaml's own digest; whether it is this tree's archive, build-dist --check decides.
    sha256 = manifest["spec"]["platforms"][0]["sha256"]

    def add_uri_and_sha(match: re.Match[str]) -> str:
        # The bot's addURIAndSha: render the URL, then `uri: ...` and a 4-space `sha256: ...`.
        return f"uri: {match.group(1).replace('{{ .TagName }}', tag)}\n    sha256: {sha256}"

    rendered = re.sub(r'\{\{ addURIAndSha "([^"]+)" \.TagName \}\}', add_uri_and_sha, template)
    rendered = rendered.replace("{{ .TagName }}", tag)
    assert "{{" not in rendered
    assert rendered == (REPO / "plugin.yaml").read_text(), "run hack/build-dist"
