"""Settings of the auth service (env prefix AUTH_), on top of the mesh-wide PAWGLE_* settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pawgle.common.config import ServiceSettings

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"

SigningAlgorithm = Literal["RS256", "EdDSA"]


def _algorithm_name(value: object) -> object:
    """Accept `rs256` / `eddsa` from an environment variable as well as the JWA spelling."""
    if isinstance(value, str):
        return {"rs256": "RS256", "eddsa": "EdDSA"}.get(value.strip().lower(), value)
    return value


class KeyToolSettings(BaseSettings):
    """What `python -m pawgle.auth.keys` reads: only the algorithm, so it runs where no key exists yet."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    signing_algorithm: SigningAlgorithm = "RS256"

    _normalise_algorithm = field_validator("signing_algorithm", mode="before")(_algorithm_name)


class Settings(ServiceSettings):
    """Everything the auth service can be told; production refuses to start without real secrets."""

    # Inputs are hidden from validation errors: they may hold the signing key or the refresh secret.
    model_config = SettingsConfigDict(
        env_prefix="AUTH_", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    service_name: str = "auth"

    # Signing keys: RSA (>= 2048 bits, RS256) or Ed25519 (EdDSA), mixed freely. Production: the current
    # private key as PEM text or a file, plus the previous keys (public or private PEM files) that stay
    # published until their tokens have expired. The algorithm only chooses what kind of key development
    # generates and the key tool creates; an existing key keeps signing with its own algorithm.
    signing_algorithm: SigningAlgorithm = "RS256"
    signing_key: SecretStr | None = None
    signing_key_file: Path | None = None
    previous_key_files: list[Path] = Field(default_factory=list)
    # Keys the HMAC that derives a rotated refresh token's successor (see sessions.py).
    refresh_secret: SecretStr | None = None

    access_ttl_s: int = Field(900, ge=60, le=900)
    refresh_ttl_s: int = Field(86400, ge=300)
    refresh_family_max_s: int = Field(30 * 86400, ge=300)
    refresh_grace_s: int = Field(60, ge=60, le=600)
    magic_link_ttl_s: int = Field(900, ge=60, le=900)

    refresh_cookie_name: str = "pawgle_refresh"
    cookie_domain: str | None = None
    cookie_path: str = "/"
    cookie_samesite: Literal["lax", "strict", "none"] = "lax"
    # None: Secure in production, off for http://localhost development.
    cookie_secure: bool | None = None
    # Origins besides PAWGLE_FRONTEND_ORIGIN that may call the cookie-only endpoints (refresh, logout).
    allowed_origins: list[str] = Field(default_factory=list)

    google_client_id: str | None = None
    google_jwks_url: str = GOOGLE_CERTS_URL
    google_issuers: list[str] = Field(default_factory=lambda: ["accounts.google.com", "https://accounts.google.com"])

    # Argon2id cost; raising them rehashes each password at its next successful login.
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_kib: int = Field(65536, ge=8)
    argon2_parallelism: int = Field(4, ge=1)
    # Requests that hash or verify a password (signup, login, reset) admitted at once per process; the
    # others wait their turn without holding a worker thread (see api.password_slot).
    password_hash_concurrency: int = Field(4, ge=1)

    verify_email_next: str = "/user"
    password_reset_path: str = "/auth/reset-password"

    throttle_enabled: bool = True
    throttle_bucket: str = "throttles"
    # Per-scope overrides, e.g. AUTH_THROTTLE_RATES='{"login": "20/min"}'.
    throttle_rates: dict[str, str] = Field(default_factory=dict)
    # Only without PAWGLE_EDGE_SECRET: peers (the gateway's) whose X-Pawgle-Client-Ip is believed
    # (pawgle.common.clientaddress). Empty: not even a loopback peer may choose its address.
    trusted_proxies: list[str] = Field(default_factory=list)

    _normalise_algorithm = field_validator("signing_algorithm", mode="before")(_algorithm_name)

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if not self.is_production:
            return self
        if self.signing_key is None and self.signing_key_file is None:
            raise ValueError(
                "production needs AUTH_SIGNING_KEY or AUTH_SIGNING_KEY_FILE"
                " (an RSA (>= 2048 bits, RS256) or Ed25519 private key PEM)"
            )
        if self.refresh_secret is None or len(self.refresh_secret.get_secret_value()) < 32:
            raise ValueError("production needs AUTH_REFRESH_SECRET of at least 32 characters")
        if self.cookie_secure is False:
            raise ValueError("production refresh cookies must be Secure")
        return self

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.is_production or self.cookie_samesite == "none"

    @property
    def keys_dir(self) -> Path:
        """Where development keys and secrets are generated and kept across restarts."""
        return self.service_dir / "keys"

    @property
    def origins_allowed(self) -> set[str]:
        return {o.rstrip("/").lower() for o in [self.frontend_origin, *self.allowed_origins] if o}
