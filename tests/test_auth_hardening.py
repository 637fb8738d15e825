"""Auth hardening: tokens an attacker can forge or replay are refused on REST (401 with
TOKEN_INVALID / TOKEN_EXPIRED / TOKEN_MISSING) and on the Socket.IO handshake
(``connect_error`` with data ``{type: "authentication_failed", code: "AUTH_ERROR"}``),
and a server outside the local default refuses to start without a configured key.

CONTRACT.md "Identity": the accepted algorithms are fixed by configuration, never taken
from the token; ``none`` is never accepted; ``exp`` is checked and required unless
configuration allows its absence. Issue 4, item 3.

Tokens are crafted by hand (base64url segments, hmac) where PyJWT refuses to make them:
an unsigned ``alg: none``/``NoNe`` token, and an HS256 token keyed with an RS256
server's public key (the algorithm-confusion attack).

Cases that need a non-default configuration (RS256 public key, issuer/audience,
``SUPPORTCHAT_JWT_REQUIRE_EXP=false``) run against small module-scoped SQLite servers
of their own. A connected socket whose token expires is covered by
test_socket_handshake.py::test_token_expiring_while_connected_gets_error_then_disconnect.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from support import PersonFactory, ServerInfo, SocketFactory, error_body, make_token, run_cli
from support.net import free_port
from support.server import ARTIFACTS_DIR, ServerProcess, running_server, server_env

AUTH_FAILED = {"type": "authentication_failed", "code": "AUTH_ERROR"}
INVALID = "Invalid token provided"
EXPIRED = "Authentication token expired"
REQUIRED = "Authentication token required"

ISSUER = "https://id.example.com"
AUDIENCE = "supportchat-api"


# --- token crafting ------------------------------------------------------------------------


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segment(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def claims_for(user_id: str, expires_in: int = 3600, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "userId": user_id,
        "fullName": f"Person {user_id[-6:]}",
        "email": f"{user_id}@example.com",
        "iat": now,
        "exp": now + expires_in,
    }
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


def unsigned_token(alg: str, claims: dict[str, Any], signature: str = "") -> str:
    """header.payload.<signature>, as an attacker writes it: no key involved."""
    return f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(claims)}.{signature}"


def hs256_by_hand(claims: dict[str, Any], key: bytes) -> str:
    """HS256 computed with hmac directly: PyJWT refuses a PEM key as an HMAC secret, an
    attacker's library does not."""
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{segment(claims)}"
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def with_edited_payload(token: str, **changes: Any) -> str:
    """The same header and signature over a payload the attacker changed."""
    header, payload, signature = token.split(".")
    claims = json.loads(unb64url(payload))
    claims.update(changes)
    return f"{header}.{segment(claims)}.{signature}"


def new_user_id() -> str:
    return f"user-{secrets.token_hex(8)}"


# --- checks --------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, bytes]:
    # Bytes, so that non-ASCII garbage reaches the server as sent.
    return {"Authorization": b"Bearer " + token.encode()}


async def rest_get(base_url: str, path: str, headers: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as http:
        return await http.get(path, headers=headers)


def assert_handshake_refusal(data: Any, message: str | None) -> None:
    """A connect_error payload as the client sees it: {message, data: {type, code}}."""
    assert isinstance(data, dict), data
    if message is None:
        assert isinstance(data.get("message"), str) and data["message"], data
    else:
        assert data.get("message") == message, data
    details = data.get("data")
    assert isinstance(details, dict), data
    assert {k: details.get(k) for k in AUTH_FAILED} == AUTH_FAILED, data


async def assert_refused(
    base_url: str,
    token: str,
    *,
    code: str = "TOKEN_INVALID",
    message: str | None = INVALID,
    rest_path: str = "/api/chat/active",
    user_type: str = "user",
) -> None:
    """Refused on REST (401 with ``code``) and on the Socket.IO handshake."""
    resp = await rest_get(base_url, rest_path, bearer(token))
    body = error_body(resp, 401)
    assert body["code"] == code, body
    if message is not None:
        assert body["message"] == message, body
    factory = SocketFactory(base_url)
    try:
        refused = await factory.refused(None, auth={"token": token, "userType": user_type})
    finally:
        await factory.close_all()
    assert_handshake_refusal(refused.data, message)


async def assert_accepted(base_url: str, token: str, *, user_type: str = "user") -> None:
    """The positive control: the same kind of token, done right, gets in on both."""
    resp = await rest_get(base_url, "/api/chat/active", bearer(token))
    assert resp.status_code == 200, resp.text
    assert resp.json()["success"] is True
    factory = SocketFactory(base_url)
    try:
        client = await factory(None, auth={"token": token, "userType": user_type})
        assert client.connected
        assert client.events("connect_error") == []
    finally:
        await factory.close_all()


# --- extra servers -------------------------------------------------------------------------


@contextlib.contextmanager
def extra_server(
    tmp_path_factory: pytest.TempPathFactory, label: str, env: dict[str, str | None]
) -> Iterator[ServerInfo]:
    """A SQLite server of this module's own, with ``env`` applied (None removes a key)."""
    with running_server(f"sqlite-{label}", tmp_path_factory.mktemp(label), env=env) as proc:
        assert proc.info is not None
        yield proc.info


class RsaKeys:
    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        self.private_pem = self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()


@pytest.fixture(scope="module")
def rsa_keys() -> RsaKeys:
    return RsaKeys()


@pytest.fixture(scope="module", params=["pem-text", "pem-path"])
def rs256_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, rsa_keys: RsaKeys
) -> Iterator[ServerInfo]:
    """Verifies RS256 with a public key given as PEM text, or as the path of a PEM file.
    The HS256 secret the harness sets stays in the environment: it must not be usable."""
    key = rsa_keys.public_pem
    if request.param == "pem-path":
        path = tmp_path_factory.mktemp("rs256-key") / "issuer.pub.pem"
        path.write_text(key)
        key = str(path)
    env: dict[str, str | None] = {
        "SUPPORTCHAT_JWT_PUBLIC_KEY": key,
        "SUPPORTCHAT_JWT_ALGORITHMS": "RS256",
    }
    with extra_server(tmp_path_factory, f"rs256-{request.param}", env) as info:
        yield info


@pytest.fixture(scope="module")
def iss_aud_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    env: dict[str, str | None] = {
        "SUPPORTCHAT_JWT_ISSUER": ISSUER,
        "SUPPORTCHAT_JWT_AUDIENCE": AUDIENCE,
    }
    with extra_server(tmp_path_factory, "iss-aud", env) as info:
        yield info


@pytest.fixture(scope="module")
def no_exp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    env: dict[str, str | None] = {"SUPPORTCHAT_JWT_REQUIRE_EXP": "false"}
    with extra_server(tmp_path_factory, "no-exp-required", env) as info:
        yield info


# --- the default HS256 server: forged, replayed and malformed tokens -----------------------


async def test_hand_crafted_hs256_with_the_right_secret_is_accepted(server: ServerInfo) -> None:
    """Control for the hand-made tokens below: the crafting itself is sound, so when they
    are refused it is for the reason each test names."""
    token = hs256_by_hand(claims_for(new_user_id()), server.secret.encode())
    await assert_accepted(server.base_url, token)


@pytest.mark.parametrize("alg", ["none", "NoNe", "NONE"])
async def test_unsigned_alg_none_token_is_refused(server: ServerInfo, alg: str) -> None:
    await assert_refused(server.base_url, unsigned_token(alg, claims_for(new_user_id())))


async def test_alg_none_keeping_a_real_signature_is_refused(server: ServerInfo) -> None:
    """Header switched to none, the HS256 signature left in place."""
    claims = claims_for(new_user_id())
    real = jwt.encode(claims, server.secret, algorithm="HS256")
    forged = unsigned_token("none", claims, signature=real.rsplit(".", 1)[1])
    await assert_refused(server.base_url, forged)


@pytest.mark.parametrize("where", ["header", "query"])
async def test_alg_none_is_refused_from_every_token_location(
    server: ServerInfo, where: str
) -> None:
    token = unsigned_token("none", claims_for(new_user_id()))
    factory = SocketFactory(server.base_url)
    try:
        if where == "header":
            refused = await factory.refused(
                None, auth=None, headers={"Authorization": f"Bearer {token}"}
            )
        else:
            refused = await factory.refused(None, auth=None, query={"token": token})
    finally:
        await factory.close_all()
    assert_handshake_refusal(refused.data, INVALID)


async def test_payload_edited_to_admin_with_the_old_signature_is_refused(
    server: ServerInfo, user_factory: PersonFactory
) -> None:
    user = user_factory()
    forged = with_edited_payload(user.token, role="admin")
    # On the agents' endpoint and as an agent socket: refused as a bad token, not as a
    # user lacking privileges (which would mean the forged claims had been believed).
    await assert_refused(
        server.base_url, forged, rest_path="/api/chat/admin/active", user_type="admin"
    )
    await assert_refused(server.base_url, forged)


async def test_payload_edited_to_another_user_with_the_old_signature_is_refused(
    server: ServerInfo, user_factory: PersonFactory
) -> None:
    attacker, victim = user_factory(), user_factory()
    await assert_refused(server.base_url, with_edited_payload(attacker.token, userId=victim.id))


async def test_payload_edited_to_extend_its_expiry_is_refused(
    server: ServerInfo, user_factory: PersonFactory
) -> None:
    expired = user_factory(expires_in=-120)
    forged = with_edited_payload(expired.token, exp=int(time.time()) + 3600)
    await assert_refused(server.base_url, forged)


async def test_signature_stripped_is_refused(
    server: ServerInfo, user_factory: PersonFactory
) -> None:
    token = user_factory().token
    await assert_refused(server.base_url, token.rsplit(".", 1)[0] + ".")


async def test_expired_token_is_refused_as_expired(
    server: ServerInfo, user_factory: PersonFactory
) -> None:
    # Two minutes past: beyond the verifier's few seconds of clock-skew leeway.
    expired = user_factory(expires_in=-120)
    await assert_refused(server.base_url, expired.token, code="TOKEN_EXPIRED", message=EXPIRED)


async def test_token_not_valid_before_a_future_nbf_is_refused(server: ServerInfo) -> None:
    user_id = new_user_id()
    future = make_token(
        server.secret, user_id, "Early", "e@example.com", nbf=int(time.time()) + 600
    )
    await assert_refused(server.base_url, future)
    # Control: an nbf in the past is fine.
    past = make_token(server.secret, user_id, "Late", "l@example.com", nbf=int(time.time()) - 60)
    await assert_accepted(server.base_url, past)


async def test_token_without_exp_is_refused_by_default(server: ServerInfo) -> None:
    claims = claims_for(new_user_id())
    del claims["exp"]
    await assert_refused(server.base_url, jwt.encode(claims, server.secret, algorithm="HS256"))


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
async def test_algorithm_not_configured_is_refused_even_with_the_right_secret(
    server: ServerInfo, alg: str
) -> None:
    """The configured algorithms (HS256) decide, not the token's header: the right
    secret under another HMAC algorithm is still refused."""
    token = jwt.encode(claims_for(new_user_id()), server.secret, algorithm=alg)
    await assert_refused(server.base_url, token)


async def test_token_signed_with_another_secret_is_refused(server: ServerInfo) -> None:
    claims = claims_for(new_user_id())
    other = jwt.encode(claims, "another-secret-" + secrets.token_hex(16), algorithm="HS256")
    await assert_refused(server.base_url, other)


def _garbage(secret: str) -> dict[str, str]:
    header = segment({"alg": "HS256", "typ": "JWT"})
    claims = claims_for(new_user_id())
    good = jwt.encode(claims, secret, algorithm="HS256")
    signature = good.rsplit(".", 1)[1]
    return {
        "word": "not-a-jwt",
        "three-dots": "a.b.c",
        "empty-segments": "..",
        "header-only": header,
        "two-segments": f"{header}.{segment(claims)}",
        "four-segments": good + ".extra",
        "payload-not-json": f"{header}.{b64url(b'not json')}.{signature}",
        "payload-a-list": f"{header}.{segment([claims])}.{signature}",
        "header-a-list": f"{segment(['HS256'])}.{segment(claims)}.{signature}",
        "header-without-alg": f"{segment({'typ': 'JWT'})}.{segment(claims)}.{signature}",
        "unknown-alg": unsigned_token("XS999", claims, signature),
        "non-ascii": "tökén.ünïcode.sïgnature",
        "long-random": b64url(os.urandom(3000)),
        "bearer-twice": "Bearer " + good,
    }


GARBAGE = [
    "word",
    "three-dots",
    "empty-segments",
    "header-only",
    "two-segments",
    "four-segments",
    "payload-not-json",
    "payload-a-list",
    "header-a-list",
    "header-without-alg",
    "unknown-alg",
    "non-ascii",
    "long-random",
    "bearer-twice",
]


@pytest.mark.parametrize("case", GARBAGE)
async def test_garbage_token_is_refused(server: ServerInfo, case: str) -> None:
    await assert_refused(server.base_url, _garbage(server.secret)[case])


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({}, id="no-id-claim"),
        pytest.param({"userId": ""}, id="empty-userId"),
        pytest.param({"userId": None, "sub": "", "id": None}, id="all-ids-empty"),
    ],
)
async def test_token_without_a_user_id_is_refused(
    server: ServerInfo, claims: dict[str, Any]
) -> None:
    now = int(time.time())
    token = jwt.encode(
        {"fullName": "Nobody", "email": "n@example.com", "iat": now, "exp": now + 600, **claims},
        server.secret,
        algorithm="HS256",
    )
    await assert_refused(server.base_url, token, message=None)


async def test_missing_token_is_token_missing(server: ServerInfo) -> None:
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic dTpw"}):
        body = error_body(await rest_get(server.base_url, "/api/chat/active", headers), 401)
        assert body["code"] == "TOKEN_MISSING", (headers, body)
    factory = SocketFactory(server.base_url)
    try:
        for auth in (None, {"token": ""}):
            refused = await factory.refused(None, auth=auth)
            assert_handshake_refusal(refused.data, REQUIRED)
    finally:
        await factory.close_all()


# --- an RS256 issuer: algorithm confusion --------------------------------------------------


def rs256_token(keys: RsaKeys, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, keys.private_pem, algorithm="RS256")


async def test_rs256_server_accepts_a_proper_rs256_token(
    rs256_server: ServerInfo, rsa_keys: RsaKeys
) -> None:
    await assert_accepted(rs256_server.base_url, rs256_token(rsa_keys, claims_for(new_user_id())))


@pytest.mark.parametrize("variant", ["pem-as-is", "pem-stripped", "pem-body-only"])
async def test_rs256_server_refuses_hs256_keyed_with_its_public_key(
    rs256_server: ServerInfo, rsa_keys: RsaKeys, variant: str
) -> None:
    """The classic confusion attack: the public key is public, so an attacker signs HS256
    with its PEM text; a verifier that lets the token pick the algorithm accepts it."""
    pem = rsa_keys.public_pem
    key = {
        "pem-as-is": pem,
        "pem-stripped": pem.strip(),
        "pem-body-only": "".join(line for line in pem.splitlines() if "-----" not in line),
    }[variant]
    forged = hs256_by_hand(claims_for(new_user_id(), role="admin"), key.encode())
    await assert_refused(rs256_server.base_url, forged, user_type="admin")
    await assert_refused(rs256_server.base_url, forged, rest_path="/api/chat/admin/active")


async def test_rs256_server_refuses_hs256_with_the_shared_secret(
    rs256_server: ServerInfo,
) -> None:
    """A secret left in the environment does not make HS256 acceptable once the
    configured algorithms say RS256."""
    token = make_token(rs256_server.secret, new_user_id(), "Old", "old@example.com")
    await assert_refused(rs256_server.base_url, token)


@pytest.mark.parametrize("alg", ["none", "NoNe"])
async def test_rs256_server_refuses_alg_none(rs256_server: ServerInfo, alg: str) -> None:
    await assert_refused(rs256_server.base_url, unsigned_token(alg, claims_for(new_user_id())))


@pytest.mark.parametrize("alg", ["RS512", "PS256"])
async def test_rs256_server_refuses_other_algorithms_of_the_same_key(
    rs256_server: ServerInfo, rsa_keys: RsaKeys, alg: str
) -> None:
    token = jwt.encode(claims_for(new_user_id()), rsa_keys.private_pem, algorithm=alg)
    await assert_refused(rs256_server.base_url, token)


async def test_rs256_server_refuses_another_issuers_key(rs256_server: ServerInfo) -> None:
    stranger = RsaKeys()
    await assert_refused(rs256_server.base_url, rs256_token(stranger, claims_for(new_user_id())))


async def test_rs256_server_refuses_an_edited_payload(
    rs256_server: ServerInfo, rsa_keys: RsaKeys
) -> None:
    token = rs256_token(rsa_keys, claims_for(new_user_id()))
    forged = with_edited_payload(token, role="admin")
    await assert_refused(rs256_server.base_url, forged, user_type="admin")


async def test_rs256_server_refuses_an_expired_rs256_token(
    rs256_server: ServerInfo, rsa_keys: RsaKeys
) -> None:
    token = rs256_token(rsa_keys, claims_for(new_user_id(), expires_in=-120))
    await assert_refused(rs256_server.base_url, token, code="TOKEN_EXPIRED", message=EXPIRED)


# --- issuer and audience -------------------------------------------------------------------


def iss_aud_token(server: ServerInfo, **claims: Any) -> str:
    return jwt.encode(claims_for(new_user_id(), **claims), server.secret, algorithm="HS256")


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"iss": "https://evil.example", "aud": AUDIENCE}, id="wrong-issuer"),
        pytest.param({"iss": ISSUER, "aud": "another-api"}, id="wrong-audience"),
        pytest.param({"aud": AUDIENCE}, id="missing-issuer"),
        pytest.param({"iss": ISSUER}, id="missing-audience"),
        pytest.param({}, id="missing-both"),
        pytest.param({"iss": ISSUER, "aud": ["another-api", "x"]}, id="audience-list-without-ours"),
        pytest.param({"iss": ISSUER.upper(), "aud": AUDIENCE}, id="issuer-case-changed"),
        pytest.param({"iss": ISSUER + "/", "aud": AUDIENCE}, id="issuer-trailing-slash"),
    ],
)
async def test_wrong_or_missing_issuer_or_audience_is_refused(
    iss_aud_server: ServerInfo, claims: dict[str, Any]
) -> None:
    await assert_refused(iss_aud_server.base_url, iss_aud_token(iss_aud_server, **claims))


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"iss": ISSUER, "aud": AUDIENCE}, id="exact"),
        pytest.param({"iss": ISSUER, "aud": ["another-api", AUDIENCE]}, id="audience-list"),
    ],
)
async def test_right_issuer_and_audience_are_accepted(
    iss_aud_server: ServerInfo, claims: dict[str, Any]
) -> None:
    await assert_accepted(iss_aud_server.base_url, iss_aud_token(iss_aud_server, **claims))


async def test_cli_token_of_an_iss_aud_server_is_accepted(iss_aud_server: ServerInfo) -> None:
    """`supportchat token` sets the configured iss and aud itself."""
    proc = await asyncio.to_thread(
        run_cli,
        iss_aud_server.env,
        "token",
        "--user-id",
        new_user_id(),
        "--name",
        "Cli User",
        "--email",
        "cli@example.com",
    )
    await assert_accepted(iss_aud_server.base_url, proc.stdout.strip())


# --- exp optional by configuration ---------------------------------------------------------


async def test_token_without_exp_is_accepted_when_configuration_allows(
    no_exp_server: ServerInfo,
) -> None:
    claims = claims_for(new_user_id())
    del claims["exp"]
    await assert_accepted(
        no_exp_server.base_url, jwt.encode(claims, no_exp_server.secret, algorithm="HS256")
    )


async def test_exp_is_still_checked_when_present_and_not_required(
    no_exp_server: ServerInfo,
) -> None:
    claims = claims_for(new_user_id(), expires_in=-120)
    token = jwt.encode(claims, no_exp_server.secret, algorithm="HS256")
    await assert_refused(no_exp_server.base_url, token, code="TOKEN_EXPIRED", message=EXPIRED)


async def test_alg_none_is_refused_when_exp_is_not_required(no_exp_server: ServerInfo) -> None:
    claims = claims_for(new_user_id())
    del claims["exp"]
    await assert_refused(no_exp_server.base_url, unsigned_token("none", claims))


# --- refusing to start without a configured key --------------------------------------------


def keyless_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The harness's environment for a server, minus the secret."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = server_env(data_dir, "unused", None)
    del env["SUPPORTCHAT_JWT_SECRET"]
    env.update(extra)
    return env


def assert_refused_to_start(proc: Any, data_dir: Path) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, f"exit code {proc.returncode}\n{output}"
    assert "SUPPORTCHAT_JWT_SECRET" in proc.stderr, output
    assert "SUPPORTCHAT_JWT_PUBLIC_KEY" in proc.stderr, output
    assert "Traceback" not in output, output
    # Refused before doing anything: no generated secret nobody knows, no database.
    assert not (data_dir / "jwt_secret").exists()
    assert not (data_dir / "supportchat.db").exists()


def test_serve_with_a_postgresql_url_and_no_key_exits_2(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data_dir = tmp_path_factory.mktemp("keyless-postgres")
    # Port 1: nothing listens there, so a server that went on would fail differently.
    env = keyless_env(
        data_dir,
        SUPPORTCHAT_DATABASE_URL="postgresql+asyncpg://supportchat@127.0.0.1:1/supportchat",
    )
    proc = run_cli(
        env, "serve", "--host", "127.0.0.1", "--port", str(free_port()), check=False, timeout=20
    )
    assert_refused_to_start(proc, data_dir)


@pytest.mark.parametrize("how", ["--host", "SUPPORTCHAT_HOST"])
def test_serve_on_all_interfaces_with_sqlite_and_no_key_exits_2(
    tmp_path_factory: pytest.TempPathFactory, how: str
) -> None:
    data_dir = tmp_path_factory.mktemp("keyless-exposed")
    port = str(free_port())
    if how == "--host":
        env = keyless_env(data_dir)
        args = ["serve", "--host", "0.0.0.0", "--port", port]
    else:
        env = keyless_env(data_dir, SUPPORTCHAT_HOST="0.0.0.0")
        args = ["serve", "--port", port]
    proc = run_cli(env, *args, check=False, timeout=20)
    assert_refused_to_start(proc, data_dir)


async def test_local_default_starts_and_generates_a_private_secret(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """No DATABASE_URL, bound to 127.0.0.1, no key: starts, writes data_dir/jwt_secret
    readable by its owner only, and verifies tokens with it (also after a restart)."""
    data_dir = tmp_path_factory.mktemp("keyless-local")
    proc = ServerProcess("sqlite-keyless-local", data_dir)
    del proc.env["SUPPORTCHAT_JWT_SECRET"]
    try:
        info = await asyncio.to_thread(proc.start)
        path = data_dir / "jwt_secret"
        assert path.is_file()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)
        secret = path.read_text().strip()
        assert len(secret) >= 32, "a generated secret must be long"
        user_id = new_user_id()
        token = make_token(secret, user_id, "Local", "local@example.com")
        await assert_accepted(info.base_url, token)
        # The harness's secret is not in play: a token signed with it is refused.
        await assert_refused(info.base_url, make_token(proc.secret, user_id, "X", "x@example.com"))
        # A restart keeps the secret, so issued tokens stay valid.
        await asyncio.to_thread(proc.stop)
        info = await asyncio.to_thread(proc.start)
        assert path.read_text().strip() == secret
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        await assert_accepted(info.base_url, token)
    finally:
        await asyncio.to_thread(proc.stop)
        proc.keep_log(ARTIFACTS_DIR)
