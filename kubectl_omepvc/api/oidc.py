"""kubectl's `oidc` auth-provider: the kubeconfig's id-token, renewed at the IdP once it expires.

What client-go (plugin/pkg/client/auth/oidc) does, and so what we do:
- `idp-issuer-url` and `client-id` are required, even while the id-token is still good.
- The id-token is used while its JWT `exp` claim (read without checking the signature: the
  API server checks it) is more than 10 s away. One we cannot read counts as expired (client-go
  fails on it; refreshing is kinder and asks the IdP nothing it would not be asked anyway).
- Otherwise the refresh-token is sent to the `token_endpoint` named by the issuer's
  `/.well-known/openid-configuration`, as golang.org/x/oauth2 sends it: a form POST with
  `grant_type=refresh_token`, the client id and secret first as HTTP Basic auth and, if that is
  refused, once more as form fields. `extra-scopes` is not sent (client-go ignores it too).
- The answer must carry an `id_token`; a new `refresh_token`, when there is one, replaces ours.
- The new tokens are persisted (the caller says where), so an IdP that rotates refresh-tokens
  does not leave a spent one in the user's kubeconfig.
- TLS to the IdP trusts `idp-certificate-authority-data`, else `idp-certificate-authority`, else
  the system's CAs. A 401 from the API server is not retried with a new token.
"""

from __future__ import annotations

import base64
import binascii
import json
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode

import urllib3

from kubectl_omepvc import errors

ISSUER_URL = "idp-issuer-url"
CLIENT_ID = "client-id"
CLIENT_SECRET = "client-secret"
ID_TOKEN = "id-token"
REFRESH_TOKEN = "refresh-token"
CA_FILE = "idp-certificate-authority"
CA_DATA = "idp-certificate-authority-data"

# An id-token this close to its expiry counts as expired (client-go's margin for clock skew).
EXPIRY_MARGIN = 10.0
IDP_TIMEOUT = 30.0
LOGIN_AGAIN = "log in again with your OIDC login tool to get new tokens"

Persist = Callable[[dict[str, str]], None]


def id_token_expiry(id_token: str) -> float | None:
    """The `exp` claim of a JWT in seconds since the epoch, or None when there is none to read."""
    parts = id_token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError):
        return None
    expiry = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(expiry, bool) or not isinstance(expiry, int | float):
        return None
    return float(expiry)


def idp_ssl_context(config: Mapping[str, Any]) -> ssl.SSLContext:
    """TLS to the IdP: its own CA from the auth-provider config when given, else the system's."""
    data = config.get(CA_DATA)
    path = config.get(CA_FILE)
    try:
        if data:
            pem = base64.b64decode("".join(str(data).split()), validate=True)
            return ssl.create_default_context(cadata=pem.decode("utf-8", "replace"))
        if path:
            return ssl.create_default_context(cafile=str(path))
    except (binascii.Error, ValueError):
        raise errors.ConfigError(f"{CA_DATA} in the kubeconfig is not valid base64") from None
    except ssl.SSLError as exc:
        what = CA_DATA if data else f"{CA_FILE} {path}"
        raise errors.ConfigError(f"{what} holds no usable certificate ({exc.reason})") from None
    except OSError as exc:
        raise errors.ConfigError(f"cannot read {CA_FILE} {path}: {exc.strerror}") from None
    return ssl.create_default_context()


class IdTokenSource:
    """The current id-token of one kubeconfig user, refreshed when needed (thread-safe)."""

    def __init__(
        self,
        config: Mapping[str, Any],
        pool_factory: Callable[[], urllib3.PoolManager] | None = None,
        persist: Persist | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.config = {str(k): str(v) for k, v in config.items() if v is not None}
        for key in (ISSUER_URL, CLIENT_ID):
            if not self.config.get(key):
                raise errors.ConfigError(
                    f"the kubeconfig's oidc auth-provider has no {key}",
                    f"add it: `kubectl config set-credentials USER --auth-provider-arg={key}=...`",
                )
        self.issuer = self.config[ISSUER_URL]
        # The pool (and its TLS context, ~25 ms of loading CAs) is made only when refreshing.
        self.pool_factory = pool_factory or (
            lambda: urllib3.PoolManager(ssl_context=idp_ssl_context(self.config))
        )
        self.pool: urllib3.PoolManager | None = None
        self.persist = persist
        self.now = now
        self._lock = threading.Lock()

    def token(self) -> str:
        """The id-token to send as the bearer token."""
        with self._lock:
            id_token = self.config.get(ID_TOKEN, "")
            expiry = id_token_expiry(id_token) if id_token else None
            if expiry is not None and self.now() + EXPIRY_MARGIN < expiry:
                return id_token
            refresh_token = self.config.get(REFRESH_TOKEN, "")
            if not refresh_token:
                if not id_token:
                    state = "has no id-token"
                elif expiry is None:
                    state = "has an id-token that is not a JWT with an expiry"
                else:
                    state = "has an expired id-token"
                raise errors.ConfigError(
                    f"the kubeconfig's oidc auth-provider {state} and no refresh-token",
                    LOGIN_AGAIN,
                )
            return self._refresh(refresh_token)

    def _refresh(self, refresh_token: str) -> str:
        answer = self._token_request(self._token_endpoint(), refresh_token)
        id_token = answer.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise errors.ConfigError(
                f"the OIDC issuer {self.issuer} answered the refresh without an id_token",
                'the login must request the "openid" scope, and the IdP must return id_tokens'
                " on refresh",
            )
        tokens = {ID_TOKEN: id_token, REFRESH_TOKEN: refresh_token}
        rotated = answer.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            tokens[REFRESH_TOKEN] = rotated
        if self.persist is not None:
            self.persist(tokens)
        self.config.update(tokens)
        return id_token

    def _token_endpoint(self) -> str:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        response = self._send("GET", url, None, {})
        if response.status != 200:
            raise errors.ConfigError(
                f"OIDC discovery at {url} failed with HTTP {response.status}",
                f"check {ISSUER_URL} in the kubeconfig",
            )
        try:
            endpoint = json.loads(response.data).get("token_endpoint")
        except (ValueError, AttributeError):
            endpoint = None
        if not isinstance(endpoint, str) or not endpoint:
            raise errors.ConfigError(
                f"OIDC discovery at {url} did not name a token_endpoint",
                f"check {ISSUER_URL} in the kubeconfig",
            )
        return endpoint

    def _token_request(self, url: str, refresh_token: str) -> dict[str, Any]:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        client_id, secret = self.config[CLIENT_ID], self.config.get(CLIENT_SECRET, "")
        pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
        in_header = {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        answer, failure = self._post_form(url, form, in_header)
        if failure is None:
            return answer
        # oauth2's probe: some IdPs want the client credentials as form fields instead.
        in_params = {**form, "client_id": client_id}
        if secret:
            in_params["client_secret"] = secret
        answer, failure = self._post_form(url, in_params, {})
        if failure is None:
            return answer
        raise errors.ConfigError(
            f"the OIDC issuer {self.issuer} refused to refresh the id-token ({failure})",
            LOGIN_AGAIN,
        )

    def _post_form(
        self, url: str, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> tuple[dict[str, Any], str | None]:
        """The token answer and, when the IdP refused, a one-line reason."""
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        response = self._send("POST", url, urlencode(form).encode(), headers)
        answer = _token_answer(response)
        code = answer.get("error")
        if 200 <= response.status < 300 and not code:
            return answer, None
        reason = f"HTTP {response.status}"
        if code:
            reason += f", {code}"
            if answer.get("error_description"):
                reason += f": {answer['error_description']}"
        return answer, _one_line(reason)

    def _send(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> urllib3.BaseHTTPResponse:
        if self.pool is None:
            self.pool = self.pool_factory()
        try:
            return self.pool.request(
                method,
                url,
                body=body,
                headers=dict(headers),
                # Like Go's http.Client: follow redirects on GET, never retry.
                retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=5)
                if method == "GET"
                else False,
                timeout=urllib3.Timeout(total=IDP_TIMEOUT),
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
            if isinstance(reason, urllib3.exceptions.SSLError | ssl.SSLError):
                raise errors.ConnectionFailed(
                    f"TLS handshake with the OIDC issuer {self.issuer} failed ({_short(reason)})",
                    f"check {CA_DATA} or {CA_FILE} in the kubeconfig",
                ) from None
            raise errors.ConnectionFailed(
                f"cannot reach the OIDC issuer {self.issuer} ({_short(reason)})",
                f"check the network and {ISSUER_URL} in the kubeconfig",
            ) from None


def _token_answer(response: urllib3.BaseHTTPResponse) -> dict[str, Any]:
    """A token endpoint's answer: JSON, or a query string as some IdPs send (oauth2 reads both)."""
    content_type = str(response.headers.get("Content-Type", "")).split(";")[0].strip().lower()
    text = response.data.decode("utf-8", "replace")
    if content_type in ("application/x-www-form-urlencoded", "text/plain"):
        return dict(parse_qsl(text))
    try:
        decoded = json.loads(text)
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _short(exc: BaseException | None) -> str:
    text = str(exc)
    # urllib3 prefixes "<connection object at 0x...>: Failed to establish...": keep the errno part.
    if "[Errno" in text:
        text = text[text.index("[Errno") :]
    return _one_line(text)
