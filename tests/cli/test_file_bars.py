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


def test_files_fully_sent_leave_the_bar_area() -> None:
    """20 small files whose bytes are all sent (now completing, or waiting for their scan)
    no longer hold full bars with a '?' rate while a large file is still going."""
    display = RichDisplay(total=20 * 8 + 1000, files=21)
    try:
        display.track("big", "big.bin", 100, 1000)
        for i in range(20):
            display.track(i, f"small-{i}.txt", 8, 8)
        bars = [t.description for t in display.progress.tasks if t.description != "0/21 files"]
        assert bars == ["big.bin"]
        display.file_done("small-0.txt", 8, True, task=display.untrack(0))  # result arrives
        display.track("big", "big.bin", 400, 1000)
        assert [t.completed for t in display.progress.tasks if t.description == "big.bin"] == [400]
        display.track("big", "big.bin", 1000, 1000)
        assert [t.description for t in display.progress.tasks] == ["1/21 files"]
    finally:
        display.close()


def test_a_rolled_back_file_gets_its_bar_again() -> None:
    display = RichDisplay(total=200, files=2)
    try:
        display.track("a", "a.bin", 100, 100)
        display.track("a", "a.bin", 60, 100)  # the last part failed and is retried
        assert [t.description for t in display.progress.tasks][1:] == ["a.bin"]
    finally:
        display.close()
