"""TLS and credentials for one kubeconfig context, straight onto urllib3.

Why not the official Python client: importing `kubernetes` costs about 200 ms (its generated
models, requests and oauthlib), which alone would make every command several times slower than
kubectl, and its 1,000 files would be most of the krew archive. What a kubeconfig context needs
is small and well specified (client-go's `rest.Config`): a CA, a client certificate, a bearer
token or token file, basic auth, an `exec` credential plugin, a proxy, and the one legacy
`auth-provider` kubectl still has, `oidc` (module `api.oidc`, imported only for users who have
one). kubectl 1.26 removed the `gcp` and `azure` auth-providers in favour of exec plugins; a
user who still names one gets kubectl's advice.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import datetime
import functools
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import urllib3

from kubectl_omepvc import errors
from kubectl_omepvc.api import kubeconfig

if TYPE_CHECKING:
    from kubectl_omepvc.api.oidc import IdTokenSource

EXEC_API_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
)


class Transport:
    """A connection pool to one API server plus the Authorization header for it."""

    def __init__(
        self,
        server: str,
        pool: urllib3.PoolManager,
        authorization: Callable[[], str | None],
        on_unauthorized: Callable[[], bool] = lambda: False,
    ) -> None:
        self.server = server.rstrip("/")
        self.pool = pool
        self.authorization = authorization
        # Called after a 401; True when fresh credentials were obtained (worth one retry).
        self.on_unauthorized = on_unauthorized


_temp_dirs: list[str] = []


def _private_file(data: bytes, suffix: str) -> str:
    """Certificate or key bytes as a file readable only by us, removed at exit (ssl needs paths)."""
    if not _temp_dirs:
        _temp_dirs.append(tempfile.mkdtemp(prefix="kubectl-ome-pvc-"))
        atexit.register(shutil.rmtree, _temp_dirs[0], True)
    fd, path = tempfile.mkstemp(dir=_temp_dirs[0], suffix=suffix)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def _decode(data: str, what: str) -> bytes:
    try:
        return base64.b64decode("".join(str(data).split()), validate=True)
    except (binascii.Error, ValueError):
        raise errors.ConfigError(f"{what} in the kubeconfig is not valid base64") from None


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise errors.ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None


def ssl_context(
    cluster: Mapping[str, Any], cert: bytes | None, key: bytes | None
) -> ssl.SSLContext:
    """The TLS context for a kubeconfig cluster entry and an optional client certificate."""
    if cluster.get("insecure-skip-tls-verify"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cluster.get("certificate-authority-data"):
        cadata = _decode(cluster["certificate-authority-data"], "certificate-authority-data")
        context = ssl.create_default_context(cadata=cadata.decode("utf-8", "replace"))
    elif cluster.get("certificate-authority"):
        ca = cluster["certificate-authority"]
        _read(ca, "certificate-authority")  # a clear error for a missing file
        context = ssl.create_default_context(cafile=ca)
    else:
        context = ssl.create_default_context()
    if cert and key:
        try:
            context.load_cert_chain(_private_file(cert, ".crt"), _private_file(key, ".key"))
        except ssl.SSLError as exc:
            raise errors.ConfigError(
                f"the client certificate or key is not usable ({exc.reason})"
            ) from None
    return context


class ExecCredentials:
    """Runs a kubeconfig `exec` credential plugin and caches its answer until it expires."""

    def __init__(
        self, spec: Mapping[str, Any], cluster: Mapping[str, Any], environ: Mapping[str, str]
    ):
        self.spec = spec
        self.cluster = cluster
        self.environ = environ
        self.token: str | None = None
        self.cert: bytes | None = None
        self.key: bytes | None = None
        self.expires: float | None = None

    def _input(self) -> dict[str, Any]:
        interactive = (
            self.spec.get("interactiveMode", "IfAvailable") != "Never" and sys.stdin.isatty()
        )
        spec: dict[str, Any] = {"interactive": interactive}
        if self.spec.get("provideClusterInfo"):
            info: dict[str, Any] = {"server": self.cluster.get("server")}
            for key, name in (
                ("tls-server-name", "tls-server-name"),
                ("insecure-skip-tls-verify", "insecure-skip-tls-verify"),
                ("certificate-authority-data", "certificate-authority-data"),
                ("proxy-url", "proxy-url"),
                ("extensions", "config"),
            ):
                if self.cluster.get(key) is not None:
                    info[name] = self.cluster[key]
            spec["cluster"] = info
        return {
            "apiVersion": self.spec.get("apiVersion", EXEC_API_VERSIONS[0]),
            "kind": "ExecCredential",
            "spec": spec,
        }

    def refresh(self) -> None:
        command = self.spec.get("command")
        if not command:
            raise errors.ConfigError("the kubeconfig's exec plugin has no command")
        api_version = self.spec.get("apiVersion")
        if api_version not in EXEC_API_VERSIONS:
            raise errors.ConfigError(
                f"exec plugin apiVersion {api_version!r} is not supported",
                f"use one of {', '.join(EXEC_API_VERSIONS)}",
            )
        env = dict(self.environ)
        for item in self.spec.get("env") or []:
            env[str(item.get("name"))] = str(item.get("value", ""))
        env["KUBERNETES_EXEC_INFO"] = json.dumps(self._input())
        interactive = self.spec.get("interactiveMode", "IfAvailable") != "Never"
        try:
            done = subprocess.run(
                [command, *(self.spec.get("args") or [])],
                env=env,
                stdin=None if interactive and sys.stdin.isatty() else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                check=False,
            )
        except OSError as exc:
            hint = self.spec.get("installHint") or "install it or fix the kubeconfig's exec command"
            raise errors.ConfigError(
                f"cannot run exec credential plugin {command!r} ({exc.strerror})",
                str(hint).strip().splitlines()[0],
            ) from None
        if done.returncode != 0:
            raise errors.ConfigError(
                f"exec credential plugin {command!r} failed with exit code {done.returncode}"
            )
        try:
            answer = json.loads(done.stdout)
            status = answer["status"]
        except (ValueError, KeyError, TypeError):
            raise errors.ConfigError(
                f"exec credential plugin {command!r} did not print an ExecCredential"
            ) from None
        self.token = status.get("token")
        cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
        self.cert = cert.encode() if cert else None
        self.key = key.encode() if key else None
        if not self.token and not (self.cert and self.key):
            raise errors.ConfigError(f"exec credential plugin {command!r} returned no credentials")
        self.expires = _parse_time(status.get("expirationTimestamp"))

    def fresh(self) -> None:
        if self.expires is not None and time.time() >= self.expires - 10:
            self.refresh()


def _parse_time(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _pool(
    cluster: Mapping[str, Any], context: ssl.SSLContext, environ: Mapping[str, str]
) -> urllib3.PoolManager:
    options: dict[str, Any] = {"ssl_context": context, "retries": False, "maxsize": 8}
    if cluster.get("tls-server-name"):
        options["server_hostname"] = cluster["tls-server-name"]
        options["assert_hostname"] = cluster["tls-server-name"]
    if cluster.get("insecure-skip-tls-verify"):
        options["cert_reqs"] = "CERT_NONE"
        options["assert_hostname"] = False
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    proxy = cluster.get("proxy-url") or _environment_proxy(str(cluster.get("server", "")), environ)
    if proxy:
        if not str(proxy).startswith(("http://", "https://")):
            raise errors.ConfigError(
                f"proxy {proxy} is not supported (only http and https proxies)"
            )
        return urllib3.ProxyManager(str(proxy), **options)
    return urllib3.PoolManager(**options)


def _environment_proxy(server: str, environ: Mapping[str, str]) -> str | None:
    """HTTPS_PROXY/NO_PROXY, as Go's http.ProxyFromEnvironment reads them for an https server."""
    from urllib.parse import urlsplit

    host = urlsplit(server).hostname or ""
    proxy = environ.get("HTTPS_PROXY") or environ.get("https_proxy")
    if not proxy or host in ("localhost", "127.0.0.1", "::1"):
        return None
    no_proxy = environ.get("NO_PROXY") or environ.get("no_proxy") or ""
    for entry in (e.strip() for e in no_proxy.split(",")):
        if entry == "*" or (
            entry and (host == entry.lstrip(".") or host.endswith("." + entry.lstrip(".")))
        ):
            return None
    return proxy


# Auth-providers kubectl 1.26 removed, and the exec plugin it tells their users to switch to.
REMOVED_AUTH_PROVIDERS = {
    "gcp": (
        "gke-gcloud-auth-plugin",
        "`gcloud components install gke-gcloud-auth-plugin`, then"
        " `gcloud container clusters get-credentials CLUSTER`",
    ),
    "azure": ("kubelogin", "install Azure's kubelogin, then `kubelogin convert-kubeconfig`"),
}


def _id_tokens(
    provider: Any, environ: Mapping[str, str], origin: kubeconfig.UserOrigin | None
) -> IdTokenSource:
    """The `oidc` auth-provider's token source; any other provider is a ConfigError."""
    name = str(provider.get("name") or "") if isinstance(provider, Mapping) else ""
    if name in REMOVED_AUTH_PROVIDERS:
        plugin, how = REMOVED_AUTH_PROVIDERS[name]
        raise errors.ConfigError(
            f'the "{name}" auth-provider was removed in kubectl 1.26;'
            f" use the {plugin} exec credential plugin instead",
            how,
        )
    if name != "oidc":
        raise errors.ConfigError(
            f'auth-provider "{name}" is not supported (kubectl supports only "oidc")',
            "switch the kubeconfig user to an exec credential plugin",
        )
    from kubectl_omepvc.api import oidc

    config = provider.get("config") or {}
    if not isinstance(config, Mapping):
        raise errors.ConfigError("the kubeconfig's oidc auth-provider config is not a mapping")
    issuer = {"server": str(config.get(oidc.ISSUER_URL) or "")}

    def idp_pool() -> urllib3.PoolManager:
        return _pool(issuer, oidc.idp_ssl_context(config), environ)

    persist = None
    if origin is not None:
        persist = functools.partial(kubeconfig.persist_auth_provider_config, origin)
    return oidc.IdTokenSource(config, pool_factory=idp_pool, persist=persist)


def from_kubeconfig(
    config: Mapping[str, Any],
    environ: Mapping[str, str],
    user_origin: kubeconfig.UserOrigin | None = None,
) -> Transport:
    """A transport for the single cluster/user/context left by `kubeconfig.resolve`.

    `user_origin` is where the user is defined; an `oidc` auth-provider saves refreshed tokens
    there (without it they live only as long as this process).
    """
    cluster: dict[str, Any] = dict(config["clusters"][0]["cluster"])
    user: dict[str, Any] = dict(config["users"][0]["user"])
    server = str(cluster.get("server") or "")
    if not server.startswith(("https://", "http://")):
        server = "https://" + server

    id_tokens: IdTokenSource | None = None
    if user.get("auth-provider"):
        if user.get("exec"):
            raise errors.ConfigError(
                "the kubeconfig user has both an auth-provider and an exec plugin",
                "keep only one of them",
            )
        id_tokens = _id_tokens(user["auth-provider"], environ, user_origin)

    cert = key = None
    if user.get("client-certificate-data"):
        cert = _decode(user["client-certificate-data"], "client-certificate-data")
    elif user.get("client-certificate"):
        cert = _read(user["client-certificate"], "client-certificate")
    if user.get("client-key-data"):
        key = _decode(user["client-key-data"], "client-key-data")
    elif user.get("client-key"):
        key = _read(user["client-key"], "client-key")

    exec_credentials: ExecCredentials | None = None
    if user.get("exec"):
        exec_credentials = ExecCredentials(user["exec"], cluster, environ)
        exec_credentials.refresh()
        if exec_credentials.cert and exec_credentials.key:
            cert, key = exec_credentials.cert, exec_credentials.key

    pool = _pool(cluster, ssl_context(cluster, cert, key), environ)
    token = user.get("token")
    token_file = user.get("tokenFile")
    basic = None
    if user.get("username") and user.get("password"):
        pair = f"{user['username']}:{user['password']}".encode()
        basic = "Basic " + base64.b64encode(pair).decode()

    def authorization() -> str | None:
        if id_tokens is not None:
            # client-go's oidc wrapper sets the header before any token or basic auth.
            return f"Bearer {id_tokens.token()}"
        if exec_credentials is not None:
            exec_credentials.fresh()
            if exec_credentials.token:
                return f"Bearer {exec_credentials.token}"
        if token:
            return f"Bearer {token}"
        if token_file:
            return f"Bearer {_read(token_file, 'tokenFile').decode().strip()}"
        return basic

    def on_unauthorized() -> bool:
        # client-go re-runs an exec plugin once when the server rejects a cached token; its
        # oidc provider has no such hook (the id-token is only renewed once it expires).
        if exec_credentials is None or not exec_credentials.token:
            return False
        exec_credentials.refresh()
        return True

    return Transport(server, pool, authorization, on_unauthorized)


def in_cluster(environ: Mapping[str, str]) -> Transport:
    """The pod's service account, as kubectl uses it when no kubeconfig exists."""
    host = environ.get("KUBERNETES_SERVICE_HOST", "")
    port = environ.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host:
        host = f"[{host}]"
    cluster = {
        "server": f"https://{host}:{port}",
        "certificate-authority": str(kubeconfig.SERVICE_ACCOUNT_DIR / "ca.crt"),
    }
    pool = _pool(cluster, ssl_context(cluster, None, None), environ)

    def authorization() -> str:
        # Bound service-account tokens rotate on disk; read the current one each time.
        return (
            "Bearer "
            + _read(str(kubeconfig.SERVICE_ACCOUNT_DIR / "token"), "service-account token")
            .decode()
            .strip()
        )

    return Transport(cluster["server"], pool, authorization)
