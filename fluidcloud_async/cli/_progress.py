"""Transfer progress: a live rich display on a terminal, plain lines otherwise.

Everything goes to stderr so stdout stays clean for results (``--json``). The live display
is used only when both stdout and stderr are terminals; when either is piped or redirected,
progress degrades to a line per finished file plus an overall line every few seconds.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ._output import console, echo, human_bytes, terminal_safe

PLAIN_INTERVAL = 2.0  # seconds between two overall lines in plain mode


def _rate(done: int, elapsed: float) -> str:
    return f"{human_bytes(int(done / elapsed))}/s" if elapsed > 0 and done > 0 else "-"


def _eta(done: int, total: int, elapsed: float) -> str:
    if done <= 0 or elapsed <= 0 or total <= done:
        return "0s" if total and done >= total else "-"
    seconds = (total - done) / (done / elapsed)
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def _short(label: str, width: int = 40) -> str:
    """A bar's description: terminal-safe (server names), shortened from the left."""
    label = terminal_safe(label)
    return label if len(label) <= width else "..." + label[-(width - 3) :]


class FileTask:
    """Byte progress of one file; ``update`` has the SDK's ``progress(done, total)`` shape."""

    def __init__(self, display: Display, label: str, total: int | None) -> None:
        self.display = display
        self.label = label
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self.task: TaskID | None = None

    def update(self, done: int, total: int | None = None) -> None:
        """``done`` bytes of ``total`` so far."""
        if total is not None:
            self.total = total
        self.display.done += done - self.done
        self.done = done
        self.display._changed(self)

    def finish(self, ok: bool, note: str = "") -> None:
        """Mark the file done (or failed) and report it."""
        if ok and self.total is not None and self.done < self.total:
            self.update(self.total)
        elapsed = time.monotonic() - self.started
        self.display.file_done(self.label, self.total, ok, note, elapsed=elapsed, task=self)


class Display:
    """Counts overall bytes and finished files; subclasses decide what to show."""

    def __init__(self, total: int, files: int) -> None:
        self.total = total
        self.files = files
        self.done = 0
        self.finished = 0
        self.started = time.monotonic()
        self._tracked: dict[object, FileTask] = {}

    def __enter__(self) -> Display:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the display."""

    def log(self, message: str) -> None:
        """A line for the user (kept clear of the live area), made terminal-safe."""
        echo(message, err=True)

    def add_file(self, label: str, total: int | None) -> FileTask:
        """Track one file's bytes."""
        return FileTask(self, label, total)

    def track(self, key: object, label: str, done: int, total: int) -> FileTask:
        """One file of a batch whose overall bytes come from :meth:`batch`: its own bar
        moves, the overall count is left to the batch callback."""
        task = self._tracked.get(key)
        if task is None:
            task = self._tracked[key] = self.add_file(label, total)
        task.done, task.total = done, total
        self._changed(task)
        return task

    def untrack(self, key: object) -> FileTask | None:
        """Forget a tracked file (it finished); its task, if it ever reported."""
        return self._tracked.pop(key, None)

    def batch(self, done: int, total: int) -> None:
        """Overall bytes of a batch (the ``progress`` callback of ``upload_many``)."""
        self.done, self.total = done, total
        self._changed(None)

    def file_done(
        self,
        label: str,
        size: int | None,
        ok: bool,
        note: str = "",
        *,
        elapsed: float | None = None,
        task: FileTask | None = None,
    ) -> None:
        """One file finished (``ok``) or failed (``note`` says why)."""
        self.finished += 1
        if not ok:
            self.log(f"FAILED {label}: {note}")
        elif self._verbose():
            extra = [human_bytes(size) if size is not None else "?"]
            if elapsed is not None:
                extra += [f"{elapsed:.1f}s", _rate(size or 0, elapsed)]
            self.log(f"done   {label} ({', '.join(extra)}){' ' + note if note else ''}")

    def _verbose(self) -> bool:
        return True

    def _changed(self, task: FileTask | None) -> None:
        pass


class QuietDisplay(Display):
    """No progress at all (``--quiet``); failures still reach stderr."""

    def _verbose(self) -> bool:
        return False


class PlainDisplay(Display):
    """Line-oriented progress for logs and pipes."""

    def __init__(self, total: int, files: int, title: str | None = None) -> None:
        super().__init__(total, files)
        self._last_line = time.monotonic()
        if title:
            self.log(title)

    def _changed(self, task: FileTask | None) -> None:
        now = time.monotonic()
        if now - self._last_line >= PLAIN_INTERVAL:
            self._last_line = now
            self.log(self.overall_line())

    def overall_line(self) -> str:
        """``progress 12.0 MiB of 40.0 MiB (30%), 3/10 files, 5.1 MiB/s, ETA 5s``."""
        elapsed = time.monotonic() - self.started
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        return (
            f"progress {human_bytes(self.done)} of {human_bytes(self.total)}{pct}, "
            f"{self.finished}/{self.files} files, {_rate(self.done, elapsed)}, "
            f"ETA {_eta(self.done, self.total, elapsed)}"
        )


class RichDisplay(Display):
    """A live display: the overall bar, plus one bar per tracked file in flight."""

    def __init__(self, total: int, files: int) -> None:
        super().__init__(total, files)
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console(stderr=True),
            transient=True,
        )
        self.overall = self.progress.add_task(self._label(), total=total or None)
        self.progress.start()

    def _label(self) -> str:
        return f"{self.finished}/{self.files} files" if self.files > 1 else "total"

    def close(self) -> None:
        self.progress.stop()

    def log(self, message: str) -> None:
        self.progress.console.print(terminal_safe(message), markup=False, highlight=False)

    def add_file(self, label: str, total: int | None) -> FileTask:
        task = super().add_file(label, total)
        if self.files > 1:
            task.task = self.progress.add_task(_short(label), total=total)
        else:  # one file: its bar is the overall bar
            self.progress.update(self.overall, description=_short(label))
        return task

    def _changed(self, task: FileTask | None) -> None:
        if task is not None and self.files > 1:
            sent = task.total is not None and task.done >= task.total
            if sent and task.task is not None:
                # Every byte is out: the file leaves the bar area while /complete (and any
                # scan wait) runs, so only transfers in flight hold a bar, not full ones.
                self.progress.remove_task(task.task)
                task.task = None
            elif not sent and task.task is None:  # a retried part rolled its bytes back
                task.task = self.progress.add_task(_short(task.label), total=task.total)
            if task.task is not None:
                self.progress.update(task.task, completed=task.done, total=task.total)
        self.progress.update(self.overall, completed=self.done, total=self.total or None)

    def file_done(
        self,
        label: str,
        size: int | None,
        ok: bool,
        note: str = "",
        *,
        elapsed: float | None = None,
        task: FileTask | None = None,
    ) -> None:
        if task is not None and task.task is not None:
            # Finished files leave the live area (a bulk upload may have thousands).
            self.progress.remove_task(task.task)
        super().file_done(label, size, ok, note, elapsed=elapsed, task=task)
        if self.files > 1:
            self.progress.update(self.overall, description=self._label())

    def _verbose(self) -> bool:
        return self.files > 1  # one file: the bar and the result table say it all


def make_display(
    total: int, files: int, *, quiet: bool = False, title: str | None = None
) -> Display:
    """The display that fits where the output goes (``title`` starts a plain log)."""
    if quiet:
        return QuietDisplay(total, files)
    if sys.stdout.isatty() and sys.stderr.isatty():
        return RichDisplay(total, files)
    return PlainDisplay(total, files, title)
