"""Keeping credentials out of logs, reprs and exception messages."""

from __future__ import annotations

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
