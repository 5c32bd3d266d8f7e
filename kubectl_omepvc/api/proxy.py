"""Which proxy a request goes through, by Go's rules (golang.org/x/net/http/httpproxy).

kubectl takes its proxy from the cluster's `proxy-url` (used for every request, NO_PROXY
ignored), else from the environment as Go's `http.ProxyFromEnvironment` reads it:
- `HTTPS_PROXY` (then `https_proxy`) for an https server, `HTTP_PROXY` (then `http_proxy`) for
  an http one; a value without a scheme means `http://`.
- never for `localhost` or a loopback address, whatever NO_PROXY says;
- `NO_PROXY` (then `no_proxy`), comma-separated: `*` (nothing is proxied), a CIDR (`10.0.0.0/8`),
  an IP, `host:port` or `ip:port` (only that port), a domain (`example.com`: it and its
  subdomains), `.example.com` or `*.example.com` (its subdomains only).
A `socks5://` (or `socks5h://`) proxy is dialled here (`SocksManager`); names are resolved
by the proxy, as Go's SOCKS dialer leaves them to it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import urllib3
import urllib3.connection

from kubectl_omepvc import errors

SCHEMES = ("http", "https", "socks5", "socks5h")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _env(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name.upper()) or environ.get(name.lower()) or ""


def parse_proxy(value: str) -> str:
    """A proxy setting as a URL; Go reads `host:port` as `http://host:port`."""
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        value = "http://" + value
        parts = urlsplit(value)
    if parts.scheme not in SCHEMES:
        raise errors.ConfigError(
            f"proxy {value} has an unsupported scheme {parts.scheme!r}",
            f"use one of {', '.join(SCHEMES)}",
        )
    return value


def _split_host_port(entry: str) -> tuple[str, str]:
    """Go's net.SplitHostPort, or (entry, "") when it has no port."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else ""
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, port
    return entry, ""


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def bypassed(host: str, port: str, no_proxy: str) -> bool:
    """True when NO_PROXY (or loopback) says the request to host:port goes direct."""
    host = host.lower().strip("[]")
    ip = _ip(host)
    if host == "localhost" or (ip is not None and ip.is_loopback):
        return True
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            try:
                if ip is not None and ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        phost, pport = _split_host_port(entry)
        if not phost:
            continue
        pip = _ip(phost)
        if pip is not None:
            if ip is not None and ip == pip and pport in ("", port):
                return True
            continue
        if phost.startswith("*."):
            phost = phost[1:]
        match_host = not phost.startswith(".")
        suffix = phost if phost.startswith(".") else "." + phost
        if (host.endswith(suffix) or (match_host and host == suffix[1:])) and pport in ("", port):
            return True
    return False


def for_server(server: str, proxy_url: str | None, environ: Mapping[str, str]) -> str | None:
    """The proxy URL for requests to `server`, or None to connect directly."""
    if proxy_url:
        return parse_proxy(proxy_url)
    parts = urlsplit(server)
    scheme = parts.scheme or "http"
    value = _env(environ, "https_proxy" if scheme == "https" else "http_proxy")
    if not value:
        return None
    port = str(parts.port) if parts.port else _DEFAULT_PORTS.get(scheme, "")
    if bypassed(parts.hostname or "", port, _env(environ, "no_proxy")):
        return None
    return parse_proxy(value)


# -- SOCKS5 (RFC 1928), as Go's net/http speaks it for a socks5:// proxy ----------------------
# urllib3 needs PySocks for this; the CONNECT handshake is short enough to do here instead.


def receive_exactly(sock: socket.socket, count: int) -> bytes:
    """`count` bytes from `sock`, or OSError when it closes first."""
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise OSError("the peer closed the connection")
        data += chunk
    return data


def _socks_handshake(
    sock: socket.socket, host: str, port: int, username: str | None, password: str | None
) -> None:
    def receive(count: int) -> bytes:
        return receive_exactly(sock, count)

    methods = b"\x00\x02" if username is not None else b"\x00"
    sock.sendall(b"\x05" + bytes([len(methods)]) + methods)
    version, method = receive(2)
    if version != 5 or method not in methods:
        raise OSError("the SOCKS5 proxy accepts none of our authentication methods")
    if method == 2:
        user, secret = (username or "").encode(), (password or "").encode()
        sock.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(secret)]) + secret)
        if receive(2)[1] != 0:
            raise OSError("the SOCKS5 proxy refused the username and password")
    ip = _ip(host.strip("[]"))
    if ip is None:
        name = host.encode("idna")
        address = b"\x03" + bytes([len(name)]) + name
    else:
        address = (b"\x01" if ip.version == 4 else b"\x04") + ip.packed
    sock.sendall(b"\x05\x01\x00" + address + port.to_bytes(2, "big"))
    _, reply, _, kind = receive(4)
    receive({1: 4, 4: 16}.get(kind) or receive(1)[0])
    receive(2)
    if reply != 0:
        raise OSError(f"the SOCKS5 proxy could not connect to {host}:{port} (reply {reply})")


class _SocksConnection(urllib3.connection.HTTPConnection):
    def __init__(self, *args: Any, _socks_options: dict[str, Any], **kwargs: Any) -> None:
        self._socks = _socks_options
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        timeout = self.timeout if isinstance(self.timeout, int | float) else None
        options = self._socks
        try:
            sock = socket.create_connection((options["host"], options["port"]), timeout)
        except OSError as exc:
            raise urllib3.exceptions.NewConnectionError(
                self, f"cannot reach the SOCKS5 proxy: {exc}"
            ) from exc
        try:
            _socks_handshake(sock, self.host, self.port, options["username"], options["password"])
        except OSError as exc:
            sock.close()
            raise urllib3.exceptions.NewConnectionError(self, str(exc)) from exc
        return sock


class _SocksHTTPSConnection(_SocksConnection, urllib3.connection.HTTPSConnection):
    pass


class _SocksHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _SocksConnection


class _SocksHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _SocksHTTPSConnection


class SocksManager(urllib3.PoolManager):
    """A PoolManager whose connections are tunnelled through a SOCKS5 proxy."""

    def __init__(self, proxy_url: str, **pool_options: Any) -> None:
        parts = urlsplit(proxy_url)
        pool_options["_socks_options"] = {
            "host": parts.hostname,
            "port": parts.port or 1080,
            "username": unquote(parts.username) if parts.username is not None else None,
            "password": unquote(parts.password) if parts.password is not None else None,
        }
        super().__init__(**pool_options)
        self.pool_classes_by_scheme = {"http": _SocksHTTPPool, "https": _SocksHTTPSPool}


def socks_manager(proxy_url: str, **pool_options: Any) -> urllib3.PoolManager:
    return SocksManager(proxy_url, **pool_options)
