"""API keys and tenants: creation, constant-time lookup, per-route scope rules."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from ._clock import Clock
from ._config import ALL_SCOPES
from ._db import Database

KEY_PREFIX = "fck_test_"


@dataclass(frozen=True)
class Principal:
    """The caller of an API request, resolved from its key."""

    key_id: str
    tenant_id: str
    scopes: frozenset[str]
    plan_has_api: bool
    created_by: str


@dataclass(frozen=True)
class RouteRule:
    scopes: tuple[str, ...]
    bucket: str | None = None


def new_key() -> str:
    return KEY_PREFIX + secrets.token_hex(20)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    """What ``created_by`` shows: never the full key."""
    return key[: len(KEY_PREFIX) + 4] + "…"


def create_tenant(
    db: Database,
    clock: Clock,
    *,
    bytes_limit: int = -1,
    links_limit: int = -1,
    plan_has_api: bool = True,
) -> str:
    tenant_id = str(uuid.uuid4())
    db.run(
        "INSERT INTO tenants (id, bytes_limit, links_limit, plan_has_api, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (tenant_id, bytes_limit, links_limit, int(plan_has_api), clock.now()),
    )
    return tenant_id


def add_key(
    db: Database,
    clock: Clock,
    tenant_id: str,
    scopes: Iterable[str] | None = None,
    key: str | None = None,
) -> str:
    """Store a new key for ``tenant_id``; returns the key (only its hash is kept)."""
    chosen = frozenset(ALL_SCOPES if scopes is None else scopes)
    unknown = chosen - ALL_SCOPES
    if unknown:
        raise ValueError(f"unknown scopes: {sorted(unknown)}")
    key = key or new_key()
    db.run(
        "INSERT INTO api_keys (id, tenant_id, key_hash, prefix, scopes, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            str(uuid.uuid4()),
            tenant_id,
            key_hash(key),
            display_prefix(key),
            json.dumps(sorted(chosen)),
            clock.now(),
        ),
    )
    return key


def lookup(db: Database, presented: str) -> Principal | None:
    """The principal for a presented key, or None (unknown or revoked)."""
    digest = key_hash(presented)
    row = db.one(
        "SELECT k.id, k.tenant_id, k.key_hash, k.prefix, k.scopes, k.revoked, t.plan_has_api"
        " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash = ?",
        (digest,),
    )
    # The index lookup is by hash; the explicit compare keeps the check constant-time.
    if row is None or not hmac.compare_digest(row["key_hash"], digest) or row["revoked"]:
        return None
    return Principal(
        key_id=row["id"],
        tenant_id=row["tenant_id"],
        scopes=frozenset(json.loads(row["scopes"])),
        plan_has_api=bool(row["plan_has_api"]),
        created_by=row["prefix"],
    )


def presented_key(request: web.Request) -> str | None:
    """The key from ``X-API-Key`` or ``Authorization: Bearer``."""
    headers = request.headers
    key = headers.get("X-API-Key")
    if key:
        return key.strip()
    auth = headers.get("Authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None
