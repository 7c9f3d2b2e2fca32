"""`files upload DIR`: skipped entries (symlinks, fifos) get a line each, a warning, exit 0."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .conftest import Cli

SECRET = b"not for upload\n"


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"alpha")
    (tree / "sub" / "b.txt").write_bytes(b"bravo")
    (tree / "leak.txt").symlink_to(secret)
    (tree / "inside.txt").symlink_to("sub/b.txt")
    os.mkfifo(tree / "pipe")
    return tree, secret


def test_skipped_entries_are_listed_and_do_not_fail(fcx: Cli, tmp_path: Path) -> None:
    tree, secret = _tree(tmp_path)
    space = fcx.json("spaces", "create", "symlinks")["id"]
    result = fcx("files", "upload", str(tree), "--space", space, "--keys-from-paths")
    skipped = sorted(line for line in result.stderr.splitlines() if line.startswith("skipped "))
    assert skipped == [
        f"skipped {tree / 'inside.txt'}: symlink (not followed) (-> sub/b.txt)",
        f"skipped {tree / 'leak.txt'}: symlink (not followed) (-> {secret})",
        f"skipped {tree / 'pipe'}: not a regular file (FIFO)",
    ]
    assert result.stderr.splitlines()[0] == "uploading 2 files, 3 skipped"
    assert result.stderr.splitlines()[-1] == (
        "fluidcloud: warning: 3 directory entries skipped (not uploaded; "
        "see the 'skipped' lines above)"
    )
    listed = fcx.json("files", "list", "--space", space)
    assert sorted(f["client_key"] for f in listed) == ["a.txt", "sub/b.txt"]


def test_json_and_follow_symlinks(fcx: Cli, tmp_path: Path) -> None:
    tree, secret = _tree(tmp_path)
    space = fcx.json("spaces", "create", "symlinks-json")["id"]
    result = fcx(
        "--json", "files", "upload", str(tree), "--space", space, "--keys-from-paths",
        "--follow-symlinks",
    )  # fmt: skip
    uploaded = json.loads(result.stdout)  # stdout keeps its shape: the stored files
    assert sorted(f["client_key"] for f in uploaded) == ["a.txt", "inside.txt", "sub/b.txt"]
    lines = [json.loads(x) for x in result.stderr.splitlines() if x.startswith("{")]
    assert sorted(lines, key=lambda d: d["skipped"]) == [
        {
            "skipped": str(tree / "leak.txt"),
            "client_key": "leak.txt",
            "code": "outside_root",
            "reason": f"symlink target outside the tree ({secret.resolve()})",
        },
        {
            "skipped": str(tree / "pipe"),
            "client_key": "pipe",
            "code": "not_regular",
            "reason": "not a regular file (FIFO)",
        },
    ]


def test_failures_still_exit_1_beside_skips(fcx: Cli, tmp_path: Path) -> None:
    tree, _ = _tree(tmp_path)
    missing = "00000000-0000-4000-8000-000000000000"
    result = fcx("files", "upload", str(tree), "--space", missing, code=1)
    assert sum(line.startswith("FAILED ") for line in result.stderr.splitlines()) == 2
    assert sum(line.startswith("skipped ") for line in result.stderr.splitlines()) == 3
    assert result.stderr.splitlines()[-1] == "fluidcloud: error: 2 of 2 uploads failed"


def test_only_skipped_entries(fcx: Cli, tmp_path: Path) -> None:
    tree = tmp_path / "links"
    tree.mkdir()
    (tree / "l").symlink_to(tmp_path)
    space = fcx.json("spaces", "create", "only-links")["id"]
    result = fcx("files", "upload", str(tree), "--space", space)
    assert result.stdout.strip() == "nothing uploaded"
    assert f"skipped {tree / 'l'}: symlink (not followed) (-> {tmp_path})" in result.stderr
