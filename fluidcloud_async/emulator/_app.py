"""The API application: routes under /api/v1 behind error, fault and auth middlewares."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from . import _routes_files, _routes_shares, _routes_spaces, _routes_uploads
from ._auth import RouteRule, lookup, presented_key
from ._context import CTX_KEY, Context
from ._errors import ApiError
from ._routing import PRINCIPAL, Handler

PREFIX = "/api/v1"
RULES_KEY: web.AppKey[dict[tuple[str, str], RouteRule]] = web.AppKey("fluidcloud_rules", dict)
UNMATCHED = "<unmatched>"
log = logging.getLogger(__name__)


def _route_id(request: web.Request) -> tuple[str, str] | None:
    """(method, canonical path) of the matched API route, None for unknown routes."""
    match = request.match_info
    if match.http_exception is not None:
        return None
    return request.method, match.route.resource.canonical if match.route.resource else ""


def _error(status: int, detail: object, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"detail": detail}, status=status, headers=headers)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error becomes JSON ``{"detail": ...}``; counts requests and statuses."""
    ctx = request.app[CTX_KEY]
    route = _route_id(request)
    name = f"{route[0]} {route[1]}" if route else UNMATCHED
    ctx.stats.requests[name] += 1
    try:
        response = await handler(request)
    except ApiError as exc:
        response = _error(exc.status, exc.detail, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        response = _error(exc.status, exc.reason.lower(), allow)
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception:
        log.exception("emulator handler failed")
        response = _error(500, "internal emulator error")
    ctx.stats.statuses[(name, response.status)] += 1
    if response.status == 429:
        ctx.stats.rate_limited += 1
    return response


@web.middleware
async def faults_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Injected latency, 5xx and 429 on matched API routes, before the handler runs."""
    ctx = request.app[CTX_KEY]
    if _route_id(request) is None:
        return await handler(request)
    faults = ctx.faults
    if faults.latency:
        await asyncio.sleep(faults.latency)
    if faults.take("fail_next_api_requests"):
        ctx.stats.faults["api_error"] += 1
        raise ApiError(faults.fail_next_api_status, "injected fault")
    if faults.take("rate_limit_next_api_requests") or faults.roll(faults.api_429_rate):
        ctx.stats.faults["api_429"] += 1
        wait = faults.retry_after
        headers = ctx.limiter.headers(wait, exact=wait != int(wait))
        raise ApiError(429, "rate limited (injected)", headers)
    if faults.roll(faults.api_error_rate):
        ctx.stats.faults["api_error"] += 1
        raise ApiError(faults.choice((500, 502, 503)), "injected fault")
    return await handler(request)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """401 unknown key -> 429 rate limit -> 403 plan -> 403 scope, then the handler."""
    ctx = request.app[CTX_KEY]
    route = _route_id(request)
    if route is None:
        return await handler(request)
    rule = request.app[RULES_KEY][route]
    key = presented_key(request)
    if not key:
        raise ApiError(401, "missing API key (send X-API-Key or Authorization: Bearer)")
    who = lookup(ctx.db, key)
    if who is None:
        raise ApiError(401, "invalid or revoked API key")
    if ctx.config.rate_limits:
        buckets = ["default"] if rule.bucket is None else ["default", rule.bucket]
        wait = ctx.limiter.hit(who.key_id, buckets)
        if wait is not None:
            raise ApiError(429, "rate limit exceeded", ctx.limiter.headers(wait))
    if not who.plan_has_api:
        raise ApiError(403, {"error": "feature_not_in_plan"})
    if not set(rule.scopes) <= who.scopes:
        raise ApiError(403, {"error": "insufficient_scope", "required": list(rule.scopes)})
    request[PRINCIPAL] = who
    return await handler(request)


def build_api_app(ctx: Context) -> web.Application:
    """aiohttp app with every documented route under /api/v1."""
    app = web.Application(
        middlewares=[errors_middleware, faults_middleware, auth_middleware],
        client_max_size=4 * 1024 * 1024,
    )
    app[CTX_KEY] = ctx
    rules: dict[tuple[str, str], RouteRule] = {}
    for module in (_routes_spaces, _routes_files, _routes_uploads, _routes_shares):
        for route in module.ROUTES:
            path = PREFIX + route.path
            app.router.add_route(route.method, path, route.handler)
            rules[(route.method, path)] = RouteRule(route.scopes, route.bucket)
    app[RULES_KEY] = rules
    return app
