"""SQLite metadata store (stdlib sqlite3, used from the event-loop thread only)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY, bytes_limit INTEGER NOT NULL, links_limit INTEGER NOT NULL,
    plan_has_api INTEGER NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL, scopes TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS spaces (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS folders (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, space_id TEXT NOT NULL, parent_id TEXT,
    name TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    deleted_at REAL, swept_by TEXT);
CREATE TABLE IF NOT EXISTS uploads (
    file_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, space_id TEXT NOT NULL,
    folder_id TEXT, key TEXT NOT NULL, mode TEXT NOT NULL, size INTEGER NOT NULL,
    content_type TEXT, upload_id TEXT, part_size INTEGER, original_name TEXT NOT NULL,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, space_id TEXT NOT NULL, folder_id TEXT,
    source_app TEXT, client_key TEXT, original_name TEXT NOT NULL, mime TEXT,
    size INTEGER, sha256 TEXT, scan_status TEXT NOT NULL, status TEXT NOT NULL,
    created_by TEXT, key TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    deleted_at REAL, swept_by TEXT);
CREATE INDEX IF NOT EXISTS files_client_key ON files (tenant_id, client_key);
CREATE TABLE IF NOT EXISTS shares (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, file_id TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE, permission TEXT NOT NULL, expires_at REAL,
    max_downloads INTEGER, download_count INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0, password_hash TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY, size INTEGER NOT NULL, etag TEXT NOT NULL, parts TEXT,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS mp_uploads (
    upload_id TEXT PRIMARY KEY, key TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS mp_parts (
    upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, etag TEXT NOT NULL,
    size INTEGER NOT NULL, path TEXT NOT NULL, PRIMARY KEY (upload_id, part_number));
"""

Row = sqlite3.Row


class Database:
    """Thin helper over one sqlite3 connection in autocommit mode."""

    def __init__(self, path: Path | None) -> None:
        target = ":memory:" if path is None else str(path)
        self.conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        if path is not None:
            self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript(_SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(self.conn.execute(sql, params).fetchall())

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute a write; returns the number of rows changed."""
        return self.conn.execute(sql, params).rowcount

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    @contextmanager
    def tx(self) -> Iterator[None]:
        """Group several writes atomically (handlers never await inside one)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def get_meta(self, key: str) -> str | None:
        value: str | None = self.scalar("SELECT v FROM meta WHERE k = ?", (key,))
        return value

    def set_meta(self, key: str, value: str) -> None:
        self.run("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (key, value))
