"""plugin.yaml against krew-index's rules, ported as checks on the manifest and the archive.

The rules (krew's manifest validation and the index's CI): apiVersion and kind; a safe name equal
to the index file's name; a `v`-prefixed semver; per platform a uri, a lower-case 64-hex sha256
(here: the built archive's), a bin, non-empty `from`/`to`, a selector using only `os`/`arch`; no
two platforms matching one os/arch; installing a platform yields the bin (executable) and a
licence file. Each check is also shown to reject a broken manifest.
"""

from __future__ import annotations

import copy
import fnmatch
import posixpath
import re
import tarfile
from typing import Any

import pytest
import yaml

from kubectl_omepvc import __version__
from tests.unit.test_dist import REPO, Dist, build_once

API_VERSION = "krew.googlecontainertools.github.com/v1alpha2"
SAFE_NAME = re.compile(r"^[\w-]+$")
WINDOWS_FORBIDDEN = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10))}
WINDOWS_FORBIDDEN |= {f"LPT{i}" for i in range(1, 10)}
SEMVER = re.compile(
    r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)
SHA256 = re.compile(r"^[a-f0-9]{64}$")
# The os/arch pairs the index's CI tries each manifest on.
KNOWN_PLATFORMS = [
    ("darwin", "386"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
    ("linux", "386"),
    ("linux", "amd64"),
    ("linux", "arm"),
    ("linux", "arm64"),
    ("linux", "ppc64le"),
    ("windows", "386"),
    ("windows", "amd64"),
    ("windows", "arm64"),
]
WANTED_PLATFORMS = {
    ("linux", "amd64"),
    ("linux", "arm64"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
}
LICENCE_PREFIXES = ("license", "licence", "copying")

Manifest = dict[str, Any]


# -- the rules ----------------------------------------------------------------------------------


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against os/arch labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def selector_problems(selector: Any) -> list[str]:
    if selector is None:
        return ["nil selector"]
    labels = selector.get("matchLabels")
    expressions = selector.get("matchExpressions")
    if labels is None and not expressions:
        return ["empty selector"]
    keys = [*(labels or {}), *(e.get("key") for e in expressions or [])]
    problems = [f"selector key {k!r} not supported" for k in keys if k not in ("os", "arch")]
    if labels is not None and not labels:
        problems.append("matchLabels specified but empty")
    if expressions is not None and not expressions:
        problems.append("matchExpressions specified but empty")
    return problems


def clean_path_problems(path: str) -> list[str]:
    if not path:
        return ["`to` has to be set"]
    if posixpath.isabs(path) or ".." in path.split("/") or posixpath.normpath(path) != path:
        return [f"`to` path {path!r} is not clean"]
    return []


def platform_problems(platform: Manifest) -> list[str]:
    problems = []
    if not platform.get("uri"):
        problems.append("`uri` has to be set")
    if not SHA256.match(str(platform.get("sha256", ""))):
        problems.append(f"`sha256` {platform.get('sha256')!r} is not 64 lower-case hex digits")
    if not platform.get("bin"):
        problems.append("`bin` has to be set")
    files = platform.get("files")
    if files is not None and not files:
        problems.append("`files` has to be unspecified or non-empty")
    for op in files or []:
        if not op.get("from"):
            problems.append("`from` has to be set")
        problems += clean_path_problems(str(op.get("to", "")))
    return problems + selector_problems(platform.get("selector"))


def manifest_problems(file_name: str, manifest: Manifest) -> list[str]:
    """What krew and the index's CI would reject in `manifest`, stored as `plugins/<file_name>`."""
    problems = []
    if manifest.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion {manifest.get('apiVersion')!r} not supported")
    if manifest.get("kind") != "Plugin":
        problems.append(f"kind {manifest.get('kind')!r} is not Plugin")
    name = file_name.removesuffix(".yaml")
    if not SAFE_NAME.match(name) or name.upper() in WINDOWS_FORBIDDEN:
        problems.append(f"plugin name {name!r} not allowed")
    if (manifest.get("metadata") or {}).get("name") != name:
        problems.append(f"plugin should be named {name!r} after its file")
    spec = manifest.get("spec") or {}
    if not spec.get("shortDescription"):
        problems.append("should have a short description")
    if not SEMVER.match(str(spec.get("version", ""))):
        problems.append(f"version {spec.get('version')!r} is not semver with a leading v")
    platforms = spec.get("platforms") or []
    if not platforms:
        problems.append("should have a platform specified")
    for index, platform in enumerate(platforms):
        problems += [f"platform {index}: {p}" for p in platform_problems(platform)]
    for os_name, arch in KNOWN_PLATFORMS:
        labels = {"os": os_name, "arch": arch}
        matching = [p for p in platforms if selector_matches(p.get("selector") or {}, labels)]
        if len(matching) > 1:
            problems.append(f"{len(matching)} platforms match {os_name}/{arch}")
    return problems


def installed_files(platform: Manifest, members: dict[str, tarfile.TarInfo]) -> dict[str, int]:
    """What krew's `files` operations install from the archive: path -> mode."""
    installed: dict[str, int] = {}
    for op in platform.get("files") or [{"from": "*", "to": "."}]:
        for name in sorted(fnmatch.filter(members, op["from"])):
            target = posixpath.normpath(posixpath.join(op["to"], posixpath.basename(name)))
            installed[target] = members[name].mode
    return installed


def install_problems(platform: Manifest, members: dict[str, tarfile.TarInfo]) -> list[str]:
    installed = installed_files(platform, members)
    problems = []
    mode = installed.get(platform.get("bin", ""))
    if mode is None:
        problems.append(f"bin {platform.get('bin')!r} is not among the installed files")
    elif not mode & 0o111:
        problems.append(f"bin {platform.get('bin')!r} is not executable")
    if not any(posixpath.basename(f).lower().startswith(LICENCE_PREFIXES) for f in installed):
        problems.append("no licence file among the installed files")
    return problems


# -- plugin.yaml --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    loaded: Manifest = yaml.safe_load((REPO / "plugin.yaml").read_text())
    return loaded


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    return build_once(tmp_path_factory)


def test_manifest_passes_krew_validation(manifest: Manifest) -> None:
    assert manifest_problems("ome-pvc.yaml", manifest) == []


def test_name_version_and_bin_agree(manifest: Manifest) -> None:
    assert manifest["metadata"]["name"] == "ome-pvc"
    assert manifest["spec"]["version"] == f"v{__version__}"
    for platform in manifest["spec"]["platforms"]:
        # kubectl maps `kubectl ome-pvc` to the executable kubectl-ome_pvc.
        assert platform["bin"] == "kubectl-" + manifest["metadata"]["name"].replace("-", "_")


def test_platforms_are_linux_and_darwin_on_amd64_and_arm64(manifest: Manifest) -> None:
    platforms = manifest["spec"]["platforms"]
    covered = {
        pair
        for pair in KNOWN_PLATFORMS
        for p in platforms
        if selector_matches(p["selector"], {"os": pair[0], "arch": pair[1]})
    }
    assert covered == WANTED_PLATFORMS
    assert len(platforms) == len(WANTED_PLATFORMS)


def test_every_platform_points_at_the_release_archive(manifest: Manifest) -> None:
    tag = f"v{__version__}"
    for platform in manifest["spec"]["platforms"]:
        assert platform["uri"].startswith("https://")
        assert platform["uri"].endswith(f"/releases/download/{tag}/kubectl-ome_pvc-{tag}.tar.gz")
    # One archive serves every platform. Whether it is this tree's archive is
    # `hack/build-dist --check`'s job: a sha256 comparison here would fail on every edit.
    assert len({platform["sha256"] for platform in manifest["spec"]["platforms"]}) == 1


def test_installing_any_platform_yields_the_bin_and_a_licence(
    manifest: Manifest, dist: Dist
) -> None:
    for platform in manifest["spec"]["platforms"]:
        assert install_problems(platform, dist.members) == []
        assert set(installed_files(platform, dist.members)) == {
            "kubectl-ome_pvc",
            "kubectl_complete-ome_pvc",
            "LICENSE",
        }


def test_descriptions_say_what_ome_is_and_which_python(manifest: Manifest) -> None:
    spec = manifest["spec"]
    assert "\n" not in spec["shortDescription"].strip()
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


# -- the rules reject what krew rejects ---------------------------------------------------------


def _broken(manifest: Manifest, change: str) -> Manifest:
    broken = copy.deepcopy(manifest)
    spec, first = broken["spec"], broken["spec"]["platforms"][0]
    if change == "api-version":
        broken["apiVersion"] = "krew.googlecontainertools.github.com/v1alpha1"
    elif change == "kind":
        broken["kind"] = "Plugins"
    elif change == "name":
        broken["metadata"]["name"] = "ome_pvc"
    elif change == "version-without-v":
        spec["version"] = __version__
    elif change == "version-not-semver":
        spec["version"] = "v1.2"
    elif change == "no-short-description":
        spec["shortDescription"] = ""
    elif change == "upper-case-sha":
        first["sha256"] = first["sha256"].upper()
    elif change == "short-sha":
        first["sha256"] = first["sha256"][:63]
    elif change == "selector-key":
        first["selector"]["matchLabels"]["distro"] = "debian"
    elif change == "overlap":
        spec["platforms"][1]["selector"] = {"matchLabels": {"os": "linux"}}
    elif change == "to-dot-slash":
        first["files"][0]["to"] = "./bin"
    elif change == "to-parent":
        first["files"][0]["to"] = "../bin"
    elif change == "to-absolute":
        first["files"][0]["to"] = "/usr/local/bin"
    elif change == "no-bin":
        del first["bin"]
    return broken


BROKEN_CASES = [
    ("api-version", "apiVersion"),
    ("kind", "kind"),
    ("name", "should be named"),
    ("version-without-v", "semver"),
    ("version-not-semver", "semver"),
    ("no-short-description", "short description"),
    ("upper-case-sha", "sha256"),
    ("short-sha", "sha256"),
    ("selector-key", "'distro' not supported"),
    ("overlap", "2 platforms match linux/amd64"),
    ("to-dot-slash", "not clean"),
    ("to-parent", "not clean"),
    ("to-absolute", "not clean"),
    ("no-bin", "`bin` has to be set"),
]


@pytest.mark.parametrize(("change", "problem"), BROKEN_CASES, ids=[c for c, _ in BROKEN_CASES])
def test_rules_reject_a_broken_manifest(manifest: Manifest, change: str, problem: str) -> None:
    problems = manifest_problems("ome-pvc.yaml", _broken(manifest, change))
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ([{"from": "LICENSE", "to": "."}], "bin 'kubectl-ome_pvc' is not among"),
        ([{"from": "kubectl-ome_pvc", "to": "."}], "no licence file"),
    ],
    ids=["bin-not-installed", "licence-not-installed"],
)
def test_install_rules_reject_missing_files(
    manifest: Manifest, dist: Dist, files: list[dict[str, str]], problem: str
) -> None:
    platform = {**manifest["spec"]["platforms"][0], "files": files}
    assert any(problem in p for p in install_problems(platform, dist.members))


def test_install_rules_reject_a_bin_without_exec_bit(manifest: Manifest, dist: Dist) -> None:
    members = dict(dist.members)
    plain = copy.copy(members["kubectl-ome_pvc"])
    plain.mode = 0o644
    members["kubectl-ome_pvc"] = plain
    problems = install_problems(manifest["spec"]["platforms"][0], members)
    assert problems == ["bin 'kubectl-ome_pvc' is not executable"]
