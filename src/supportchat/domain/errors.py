"""One error type for every refusal the domain makes; transports translate it.

`status` is the HTTP status a REST route answers with; `kind` is the `type` a Socket.IO
`chat_error`/`error` carries; `code` is a stable machine-readable code for both.
"""

from __future__ import annotations

from typing import Any


class ChatError(Exception):
    status = 400
    kind = "invalid_request"
    code = "BAD_REQUEST"

    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class InvalidInput(ChatError):
    status = 400
    kind = "validation_error"
    code = "VALIDATION_ERROR"


class NotAuthenticated(ChatError):
    status = 401
    kind = "authentication_failed"
    code = "TOKEN_INVALID"

    def __init__(self, message: str, *, code: str = "TOKEN_INVALID") -> None:
        super().__init__(message)
        self.code = code


class Forbidden(ChatError):
    status = 403
    kind = "forbidden"
    code = "FORBIDDEN"


class TicketNotFound(ChatError):
    status = 404
    kind = "not_found"
    code = "TICKET_NOT_FOUND"

    def __init__(self, message: str = "Chat ticket not found") -> None:
        super().__init__(message)


class MessageNotFound(ChatError):
    status = 404
    kind = "not_found"
    code = "MESSAGE_NOT_FOUND"

    def __init__(self, message: str = "Message not found in this chat") -> None:
        super().__init__(message)


class ChatClosed(ChatError):
    status = 409
    kind = "chat_closed"
    code = "CHAT_CLOSED"

    def __init__(self, message: str = "This chat is closed; start a new chat") -> None:
        super().__init__(message)


class Unavailable(ChatError):
    status = 503
    kind = "service_unavailable"
    code = "SERVICE_UNAVAILABLE"

    def __init__(
        self, message: str = "The service is temporarily unavailable; retry shortly"
    ) -> None:
        super().__init__(message)


class ShuttingDown(Unavailable):
    """This server process is stopping: nothing was done; reconnect (the load balancer
    sends the new connection to another process) and send again."""

    code = "SHUTTING_DOWN"

    def __init__(self, message: str = "The server is restarting; reconnect and send again") -> None:
        super().__init__(message)


class RateLimited(ChatError):
    status = 429
    kind = "rate_limited"
    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int, limit: int, reset_at: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.limit = limit
        self.reset_at = reset_at
