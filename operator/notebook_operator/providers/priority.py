"""Which class a cloud call belongs to, for the account's rate limit: the listing first, then due stops, then
starts, creates and updates, then reads (metrics, lifecycles, events), and housekeeping (tags, native rule sync,
snapshot clean-up) last, with what the others leave. Within a class the account's namespaces take turns.

Set by whoever knows why a call is made (the executor, the batcher, the tag writer) around the provider call; a
context variable carries it down to the HTTP client, so the providers' signatures do not change.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from enum import IntEnum


class CallClass(IntEnum):
    LIST = 0
    STOP = 1
    ACT = 2
    READ = 3
    HOUSEKEEPING = 4


_CURRENT: contextvars.ContextVar[tuple[CallClass, str]] = contextvars.ContextVar(
    "call_class", default=(CallClass.READ, "")
)


def current() -> tuple[CallClass, str]:
    """(the class of the calls made now, the namespace they are made for)."""
    return _CURRENT.get()


@contextlib.contextmanager
def calls(kind: CallClass, namespace: str | None = None) -> Iterator[None]:
    """The provider calls made in this block are of class `kind` (for `namespace`: default the current one)."""
    token = _CURRENT.set((kind, _CURRENT.get()[1] if namespace is None else namespace))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def for_namespace(namespace: str) -> None:
    """The current task's calls are made for `namespace` (a pass task says so first)."""
    _CURRENT.set((_CURRENT.get()[0], namespace))
