"""Transfer progress: a live rich display on a terminal, plain lines otherwise.

Everything is written to stderr so stdout stays clean for results (``--json``). The live
display is used only when both stdout and stderr are terminals; when either is piped or
redirected, progress degrades to a line per finished file plus a periodic overall line.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType

import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ._output import console, human_bytes

PLAIN_INTERVAL = 2.0  # seconds between two overall lines in plain mode


def _rate(done: int, elapsed: float) -> str:
    return f"{human_bytes(int(done / elapsed))}/s" if elapsed > 0 and done > 0 else "-"


def _eta(done: int, total: int, elapsed: float) -> str:
    if done <= 0 or elapsed <= 0 or total <= done:
        return "0s" if total and done >= total else "-"
    seconds = (total - done) / (done / elapsed)
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


class FileTask:
    """Progress of one file inside a :class:`Display`."""

    def __init__(self, display: Display, label: str, total: int | None) -> None:
        self.display = display
        self.label = label
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self.task: TaskID | None = None

    def update(self, done: int, total: int | None = None) -> None:
        """``done`` bytes of ``total`` (the callback form the SDK uses)."""
        if total is not None:
            self.total = total
        delta = done - self.done
        self.done = done
        self.display._advance(self, delta)

    def finish(self, ok: bool, note: str = "") -> None:
        """Mark the file done (or failed) and report it."""
        if ok and self.total is not None and self.done < self.total:
            self.update(self.total)
        self.display._finish(self, ok, note)


class Display:
    """Base display: counts overall bytes; subclasses decide how to show them."""

    def __init__(self, total: int, files: int) -> None:
        self.total = total
        self.files = files
        self.done = 0
        self.finished = 0
        self.started = time.monotonic()

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

    def add_file(self, label: str, total: int | None) -> FileTask:
        """Start tracking one file."""
        return FileTask(self, label, total)

    def log(self, message: str) -> None:
        """A line for the user (kept clear of the live area)."""
        click.echo(message, err=True)

    def _advance(self, task: FileTask, delta: int) -> None:
        self.done += delta

    def _finish(self, task: FileTask, ok: bool, note: str) -> None:
        self.finished += 1

    def _summary(self, task: FileTask, ok: bool, note: str) -> str:
        elapsed = time.monotonic() - task.started
        size = human_bytes(task.total) if task.total is not None else "?"
        if ok:
            tail = f" {note}" if note else ""
            return (
                f"done   {task.label} ({size}, {elapsed:.1f}s, {_rate(task.done, elapsed)}){tail}"
            )
        return f"FAILED {task.label}: {note}"


class QuietDisplay(Display):
    """No progress at all (``--quiet``); failures still reach stderr."""

    def _finish(self, task: FileTask, ok: bool, note: str) -> None:
        super()._finish(task, ok, note)
        if not ok:
            self.log(self._summary(task, ok, note))


class PlainDisplay(Display):
    """Line-oriented progress for logs and pipes."""

    def __init__(self, total: int, files: int) -> None:
        super().__init__(total, files)
        self._last_line = time.monotonic()

    def _advance(self, task: FileTask, delta: int) -> None:
        super()._advance(task, delta)
        now = time.monotonic()
        if now - self._last_line >= PLAIN_INTERVAL:
            self._last_line = now
            self.log(self._overall())

    def _finish(self, task: FileTask, ok: bool, note: str) -> None:
        super()._finish(task, ok, note)
        self.log(self._summary(task, ok, note))

    def _overall(self) -> str:
        elapsed = time.monotonic() - self.started
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        return (
            f"progress {human_bytes(self.done)} of {human_bytes(self.total)}{pct}, "
            f"{self.finished}/{self.files} files, {_rate(self.done, elapsed)}, "
            f"ETA {_eta(self.done, self.total, elapsed)}"
        )


class RichDisplay(Display):
    """A live display: one bar per file in flight and one overall bar."""

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
        label = f"all {files} files" if files > 1 else "total"
        self.overall = self.progress.add_task(label, total=total or None)
        self.progress.start()

    def close(self) -> None:
        self.progress.stop()

    def log(self, message: str) -> None:
        self.progress.console.print(message, markup=False, highlight=False)

    def add_file(self, label: str, total: int | None) -> FileTask:
        task = super().add_file(label, total)
        if self.files > 1:
            task.task = self.progress.add_task(_short(label), total=total)
        else:  # one file: its bar is the overall bar
            self.progress.update(self.overall, description=_short(label))
        return task

    def _advance(self, task: FileTask, delta: int) -> None:
        super()._advance(task, delta)
        if task.task is not None:
            self.progress.update(task.task, completed=task.done, total=task.total)
        self.progress.update(self.overall, completed=self.done)

    def _finish(self, task: FileTask, ok: bool, note: str) -> None:
        super()._finish(task, ok, note)
        if task.task is not None:
            # Finished files leave the live area (a bulk upload may have thousands).
            self.progress.remove_task(task.task)
        if self.files > 1 or not ok:
            self.log(self._summary(task, ok, note))


def _short(label: str, width: int = 40) -> str:
    return label if len(label) <= width else "..." + label[-(width - 3) :]


def make_display(total: int, files: int, *, quiet: bool = False) -> Display:
    """The display that fits the terminal situation."""
    if quiet:
        return QuietDisplay(total, files)
    if sys.stdout.isatty() and sys.stderr.isatty():
        return RichDisplay(total, files)
    return PlainDisplay(total, files)
