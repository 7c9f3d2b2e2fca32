"""Keeping credentials out of logs, reprs and exception messages."""

from __future__ import annotations

import re

from yarl import URL


def redact_url(url: str | URL) -> str:
    """The URL without its query string or userinfo (presigned signatures live there)."""
    parsed = URL(url) if isinstance(url, str) else url
    try:
        bare = parsed.with_user(None).with_password(None).with_query(None).with_fragment(None)
    except ValueError:  # relative URLs cannot drop userinfo
        bare = parsed.with_query(None).with_fragment(None)
    suffix = "?<redacted>" if parsed.query_string else ""
    return f"{bare}{suffix}"


def mask_key(api_key: str) -> str:
    """A display form of an API key that reveals only its kind (``fck_live_***``)."""
    for prefix in ("fck_live_", "fck_test_"):
        if api_key.startswith(prefix):
            return f"{prefix}***"
    return "***"


def redact_link(url: str) -> str:
    """A display form of a URL that is itself a credential: a raw link's token (the last
    path segment) or a presigned URL's query is replaced, userinfo is dropped."""
    try:
        parsed = URL(url)
        if not parsed.absolute:
            return "<redacted>"
        if parsed.query_string:
            return redact_url(parsed)
        head, _, last = parsed.path.rstrip("/").rpartition("/")
        path = f"{head}/***" if last else parsed.path
        return f"{parsed.with_user(None).with_password(None).origin()}{path}"
    except (TypeError, ValueError):
        return "<redacted>"


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"<>]+@")
_QUERY = re.compile(r"(https?://[^\s?'\"<>]+)\?[^\s'\"<>]*")


def redact_text(text: str) -> str:
    """``text`` with the userinfo (proxy credentials) and query string (signatures) of every
    URL in it removed, for messages of third-party exceptions that embed URLs."""
    return _QUERY.sub(r"\1?<redacted>", _USERINFO.sub(r"\1", text))
