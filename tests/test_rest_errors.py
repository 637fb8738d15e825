"""Malformed requests: every one is a 400 (never 422 or 500) in the error envelope, and
leaves nothing behind. Also unknown routes, fields the server must ignore, and /health.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import support
from support import Api, Person, get_ticket, ok_data, start_chat

CATEGORIES = ["general_inquiry", "account_support", "technical_support", "technical_issue",
              "account_problem", "payment_inquiry", "project_question", "assessment_issue",
              "application_help", "bug_report", "feature_request", "other"]  # fmt: skip
PRIORITIES = ["low", "medium", "high", "urgent"]
START_REQUIRED = "Initial message is required to start chat"
SEND_REQUIRED = "Message is required"


# --- helpers -----------------------------------------------------------------------------


def error_body(resp: httpx.Response, status: int = 400) -> dict[str, Any]:
    """support.error_body, and what this file is about besides: no blank message, a
    non-empty code where there is one, and no server internals in the response."""
    body = support.error_body(resp, status)
    assert body["message"].strip(), body
    if "code" in body:
        assert isinstance(body["code"], str) and body["code"], body
    text = resp.text.lower()
    assert "traceback" not in text and "sqlalchemy" not in text, body
    return body


async def post_raw(api: Api, path: str, who: Person, content: bytes, ctype: str) -> httpx.Response:
    return await api.post(path, token=who, content=content, headers={"Content-Type": ctype})


async def assert_no_chats(api: Api, who: Person) -> None:
    history = ok_data(await api.get("/api/chat/history", token=who))
    assert history["chats"] == [] and history["pagination"]["totalChats"] == 0, history
    active = ok_data(await api.get("/api/chat/active", token=who))
    assert active["count"] == 0, active


def attachment(i: int = 0, **over: Any) -> dict[str, Any]:
    return {
        "fileName": f"f{i}.png",
        "fileUrl": f"https://cdn.example.com/f{i}.png",
        "fileType": "image/png",
        **over,
    }


# Bodies that are not a JSON object, sent raw.
RAW_BODIES = [
    pytest.param(b'{"message": "hi"', "application/json", id="truncated-json"),
    pytest.param(b"{message: 'hi'}", "application/json", id="not-json"),
    pytest.param(b'["hi"]', "application/json", id="array"),
    pytest.param(b'"just a string"', "application/json", id="string"),
    pytest.param(b"42", "application/json", id="number"),
    pytest.param(b"message=hi", "application/x-www-form-urlencoded", id="form"),
    pytest.param(b"hi", "text/plain", id="text"),
]

# JSON objects with a wrong shape; each would be a valid start without its defect.
BAD_FIELDS = [
    pytest.param({"message": 123}, id="message-int"),
    pytest.param({"message": ["hi"]}, id="message-list"),
    pytest.param({"message": {"text": "hi"}}, id="message-object"),
    pytest.param({"message": True}, id="message-bool"),
    pytest.param({"message": "hi", "attachments": "file.png"}, id="attachments-string"),
    pytest.param({"message": "hi", "attachments": attachment()}, id="attachments-object"),
    pytest.param({"message": "hi", "attachments": ["file.png"]}, id="attachment-string"),
    pytest.param({"message": "hi", "attachments": [{"fileName": "a"}]}, id="attachment-no-url"),
    pytest.param(
        {"message": "hi", "attachments": [{"fileUrl": "https://x.example/a"}]},
        id="attachment-no-name",
    ),
    pytest.param(
        {"message": "hi", "attachments": [attachment(fileUrl="ftp://x.example/a")]},
        id="fileurl-ftp",
    ),
    pytest.param(
        {"message": "hi", "attachments": [attachment(fileUrl="javascript:alert(1)")]},
        id="fileurl-javascript",
    ),
    pytest.param(
        {"message": "hi", "attachments": [attachment(fileUrl="not a url")]}, id="fileurl-text"
    ),
    pytest.param({"message": "hi", "attachments": [attachment(fileUrl=123)]}, id="fileurl-int"),
    pytest.param(
        {"message": "hi", "attachments": [attachment(i) for i in range(11)]},
        id="eleven-attachments",
    ),
    pytest.param({"message": "hi", "clientMessageId": "x" * 65}, id="client-id-too-long"),
    pytest.param({"message": "hi", "clientMessageId": 7}, id="client-id-int"),
]

# Bodies without a message; each endpoint's test adds blank text and other fields alone.
NO_MESSAGE = [
    pytest.param(None, id="no-body"),
    pytest.param({}, id="empty-object"),
    pytest.param({"message": None}, id="null"),
    pytest.param({"message": ""}, id="empty"),
]


# --- POST /api/chat/start ----------------------------------------------------------------


@pytest.mark.parametrize(("content", "ctype"), RAW_BODIES)
async def test_start_rejects_non_object_body(
    api: Api, user: Person, content: bytes, ctype: str
) -> None:
    error_body(await post_raw(api, "/api/chat/start", user, content, ctype))
    await assert_no_chats(api, user)


@pytest.mark.parametrize("payload", BAD_FIELDS)
async def test_start_rejects_wrong_types(api: Api, user: Person, payload: dict[str, Any]) -> None:
    error_body(await api.post("/api/chat/start", token=user, json=payload))
    await assert_no_chats(api, user)


@pytest.mark.parametrize(
    "payload",
    [
        *NO_MESSAGE,
        pytest.param({"message": "   \n\t "}, id="whitespace"),
        pytest.param({"category": "other", "priority": "low"}, id="only-options"),
    ],
)
async def test_start_requires_message(api: Api, user: Person, payload: Any) -> None:
    resp = await api.post("/api/chat/start", token=user, json=payload)
    assert error_body(resp)["message"] == START_REQUIRED
    await assert_no_chats(api, user)


async def test_start_unknown_category_lists_valid_values(api: Api, user: Person) -> None:
    resp = await api.post(
        "/api/chat/start", token=user, json={"message": "hi", "category": "billing_magic"}
    )
    message = error_body(resp)["message"]
    for valid in CATEGORIES:
        assert valid in message, message
    await assert_no_chats(api, user)


@pytest.mark.parametrize("priority", ["critical", "HIGH", "0"])
async def test_start_unknown_priority_lists_valid_values(
    api: Api, user: Person, priority: str
) -> None:
    resp = await api.post(
        "/api/chat/start", token=user, json={"message": "hi", "priority": priority}
    )
    message = error_body(resp)["message"]
    for valid in PRIORITIES:
        assert valid in message, message
    await assert_no_chats(api, user)


async def test_start_wrongly_typed_category_or_priority(api: Api, user: Person) -> None:
    for payload in [{"message": "hi", "category": 5}, {"message": "hi", "priority": ["high"]}]:
        error_body(await api.post("/api/chat/start", token=user, json=payload))
    await assert_no_chats(api, user)


async def test_start_message_length_limit(api: Api, user: Person) -> None:
    resp = await api.post("/api/chat/start", token=user, json={"message": "x" * 5001})
    assert "5000" in error_body(resp)["message"]
    await assert_no_chats(api, user)
    data = await start_chat(api, user, "y" * 5000)
    assert data["messages"][0]["message"] == "y" * 5000


async def test_start_accepts_ten_attachments(api: Api, user: Person) -> None:
    files = [attachment(i) for i in range(10)]
    resp = await api.post(
        "/api/chat/start", token=user, json={"message": "hi", "attachments": files}
    )
    data = ok_data(resp, 201)
    assert data["messages"][0]["attachments"] == files


async def test_rejected_start_on_active_chat_adds_nothing(api: Api, user: Person) -> None:
    data = await start_chat(api, user)
    before = await get_ticket(api, user, data["ticketId"])
    for payload in [{"message": "  "}, {"message": 5}, {"message": "hi", "priority": "nope"},
                    {"message": "z" * 5001}]:  # fmt: skip
        error_body(await api.post("/api/chat/start", token=user, json=payload))
    assert await get_ticket(api, user, data["ticketId"]) == before


# --- POST /api/chat/:ticketId/message ----------------------------------------------------


@pytest.mark.parametrize(("content", "ctype"), RAW_BODIES)
async def test_send_rejects_non_object_body(
    api: Api, user: Person, content: bytes, ctype: str
) -> None:
    data = await start_chat(api, user)
    before = await get_ticket(api, user, data["ticketId"])
    error_body(await post_raw(api, f"/api/chat/{data['ticketId']}/message", user, content, ctype))
    assert await get_ticket(api, user, data["ticketId"]) == before


@pytest.mark.parametrize("payload", BAD_FIELDS)
async def test_send_rejects_wrong_types(api: Api, user: Person, payload: dict[str, Any]) -> None:
    data = await start_chat(api, user)
    before = await get_ticket(api, user, data["ticketId"])
    error_body(await api.post(f"/api/chat/{data['ticketId']}/message", token=user, json=payload))
    assert await get_ticket(api, user, data["ticketId"]) == before


@pytest.mark.parametrize(
    "payload",
    [
        *NO_MESSAGE,
        pytest.param({"message": " \r\n\t  "}, id="whitespace"),
        pytest.param({"attachments": [attachment()]}, id="only-attachments"),
    ],
)
async def test_send_requires_message(api: Api, user: Person, agent: Person, payload: Any) -> None:
    data = await start_chat(api, user)
    before = await get_ticket(api, user, data["ticketId"])
    for who in (user, agent):
        resp = await api.post(f"/api/chat/{data['ticketId']}/message", token=who, json=payload)
        assert error_body(resp)["message"] == SEND_REQUIRED
    assert await get_ticket(api, user, data["ticketId"]) == before


async def test_send_message_length_limit(api: Api, user: Person, agent: Person) -> None:
    data = await start_chat(api, user)
    path = f"/api/chat/{data['ticketId']}/message"
    before = await get_ticket(api, user, data["ticketId"])
    for who in (user, agent):
        resp = await api.post(path, token=who, json={"message": "x" * 5001})
        assert "5000" in error_body(resp)["message"]
    assert await get_ticket(api, user, data["ticketId"]) == before
    sent = ok_data(await api.post(path, token=user, json={"message": "y" * 5000}))
    ticket = await get_ticket(api, user, data["ticketId"])
    assert ticket["messages"][-1]["_id"] == sent["messageId"]
    assert ticket["messages"][-1]["message"] == "y" * 5000


async def test_send_counts_characters_not_bytes(api: Api, user: Person) -> None:
    data = await start_chat(api, user)
    text = "é" * 5000  # 10000 bytes in UTF-8, 5000 characters
    sent = ok_data(
        await api.post(f"/api/chat/{data['ticketId']}/message", token=user, json={"message": text})
    )
    ticket = await get_ticket(api, user, data["ticketId"])
    assert ticket["messages"][-1]["_id"] == sent["messageId"]
    assert ticket["messages"][-1]["message"] == text


async def test_send_validation_comes_before_ticket_state(
    api: Api, user: Person, agent: Person
) -> None:
    """An invalid body is a 400 whatever the ticket; a valid one to a closed chat a 409."""
    data = await start_chat(api, user)
    ok_data(await api.post(f"/api/chat/admin/close/{data['ticketId']}", token=agent))
    path = f"/api/chat/{data['ticketId']}/message"
    error_body(await api.post(path, token=user, json={"message": 5}))
    error_body(await api.post(path, token=user, json={"message": "late"}), 409)


# --- admin endpoints ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "ctype"),
    [
        pytest.param(b'{"resolutionSummary": ', "application/json", id="truncated-json"),
        pytest.param(b'["done"]', "application/json", id="array"),
        pytest.param(b'{"resolutionSummary": 5}', "application/json", id="summary-int"),
        pytest.param(b'{"resolutionSummary": ["done"]}', "application/json", id="summary-list"),
    ],
)
async def test_close_rejects_malformed_body(
    api: Api, user: Person, agent: Person, content: bytes, ctype: str
) -> None:
    data = await start_chat(api, user)
    before = await get_ticket(api, user, data["ticketId"])
    path = f"/api/chat/admin/close/{data['ticketId']}"
    error_body(await post_raw(api, path, agent, content, ctype))
    after = await get_ticket(api, user, data["ticketId"])
    assert after == before
    assert after["status"] == "open"


# --- fields a client does not get to set -------------------------------------------------


async def test_send_ignores_server_owned_fields(api: Api, user: Person, agent: Person) -> None:
    data = await start_chat(api, user)
    path = f"/api/chat/{data['ticketId']}/message"
    forged = {
        "message": "just a user",
        "status": "resolved",
        "ticketStatus": "resolved",
        "assignedTo": agent.id,
        "sender": agent.id,
        "senderName": "Support Agent",
        "senderModel": "Admin",
        "isAdminReply": True,
        "timestamp": "2001-01-01T00:00:00.000Z",
        "_id": "0123456789abcdef01234567",
        "seq": 99,
        "ticketId": "0123456789abcdef01234567",
    }
    sent = ok_data(await api.post(path, token=user, json=forged))
    assert sent["ticketStatus"] == "open"
    assert sent["seq"] == 2
    assert sent["messageId"] != forged["_id"]
    assert sent["timestamp"] != forged["timestamp"]
    ticket = await get_ticket(api, user, data["ticketId"])
    assert ticket["status"] == "open"
    assert ticket["assignedTo"] is None
    stored = ticket["messages"][-1]
    assert stored["_id"] == sent["messageId"]
    assert stored["message"] == "just a user"
    assert stored["sender"] == user.id
    assert stored["senderModel"] == "DTUser"
    assert stored["isAdminReply"] is False
    assert stored["seq"] == 2
    assert stored["timestamp"] == sent["timestamp"]


async def test_start_ignores_server_owned_fields(api: Api, user: Person, agent: Person) -> None:
    forged = {
        "message": "hello",
        "status": "resolved",
        "assignedTo": agent.id,
        "ticketNumber": "TKT-1999-000001",
        "ticketId": "0123456789abcdef01234567",
        "_id": "0123456789abcdef01234567",
        "userId": agent.id,
        "isExisting": True,
        "senderModel": "Admin",
        "isAdminReply": True,
        "subject": "Forged",
    }
    data = ok_data(await api.post("/api/chat/start", token=user, json=forged), 201)
    assert data["isExisting"] is False
    assert data["status"] == "open"
    assert data["ticketId"] != forged["ticketId"]
    assert data["ticketNumber"] != forged["ticketNumber"]
    ticket = await get_ticket(api, user, data["ticketId"])
    assert ticket["status"] == "open"
    assert ticket["assignedTo"] is None
    assert ticket["subject"] != "Forged"
    assert ticket["userId"]["_id"] == user.id
    first = ticket["messages"][0]
    assert (first["sender"], first["senderModel"], first["isAdminReply"]) == (
        user.id,
        "DTUser",
        False,
    )


# --- routes, health ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/nope"),
        ("GET", "/api/chat/admin/nope"),
        ("POST", "/api/chat/admin/reopen/0123456789abcdef01234567"),
        ("GET", "/api/chat/0123456789abcdef01234567/attachments"),
        ("GET", "/definitely/not/here"),
    ],
)
async def test_unknown_route_is_404_envelope(
    api: Api, user: Person, method: str, path: str
) -> None:
    for token in (None, user):
        error_body(await api.request(method, path, token=token), 404)


async def test_wrong_method_is_an_error_envelope(api: Api, user: Person) -> None:
    for method, path in [("DELETE", "/api/chat/history"), ("PUT", "/api/chat/start")]:
        resp = await api.request(method, path, token=user)
        assert resp.status_code in (404, 405), resp.text
        error_body(resp, resp.status_code)


async def test_health(api: Api) -> None:
    resp = await api.get("/health")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True
    assert isinstance(body["message"], str)
    assert body["data"] == {"status": "ok", "database": "ok"}
