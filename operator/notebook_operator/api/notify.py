"""Who hears about a stop: a chat bot's webhook, on IdleCullerPolicy and (as a default) on ProviderConfig."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from notebook_operator.api.meta import NAME_MAX, Model

NotifyFormat = Literal["dingtalk", "feishu", "wecom", "slack", "generic"]
NOTIFY_FORMATS: tuple[NotifyFormat, ...] = ("dingtalk", "feishu", "wecom", "slack", "generic")


def warn_minutes_field(stop: str) -> Any:
    """warnMinutes of a policy's culls or of the timer stops."""
    return Field(
        default=None,
        ge=1,
        le=1440,
        description=f"Warn this long before {stop} (status.pendingStop, a StopWarning Event, a notification).",
    )


def max_snooze_hours_field(stop: str) -> Any:
    """maxSnoozeHours of a policy's culls or of the timer stops."""
    return Field(
        default=8,
        gt=0,
        le=168,
        description=f"Longest postponement of {stop} by the keep-running-until annotation, from when it was set.",
    )


class SecretKeySelector(Model):
    name: str = Field(min_length=1, max_length=NAME_MAX, description="Secret in the same namespace.")
    key: str = Field(min_length=1, max_length=NAME_MAX, pattern=r"^[-._a-zA-Z0-9]+$", description="Key in the Secret.")


class NotifySpec(Model):
    """Messages on StopWarning, Culled, timer stops and StopFailed."""

    webhook_secret_ref: SecretKeySelector = Field(description="Where the webhook URL is (it is a credential).")
    format: NotifyFormat = Field(description="dingtalk, feishu, wecom, slack or generic (the event as JSON).")
    sign_secret_ref: SecretKeySelector | None = Field(
        default=None, description="DingTalk's signing secret (SEC...), when the robot has signing enabled."
    )
    owner_label: str = Field(
        default="owner",
        min_length=1,
        max_length=317,
        description="Label (or else annotation) of the NotebookInstance naming its owner.",
    )
