"""The notifier against real local HTTP servers: a webhook that drips its answer is cut off at the request's
deadline, one that floods at the answer's byte cap, and while one namespace's hook drips, another namespace's notice
is delivered at once (per-namespace queues served in turn, one in flight per namespace)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from notebook_operator.api.notify import NotifySpec
from notebook_operator.notify import sender
from notebook_operator.notify.formats import Notice
from notebook_operator.notify.sender import Delivery, Notifier
from notebook_operator.providers.egress import AllowList


class Secrets:
    """The API server's Secrets, as the notifier reads them: the webhook URL of each namespace."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls

    async def read_secret(self, namespace: str, name: str) -> tuple[dict[str, str], str]:
        return {"url": base64.b64encode(self.urls[namespace].encode()).decode()}, "1"


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[str, list[str], asyncio.Event]]:
    """/drip answers one byte every 2 s forever, /flood 1 MiB a chunk forever, /ok at once; `got` lists arrivals."""
    got: list[str] = []
    answered = asyncio.Event()

    async def drip(request: web.Request) -> web.StreamResponse:
        got.append("drip")
        response = web.StreamResponse()
        await response.prepare(request)
        while True:
            await response.write(b" ")
            await asyncio.sleep(2)

    async def flood(request: web.Request) -> web.StreamResponse:
        got.append("flood")
        response = web.StreamResponse()
        await response.prepare(request)
        while True:
            await response.write(b"x" * 1024 * 1024)

    async def ok(request: web.Request) -> web.Response:
        got.append("ok")
        answered.set()
        return web.json_response({"errcode": 0})

    app = web.Application()
    app.add_routes([web.post("/drip", drip), web.post("/flood", flood), web.post("/ok", ok)])
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", got, answered
    await runner.cleanup()


def notice(namespace: str) -> Notice:
    return Notice("StopWarning", namespace, "nb", None, "a timer", datetime.now(UTC))


SPEC = NotifySpec.model_validate({"webhookSecretRef": {"name": "hook", "key": "url"}, "format": "generic"})


def notifier(urls: dict[str, str], events: list[Any]) -> Notifier:
    allowed = AllowList.of([r"http://127\.0\.0\.1:[0-9]+"])
    return Notifier(Secrets(urls), lambda *e: events.append(e), backoff_s=0.01, allowed=allowed)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["/drip", "/flood"])
async def test_a_dripping_or_flooding_hook_is_cut_off(hooks: tuple[str, list[str], asyncio.Event], path: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr(sender, "DEADLINE_S", 1.0)
    monkeypatch.setattr(sender, "ATTEMPTS", 1)
    base, _, _ = hooks
    events: list[Any] = []
    n = notifier({"b": base + path}, events)
    n.start()
    try:
        began = time.monotonic()
        assert await n.deliver(Delivery(SPEC, notice("b"), {})) is False
        assert time.monotonic() - began < 1.0 + 1.0
    finally:
        await n.close(grace_s=0)
    (event,) = events
    why = "no whole answer within 1s" if path == "/drip" else "answer larger than 64 KiB"
    assert why in event[3] and base not in event[3]


async def test_one_namespace_s_dripping_hook_does_not_hold_back_another_s_notice(
    hooks: tuple[str, list[str], asyncio.Event],
) -> None:
    base, got, answered = hooks
    events: list[Any] = []
    n = notifier({"b": base + "/drip", "a": base + "/ok"}, events)
    n.start()
    try:
        for _ in range(6):  # B's backlog first: it holds one worker at a time, never all of them
            n.submit(SPEC, notice("b"), {})
        await asyncio.sleep(0.2)
        began = time.monotonic()
        n.submit(SPEC, notice("a"), {})
        await asyncio.wait_for(answered.wait(), 5)
        assert time.monotonic() - began < 1.0
        assert got.count("drip") == 1  # one of B's in flight at a time
    finally:
        await n.close(grace_s=0)
