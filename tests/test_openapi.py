"""The OpenAPI document tells the truth: it lists every endpoint, and real responses match
the response models it is generated from (supportchat.api.schemas, extra="forbid", so an
undocumented field in a real response fails here).
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
import pytest
from pydantic import BaseModel

from support import NOT_FOUND, Api, Person, PersonFactory, assert_status
from supportchat.api.schemas import (
    AgentQueueOut,
    ClosedOut,
    Envelope,
    ErrorOut,
    HealthOut,
    HistoryOut,
    JoinedOut,
    MessagesPageOut,
    SentOut,
    StartedOut,
    TicketDataOut,
    UserActiveOut,
)

M = TypeVar("M", bound=BaseModel)

# (method, path) of every endpoint: the API document's, plus the compatibility and
# catch-up endpoints of the contract, plus /health.
ENDPOINTS = [
    ("post", "/api/chat/start"),
    ("get", "/api/chat/history"),
    ("get", "/api/chat/{ticketId}"),
    ("post", "/api/chat/{ticketId}/message"),
    ("get", "/api/chat/admin/active"),
    ("post", "/api/chat/admin/join/{ticketId}"),
    ("post", "/api/chat/admin/close/{ticketId}"),
    ("get", "/api/chat/active"),
    ("get", "/api/chat/{ticketId}/messages"),
    ("get", "/health"),
]

# What each endpoint answers on success, as (status, response model name).
SUCCESS_MODELS = {
    ("post", "/api/chat/start"): [("201", "StartedOut"), ("200", "StartedOut")],
    ("get", "/api/chat/history"): [("200", "HistoryOut")],
    ("get", "/api/chat/{ticketId}"): [("200", "TicketDataOut")],
    ("post", "/api/chat/{ticketId}/message"): [("200", "SentOut")],
    ("get", "/api/chat/admin/active"): [("200", "AgentQueueOut")],
    ("post", "/api/chat/admin/join/{ticketId}"): [("200", "JoinedOut")],
    ("post", "/api/chat/admin/close/{ticketId}"): [("200", "ClosedOut")],
    ("get", "/api/chat/active"): [("200", "UserActiveOut")],
    ("get", "/api/chat/{ticketId}/messages"): [("200", "MessagesPageOut")],
    ("get", "/health"): [("200", "HealthOut")],
}


async def fetch_spec(api: Api) -> dict[str, Any]:
    resp = await api.get("/openapi.json")
    assert resp.status_code == 200, resp.text
    spec: dict[str, Any] = resp.json()
    return spec


def validate(resp: httpx.Response, model: type[M], status: int = 200) -> M:
    assert_status(resp, status)
    body = resp.json()
    assert body.get("success") is True, body
    return model.model_validate(body)


def validate_error(resp: httpx.Response, status: int) -> ErrorOut:
    assert_status(resp, status)
    error = ErrorOut.model_validate(resp.json())
    assert error.success is False
    assert error.message
    return error


# --- the document ------------------------------------------------------------------------


async def test_openapi_lists_every_endpoint(api: Api) -> None:
    spec = await fetch_spec(api)
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for method, path in ENDPOINTS:
        assert path in paths, f"{path} missing from /openapi.json"
        assert method in paths[path], f"{method.upper()} {path} missing from /openapi.json"


async def test_openapi_success_responses_reference_the_models(api: Api) -> None:
    spec = await fetch_spec(api)
    for (method, path), expected in SUCCESS_MODELS.items():
        responses = spec["paths"][path][method]["responses"]
        for status, model in expected:
            assert status in responses, f"{method.upper()} {path}: no {status} documented"
            ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
            name = ref.rsplit("/", 1)[-1]
            assert model in name and name.startswith("Envelope"), (method, path, status, name)
            assert name in spec["components"]["schemas"]


async def test_openapi_documents_errors_as_400_not_422(api: Api) -> None:
    """The service answers malformed requests with 400 and the error envelope; a documented
    422 (FastAPI's default HTTPValidationError) would describe a response that never comes."""
    spec = await fetch_spec(api)
    wrong = [
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if "422" in operation.get("responses", {})
    ]
    assert wrong == [], f"these operations document a 422 the server never sends: {wrong}"
    for path in ["/api/chat/start", "/api/chat/{ticketId}/message", "/api/chat/history"]:
        operation = next(iter(spec["paths"][path].values()))
        error = operation["responses"]["400"]["content"]["application/json"]["schema"]
        assert error["$ref"].endswith("/ErrorOut")


async def test_openapi_documents_bearer_auth(api: Api) -> None:
    spec = await fetch_spec(api)
    schemes = spec["components"]["securitySchemes"]
    bearer = [name for name, s in schemes.items() if s.get("scheme", "").lower() == "bearer"]
    assert bearer, schemes
    for method, path in ENDPOINTS:
        if path == "/health":
            continue
        operation = spec["paths"][path][method]
        assert any(set(req) & set(bearer) for req in operation.get("security", [])), path
        assert "401" in operation["responses"], f"{method.upper()} {path}: 401 undocumented"


# --- real responses against the models ---------------------------------------------------


async def test_user_flow_matches_schemas(
    api: Api, user: Person, agent_factory: PersonFactory
) -> None:
    first_agent, second_agent = agent_factory(), agent_factory()
    files = [{"fileName": "a.png", "fileUrl": "https://cdn.example.com/a.png"}]

    resp = await api.post(
        "/api/chat/start",
        token=user,
        json={"message": "hello", "attachments": files, "clientMessageId": "c-1"},
    )
    started = validate(resp, Envelope[StartedOut], 201).data
    assert started.isExisting is False
    assert started.messages[0].clientMessageId == "c-1"
    ticket_id = started.ticketId

    resp = await api.post("/api/chat/start", token=user, json={"message": "again"})
    existing = validate(resp, Envelope[StartedOut], 200).data
    assert existing.isExisting is True and existing.ticketId == ticket_id

    path = f"/api/chat/{ticket_id}/message"
    sent = validate(await api.post(path, token=user, json={"message": "more"}), Envelope[SentOut])
    assert sent.data.seq == 3
    with_id = {"message": "idempotent", "clientMessageId": "c-2", "attachments": files}
    first = validate(await api.post(path, token=user, json=with_id), Envelope[SentOut]).data
    repeat = validate(await api.post(path, token=user, json=with_id), Envelope[SentOut]).data
    assert repeat.messageId == first.messageId

    joined = validate(
        await api.post(f"/api/chat/admin/join/{ticket_id}", token=first_agent), Envelope[JoinedOut]
    ).data
    assert joined.assignedTo == first_agent.id
    validate(
        await api.post(f"/api/chat/admin/join/{ticket_id}", token=second_agent),
        Envelope[JoinedOut],
    )
    reply = validate(
        await api.post(path, token=second_agent, json={"message": "agent here"}), Envelope[SentOut]
    ).data
    assert reply.ticketStatus == "in_progress"

    for who in (user, first_agent):
        got = validate(await api.get(f"/api/chat/{ticket_id}", token=who), Envelope[TicketDataOut])
        assert got.data.ticket.assignedTo is not None
        assert got.data.ticket.assignedTo.id == first_agent.id
        page = validate(
            await api.get(f"/api/chat/{ticket_id}/messages", token=who, params={"limit": 2}),
            Envelope[MessagesPageOut],
        )
        assert page.data.hasMore is True

    active = validate(await api.get("/api/chat/active", token=user), Envelope[UserActiveOut])
    assert active.data.count == 1
    queue = validate(
        await api.get("/api/chat/admin/active", token=first_agent), Envelope[AgentQueueOut]
    )
    assert ticket_id in {c.id for c in queue.data.chats}

    closed = validate(
        await api.post(
            f"/api/chat/admin/close/{ticket_id}",
            token=first_agent,
            json={"resolutionSummary": "fixed"},
        ),
        Envelope[ClosedOut],
    ).data
    assert closed.resolutionSummary == "fixed"
    again = validate(
        await api.post(f"/api/chat/admin/close/{ticket_id}", token=second_agent),
        Envelope[ClosedOut],
    ).data
    assert again.resolvedAt == closed.resolvedAt

    resolved = validate(
        await api.get("/api/chat/admin/active", token=first_agent, params={"status": "resolved"}),
        Envelope[AgentQueueOut],
    )
    mine = [c for c in resolved.data.chats if c.id == ticket_id]
    assert len(mine) == 1 and mine[0].resolvedBy is not None
    history = validate(await api.get("/api/chat/history", token=user), Envelope[HistoryOut])
    assert [c.id for c in history.data.chats] == [ticket_id]
    assert history.data.chats[0].status == "resolved"
    empty = validate(await api.get("/api/chat/active", token=user), Envelope[UserActiveOut])
    assert empty.data.count == 0


async def test_empty_listings_match_schemas(api: Api, user: Person) -> None:
    history = validate(await api.get("/api/chat/history", token=user), Envelope[HistoryOut])
    assert history.data.chats == []
    active = validate(await api.get("/api/chat/active", token=user), Envelope[UserActiveOut])
    assert active.data.activeChats == []


async def test_health_matches_schema(api: Api) -> None:
    health = validate(await api.get("/health"), Envelope[HealthOut])
    assert health.data.status == "ok" and health.data.database == "ok"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("post", "/api/chat/start", {"content": b"{oops"}, 400, None),
        ("post", "/api/chat/start", {"json": {"message": 5}}, 400, None),
        ("post", "/api/chat/start", {"json": {"message": " "}}, 400, None),
        ("post", "/api/chat/start", {"json": {"message": "x", "priority": "no"}}, 400, None),
        ("get", "/api/chat/history?page=x", {}, 400, None),
        ("get", "/api/chat/admin/active?status=bogus", {"as": "agent"}, 400, None),
        ("get", "/api/chat/history", {"as": None}, 401, "TOKEN_MISSING"),
        ("get", "/api/chat/history", {"as": "garbage"}, 401, "TOKEN_INVALID"),
        ("get", "/api/chat/history", {"as": "expired"}, 401, "TOKEN_EXPIRED"),
        ("get", "/api/chat/admin/active", {}, 403, None),
        ("get", "/api/chat/0123456789abcdef01234567", {}, 404, None),
        ("get", "/api/chat/not-an-id", {}, 404, None),
        ("get", "/api/nothing/here", {}, 404, None),
    ],
)
async def test_error_bodies_match_schema(
    api: Api,
    user_factory: PersonFactory,
    agent_factory: PersonFactory,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    who: Any = user_factory()
    request: dict[str, Any] = {}
    if "as" in kwargs:
        who = {
            None: None,
            "garbage": "garbage",
            "agent": agent_factory(),
            "expired": user_factory(expires_in=-120),
        }[kwargs["as"]]
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    if "content" in kwargs:
        request["content"] = kwargs["content"]
        request["headers"] = {"Content-Type": "application/json"}
    error = validate_error(await api.request(method.upper(), path, token=who, **request), status)
    if code is not None:
        assert error.code == code


async def test_conflict_and_not_found_bodies_match_schema(
    api: Api, user_factory: PersonFactory, agent: Person
) -> None:
    owner, other = user_factory(), user_factory()
    started = validate(
        await api.post("/api/chat/start", token=owner, json={"message": "hi"}),
        Envelope[StartedOut],
        201,
    ).data
    path = f"/api/chat/{started.ticketId}"
    assert validate_error(await api.get(path, token=other), 404).message == NOT_FOUND
    validate_error(await api.get(f"{path}/messages?after=nope", token=owner), 404)
    validate(
        await api.post(f"/api/chat/admin/close/{started.ticketId}", token=agent),
        Envelope[ClosedOut],
    )
    validate_error(await api.post(f"{path}/message", token=owner, json={"message": "late"}), 409)


async def test_observed_error_statuses_are_documented(
    api: Api, user: Person, agent: Person
) -> None:
    """Each status an endpoint really answered with is one its operation documents."""
    spec = await fetch_spec(api)
    started = (await api.post("/api/chat/start", token=user, json={"message": "hi"})).json()
    tid = started["data"]["ticketId"]
    await api.post(f"/api/chat/admin/close/{tid}", token=agent)
    unknown = "0123456789abcdef01234567"
    observed = [
        ("post", "/api/chat/start", await api.post("/api/chat/start", token=user, json={})),
        ("get", "/api/chat/history", await api.get("/api/chat/history?limit=x", token=user)),
        ("get", "/api/chat/{ticketId}", await api.get(f"/api/chat/{unknown}", token=user)),
        (
            "post",
            "/api/chat/{ticketId}/message",
            await api.post(f"/api/chat/{tid}/message", token=user, json={"message": "x"}),
        ),
        (
            "get",
            "/api/chat/{ticketId}/messages",
            await api.get(f"/api/chat/{tid}/messages?after=zz", token=user),
        ),
        ("get", "/api/chat/admin/active", await api.get("/api/chat/admin/active", token=user)),
        (
            "post",
            "/api/chat/admin/join/{ticketId}",
            await api.post(f"/api/chat/admin/join/{unknown}", token=agent),
        ),
        (
            "post",
            "/api/chat/admin/close/{ticketId}",
            await api.post(f"/api/chat/admin/close/{unknown}", token=agent),
        ),
        ("get", "/api/chat/active", await api.get("/api/chat/active")),
    ]
    for method, path, resp in observed:
        assert resp.status_code >= 400, (path, resp.text)
        ErrorOut.model_validate(resp.json())
        documented = spec["paths"][path][method]["responses"]
        assert str(resp.status_code) in documented, (method, path, resp.status_code)
