"""Test harness for supportchat: a real server process (SQLite and PostgreSQL), token
minting, HTTP/Socket.IO clients, and the chat helpers the test files share. Fixtures
wiring these together live in tests/conftest.py; import helpers from here
(``from support import make_token, start_chat``).
"""

from .chat import (
    DEFAULT_SUMMARY,
    ERROR_KEYS,
    NOT_FOUND,
    OBJECT_ID_RE,
    OPENING,
    QUIET,
    TICKET_NUMBER_RE,
    TIMESTAMP_RE,
    assert_chat_error,
    assert_failed_ack,
    assert_recent,
    assert_status,
    body_of,
    close_fast,
    error_body,
    get_ticket,
    of_ticket,
    ok_call,
    ok_data,
    parse_ts,
    start_chat,
    with_text,
)
from .clients import Api, RefusedConnection, SocketClient, SocketFactory
from .server import Cli, ServerInfo, run_cli
from .tokens import AGENT_ROLE, Person, PersonFactory, make_token, new_person

__all__ = [
    "AGENT_ROLE",
    "DEFAULT_SUMMARY",
    "ERROR_KEYS",
    "NOT_FOUND",
    "OBJECT_ID_RE",
    "OPENING",
    "QUIET",
    "TICKET_NUMBER_RE",
    "TIMESTAMP_RE",
    "Api",
    "Cli",
    "Person",
    "PersonFactory",
    "RefusedConnection",
    "ServerInfo",
    "SocketClient",
    "SocketFactory",
    "assert_chat_error",
    "assert_failed_ack",
    "assert_recent",
    "assert_status",
    "body_of",
    "close_fast",
    "error_body",
    "get_ticket",
    "make_token",
    "new_person",
    "of_ticket",
    "ok_call",
    "ok_data",
    "parse_ts",
    "run_cli",
    "start_chat",
    "with_text",
]
