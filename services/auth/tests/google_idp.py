"""A stand-in for Google's identity platform: a real HTTP server publishing a JWKS, and real RS256 ID tokens."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


class FakeGoogle:
    def __init__(self, port: int) -> None:
        self.port = port
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "google-test-1"
        self.jwks_hits = 0

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/oauth2/v3/certs"

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, alg="RS256", use="sig")
        return {"keys": [jwk]}

    def id_token(
        self,
        *,
        audience: str,
        email: str = "gina@example.com",
        sub: str = "1094",
        verified: Any = True,
        issuer: str = "https://accounts.google.com",
        expires_in: int = 3600,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience,
            "sub": sub,
            "email": email,
            "email_verified": verified,
            "iat": now,
            "exp": now + expires_in,
            "name": "Gina Example",
        }
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})

    @classmethod
    @contextlib.contextmanager
    def running(cls) -> Iterator[FakeGoogle]:
        holder: dict[str, FakeGoogle] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
                idp = holder["idp"]
                if self.path != "/oauth2/v3/certs":
                    self.send_error(404)
                    return
                idp.jwks_hits += 1
                body = json.dumps(idp.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        holder["idp"] = cls(server.server_address[1])
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield holder["idp"]
        finally:
            server.shutdown()
            server.server_close()
