"""The krew archive from hack/build-dist: contents, modes, reproducibility, and that it runs.

The archive is built once per session (the pinned dependencies come from pip's cache, or PyPI on
a fresh machine, then from $OMEPVC_CACHE/dist-vendor).
"""

from __future__ import annotations

import ast
import dataclasses
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from kubectl_omepvc import __version__

REPO = Path(__file__).resolve().parents[2]
BUILD_DIST = REPO / "hack" / "build-dist"
ARCHIVE_NAME = f"kubectl-ome_pvc-v{__version__}.tar.gz"
PLUGIN = "kubectl-ome_pvc"
COMPLETER = "kubectl_complete-ome_pvc"


@dataclasses.dataclass(frozen=True)
class Dist:
    """One build of hack/build-dist into a directory of its own, unpacked."""

    out_dir: Path
    archive: Path
    sha256: str
    members: dict[str, tarfile.TarInfo]
    unpacked: Path  # the archive's files, extracted with their modes

    @property
    def zipapp(self) -> Path:
        return self.unpacked / PLUGIN


def build(out_dir: Path) -> Dist:
    done = subprocess.run(
        [sys.executable, str(BUILD_DIST), "--output-dir", str(out_dir)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"hack/build-dist failed:\n{done.stderr}"
    archive = out_dir / ARCHIVE_NAME
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert done.stdout.split() == [digest, str(archive)]
    unpacked = out_dir / "unpacked"
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        tar.extractall(unpacked, filter="tar")
    return Dist(out_dir, archive, digest, members, unpacked)


_BUILDS: dict[Path, Dist] = {}


def build_once(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """The session's build, shared by every test module that asks for it."""
    base = tmp_path_factory.getbasetemp()
    if base not in _BUILDS:
        _BUILDS[base] = build(tmp_path_factory.mktemp("dist"))
    return _BUILDS[base]


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    return build_once(tmp_path_factory)


def run(argv: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs a program with a private cache dir (the zipapp unpacks itself there)."""
    environ = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), **env}
    environ.pop("KUBECONFIG", None)
    return subprocess.run(
        argv, check=False, capture_output=True, text=True, env=environ, timeout=120
    )


def zip_names(dist: Dist) -> list[str]:
    with zipfile.ZipFile(dist.zipapp) as bundle:
        return bundle.namelist()


# -- the tarball --------------------------------------------------------------------------------


def test_archive_holds_exactly_the_plugin_the_completer_and_the_licence(dist: Dist) -> None:
    assert sorted(dist.members) == ["LICENSE", PLUGIN, COMPLETER]


@pytest.mark.parametrize(
    ("name", "mode"),
    [(PLUGIN, 0o755), (COMPLETER, 0o755), ("LICENSE", 0o644)],
    ids=["plugin", "completer", "licence"],
)
def test_members_are_regular_files_with_fixed_owner_time_and_mode(
    dist: Dist, name: str, mode: int
) -> None:
    member = dist.members[name]
    assert member.isreg(), f"{name} is not a regular file (krew aborts on links)"
    assert member.mode == mode
    assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
    assert member.mtime == int(os.environ.get("SOURCE_DATE_EPOCH") or 0)


def test_licence_is_the_repository_licence(dist: Dist) -> None:
    assert (dist.unpacked / "LICENSE").read_bytes() == (REPO / "LICENSE").read_bytes()


def test_gzip_header_carries_no_time_and_no_file_name(dist: Dist) -> None:
    header = dist.archive.read_bytes()[:10]
    assert header[:2] == b"\x1f\x8b"
    assert header[4:8] == b"\0\0\0\0", "gzip mtime must be 0"
    assert header[3] & 0x08 == 0, "gzip FNAME flag set: the header embeds a file name"


def test_two_builds_have_the_same_sha256(dist: Dist, tmp_path: Path) -> None:
    again = build(tmp_path / "again")
    assert again.sha256 == dist.sha256


# -- the zipapp ---------------------------------------------------------------------------------


def test_zipapp_is_a_python3_shebang_and_a_zip(dist: Dist) -> None:
    assert dist.zipapp.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert zipfile.is_zipfile(dist.zipapp)


def test_zipapp_holds_every_module_of_the_package(dist: Dist) -> None:
    names = set(zip_names(dist))
    package = {
        Path(p).relative_to(REPO).as_posix()
        for p in glob.glob(str(REPO / "kubectl_omepvc" / "**" / "*.py"), recursive=True)
    }
    assert package, "no package sources found"
    assert package <= names, f"missing from the zipapp: {sorted(package - names)}"


@pytest.mark.parametrize(
    "name",
    [
        "__main__.py",
        "click/core.py",
        "yaml/__init__.py",
        "tabulate/__init__.py",
        "jsonpatch.py",
        "jsonpointer.py",
        "urllib3/__init__.py",
    ],
)
def test_zipapp_holds_the_dependencies(dist: Dist, name: str) -> None:
    assert name in zip_names(dist)


@pytest.mark.parametrize(
    ("what", "bad"),
    [
        ("C extensions", lambda n: n.endswith((".so", ".pyd", ".dylib"))),
        ("PyYAML's C shim", lambda n: n.startswith("_yaml/")),
        ("the official client (the plugin has its own API layer)", lambda n: "kubernetes/" in n),
        ("bytecode", lambda n: "__pycache__" in n or n.endswith(".pyc")),
        ("test suites", lambda n: "/tests/" in n or n.endswith("_test.py")),
        ("console scripts", lambda n: n.startswith("bin/")),
    ],
    ids=["c-ext", "yaml-shim", "official-client", "bytecode", "tests", "bin"],
)
def test_zipapp_leaves_out(dist: Dist, what: str, bad: Callable[[str], bool]) -> None:
    found = [n for n in zip_names(dist) if bad(n)]
    assert not found, f"{what} in the zipapp: {found[:5]}"


def test_zip_entries_are_sorted_with_fixed_times(dist: Dist) -> None:
    with zipfile.ZipFile(dist.zipapp) as bundle:
        infos = bundle.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {infos[0].date_time}


def test_yaml_imports_from_the_zip_without_libyaml(dist: Dist, tmp_path: Path) -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import yaml; "
        "assert yaml.__file__.startswith(sys.argv[1]), yaml.__file__; "
        "print(yaml.__with_libyaml__, yaml.safe_load('a: [1, 2]'))"
    )
    done = run([sys.executable, "-I", "-S", "-c", code, str(dist.zipapp)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False {'a': [1, 2]}"


def test_tables_and_patches_work_from_the_zip_alone(dist: Dist, tmp_path: Path) -> None:
    """tabulate, jsonpatch and jsonpointer come from the zipapp (no site-packages: -I -S)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from kubectl_omepvc import printers\n"
        "from kubectl_omepvc.core import jsonpatch as jp\n"
        "print(printers.table(['a', 'b'], [['x', None]]))\n"
        "print(jp.apply_patch({'a': [1]}, [{'op': 'add', 'path': '/a/-', 'value': 2}]))\n"
        "import tabulate, jsonpatch, jsonpointer\n"
        "libraries = (tabulate, jsonpatch, jsonpointer)\n"
        "print(all(m.__file__.startswith(sys.argv[1]) for m in libraries))\n"
    )
    done = run([sys.executable, "-I", "-S", "-c", code, str(dist.zipapp)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["A   B", "x   -", "{'a': [1, 2]}", "True"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], "Usage: kubectl ome-pvc [OPTIONS] COMMAND [ARGS]..."),
        (["version", "--client"], f"Plugin Version: v{__version__}"),
    ],
    ids=["help", "version-client"],
)
def test_zipapp_runs(dist: Dist, tmp_path: Path, args: list[str], expected: str) -> None:
    done = run([str(dist.zipapp), *args], tmp_path)
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout


def test_zipapp_needs_nothing_outside_itself(dist: Dist, tmp_path: Path) -> None:
    """Without site-packages (-S), a server command imports the whole client from the zipapp."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    argv = [sys.executable, "-I", "-S", str(dist.zipapp), "version", "--kubeconfig"]
    done = run([*argv, str(kubeconfig), "--request-timeout", "2s"], tmp_path)
    assert "Traceback" not in done.stderr and "ModuleNotFound" not in done.stderr, done.stderr
    assert done.returncode == 1
    assert f"Plugin Version: v{__version__}" in done.stdout
    assert done.stderr.startswith("Error: server version unavailable:"), done.stderr


def test_zipapp_unpacks_once_into_the_user_cache(dist: Dist, tmp_path: Path) -> None:
    run([str(dist.zipapp), "--help"], tmp_path)
    builds = list((tmp_path / "cache" / "kubectl-ome-pvc" / "zipapp").iterdir())
    assert [b.name for b in builds if not b.name.startswith(".")] == [builds[0].name]
    assert (builds[0] / "kubectl_omepvc" / "cli.py").is_file()


def test_zipapp_runs_from_the_zip_when_the_cache_is_unwritable(dist: Dist, tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    done = run([str(dist.zipapp), "version", "--client"], tmp_path, XDG_CACHE_HOME=str(blocked))
    assert done.returncode == 0, done.stderr
    assert "Plugin Version" in done.stdout


def _pyenv_python(version: str) -> str | None:
    found = shutil.which(f"python{version}")
    candidates = [found] if found else []
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(glob.glob(str(root / f"{version}.*" / "bin" / f"python{version}")))
    for candidate in candidates:
        done = subprocess.run([candidate, "--version"], check=False, capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.startswith(f"Python {version}."):
            return candidate
    return None


def test_zipapp_runs_on_the_minimum_python(dist: Dist, tmp_path: Path) -> None:
    """Every module in the zipapp is Python 3.10 syntax, checked by this interpreter's parser
    with 3.10's grammar; and where a python3.10 is at hand (pyenv; Debian 12 and 13 have none),
    the zipapp runs on it."""
    with zipfile.ZipFile(dist.zipapp) as bundle:
        sources = {n: bundle.read(n) for n in bundle.namelist() if n.endswith(".py")}
    assert "kubectl_omepvc/cli.py" in sources and "__main__.py" in sources
    for name, source in sources.items():
        try:
            ast.parse(source, filename=name, feature_version=(3, 10))
        except SyntaxError as exc:
            pytest.fail(f"{name} is not Python 3.10: {exc}")
    python = _pyenv_python("3.10")
    if python is not None:
        done = run([python, str(dist.zipapp), "version", "--client"], tmp_path)
        assert done.returncode == 0, done.stderr
        assert "(Python 3.10." in done.stdout


def test_syntax_check_catches_what_3_10_cannot_parse() -> None:
    """The check above can fail: 3.11's `except*` is refused with 3.10's grammar."""
    newer = "try:\n    pass\nexcept* ValueError:\n    pass\n"
    ast.parse(newer, feature_version=(3, 11))
    with pytest.raises(SyntaxError):
        ast.parse(newer, feature_version=(3, 10))


def test_zipapp_refuses_an_older_python_in_one_line(dist: Dist, tmp_path: Path) -> None:
    """The guard in __main__.py is 3.9 syntax and runs before any import of ours. Without a
    python3.9 at hand, this interpreter runs the zipapp pretending to be 3.9.18."""
    with zipfile.ZipFile(dist.zipapp) as bundle:
        main = bundle.read("__main__.py")
    ast.parse(main, filename="__main__.py", feature_version=(3, 9))
    python = _pyenv_python("3.9")
    if python is not None:
        argv = [python, str(dist.zipapp), "--help"]
    else:
        code = (
            "import runpy, sys\n"
            "sys.version_info = (3, 9, 18, 'final', 0)\n"
            "try:\n"
            "    runpy.run_path(sys.argv[1], run_name='__main__')\n"
            "finally:\n"
            "    ours = {'kubectl_omepvc', 'click'}\n"
            "    print(sorted({m.split('.')[0] for m in sys.modules} & ours))\n"
        )
        argv = [sys.executable, "-c", code, str(dist.zipapp), "--help"]
    done = run(argv, tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: kubectl ome-pvc needs Python 3.10 or newer")
    assert "python3 here is 3.9:" in done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stdout == ("" if python is not None else "[]\n"), "nothing of ours was imported"


# -- kubectl_complete-ome_pvc -------------------------------------------------------------------


@pytest.mark.parametrize(
    "words",
    [["vers"], ["__complete", "vers"]],
    ids=["kubectl-form", "cobra-form"],
)
def test_completer_answers_through_the_zipapp_beside_it(
    dist: Dist, tmp_path: Path, words: list[str]
) -> None:
    done = run([str(dist.unpacked / COMPLETER), *words], tmp_path)
    assert done.returncode == 0
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].split("\t")[0] == "version"
    assert lines[-1] == ":4"


def test_completer_linked_elsewhere_finds_the_zipapp(dist: Dist, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / COMPLETER).symlink_to(dist.unpacked / COMPLETER)
    done = run([str(bin_dir / COMPLETER), "vers"], tmp_path)
    assert done.stdout.splitlines()[-1] == ":4"
    assert done.stdout.startswith("version")


def test_completer_without_the_zipapp_stays_quiet(dist: Dist, tmp_path: Path) -> None:
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy2(dist.unpacked / COMPLETER, lonely / COMPLETER)
    python_only = tmp_path / "py"
    python_only.mkdir()
    (python_only / "python3").symlink_to(sys.executable)
    done = run(
        [str(lonely / COMPLETER), "vers"],
        tmp_path,
        PATH=str(python_only),
        PYTHONPATH="",
        PYTHONNOUSERSITE="1",
    )
    # It falls back to the package importable by this python (a pip install) or offers nothing;
    # either way kubectl reads a directive and the prompt gets no noise.
    assert done.returncode == 0
    assert done.stdout.splitlines()[-1] == ":4", done.stdout
    assert done.stderr == ""


# -- the manifests in the repository ------------------------------------------------------------


@pytest.mark.parametrize(
    ("committed", "built"),
    [("plugin.yaml", "plugin.yaml"), ("krew/.krew.yaml", ".krew.yaml")],
    ids=["plugin.yaml", "krew-release-template"],
)
def test_committed_manifest_is_current(dist: Dist, committed: str, built: str) -> None:
    """Template and version only: the archive's sha256 changes with every edit of the package,
    and `hack/build-dist --check` (run by hack/test) guards it, so a behavioural test that
    catches a mistake is not drowned out by this one."""
    path = REPO / committed
    assert path.exists(), f"{committed} is missing: run hack/build-dist"
    assert without_sha256(path.read_text()) == without_sha256((dist.out_dir / built).read_text()), (
        f"{committed} is stale (template or version changed): run hack/build-dist"
    )


def without_sha256(manifest: str) -> str:
    return re.sub(r"(?m)^(\s*sha256: )[0-9a-f]{64}$", r"\1<sha256>", manifest)
