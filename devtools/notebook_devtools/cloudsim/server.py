"""The emulator's HTTP server: one port, the clouds told apart by path and signing scheme."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from notebook_devtools.cloudsim import admin, devenv, errors, modelarts, oidc, pai, roma
from notebook_devtools.cloudsim.auth import AuthError, Credential, Verifier
from notebook_devtools.cloudsim.clock import Clock
from notebook_devtools.cloudsim.context import SIM, Sim, sim
from notebook_devtools.cloudsim.errors import CloudError
from notebook_devtools.cloudsim.jwt import OidcOptions, TokenVerifier, load_jwks
from notebook_devtools.cloudsim.lifecycle import IllegalState, Lifecycle
from notebook_devtools.cloudsim.store import Store

logger = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TICK_S = 0.1


@dataclass
class EmulatorOptions:
    credentials: list[Credential] = field(default_factory=list)
    iam_tokens: list[str] = field(default_factory=list)
    time_scale: float = 1.0
    transition_delay: float = 2.0
    state_file: Path | None = None
    oidc: OidcOptions = field(default_factory=OidcOptions)


def _style(path: str) -> str:
    if path == "/" or path.startswith("/v3.0/"):
        return "identity"  # STS / IAM token services: anonymous, the OIDC token is the credential
    if path.startswith("/api/v2/"):
        return "pai"
    if path.startswith("/v2/"):
        return "roma"
    return "devenv" if "/demanager/" in path else "modelarts"


def _error(style: str, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    if style == "pai":
        return errors.pai(status, code, message, headers)
    return errors.huawei(status, code, message, headers, style=style)


def _illegal_state_code(style: str) -> str:
    return {"pai": "InstanceStatusNotSupport", "devenv": "ModelArts.0105"}.get(style, "ModelArts.6404")


@web.middleware
async def gateway(request: web.Request, handler: Handler) -> web.StreamResponse:
    """What the clouds' API gateways do before a handler runs: faults, signature checks, call counting."""
    if request.path.startswith("/_emulator/"):
        try:
            return await handler(request)
        except CloudError as e:
            return web.json_response({"error": e.message}, status=e.status)
        except (ValueError, KeyError, TypeError) as e:
            return web.json_response({"error": f"bad request: {e}"}, status=400)
    s = sim(request)
    style = _style(request.path)
    route = request.match_info.route.name
    if route is None:
        return _error(
            style,
            404,
            "InvalidAction.NotFound" if style == "pai" else "APIGW.0101",
            f"No API matches {request.method} {request.path}.",
        )
    faults = s.faults
    if faults and faults.matches(request.path):
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        outcome = faults.pick()
        if outcome is not None:
            s.record(route, request, 0 if outcome == "drop" else 503, f"fault:{outcome}")
        if outcome == "drop":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        if outcome == "throttle":
            if style == "pai":
                retry = {"x-acs-retry-after": str(int(faults.retry_after_s * 1000))}
                return _error(style, 429, "Throttling.User", "Request was denied due to user flow control.", retry)
            retry = {"Retry-After": str(max(1, round(faults.retry_after_s)))}
            return _error(style, 429, "APIGW.0308", "The throttling threshold has been reached.", retry)
        if outcome == "error":
            code = "ServiceUnavailable" if faults.status_code == 503 else "InternalError"
            huawei_code = "ModelArts.0010" if style != "roma" else "ROMA.00000500"
            return _error(
                style,
                faults.status_code,
                code if style == "pai" else huawei_code,
                "The request has failed due to a temporary failure of the server.",
            )
    if style == "identity":
        s.calls[route] += 1
        response = await handler(request)
        s.record(route, request, response.status, "ok" if response.status < 400 else "refused")
        return response
    body = await request.read()
    try:
        if style == "pai":
            caller = s.verifier.verify_acs3(request, body)
            request["access_key_id"] = caller.account or caller.access_key_id
        else:
            request["access_key_id"] = s.verifier.verify_huawei(request, body)
    except AuthError as e:
        return _error(style, e.status, e.code, e.message)
    if route in s.denied.get(request["access_key_id"], ()):
        # What the clouds answer when a policy does not allow the action (codes: docs/cloud-api-conformance.md).
        s.record(route, request, 403, "denied")
        if style == "pai":
            refusal = "User not authorized to operate on the specified resource, or this API doesn't support RAM."
            return _error(style, 403, "Forbidden.RAM", refusal)
        return _error(style, 403, "APIGW.0302", "The IAM user is not authorized to access the API.")
    s.calls[route] += 1
    response = await _handle(request, handler, style, route)
    s.record(route, request, response.status, "ok" if response.status < 400 else "refused")
    return response


async def _handle(request: web.Request, handler: Handler, style: str, route: str) -> web.StreamResponse:
    try:
        return await handler(request)
    except CloudError as e:
        return _error(style, e.status, e.code, e.message)
    except IllegalState as e:
        return _error(style, 409 if style == "modelarts" else 400, _illegal_state_code(style), str(e))
    except json.JSONDecodeError as e:
        return _error(style, 400, "ValidationError" if style == "pai" else "ModelArts.0101", f"Invalid JSON: {e}")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        return _error(style, 400, "ValidationError" if style == "pai" else "ModelArts.0101", f"Invalid request: {e}")
    except Exception:
        logger.exception("emulator route %s failed", route)
        return _error(style, 500, "InternalError" if style == "pai" else "ModelArts.0010", "Internal server error.")


async def _ticker(app: web.Application) -> AsyncIterator[None]:
    async def run() -> None:
        while True:
            try:
                app[SIM].lifecycle.tick()
            except Exception:  # one bad instance must not stop the cloud's clock
                logger.exception("emulator tick failed")
            await asyncio.sleep(TICK_S)

    task = asyncio.create_task(run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    app[SIM].store.close()


def build_app(options: EmulatorOptions) -> web.Application:
    clock = Clock(options.time_scale)
    store = Store(options.state_file)
    lifecycle = Lifecycle(store, clock, options.transition_delay)
    verifier = Verifier({c.access_key_id: c for c in options.credentials}, set(options.iam_tokens))
    app = web.Application(middlewares=[gateway], client_max_size=8 * 1024 * 1024)
    jwks = load_jwks(options.oidc.jwks) if options.oidc.jwks else None
    app[SIM] = Sim(store, clock, lifecycle, verifier, oidc=TokenVerifier(options.oidc, jwks))
    for module in (admin, pai, modelarts, devenv, roma, oidc):
        app.add_routes(module.routes)
    app.cleanup_ctx.append(_ticker)
    return app


def serve(host: str, port: int, options: EmulatorOptions) -> None:
    logger.info(
        "cloud emulator on http://%s:%d (time scale %g, transition delay %gs, %d credentials%s)",
        host,
        port,
        options.time_scale,
        options.transition_delay,
        len(options.credentials),
        f", state in {options.state_file}" if options.state_file else "",
    )
    web.run_app(build_app(options), host=host, port=port, print=None, access_log=None)
