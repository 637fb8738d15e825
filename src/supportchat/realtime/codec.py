"""orjson for Socket.IO packets: every event is encoded once, so encoding speed matters."""

from __future__ import annotations

import json
from typing import Any

import orjson


class OrjsonCodec:
    """The `json` module interface python-socketio expects (dumps returns str)."""

    @staticmethod
    def dumps(obj: Any, *args: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(data: str | bytes, *args: Any, **kwargs: Any) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            # orjson refuses some JSON that is valid (e.g. an escaped lone surrogate); the
            # standard library decodes it, and validation then refuses it with a clear
            # chat_error instead of the packet being dropped unanswered.
            return json.loads(data)
