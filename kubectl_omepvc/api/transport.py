"""TLS and credentials for one kubeconfig context, straight onto urllib3, as client-go does it.

Why not the official Python client: importing `kubernetes` costs about 200 ms (its generated
models, requests and oauthlib), which alone would make every command several times slower than
kubectl, and its 1,000 files would be most of the krew archive. What a kubeconfig context needs
is small and well specified (client-go's `rest.Config`): a CA, a client certificate, a bearer
token or token file, basic auth, an `exec` credential plugin (`api.execplugin`), a proxy
(`api.proxy`), and the one legacy `auth-provider` kubectl still has, `oidc` (`api.oidc`,
imported only for users who have one). kubectl 1.26 removed the `gcp` and `azure`
auth-providers in favour of exec plugins; a user who still names one gets kubectl's advice.

client-go's rules kept here:
- A server without a scheme is `http://`. Over plain http nothing of the user is used: no token,
  no basic auth, no exec plugin, no oidc (impersonation headers are still sent).
- Credentials, first match wins: a token (`token`, else `tokenFile`), basic auth (with a token:
  refused), then the exec plugin, which runs only when there is no token, basic auth or client
  certificate, or the oidc provider, whose token is not sent when a token or basic auth is.
- A client key is never written to disk (a memory file; elsewhere a temp file removed at once).
- A client certificate that an exec plugin renews replaces the connection pool; the old pool's
  connections are closed, as client-go's connection tracker closes them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import os
import signal
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import urllib3

from kubectl_omepvc import errors
from kubectl_omepvc.api import execplugin, kubeconfig, proxy

if TYPE_CHECKING:
    from kubectl_omepvc.api.oidc import IdTokenSource

PoolFactory = Callable[[bytes | None], urllib3.PoolManager]


class Transport:
    """A connection pool to one API server plus the headers that authenticate to it.

    `connect()` gives the pool for the current client certificate, the Authorization header and
    a marker of the credentials used; after a 401, `unauthorized(marker)` renews them once.
    """

    def __init__(
        self,
        server: str,
        make_pool: PoolFactory,
        authorization: Callable[[execplugin.Credential | None], str | None] = lambda _: None,
        *,
        client_cert: Callable[[execplugin.Credential | None], bytes | None] = lambda _: None,
        exec_credentials: execplugin.ExecCredentials | None = None,
        impersonation: list[tuple[str, str]] | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.make_pool = make_pool
        self.authorization = authorization
        self.client_cert = client_cert
        self.exec_credentials = exec_credentials
        self.impersonation = impersonation or []
        self._pool: urllib3.PoolManager | None = None
        self._pool_cert: bytes | None = None
        self._lock = threading.Lock()

    @property
    def pool(self) -> urllib3.PoolManager:
        return self._pool_for(self.client_cert(self._exec_credential()))

    def _exec_credential(self) -> execplugin.Credential | None:
        return self.exec_credentials.credential() if self.exec_credentials else None

    def _pool_for(self, cert: bytes | None) -> urllib3.PoolManager:
        """The pool for the client certificate in force; a new one when it was rotated."""
        with self._lock:
            if self._pool is None or cert != self._pool_cert:
                old, self._pool, self._pool_cert = self._pool, self.make_pool(cert), cert
                if old is not None:
                    old.clear()  # idle connections close now, busy ones when released
            return self._pool

    def connect(self) -> tuple[urllib3.PoolManager, str | None, object]:
        used = self._exec_credential()  # one answer for both the certificate and the header
        return self._pool_for(self.client_cert(used)), self.authorization(used), used

    def unauthorized(self, used: object) -> bool:
        """After a 401: True when the exec plugin gave new credentials (worth one retry)."""
        if self.exec_credentials is None or not isinstance(used, execplugin.Credential):
            return False
        return self.exec_credentials.after_unauthorized(used)


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


def _data_or_file(entry: Mapping[str, Any], key: str) -> bytes | None:
    """`<key>-data` (base64) before `<key>` (a file), as client-go's dataFromSliceOrFile."""
    if entry.get(f"{key}-data"):
        return _decode(entry[f"{key}-data"], f"{key}-data")
    if entry.get(key):
        return _read(str(entry[key]), key)
    return None


_FATAL_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")
    if hasattr(signal, name)
)


@contextlib.contextmanager
def _key_file(pem: bytes) -> Iterator[str]:
    """A path from which OpenSSL can read `pem` once, leaving nothing on disk.

    Linux: an anonymous memory file. Elsewhere: a private temp file, removed before anything
    else runs, with termination signals held back meanwhile so a SIGTERM cannot strand it.
    """
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("kubectl-ome-pvc-client-key", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, pem)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is not None:
        mask(signal.SIG_BLOCK, _FATAL_SIGNALS)
    try:
        fd, path = tempfile.mkstemp(prefix="kubectl-ome-pvc-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
            yield path
        finally:
            os.unlink(path)
    finally:
        if mask is not None:
            mask(signal.SIG_UNBLOCK, _FATAL_SIGNALS)


def ssl_context(
    cluster: Mapping[str, Any], ca: bytes | None, cert_pem: bytes | None
) -> ssl.SSLContext:
    """TLS for a cluster entry: its CA (else the system's) and an optional client certificate."""
    if cluster.get("insecure-skip-tls-verify"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            context.load_verify_locations(cadata=ca.decode("ascii", "replace"))
        except (ssl.SSLError, ValueError) as exc:
            raise errors.ConfigError(
                f"unable to load root certificates ({_ssl_reason(exc)})",
                "certificate-authority must be PEM certificates; fix the kubeconfig or the flag",
            ) from None
    else:
        context = ssl.create_default_context()
    if cert_pem:
        try:
            with _key_file(cert_pem) as path:
                context.load_cert_chain(path)
        except (ssl.SSLError, ValueError) as exc:
            raise errors.ConfigError(
                f"the client certificate or key is not usable ({_ssl_reason(exc)})",
                "check client-certificate and client-key in the kubeconfig",
            ) from None
    return context


def _ssl_reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", None) or exc).splitlines()[0][:120]


def _pool(
    cluster: Mapping[str, Any], context: ssl.SSLContext | None, environ: Mapping[str, str]
) -> urllib3.PoolManager:
    options: dict[str, Any] = {"ssl_context": context, "retries": False, "maxsize": 8}
    if cluster.get("tls-server-name"):
        options["server_hostname"] = cluster["tls-server-name"]
        options["assert_hostname"] = cluster["tls-server-name"]
    if cluster.get("insecure-skip-tls-verify"):
        options["cert_reqs"] = "CERT_NONE"
        options["assert_hostname"] = False
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    via = proxy.for_server(
        str(cluster.get("server") or ""), cluster.get("proxy-url") or None, environ
    )
    if via is None:
        return urllib3.PoolManager(**options)
    if via.startswith("socks5"):
        return proxy.socks_manager(via, **options)
    return urllib3.ProxyManager(via, **options)


def _escape_header_key(key: str) -> str:
    """client-go's headerKeyEscape: bytes not legal in a header name (and `%`) as %XX."""
    legal = set(b"!#$&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return "".join(chr(b) if b in legal else f"%{b:02X}" for b in key.encode())


def impersonation_headers(user: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The user's `as`, `as-uid`, `as-groups` and `as-user-extra` as Impersonate-* headers."""
    headers: list[tuple[str, str]] = []
    if user.get("as"):
        headers.append(("Impersonate-User", str(user["as"])))
    if user.get("as-uid"):
        headers.append(("Impersonate-Uid", str(user["as-uid"])))
    headers += [("Impersonate-Group", str(g)) for g in user.get("as-groups") or []]
    extra = user.get("as-user-extra") or {}
    for key, values in extra.items() if isinstance(extra, Mapping) else []:
        for value in values if isinstance(values, list) else [values]:
            headers.append((f"Impersonate-Extra-{_escape_header_key(str(key))}", str(value)))
    return headers


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
    stdin_is_terminal: Callable[[], bool] | None = None,
) -> Transport:
    """A transport for the single cluster/user/context left by `kubeconfig.resolve`.

    `user_origin` is where the user is defined; an `oidc` auth-provider saves refreshed tokens
    there (without it they live only as long as this process).
    """
    cluster: dict[str, Any] = dict(config["clusters"][0]["cluster"])
    user: dict[str, Any] = dict(config["users"][0]["user"])
    server = str(cluster.get("server") or "")
    if "://" not in server:
        server = "http://" + server  # client-go's default scheme when no TLS is configured
    cluster["server"] = server
    impersonation = impersonation_headers(user)
    if not server.lower().startswith("https://"):
        # client-go reads the user's credentials and TLS settings only for an https server.
        plain = _pool(cluster, None, environ)  # no TLS: no CAs to load
        return Transport(server, lambda _cert: plain, impersonation=impersonation)

    if cluster.get("insecure-skip-tls-verify") and (
        cluster.get("certificate-authority") or cluster.get("certificate-authority-data")
    ):
        raise errors.ConfigError(
            "specifying a root certificates file with the insecure flag is not allowed",
            "drop --insecure-skip-tls-verify or the certificate-authority",
        )
    ca = _data_or_file(cluster, "certificate-authority")
    cert, key = _data_or_file(user, "client-certificate"), _data_or_file(user, "client-key")
    static_cert = cert + b"\n" + key if cert and key else None

    token, token_file = user.get("token"), user.get("tokenFile")
    basic = None
    if user.get("username") or user.get("password"):
        if token or token_file:
            raise errors.ConfigError(
                "the kubeconfig user has both a token and a username/password",
                "keep only one way to authenticate",
            )
        pair = f"{user.get('username') or ''}:{user.get('password') or ''}".encode()
        basic = "Basic " + base64.b64encode(pair).decode()
    if user.get("auth-provider") and user.get("exec"):
        raise errors.ConfigError(
            "the kubeconfig user has both an auth-provider and an exec plugin",
            "keep only one of them",
        )
    id_tokens = (
        _id_tokens(user["auth-provider"], environ, user_origin)
        if user.get("auth-provider")
        else None
    )
    exec_credentials = None
    if user.get("exec") and not (token or token_file or basic or static_cert):
        spec = user["exec"]
        info = execplugin.cluster_info(cluster, ca) if spec.get("provideClusterInfo") else None
        exec_credentials = execplugin.ExecCredentials(
            spec, info, environ, *([stdin_is_terminal] if stdin_is_terminal else [])
        )

    def authorization(answer: execplugin.Credential | None) -> str | None:
        if token:
            return f"Bearer {token}"
        if token_file:
            return f"Bearer {_read(token_file, 'tokenFile').decode().strip()}"
        if basic:
            return basic
        if answer is not None:
            return f"Bearer {answer.token}" if answer.token else None
        if id_tokens is not None:
            return f"Bearer {id_tokens.token()}"
        return None

    def client_cert(answer: execplugin.Credential | None) -> bytes | None:
        return answer.cert_pem if answer is not None else static_cert

    return Transport(
        server,
        lambda pem: _pool(cluster, ssl_context(cluster, ca, pem), environ),
        authorization,
        client_cert=client_cert,
        exec_credentials=exec_credentials,
        impersonation=impersonation,
    )
