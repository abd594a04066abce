"""Events through kopf's poster (batched, in the background): the EventSink the reconcilers are given."""

from __future__ import annotations

from typing import Any, cast

import kopf

MESSAGE_MAX = 1024


def emit(obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
    kopf.event(cast(kopf.Body, obj), type=type_, reason=reason, message=message[:MESSAGE_MAX])
