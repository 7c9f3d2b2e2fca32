"""Client-side argument checks: bad input fails before any network call."""

from __future__ import annotations

import math
from typing import Any

PERMISSIONS = ("view", "download")


def require_id(value: Any, name: str) -> str:
    """An opaque id: a non-empty string without surrounding whitespace, slashes, ``?``,
    ``#``, and not a dot segment (``.``/``..`` would be normalized out of the URL path and
    retarget the request: ``folders.restore("..")`` would POST ``/api/v1/restore``)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if (
        not value
        or value != value.strip()
        or value in (".", "..")
        or "/" in value
        or "?" in value
        or "#" in value
    ):
        raise ValueError(f"{name} is not a valid id: {value!r}")
    return value


def optional_id(value: Any, name: str) -> str | None:
    """An optional opaque id."""
    return None if value is None else require_id(value, name)


def require_text(value: Any, name: str) -> str:
    """A non-empty string (names, client keys) that is valid Unicode.

    Lone surrogates (``os.fsdecode`` of a file name that is not UTF-8 gives
    ``'caf\\udce9.txt'``) cannot be sent as UTF-8 JSON; the server would fail on them. They
    are refused, not replaced: a replaced name would silently differ from the file's, and
    two different names could become the same one (and the same ``client_key``)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"{name} {value!r} is not valid UTF-8 text (it holds undecodable bytes, as "
            "os.fsdecode keeps them from a name in another encoding); the API takes UTF-8 only"
        ) from None
    return value


def require_content_type(value: Any, name: str = "content_type") -> str:
    """A media type for a ``Content-Type`` header: printable ASCII only. CR/LF would
    split the storage PUT's headers (aiohttp refuses them only at that PUT, after
    ``/initiate`` reserved an upload); other control or non-ASCII characters are not
    valid in a header value either."""
    text = require_text(value, name)
    bad = next((c for c in text if not " " <= c <= "~"), None)
    if bad is not None:
        raise ValueError(
            f"{name} must be printable ASCII (a media type such as 'text/plain'); "
            f"{text!r} contains {bad!r}"
        )
    return text


def require_days(value: Any, name: str = "expires_in_days") -> int:
    """A link lifetime in whole days, 1..365."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 1 <= value <= 365:
        raise ValueError(f"{name} must be between 1 and 365, got {value}")
    return value


def require_permission(value: Any) -> str:
    """``view`` or ``download``."""
    if value not in PERMISSIONS:
        raise ValueError(f"permission must be 'view' or 'download', got {value!r}")
    return str(value)


def optional_positive_int(value: Any, name: str) -> int | None:
    """``None`` or an int >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def require_size(value: Any, name: str = "size") -> int:
    """A byte count >= 0."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def require_seconds(value: Any, name: str) -> float:
    """A positive, finite duration in seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}")
    return float(value)
