"""Signing keys: RSA (RS256) and Ed25519 (EdDSA) side by side, thumbprints, refusal of weak keys, mixed rotation."""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient
from pydantic import ValidationError

from pawgle.auth.config import Settings
from pawgle.auth.keys import (
    KeyConfigError,
    SigningKey,
    dev_key_paths,
    load_key_ring,
    new_private_pem,
    prune_dev_keys,
    rotate_dev_keys,
)
from pawgle.auth.main import create_app
from pawgle.common.testing.server import serve

from .conftest import login, make_settings, verified_user
from .key_helpers import PKCS8, SECRET, new_rsa, private_pem, public_pem, unb64, verifier_for


def test_thumbprints_follow_rfc_7638_for_rsa_and_rfc_8037_for_ed25519() -> None:
    # RFC 7638 section 3.1 and RFC 8037 appendix A.3: the published example keys and their thumbprints.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs"
        "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5h"
        "ajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    rsa_public = rsa.RSAPublicNumbers(65537, int.from_bytes(unb64(n), "big")).public_key()
    rsa_key = SigningKey.from_pem(public_pem(rsa_public))
    assert rsa_key.kid == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert rsa_key.alg == "RS256"
    assert rsa_key.jwk() == {"kty": "RSA", "n": n, "e": "AQAB", "kid": rsa_key.kid, "alg": "RS256", "use": "sig"}
    ed_public = Ed25519PublicKey.from_public_bytes(unb64("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"))
    ed_key = SigningKey.from_pem(public_pem(ed_public))
    assert ed_key.kid == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    assert ed_key.alg == "EdDSA"
    assert ed_key.jwk()["kty"] == "OKP"


def test_rsa_keys_load_from_every_usual_pem_form_with_one_kid() -> None:
    private = new_rsa()
    forms = [
        private_pem(private),
        private_pem(private, serialization.PrivateFormat.TraditionalOpenSSL),  # BEGIN RSA PRIVATE KEY
        public_pem(private.public_key()),
        public_pem(private.public_key(), serialization.PublicFormat.PKCS1),  # BEGIN RSA PUBLIC KEY
    ]
    keys = [SigningKey.from_pem(pem) for pem in forms]
    assert len({key.kid for key in keys}) == 1
    assert [key.private_key is not None for key in keys] == [True, True, False, False]
    jwk = keys[0].jwk()
    assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use"}  # nothing private
    modulus = unb64(jwk["n"])
    assert len(modulus) == 256  # big-endian, 2048 bits, no leading zero byte
    assert modulus[0] != 0
    assert int.from_bytes(modulus, "big") == private.public_key().public_numbers().n
    # What another service does with it: PyJWK loads it and verifies what the private key signed.
    token = jwt.encode({"a": 1}, keys[1].private_key, algorithm="RS256")
    assert jwt.decode(token, jwt.PyJWK.from_dict(jwk).key, algorithms=["RS256"]) == {"a": 1}


def test_weak_or_foreign_keys_are_refused() -> None:
    small = new_rsa(1024)
    refused = {
        "RSA-1024 private": private_pem(small),
        "RSA-1024 public": public_pem(small.public_key()),
        "RSA-2047 private": private_pem(new_rsa(2047)),
        "P-256": private_pem(ec.generate_private_key(ec.SECP256R1())),
        "P-256 public": public_pem(ec.generate_private_key(ec.SECP256R1()).public_key()),
        "Ed448": private_pem(ed448.Ed448PrivateKey.generate()),
        "encrypted": new_rsa().private_bytes(
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
    assert SigningKey.from_pem(private_pem(new_rsa(3072))).alg == "RS256"


def test_production_refuses_weak_current_or_previous_keys(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="RSA"):
        Settings(environment="production", data_dir=tmp_path, refresh_secret=SECRET)
    small = private_pem(new_rsa(1024)).decode()
    with pytest.raises(KeyConfigError, match="2048"):
        load_key_ring(Settings(environment="production", data_dir=tmp_path, signing_key=small, refresh_secret=SECRET))
    previous = tmp_path / "previous.pem"
    previous.write_bytes(public_pem(new_rsa(1024).public_key()))
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
    public_only = public_pem(new_rsa().public_key()).decode()
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
    verifier = verifier_for(settings)
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
        verifier = verifier_for(settings, f"{base_url}/api/auth/jwks/")
        assert verifier.verify(first_access).user_id == verifier.verify(rs_access).user_id  # nobody logged out
    assert rs_header["alg"] == "RS256"
    assert [(k["kid"], k["alg"]) for k in jwks["keys"]] == [(rs_header["kid"], "RS256"), (ed_kid, "EdDSA")]

    rotate_dev_keys(settings.keys_dir, "EdDSA")  # and back
    with TestClient(create_app(settings)) as client:
        back_access = login(client)
        verifier = verifier_for(settings)
        verifier.jwks.set_keys(client.get("/api/auth/jwks/").json())
        for token in (first_access, rs_access, back_access):
            assert verifier.verify(token).user_id > 0
    assert jwt.get_unverified_header(back_access)["alg"] == "EdDSA"
    assert [p.name.split("-")[0] for p in dev_key_paths(settings.keys_dir)] == ["ed25519", "rsa", "ed25519"]
    assert prune_dev_keys(settings.keys_dir, keep=2) == [ed_path]  # the oldest goes, whatever its kind
