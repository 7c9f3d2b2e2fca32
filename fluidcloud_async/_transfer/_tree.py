"""Walking an ``upload_many`` directory: what to upload, what to skip and why.

By default no symlink is followed (a link inside a user-writable tree could point at any
file the process can read); each is reported as skipped. With ``follow_symlinks=True``
links are followed only to targets whose real path stays inside the root's real path,
and each real directory is walked once, so link loops (and bind-mount loops, in both
modes) end with a skipped entry. Links are followed after the real tree is walked, so a
directory reachable both directly and through a link keeps its own path.

The walk makes blocking system calls: callers run it in a worker thread. Files are
opened later, by :func:`open_entry`, with ``O_NOFOLLOW`` and only while they are still
the file the walk saw (device and inode), so an entry swapped for a link (or a parent
directory swapped for one) between the walk and the upload is never followed.
"""

from __future__ import annotations

import enum
import errno
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import PurePath


class SkipReason(str, enum.Enum):
    """Why ``upload_many`` did not upload an item (not a failure): an entry of a directory
    it does not follow, or (``skip_existing``) a file already stored unchanged."""

    SYMLINK = "symlink (not followed)"
    OUTSIDE_ROOT = "symlink target outside the tree"
    LOOP = "symlink loop"
    ALREADY_WALKED = "directory already walked"
    BROKEN_SYMLINK = "broken symlink"
    NOT_REGULAR = "not a regular file"
    UNCHANGED = "unchanged"
    """``skip_existing``: its client_key names a live file of the same size and SHA-256."""


@dataclass(frozen=True)
class Found:
    """A regular file to upload."""

    path: str  # as shown to the caller: the root joined with ``rel``
    rel: str  # POSIX path relative to the root
    open_path: str  # the path to open: no symlink in its last component
    ident: tuple[int, int]  # (st_dev, st_ino) seen by the walk
    size: int


@dataclass(frozen=True)
class Skipped:
    """An entry deliberately left out."""

    path: str
    rel: str
    reason: SkipReason
    detail: str | None = None


@dataclass(frozen=True)
class Unreadable:
    """A subdirectory that could not be listed (its files are missing: a failure)."""

    path: str
    rel: str
    error: OSError


Entry = Found | Skipped | Unreadable


class EntrySkipped(Exception):
    """Raised when opening a walked file finds a symlink in its place (it is skipped)."""

    def __init__(self, reason: SkipReason, detail: str | None = None) -> None:
        super().__init__(reason.value if detail is None else f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class EntryReplacedError(OSError):
    """A file found by the directory walk was replaced by another before it was opened."""


def open_entry(path: str, flags: int, walked: tuple[int, int]) -> int:
    """Open a file found by :func:`walk`: never through a symlink in its last component,
    and only if it is still the file (device, inode) the walk saw; returns the fd."""
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP and os.path.islink(path):
            raise EntrySkipped(SkipReason.SYMLINK, "replaced by a symlink after the walk") from None
        raise
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != walked:
            raise EntryReplacedError(f"{path}: replaced since the directory walk; not uploaded")
    except BaseException:
        os.close(fd)
        raise
    return fd


def walk(root: str, *, follow_symlinks: bool, stop: threading.Event | None = None) -> list[Entry]:
    """Every entry under ``root`` in sorted order (a directory's files, then its
    subdirectories), then those reached through followed links. Blocking: run it in a
    worker thread. Raises OSError if ``root`` itself cannot be listed."""
    return _Walk(root, follow_symlinks, stop).run()


class _Walk:
    def __init__(self, root: str, follow: bool, stop: threading.Event | None) -> None:
        self.root = root
        # The root you name is used even if it is itself a link; links inside are not.
        self.root_real = os.path.realpath(root, strict=True)
        self.follow = follow
        self.stop = stop
        self.entries: list[Entry] = []
        self.visited: dict[tuple[int, int], str] = {}  # real directory -> rel walked as
        self.links: list[tuple[str, str, str]] = []  # (shown path, rel, path on disk)

    def run(self) -> list[Entry]:
        st = os.stat(self.root)
        self.visited[(st.st_dev, st.st_ino)] = ""
        self._tree(self.root, self.root, "", top=True)
        while self.links and not self._stopped():  # grows while linked trees are walked
            self._link(*self.links.pop(0))
        return self.entries

    def _stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _tree(self, disk: str, shown: str, rel: str, *, top: bool = False) -> None:
        stack = [(disk, shown, rel)]
        while stack and not self._stopped():
            disk, shown, rel = stack.pop()
            try:
                with os.scandir(disk) as it:
                    listing = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                if top:
                    raise
                self.entries.append(Unreadable(shown, rel, exc))
                continue
            top = False
            subdirs: list[tuple[str, str, str]] = []
            for entry in listing:
                child = (entry.path, os.path.join(shown, entry.name), _join(rel, entry.name))
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # removed since the listing: nothing to report
                    continue
                if stat.S_ISLNK(st.st_mode):
                    if self.follow:
                        self.links.append(child)
                    else:
                        self._skip(child, SkipReason.SYMLINK, _readlink(entry.path))
                elif stat.S_ISDIR(st.st_mode):
                    ident = (st.st_dev, st.st_ino)
                    if self._first_visit(child, ident):
                        subdirs.append(child)
                elif stat.S_ISREG(st.st_mode):
                    self.entries.append(
                        Found(child[1], child[2], child[0], (st.st_dev, st.st_ino), st.st_size)
                    )
                else:
                    self._skip(child, SkipReason.NOT_REGULAR, _kind(st.st_mode))
            stack.extend(reversed(subdirs))

    def _first_visit(self, child: tuple[str, str, str], ident: tuple[int, int]) -> bool:
        """Record a directory; a second visit (a loop, or an alias) is skipped."""
        earlier = self.visited.get(ident)
        if earlier is None:
            self.visited[ident] = child[2]
            return True
        rel = child[2]
        if earlier == "" or rel.startswith(earlier + "/"):
            self._skip(child, SkipReason.LOOP, f"leads back to {earlier or '.'}")
        else:
            self._skip(child, SkipReason.ALREADY_WALKED, f"as {earlier}")
        return False

    def _link(self, disk: str, shown: str, rel: str) -> None:
        child = (disk, shown, rel)
        try:
            target = os.path.realpath(disk, strict=True)
            st = os.stat(target)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._skip(child, SkipReason.LOOP, "links resolve in a circle")
            else:
                self._skip(child, SkipReason.BROKEN_SYMLINK, _readlink(disk))
            return
        if not _inside(target, self.root_real):
            self._skip(child, SkipReason.OUTSIDE_ROOT, target)
        elif stat.S_ISDIR(st.st_mode):
            if self._first_visit(child, (st.st_dev, st.st_ino)):
                self._tree(target, shown, rel)
        elif stat.S_ISREG(st.st_mode):
            self.entries.append(Found(shown, rel, target, (st.st_dev, st.st_ino), st.st_size))
        else:
            self._skip(child, SkipReason.NOT_REGULAR, _kind(st.st_mode))

    def _skip(self, child: tuple[str, str, str], reason: SkipReason, detail: str | None) -> None:
        self.entries.append(Skipped(child[1], child[2], reason, detail))


def _join(rel: str, name: str) -> str:
    return PurePath(rel, name).as_posix() if rel else PurePath(name).as_posix()


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _readlink(path: str) -> str | None:
    try:
        return "-> " + os.readlink(path)
    except OSError:
        return None


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "unknown type"
