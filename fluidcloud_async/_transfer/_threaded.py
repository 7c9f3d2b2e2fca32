"""Storage PUTs and GETs from worker threads over blocking sockets (the https default).

Over TLS the aiohttp path encrypts and decrypts every byte on the caller's event loop
(asyncio's memory-BIO SSL protocol copies each record through two BIOs on the loop
thread): one core does all of the TLS and the caller's loop lags by tens of milliseconds.
Here each part PUT or ranged GET runs in an anyio worker thread on a blocking
``http.client`` connection from a small keep-alive pool: a PUT reads its part with
``os.preadv`` into one pooled buffer and writes it with ``sock.sendall``; a GET reads the
body into one pooled buffer and writes it with ``os.pwritev`` at its offset from the same
thread (path destinations; a file object gets each chunk on the loop). ``SSL_write`` and
``SSL_read`` release the GIL, so TLS spreads over cores and the loop only forwards
progress every 0.1 s. Measured in the package notes (``_transfer/__init__``) and
``benchmarks/bench_tls.py``.

What the aiohttp path guarantees holds here too: the retry loops are the same
(:func:`._storage.put_with_retries`, ``_download._get_range``: this only replaces the
"send once" step), progress is counted per attempt (and rolled back by a PUT's body),
errors are the same typed errors with redacted URLs, a short read of a PUT's source is a
source error (not retried), the Content-Type is exactly the one given or absent, no
``Expect`` header is sent, a GET asks for ``identity`` and leaves every check of its body
to the sink (before a byte of a chunk is written), and a cancellation (an anyio scope or a
native ``task.cancel()``) or ``close()`` shuts the socket down under the thread, which
stops between chunks and closes its own connection before the call returns. A body that
makes no progress for the stall timeout (PUT) or the read timeout (GET) is aborted the
same way (``ApiTimeoutError``). New TCP connections are opened on the loop (DNS and
connect are cancellable there); the CONNECT tunnel and the TLS handshake run in the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import select
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .._exceptions import (
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    ClientClosed,
    ConnectFailed,
    FluidCloudError,
)
from .._redact import redact_url
from ._io import BufferPool, FileBody, MemoryBody, pread_into, settle
from ._storage import (
    MAX_ERROR_BODY,
    Chunks,
    GetSink,
    StoragePolicy,
    scrub,
    storage_error,
)

if TYPE_CHECKING:
    from .._proxy import ProxyRoute, ProxySettings
    from ._sources import Reader

#: Environment knob (private, for benchmarks and tests): ``auto`` (https -> threads, http ->
#: aiohttp with sendfile), ``threads`` (both schemes) or ``aiohttp`` (both schemes).
TRANSPORT_ENV = "FLUIDCLOUD_STORAGE_TRANSPORT"
#: Seconds between two progress forwards from a part's thread to the loop.
PROGRESS_INTERVAL = 0.1
#: How long a failed body send waits for the answer the server may have sent before it
#: closed (an early 403 or 400 explains the failure better than "broken pipe").
EARLY_ANSWER_WAIT = 1.0
#: Bytes per read and ``sendall`` in a part's thread (one buffer per part in flight).
#: 4 MiB (a quarter of the GIL re-acquisitions) measured no better in bench_tls on 2 cores
#: (checksum off 0.76-0.93 x curl vs 0.85-0.99, loop lag unchanged) for 4x the memory.
THREAD_CHUNK = 1 << 20
#: Idle keep-alive connections kept per (host, port, proxy).
KEEP_IDLE = 16

RESOURCE_KEY = "threaded-storage"
"""The client resource (see ``SessionHolder.resource``) holding the connection pool."""


def transport_mode() -> str:
    """The ``FLUIDCLOUD_STORAGE_TRANSPORT`` choice (``auto`` when unset or unknown)."""
    mode = os.environ.get(TRANSPORT_ENV, "auto").strip().lower()
    return mode if mode in ("threads", "aiohttp") else "auto"


class _SourceFailed(Exception):
    """Internal: the source failed under the thread (recorded as the body's error)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Stopped(Exception):
    """Internal: the job was aborted (cancellation or client close) between chunks."""


_Key = tuple[str, str, int, "ProxyRoute | None"]


@dataclass(eq=False)
class _Job:
    """One PUT or GET attempt, shared between the loop (progress, abort) and its thread."""

    method: str
    url: str
    key: _Key
    target: str
    policy: StoragePolicy
    length: int = 0
    content_type: str | None = None
    sink: GetSink | None = None
    """A GET's destination and checks."""
    view: memoryview | None = None
    reader: Reader | None = None
    offset: int = 0
    buffer: bytearray | None = None
    done: int = 0
    """Body bytes written to the socket or received (only the thread writes it)."""
    reported: int = 0
    """Of ``done``, the bytes a GET's watcher has counted as progress."""
    sending: bool = False
    """True while the body moves (the watcher's stall clock runs then)."""
    stalled: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    conn: http.client.HTTPConnection | None = None
    sock: socket.socket | None = None
    """A TCP connection opened on the loop, for the thread to turn into ``conn``."""
    handle: socket.socket | None = None
    """A duplicate of ``sock``'s descriptor: ``ssl.wrap_socket`` detaches ``sock`` during
    the handshake, and an abort must still reach the connection then."""

    @property
    def stall_limit(self) -> float:
        """Seconds without a body byte moving before the watcher aborts the attempt."""
        policy = self.policy
        return policy.stall_timeout if self.method == "PUT" else policy.read_timeout

    def abort(self, *, stalled: bool = False) -> None:
        """From the loop: stop the thread now (it is between chunks or blocked in one)."""
        self.stalled = self.stalled or stalled
        self.stop.set()
        conn = self.conn
        sock = conn.sock if conn is not None else None
        if sock is None or sock.fileno() < 0:
            sock = self.handle
        if sock is not None:
            # The plain socket's shutdown, not SSLSocket's (which drops its SSL object
            # under the thread): the blocked SSL_write/read then fails at once. The thread
            # closes the connection itself, so no descriptor is closed under it.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class ThreadedStorage:
    """Presigned PUTs and GETs in worker threads over a thread-safe keep-alive pool.

    One per client (a client resource, closed with it). Concurrency is bounded by the
    callers' slot pools; the capacity limiter only keeps anyio's thread count finite.
    """

    def __init__(
        self, ssl_context: ssl.SSLContext | None, proxies: ProxySettings, limit: int
    ) -> None:
        # The client's context when given, else what aiohttp's default is: the system
        # trust store (which honours SSL_CERT_FILE / SSL_CERT_DIR), hostname checked.
        self._ssl = ssl_context if ssl_context is not None else ssl.create_default_context()
        self._proxies = proxies
        self._limiter = anyio.CapacityLimiter(max(1, limit or 100))
        self._lock = threading.Lock()
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._active: set[_Job] = set()
        self._closed = False
        self._buffers = BufferPool(THREAD_CHUNK, keep=16)

    def supports(self, url: str) -> bool:
        """Whether this transport can send to ``url`` (http(s); through no proxy or an
        ``http://`` one: a TLS connection *to* the proxy stays with aiohttp)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        route = self._proxies.route(URL(url, encoded=True))
        return route is None or route.url.scheme == "http"

    async def put(
        self,
        url: str,
        body: Any,
        *,
        length: int,
        content_type: str | None,
        policy: StoragePolicy,
    ) -> str | None:
        """One PUT of ``body`` (a :class:`FileBody` or :class:`MemoryBody`) from a worker
        thread; the answer's ETag, verbatim. Errors as :func:`._storage.put_once`."""
        self._check_open("PUT", url)
        job = self._put_job(url, body, length, content_type, policy)
        pool = self._buffers
        if job.reader is not None:
            job.reader.enter()
            if job.reader.view is None:
                job.buffer = pool.take()
        try:
            result, failure = await self._drive(job, lambda: _forward(job, body))
        finally:  # _drive returns or raises only once the thread has returned
            if job.reader is not None:
                job.reader.leave()
            if job.buffer is not None:
                pool.give(job.buffer)
        if isinstance(failure, _SourceFailed):
            body.error = failure.cause
            raise ApiConnectionError(
                f"storage PUT stopped: the source failed: {failure.cause}",
                method="PUT",
                url=redact_url(url),
            ) from None
        if failure is not None:
            raise failure
        etag: str | None = result
        return etag

    async def get(self, url: str, sink: GetSink, *, policy: StoragePolicy) -> None:
        """One GET into ``sink`` from a worker thread (see :class:`._storage.GetSink`):
        read into one pooled buffer, written by ``sink.pwrite`` from the same thread when
        it has one, else handed to ``sink.deliver`` on the loop. Errors as for a PUT."""
        self._check_open("GET", url)
        key, target = self._route(url)
        job = _Job("GET", url, key, target, policy, sink=sink)
        job.buffer = self._buffers.take()

        async def forward() -> None:
            # Bytes the thread wrote itself are counted here, every PROGRESS_INTERVAL.
            if sink.pwrite is not None and job.done != job.reported:
                delta, job.reported = job.done - job.reported, job.done
                await sink.count(delta)

        try:
            _result, failure = await self._drive(job, forward)
        finally:
            self._buffers.give(job.buffer)
        if failure is not None:
            raise failure

    def _check_open(self, method: str, url: str) -> None:
        if self._closed:
            raise ClientClosed(
                "the client was closed while the transfer was running",
                method=method,
                url=redact_url(url),
            )

    async def _drive(
        self, job: _Job, forward: Callable[[], Awaitable[None]]
    ) -> tuple[Any, BaseException | None]:
        """Run ``job`` in a worker thread: ``(result, None)`` or ``(None, its failure)``.

        Returns or raises only once the thread has returned."""
        self._active.add(job)
        try:
            # A pooled connection, else a new TCP connection opened here on the loop: a
            # connect (DNS, SYN to an unreachable host) is cancelled at once, where one
            # inside the thread could hold a cancellation for the whole connect timeout.
            job.conn = self._take_idle(job.key)
            if job.conn is None:
                job.sock = await self._open(job)
                job.handle = job.sock.dup()
        except BaseException:
            self._active.discard(job)
            if job.sock is not None:
                job.sock.close()
            raise
        result: Any = None
        failure: BaseException | None = None
        # The thread runs in its own task, waited for with asyncio.wait: a cancellation of
        # this task (an anyio scope or a native task.cancel(), asyncio.timeout) lands here,
        # aborts the thread and waits for it (one chunk at most) before propagating, so no
        # thread outlives the buffer, the reader or the connection it uses.
        thread = asyncio.ensure_future(
            anyio.to_thread.run_sync(self._run, job, limiter=self._limiter)
        )
        try:
            await self._watch(job, thread, forward)
            result = thread.result()
        except BaseException as exc:
            if not thread.done():
                job.abort()
                await settle(thread)
            own = _failed(thread, exc) is thread  # also marks the thread's error retrieved
            if not own or not isinstance(exc, Exception):
                raise
            failure = exc
        finally:
            self._active.discard(job)
            if job.handle is not None:
                job.handle.close()
            if job.sock is not None:  # never handed to a connection (cancelled first)
                job.sock.close()
        await forward()
        self._check_open(job.method, job.url)
        if isinstance(failure, _Stopped):
            # Aborted because this task is being cancelled: deliver that cancellation.
            await anyio.lowlevel.checkpoint()
            raise ApiConnectionError(
                f"storage {job.method} aborted", method=job.method, url=redact_url(job.url)
            ) from None
        return result, failure

    def _route(self, url: str) -> tuple[_Key, str]:
        """The pool key of ``url`` and the request target to send."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        route = self._proxies.route(URL(url, encoded=True))
        # Exactly as issued: the signature must not be re-quoted. A plain-http request
        # through a proxy names the absolute URL (the proxy forwards it).
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if route is not None and scheme == "http":
            target = url.split("#", 1)[0]
        return (scheme, host, port, route), target

    def _put_job(
        self,
        url: str,
        body: Any,
        length: int,
        content_type: str | None,
        policy: StoragePolicy,
    ) -> _Job:
        key, target = self._route(url)
        job = _Job("PUT", url, key, target, policy, length=length, content_type=content_type)
        if isinstance(body, MemoryBody):
            job.view = body.view
        elif isinstance(body, FileBody):
            job.reader = body.reader
            job.offset = body.offset
            if body.reader.view is not None:
                job.view = body.reader.view[body.offset : body.offset + length]
        else:  # pragma: no cover - the engine only builds these two
            raise TypeError(f"cannot send a {type(body).__name__} from a thread")
        return job

    @staticmethod
    async def _watch(
        job: _Job, thread: asyncio.Future[Any], forward: Callable[[], Awaitable[None]]
    ) -> None:
        """Until the thread returns: forward its progress, keep the stall clock."""
        seen, since = -1, 0.0
        while not thread.done():
            await asyncio.wait((thread,), timeout=PROGRESS_INTERVAL)
            await forward()
            now = anyio.current_time()
            if not job.sending or job.done != seen:
                seen, since = job.done, now
            elif now - since > job.stall_limit:
                job.abort(stalled=True)  # the thread raises ApiTimeoutError

    # -- in the worker thread ---------------------------------------------------------
    async def _open(self, job: _Job) -> socket.socket:
        """A connected TCP socket to the storage host or the proxy (cancellable)."""
        _scheme, host, port, route = job.key
        if route is not None:
            host, port = route.url.host or "", route.url.port or 80
        loop = asyncio.get_running_loop()
        last: OSError | None = None
        try:
            with anyio.fail_after(job.policy.connect_timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                for family, kind, proto, _name, address in infos:
                    sock = socket.socket(family, kind, proto)
                    try:
                        sock.setblocking(False)
                        await loop.sock_connect(sock, address)
                    except OSError as exc:
                        sock.close()
                        last = exc
                        continue
                    except BaseException:
                        sock.close()
                        raise
                    return sock
        except (OSError, TimeoutError) as exc:
            raise _connect_error(exc, job, route) from None
        raise _connect_error(last or OSError(f"no address for {host}"), job, route) from None

    def _take_idle(self, key: _Key) -> http.client.HTTPConnection | None:
        """A pooled connection the server has not closed, if any (non-blocking)."""
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                conn = idle.pop()
                if _usable(conn):
                    return conn
                conn.close()
        return None

    def _run(self, job: _Job) -> str | None:
        conn = self._checkout(job)
        keep = False
        try:
            if job.method == "GET":
                keep = self._get_exchange(conn, job)
                return None
            etag, keep = self._exchange(conn, job)
            return etag
        finally:
            job.conn = None
            if keep and not job.stop.is_set():
                self._checkin(job.key, conn)
            else:
                conn.close()

    def _checkout(self, job: _Job) -> http.client.HTTPConnection:
        if job.conn is not None:
            return job.conn
        conn = self._connect(job)
        if job.stop.is_set():  # aborted during the handshake
            conn.close()
            raise _Stopped
        return conn

    def _checkin(self, key: _Key, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if self._closed or len(idle) >= KEEP_IDLE:
                conn.close()
            else:
                idle.append(conn)

    def _connect(self, job: _Job) -> http.client.HTTPConnection:
        scheme, host, port, route = job.key
        timeout = job.policy.connect_timeout
        conn: http.client.HTTPConnection
        if route is None:
            if scheme == "https":
                conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._ssl)
            else:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
        else:
            proxy_host, proxy_port = route.url.host or "", route.url.port or 80
            if scheme == "https":
                conn = http.client.HTTPSConnection(
                    proxy_host, proxy_port, timeout=timeout, context=self._ssl
                )
                # CONNECT host:port with the credentials; TLS runs inside the tunnel,
                # verified against the storage host's name.
                headers = {}
                if route.authorization is not None:
                    headers["Proxy-Authorization"] = route.authorization
                conn.set_tunnel(f"[{host}]" if ":" in host else host, port, headers=headers)
            else:
                conn = http.client.HTTPConnection(proxy_host, proxy_port, timeout=timeout)
        sock, job.sock = job.sock, None
        assert sock is not None
        sock.settimeout(timeout)
        # http.client connects through this hook: hand it the socket the loop connected
        # (the tunnel's CONNECT and the TLS handshake still happen here, in the thread).
        setattr(conn, "_create_connection", lambda *_args, **_kwargs: sock)  # noqa: B010
        job.conn = conn  # from here an abort shuts the socket down under the handshake
        try:
            conn.connect()
        except BaseException as exc:
            conn.close()
            sock.close()
            raise _connect_error(exc, job, route) from None
        return conn

    def _exchange(self, conn: http.client.HTTPConnection, job: _Job) -> tuple[str | None, bool]:
        """Headers, body, answer. Returns (ETag, whether the connection can be reused)."""
        method, url, policy = "PUT", job.url, job.policy
        try:
            assert conn.sock is not None
            conn.sock.settimeout(policy.stall_timeout)
            # No Accept-Encoding (aiohttp sends none either on a PUT's signed headers
            # question: S3 ignores it) and never an Expect header.
            conn.putrequest(method, job.target, skip_accept_encoding=True)
            conn.putheader("Content-Length", str(job.length))
            if job.content_type is not None:
                conn.putheader("Content-Type", job.content_type)
            self._proxy_auth(conn, job)
            conn.putheader("User-Agent", _user_agent())
            conn.endheaders()
            # A blocking socket while the body goes out: each chunk is one SSL_write that
            # holds no GIL until the kernel took it all. With a socket timeout OpenSSL
            # returns WANT_WRITE whenever the send buffer fills, and the thread takes the
            # GIL back for a poll() each time (bench_tls, successive runs: checksum on 0.74 ->
            # 0.97 x curl || sha256 with this change). The stall timeout is kept by the
            # watcher on the loop instead (no chunk accepted for ``stall_timeout`` ->
            # abort -> ApiTimeoutError).
            conn.sock.settimeout(None)
            job.sending = True
            try:
                self._send_body(conn.sock, job)
            except OSError:
                job.sending = False
                if job.stop.is_set():
                    raise self._stopped(job) from None
                answer = _early_answer(conn)
                if answer is None:
                    raise
                return self._answer(answer, job)
            job.sending = False
            conn.sock.settimeout(policy.read_timeout)
            return self._answer(conn.getresponse(), job)
        except (ApiError, ApiConnectionError, _SourceFailed):
            raise
        except _Stopped:
            raise self._stopped(job) from None
        except (OSError, http.client.HTTPException) as exc:
            if job.stop.is_set():
                raise self._stopped(job) from None
            raise _transfer_error(exc, method, url) from None

    def _get_exchange(self, conn: http.client.HTTPConnection, job: _Job) -> bool:
        """Headers, answer, body into the sink. Returns whether the connection can be
        reused (the whole body was read)."""
        sink, policy, stop = job.sink, job.policy, job.stop
        assert sink is not None
        assert job.buffer is not None
        whole = memoryview(job.buffer)
        try:
            assert conn.sock is not None
            conn.sock.settimeout(policy.read_timeout)
            conn.putrequest("GET", job.target, skip_accept_encoding=True)
            for name, value in sink.headers().items():
                conn.putheader(name, value)
            self._proxy_auth(conn, job)
            conn.putheader("User-Agent", _user_agent())
            conn.endheaders()
            resp = conn.getresponse()
            headers = CIMultiDictProxy(CIMultiDict(resp.getheaders()))
            if resp.status >= 300:
                payload = resp.read(MAX_ERROR_BODY)
                resp.close()
                raise storage_error(resp.status, payload, "GET", job.url, headers)
            sink.check(resp.status, headers)
            # Blocking while the body arrives, as a PUT's body leaves: each SSL_read waits
            # without the GIL; the watcher keeps the read timeout as a stall clock.
            conn.sock.settimeout(None)
            job.sending = True
            while True:  # bounded by the body (and the sink's admit)
                if stop.is_set():
                    raise _Stopped
                got = resp.readinto(whole)  # fills the buffer unless the body ends first
                if stop.is_set():  # a shut-down socket reads as EOF: not the body's end
                    raise _Stopped
                if not got:
                    break
                if got < len(whole) and resp.length:
                    # The connection closed with bytes of the announced body still due.
                    # Like the aiohttp path's unfinished batch, the partial chunk is not
                    # written: the retry resumes from the last whole chunk.
                    raise ConnectionResetError(f"the body stopped {resp.length} bytes short")
                sink.admit(got)  # nothing of the chunk is written past the range's end
                chunk = whole[:got]
                if sink.pwrite is not None:
                    sink.pwrite([chunk], sink.pos)
                    sink.pos += got
                else:  # a copy: the buffer is refilled while the loop writes
                    copied: Chunks = [bytes(chunk)]
                    anyio.from_thread.run(sink.deliver, copied, got)
                job.done += got
            job.sending = False
            keep = not resp.will_close and resp.isclosed()
            resp.close()
            return keep
        except FluidCloudError:  # first: PermissionError (403) is an OSError too
            raise
        except _Stopped:
            raise self._stopped(job) from None
        except (OSError, http.client.HTTPException) as exc:
            if stop.is_set():
                raise self._stopped(job) from None
            raise _transfer_error(exc, "GET", job.url) from None

    @staticmethod
    def _proxy_auth(conn: http.client.HTTPConnection, job: _Job) -> None:
        """A plain-http request through a proxy carries its credentials (https: CONNECT)."""
        route = job.key[3]
        if route is not None and route.authorization and job.key[0] == "http":
            conn.putheader("Proxy-Authorization", route.authorization)

    @staticmethod
    def _stopped(job: _Job) -> Exception:
        if job.stalled:
            what = "accepted" if job.method == "PUT" else "received"
            return ApiTimeoutError(
                f"storage {job.method} stalled: no byte {what} for {job.stall_limit:g}s",
                method=job.method,
                url=redact_url(job.url),
            )
        return _Stopped()

    def _answer(self, resp: http.client.HTTPResponse, job: _Job) -> tuple[str | None, bool]:
        payload = resp.read(MAX_ERROR_BODY)
        headers = CIMultiDictProxy(CIMultiDict(resp.getheaders()))
        keep = not resp.will_close and resp.isclosed()  # the whole body was read
        if not resp.isclosed():
            resp.close()
        if 200 <= resp.status < 300:
            etag: str | None = headers.get("ETag")
            return etag, keep
        raise storage_error(resp.status, payload, "PUT", job.url, headers)

    def _send_body(self, sock: socket.socket, job: _Job) -> None:
        stop = job.stop
        if job.view is not None:
            view = job.view
            for start in range(0, len(view), THREAD_CHUNK):
                if stop.is_set():
                    raise _Stopped
                chunk = view[start : start + THREAD_CHUNK]
                sock.sendall(chunk)
                job.done += len(chunk)
            return
        reader, buf = job.reader, job.buffer
        assert reader is not None
        assert buf is not None
        whole = memoryview(buf)
        while job.done < job.length:
            if stop.is_set():
                raise _Stopped
            want = min(len(whole), job.length - job.done)
            view = whole[:want]
            position = job.offset + job.done
            try:
                if reader.fd is not None:
                    got = pread_into(reader.fd, view, reader.base + position)
                else:  # a file object or aiofiles reader: its own (async) read path
                    got = int(anyio.from_thread.run(reader.readinto, position, view))
            except OSError as exc:
                raise _SourceFailed(exc) from None
            if got < want:
                raise _SourceFailed(ValueError("the file shrank while it was being uploaded"))
            sock.sendall(view)
            job.done += got

    async def aclose(self) -> None:
        """Abort running requests (they raise :class:`ClientClosed`), close idle
        connections."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for job in list(self._active):
            job.abort()
        for conns in idle.values():
            for conn in conns:
                conn.close()


def _failed(thread: asyncio.Future[Any], exc: BaseException) -> asyncio.Future[Any] | None:
    """``thread`` when ``exc`` is the thread's own exception (not a cancellation of the
    waiting task, nor an error of the progress callback)."""
    if thread.done() and not thread.cancelled() and thread.exception() is exc:
        return thread
    return None


async def _forward(job: _Job, body: Any) -> None:
    """Move the thread's byte count into the body (progress, rollback bookkeeping)."""
    delta = job.done - body.sent
    if delta:
        await body.count(delta)


def _usable(conn: http.client.HTTPConnection) -> bool:
    """An idle connection is reusable if the server has not closed it (nothing readable:
    an idle HTTP/1.1 connection only becomes readable at EOF or a stray byte)."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _early_answer(conn: http.client.HTTPConnection) -> http.client.HTTPResponse | None:
    """The answer a server sent before it stopped reading the body, if any."""
    try:
        assert conn.sock is not None
        conn.sock.settimeout(EARLY_ANSWER_WAIT)
        resp = conn.getresponse()
    except (OSError, http.client.HTTPException, AssertionError):
        return None
    return resp if resp.status >= 300 else None


def _connect_error(exc: BaseException, job: _Job, route: ProxyRoute | None) -> BaseException:
    safe_url = redact_url(job.url)
    if isinstance(exc, (ApiError, ApiConnectionError, _Stopped)) or not isinstance(
        exc, (OSError, http.client.HTTPException)
    ):
        return exc
    if job.stop.is_set():
        return _Stopped()
    method = job.method
    if isinstance(exc, TimeoutError):
        return ApiTimeoutError(
            f"storage {method} timed out connecting", method=method, url=safe_url
        )
    text = str(exc)
    if route is not None and text.startswith("Tunnel connection failed"):
        status = text.partition(":")[2].strip()
        return ApiConnectionError(
            f"the proxy refused storage {method}: {status}", method=method, url=safe_url
        )
    if route is not None and isinstance(exc, ConnectionRefusedError | socket.gaierror):
        where = f"{route.url.host}:{route.url.port}"
        return ConnectFailed(
            f"cannot connect to the proxy {where}: {scrub(text)}", method=method, url=safe_url
        )
    return ConnectFailed(f"cannot connect to storage: {scrub(text)}", method=method, url=safe_url)


def _transfer_error(exc: BaseException, method: str, url: str) -> ApiConnectionError:
    safe_url = redact_url(url)
    if isinstance(exc, TimeoutError):
        return ApiTimeoutError(f"storage {method} timed out", method=method, url=safe_url)
    return ApiConnectionError(
        f"storage {method} failed: {type(exc).__name__}: {scrub(str(exc))}",
        method=method,
        url=safe_url,
    )


def _user_agent() -> str:
    from .._transport import USER_AGENT

    return USER_AGENT
