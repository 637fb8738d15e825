"""orjson for Socket.IO packets: every event is encoded once, so encoding speed matters."""

from __future__ import annotations

from typing import Any

import orjson


class OrjsonCodec:
    """The `json` module interface python-socketio expects (dumps returns str)."""

    @staticmethod
    def dumps(obj: Any, *args: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(data: str | bytes, *args: Any, **kwargs: Any) -> Any:
        return orjson.loads(data)
