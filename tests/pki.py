"""Test certificates made with the openssl CLI: a CA, server and client certificates."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path

    def pem(self) -> str:
        return self.cert.read_text() + self.key.read_text()


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(directory: Path, name: str = "test-ca") -> Pair:
    directory.mkdir(parents=True, exist_ok=True)
    pair = Pair(directory / f"{name}.crt", directory / f"{name}.key")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN={name}", "-keyout", str(pair.key), "-out", str(pair.cert),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return pair


def issue(
    ca: Pair,
    directory: Path,
    name: str,
    *,
    subject: str | None = None,
    server_names: tuple[str, ...] = (),
) -> Pair:
    """A certificate signed by `ca`: a client one (`subject`, e.g. "/CN=jane/O=devs") or a
    server one when `server_names` are given (DNS names or IPs)."""
    pair = Pair(directory / f"{name}.crt", directory / f"{name}.key")
    csr = directory / f"{name}.csr"
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject or f"/CN={name}",
        "-keyout", str(pair.key), "-out", str(csr),
    )  # fmt: skip
    ext = directory / f"{name}.ext"
    if server_names:
        alt = ",".join(
            f"IP:{n}" if n.replace(".", "").isdigit() or ":" in n else f"DNS:{n}"
            for n in server_names
        )
        ext.write_text(f"subjectAltName={alt}\nextendedKeyUsage=serverAuth\n")
    else:
        ext.write_text("extendedKeyUsage=clientAuth\n")
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-CAcreateserial", "-days", "2", "-out", str(pair.cert), "-extfile", str(ext),
    )  # fmt: skip
    return pair
