"""Where a client spends its time: one extra run under py-spy, summarised for the report.

Used when a target is missed, so the note next to it says what limits it. py-spy samples
every thread (``--threads``); a thread's
*busy* share is its samples over (rate × measured wall time), the main thread counting
only samples taken while its event loop runs (``focus``) and not importing a module.
"""

from __future__ import annotations

import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._measure import RESULT_PREFIX

RATE = 500
TIMEOUT = 600.0
TOP = 12
# Frames worth naming in the inclusive list: the SDK and its libraries (the event loop's
# own frames are on every stack, so they only show in the self list).
INTERESTING = re.compile(r"fluidcloud_async/|tenacity/|aiohttp/|pydantic|yarl/|multidict/|json/")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?):(?P<line>\d+)\)$")
# A sample whose innermost frame is one of these is a thread waiting, not working.
_IDLE = re.compile(
    r"^(\w*Selector\.select|select|_worker|Condition\.wait|Event\.wait|Thread\.join|"
    r"Thread\._wait_for_tstate_lock|BaseEventLoop\._do_shutdown|Queue\.get|SimpleQueue\.get) "
)


def py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else None


def _frame_name(frame: str) -> tuple[str, str]:
    """(``function [short/path.py]``, full file) of a raw py-spy frame."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    file = match["file"]
    short = re.sub(r"^.*?(site-packages|lib/python3\.\d+)/", "", file)
    short = re.sub(r"^.*?/(fluidcloud_async|benchmarks)/", r"\1/", short)
    return f"{match['func']} [{short}]", file


def _innermost_python(frames: list[str]) -> str:
    """The innermost Python frame's name (with ``--native``, C frames follow it)."""
    for frame in reversed(frames):
        label, file = _frame_name(frame)
        if file.endswith(".py"):
            return label
    return _frame_name(frames[-1])[0]


def _leaf(frames: list[str]) -> str:
    """The innermost named frame (a native leaf may be a bare address in a stripped
    library: ``0x7f... (libcrypto.so.3)``; its named caller stands for it)."""
    for frame in reversed(frames):
        if not frame.startswith("0x"):
            return _frame_name(frame)[0]
    return _frame_name(frames[-1])[0]


def summarize(raw: str, focus: str, wall_s: float, rate: int = RATE) -> dict[str, Any]:
    """Thread busy shares, and the top inclusive/self frames of the working samples.

    ``busy`` of a frame or thread is its samples over (rate × wall): the share of the run
    it was working (waits in select/queues/locks are left out).
    """
    threads: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    thread_leaf: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        thread, frames = frames[0], frames[1:]
        if not frames or any("importlib._bootstrap" in f for f in frames):
            continue  # no Python frame, or an import: not the measured work
        if _IDLE.match(_innermost_python(frames)):
            continue  # waiting (with --native, below it sit the C calls of the wait)
        # The main thread runs benchmarks/_child.py (py-spy may miss its name or stack base).
        if thread.endswith("MainThread") or any("benchmarks/_child.py" in f for f in frames):
            if not any(focus in f for f in frames):
                continue  # start-up: not the measured work
            name = "MainThread (event loop)"
        else:
            name = re.sub(r"^thread \(\d+\): ", "", thread)
            name = re.sub(r"_\d+$", "_N", name)  # pool workers: one line for the pool
            if name.startswith("thread ("):
                name = "unnamed worker threads"
        threads[name] += n
        total += n
        seen: set[str] = set()
        for frame in frames:
            label, file = _frame_name(frame)
            if label not in seen and INTERESTING.search(file):
                inclusive[label] += n
                seen.add(label)
        if frames:
            leaf[_leaf(frames)] += n
            thread_leaf[name][_leaf(frames)] += n
    ticks = max(1.0, rate * wall_s)
    return {
        "samples": total,
        "rate": rate,
        "wall_s": wall_s,
        "threads": [
            {
                "thread": t,
                "busy": n / ticks,
                "top": [{"frame": f, "share": c / n} for f, c in thread_leaf[t].most_common(2)],
            }
            for t, n in threads.most_common()
        ],
        "inclusive": [
            {"frame": f, "share": n / total, "busy": n / ticks}
            for f, n in inclusive.most_common(TOP)
            if total
        ],
        "self": [{"frame": f, "share": n / total} for f, n in leaf.most_common(TOP) if total],
    }


def profile_python(
    target: str,
    args: dict[str, Any],
    focus: str = "run_until_complete",
    *,
    native: bool = False,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``module:function`` once under py-spy; its summary, or ``{"error": ...}``.

    ``native`` adds C frames (OpenSSL, hashlib, the kernel-call wrappers) to the stacks.
    """
    spy = py_spy()
    if spy is None:
        return {"error": "py-spy is not installed"}
    with tempfile.TemporaryDirectory() as tmp:
        raw_path = Path(tmp) / "profile.txt"
        argv = [
            spy,
            "record",
            "--rate",
            str(RATE),
            "--threads",
            *(["--native"] if native else []),
            "--format",
            "raw",
            "--output",
            str(raw_path),
            "--",
            sys.executable,
            "-m",
            "benchmarks._child",
            target,
            json.dumps(args),
        ]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"error": f"py-spy failed: {exc!r}"}
        results = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
        if proc.returncode != 0 or not results or not raw_path.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            return {"error": f"py-spy exited {proc.returncode}: {tail[0]}"}
        measured = json.loads(results[-1][len(RESULT_PREFIX) :])
        summary = summarize(raw_path.read_text(), focus, float(measured["wall_s"]))
    return {"client": target, "focus": focus, "native": native, **summary}
