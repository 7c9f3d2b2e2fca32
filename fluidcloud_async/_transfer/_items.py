"""Turning ``upload_many`` items into validated jobs, before any request is made.

Items are paths, directories (walked recursively, in sorted order), bytes-like objects,
file objects, async iterables, or ``(source, {options})`` pairs. With ``keys_from_paths``
a file found under a directory gets the POSIX path relative to that directory as its
``client_key`` (joined to ``key_prefix`` with ``/``); duplicate keys in one batch would
supersede each other on the server, so they are refused up front.

Items are checked when ``upload_many`` is called; directories are walked (see ``_tree``)
when the batch starts, in a worker thread, because a large tree takes many blocking
system calls. Entries a walk leaves out become jobs that report why they were skipped.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import AsyncIterable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .._validate_args import optional_id, optional_text, require_flag, require_text
from ._bulk import Job
from ._sources import describe
from ._tree import Found, Skipped, walk
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


@dataclass(frozen=True)
class _Tree:
    """A directory item, walked when the batch starts."""

    root: str
    options: UploadOptions


@dataclass
class Plan:
    """The checked items of one batch; :meth:`jobs` walks its directories (blocking)."""

    pieces: list[Job | _Tree]
    keys_from_paths: bool
    key_prefix: str | None
    follow_symlinks: bool

    @property
    def has_trees(self) -> bool:
        """Whether :meth:`jobs` has directories to walk (then run it in a worker thread)."""
        return any(isinstance(piece, _Tree) for piece in self.pieces)

    def jobs(self, stop: threading.Event | None = None) -> list[Job]:
        """Every job in input order (directories expanded); raises ValueError on
        duplicate client keys. ``stop`` set: give up walking (the batch was cancelled)."""
        jobs: list[Job] = []
        for piece in self.pieces:
            if isinstance(piece, _Tree):
                jobs.extend(self._walk(piece, stop))
            else:
                jobs.append(piece)
        for index, job in enumerate(jobs):
            job.index = index
        _refuse_duplicate_keys(jobs)
        return jobs

    def _walk(self, tree: _Tree, stop: threading.Event | None) -> Iterator[Job]:
        for entry in walk(tree.root, follow_symlinks=self.follow_symlinks, stop=stop):
            key = _key(self.key_prefix, entry.rel) if self.keys_from_paths else None
            options = replace(tree.options, client_key=key)
            if isinstance(entry, Skipped):
                yield Job(0, entry.path, None, options, key, skip=(entry.reason, entry.detail))
                continue
            if not isinstance(entry, Found):  # a subdirectory that could not be listed
                yield Job(0, entry.path, None, options, key, error=entry.error)
                continue
            try:
                spec = describe(entry.open_path, name=os.path.basename(entry.path))
            except (OSError, ValueError, TypeError) as exc:  # changed since it was listed
                yield Job(0, entry.path, None, options, key, error=exc)
                continue
            yield Job(0, entry.path, replace(spec, walked=entry.ident), options, key)


def expand(
    items: Any,
    base: UploadOptions,
    *,
    keys_from_paths: bool,
    key_prefix: str | None,
    follow_symlinks: bool = False,
) -> Plan:
    """Every item checked (directories only noted); raises TypeError/ValueError."""
    if key_prefix is not None:
        require_text(key_prefix, "key_prefix")
    pieces: list[Job | _Tree] = []
    for source, overrides in _entries(items):
        options = _options(base, overrides)
        if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
            extra = set(overrides) - _DIRECTORY_KEYS
            if extra:
                raise TypeError(f"a directory item cannot take {sorted(extra)}")
            pieces.append(_Tree(os.fspath(source), options))
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
        pieces.append(Job(len(pieces), source, spec, replace(options, client_key=key), key))
    plan = Plan(pieces, keys_from_paths, key_prefix, follow_symlinks)
    if not plan.has_trees:
        plan.jobs()  # duplicate keys among plain items are refused right here
    return plan


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
        changes["client_key"] = optional_text(overrides["client_key"], "client_key")
    if "folder_id" in overrides:
        changes["folder_id"] = optional_id(overrides["folder_id"], "folder_id")
    for name in ("public", "checksum", "wait_until_clean"):
        if name in overrides:
            changes[name] = require_flag(overrides[name], name)
    return replace(base, **changes) if changes else base


def _key(prefix: str | None, rel: str) -> str:
    if not prefix:
        return rel
    return prefix + rel if prefix.endswith("/") else f"{prefix}/{rel}"


def _refuse_duplicate_keys(jobs: list[Job]) -> None:
    seen: dict[str, int] = {}
    for job in jobs:
        if job.client_key is None or job.spec is None:  # skipped entries upload nothing
            continue
        if job.client_key in seen:
            raise ValueError(
                f"client_key {job.client_key!r} is used by items {seen[job.client_key]} and "
                f"{job.index}: the second upload would supersede the first"
            )
        seen[job.client_key] = job.index
