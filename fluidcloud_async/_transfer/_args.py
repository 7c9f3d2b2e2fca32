"""Argument checks of the transfer methods: bad input fails before any network call."""

from __future__ import annotations

import math
from typing import Any

from .._validate_args import optional_id, require_id, require_text
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
