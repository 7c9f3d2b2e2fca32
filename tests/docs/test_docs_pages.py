"""Every ```python block of the documentation site (docs/**/*.md) runs against the emulator.

As for the README (test_readme.py), each block is a script run in a fresh directory with
``FLUIDCLOUD_API_KEY``/``FLUIDCLOUD_BASE_URL`` pointing at a fresh emulator. A block that is
not meant to run says so on the line before its fence, and the reason shows as a skip:

    <!-- docs-test: skip (why) -->
    ```python

    <!-- docs-test: pytest -->       run the block as a pytest file (the plugin's fixtures)
    ```python

A ```bash block marked ``<!-- docs-test: cli -->`` runs too, with the ``fluidcloud`` command
on the PATH, ``$SPACE`` (a space) and ``$FILE`` (a clean file) set, and a ``renders/``
directory to upload. Other bash blocks (install commands, a server started by hand) do not.

A Python block in any other form (```py, an indented fence, a marker this file does not
know) fails the collection test, so no block goes untested by accident.

The API reference renders the docstrings, so their ```python blocks (under ``Examples:``)
run too: as the body of an async function where ``fc`` is a client of the emulator,
``space`` a fresh space and ``f`` a clean file ``hello.txt`` in it (a block that defines
``test_*`` functions runs as a pytest file instead).
"""

from __future__ import annotations

import inspect
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import anyio
import pytest

from fluidcloud_async.emulator import Emulator, EmulatorConfig

DOCS = Path(__file__).resolve().parents[2] / "docs"
FENCE = re.compile(
    r"^(?:<!-- docs-test: (?P<marker>[^\n]*?) -->\n)?```python\n(?P<code>.*?)^```", re.S | re.M
)
# Any fence that opens a Python block, at any indentation, with any spelling.
ANY_PYTHON_FENCE = re.compile(r"^[ \t]*(?:```|~~~)[ \t]*\{?\.?(?:python|py|python3|pycon)\b", re.M)
MARKER = re.compile(r"^skip \(.+\)$|^pytest$")


class Block(NamedTuple):
    page: str
    line: int
    marker: str | None
    code: str


def _blocks() -> list[Block]:
    blocks = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start("code"))
            name = page.relative_to(DOCS).as_posix()
            blocks.append(Block(name, line, match.group("marker"), match.group("code")))
    return blocks


BLOCKS = _blocks()


def test_every_python_block_is_collected() -> None:
    """No Python block escapes the runner (wrong language tag, indented, bad marker)."""
    fences = sum(len(ANY_PYTHON_FENCE.findall(p.read_text("utf-8"))) for p in DOCS.rglob("*.md"))
    assert fences == len(BLOCKS), "a Python block in docs/ is not in the ```python form"
    bad = [f"{b.page}:{b.line}" for b in BLOCKS if b.marker and not MARKER.match(b.marker)]
    assert not bad, f"unknown docs-test markers at {bad}"
    assert sum(b.marker is None for b in BLOCKS) >= 10


def _env(emu: Emulator) -> dict[str, str]:
    return {
        **os.environ,
        "FLUIDCLOUD_API_KEY": emu.api_key,
        "FLUIDCLOUD_BASE_URL": emu.base_url,
        "PYTHONWARNINGS": "error",
    }


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b.page}:{b.line}" for b in BLOCKS])
async def test_docs_block_runs(block: Block, tmp_path: Path) -> None:
    if block.marker and block.marker.startswith("skip"):
        pytest.skip(f"{block.page}:{block.line} {block.marker}")
    if block.marker == "pytest":
        (tmp_path / "test_block.py").write_text(block.code, encoding="utf-8")
        command = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
            "test_block.py",
        ]  # fmt: skip
    else:
        command = [sys.executable, "-c", block.code]
    async with Emulator(EmulatorConfig(scan_delay=0.05)) as emu:
        with anyio.fail_after(120):
            result = await anyio.run_process(command, cwd=tmp_path, env=_env(emu), check=False)
    assert result.returncode == 0, (
        f"{block.page}:{block.line} failed:\n{block.code}\n--- stdout\n"
        f"{result.stdout.decode()}\n--- stderr\n{result.stderr.decode()}"
    )


# ------------------------------------------------------------------------- CLI blocks

CLI_FENCE = re.compile(r"^<!-- docs-test: cli -->\n```bash\n(?P<code>.*?)^```", re.S | re.M)
CLI_BLOCKS = [
    (f"{page.relative_to(DOCS).as_posix()}#{i}", match["code"])
    for page in sorted(DOCS.rglob("*.md"))
    for i, match in enumerate(CLI_FENCE.finditer(page.read_text(encoding="utf-8")))
]


def test_there_is_a_cli_block() -> None:
    assert CLI_BLOCKS


@pytest.mark.parametrize("code", [c for _, c in CLI_BLOCKS], ids=[i for i, _ in CLI_BLOCKS])
async def test_docs_cli_block_runs(code: str, tmp_path: Path) -> None:
    from fluidcloud_async import AsyncFluidCloud

    (tmp_path / "renders").mkdir()
    (tmp_path / "renders" / "out.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    async with Emulator(EmulatorConfig(scan_delay=0.05)) as emu:
        async with AsyncFluidCloud(emu.api_key, base_url=emu.base_url) as fc:
            space = await fc.spaces.create("docs")
            file = await fc.files.upload(b"data", space.id, name="d.bin", wait_until_clean=True)
        env = {
            **_env(emu),
            "SPACE": space.id,
            "FILE": file.id,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        with anyio.fail_after(120):
            result = await anyio.run_process(
                ["bash", "-euo", "pipefail", "-c", code], cwd=tmp_path, env=env, check=False
            )
    assert result.returncode == 0, f"{code}\n{result.stdout.decode()}\n{result.stderr.decode()}"


# ------------------------------------------------------------------ docstring examples

DOCSTRING_FENCE = re.compile(
    r"^(?P<indent>[ ]*)```python\n(?P<code>.*?)^(?P=indent)```", re.S | re.M
)
PREAMBLE = """\
import asyncio

import fluidcloud_async
from fluidcloud_async import *  # noqa: F403
from fluidcloud_async import AsyncFluidCloud


async def _example() -> None:
    async with AsyncFluidCloud() as fc:
        space = await fc.spaces.create("docstring example")
        f = await fc.files.upload(b"hello", space.id, name="hello.txt", wait_until_clean=True)
"""


def _public_objects() -> list[tuple[str, object]]:
    import fluidcloud_async
    import fluidcloud_async.emulator
    import fluidcloud_async.pytest_plugin
    import fluidcloud_async.resources

    found: list[tuple[str, object]] = [
        ("fluidcloud_async.pytest_plugin", fluidcloud_async.pytest_plugin)
    ]
    for module in (fluidcloud_async, fluidcloud_async.resources, fluidcloud_async.emulator):
        for name in module.__all__:
            obj = getattr(module, name)
            found.append((f"{module.__name__}.{name}", obj))
            if inspect.isclass(obj):
                found += [
                    (f"{module.__name__}.{name}.{member}", value)
                    for member, value in vars(obj).items()
                    if not member.startswith("_")
                ]
    return found


def _docstring_blocks() -> list[tuple[str, str]]:
    blocks, seen = [], set()
    for path, obj in _public_objects():
        doc = inspect.getdoc(obj) if not isinstance(obj, (str, int, float)) else None
        if not doc or id(obj) in seen:
            continue
        seen.add(id(obj))
        for i, match in enumerate(DOCSTRING_FENCE.finditer(doc)):
            blocks.append((f"{path}#{i}", textwrap.dedent(match["code"])))
    return blocks


DOCSTRING_BLOCKS = _docstring_blocks()


@pytest.mark.parametrize(
    "code", [c for _, c in DOCSTRING_BLOCKS], ids=[i for i, _ in DOCSTRING_BLOCKS]
)
async def test_docstring_example_runs(code: str, tmp_path: Path) -> None:
    if re.search(r"^(async )?def test_", code, re.M):
        (tmp_path / "test_block.py").write_text(code, encoding="utf-8")
        command = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
            "test_block.py",
        ]  # fmt: skip
    else:
        script = PREAMBLE + textwrap.indent(code, " " * 8) + "\n\nasyncio.run(_example())\n"
        command = [sys.executable, "-c", script]
    async with Emulator(EmulatorConfig(scan_delay=0.05)) as emu:
        with anyio.fail_after(120):
            result = await anyio.run_process(command, cwd=tmp_path, env=_env(emu), check=False)
    assert result.returncode == 0, (
        f"docstring example failed:\n{code}\n--- stdout\n{result.stdout.decode()}"
        f"\n--- stderr\n{result.stderr.decode()}"
    )
