"""Agent endpoints (/api/chat/admin/...) and authentication of every REST endpoint.

The agents' queue is shared by the whole server (every test's tickets are in it), so
tests only look at the entries of the tickets they made themselves.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import pytest

from support import (
    DEFAULT_SUMMARY,
    NOT_FOUND,
    TIMESTAMP_RE,
    Api,
    Cli,
    Person,
    PersonFactory,
    ServerInfo,
    body_of,
    error_body,
    get_ticket,
    make_token,
    ok_data,
    start_chat,
)

ALL_STATUSES = ["open", "in_progress", "waiting_for_user", "resolved", "closed"]


# --- small helpers -----------------------------------------------------------------------


async def queue(api: Api, agent: Person, status: str | None = None) -> Any:
    params = {} if status is None else {"status": status}
    return ok_data(await api.get("/api/chat/admin/active", token=agent, params=params))


async def queue_page(api: Api, agent: Person, **params: Any) -> Any:
    return ok_data(await api.get("/api/chat/admin/active", token=agent, params=params))


def entry(chats: list[dict[str, Any]], ticket_id: str) -> dict[str, Any] | None:
    found = [c for c in chats if c["_id"] == ticket_id]
    assert len(found) <= 1, f"ticket {ticket_id} listed {len(found)} times"
    return found[0] if found else None


async def join(api: Api, agent: Person, ticket_id: str) -> Any:
    return ok_data(await api.post(f"/api/chat/admin/join/{ticket_id}", token=agent))


async def close(api: Api, agent: Person, ticket_id: str, body: Any = None) -> Any:
    resp = await api.post(f"/api/chat/admin/close/{ticket_id}", token=agent, json=body)
    return ok_data(resp)


# --- GET /api/chat/admin/active ----------------------------------------------------------


async def test_admin_active_lists_active_chats_by_default(
    api: Api, user_factory: PersonFactory, agent: Person
) -> None:
    jane = user_factory(name="Jane Doe", email=None)
    data = await start_chat(api, jane, "I need help", category="technical_support", priority="high")

    resp = await api.get("/api/chat/admin/active", token=agent)
    body = body_of(resp, 200)
    assert body["success"] is True
    assert body["message"] == "Active chat tickets retrieved successfully"
    chats = body["data"]["chats"]
    assert body["data"]["count"] == len(chats)
    chat = entry(chats, data["ticketId"])
    assert chat is not None, "a new open chat must be in the agents' queue"
    assert chat["ticketNumber"] == data["ticketNumber"]
    assert chat["status"] == "open"
    assert chat["priority"] == "high"
    assert chat["category"] == "technical_support"
    assert chat["subject"].startswith("Chat Support - ")
    assert TIMESTAMP_RE.match(chat["createdAt"]) and TIMESTAMP_RE.match(chat["lastUpdated"])
    assert chat["userId"]["fullName"] == "Jane Doe"
    assert chat["userId"]["email"] == jane.email
    assert chat["assignedTo"] is None
    assert [m["message"] for m in chat["messages"]] == ["I need help"]
    assert {c["status"] for c in chats} <= {"open", "in_progress", "waiting_for_user"}

    explicit = await queue(api, agent, "active")
    assert entry(explicit["chats"], data["ticketId"]) is not None
    assert explicit["count"] == len(explicit["chats"])


async def test_admin_active_filters_by_status(
    api: Api, user_factory: PersonFactory, agent: Person
) -> None:
    open_one = await start_chat(api, user_factory())
    taken = await start_chat(api, user_factory())
    done = await start_chat(api, user_factory())
    await join(api, agent, taken["ticketId"])
    await close(api, agent, done["ticketId"])

    default = (await queue(api, agent))["chats"]
    assert entry(default, open_one["ticketId"]) is not None
    assert entry(default, taken["ticketId"]) is not None
    assert entry(default, done["ticketId"]) is None

    expected = {"open": open_one, "in_progress": taken, "resolved": done}
    for status, mine in expected.items():
        listed = await queue(api, agent, status)
        assert listed["count"] == len(listed["chats"])
        assert {c["status"] for c in listed["chats"]} == {status}
        for other in expected.values():
            present = entry(listed["chats"], other["ticketId"]) is not None
            assert present == (other is mine), (status, other["ticketId"])

    resolved = entry((await queue(api, agent, "resolved"))["chats"], done["ticketId"])
    assert resolved is not None
    assert resolved["resolutionSummary"] == DEFAULT_SUMMARY
    in_progress = entry((await queue(api, agent, "in_progress"))["chats"], taken["ticketId"])
    assert in_progress is not None
    assert in_progress["assignedTo"]["fullName"] == agent.name
    assert in_progress["assignedTo"]["email"] == agent.email

    for status in ("waiting_for_user", "closed"):
        listed = await queue(api, agent, status)
        assert all(c["status"] == status for c in listed["chats"])


async def test_admin_active_rejects_unknown_status(api: Api, agent: Person) -> None:
    for bogus in ["bogus", "OPEN", "all", "resolved,open"]:
        resp = await api.get("/api/chat/admin/active", token=agent, params={"status": bogus})
        body = error_body(resp, 400)
        for valid in ["active", *ALL_STATUSES]:
            assert valid in body["message"], (bogus, body["message"])


async def test_admin_active_pages_the_queue_most_recent_first(
    api: Api, user_factory: PersonFactory, agent: Person
) -> None:
    made = [(await start_chat(api, user_factory()))["ticketId"] for _ in range(3)]
    whole = await queue_page(api, agent)
    ids = [c["_id"] for c in whole["chats"]]
    assert ids[:3] == made[::-1], "the most recently updated chats come first"
    total = whole["pagination"]["totalChats"]
    assert total >= 3 and whole["count"] == len(ids) == min(total, 500)
    assert whole["pagination"]["limit"] == 500

    first = await queue_page(api, agent, limit=2)
    second = await queue_page(api, agent, limit=2, page=2)
    assert [c["_id"] for c in first["chats"] + second["chats"]] == ids[:4]
    assert first["count"] == 2
    assert first["pagination"] == {
        "currentPage": 1,
        "totalPages": (total + 1) // 2,
        "totalChats": total,
        "hasNextPage": True,
        "hasPrevPage": False,
        "limit": 2,
    }
    assert second["pagination"]["hasPrevPage"] is True

    beyond = await queue_page(api, agent, limit=2, page=total)  # past the last page
    assert beyond["chats"] == [] and beyond["count"] == 0
    assert beyond["pagination"]["hasNextPage"] is False


async def test_admin_active_carries_each_chats_latest_messages(
    api: Api, user_factory: PersonFactory, agent: Person
) -> None:
    user = user_factory()
    ticket_id = (await start_chat(api, user, "m0"))["ticketId"]
    for n in range(1, 5):
        resp = await api.post(
            f"/api/chat/{ticket_id}/message", token=user, json={"message": f"m{n}"}
        )
        ok_data(resp)

    async def texts(**params: Any) -> list[str]:
        chat = entry((await queue_page(api, agent, **params))["chats"], ticket_id)
        assert chat is not None
        return [m["message"] for m in chat["messages"]]

    assert await texts() == ["m0", "m1", "m2", "m3", "m4"]  # under the default of 50
    assert await texts(messages=2) == ["m3", "m4"]
    assert await texts(messages=1) == ["m4"]
    assert await texts(messages=0) == []
    assert await texts(messages=500) == ["m0", "m1", "m2", "m3", "m4"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": "ten"},
        {"page": 0},
        {"page": -1},
        {"messages": -1},
        {"messages": 501},
    ],
)
async def test_admin_active_rejects_out_of_range_paging(
    api: Api, agent: Person, params: dict[str, Any]
) -> None:
    body = error_body(await api.get("/api/chat/admin/active", token=agent, params=params), 400)
    assert next(iter(params)) in body["message"], body


# --- POST /api/chat/admin/join/:ticketId -------------------------------------------------


async def test_join_assigns_and_moves_to_in_progress(
    api: Api, user_factory: PersonFactory, agent: Person
) -> None:
    jane = user_factory(name="Jane Doe")
    data = await start_chat(api, jane, "Hello, I need help with my account")
    resp = await api.post(f"/api/chat/admin/join/{data['ticketId']}", token=agent)
    body = body_of(resp, 200)
    assert body["success"] is True
    assert body["message"] == "Successfully joined chat as admin"
    joined = body["data"]
    assert joined["ticketId"] == data["ticketId"]
    assert joined["ticketNumber"] == data["ticketNumber"]
    assert joined["assignedTo"] == agent.id
    assert joined["status"] == "in_progress"
    assert joined["userName"] == "Jane Doe"
    assert joined["userEmail"] == jane.email
    assert [m["message"] for m in joined["messages"]] == ["Hello, I need help with my account"]

    ticket = await get_ticket(api, jane, data["ticketId"])
    assert ticket["status"] == "in_progress"
    assert ticket["assignedTo"]["_id"] == agent.id
    assert ticket["assignedTo"]["fullName"] == agent.name
    assert ticket["assignedTo"]["email"] == agent.email

    again = await join(api, agent, data["ticketId"])  # re-joining is harmless
    assert again["assignedTo"] == agent.id
    assert again["status"] == "in_progress"


async def test_second_agent_join_keeps_first_assignee(
    api: Api, user: Person, agent_factory: PersonFactory
) -> None:
    first, second = agent_factory(), agent_factory()
    data = await start_chat(api, user)
    assert (await join(api, first, data["ticketId"]))["assignedTo"] == first.id
    joined = await join(api, second, data["ticketId"])
    assert joined["assignedTo"] == first.id, "the response must name the real assignee"
    assert joined["status"] == "in_progress"
    ticket = await get_ticket(api, second, data["ticketId"])
    assert ticket["assignedTo"]["_id"] == first.id
    assert ticket["assignedTo"]["email"] == first.email


async def test_join_keeps_in_progress_after_agent_reply(
    api: Api, user: Person, agent_factory: PersonFactory
) -> None:
    first, second = agent_factory(), agent_factory()
    data = await start_chat(api, user)
    resp = await api.post(
        f"/api/chat/{data['ticketId']}/message", token=first, json={"message": "hi"}
    )
    assert ok_data(resp)["ticketStatus"] == "in_progress"
    joined = await join(api, second, data["ticketId"])
    assert joined["status"] == "in_progress"
    ticket = await get_ticket(api, user, data["ticketId"])
    assert joined["assignedTo"] == (ticket["assignedTo"] or {}).get("_id")


async def test_join_unknown_or_malformed_ticket_is_not_found(api: Api, agent: Person) -> None:
    for bad in ["nope", "x" * 24, "0123456789abcdef01234567"]:
        body = error_body(await api.post(f"/api/chat/admin/join/{bad}", token=agent), 404)
        assert body["message"] == NOT_FOUND


# --- POST /api/chat/admin/close/:ticketId ------------------------------------------------


async def test_close_with_default_summary(api: Api, user: Person, agent: Person) -> None:
    data = await start_chat(api, user)
    await join(api, agent, data["ticketId"])
    resp = await api.post(f"/api/chat/admin/close/{data['ticketId']}", token=agent)
    body = body_of(resp, 200)
    assert body["success"] is True
    assert body["message"] == "Chat session closed successfully"
    closed = body["data"]
    assert closed["ticketId"] == data["ticketId"]
    assert closed["ticketNumber"] == data["ticketNumber"]
    assert TIMESTAMP_RE.match(closed["resolvedAt"]), closed
    assert closed["resolutionSummary"] == DEFAULT_SUMMARY

    ticket = await get_ticket(api, user, data["ticketId"])
    assert ticket["status"] == "resolved"
    assert ticket["resolvedAt"] == closed["resolvedAt"]
    assert ticket["resolutionSummary"] == DEFAULT_SUMMARY
    assert ticket["resolvedBy"]["_id"] == agent.id


@pytest.mark.parametrize("body", [{}, {"resolutionSummary": ""}, {"resolutionSummary": "   "}])
async def test_close_empty_summary_gets_default(
    api: Api, user: Person, agent: Person, body: dict[str, Any]
) -> None:
    data = await start_chat(api, user)
    closed = await close(api, agent, data["ticketId"], body)
    assert closed["resolutionSummary"] == DEFAULT_SUMMARY


async def test_close_with_custom_summary_and_again(
    api: Api, user: Person, agent_factory: PersonFactory
) -> None:
    first, second = agent_factory(), agent_factory()
    data = await start_chat(api, user)
    summary = "Account issue resolved successfully"
    closed = await close(api, first, data["ticketId"], {"resolutionSummary": summary})
    assert closed["resolutionSummary"] == summary

    for who in (first, second):
        resp = await api.post(
            f"/api/chat/admin/close/{data['ticketId']}",
            token=who,
            json={"resolutionSummary": "a different summary"},
        )
        again = ok_data(resp)
        assert again["ticketId"] == data["ticketId"]
        assert again["resolvedAt"] == closed["resolvedAt"]
        assert again["resolutionSummary"] == summary

    ticket = await get_ticket(api, user, data["ticketId"])
    assert ticket["status"] == "resolved"
    assert ticket["resolutionSummary"] == summary
    assert ticket["resolvedAt"] == closed["resolvedAt"]
    assert ticket["resolvedBy"]["_id"] == first.id
    assert [c for c in (await queue(api, second))["chats"] if c["_id"] == data["ticketId"]] == []


async def test_close_unknown_or_malformed_ticket_is_not_found(api: Api, agent: Person) -> None:
    for bad in ["nope", "0123456789abcdef01234567"]:
        body = error_body(await api.post(f"/api/chat/admin/close/{bad}", token=agent), 404)
        assert body["message"] == NOT_FOUND


# --- authentication and authorization ----------------------------------------------------


def admin_calls(ticket_id: str) -> list[tuple[str, str]]:
    return [
        ("GET", "/api/chat/admin/active"),
        ("GET", "/api/chat/admin/active?status=resolved"),
        ("POST", f"/api/chat/admin/join/{ticket_id}"),
        ("POST", f"/api/chat/admin/close/{ticket_id}"),
    ]


def user_calls(ticket_id: str) -> list[tuple[str, str]]:
    return [
        ("POST", "/api/chat/start"),
        ("GET", "/api/chat/history"),
        ("GET", "/api/chat/active"),
        ("GET", f"/api/chat/{ticket_id}"),
        ("POST", f"/api/chat/{ticket_id}/message"),
        ("GET", f"/api/chat/{ticket_id}/messages"),
    ]


async def call(api: Api, method: str, path: str, token: Person | str | None = None) -> Any:
    body = {"message": "hello"} if method == "POST" else None
    return await api.request(method, path, token=token, json=body)


async def test_user_token_on_admin_endpoints_is_forbidden(
    api: Api, user: Person, user_factory: PersonFactory
) -> None:
    data = await start_chat(api, user)
    for method, path in admin_calls(data["ticketId"]):
        error_body(await call(api, method, path, user), 403)
    # A role outside the admin set is a user too.
    support_role = user_factory(role="support")
    for method, path in admin_calls(data["ticketId"]):
        error_body(await call(api, method, path, support_role), 403)
    ticket = await get_ticket(api, user, data["ticketId"])
    assert ticket["status"] == "open"  # neither joined nor closed
    assert ticket["assignedTo"] is None


@pytest.mark.parametrize("role", ["admin", "moderator", "super_admin"])
async def test_admin_roles_are_agents(
    api: Api, user: Person, agent_factory: PersonFactory, role: str
) -> None:
    agent = agent_factory(role=role)
    data = await start_chat(api, user)
    assert (await join(api, agent, data["ticketId"]))["assignedTo"] == agent.id


async def test_missing_token_is_401_token_missing(api: Api, user: Person) -> None:
    data = await start_chat(api, user)
    for method, path in admin_calls(data["ticketId"]) + user_calls(data["ticketId"]):
        body = error_body(await call(api, method, path), 401)
        assert body["code"] == "TOKEN_MISSING", (method, path, body)
    # An empty bearer is no token either.
    resp = await api.get("/api/chat/history", headers={"Authorization": "Bearer"})
    assert error_body(resp, 401)["code"] == "TOKEN_MISSING"


async def test_garbage_token_is_401_token_invalid(
    api: Api, user: Person, server: ServerInfo
) -> None:
    data = await start_chat(api, user)
    now = int(time.time())
    claims = {"userId": "u-x", "fullName": "X", "email": "x@example.com", "exp": now + 600}
    wrong_secret = jwt.encode(claims, "not-the-server-secret-" * 3, algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")
    tampered = user.token[:-4] + ("AAAA" if not user.token.endswith("AAAA") else "BBBB")
    no_user_id = make_token(server.secret, "", "Nobody", "n@example.com")
    for bad in ["garbage", "a.b.c", wrong_secret, unsigned, tampered, no_user_id]:
        for method, path in admin_calls(data["ticketId"])[:1] + user_calls(data["ticketId"]):
            body = error_body(await call(api, method, path, bad), 401)
            assert body["code"] == "TOKEN_INVALID", (bad, method, path, body)


async def test_expired_token_is_401_token_expired(
    api: Api, user: Person, user_factory: PersonFactory, agent_factory: PersonFactory
) -> None:
    data = await start_chat(api, user)
    expired_user = user_factory(expires_in=-120)
    expired_agent = agent_factory(expires_in=-120)
    for who, calls in [
        (expired_user, user_calls(data["ticketId"])),
        (expired_agent, admin_calls(data["ticketId"])),
    ]:
        for method, path in calls:
            body = error_body(await call(api, method, path, who), 401)
            assert body["code"] == "TOKEN_EXPIRED", (method, path, body)
    assert (await get_ticket(api, user, data["ticketId"]))["status"] == "open"


async def test_cli_tokens_are_accepted(api: Api, cli: Cli, user_factory: PersonFactory) -> None:
    ids = user_factory()  # just for unique ids
    user_id, agent_id = f"cli-{ids.id}", f"cli-agent-{ids.id}"

    def token(*args: str) -> str:
        return cli("token", *args).stdout.strip().splitlines()[-1].strip()

    user_token = await asyncio.to_thread(
        token, "--user-id", user_id, "--name", "Cli User", "--email", "cli@example.com"
    )
    agent_token = await asyncio.to_thread(
        token, "--user-id", agent_id, "--name", "Cli Agent", "--email", "agent@example.com",
        "--role", "admin",
    )  # fmt: skip

    resp = await api.post("/api/chat/start", token=user_token, json={"message": "from the cli"})
    data = ok_data(resp, 201)
    assert data["messages"][0]["sender"] == user_id
    error_body(await api.get("/api/chat/admin/active", token=user_token), 403)

    joined = ok_data(await api.post(f"/api/chat/admin/join/{data['ticketId']}", token=agent_token))
    assert joined["assignedTo"] == agent_id
    assert joined["userName"] == "Cli User"
    assert joined["userEmail"] == "cli@example.com"
    ticket = ok_data(await api.get(f"/api/chat/{data['ticketId']}", token=user_token))["ticket"]
    assert ticket["assignedTo"]["fullName"] == "Cli Agent"
    assert ticket["assignedTo"]["email"] == "agent@example.com"
