"""Every client-side argument check: bad input fails before any network call.

One function per concept, the same exception types everywhere: ``TypeError`` for a value
of the wrong type, ``ValueError`` for a bad value of the right one (the client constructor
turns both into ``ConfigurationError``, a ``ValueError``). ``optional_*`` accepts ``None``
and otherwise applies the matching ``require_*``. Response validation is ``_validation``.
"""

from __future__ import annotations

import io
import math
import os
from typing import TYPE_CHECKING, Any

from yarl import URL

from ._types import API_PREFIX

if TYPE_CHECKING:
    from ._ratelimit import RateLimit
    from ._transfer._existing import HashCache
    from ._transfer._upload import UploadOptions

PERMISSIONS = ("view", "download")


def _type_name(value: Any) -> str:
    return type(value).__name__


# -- ids and text ----------------------------------------------------------------------------


def require_id(value: Any, name: str) -> str:
    """An opaque id: a non-empty string without surrounding whitespace, slashes, ``?``,
    ``#``, and not a dot segment (``.``/``..`` would be normalized out of the URL path and
    retarget the request: ``folders.restore("..")`` would POST ``/api/v1/restore``)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {_type_name(value)}")
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
    """``None`` or an id."""
    return None if value is None else require_id(value, name)


def require_text(value: Any, name: str) -> str:
    """A non-empty string (names, client keys) that is valid Unicode.

    Lone surrogates (``os.fsdecode`` of a file name that is not UTF-8 gives
    ``'caf\\udce9.txt'``) cannot be sent as UTF-8 JSON; the server would fail on them. They
    are refused, not replaced: a replaced name would silently differ from the file's, and
    two different names could become the same one (and the same ``client_key``)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {_type_name(value)}")
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


def optional_text(value: Any, name: str) -> str | None:
    """``None`` or text."""
    return None if value is None else require_text(value, name)


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


def require_permission(value: Any) -> str:
    """``view`` or ``download``."""
    if value not in PERMISSIONS:
        raise ValueError(f"permission must be 'view' or 'download', got {value!r}")
    return str(value)


# -- numbers and flags -----------------------------------------------------------------------


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):  # True is not a count
        raise TypeError(f"{name} must be an int, not {_type_name(value)}")
    whole: int = value
    return whole


def _int(value: Any, name: str, minimum: int) -> int:
    number = _whole(value, name)
    if number < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {number!r}")
    return number


def require_positive_int(value: Any, name: str) -> int:
    """An int >= 1 (bools refused): concurrency, page sizes, budgets."""
    return _int(value, name, 1)


def optional_positive_int(value: Any, name: str) -> int | None:
    """``None`` or an int >= 1."""
    return None if value is None else require_positive_int(value, name)


def require_count(value: Any, name: str) -> int:
    """An int >= 0 (bools refused): byte sizes, retry counts, pool sizes."""
    return _int(value, name, 0)


def require_days(value: Any, name: str = "expires_in_days") -> int:
    """A link lifetime in whole days, 1..365."""
    days = _whole(value, name)
    if not 1 <= days <= 365:
        raise ValueError(f"{name} must be between 1 and 365, got {days}")
    return days


def require_seconds(value: Any, name: str) -> float:
    """A positive, finite duration in seconds.

    NaN compares false with everything, and infinity overflows aiohttp's timer
    (``math.ceil(inf)`` raises on every request): only finite values are usable."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {_type_name(value)}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}")
    return float(value)


def optional_seconds(value: Any, name: str) -> float | None:
    """``None`` (no limit) or a positive, finite number of seconds."""
    return None if value is None else require_seconds(value, name)


def require_fraction(value: Any, name: str) -> float:
    """A number in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {_type_name(value)}")
    if not 0 < value <= 1:  # NaN fails this too
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return float(value)


def require_flag(value: Any, name: str) -> bool:
    """A real bool (``"false"`` or ``0`` would silently mean something else)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {_type_name(value)}")
    return value


def optional_callback(value: Any, name: str) -> Any:
    """``None`` or a callable."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable, not {_type_name(value)}")
    return value


# -- client settings -------------------------------------------------------------------------


def require_api_key(value: Any, name: str = "api_key") -> str:
    """A key that can go into a header: no whitespace or control characters (a newline
    would inject a header)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {_type_name(value)}")
    if any(c.isspace() for c in value) or not value.isprintable():
        raise ValueError("the API key contains whitespace or control characters")
    return value


def require_origin(value: Any, name: str = "base_url") -> str:
    """An http(s) origin without credentials, query or fragment, normalized: no trailing
    slash, and a trailing ``/api/v1`` removed (it is appended per request)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {_type_name(value)}")
    url = URL(value.strip().rstrip("/"))
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{name} must be an http(s) origin, got {value!r}")
    if url.user or url.password or url.query_string or url.fragment:
        raise ValueError(f"{name} must not carry credentials, a query or a fragment")
    path = url.path.rstrip("/")
    if path.endswith(API_PREFIX):
        path = path[: -len(API_PREFIX)]
    return str(url.with_path(path or "/")).rstrip("/")


# -- transfers -------------------------------------------------------------------------------


def upload_options(
    *,
    space_id: Any,
    folder_id: Any = None,
    client_key: Any = None,
    public: Any = False,
    checksum: Any = True,
    wait_until_clean: Any = False,
    clean_timeout: Any = 300.0,
    progress: Any = None,
) -> UploadOptions:
    """Validated :class:`UploadOptions` (the one options object of an upload)."""
    from ._transfer._upload import UploadOptions  # the engine imports this module

    return UploadOptions(
        space_id=require_id(space_id, "space_id"),
        folder_id=optional_id(folder_id, "folder_id"),
        client_key=optional_text(client_key, "client_key"),
        public=require_flag(public, "public"),
        checksum=require_flag(checksum, "checksum"),
        wait_until_clean=require_flag(wait_until_clean, "wait_until_clean"),
        clean_timeout=optional_seconds(clean_timeout, "clean_timeout"),
        progress=optional_callback(progress, "progress"),
    )


def optional_rate_limit(value: Any) -> RateLimit | None:
    """``rate_limit=``: None (no client-side limiter) or a :class:`RateLimit`."""
    from ._ratelimit import RateLimit  # which imports this module

    if value is not None and not isinstance(value, RateLimit):
        raise TypeError(f"rate_limit must be a RateLimit or None, not {_type_name(value)}")
    return value


def optional_hash_cache(value: Any) -> HashCache | None:
    """``hash_cache=``: None, a path (a cache the batch opens) or a :class:`HashCache`."""
    from ._transfer._existing import HashCache  # the engine imports this module

    if value is None or isinstance(value, HashCache):
        return value
    if isinstance(value, (str, os.PathLike)):
        return HashCache(value)
    raise TypeError(f"hash_cache must be a path or a HashCache, not {_type_name(value)}")


def require_path(value: str | os.PathLike[str] | os.PathLike[bytes], what: str) -> str:
    """A non-empty path as ``str`` (``bytes`` paths decoded as the filesystem does)."""
    path = os.fspath(value)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path:
        raise ValueError(f"{what} is empty")
    return path


def require_destination(dest: Any) -> Any:
    """A download destination: a path whose folder exists, or a writable binary file."""
    if isinstance(dest, (str, os.PathLike)):
        path = require_path(dest, "the destination path")
        if os.path.isdir(path):
            raise ValueError(f"{path!r} is a directory: give the file's path")
        path = os.path.abspath(path)
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            raise ValueError(f"the folder {parent!r} does not exist")
        return path
    if isinstance(dest, io.TextIOBase) or "t" in str(getattr(dest, "mode", "")):
        raise TypeError("the destination is open in text mode: open it with 'wb'")
    if not callable(getattr(dest, "write", None)):
        raise TypeError(f"dest must be a path or a binary file object, not {_type_name(dest)}")
    if getattr(dest, "closed", False) is True:
        raise ValueError("the destination file is closed")
    return dest
