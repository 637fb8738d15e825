"""The `{success, message, data}` envelope of every REST response, encoded with orjson."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def ok(message: str, data: Any = None, status_code: int = 200) -> FastJSONResponse:
    return FastJSONResponse({"success": True, "message": message, "data": data}, status_code)


def failure(
    status_code: int,
    message: str,
    *,
    code: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> FastJSONResponse:
    body: dict[str, Any] = {"success": False, "message": message}
    if code is not None:
        body["code"] = code
    if errors:
        body["errors"] = errors
    return FastJSONResponse(body, status_code, headers=headers)
