"""upload_many's per-file progress: every file reports, last call exactly its size."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from fluidcloud_async import AsyncFluidCloud, Space

from .conftest import random_bytes, write

MiB = 1024 * 1024


async def test_each_file_reports_its_own_progress(
    fc: AsyncFluidCloud, space: Space, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    for sub in ("a", "b"):
        (tree / sub).mkdir(parents=True)
    big = write(tree / "a" / "big.bin", random_bytes(12 * MiB, seed=3))
    small = write(tree / "b" / "small.txt", b"tiny\n")
    memory = b"x" * 300_000
    sizes: dict[Any, int] = {str(big): 12 * MiB, str(small): 5, memory: len(memory)}
    seen: dict[Any, list[tuple[int, int]]] = defaultdict(list)

    async def on_file(source: Any, sent: int, total: int) -> None:
        seen[source].append((sent, total))

    results = await fc.files.upload_many(
        [tree, (memory, {"name": "mem.bin"})], space.id, file_progress=on_file
    )
    assert all(r.ok for r in results)
    assert set(seen) == set(sizes)
    for source, calls in seen.items():
        assert calls[-1] == (sizes[source], sizes[source]), source
        sent = [c[0] for c in calls]
        assert sent == sorted(sent), source  # no faults here, so no rollback


async def test_file_progress_must_be_callable(fc: AsyncFluidCloud, space: Space) -> None:
    with pytest.raises(TypeError, match="file_progress"):
        fc.files.upload_many([b"x"], space.id, file_progress="print")  # type: ignore[arg-type]
