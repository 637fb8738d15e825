"""Test harness for supportchat: a real server process (SQLite and PostgreSQL), token
minting, and HTTP/Socket.IO clients. Fixtures wiring these together live in
tests/conftest.py; import helpers from here (``from support import make_token``).
"""

from .clients import Api, RefusedConnection, SocketClient, SocketFactory
from .server import Cli, ServerInfo, run_cli
from .tokens import AGENT_ROLE, Person, PersonFactory, make_token, new_person

__all__ = [
    "AGENT_ROLE",
    "Api",
    "Cli",
    "Person",
    "PersonFactory",
    "RefusedConnection",
    "ServerInfo",
    "SocketClient",
    "SocketFactory",
    "make_token",
    "new_person",
    "run_cli",
]
