"""Bulk uploads show one bar per file in flight, fed by upload_many(file_progress=...)."""

from __future__ import annotations

from fluidcloud_async.cli._progress import RichDisplay


def test_tracked_files_get_their_own_bar_until_done() -> None:
    display = RichDisplay(total=300, files=3)
    try:
        a = display.track("a", "a.bin", 10, 100)
        display.track("b", "b.bin", 5, 200)
        assert display.track("a", "a.bin", 60, 100) is a  # same file, same bar
        bars = {t.description: t for t in display.progress.tasks}
        assert bars["a.bin"].completed == 60
        assert bars["b.bin"].total == 200
        assert display.done == 0  # overall bytes come from the batch callback only
        display.batch(65, 300)
        assert display.done == 65

        display.file_done("a.bin", 100, True, task=display.untrack("a"))
        assert [
            t.description for t in display.progress.tasks if t.description.endswith(".bin")
        ] == ["b.bin"]
        assert display.untrack("a") is None
    finally:
        display.close()
