"""A small token server for the distribution registry's `auth.token` mode.

It signs RS256 JWTs whose `x5c` header carries its self-signed certificate; that certificate is
the registry's `rootcertbundle`, so the registry trusts exactly this server. Users and their
allowed actions come from a JSON file written by tests/support/services.py.
Run: python -m tests.support.tokenserver CONFIG.json
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


def _self_signed(key_path: Path, cert_path: Path, common_name: str, sans: list[x509.GeneralName]) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_key_and_cert(key_path: Path, cert_path: Path) -> None:
    """The token signing key and its self-signed certificate (the registry's rootcertbundle)."""
    _self_signed(key_path, cert_path, "regcollect-test-token-issuer", [])


def make_tls_cert(key_path: Path, cert_path: Path) -> None:
    """A self-signed server certificate for 127.0.0.1 and localhost (the TLS test registry)."""
    import ipaddress

    sans = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    _self_signed(key_path, cert_path, "127.0.0.1", sans)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.key = serialization.load_pem_private_key(Path(config["key"]).read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(Path(config["cert"]).read_bytes())
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.requests = 0

    def account(self, authorization: str | None) -> tuple[str | None, bool]:
        """Return (user, ok). No header = anonymous; wrong password = not ok."""
        if not authorization or not authorization.lower().startswith("basic "):
            return None, True
        try:
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, False
        return self.check_password(user, password)

    def check_password(self, user: str, password: str) -> tuple[str | None, bool]:
        entry = self.config["users"].get(user)
        if entry is None or entry["password"] != password:
            return None, False
        return user, True

    def grant(self, user: str | None, scopes: list[str]) -> list[dict[str, Any]]:
        allowed = self.config["users"][user]["actions"] if user else self.config["anonymous_actions"]
        catalog = self.config["users"][user].get("catalog", False) if user else False
        access = []
        for scope in scopes:
            for one in scope.split(" "):
                if not one:
                    continue
                # Scope names may hold host:port, so split at the first and last colon.
                kind, _, rest = one.partition(":")
                name, _, actions = rest.rpartition(":")
                wanted = actions.split(",")
                if kind == "repository":
                    granted = [a for a in wanted if a in allowed or "*" in allowed]
                elif kind == "registry" and name == "catalog":
                    granted = ["*"] if catalog else []
                else:
                    granted = []
                access.append({"type": kind, "name": name, "actions": granted})
        return access

    def token(self, user: str | None, service: str, scopes: list[str]) -> dict[str, Any]:
        now = int(time.time())
        ttl = int(self.config.get("ttl", 300))
        claims = {
            "iss": self.config["issuer"],
            "sub": user or "",
            "aud": service,
            "exp": now + ttl,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": self.grant(user, scopes),
        }
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        signature = self.key.sign(  # type: ignore[union-attr,call-arg]
            signing_input.encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),  # type: ignore[arg-type]
        )
        token = signing_input + "." + _b64url(signature)
        issued = dt.datetime.fromtimestamp(now, dt.UTC).isoformat()
        return {"token": token, "access_token": token, "expires_in": ttl, "issued_at": issued}


def make_handler(issuer: TokenIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            issuer.requests += 1
            url = urlsplit(self.path)
            if url.path == "/stats":
                self._reply(200, {"requests": issuer.requests})
                return
            if url.path != "/token":
                self._reply(404, {"errors": [{"code": "NOT_FOUND"}]})
                return
            query = parse_qs(url.query)
            user, ok = issuer.account(self.headers.get("Authorization"))
            if not ok:
                self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad login"}]})
                return
            service = query.get("service", [""])[0]
            self._reply(200, issuer.token(user, service, query.get("scope", [])))

        def do_POST(self) -> None:  # noqa: N802
            issuer.requests += 1
            if urlsplit(self.path).path != "/token":
                self._reply(404, {"errors": [{"code": "NOT_FOUND"}]})
                return
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            grant = form.get("grant_type", [""])[0]
            if grant != "password":
                self._reply(400, {"error": "unsupported_grant_type"})
                return
            user, ok = issuer.check_password(form.get("username", [""])[0], form.get("password", [""])[0])
            if not ok:
                self._reply(401, {"error": "invalid_grant"})
                return
            service = form.get("service", [""])[0]
            self._reply(200, issuer.token(user, service, form.get("scope", [])))

    return Handler


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    issuer = TokenIssuer(config)
    server = ThreadingHTTPServer(("127.0.0.1", int(config["port"])), make_handler(issuer))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
