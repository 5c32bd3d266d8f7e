"""plugin.yaml through krew's own validator, the one the krew index's CI runs.

`validate-krew-manifest` (sigs.k8s.io/krew v0.4.3, built by `hack/local-cluster krew-validator`)
checks the manifest's structure, that every platform selects a supported os/arch and no two
overlap, then installs each platform with `kubectl krew install` and looks for a licence file.
It reads a copy of plugin.yaml whose URIs point at a loopback server holding the archive built
from this tree, so the install step runs too, sha256 included. What it does not check is left to
tests/unit/test_krew_manifest.py.

Needs kubectl and kubectl-krew from `hack/local-cluster build`, not a running cluster.
"""

from __future__ import annotations

import functools
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.test_dist import ARCHIVE_NAME, REPO, Dist, build_once

pytestmark = pytest.mark.e2e

LOCAL_CLUSTER = REPO / "hack" / "local-cluster"


@dataclass
class Served:
    url: str
    paths: list[str] = field(default_factory=list)  # what was asked for, in order


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A loopback HTTP server holding the archive hack/build-dist makes from this tree."""
    dist: Dist = build_once(tmp_path_factory)
    served = Served("")

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            served.paths.append(self.path)
            super().do_GET()

        def log_message(self, *_: Any) -> None:
            pass

    handler = functools.partial(Handler, directory=str(dist.out_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    served.url = f"http://127.0.0.1:{server.server_address[1]}/{ARCHIVE_NAME}"
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Tools:
    validator: Path
    bin_dir: Path  # kubectl and kubectl-krew


@pytest.fixture(scope="module")
def tools() -> Tools:
    def local_cluster(command: str) -> Path:
        done = subprocess.run(
            [str(LOCAL_CLUSTER), command], check=False, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, done.stderr
        return Path(done.stdout.strip())

    bin_dir = local_cluster("bin-dir")
    for name in ("kubectl", "kubectl-krew"):
        assert (bin_dir / name).exists(), f"no {name} in {bin_dir}: run hack/local-cluster build"
    return Tools(local_cluster("krew-validator"), bin_dir)


def loopback_copy(served: Served) -> dict[str, Any]:
    """plugin.yaml as committed, every platform's uri pointing at the loopback server."""
    text = re.sub(
        r"(?m)^(\s*)uri: \S+$", rf"\1uri: {served.url}", (REPO / "plugin.yaml").read_text()
    )
    manifest: dict[str, Any] = yaml.safe_load(text)
    return manifest


def validate(
    manifest: dict[str, Any], tools: Tools, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    # The validator takes the plugin's name from the file's.
    path = tmp_path / "ome-pvc.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return subprocess.run(
        [str(tools.validator), "-manifest", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": f"{tools.bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)},
    )


def fatal(done: subprocess.CompletedProcess[str]) -> str:
    """The validator's error: klog's F line and what it quotes, up to the stack trace."""
    lines = done.stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("F")), len(lines))
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("goroutine ")), None)
    return "\n".join(lines[start:end])


def test_krew_validator_passes_plugin_yaml_and_installs_every_platform(
    served: Served, tools: Tools, tmp_path: Path
) -> None:
    manifest = loopback_copy(served)
    platforms = len(manifest["spec"]["platforms"])
    served.paths.clear()
    done = validate(manifest, tools, tmp_path)
    assert done.returncode == 0, fatal(done) or done.stderr
    for step in (
        "structural validation OK",
        "all spec.platform[] items are used",
        "no overlapping spec.platform[].selector",
        f"all {platforms} spec.platforms installed fine",
    ):
        assert step in done.stderr, done.stderr
    # Each platform's install downloaded the archive and checked its sha256.
    assert served.paths == [f"/{ARCHIVE_NAME}"] * platforms


def _break(manifest: dict[str, Any], change: str) -> dict[str, Any]:
    spec = manifest["spec"]
    first = spec["platforms"][0]
    if change == "api-version":
        manifest["apiVersion"] = "krew.googlecontainertools.github.com/v1alpha1"
    elif change == "name":
        manifest["metadata"]["name"] = "ome_pvc"
    elif change == "version-without-v":
        spec["version"] = spec["version"].removeprefix("v")
    elif change == "short-description-lines":
        spec["shortDescription"] = "two\nlines"
    elif change == "upper-case-sha":
        first["sha256"] = first["sha256"].upper()
    elif change == "selector-key":
        first["selector"]["matchLabels"]["distro"] = "debian"
    elif change == "overlap":
        spec["platforms"][1]["selector"] = {"matchLabels": {"os": "linux"}}
    elif change == "no-bin":
        del first["bin"]
    elif change == "other-archive":
        first["sha256"] = "0" * 64
    elif change == "bin-not-installed":
        first["files"] = [{"from": "LICENSE", "to": "."}]
    elif change == "licence-not-installed":
        first["files"] = [{"from": "kubectl-ome_pvc", "to": "."}]
    return manifest


BROKEN = [
    ("api-version", "not supported in this version of krew"),
    ("name", 'plugin should be named "ome-pvc"'),
    ("version-without-v", "failed to parse plugin version"),
    ("short-description-lines", "should not have line breaks in short description"),
    ("upper-case-sha", "`sha256` value"),
    ("selector-key", 'key "distro" not supported'),
    ("overlap", "overlapping selectors"),
    ("no-bin", "`bin` has to be set"),
    ("other-archive", "failed to install"),
    ("bin-not-installed", "cannot be found in extracted archive"),
    ("licence-not-installed", "LICENSE (or alike) file is not extracted"),
]


@pytest.mark.parametrize(("change", "message"), BROKEN, ids=[c for c, _ in BROKEN])
def test_krew_validator_rejects_a_broken_copy(
    served: Served, tools: Tools, tmp_path: Path, change: str, message: str
) -> None:
    done = validate(_break(loopback_copy(served), change), tools, tmp_path)
    assert done.returncode != 0
    assert message in fatal(done), done.stderr
