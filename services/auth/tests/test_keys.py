"""Signing keys: RSA (RS256) and Ed25519 (EdDSA) side by side, thumbprints, refusal of weak keys, mixed rotation."""

from __future__ import annotations

import base64
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
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi.testclient import TestClient
from pydantic import ValidationError

from pawgle.auth.config import Settings
from pawgle.auth.keys import (
    KeyConfigError,
    KeyRing,
    SigningKey,
    dev_key_paths,
    load_key_ring,
    main,
    new_private_pem,
    prune_dev_keys,
    rotate_dev_keys,
)
from pawgle.auth.main import create_app
from pawgle.auth.tokens import AccessTokenIssuer
from pawgle.common.auth import AccessTokenVerifier, JwksCache
from pawgle.common.errors import Unauthorized
from pawgle.common.testing.server import serve

from .conftest import login, make_settings, verified_user

PKCS8 = serialization.PrivateFormat.PKCS8
NO_PASSWORD = serialization.NoEncryption()
SECRET = "x" * 40


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _private_pem(key: Any, fmt: serialization.PrivateFormat = PKCS8) -> bytes:
    pem: bytes = key.private_bytes(serialization.Encoding.PEM, fmt, NO_PASSWORD)
    return pem


def _public_pem(key: Any, fmt: serialization.PublicFormat = serialization.PublicFormat.SubjectPublicKeyInfo) -> bytes:
    pem: bytes = key.public_bytes(serialization.Encoding.PEM, fmt)
    return pem


def _rsa(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _verifier(settings: Settings, jwks_url: str = "http://127.0.0.1:9/unused") -> AccessTokenVerifier:
    return AccessTokenVerifier(JwksCache(jwks_url), issuer=settings.jwt_issuer, audience=settings.jwt_audience)


def _issuer(keys: KeyRing, settings: Settings) -> AccessTokenIssuer:
    return AccessTokenIssuer(keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience, ttl_s=300)


def test_thumbprints_follow_rfc_7638_for_rsa_and_rfc_8037_for_ed25519() -> None:
    # RFC 7638 section 3.1 and RFC 8037 appendix A.3: the published example keys and their thumbprints.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs"
        "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5h"
        "ajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    rsa_public = rsa.RSAPublicNumbers(65537, int.from_bytes(_unb64(n), "big")).public_key()
    rsa_key = SigningKey.from_pem(_public_pem(rsa_public))
    assert rsa_key.kid == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert rsa_key.alg == "RS256"
    assert rsa_key.jwk() == {"kty": "RSA", "n": n, "e": "AQAB", "kid": rsa_key.kid, "alg": "RS256", "use": "sig"}
    ed_public = Ed25519PublicKey.from_public_bytes(_unb64("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"))
    ed_key = SigningKey.from_pem(_public_pem(ed_public))
    assert ed_key.kid == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    assert ed_key.alg == "EdDSA"
    assert ed_key.jwk()["kty"] == "OKP"


def test_rsa_keys_load_from_every_usual_pem_form_with_one_kid() -> None:
    private = _rsa()
    forms = [
        _private_pem(private),
        _private_pem(private, serialization.PrivateFormat.TraditionalOpenSSL),  # BEGIN RSA PRIVATE KEY
        _public_pem(private.public_key()),
        _public_pem(private.public_key(), serialization.PublicFormat.PKCS1),  # BEGIN RSA PUBLIC KEY
    ]
    keys = [SigningKey.from_pem(pem) for pem in forms]
    assert len({key.kid for key in keys}) == 1
    assert [key.private_key is not None for key in keys] == [True, True, False, False]
    jwk = keys[0].jwk()
    assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use"}  # nothing private
    modulus = _unb64(jwk["n"])
    assert len(modulus) == 256  # big-endian, 2048 bits, no leading zero byte
    assert modulus[0] != 0
    assert int.from_bytes(modulus, "big") == private.public_key().public_numbers().n
    # What another service does with it: PyJWK loads it and verifies what the private key signed.
    token = jwt.encode({"a": 1}, keys[1].private_key, algorithm="RS256")
    assert jwt.decode(token, jwt.PyJWK.from_dict(jwk).key, algorithms=["RS256"]) == {"a": 1}


def test_weak_or_foreign_keys_are_refused() -> None:
    small = _rsa(1024)
    refused = {
        "RSA-1024 private": _private_pem(small),
        "RSA-1024 public": _public_pem(small.public_key()),
        "RSA-2047 private": _private_pem(_rsa(2047)),
        "P-256": _private_pem(ec.generate_private_key(ec.SECP256R1())),
        "P-256 public": _public_pem(ec.generate_private_key(ec.SECP256R1()).public_key()),
        "Ed448": _private_pem(ed448.Ed448PrivateKey.generate()),
        "encrypted": _rsa().private_bytes(
            serialization.Encoding.PEM, PKCS8, serialization.BestAvailableEncryption(b"secret")
        ),
        "garbage": b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "empty": b"",
    }
    for name, pem in refused.items():
        try:
            SigningKey.from_pem(pem)
        except KeyConfigError:
            continue
        pytest.fail(f"accepted: {name}")
    with pytest.raises(KeyConfigError, match="at least 2048 bits"):
        SigningKey.from_pem(refused["RSA-1024 private"])
    with pytest.raises(KeyConfigError, match="RSA .* or Ed25519"):
        SigningKey.from_pem(refused["P-256"])
    assert SigningKey.from_pem(_private_pem(_rsa(3072))).alg == "RS256"


def test_production_refuses_weak_current_or_previous_keys(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="RSA"):
        Settings(environment="production", data_dir=tmp_path, refresh_secret=SECRET)
    small = _private_pem(_rsa(1024)).decode()
    with pytest.raises(KeyConfigError, match="2048"):
        load_key_ring(Settings(environment="production", data_dir=tmp_path, signing_key=small, refresh_secret=SECRET))
    previous = tmp_path / "previous.pem"
    previous.write_bytes(_public_pem(_rsa(1024).public_key()))
    with pytest.raises(KeyConfigError, match="2048"):
        load_key_ring(
            Settings(
                environment="production",
                data_dir=tmp_path,
                signing_key=new_private_pem("RS256").decode(),
                previous_key_files=[previous],
                refresh_secret=SECRET,
            )
        )
    public_only = _public_pem(_rsa().public_key()).decode()
    with pytest.raises(KeyConfigError, match="private key"):
        load_key_ring(
            Settings(environment="production", data_dir=tmp_path, signing_key=public_only, refresh_secret=SECRET)
        )
    assert not (tmp_path / "auth" / "keys").exists()  # nothing generated in production


def test_the_algorithm_setting_is_checked_and_accepts_either_spelling(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).signing_algorithm == "RS256"
    assert Settings(data_dir=tmp_path, signing_algorithm="eddsa").signing_algorithm == "EdDSA"
    with pytest.raises(ValidationError, match="signing_algorithm"):
        Settings(data_dir=tmp_path, signing_algorithm="HS256")


def test_development_generates_an_rs256_key_by_default_and_signs_with_it(
    database_url: str, nats_url: str, data_dir: Path
) -> None:
    settings = make_settings(database_url, nats_url, data_dir)
    with TestClient(create_app(settings)) as client:
        access = verified_user(client)["access"]
        (jwk,) = client.get("/api/auth/jwks/").json()["keys"]
    assert [p.name.split("-")[0] for p in dev_key_paths(settings.keys_dir)] == ["rsa"]
    header = jwt.get_unverified_header(access)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": jwk["kid"]}
    assert (jwk["kty"], jwk["alg"]) == ("RSA", "RS256")
    verifier = _verifier(settings)
    verifier.jwks.set_keys({"keys": [jwk]})
    assert verifier.verify(access).user_id > 0


def test_an_existing_ed25519_dev_key_keeps_working_then_rotates_to_rs256_and_back(
    database_url: str, nats_url: str, data_dir: Path
) -> None:
    eddsa = make_settings(database_url, nats_url, data_dir, signing_algorithm="EdDSA")
    with TestClient(create_app(eddsa)) as client:
        first_access = verified_user(client)["access"]  # a developer's .data from before RS256
    (ed_path,) = dev_key_paths(eddsa.keys_dir)
    assert ed_path.name.startswith("ed25519-")
    ed_kid = jwt.get_unverified_header(first_access)["kid"]

    settings = make_settings(database_url, nats_url, data_dir)  # now the default, RS256
    with TestClient(create_app(settings)) as client:
        # Nothing is generated behind the developer's back: the Ed25519 key still signs.
        assert jwt.get_unverified_header(login(client)) == {"alg": "EdDSA", "typ": "JWT", "kid": ed_kid}
    assert dev_key_paths(settings.keys_dir) == [ed_path]

    rotate_dev_keys(settings.keys_dir, settings.signing_algorithm)
    with TestClient(create_app(settings)) as client, serve(client.app) as base_url:  # type: ignore[arg-type]
        rs_access = login(client)
        rs_header = jwt.get_unverified_header(rs_access)
        jwks = httpx.get(f"{base_url}/api/auth/jwks/").json()
        verifier = _verifier(settings, f"{base_url}/api/auth/jwks/")
        assert verifier.verify(first_access).user_id == verifier.verify(rs_access).user_id  # nobody logged out
    assert rs_header["alg"] == "RS256"
    assert [(k["kid"], k["alg"]) for k in jwks["keys"]] == [(rs_header["kid"], "RS256"), (ed_kid, "EdDSA")]

    rotate_dev_keys(settings.keys_dir, "EdDSA")  # and back
    with TestClient(create_app(settings)) as client:
        back_access = login(client)
        verifier = _verifier(settings)
        verifier.jwks.set_keys(client.get("/api/auth/jwks/").json())
        for token in (first_access, rs_access, back_access):
            assert verifier.verify(token).user_id > 0
    assert jwt.get_unverified_header(back_access)["alg"] == "EdDSA"
    assert [p.name.split("-")[0] for p in dev_key_paths(settings.keys_dir)] == ["ed25519", "rsa", "ed25519"]
    assert prune_dev_keys(settings.keys_dir, keep=2) == [ed_path]  # the oldest goes, whatever its kind


def test_another_service_verifies_rs256_over_http_after_rotating_from_eddsa_and_refuses_forgeries(
    database_url: str, nats_url: str, data_dir: Path
) -> None:
    """Production-style rotation: the old Ed25519 key moves to AUTH_PREVIOUS_KEY_FILES, an RSA key signs."""
    old_private = Ed25519PrivateKey.generate()
    new_private = _rsa()
    old_file, new_file = data_dir / "old.pem", data_dir / "new.pem"
    old_file.write_bytes(_public_pem(old_private.public_key()))
    new_file.write_bytes(_private_pem(new_private))
    settings = make_settings(database_url, nats_url, data_dir, signing_key_file=new_file, previous_key_files=[old_file])
    # A token the service signed before the rotation, with the EdDSA key.
    before = _issuer(KeyRing([SigningKey.from_pem(_private_pem(old_private))]), settings).issue(41)
    app = create_app(settings)
    with serve(app) as base_url:
        verifier = _verifier(settings, f"{base_url}/api/auth/jwks/")
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
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(good).encode())}"
        return f"{signing_input}.{_b64(sign(signing_input.encode()))}"

    def hs256_with(secret: bytes) -> str:
        return raw(
            {"alg": "HS256", "typ": "JWT", "kid": rsa_kid}, lambda m: hmac.new(secret, m, hashlib.sha256).digest()
        )

    spki = _public_pem(ours.public_key())
    pkcs1 = _public_pem(ours.public_key(), serialization.PublicFormat.PKCS1)
    signed = jwt.encode(good, ours, algorithm="RS256", headers={"kid": rsa_kid})
    head, _payload, signature = signed.split(".")
    stranger = _rsa()
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
        "tampered payload": f"{head}.{_b64(json.dumps({**good, 'user_id': 1}).encode())}.{signature}",
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
            old_token = _issuer(KeyRing([old_key]), settings).issue(1)
            # Even a key set "older than its refresh age" is not refetched: the ring is the authority.
            app.state.token_verifier.jwks._loaded_at = -1e9
            answer = http.delete("/api/auth/account/", headers={"Authorization": f"Bearer {old_token}"})
            assert answer.status_code == 204, answer.text  # the previous key still verifies after rotation
        assert jwks.hits == 0
    finally:
        jwks.close()
