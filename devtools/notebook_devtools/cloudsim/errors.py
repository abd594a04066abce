"""Error responses in each cloud's own body format."""

from __future__ import annotations

import uuid

from aiohttp import web


class CloudError(Exception):
    """Raised by a route; the server answers it in the calling cloud's own error format."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def request_id() -> str:
    return str(uuid.uuid4()).upper()


def pai(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    rid = request_id()
    body = {"RequestId": rid, "Code": code, "Message": message, "HttpStatusCode": status, "Success": False}
    return web.json_response(body, status=status, headers={"x-acs-request-id": rid, **(headers or {})})


def huawei(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, *, style: str = "modelarts"
) -> web.Response:
    """ModelArts/APIG: error_code + error_msg; ROMA adds error_details and request_id; DevEnviron error_message."""
    rid = uuid.uuid4().hex
    body: dict[str, str]
    if style == "roma":
        body = {"error_code": code, "error_msg": message, "error_details": message, "request_id": rid}
    elif style == "devenv":
        body = {"error_code": code, "error_message": message}
    else:
        body = {"error_code": code, "error_msg": message}
    return web.json_response(body, status=status, headers={"X-Request-Id": rid, **(headers or {})})
