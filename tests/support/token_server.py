"""A small bearer-token server for distribution's `auth: token` mode, of the tests' own.

It signs RS256 JWTs with a key made at start, names the key by an `x5c` header holding its
self-signed certificate, and writes that certificate as the registry's `rootcertbundle`.
Distribution answers every token problem with a bare 401 `invalid_token`; the reason is only in
the registry's log, so keep this server's claims exactly as DESIGN.md §5 describes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.support.registry_server import TokenAuthConfig

TOKEN_LIFETIME_SECONDS = 300
ALL_REPOSITORY_ACTIONS = ("pull", "push", "delete")


def _self_signed_certificate(key: rsa.RSAPrivateKey, common_name: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def parse_scope(scope: str) -> dict | None:
    """`repository:team/app:pull,push` -> access entry; the name may itself contain ':'."""
    resource_type, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not resource_type or not name:
        return None
    return {"type": resource_type, "name": name, "actions": [a for a in actions.split(",") if a]}


class TokenServer:
    """Threaded token endpoint on a free loopback port; `.realm` goes into the registry config.

    Requests are recorded in `.requests` (account, scopes, whether credentials were right) so
    tests can check what a client asked for.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        username: str = "tokenuser",
        password: str = "tokenpass",
        service: str = "regui-test-registry",
        issuer: str = "regui-test-token-issuer",
        anonymous_actions: tuple[str, ...] = (),
    ):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.username = username
        self.password = password
        self.service = service
        self.issuer = issuer
        # Actions granted without credentials, e.g. ("pull",) for a public registry.
        self.anonymous_actions = anonymous_actions
        self.requests: list[dict] = []
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._certificate = _self_signed_certificate(self._key, issuer)
        self.rootcertbundle = self.workdir / "token-root.pem"
        self.rootcertbundle.write_bytes(self._certificate.public_bytes(serialization.Encoding.PEM))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def realm(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/token"

    def registry_auth_config(self) -> TokenAuthConfig:
        return TokenAuthConfig(
            realm=self.realm,
            service=self.service,
            issuer=self.issuer,
            rootcertbundle=self.rootcertbundle,
        )

    def start(self) -> TokenServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="token-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- tokens ----------------------------------------------------------------------------

    def issue_token(self, account: str | None, scopes: list[str], actions: tuple[str, ...]) -> str:
        """A JWT granting `actions` (intersected with each scope's request) to `account`."""
        now = int(time.time())
        access = []
        for scope in scopes:
            entry = parse_scope(scope)
            if entry is None:
                continue
            if entry["type"] == "registry":
                # Distribution checks exactly {"type": "registry", "name": "catalog", "*"}.
                granted = ["*"] if "*" in actions else []
            else:
                granted = [action for action in entry["actions"] if action in actions]
            if granted:
                access.append({"type": entry["type"], "name": entry["name"], "actions": granted})
        claims = {
            "iss": self.issuer,
            "sub": account or "",
            "aud": self.service,  # a plain string: distribution rejects a list here
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        certificate_der = self._certificate.public_bytes(serialization.Encoding.DER)
        headers = {"x5c": [base64.b64encode(certificate_der).decode("ascii")]}
        return jwt.encode(claims, self._key, algorithm="RS256", headers=headers)

    def check_credentials(self, authorization: str | None) -> tuple[bool, str | None]:
        """(valid, account) from a Basic header; no header is (True, None): anonymous."""
        if not authorization:
            return True, None
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False, None
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False, None
        username, _, password = decoded.partition(":")
        valid = secrets.compare_digest(username, self.username) and secrets.compare_digest(
            password, self.password
        )
        return valid, username


def _handler_for(token_server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class TokenRequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802  (http.server's naming)
            url = urlsplit(self.path)
            if url.path != "/token":
                self._answer(404, {"error": "not found"})
                return
            params = parse_qs(url.query)
            scopes = params.get("scope", [])
            valid, account = token_server.check_credentials(self.headers.get("Authorization"))
            anonymous = account is None
            token_server.requests.append(
                {
                    "account": account,
                    "scopes": scopes,
                    "service": params.get("service", [None])[0],
                    "valid": valid,
                }
            )
            if not valid or (anonymous and not token_server.anonymous_actions):
                self._answer(
                    401,
                    {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                    {"WWW-Authenticate": 'Basic realm="regui-test-token"'},
                )
                return
            actions = (
                token_server.anonymous_actions if anonymous else (*ALL_REPOSITORY_ACTIONS, "*")
            )
            token = token_server.issue_token(account, scopes, actions)
            self._answer(
                200,
                {
                    "token": token,
                    "access_token": token,
                    "expires_in": TOKEN_LIFETIME_SECONDS,
                    "issued_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
                },
            )

        def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format, *args):  # noqa: A002
            pass  # keep pytest output clean

    return TokenRequestHandler
