"""Deliver notices to chat webhooks in the background: a bounded queue per namespace served in turn, a few attempts
with backoff, and a metric and an Event for each failure. A poll pass only enqueues; a slow or dead webhook never
holds it up, nor another namespace's notices. Each request has a whole deadline (10 s) and its answer a byte cap
(64 KiB): a hook that drips or floods is cut off like any failure.

The webhook URL is a credential (whoever has it can post to the group): it is read from its Secret at send
time and never logged, never put in an Event or an exception message. It is also a namespace's choice of where
the operator sends a request: it must be https to a public address (providers/egress.py) unless the admin's
--allowed-webhook allows it; its name is resolved once, the connection goes to the address checked, and no
redirect is followed.

Events are posted in the context of the handler that queued the notice (kopf's event poster lives in its
context variables; a worker task started at startup has none).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import contextvars
import json
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import httpx

from notebook_operator import metrics
from notebook_operator.api.notify import NotifySpec, SecretKeySelector
from notebook_operator.executor import EventSink
from notebook_operator.kube import Kube
from notebook_operator.notify.fair_queue import FairQueue, Full
from notebook_operator.notify.formats import Notice, request
from notebook_operator.providers.egress import AllowList, Lookup, NotAllowed, pin_webhook, resolve
from notebook_operator.times import now

logger = logging.getLogger(__name__)
ATTEMPTS = 3
BACKOFF_S = 1.0
TIMEOUT_S = 5.0  # each connect, read and write
DEADLINE_S = 10.0  # one request, from sending to the last byte of the answer
ANSWER_CAP = 64 * 1024  # bytes of an answer read at most: a bot answers a few hundred
QUEUE_PER_NAMESPACE = 200
WORKERS = 4  # at most one per namespace at a time: a slow hook holds one, the others serve the other namespaces


class DeliveryFailed(Exception):
    """Why one attempt failed, in words that hold no URL."""


class DeliveryBlocked(DeliveryFailed):
    """The URL is one the operator may not send to: not retried."""


@dataclass(frozen=True)
class Delivery:
    spec: NotifySpec
    notice: Notice
    ref: dict[str, Any]  # the NotebookInstance, for a NotificationFailed Event
    context: contextvars.Context = field(default_factory=contextvars.copy_context)  # the submitter's, for Events


class Notifier:
    def __init__(
        self,
        kube: Kube,
        emit: EventSink,
        backoff_s: float = BACKOFF_S,
        allowed: AllowList | None = None,
        lookup: Lookup = resolve,
    ) -> None:
        self.kube = kube
        self.emit = emit
        self.backoff_s = backoff_s
        self.allowed = allowed or AllowList(())
        self.lookup = lookup
        self._queue: FairQueue[Delivery] = FairQueue(QUEUE_PER_NAMESPACE)
        self._workers: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False)
        self._workers = [asyncio.create_task(self._work(), name=f"notifier-{i}") for i in range(WORKERS)]

    async def close(self, grace_s: float = 5.0) -> None:
        """Deliver what is queued (for at most `grace_s`), then stop."""
        if self._workers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), grace_s)
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers = []
        if self._client is not None:
            await self._client.aclose()

    def submit(self, spec: NotifySpec, notice: Notice, ref: dict[str, Any]) -> None:
        """Queue a notice; never waits. A namespace's full queue (its webhook down for long) drops it, counted."""
        try:
            self._queue.put_nowait(notice.namespace, Delivery(spec, notice, ref))
        except Full:
            metrics.NOTIFICATIONS.labels(spec.format, notice.event, "dropped").inc()
            metrics.NOTIFICATIONS_DROPPED.labels(notice.namespace).inc()
            logger.warning("notice queue of %s full: %s of %s dropped", notice.namespace, notice.event, notice.notebook)

    async def drain(self) -> None:
        """Wait until every queued notice was delivered or given up (tests, shutdown)."""
        await self._queue.join()

    async def _work(self) -> None:
        while True:
            namespace, delivery = await self._queue.get()
            try:
                await self.deliver(delivery)
            except Exception:  # one bad delivery must not end the worker
                logger.exception("notification of %s failed", delivery.notice.event)
            finally:
                self._queue.task_done(namespace)

    async def deliver(self, delivery: Delivery) -> bool:
        spec, notice = delivery.spec, delivery.notice
        try:
            url = await self._secret(notice.namespace, spec.webhook_secret_ref)
            sign = await self._secret(notice.namespace, spec.sign_secret_ref) if spec.sign_secret_ref else None
        except DeliveryFailed as e:
            return self._failed(delivery, str(e))
        problem = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1) * random.uniform(0.8, 1.2))  # noqa: S311 (jitter)
            target, payload = request(spec.format, url, notice, sign, now())
            try:
                await self._post(target, payload)
            except DeliveryBlocked as e:
                return self._blocked(delivery, str(e))
            except DeliveryFailed as e:
                problem = str(e)
                continue
            metrics.NOTIFICATIONS.labels(spec.format, notice.event, "sent").inc()
            logger.info("%s notice for %s/%s sent (%s)", notice.event, notice.namespace, notice.notebook, spec.format)
            return True
        return self._failed(delivery, f"{problem} ({ATTEMPTS} attempts)")

    async def _post(self, url: str, payload: dict[str, Any]) -> None:
        assert self._client is not None, "Notifier.start() first"
        try:
            pinned = await pin_webhook(url, self.allowed, self.lookup)
        except NotAllowed as e:
            raise DeliveryBlocked(str(e)) from None
        try:
            async with asyncio.timeout(DEADLINE_S):  # httpx's timeout bounds each read; a drip would go on
                status, body = await self._send(pinned.url, payload, pinned.host_header, pinned.hostname)
        except TimeoutError:
            raise DeliveryFailed(f"no whole answer within {DEADLINE_S:g}s") from None
        except httpx.HTTPError as e:  # the exception's text may hold the URL: only its kind is kept
            raise DeliveryFailed(type(e).__name__) from None
        if 300 <= status < 400:
            raise DeliveryFailed(f"HTTP {status} (redirects are not followed)")
        if status >= 300:
            raise DeliveryFailed(f"HTTP {status}")
        # DingTalk and WeCom answer 200 with {"errcode": n}, Feishu with {"code": n}: non-zero is a refusal.
        with contextlib.suppress(ValueError):
            answer = json.loads(body)
            if isinstance(answer, dict):
                code = answer.get("errcode", answer.get("code", 0))
                if code not in (0, None, "0"):
                    shown = " ".join(str(code).split())[:32]
                    message = " ".join(str(answer.get("errmsg") or answer.get("msg") or "").split())[:200]
                    raise DeliveryFailed(f"refused by the bot: code {shown} {message}".rstrip())

    async def _send(self, url: str, payload: dict[str, Any], host: str, name: str) -> tuple[int, bytes]:
        """POST and read at most ANSWER_CAP bytes of the answer (DeliveryFailed beyond: a flood is cut off)."""
        assert self._client is not None
        headers = {"Host": host}
        extensions = {"sni_hostname": name}  # TLS checks the name, not the address
        async with self._client.stream("POST", url, json=payload, headers=headers, extensions=extensions) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():  # decoded: a compressed flood is cut off too
                body += chunk
                if len(body) > ANSWER_CAP:
                    raise DeliveryFailed(f"answer larger than {ANSWER_CAP // 1024} KiB: cut off")
            return response.status_code, bytes(body)

    async def _secret(self, namespace: str, ref: SecretKeySelector | None) -> str:
        assert ref is not None
        try:
            data, _ = await self.kube.read_secret(namespace, ref.name)
        except Exception as e:
            raise DeliveryFailed(f"Secret {ref.name} not readable: {type(e).__name__}") from None
        try:
            value = base64.b64decode(data.get(ref.key) or "").decode().strip()
        except (binascii.Error, UnicodeDecodeError):
            raise DeliveryFailed(f"Secret {ref.name} key {ref.key} is not text") from None
        if not value:
            raise DeliveryFailed(f"Secret {ref.name} has no key {ref.key}")
        return value

    def _failed(self, delivery: Delivery, problem: str) -> bool:
        return self._give_up(delivery, "failed", "NotificationFailed", f"not delivered: {problem}")

    def _blocked(self, delivery: Delivery, problem: str) -> bool:
        return self._give_up(delivery, "blocked", "NotificationBlocked", f"not sent: {problem}")

    def _give_up(self, delivery: Delivery, result: str, reason: str, what: str) -> bool:
        """Counted, logged and an Event on the notebook (in the submitter's context, where kopf's poster is)."""
        spec, notice = delivery.spec, delivery.notice
        metrics.NOTIFICATIONS.labels(spec.format, notice.event, result).inc()
        message = f"{spec.format} notice of {notice.event} {what}"
        logger.warning("%s/%s: %s", notice.namespace, notice.notebook, message)
        delivery.context.run(self.emit, delivery.ref, "Warning", reason, message)
        return False
