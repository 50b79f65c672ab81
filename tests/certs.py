"""Test-time certificates: a private CA, node and client certificates, and a foreign CA.

Everything is made with the ``openssl`` command line tool into a temporary directory, once
per test session (see the ``pki`` fixture of ``tests/test_security.py``). Keys are EC P-256
so generation takes milliseconds.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Pki", "make_pki", "openssl_available"]


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


@dataclass(frozen=True)
class Pki:
    """Paths of the generated PEM files.

    ``ca`` signs ``node`` (server and client usage, SAN IP 127.0.0.1) and ``client`` (client
    usage). ``rogue_ca`` is an unrelated CA that signs ``rogue`` (same usages as ``node``).
    """

    directory: Path
    ca: Path
    node_cert: Path
    node_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca: Path
    rogue_cert: Path
    rogue_key: Path

    def tls_section(self, who: str = "node", *, require_client_cert: bool = False) -> dict[str, object]:
        """A ``[tls]`` table for ``CastyConfig.from_dict``: ``who`` is node, client or rogue."""
        cert, key = {
            "node": (self.node_cert, self.node_key),
            "client": (self.client_cert, self.client_key),
            "rogue": (self.rogue_cert, self.rogue_key),
        }[who]
        cafile = self.rogue_ca if who == "rogue" else self.ca
        return {
            "enabled": True,
            "certfile": str(cert),
            "keyfile": str(key),
            "cafile": str(cafile),
            "require_client_cert": require_client_cert,
        }

    def server_context(self, *, require_client_cert: bool) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.node_cert, self.node_key)
        ctx.load_verify_locations(self.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE
        return ctx

    def client_context(self, *, cert: str | None = "node", trust: str = "ca") -> ssl.SSLContext:
        """A dialing context trusting ``trust`` (ca or rogue) and presenting ``cert`` (None: no
        certificate; node, client or rogue)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(self.rogue_ca if trust == "rogue" else self.ca)
        if cert is not None:
            pair = {
                "node": (self.node_cert, self.node_key),
                "client": (self.client_cert, self.client_key),
                "rogue": (self.rogue_cert, self.rogue_key),
            }[cert]
            ctx.load_cert_chain(*pair)
        return ctx


def _run(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {proc.stderr.strip()}")


def _key(name: str, cwd: Path) -> None:
    _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key", cwd=cwd)


def _ca(name: str, subject: str, cwd: Path) -> None:
    _key(name, cwd)
    _run(
        "req", "-new", "-x509", "-key", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
        "-subj", subject, "-sha256", "-extensions", "v3_ca_casty",
        "-config", _req_config(name, cwd), cwd=cwd,
    )  # fmt: skip


def _req_config(name: str, cwd: Path) -> str:
    path = cwd / f"{name}.cnf"
    path.write_text(
        "[req]\ndistinguished_name = dn\n[dn]\n"
        "[v3_ca_casty]\nbasicConstraints = critical, CA:TRUE\n"
        "keyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n"
    )
    return path.name


def _leaf(name: str, subject: str, ca: str, usages: str, cwd: Path) -> None:
    _key(name, cwd)
    _run("req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=cwd)
    (cwd / f"{name}.ext").write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        f"extendedKeyUsage = {usages}\n"
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
    )
    _run(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-sha256", "-extfile", f"{name}.ext",
        cwd=cwd,
    )  # fmt: skip


def make_pki(directory: Path) -> Pki:
    """Generate every certificate into ``directory`` (which must exist) and return their paths."""
    _ca("ca", "/CN=casty test CA", directory)
    _ca("rogue-ca", "/CN=casty rogue CA", directory)
    _leaf("node", "/CN=casty node", "ca", "serverAuth, clientAuth", directory)
    _leaf("client", "/CN=casty client", "ca", "clientAuth", directory)
    _leaf("rogue", "/CN=casty rogue node", "rogue-ca", "serverAuth, clientAuth", directory)
    d = directory
    return Pki(
        directory=d,
        ca=d / "ca.pem",
        node_cert=d / "node.pem",
        node_key=d / "node.key",
        client_cert=d / "client.pem",
        client_key=d / "client.key",
        rogue_ca=d / "rogue-ca.pem",
        rogue_cert=d / "rogue.pem",
        rogue_key=d / "rogue.key",
    )
