"""Turning ``upload_many`` items into validated jobs, before any request is made.

Items are paths, directories (walked recursively, in sorted order), bytes-like objects,
file objects, async iterables, or ``(source, {options})`` pairs. With ``keys_from_paths``
a file found under a directory gets the POSIX path relative to that directory as its
``client_key`` (joined to ``key_prefix`` with ``/``); duplicate keys in one batch would
supersede each other on the server, so they are refused up front.
"""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterable, Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import PurePath
from typing import Any

from .._validate_args import optional_id, require_text
from . import _args
from ._bulk import Job
from ._sources import describe
from ._upload import UploadOptions

#: Options an item may override: naming and sizing, plus the per-file upload flags.
ITEM_KEYS = frozenset(
    {
        "name",
        "content_type",
        "size",
        "client_key",
        "folder_id",
        "public",
        "checksum",
        "wait_until_clean",
    }
)
_DIRECTORY_KEYS = frozenset({"folder_id", "public", "checksum", "wait_until_clean"})


def expand(
    items: Any, base: UploadOptions, *, keys_from_paths: bool, key_prefix: str | None
) -> list[Job]:
    """Every item as a :class:`Job` (directories expanded); raises TypeError/ValueError."""
    if key_prefix is not None:
        require_text(key_prefix, "key_prefix")
    jobs: list[Job] = []
    for source, overrides in _entries(items):
        options = _options(base, overrides)
        if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
            extra = set(overrides) - _DIRECTORY_KEYS
            if extra:
                raise TypeError(f"a directory item cannot take {sorted(extra)}")
            for path, rel in _walk(os.fspath(source)):
                key = _key(key_prefix, rel) if keys_from_paths else None
                spec = describe(path)
                jobs.append(Job(len(jobs), path, spec, replace(options, client_key=key), key))
            continue
        spec = describe(
            source,
            name=overrides.get("name"),
            content_type=overrides.get("content_type"),
            size=overrides.get("size"),
        )
        key = options.client_key
        if key is None and keys_from_paths and isinstance(source, (str, os.PathLike)):
            key = _key(key_prefix, os.path.basename(os.fspath(source)))
        jobs.append(Job(len(jobs), source, spec, replace(options, client_key=key), key))
    _refuse_duplicate_keys(jobs)
    return jobs


def _entries(items: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    if _is_single(items):
        items = [items]
    elif not isinstance(items, Iterable):
        raise TypeError(
            f"items must be a path, a source, a (source, options) pair or an iterable of them, "
            f"not {type(items).__name__}"
        )
    for item in items:
        if isinstance(item, tuple):
            if len(item) != 2 or not isinstance(item[1], Mapping):
                raise TypeError("a tuple item must be (source, {options})")
            source, overrides = item[0], dict(item[1])
            unknown = set(overrides) - ITEM_KEYS
            if unknown:
                raise TypeError(
                    f"unknown item options {sorted(unknown)}; allowed: {sorted(ITEM_KEYS)}"
                )
            yield source, overrides
        else:
            yield item, {}


def _is_single(items: Any) -> bool:
    if isinstance(items, (str, os.PathLike, bytes, bytearray, memoryview, io.IOBase)):
        return True
    if isinstance(items, tuple) and len(items) == 2 and isinstance(items[1], Mapping):
        return True
    return isinstance(items, AsyncIterable) or callable(getattr(items, "read", None))


def _options(base: UploadOptions, overrides: dict[str, Any]) -> UploadOptions:
    changes: dict[str, Any] = {}
    if "client_key" in overrides:
        value = overrides["client_key"]
        changes["client_key"] = None if value is None else require_text(value, "client_key")
    if "folder_id" in overrides:
        changes["folder_id"] = optional_id(overrides["folder_id"], "folder_id")
    for name in ("public", "checksum", "wait_until_clean"):
        if name in overrides:
            changes[name] = _args.flag(overrides[name], name)
    return replace(base, **changes) if changes else base


def _walk(top: str) -> Iterator[tuple[str, str]]:
    def fail(exc: OSError) -> None:
        raise exc

    for dirpath, dirnames, filenames in os.walk(top, onerror=fail):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if os.path.isfile(path):  # skips broken links, sockets, fifos
                yield path, PurePath(os.path.relpath(path, top)).as_posix()


def _key(prefix: str | None, rel: str) -> str:
    if not prefix:
        return rel
    return prefix + rel if prefix.endswith("/") else f"{prefix}/{rel}"


def _refuse_duplicate_keys(jobs: list[Job]) -> None:
    seen: dict[str, int] = {}
    for job in jobs:
        if job.client_key is None:
            continue
        if job.client_key in seen:
            raise ValueError(
                f"client_key {job.client_key!r} is used by items {seen[job.client_key]} and "
                f"{job.index}: the second upload would supersede the first"
            )
        seen[job.client_key] = job.index
