"""The body each chat bot's webhook takes for one notice, and the signed URL where a bot wants one (pure).

Shapes, as each bot documents them (the tests cite the pages):
- DingTalk custom robot: {"msgtype": "markdown", "markdown": {"title", "text"}}; with signing enabled the
  URL gets &timestamp=<ms>&sign=<urlencoded base64 HmacSHA256(key=secret, "<ms>\\n<secret>")>.
- Feishu custom bot: {"msg_type": "text", "content": {"text"}}; with signature verification the body gets
  "timestamp" (seconds) and "sign" = base64 HmacSHA256(key="<s>\\n<secret>", message empty).
- WeCom group robot: {"msgtype": "markdown", "markdown": {"content"}}.
- Slack incoming webhook: {"text"} (mrkdwn).
- generic: the notice as JSON, for anything else (Alertmanager-style receivers, scripts).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from notebook_operator.api.notebookinstance import SNOOZE_ANNOTATION
from notebook_operator.times import rfc3339

TITLES = {
    "StopWarning": "Notebook will be stopped",
    "StopWarningWithdrawn": "Notebook stop called off",
    "Culled": "Idle notebook stopped",
    "Stopped": "Notebook stopped on schedule",
    "StopFailed": "Notebook stop failed",
}


@dataclass(frozen=True)
class Notice:
    event: str  # StopWarning, Culled, Stopped (a timer) or StopFailed
    namespace: str
    notebook: str
    owner: str | None
    reason: str
    at: datetime  # when the stop happens (a warning) or happened
    provider: str | None = None
    instance_id: str | None = None
    time_zone: str | None = None  # the notebook's shutdown zone, to show local time too

    @property
    def title(self) -> str:
        return TITLES.get(self.event, self.event)

    @property
    def snooze_command(self) -> str:
        return f"kubectl notebook snooze {self.notebook} 2h -n {self.namespace}"

    @property
    def annotate_command(self) -> str:
        return (
            f"kubectl annotate notebookinstance {self.notebook} -n {self.namespace} --overwrite "
            f"{SNOOZE_ANNOTATION}=<RFC 3339 time>"
        )

    def when(self) -> str:
        text = rfc3339(self.at)
        if self.time_zone and self.time_zone != "UTC":
            local = self.at.astimezone(ZoneInfo(self.time_zone)).strftime("%Y-%m-%d %H:%M:%S")
            text += f" ({self.time_zone} {local})"
        return text

    def lines(self) -> list[str]:
        verb = "stops at" if self.event == "StopWarning" else "at"
        lines = [
            f"Notebook: {self.namespace}/{self.notebook}",
            f"Owner: {self.owner or 'unknown'}",
            f"Why: {self.reason}",
            f"When: {verb} {self.when()}",
        ]
        if self.provider or self.instance_id:
            lines.append(f"Instance: {self.provider or '?'} {self.instance_id or ''}".rstrip())
        if self.event in ("StopWarning", "Culled", "Stopped"):
            lines.append(f"Keep it running: {self.snooze_command}  (or {self.annotate_command})")
        return lines

    def to_wire(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "title": self.title,
            "namespace": self.namespace,
            "notebook": self.notebook,
            "owner": self.owner,
            "reason": self.reason,
            "at": rfc3339(self.at),
            "provider": self.provider,
            "instanceId": self.instance_id,
            "snooze": {"command": self.snooze_command, "annotation": SNOOZE_ANNOTATION},
            "text": "\n".join(self.lines()),
        }


def body(fmt: str, notice: Notice) -> dict[str, Any]:
    text = "\n".join(notice.lines())
    markdown = f"### {notice.title}\n\n" + "\n\n".join(notice.lines())
    if fmt == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": notice.title, "text": markdown}}
    if fmt == "feishu":
        return {"msg_type": "text", "content": {"text": f"{notice.title}\n{text}"}}
    if fmt == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": markdown}}
    if fmt == "slack":
        return {"text": f"*{notice.title}*\n{text}"}
    return notice.to_wire()


def _hmac_b64(key: str, message: str) -> str:
    digest = hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def dingtalk_signed_url(url: str, secret: str, millis: int) -> str:
    sign = urllib.parse.quote_plus(_hmac_b64(secret, f"{millis}\n{secret}"))
    return f"{url}{'&' if '?' in url else '?'}timestamp={millis}&sign={sign}"


def feishu_signed_body(payload: dict[str, Any], secret: str, seconds: int) -> dict[str, Any]:
    return {"timestamp": str(seconds), "sign": _hmac_b64(f"{seconds}\n{secret}", ""), **payload}


def request(
    fmt: str, url: str, notice: Notice, sign_secret: str | None, moment: datetime
) -> tuple[str, dict[str, Any]]:
    """(url, JSON body) of one delivery."""
    payload = body(fmt, notice)
    if sign_secret and fmt == "dingtalk":
        return dingtalk_signed_url(url, sign_secret, int(moment.timestamp() * 1000)), payload
    if sign_secret and fmt == "feishu":
        return url, feishu_signed_body(payload, sign_secret, int(moment.timestamp()))
    return url, payload
