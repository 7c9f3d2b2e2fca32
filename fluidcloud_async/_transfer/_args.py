"""Argument checks of the transfer methods: bad input fails before any network call."""

from __future__ import annotations

import io
import math
import os
from typing import Any

from .._validate_args import optional_id, require_id, require_text
from ._existing import HashCache
from ._upload import UploadOptions


def positive_int(value: Any, name: str) -> int:
    """An int >= 1 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def flag(value: Any, name: str) -> bool:
    """A real bool (``"false"`` or ``0`` would silently mean something else)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def callback(value: Any, name: str) -> Any:
    """None or a callable."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable, not {type(value).__name__}")
    return value


def timeout(value: Any, name: str) -> float | None:
    """None (wait forever) or a positive finite number of seconds."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


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
    """Validated :class:`UploadOptions`."""
    return UploadOptions(
        space_id=require_id(space_id, "space_id"),
        folder_id=optional_id(folder_id, "folder_id"),
        client_key=None if client_key is None else require_text(client_key, "client_key"),
        public=flag(public, "public"),
        checksum=flag(checksum, "checksum"),
        wait_until_clean=flag(wait_until_clean, "wait_until_clean"),
        clean_timeout=timeout(clean_timeout, "clean_timeout"),
        progress=callback(progress, "progress"),
    )


def hash_cache(value: Any) -> HashCache | None:
    """``hash_cache=``: None, a path (a cache the batch opens) or a :class:`HashCache`."""
    if value is None or isinstance(value, HashCache):
        return value
    if isinstance(value, (str, os.PathLike)):
        return HashCache(value)
    raise TypeError(f"hash_cache must be a path or a HashCache, not {type(value).__name__}")


def destination(dest: Any) -> Any:
    """A download destination: a path whose folder exists, or a writable binary file."""
    if isinstance(dest, (str, os.PathLike)):
        path = os.fspath(dest)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not path:
            raise ValueError("the destination path is empty")
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
        raise TypeError(f"dest must be a path or a binary file object, not {type(dest).__name__}")
    if getattr(dest, "closed", False) is True:
        raise ValueError("the destination file is closed")
    return dest
