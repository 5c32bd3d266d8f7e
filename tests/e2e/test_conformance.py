"""kubectl is the oracle: every case runs through kubectl and through the plugin's connection layer.

Each case is a set of kubeconfig files, environment variables and connection flags. kubectl runs
`auth whoami -o json` (and, for namespace cases, `get configmap kube-root-ca.crt`); the plugin's
side (`tests.e2e.connection_probe`, its own process, the plugin's flag parsing and Client) sends
a SelfSubjectReview and the same GET. Compared: the outcome (ok, tls, unauthorized, forbidden,
config, connection, server-error), the identity the server saw (user, groups, uid, extra) and
the namespace the server was asked about. Cases where kubectl itself is the odd one out say so.

Wire-level cases (plain http, proxies) put a recording server or proxy on loopback and compare
what each client sent there.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import pki, wire
from tests.e2e.conftest import REPO, Cluster

NAMESPACE_IN_MESSAGE = re.compile(r'in the namespace "([^"]+)"')
PLUGIN_V1 = "client.authentication.k8s.io/v1"
PLUGIN_V1BETA1 = "client.authentication.k8s.io/v1beta1"


@dataclasses.dataclass
class World:
    """Everything cases are made of: the server, its CA, users, and a scratch directory."""

    cluster: Cluster
    dir: Path
    server: str
    port: int
    ca: Path
    other_ca: Path
    admin_token: str
    restricted_token: str
    alice: pki.Pair  # CN=alice, O=devs, O=ops
    sa_token: str
    sa_namespace: str
    namespaces: tuple[str, str]

    @property
    def kubectl(self) -> str:
        return str(self.cluster.bin_dir / "kubectl")

    def cluster_entry(self, **extra: Any) -> dict[str, Any]:
        """The real server's cluster entry; `None` values drop a key."""
        entry = {"server": self.server, "certificate-authority": str(self.ca), **extra}
        return {k: v for k, v in entry.items() if v is not None}

    def plugin(self, name: str, status: str, version: str = PLUGIN_V1) -> str:
        """An exec credential plugin printing `status` (JSON) under apiVersion `version`."""
        path = self.dir / f"plugin-{name}"
        answer = {"apiVersion": version, "kind": "ExecCredential", "status": json.loads(status)}
        path.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(answer)}\nEOF\n")
        path.chmod(0o755)
        return str(path)


@dataclasses.dataclass
class Setup:
    env: dict[str, str]
    args: list[str]
    in_cluster: Path | None = None  # a directory standing in for /run (secrets/...)


@dataclasses.dataclass
class Case:
    id: str
    build: Callable[[World], Setup]
    namespace: bool = False
    # What the server must have seen, beyond kubectl and the plugin agreeing.
    expect: str = "ok"
    # Set when kubectl is the odd one out: why, and what each side does instead.
    kubectl_differs: str | None = None


def kubeconfig(
    w: World,
    name: str,
    users: dict[str, dict[str, Any]],
    contexts: dict[str, tuple[str, str, str | None]] | None = None,
    clusters: dict[str, dict[str, Any]] | None = None,
    current: str | None = "ctx",
    directory: Path | None = None,
) -> Path:
    """Writes a kubeconfig; by default one cluster `c` (the real server) and context `ctx`."""
    clusters = clusters if clusters is not None else {"c": w.cluster_entry()}
    contexts = contexts if contexts is not None else {"ctx": ("c", next(iter(users)), None)}
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": [
            {
                "name": n,
                "context": {"cluster": c, "user": u, **({"namespace": ns} if ns else {})},
            }
            for n, (c, u, ns) in contexts.items()
        ],
    }
    if current:
        doc["current-context"] = current
    path = (directory or w.dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def only(w: World, name: str, user: dict[str, Any], *args: str, **cluster: Any) -> Setup:
    """One kubeconfig with one user, passed with --kubeconfig."""
    path = kubeconfig(w, name, {"u": user}, clusters={"c": w.cluster_entry(**cluster)})
    return Setup({}, ["--kubeconfig", str(path), *args])


def admin(w: World) -> dict[str, Any]:
    return {"token": w.admin_token}


def restricted(w: World) -> dict[str, Any]:
    return {"token": w.restricted_token}


def alice_files(w: World) -> dict[str, Any]:
    return {"client-certificate": str(w.alice.cert), "client-key": str(w.alice.key)}


def alice_data(w: World) -> dict[str, Any]:
    return {
        "client-certificate-data": base64.b64encode(w.alice.cert.read_bytes()).decode(),
        "client-key-data": base64.b64encode(w.alice.key.read_bytes()).decode(),
    }


def exec_user(command: str, version: str = PLUGIN_V1, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"apiVersion": version, "command": command, **extra}
    if version == PLUGIN_V1 and "interactiveMode" not in extra:
        spec["interactiveMode"] = "Never"
    return {"exec": spec}


def two_files(w: World, first_current: str | None, second_current: str | None) -> Setup:
    a = kubeconfig(
        w, "list-a", {"r": restricted(w)}, contexts={"ctx-a": ("c", "r", None)},
        current=first_current,
    )  # fmt: skip
    b = kubeconfig(
        w, "list-b", {"adm": admin(w)}, contexts={"ctx-b": ("c", "adm", None)},
        current=second_current,
    )  # fmt: skip
    return Setup({"KUBECONFIG": f"{a}{os.pathsep}{b}"}, [])


def first_user_definition_wins(w: World) -> Setup:
    a = kubeconfig(w, "def-a", {"u": restricted(w)}, contexts={}, clusters={}, current=None)
    b = kubeconfig(w, "def-b", {"u": admin(w)})
    return Setup({"KUBECONFIG": f"{a}{os.pathsep}{b}"}, [])


def missing_file_in_list(w: World) -> Setup:
    b = kubeconfig(w, "present", {"u": restricted(w)})
    return Setup({"KUBECONFIG": f"{w.dir / 'absent'}{os.pathsep}{b}"}, [])


def home_config(w: World) -> Setup:
    home = w.dir / "home"
    kubeconfig(w, "config", {"u": restricted(w)}, directory=home / ".kube")
    return Setup({"HOME": str(home), "KUBECONFIG": ""}, [])


def many_contexts(w: World, *args: str) -> Setup:
    path = kubeconfig(
        w,
        "many",
        {"adm": admin(w), "r": restricted(w)},
        contexts={
            "ctx": ("c", "adm", None),
            "ctx-r": ("c", "r", w.namespaces[0]),
            "ctx-bad": ("bad", "adm", None),
        },
        clusters={
            "c": w.cluster_entry(),
            "bad": w.cluster_entry(**{"certificate-authority": str(w.other_ca)}),
            "noserver": {"certificate-authority": str(w.ca)},
        },
    )
    return Setup({}, ["--kubeconfig", str(path), *args])


def symlinked_relative_paths(w: World) -> Setup:
    """Relative paths resolve against the symlink's directory, where the files are."""
    target_dir = w.dir / "elsewhere"
    link_dir = w.dir / "linked"
    (link_dir / "pki").mkdir(parents=True, exist_ok=True)
    for src, dest in ((w.alice.cert, "pki/u.crt"), (w.alice.key, "pki/u.key"), (w.ca, "ca.crt")):
        (link_dir / dest).write_bytes(src.read_bytes())
    user = {"client-certificate": "pki/u.crt", "client-key": "pki/u.key"}
    clusters = {"c": {"server": w.server, "certificate-authority": "ca.crt"}}
    real = kubeconfig(w, "config", {"u": user}, clusters=clusters, directory=target_dir)
    link = link_dir / "config"
    if not link.exists():
        link.symlink_to(real)
    return Setup({}, ["--kubeconfig", str(link)])


def relative_token_file(w: World) -> Setup:
    directory = w.dir / "tokdir"
    directory.mkdir(exist_ok=True)
    (directory / "token").write_text(w.restricted_token)
    path = kubeconfig(w, "config", {"u": {"tokenFile": "token"}}, directory=directory)
    return Setup({}, ["--kubeconfig", str(path)])


def pod(w: World, *args: str, env: dict[str, str] | None = None, **files: str) -> Setup:
    """No kubeconfig; /run/secrets/kubernetes.io/serviceaccount holds a real token."""
    run = w.dir / "run"
    account = run / "secrets" / "kubernetes.io" / "serviceaccount"
    account.mkdir(parents=True, exist_ok=True)
    (account / "token").write_text(files.get("token", w.sa_token))
    (account / "ca.crt").write_bytes(w.ca.read_bytes())
    (account / "namespace").write_text(w.sa_namespace)
    base = {
        "HOME": str(w.dir / "nohome"),
        "KUBECONFIG": "",
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(w.port),
    }
    return Setup({**base, **(env or {})}, list(args), in_cluster=run)


def http_server_for(w: World) -> str:
    return w.server.replace("https://", "")  # no scheme: kubectl speaks plain http


CASES = [
    # -- kubeconfig files and KUBECONFIG lists -----------------------------------------------
    Case("kubeconfig-flag-token", lambda w: only(w, "a", admin(w))),
    Case("kubeconfig-list-context-in-second-file", lambda w: two_files(w, None, "ctx-b")),
    Case("kubeconfig-list-first-current-context-wins", lambda w: two_files(w, "ctx-a", "ctx-b")),
    Case("kubeconfig-list-first-user-definition-wins", first_user_definition_wins),
    Case("kubeconfig-list-missing-file-skipped", missing_file_in_list),
    Case("home-kube-config", home_config),
    Case(
        "kubeconfig-flag-missing-file",
        lambda w: Setup({}, ["--kubeconfig", str(w.dir / "nope")]),
        expect="config",
    ),
    Case("symlinked-kubeconfig-relative-paths", symlinked_relative_paths),
    Case("relative-token-file", relative_token_file),
    # -- context, cluster and user flags -----------------------------------------------------
    Case("context-flag", lambda w: many_contexts(w, "--context", "ctx-r"), namespace=True),
    Case("context-unknown", lambda w: many_contexts(w, "--context", "nope"), expect="config"),
    Case("user-flag", lambda w: many_contexts(w, "--user", "r")),
    Case("user-unknown", lambda w: many_contexts(w, "--user", "nope"), expect="config"),
    Case("cluster-flag-wrong-ca", lambda w: many_contexts(w, "--cluster", "bad"), expect="tls"),
    Case(
        "cluster-flag-without-server",
        lambda w: many_contexts(w, "--cluster", "noserver"),
        expect="config",
    ),
    Case(
        "cluster-flag-without-server-and-server-flag",
        lambda w: many_contexts(w, "--cluster", "noserver", "--server", w.server),
    ),
    # -- server, TLS and CA flags ------------------------------------------------------------
    Case(
        "server-flag",
        lambda w: only(w, "a", admin(w), "--server", w.server, server="https://127.0.0.1:1"),
    ),
    Case(
        "server-short-flag",
        lambda w: only(w, "a", admin(w), "-s", w.server, server="https://127.0.0.1:1"),
    ),
    Case(
        "server-flag-refused-port",
        lambda w: only(w, "a", admin(w), "--server", "https://127.0.0.1:1"),
        expect="connection",
    ),
    Case(
        "kubeconfig-wrong-ca",
        lambda w: only(w, "a", admin(w), **{"certificate-authority": str(w.other_ca)}),
        expect="tls",
    ),
    Case(
        "ca-flag-fixes-a-wrong-ca",
        lambda w: only(
            w,
            "a",
            admin(w),
            "--certificate-authority",
            str(w.ca),
            **{"certificate-authority": str(w.other_ca)},
        ),
    ),
    Case(
        "ca-flag-wrong",
        lambda w: only(w, "a", admin(w), "--certificate-authority", str(w.other_ca)),
        expect="tls",
    ),
    Case(
        "ca-flag-clears-kubeconfig-insecure",
        lambda w: only(
            w,
            "a",
            admin(w),
            "--certificate-authority",
            str(w.other_ca),
            **{"certificate-authority": None, "insecure-skip-tls-verify": True},
        ),
        expect="tls",  # verified against the (wrong) CA again: insecure was cleared
    ),
    Case(
        "ca-flag-with-insecure-flag",
        lambda w: only(
            w, "a", admin(w), "--certificate-authority", str(w.ca), "--insecure-skip-tls-verify"
        ),
        expect="config",
    ),
    Case(
        "kubeconfig-insecure",
        lambda w: only(
            w, "a", admin(w), **{"certificate-authority": None, "insecure-skip-tls-verify": True}
        ),
    ),
    Case(
        "kubeconfig-insecure-with-ca",
        lambda w: only(w, "a", admin(w), **{"insecure-skip-tls-verify": True}),
        expect="config",
    ),
    Case(
        "insecure-flag-over-wrong-ca",
        lambda w: only(
            w,
            "a",
            admin(w),
            "--insecure-skip-tls-verify",
            **{"certificate-authority": str(w.other_ca)},
        ),
    ),
    Case(
        "kubeconfig-tls-server-name",
        lambda w: only(w, "a", admin(w), **{"tls-server-name": "kubernetes.default.svc"}),
    ),
    Case(
        "kubeconfig-tls-server-name-wrong",
        lambda w: only(w, "a", admin(w), **{"tls-server-name": "wrong.example"}),
        expect="tls",
    ),
    Case(
        "tls-server-name-flag-wrong",
        lambda w: only(w, "a", admin(w), "--tls-server-name", "wrong.example"),
        expect="tls",
    ),
    Case(
        "server-flag-drops-tls-server-name",
        lambda w: only(
            w, "a", admin(w), "--server", w.server, **{"tls-server-name": "wrong.example"}
        ),
    ),
    Case(
        "server-flag-keeps-tls-server-name-flag",
        lambda w: only(
            w, "a", admin(w), "--server", w.server, "--tls-server-name", "wrong.example"
        ),
        expect="tls",
    ),
    Case(
        "bad-ca-pem",
        lambda w: only(w, "a", admin(w), **{"certificate-authority": str(w.alice.key)}),
        expect="config",
    ),
    Case(
        "server-without-scheme-is-plain-http",
        lambda w: only(w, "a", admin(w), "--server", http_server_for(w)),
        expect="server-error",  # the TLS port answers 400 to plain http
    ),
    # -- namespace -------------------------------------------------------------------------
    Case("namespace-default", lambda w: only(w, "a", admin(w)), namespace=True),
    Case("namespace-flag", lambda w: only(w, "a", admin(w), "-n", w.namespaces[1]), namespace=True),
    Case(
        "namespace-long-flag-over-context",
        lambda w: many_contexts(w, "--context", "ctx-r", "--namespace", w.namespaces[1]),
        namespace=True,
    ),
    # -- credentials -----------------------------------------------------------------------
    Case("token-flag", lambda w: only(w, "a", restricted(w), "--token", w.admin_token)),
    Case(
        "token-flag-bad", lambda w: only(w, "a", admin(w), "--token", "nope"), expect="unauthorized"
    ),
    Case(
        "token-flag-keeps-client-certificate",
        lambda w: only(w, "a", alice_files(w), "--token", w.restricted_token),
    ),
    Case("client-certificate-files", lambda w: only(w, "a", alice_files(w))),
    Case("client-certificate-data", lambda w: only(w, "a", alice_data(w))),
    Case(
        "token-file",
        lambda w: only(
            w,
            "a",
            {"tokenFile": str(Path(w.cluster.kubeconfig).parent / "pki" / "restricted.token")},
        ),
    ),
    Case(
        "basic-auth",
        lambda w: only(w, "a", {"username": "a", "password": "b"}),
        expect="unauthorized",
    ),
    Case(
        "token-with-basic-auth",
        lambda w: only(w, "a", {"token": w.admin_token, "username": "a", "password": "b"}),
        expect="config",
    ),
    Case(
        "exec-token",
        lambda w: only(
            w, "a", exec_user(w.plugin("tok", json.dumps({"token": w.restricted_token})))
        ),
    ),
    Case(
        "exec-client-certificate",
        lambda w: only(
            w,
            "a",
            exec_user(
                w.plugin(
                    "cert",
                    json.dumps(
                        {
                            "clientCertificateData": w.alice.cert.read_text(),
                            "clientKeyData": w.alice.key.read_text(),
                        }
                    ),
                )
            ),
        ),
    ),
    Case(
        "exec-v1beta1-without-interactive-mode",
        lambda w: only(
            w,
            "a",
            exec_user(
                w.plugin("beta", json.dumps({"token": w.restricted_token}), PLUGIN_V1BETA1),
                PLUGIN_V1BETA1,
            ),
        ),
    ),
    Case(
        "exec-v1-without-interactive-mode",
        lambda w: only(
            w,
            "a",
            {
                "exec": {
                    "apiVersion": PLUGIN_V1,
                    "command": w.plugin("v1", json.dumps({"token": w.restricted_token})),
                }
            },
        ),
        expect="config",
    ),
    Case(
        "exec-reply-of-another-api-version",
        lambda w: only(
            w,
            "a",
            exec_user(w.plugin("other", json.dumps({"token": w.restricted_token}), PLUGIN_V1BETA1)),
        ),
        expect="config",
    ),
    Case(
        "exec-malformed-reply",
        lambda w: only(w, "a", exec_user(w.plugin("empty", json.dumps({})))),
        expect="config",
    ),
    Case(
        "exec-missing-command",
        lambda w: only(w, "a", exec_user(str(w.dir / "absent"))),
        expect="config",
    ),
    Case(
        "token-before-exec",
        lambda w: only(w, "a", {**admin(w), **exec_user(str(w.dir / "absent"))}),
    ),
    Case(
        "client-certificate-before-exec",
        lambda w: only(w, "a", {**alice_files(w), **exec_user(str(w.dir / "absent"))}),
    ),
    # -- impersonation ---------------------------------------------------------------------
    Case("as-flag", lambda w: only(w, "a", admin(w), "--as", "jane")),
    Case(
        "as-flag-with-groups-and-uid",
        lambda w: only(
            w,
            "a",
            admin(w),
            "--as",
            "jane",
            "--as-group",
            "g1",
            "--as-group",
            "g2",
            "--as-uid",
            "u-1",
        ),
    ),
    Case("kubeconfig-as", lambda w: only(w, "a", {**admin(w), "as": "someone-else"})),
    Case(
        "kubeconfig-as-groups-uid-extra",
        lambda w: only(
            w,
            "a",
            {
                **admin(w),
                "as": "someone-else",
                "as-groups": ["x", "y"],
                "as-uid": "42",
                "as-user-extra": {"scopes": ["a", "b"]},
            },
        ),
    ),
    Case(
        "as-flag-over-kubeconfig-as",
        lambda w: only(
            w, "a", {**admin(w), "as": "someone-else", "as-groups": ["x"]}, "--as", "jane"
        ),
    ),
    Case(
        "as-group-without-as", lambda w: only(w, "a", admin(w), "--as-group", "g"), expect="config"
    ),
    Case(
        "as-without-impersonation-rights",
        lambda w: only(w, "a", restricted(w), "--as", "jane"),
        expect="forbidden",
    ),
    # -- environment -----------------------------------------------------------------------
    Case(
        "loopback-never-proxied",
        lambda w: Setup(
            {"HTTPS_PROXY": "http://127.0.0.1:1", "NO_PROXY": ""}, only(w, "a", admin(w)).args
        ),
    ),
    # -- in a pod, without a kubeconfig --------------------------------------------------------
    Case("in-cluster", pod, namespace=True),
    Case(
        "in-cluster-pod-namespace",
        lambda w: pod(w, env={"POD_NAMESPACE": w.namespaces[1]}),
        namespace=True,
    ),
    Case("in-cluster-namespace-flag", lambda w: pod(w, "-n", w.namespaces[0]), namespace=True),
    Case("in-cluster-token-flag", lambda w: pod(w, "--token", w.admin_token)),
    Case(
        "in-cluster-ca-flag-wrong",
        lambda w: pod(w, "--certificate-authority", str(w.other_ca)),
        expect="tls",
    ),
    Case("in-cluster-unknown-context", lambda w: pod(w, "--context", "nope"), expect="config"),
    Case(
        "in-cluster-as-flag",
        lambda w: pod(w, "--token", w.admin_token, "--as", "jane"),
        kubectl_differs=(
            "kubectl leaves the pod's cluster for http://localhost:8080 once --as is given (the"
            " flag makes its merged config differ from the default one, so it never falls back"
            " to in-cluster); the plugin impersonates on the pod's own cluster"
        ),
    ),
]


def _classify_kubectl(stderr: str) -> str:
    """kubectl's failure, in the probe's words (see connection_probe.outcome_of)."""
    text = stderr.lower()
    if "unable to connect to the server" in text or "dial tcp" in text:
        tls = any(word in text for word in ("x509", "tls:", "certificate"))
        return "tls" if tls else "connection"
    if "forbidden" in text:
        return "forbidden"
    if "unauthorized" in text or "must be logged in" in text:
        return "unauthorized"
    if "error from server" in text or "http request to an https server" in text:
        return "server-error"
    return "config"


def _run(
    setup: Setup, command: list[str], base_env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    env = {**base_env, **setup.env}
    if setup.in_cluster is not None:
        # A private mount namespace in which /run (= /var/run) is the stand-in directory.
        command = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /run && exec "$@"',
                   str(setup.in_cluster), *command]  # fmt: skip
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def through_kubectl(w: World, setup: Setup, namespace: bool) -> dict[str, Any]:
    done = _run(setup, [w.kubectl, "auth", "whoami", "-o", "json", *setup.args], w.cluster.env)
    if done.returncode != 0:
        return {"outcome": _classify_kubectl(done.stderr), "user": None, "namespace": None,
                "error": done.stderr.strip()}  # fmt: skip
    result: dict[str, Any] = {
        "outcome": "ok",
        "user": json.loads(done.stdout)["status"]["userInfo"],
        "namespace": None,
    }
    if namespace:
        got = _run(
            setup,
            [w.kubectl, "get", "configmap", "kube-root-ca.crt", "-o",
             "jsonpath={.metadata.namespace}", *setup.args],
            w.cluster.env,
        )  # fmt: skip
        if got.returncode == 0:
            result["namespace"] = got.stdout.strip()
        else:
            match = NAMESPACE_IN_MESSAGE.search(got.stderr)
            result["namespace"] = match.group(1) if match else None
    return result


def through_plugin(w: World, setup: Setup, namespace: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "tests.e2e.connection_probe", *setup.args]
    if namespace:
        command.append("--probe-namespace")
    done = _run(setup, command, {**w.cluster.env, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0 and done.stdout.strip(), done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def _comparable(result: dict[str, Any]) -> dict[str, Any]:
    user = result.get("user") or {}
    return {
        "outcome": result["outcome"],
        "username": user.get("username"),
        "uid": user.get("uid"),
        "groups": sorted(user.get("groups") or []),
        "extra": user.get("extra") or {},
        "namespace": result.get("namespace"),
    }


@pytest.fixture(scope="module")
def world(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("conformance")
    state = cluster.kubeconfig.parent
    local = yaml.safe_load(cluster.kubeconfig.read_text())
    server = local["clusters"][0]["cluster"]["server"]
    tokens = {u["name"]: u["user"]["token"] for u in local["users"]}
    ca = pki.Pair(state / "pki" / "ca.crt", state / "pki" / "ca.key")
    alice = pki.issue(ca, directory, "alice", subject="/CN=alice/O=devs/O=ops")
    other = pki.make_ca(directory / "other", "other-ca")
    namespaces = ("conf-a", "conf-b")
    for ns in namespaces:
        cluster.kubectl("create", "namespace", ns, check=False)
    cluster.kubectl("create", "serviceaccount", "robot", "-n", namespaces[0], check=False)
    sa_token = cluster.kubectl("create", "token", "robot", "-n", namespaces[0]).strip()
    for ns in namespaces:  # the controller-manager publishes kube-root-ca.crt in each
        cluster.kubectl("wait", "--for=create", "configmap/kube-root-ca.crt", "-n", ns,
                        "--timeout=60s")  # fmt: skip
    yield World(
        cluster=cluster, dir=directory, server=server, port=int(server.rsplit(":", 1)[1]),
        ca=ca.cert, other_ca=other.cert, admin_token=tokens["admin"],
        restricted_token=tokens["restricted"], alice=alice, sa_token=sa_token,
        sa_namespace=namespaces[0], namespaces=namespaces,
    )  # fmt: skip
    for ns in namespaces:
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_enough_cases() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_plugin_connects_as_kubectl_does(world: World, case: Case) -> None:
    setup = case.build(world)
    plugin = through_plugin(world, setup, case.namespace)
    assert plugin["outcome"] == case.expect, plugin
    if case.kubectl_differs:
        kubectl = through_kubectl(world, setup, case.namespace)
        assert _comparable(kubectl) != _comparable(plugin), (
            f"kubectl now agrees with the plugin; drop the note: {case.kubectl_differs}"
        )
        return
    kubectl = through_kubectl(world, setup, case.namespace)
    assert _comparable(plugin) == _comparable(kubectl), (plugin, kubectl)


# -- wire level: what reaches a recording server or proxy on loopback ----------------------------


def test_plain_http_carries_no_credentials(world: World) -> None:
    with wire.recorder() as server:
        plugin = world.plugin("wire", json.dumps({"token": "from-exec"}))
        user = {**admin(world), **exec_user(plugin), "as": "jane"}
        setup = only(world, "http", user, server=server.url)
        setup.args += ["--server", server.url]
        through_kubectl(world, setup, False)
        through_plugin(world, setup, False)
    posts = [s for s in server.seen if s.method == "POST"]
    assert len(posts) == 2, [(s.method, s.path) for s in server.seen]
    kubectl_seen, plugin_seen = posts
    for seen in (kubectl_seen, plugin_seen):
        assert seen.header("authorization") is None
        assert seen.header("impersonate-user") == "jane"


@pytest.mark.parametrize(
    ("env", "proxied"),
    [
        ({"HTTPS_PROXY": "http://127.0.0.1:{proxy}"}, True),
        ({"HTTPS_PROXY": "127.0.0.1:{proxy}"}, True),  # no scheme: http
        ({"https_proxy": "http://127.0.0.1:{proxy}", "NO_PROXY": "10.0.0.0/8"}, False),
        ({"HTTPS_PROXY": "http://127.0.0.1:{proxy}", "NO_PROXY": "10.255.0.1:{port}"}, False),
        ({"HTTPS_PROXY": "http://127.0.0.1:{proxy}", "NO_PROXY": "10.255.0.1:1"}, True),
    ],
    ids=["https-proxy", "no-scheme", "no-proxy-cidr", "no-proxy-host-port", "other-port"],
)
def test_environment_proxy(world: World, env: dict[str, str], proxied: bool) -> None:
    """A server at a remote address (10.255.0.1), reached through a CONNECT proxy on loopback."""
    with wire.HttpProxy(connect_to="127.0.0.1") as proxy:
        values = {k: v.format(proxy=proxy.port, port=world.port) for k, v in env.items()}
        remote = f"https://10.255.0.1:{world.port}"
        setup = only(world, "proxied", admin(world), "--request-timeout", "3s",
                     server=remote, **{"tls-server-name": "localhost"})  # fmt: skip
        setup.env.update(values)
        kubectl = through_kubectl(world, setup, False)
        after_kubectl = list(proxy.targets)
        plugin = through_plugin(world, setup, False)
    assert _comparable(plugin) == _comparable(kubectl), (plugin, kubectl)
    assert (plugin["outcome"] == "ok") is proxied
    expected = [f"10.255.0.1:{world.port}"] if proxied else []
    assert after_kubectl == expected
    assert proxy.targets[len(after_kubectl) :] == expected


def test_socks5_proxy_url(world: World) -> None:
    with wire.SocksProxy(connect_to="127.0.0.1") as socks:
        setup = only(
            world, "socks", admin(world), server=f"https://10.255.0.1:{world.port}",
            **{"tls-server-name": "localhost", "proxy-url": f"socks5://127.0.0.1:{socks.port}"},
        )  # fmt: skip
        kubectl = through_kubectl(world, setup, False)
        plugin = through_plugin(world, setup, False)
    assert plugin["outcome"] == "ok", plugin
    assert _comparable(plugin) == _comparable(kubectl)
    assert socks.targets == [f"10.255.0.1:{world.port}"] * 2
