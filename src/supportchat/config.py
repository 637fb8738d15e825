"""Settings, read once from SUPPORTCHAT_* environment variables and an optional .env file."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_CATEGORIES = (
    "general_inquiry",
    "account_support",
    "technical_support",
    "technical_issue",
    "account_problem",
    "payment_inquiry",
    "project_question",
    "assessment_issue",
    "application_help",
    "bug_report",
    "feature_request",
    "other",
)

CommaList = Annotated[list[str], NoDecode]


def _split_list(value: Any) -> Any:
    """Accept a JSON list or a comma-separated string, as people write both in env files."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import orjson

            return orjson.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SUPPORTCHAT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    database_url: str | None = None
    # Shared secret for HS* tokens; when empty and no public key is set, one is generated
    # on first start and kept in <data_dir>/jwt_secret (mode 0600).
    jwt_secret: str | None = None
    # PEM text (or a path to a PEM file) of the issuer's public key, for RS*/ES* tokens.
    jwt_public_key: str | None = None
    # PEM private key, only used by `supportchat token` when tokens are asymmetric.
    jwt_private_key: str | None = None
    jwt_algorithms: CommaList = Field(default_factory=lambda: ["HS256"])
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_require_exp: bool = True
    admin_roles: CommaList = Field(default_factory=lambda: ["admin", "moderator", "super_admin"])
    cors_origins: CommaList = Field(
        default_factory=lambda: [
            "http://127.0.0.1:8000",
            "http://localhost:8000",
            "http://localhost:5173",
            "http://127.0.0.1:5173",
        ]
    )
    categories: CommaList = Field(default_factory=lambda: list(DEFAULT_CATEGORIES))
    default_category: str = "general_inquiry"
    max_message_length: int = Field(default=5000, ge=1)
    max_attachments: int = Field(default=10, ge=0)
    # Largest REST request body and Engine.IO packet accepted, in bytes.
    max_http_buffer_size: int = Field(default=64 * 1024, ge=1024)
    # A socket with more outgoing packets queued than this is disconnected: its client is
    # not reading, and the queue would otherwise grow without bound (see
    # realtime/backpressure.py). Checked every slow_client_check_seconds.
    max_queued_packets: int = Field(default=1000, ge=1)
    slow_client_check_seconds: float = Field(default=0.5, gt=0)
    # How often a process refreshes the presence rows of its sockets, and after how long
    # without a refresh a row no longer counts (a crashed process stops refreshing).
    presence_heartbeat_seconds: float = Field(default=15.0, gt=0)
    presence_ttl_seconds: float = Field(default=45.0, gt=0)
    # On SIGTERM, how long events already being handled get to finish (and be
    # acknowledged) before connections are closed; uvicorn then gets as long again for
    # HTTP requests in flight.
    shutdown_grace_seconds: float = Field(default=10.0, gt=0)
    # Rate limits of the API document ("N/period", as the `limits` library reads them).
    rate_limits_enabled: bool = True
    rate_limit_rest: str = "100/minute"  # REST requests per user
    rate_limit_admin: str = "200/minute"  # admin actions per agent
    rate_limit_messages: str = "30/minute"  # messages per chat, REST and Socket.IO alike
    rate_limit_typing: str = "20/10 seconds"  # typing updates per person and chat
    # When set, several processes form one service: Socket.IO emits reach every process
    # and rate-limit counts are shared through it (docs/deployment.md).
    redis_url: str | None = None
    # /metrics (Prometheus): on the service's port to `Authorization: Bearer <token>`,
    # and/or on a port of its own bound to metrics_host (metrics.py); neither by default.
    metrics_token: str | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    log_level: str = "info"
    # The first-run demo (api/demo_routes.py): the landing page hands out tokens for a
    # demo user and a demo agent. Anyone who can reach the server could then act as an
    # agent, so it works only on a server bound to this machine (demo_active).
    demo: bool = False

    _split = field_validator(
        "jwt_algorithms", "admin_roles", "cors_origins", "categories", mode="before"
    )(_split_list)

    @field_validator("jwt_algorithms")
    @classmethod
    def _no_none_algorithm(cls, value: list[str]) -> list[str]:
        if not value or any(alg.lower() == "none" for alg in value):
            raise ValueError("jwt_algorithms must name real algorithms; 'none' is never accepted")
        return value

    @field_validator(
        "rate_limit_rest", "rate_limit_admin", "rate_limit_messages", "rate_limit_typing"
    )
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError(f"not a rate limit: {value!r} (write e.g. '30/minute')") from None
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'supportchat.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def binds_locally(self) -> bool:
        return self.host in LOCAL_HOSTS

    @property
    def demo_active(self) -> bool:
        return self.demo and self.binds_locally

    @property
    def is_local_default(self) -> bool:
        """The embedded default: SQLite under data_dir, reachable only from this machine."""
        return self.database_url is None and self.binds_locally

    def check_keys(self) -> None:
        """Outside the local default, tokens must be checked with a key someone chose:
        a generated secret on a shared or exposed server would be a secret nobody knows
        to rotate, and tokens from the real issuer would not verify."""
        if not self.is_local_default and not (self.jwt_secret or self.jwt_public_key):
            raise RuntimeError(
                "SUPPORTCHAT_JWT_SECRET or SUPPORTCHAT_JWT_PUBLIC_KEY must be set: only a "
                "local server (SQLite, bound to 127.0.0.1) generates its own secret"
            )

    def ensure_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def verification_key(self) -> str:
        """The key that checks token signatures: the public key if set, else the secret."""
        if self.jwt_public_key:
            return _read_pem(self.jwt_public_key)
        return self.signing_secret()

    def signing_key(self) -> str:
        if self.jwt_private_key:
            return _read_pem(self.jwt_private_key)
        if self.jwt_public_key:
            raise RuntimeError(
                "tokens are verified with a public key: set SUPPORTCHAT_JWT_PRIVATE_KEY to sign"
            )
        return self.signing_secret()

    def signing_secret(self) -> str:
        if self.jwt_secret:
            return self.jwt_secret
        return _generated_secret(self.data_dir)


def _read_pem(value: str) -> str:
    if "-----BEGIN" in value:
        return value
    return Path(value).read_text()


def _generated_secret(data_dir: Path) -> str:
    path = data_dir / "jwt_secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    # O_EXCL: if two processes start at once, exactly one writes and both read its value.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret
