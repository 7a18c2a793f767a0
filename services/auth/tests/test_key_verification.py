"""Tokens of rotated keys verified over HTTP by other services, forgeries refused, the key tool, no self-fetch."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pawgle.auth.config import Settings
from pawgle.auth.keys import (
    KeyRing,
    SigningKey,
    dev_key_paths,
    main,
    rotate_dev_keys,
)
from pawgle.auth.main import create_app
from pawgle.common.errors import Unauthorized
from pawgle.common.testing.server import serve

from .conftest import make_settings
from .key_helpers import b64, issuer_for, new_rsa, private_pem, public_pem, verifier_for


def test_another_service_verifies_rs256_over_http_after_rotating_from_eddsa_and_refuses_forgeries(
    database_url: str, nats_url: str, data_dir: Path
) -> None:
    """Production-style rotation: the old Ed25519 key moves to AUTH_PREVIOUS_KEY_FILES, an RSA key signs."""
    old_private = Ed25519PrivateKey.generate()
    new_private = new_rsa()
    old_file, new_file = data_dir / "old.pem", data_dir / "new.pem"
    old_file.write_bytes(public_pem(old_private.public_key()))
    new_file.write_bytes(private_pem(new_private))
    settings = make_settings(database_url, nats_url, data_dir, signing_key_file=new_file, previous_key_files=[old_file])
    # A token the service signed before the rotation, with the EdDSA key.
    before = issuer_for(KeyRing([SigningKey.from_pem(private_pem(old_private))]), settings).issue(41)
    app = create_app(settings)
    with serve(app) as base_url:
        verifier = verifier_for(settings, f"{base_url}/api/auth/jwks/")
        ring: KeyRing = app.state.key_ring
        rsa_kid, ed_kid = ring.current.kid, ring.keys[1].kid
        assert (ring.current.alg, ring.keys[1].alg) == ("RS256", "EdDSA")
        after = app.state.components.tokens.issue(42)
        assert jwt.get_unverified_header(after)["alg"] == "RS256"
        assert verifier.verify(after).user_id == 42
        assert verifier.verify(before).user_id == 41  # the old EdDSA token still verifies
        for attack, token in _rsa_forgeries(settings, new_private, rsa_kid, ed_kid).items():
            with pytest.raises(Unauthorized):
                verifier.verify(token)
            # The auth service's own Bearer routes refuse them the same way: 401, never a 500.
            answer = httpx.delete(f"{base_url}/api/auth/account/", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 401, (attack, answer.text)


def _rsa_forgeries(settings: Settings, ours: rsa.RSAPrivateKey, rsa_kid: str, ed_kid: str) -> dict[str, str]:
    now = int(time.time())
    good = {
        "token_type": "access",
        "user_id": 42,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "j1",
    }

    def raw(header: dict[str, Any], sign: Any) -> str:
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(good).encode())}"
        return f"{signing_input}.{b64(sign(signing_input.encode()))}"

    def hs256_with(secret: bytes) -> str:
        return raw(
            {"alg": "HS256", "typ": "JWT", "kid": rsa_kid}, lambda m: hmac.new(secret, m, hashlib.sha256).digest()
        )

    spki = public_pem(ours.public_key())
    pkcs1 = public_pem(ours.public_key(), serialization.PublicFormat.PKCS1)
    signed = jwt.encode(good, ours, algorithm="RS256", headers={"kid": rsa_kid})
    head, _payload, signature = signed.split(".")
    stranger = new_rsa()
    return {
        "HS256 with the RSA public key PEM": hs256_with(spki),
        "HS256 with the PKCS#1 public key PEM": hs256_with(pkcs1),
        "HS256 with the JWK's modulus": hs256_with(ours.public_key().public_numbers().n.to_bytes(256, "big")),
        "alg none": raw({"alg": "none", "typ": "JWT", "kid": rsa_kid}, lambda _m: b""),
        "alg none, no kid": raw({"alg": "none", "typ": "JWT"}, lambda _m: b""),
        "our RSA kid, someone else's RSA key": jwt.encode(good, stranger, algorithm="RS256", headers={"kid": rsa_kid}),
        "PS256 with someone else's key": jwt.encode(good, stranger, algorithm="PS256", headers={"kid": rsa_kid}),
        "RS256 header on our Ed25519 kid": jwt.encode(good, stranger, algorithm="RS256", headers={"kid": ed_kid}),
        "ES256 header on our RSA kid": jwt.encode(
            good, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": rsa_kid}
        ),
        "EdDSA header on our RSA kid": jwt.encode(
            good, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": rsa_kid}
        ),
        "tampered payload": f"{head}.{b64(json.dumps({**good, 'user_id': 1}).encode())}.{signature}",
    }


def test_the_key_tool_makes_keys_of_the_configured_algorithm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AUTH_SIGNING_ALGORITHM", raising=False)
    main(["new"])
    assert SigningKey.from_pem(capsys.readouterr().out.encode()).alg == "RS256"
    main(["new", "--alg", "EdDSA"])
    assert SigningKey.from_pem(capsys.readouterr().out.encode()).alg == "EdDSA"
    monkeypatch.setenv("AUTH_SIGNING_ALGORITHM", "EdDSA")
    main(["rotate", str(tmp_path)])
    monkeypatch.setenv("AUTH_SIGNING_ALGORITHM", "RS256")
    main(["rotate", str(tmp_path)])
    written = [Path(line) for line in capsys.readouterr().out.split()]
    assert dev_key_paths(tmp_path) == written[::-1]
    assert [SigningKey.from_pem(p.read_bytes()).alg for p in written] == ["EdDSA", "RS256"]
    assert all(p.stat().st_mode & 0o077 == 0 for p in written)  # private keys readable by their owner only
    monkeypatch.setenv("AUTH_SIGNING_ALGORITHM", "HS256")
    with pytest.raises(SystemExit):
        main(["new"])
    # As an operator runs it, in a production environment that has no key yet.
    env = {"PATH": "/usr/bin:/bin", "PAWGLE_ENVIRONMENT": "production", "AUTH_SIGNING_ALGORITHM": "RS256"}
    done = subprocess.run(
        [sys.executable, "-m", "pawgle.auth.keys", "new"], env=env, capture_output=True, check=True, timeout=60
    )
    key = SigningKey.from_pem(done.stdout)
    assert key.alg == "RS256"
    assert key.private_key is not None


class _CountingJwks:
    """A local JWKS endpoint that only counts how often it is asked (auth must never ask it)."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.hits = 0
        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                counter.hits += 1
                body = b'{"keys": []}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/auth/jwks/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_auth_checks_its_own_tokens_with_its_key_ring_never_over_http(
    database_url: str, nats_url: str, data_dir: Path
) -> None:
    """A token with an unknown kid, or a key set older than its refresh age, never makes auth call itself."""
    jwks = _CountingJwks()
    try:
        settings = make_settings(database_url, nats_url, data_dir, jwks_url=jwks.url)
        with serve(create_app(settings)) as base_url, httpx.Client(base_url=base_url) as http:
            stranger = Ed25519PrivateKey.generate()
            claims = {"token_type": "access", "user_id": 7, "jti": "j", "iat": int(time.time())}
            claims.update(iss=settings.jwt_issuer, aud=settings.jwt_audience, exp=int(time.time()) + 300)
            for i in range(3):
                forged = jwt.encode(claims, stranger, algorithm="EdDSA", headers={"kid": f"unknown-{i}"})
                answer = http.delete("/api/auth/account/", headers={"Authorization": f"Bearer {forged}"})
                assert answer.status_code == 401
            http.post(
                "/api/auth/signup/",
                json={
                    "username": "a",
                    "email": "a@example.com",
                    "password": "Correct-Horse-42",
                    "confirm_password": "Correct-Horse-42",
                },
            )
        rotate_dev_keys(settings.keys_dir)
        app = create_app(settings)
        with serve(app) as base_url, httpx.Client(base_url=base_url) as http:
            ring: KeyRing = app.state.key_ring
            old_key = ring.keys[1]
            old_token = issuer_for(KeyRing([old_key]), settings).issue(1)
            # Even a key set "older than its refresh age" is not refetched: the ring is the authority.
            app.state.token_verifier.jwks._loaded_at = -1e9
            answer = http.delete("/api/auth/account/", headers={"Authorization": f"Bearer {old_token}"})
            assert answer.status_code == 204, answer.text  # the previous key still verifies after rotation
        assert jwks.hits == 0
    finally:
        jwks.close()
