"""Group: multipart throughput over TLS 1.3 (what real presigned https URLs cost).

Storage is nginx with TLS 1.3 on loopback (``_nginx``: reads every body whole, discards it,
answers 200 with a quoted ETag); the two API calls of an upload stay on the plain-HTTP
python sink (``_sink``), whose part URLs point at nginx. A throwaway CA signs nginx's
certificate; Python clients get it through ``SSL_CERT_FILE`` in their own environment,
curl through ``--cacert``. In every repetition, in rotated order, each client in its own
process: a raw TLS ceiling, curl ``--parallel``, curl running beside ``openssl dgst
-sha256`` of the file, eight ``http.client`` threads, sequential httpx, and
``fluidcloud_async`` with the checksum on (the default) and off. The SDK rows also record
how late a 5 ms timer on the caller's event loop fires during the upload, and the CPU of
each of their threads (event loop, workers).

Downloads (rows ``download: ...``): nginx serves the same file from a static location; in
every repetition, in rotated order: one curl GET, curl ``--parallel`` of 16 MiB ranges 4
at a time, and ``files.download`` (16 MiB ranges, ``max_concurrency=4``) through aiohttp
and through worker threads, verify off and on (the default: the SHA-256 of the finished
prefix is computed while later ranges arrive). Every client writes into one scratch directory
(``/dev/shm`` when there is one: the disk's writeback is not what is measured).
``FLUIDCLOUD_BENCH_TLS_ROWS=upload|download`` runs one half only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import http.client
import math
import os
import queue
import re
import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import _baselines, bench_memory
from ._ceiling import _read_response
from ._common import (
    SUMMARY_KEYS,
    Settings,
    missed_clients,
    new_space_id,
    per_run_figures,
    random_file,
    summarize_clients,
)
from ._common import target as make_target
from ._measure import (
    ClientFailed,
    GiB,
    Meter,
    MiB,
    failure,
    median,
    rotate,
    run_command,
    run_python,
)
from ._nginx import NginxSink, make_ca, nginx_path
from ._procs import ServerProcess
from ._profile import profile_python

NAME = "tls"
TITLE = "Multipart throughput over TLS 1.3, loopback, nginx discarding sink"
API_KEY = "fck_test_benchmark"
CONCURRENCY = 8
LAG_PERIOD = 0.005
RAW = f"raw TLS ({CONCURRENCY} threads, ssl sendall from memory)"
CURL = "curl --parallel"
CURL_SHA = "curl --parallel ‖ openssl dgst -sha256"
THREADS = f"{CONCURRENCY} threads × http.client HTTPS, os.preadv"
HTTPX = "httpx sequential"
SDK_ON = f"fluidcloud_async c={CONCURRENCY} checksum on (default)"
SDK_OFF = f"fluidcloud_async c={CONCURRENCY} checksum off"
# The same calls with the storage PUTs forced back onto aiohttp's TLS (the path before the
# threaded transport): FLUIDCLOUD_STORAGE_TRANSPORT=aiohttp in the client's process.
SDK_ON_AIO = f"fluidcloud_async c={CONCURRENCY} checksum on, aiohttp TLS"
SDK_OFF_AIO = f"fluidcloud_async c={CONCURRENCY} checksum off, aiohttp TLS"
SDK_ROWS = (SDK_ON, SDK_OFF, SDK_ON_AIO, SDK_OFF_AIO)
DL_CONCURRENCY = 4  # files.download's default max_concurrency
DL_RANGE = 16 * 1024 * 1024  # _download.RANGE_PART
DL_CURL = "download: curl, one GET"
DL_CURL_PAR = f"download: curl --parallel, 16 MiB ranges × {DL_CONCURRENCY}"
DL_AIO = f"download: fluidcloud_async c={DL_CONCURRENCY} verify off, aiohttp TLS"
DL_THREADS = f"download: fluidcloud_async c={DL_CONCURRENCY} verify off, threads"
DL_THREADS_VERIFY = f"download: fluidcloud_async c={DL_CONCURRENCY} verify on (default)"
DL_AIO_VERIFY = f"download: fluidcloud_async c={DL_CONCURRENCY} verify on, aiohttp TLS"
DL_SDK_ROWS = (DL_AIO, DL_THREADS, DL_THREADS_VERIFY, DL_AIO_VERIFY)
ROWS_ENV = "FLUIDCLOUD_BENCH_TLS_ROWS"
KEYS = (
    *SUMMARY_KEYS,
    "cpu_vs_curl",
    "cpu_vs_curl_sha",
    "lag_p99_ms",
    "lag_max_ms",
    "connections",
)


# -- clients (each runs in its own process) -------------------------------------------------
def _targets_of(args: dict[str, Any]) -> tuple[str, int, list[tuple[str, int, int]]]:
    parts = [(str(u), int(o), int(n)) for u, o, n in args["parts"]]
    first = urlsplit(parts[0][0])
    targets = [(urlsplit(u).path + "?" + urlsplit(u).query, o, n) for u, o, n in parts]
    return first.hostname or "127.0.0.1", first.port or 443, targets


def _run_threads(worker: Any, count: int, meter: Meter) -> None:
    errors: list[BaseException] = []
    threads = [threading.Thread(target=worker, args=(errors,)) for _ in range(count)]
    meter.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    meter.stop()
    if errors:
        raise errors[0]


def raw_tls(args: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """The ceiling: ``concurrency`` threads, each one TLS socket (``SSL_write`` releases the
    GIL), sending a minimal PUT head and the part's length of bytes from one in-memory
    buffer: no file reads, no HTTP library."""
    host, port, targets = _targets_of(args)
    jobs: queue.SimpleQueue[tuple[str, int, int]] = queue.SimpleQueue()
    for job in targets:
        jobs.put(job)
    payload = memoryview(os.urandom(max(n for _, _, n in targets)))
    context = ssl.create_default_context()

    def worker(errors: list[BaseException]) -> None:
        try:
            raw = socket.create_connection((host, port))
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with context.wrap_socket(raw, server_hostname=host) as sock:
                while True:  # bounded by the queue
                    try:
                        target, _offset, length = jobs.get_nowait()
                    except queue.Empty:
                        return
                    head = f"PUT {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    sock.sendall(f"{head}Content-Length: {length}\r\n\r\n".encode())
                    sock.sendall(payload[:length])
                    status = _read_response(sock).split(b" ", 2)[1]
                    if status != b"200":
                        raise ConnectionError(f"PUT {target} answered {status!r}")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    _run_threads(worker, min(int(args["concurrency"]), len(targets)), meter)
    return {"bytes": sum(n for _, _, n in targets)}


def threads_stdlib(args: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """Thread per connection: ``concurrency`` threads, one blocking ``http.client``
    ``HTTPSConnection`` each, taking parts from a queue; each part read with ``os.preadv``
    into the thread's own buffer and sent from it."""
    host, port, targets = _targets_of(args)
    jobs: queue.SimpleQueue[tuple[str, int, int]] = queue.SimpleQueue()
    for job in targets:
        jobs.put(job)
    biggest = max(n for _, _, n in targets)
    context = ssl.create_default_context()
    fd = os.open(args["path"], os.O_RDONLY)

    def worker(errors: list[BaseException]) -> None:
        view = memoryview(bytearray(biggest))
        conn = http.client.HTTPSConnection(host, port, context=context, timeout=300)
        try:
            while True:  # bounded by the queue
                try:
                    target, offset, length = jobs.get_nowait()
                except queue.Empty:
                    return
                got = 0
                while got < length:  # bounded: each read advances or raises
                    n = os.preadv(fd, [view[got:length]], offset + got)
                    if n == 0:
                        raise RuntimeError("the file is shorter than expected")
                    got += n
                conn.request("PUT", target, body=view[:length])
                response = conn.getresponse()
                response.read()
                if response.status != 200 or not response.getheader("ETag"):
                    raise ConnectionError(f"PUT {target} answered {response.status}")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            conn.close()

    try:
        _run_threads(worker, min(int(args["concurrency"]), len(targets)), meter)
    finally:
        os.close(fd)
    return {"bytes": sum(n for _, _, n in targets)}


def _thread_label(name: str) -> str:
    if name == "MainThread":
        return "event loop (MainThread)"
    return re.sub(r"\d+$", "N", name)  # a pool's threads: one label


def thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU-seconds of each live thread of this process: ``{tid: (label, seconds)}``."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[str, float]] = {}
    for entry in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        tid = int(entry)
        label = _thread_label(names[tid]) if tid in names else "threads unknown to Python"
        out[tid] = (label, (int(fields[11]) + int(fields[12])) / tick)
    return out


def _cpu_by_label(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    out: dict[str, float] = {}
    for tid, (label, seconds) in after.items():
        spent = seconds - before.get(tid, (label, 0.0))[1]
        out[label] = out.get(label, 0.0) + spent
    return out


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


async def _lag_probe(lags: list[float]) -> None:
    """A 5 ms periodic timer on the running loop; each lateness goes to ``lags``."""
    loop = asyncio.get_running_loop()
    while True:  # until cancelled
        due = loop.time() + LAG_PERIOD
        await asyncio.sleep(LAG_PERIOD)
        lags.append(max(0.0, loop.time() - due))


async def sdk_tls(args: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """``fc.files.upload(path, space_id, max_concurrency=, checksum=)``, unmodified, while a
    5 ms timer on the same (the caller's) loop records how late it fires."""
    if args.get("transport"):  # read per request by the engine: set before the upload
        os.environ["FLUIDCLOUD_STORAGE_TRANSPORT"] = args["transport"]
    from fluidcloud_async import AsyncFluidCloud

    lags: list[float] = []
    async with AsyncFluidCloud(api_key=args["api_key"], base_url=args["base_url"]) as fc:
        probe = asyncio.ensure_future(_lag_probe(lags))
        await asyncio.sleep(0)  # the probe's first timer is armed
        before = thread_cpu()
        meter.start()
        uploaded = await fc.files.upload(
            args["path"],
            args["space_id"],
            max_concurrency=args["concurrency"],
            checksum=args["checksum"],
        )
        meter.stop()
        after = thread_cpu()
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe
    if uploaded.size != args["size"]:
        raise RuntimeError(f"uploaded size {uploaded.size} != {args['size']}")
    return _lag_and_cpu(args["size"], lags, before, after)


async def sdk_download(args: dict[str, Any], meter: Meter) -> dict[str, Any]:
    """``fc.files.download(file_id, dest)``, unmodified, of a record whose presigned URL is
    nginx's static file (the record and the URL are stubbed: no API round trip is timed),
    with the loop-lag probe and CPU by thread of :func:`sdk_tls`."""
    if args.get("transport"):
        os.environ["FLUIDCLOUD_STORAGE_TRANSPORT"] = args["transport"]
    from fluidcloud_async import AsyncFluidCloud, File

    record = File(id="bench", original_name="payload.bin", size=args["size"], sha256=args["sha256"])

    async def get(file_id: str) -> File:
        return record

    async def download_url(file_id: str) -> str:
        return str(args["url"])

    lags: list[float] = []
    async with AsyncFluidCloud(api_key=args["api_key"], base_url=args["base_url"]) as fc:
        fc.files.get = get  # type: ignore[method-assign]
        fc.files.download_url = download_url  # type: ignore[method-assign]
        probe = asyncio.ensure_future(_lag_probe(lags))
        await asyncio.sleep(0)
        before = thread_cpu()
        meter.start()
        await fc.files.download(
            "bench", args["dest"], max_concurrency=args["concurrency"], verify=args["verify"]
        )
        meter.stop()
        after = thread_cpu()
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe
    return _lag_and_cpu(args["size"], lags, before, after)


def _download_clients(
    url: str, size: int, digest: str, scratch: Path, ca: Path, base_url: str, notes: list[str]
) -> list[tuple[str, str, Any]]:
    clients: list[tuple[str, str, Any]] = []
    curl = _baselines.curl_path()
    if curl:
        common = [curl, "--silent", "--show-error", "--fail", "--cacert", str(ca)]
        clients.append((DL_CURL, "command", [*common, "-o", str(scratch / "curl.bin"), url]))
        lines = []
        for i, start in enumerate(range(0, size, DL_RANGE)):
            end = min(size, start + DL_RANGE) - 1
            lines += [f'url = "{url}"', f'range = "{start}-{end}"']
            lines.append(f'output = "{scratch / f"range-{i:05d}"}"')
        config = scratch.parent / "download-curl.cfg"
        config.write_text("\n".join(lines) + "\n")
        parallel = ["--parallel", "--parallel-max", str(DL_CONCURRENCY), "--config", str(config)]
        clients.append((DL_CURL_PAR, "command", [*common, *parallel]))
    else:
        notes.append("curl is not installed: no curl download rows.")
    for name, transport, verify in (
        (DL_AIO, "aiohttp", False),
        (DL_THREADS, "threads", False),
        (DL_THREADS_VERIFY, None, True),
        (DL_AIO_VERIFY, "aiohttp", True),
    ):
        args = {
            "transport": transport,
            "api_key": API_KEY,
            "base_url": base_url,
            "url": f"{url}?X-Amz-Signature=bench",
            "size": size,
            "sha256": digest if verify else None,
            "verify": verify,
            "dest": str(scratch / "sdk.bin"),
            "concurrency": DL_CONCURRENCY,
        }
        clients.append((name, "python", (f"{__name__}:sdk_download", args)))
    return clients


def _one_download(
    storage: NginxSink,
    kind: str,
    spec: Any,
    size: int,
    scratch: Path,
    env: dict[str, str],
) -> dict[str, Any]:
    """One measured download, checked against the GET bytes nginx logged; the scratch
    directory is emptied afterwards."""
    before = storage.stats()
    try:
        if kind == "command":
            run = run_command(spec, env=env)
            run.pop("stdout")
        else:
            target, args = spec
            run = run_python(target, args, env=env)
    except ClientFailed as exc:
        return failure(exc)
    finally:
        written = sum(p.stat().st_size for p in scratch.iterdir())
        for leftover in scratch.iterdir():
            leftover.unlink()
    after = storage.stats(expect_sent=before["sent_bytes"] + size)
    sent = after["sent_bytes"] - before["sent_bytes"]
    if sent != size or written != size:
        return {"error": f"nginx sent {sent} bytes, {written} written; expected {size}"}
    return _with_server_figures(run, size, before, after)


@contextlib.contextmanager
def _scratch(data_dir: Path) -> Iterator[Path]:
    """The download rows' destination directory, removed however the group ends."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else data_dir
    scratch = base / f"fluidcloud-bench-tls-{os.getpid()}"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _sha256(path: Path) -> str:
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# -- the group ----------------------------------------------------------------------------
def _plan(settings: Settings) -> dict[str, Any]:
    if settings.quick:
        return {"size": 32 * MiB, "part_size": 4 * MiB, "reps": 1}
    return {"size": 1 * GiB, "part_size": 16 * MiB, "reps": settings.reps}


def skipped(reason: str) -> dict[str, Any]:
    return {"name": NAME, "title": TITLE, "skipped": reason}


def _negotiated(origin: str, ca: Path) -> str:
    """``TLSv1.3 TLS_AES_256_GCM_SHA384``: what a default Python client negotiates."""
    host, port = urlsplit(origin).hostname or "127.0.0.1", urlsplit(origin).port or 443
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as sock,
    ):
        cipher = sock.cipher()
        return f"{sock.version()} {cipher[0] if cipher else '?'}"


def _clients(
    parts: list[tuple[str, int, int]],
    path: Path,
    data_dir: Path,
    ca: Path,
    base_url: str,
    size: int,
    notes: list[str],
) -> list[tuple[str, str, Any]]:
    c = {"concurrency": CONCURRENCY}
    clients: list[tuple[str, str, Any]] = [(RAW, "python", (f"{__name__}:raw_tls", c))]
    if _baselines.curl_path():
        part_files = _baselines.split_parts(path, parts, data_dir / "parts")
        argv = _baselines.curl_argv(parts, part_files, CONCURRENCY, data_dir / "curl.cfg")
        argv[1:1] = ["--cacert", str(ca)]
        clients.append((CURL, "command", argv))
        both = _baselines.curl_and_hash_argv(path, argv)
        if both is not None:
            clients.append((CURL_SHA, "command", both))
        else:
            notes.append("openssl is not installed: no curl ‖ sha256 row.")
    else:
        notes.append("curl is not installed: no curl rows, no ratios to curl.")
    clients.append((THREADS, "python", (f"{__name__}:threads_stdlib", c)))
    if _has("httpx"):
        clients.append((HTTPX, "python", ("benchmarks._baselines:httpx_sequential", {})))
    else:
        notes.append("httpx is not installed: no sequential httpx baseline.")
    for name, checksum, transport in (
        (SDK_ON, True, None),
        (SDK_OFF, False, None),
        (SDK_ON_AIO, True, "aiohttp"),
        (SDK_OFF_AIO, False, "aiohttp"),
    ):
        sdk_args = {
            "transport": transport,
            "api_key": API_KEY,
            "base_url": base_url,
            "space_id": new_space_id(),
            "concurrency": CONCURRENCY,
            "checksum": checksum,
            "size": size,
        }
        clients.append((name, "python", (f"{__name__}:sdk_tls", sdk_args)))
    return clients


def run(settings: Settings) -> dict[str, Any]:
    if nginx_path() is None:
        reason = "nginx is not installed (`nox -s bench` installs it): no TLS figures"
        settings.say(f"[{NAME}] skipped: {reason}")
        return skipped(reason)
    load_before = os.getloadavg()
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    plan = _plan(settings)
    size, part_size = plan["size"], plan["part_size"]
    data_dir = settings.work / NAME
    path = random_file(data_dir / "payload.bin", size)
    certs = make_ca(data_dir / "ca")
    env = {k: v for k, v in os.environ.items() if k != "SSL_CERT_DIR"}
    env["SSL_CERT_FILE"] = str(certs["ca"])
    notes: list[str] = [
        "Storage PUTs go over TLS 1.3 to nginx (one worker process, its CPU share is *nginx "
        "busy*), which reads every body whole before it answers and discards it; the API "
        "calls of the SDK rows go to the plain-HTTP python sink. Python clients trust the "
        "throwaway CA through `SSL_CERT_FILE`, curl through `--cacert`.",
        "*loop lag p99*: how late a 5 ms periodic timer on the caller's event loop fired "
        "during the upload (99th percentile). *CPU × curl* is the client's CPU per GiB over "
        "curl's in the same repetition.",
    ]
    halves = os.environ.get(ROWS_ENV, "").strip().lower()
    uploads, downloads = halves != "download", halves != "upload"
    digest = _sha256(path) if downloads else ""
    reps: list[dict[str, dict[str, Any]]] = []
    profiles: dict[str, Any] = {}
    config = {"part_size": part_size, "multipart_threshold": part_size}
    with (
        _scratch(data_dir) as scratch,
        NginxSink(data_dir / "nginx", certs, part_size, static=data_dir) as storage,
        ServerProcess(
            "benchmarks._sink:start", {**config, "storage_origin": storage.origin}
        ) as api,
    ):
        negotiated = _negotiated(storage.origin, certs["ca"])
        api_url = api.info["origin"] + "/api/v1"
        body = {"original_name": "payload.bin", "size": size, "space_id": new_space_id()}
        ticket = _baselines.api_post(api_url, API_KEY, "/uploads/initiate", body)
        parts = _baselines.part_layout(ticket, size)
        clients = _clients(parts, path, data_dir, certs["ca"], api.info["origin"], size, notes)
        url = f"{storage.origin}/static/{path.name}"
        dl_clients = _download_clients(
            url, size, digest, scratch, certs["ca"], api.info["origin"], notes
        )
        common = {"path": str(path), "parts": parts}
        for rep in range(plan["reps"]):
            settings.say(f"[{NAME}] repetition {rep + 1}/{plan['reps']} ({negotiated})")
            results: dict[str, dict[str, Any]] = {}
            for name, kind, spec in rotate(clients, rep) if uploads else []:
                results[name] = _one(storage, kind, spec, common, size, len(parts), env)
                settings.say(f"  {name:45s} {_line(results[name])}")
            for name, kind, spec in rotate(dl_clients, rep) if downloads else []:
                results[name] = _one_download(storage, kind, spec, size, scratch, env)
                settings.say(f"  {name:45s} {_line(results[name])}")
            _add_ratios(results)
            reps.append(results)
        summary = summarize_clients(reps, KEYS)
        targets = _targets(summary, reps)
        for name in missed_clients(targets) if settings.profile else []:
            settings.say(f"  profiling {name} (py-spy --native)")
            target, args = next(spec for n, _, spec in (*clients, *dl_clients) if n == name)
            profiles[name] = profile_python(target, {**common, **args}, native=True, env=env)
    if not settings.quick:
        shutil.rmtree(data_dir / "parts", ignore_errors=True)
    return {
        "name": NAME,
        "title": TITLE,
        "params": {
            "size_bytes": size,
            "part_size": part_size,
            "parts": len(parts),
            "reps": plan["reps"],
            "concurrency": CONCURRENCY,
            "download_concurrency": DL_CONCURRENCY,
            "download_range": DL_RANGE,
            "rows": halves or "upload and download",
            "tls": negotiated,
            "lag_period_ms": LAG_PERIOD * 1000,
            "date": started,
            # 1-, 5-, 15-minute load averages: the machine is shared, figures are noisy.
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "reps": reps,
        "summary": summary,
        "cpu_by_thread": _cpu_by_thread(reps, size),
        "targets": targets,
        "profiles": profiles,
        "notes": notes,
    }


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _one(
    storage: NginxSink,
    kind: str,
    spec: Any,
    common: dict[str, Any],
    size: int,
    nparts: int,
    env: dict[str, str],
) -> dict[str, Any]:
    """One measured client run, checked against the PUTs and bytes nginx logged."""
    before = storage.stats()
    try:
        if kind == "command":
            run = run_command(spec, env=env)
            if not _baselines.curl_ok(run.pop("stdout"), nparts):
                raise ClientFailed("curl: not every part answered 200")
            if spec[0] == "sh":
                run["peak_rss"] = None  # the shell's, not curl's or openssl's
        else:
            target, args = spec
            run = run_python(target, {**common, **args}, env=env)
    except ClientFailed as exc:
        return failure(exc)
    after = storage.stats(expect_puts=before["puts"] + nparts)
    puts = after["puts"] - before["puts"]
    received = after["body_bytes"] - before["body_bytes"]
    if puts != nparts or received != size:
        return {"error": f"nginx stored {puts} PUTs, {received} bytes; expected {nparts}, {size}"}
    return _with_server_figures(run, size, before, after)


def _line(run: dict[str, Any]) -> str:
    if run.get("error"):
        return "ERROR " + run["error"][:200]
    lag = run.get("lag_p99_ms")
    peak = run.get("peak_rss_mib")
    return (
        f"{run['mib_s']:8.0f} MiB/s  cpu {run['cpu_s_per_gib']:5.2f} s/GiB  "
        + (f"peak {peak:5.0f} MiB  " if peak is not None else "")
        + f"nginx {run['sink_cpu_share']:.0%}  conns {run['connections']}"
        + (f"  lag p99 {lag:.1f} ms" if lag is not None else "")
    )


def _add_ratios(results: dict[str, dict[str, Any]]) -> None:
    def good(name: str) -> dict[str, Any]:
        run = results.get(name, {})
        return {} if run.get("error") else run

    raw, curl, both = good(RAW), good(CURL), good(CURL_SHA)
    for name, run in results.items():
        if run.get("error"):
            continue
        if name.startswith("download:"):  # against curl fetching the same ranges
            ref = good(DL_CURL_PAR)
            run["ratio_curl"] = run["mib_s"] / ref["mib_s"] if ref.get("mib_s") else None
            cpu = ref.get("cpu_s_per_gib")
            run["cpu_vs_curl"] = run["cpu_s_per_gib"] / cpu if cpu else None
            continue
        for key, ref, field in (
            ("ratio_raw", raw, "mib_s"),
            ("ratio_curl", curl, "mib_s"),
            ("ratio_curl_sha", both, "mib_s"),
            ("cpu_vs_curl", curl, "cpu_s_per_gib"),
            ("cpu_vs_curl_sha", both, "cpu_s_per_gib"),
        ):
            run[key] = run[field] / ref[field] if ref.get(field) else None


def _cpu_by_thread(reps: list[dict[str, dict[str, Any]]], size: int) -> dict[str, Any]:
    """Per SDK row: median CPU-seconds per GiB of each kind of thread."""
    out: dict[str, dict[str, float | None]] = {}
    for name in (*SDK_ROWS, *DL_SDK_ROWS):
        runs = [r[name] for r in reps if name in r and not r[name].get("error")]
        labels = sorted({label for r in runs for label in r.get("thread_cpu_s", {})})
        per_gib = {
            label: median(
                r["thread_cpu_s"][label] / (size / GiB)
                for r in runs
                if label in r.get("thread_cpu_s", {})
            )
            for label in labels
        }
        if runs:
            out[name] = per_gib
    return out


def _targets(
    summary: dict[str, dict[str, Any]], reps: list[dict[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    off, on = summary.get(SDK_OFF, {}), summary.get(SDK_ON, {})
    chunk = bench_memory.engine_chunk()
    bound_mib = (bench_memory.BASE_ALLOWANCE + CONCURRENCY * chunk) / MiB

    def at_least(value: float | None, bound: float) -> bool | None:
        return None if value is None else value >= bound

    def at_most(value: float | None, bound: float) -> bool | None:
        return None if value is None else value <= bound

    def worst_growth(name: str) -> float | None:
        values = [r[name].get("rss_growth_mib") for r in reps if name in r]
        present = [v for v in values if v is not None]
        return max(present) if present else None

    out = [
        make_target(
            "TLS, checksum off: throughput / curl --parallel",
            ">= 1.0",
            off.get("ratio_curl"),
            at_least(off.get("ratio_curl"), 1.0),
            SDK_OFF,
        ),
        make_target(
            "TLS, default (checksum on): throughput / curl ‖ openssl sha256",
            ">= 1.0",
            on.get("ratio_curl_sha"),
            at_least(on.get("ratio_curl_sha"), 1.0),
            SDK_ON,
        ),
        make_target(
            "TLS, checksum off: client CPU per GiB / curl's",
            "<= 1.2",
            off.get("cpu_vs_curl"),
            at_most(off.get("cpu_vs_curl"), 1.2),
            SDK_OFF,
        ),
    ]
    for name, s in ((SDK_ON, on), (SDK_OFF, off)):
        label = "default" if name == SDK_ON else "checksum off"
        out.append(
            make_target(
                f"TLS, {label}: caller's event-loop lag p99, ms",
                "<= 5",
                s.get("lag_p99_ms"),
                at_most(s.get("lag_p99_ms"), 5.0),
                name,
            )
        )
    threads = summary.get(DL_THREADS, {})
    out += [
        make_target(
            "TLS download, threads: throughput / curl --parallel ranges",
            ">= 1.0",
            threads.get("ratio_curl"),
            at_least(threads.get("ratio_curl"), 1.0),
            DL_THREADS,
        ),
        make_target(
            "TLS download, threads: caller's event-loop lag p99, ms",
            "<= 5",
            threads.get("lag_p99_ms"),
            at_most(threads.get("lag_p99_ms"), 5.0),
            DL_THREADS,
        ),
    ]
    for name in (SDK_ON, SDK_OFF):
        label = "default" if name == SDK_ON else "checksum off"
        worst = worst_growth(name)
        out.append(
            make_target(
                f"TLS, {label}: peak RSS growth (worst), MiB",
                f"<= {bound_mib:.0f} (64 + {CONCURRENCY} x {chunk / MiB:g} MiB chunk)",
                worst,
                at_most(worst, bound_mib),
                name,
            )
        )
    return out


def _with_server_figures(
    run: Any, size: int, before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    """The client's figures of one run plus nginx's side: connections opened, CPU share."""
    figures = per_run_figures(run, size)
    figures["connections"] = after["connections"] - before["connections"]
    sink_cpu = after["server_cpu_s"] - before["server_cpu_s"]
    figures["sink_cpu_share"] = sink_cpu / figures["wall_s"] if figures["wall_s"] else None
    return figures


def _lag_and_cpu(
    size: int,
    lags: list[float],
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
) -> dict[str, Any]:
    """An SDK row's own figures: the loop-lag percentiles and the CPU of each thread."""
    p99, worst = percentile(lags, 99), max(lags, default=None)
    return {
        "bytes": size,
        "lag_samples": len(lags),
        "lag_p99_ms": None if p99 is None else p99 * 1000,
        "lag_max_ms": None if worst is None else worst * 1000,
        "thread_cpu_s": _cpu_by_label(before, after),
    }
