"""The keep-alive pool of blocking ``http.client`` connections behind ``_threaded``.

A new connection's TCP connect runs on the loop (DNS and connect stay cancellable); the
CONNECT tunnel (with the proxy's credentials) and the TLS handshake run in the worker
thread, on the client's ``ssl_context``. An idle connection is reused only while the
server has not closed it, and a :class:`Job` - one request attempt, shared by the loop and
its thread - can be aborted from the loop at any point by shutting its socket down.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import select
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio
from yarl import URL

from .._exceptions import (
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    ConnectFailed,
    TransferStopped,
)
from .._redact import redact_url
from ._storage import GetSink, StoragePolicy, scrub

if TYPE_CHECKING:
    from .._proxy import ProxyRoute, ProxySettings
    from ._sources import Reader

#: Idle keep-alive connections kept per (host, port, proxy).
KEEP_IDLE = 16


Key = tuple[str, str, int, "ProxyRoute | None"]


@dataclass(eq=False)
class Job:
    """One PUT or GET attempt, shared between the loop (progress, abort) and its thread."""

    method: str
    url: str
    key: Key
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
    live: socket.socket | None = None
    """The connection's socket once the request is sent (not owned: for abort only)."""
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
            # http.client drops conn.sock when an answer says "Connection: close".
            sock = self.live or self.handle
        if sock is not None:
            # The plain socket's shutdown, not SSLSocket's (which drops its SSL object
            # under the thread): the blocked SSL_write/read then fails at once. The thread
            # closes the connection itself, so no descriptor is closed under it.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class ConnectionPool:
    """Idle keep-alive connections per (scheme, host, port, proxy route), thread-safe;
    new ones connected on the loop (:meth:`open`) and finished in the thread
    (:meth:`checkout`: CONNECT tunnel, TLS handshake)."""

    def __init__(self, ssl_context: ssl.SSLContext | None, proxies: ProxySettings) -> None:
        # The client's context when given, else what aiohttp's default is: the system
        # trust store (which honours SSL_CERT_FILE / SSL_CERT_DIR), hostname checked.
        self._ssl = ssl_context if ssl_context is not None else ssl.create_default_context()
        self._proxies = proxies
        self._lock = threading.Lock()
        self.idle: dict[Key, list[http.client.HTTPConnection]] = {}
        self.closed = False

    def supports(self, url: str) -> bool:
        """Whether this transport can send to ``url`` (http(s); through no proxy or an
        ``http://`` one: a TLS connection *to* the proxy stays with aiohttp)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        route = self._proxies.route(URL(url, encoded=True))
        return route is None or route.url.scheme == "http"

    def route(self, url: str) -> tuple[Key, str]:
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

    async def open(self, job: Job) -> socket.socket:
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
            raise connect_error(exc, job, route) from None
        raise connect_error(last or OSError(f"no address for {host}"), job, route) from None

    def take_idle(self, key: Key) -> http.client.HTTPConnection | None:
        """A pooled connection the server has not closed, if any (non-blocking)."""
        with self._lock:
            idle = self.idle.get(key, [])
            while idle:
                conn = idle.pop()
                if usable(conn):
                    return conn
                conn.close()
        return None

    def checkout(self, job: Job) -> http.client.HTTPConnection:
        """In the thread: the job's pooled connection, or its socket made one."""
        if job.conn is not None:
            return job.conn
        conn = self._connect(job)
        if job.stop.is_set():  # aborted during the handshake
            conn.close()
            raise TransferStopped
        return conn

    def checkin(self, key: Key, conn: http.client.HTTPConnection) -> None:
        """In the thread: keep a finished connection for reuse (or close it)."""
        with self._lock:
            idle = self.idle.setdefault(key, [])
            if self.closed or len(idle) >= KEEP_IDLE:
                conn.close()
            else:
                idle.append(conn)

    def _connect(self, job: Job) -> http.client.HTTPConnection:
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
            raise connect_error(exc, job, route) from None
        return conn

    def close(self) -> None:
        """Close the idle connections; later check-ins are closed too."""
        with self._lock:
            self.closed = True
            idle, self.idle = self.idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


def usable(conn: http.client.HTTPConnection) -> bool:
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


def connect_error(exc: BaseException, job: Job, route: ProxyRoute | None) -> BaseException:
    safe_url = redact_url(job.url)
    if isinstance(exc, (ApiError, ApiConnectionError, TransferStopped)) or not isinstance(
        exc, (OSError, http.client.HTTPException)
    ):
        return exc
    if job.stop.is_set():
        return TransferStopped()
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
