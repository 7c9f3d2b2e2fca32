"""A TLS 1.3 storage sink on loopback (nginx, a child process) and a throwaway CA for it.

nginx runs from its own temporary prefix (configuration, logs, pid and temp paths there; no
system service, no master process: the one process we start is the server, and is killed at
the end). Every ``PUT`` body is read whole before the answer: ``mirror_request_body`` makes
nginx read the body (into one in-memory buffer larger than a part, never a temp file)
before the content phase, whose 404/405 for a ``PUT`` becomes ``200`` with the ETag that
the part URL carries in its ``etag`` query parameter, quoted. (``return 200`` alone would
answer after the first bytes and discard the rest in the background: measured, it answers
after 64 KiB of a 4 MiB body.) Keep-alive holds across parts. Given a ``static``
directory, ``GET /static/NAME`` serves its files (ranges included), for download rows.

The CA: ``trustme`` when it is installed, else the ``openssl`` command line. Clients get
it as ``SSL_CERT_FILE`` (Python's ``ssl.create_default_context``, so aiohttp and httpx) or
``--cacert`` (curl).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
LOG_SETTLE = 2.0
# Temp-path directives of modules a build may leave out (``--without-http_X_module``).
_TEMP_PATHS = {
    "proxy_temp_path": "proxy",
    "fastcgi_temp_path": "fastcgi",
    "uwsgi_temp_path": "uwsgi",
    "scgi_temp_path": "scgi",
}


def nginx_path() -> str | None:
    """The nginx binary (``/usr/sbin`` is often not on a user's PATH)."""
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def make_ca(directory: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1: ``ca``, ``cert``, ``key``."""
    directory.mkdir(parents=True, exist_ok=True)
    out = {name: directory / f"{name}.pem" for name in ("ca", "cert", "key")}
    try:
        import trustme
    except ImportError:
        _openssl_ca(directory, out)
        return out
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(out["ca"]))
    leaf.private_key_pem.write_to_path(str(out["key"]))
    out["cert"].write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    return out


def _openssl_ca(directory: Path, out: dict[str, Path]) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("neither trustme nor the openssl command is available for a CA")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_key, csr, ext = directory / "ca.key", directory / "leaf.csr", directory / "leaf.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    ca_pem, cert_pem, key_pem = str(out["ca"]), str(out["cert"]), str(out["key"])
    steps = [
        [openssl, "req", "-x509", *ec, "-keyout", str(ca_key), "-out", ca_pem, "-days", "2",
         "-subj", "/CN=fluidcloud bench CA"],
        [openssl, "req", *ec, "-keyout", key_pem, "-out", str(csr), "-subj", "/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", str(csr), "-CA", ca_pem, "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", cert_pem, "-days", "2", "-extfile", str(ext)],
    ]  # fmt: skip
    for argv in steps:
        subprocess.run(argv, check=True, capture_output=True, timeout=60)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _built_without(nginx: str) -> set[str]:
    """The temp-path directives this build does not know (their module is left out)."""
    info = subprocess.run([nginx, "-V"], capture_output=True, text=True, timeout=30)
    text = info.stdout + info.stderr
    return {d for d, m in _TEMP_PATHS.items() if f"--without-http_{m}_module" in text}


def _q(path: Path | str) -> str:
    """A path as one quoted nginx parameter (spaces or semicolons in a temp dir's name)."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_text(
    prefix: Path,
    port: int,
    certs: dict[str, Path],
    body_buffer: int,
    nginx: str,
    static: Path | None = None,
) -> str:
    temp = prefix / "temp"
    paths = [f"client_body_temp_path {_q(temp / 'body')};"]
    skip = _built_without(nginx)
    paths += [f"{d} {_q(temp / d.split('_')[0])};" for d in _TEMP_PATHS if d not in skip]
    temp_lines = "\n    ".join(paths)
    # Before "location /", whose error_page turns every 404 into a stored PUT's 200.
    # alias of a directory: the trailing slash belongs inside the quotes.
    files = "" if static is None else f"location /static/ {{ alias {_q(f'{static}/')}; }}"
    return f"""
daemon off;
master_process off;
worker_processes 1;
pid {_q(prefix / "nginx.pid")};
error_log {_q(prefix / "error.log")} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    log_format bench '$request_method $status $content_length $connection_requests '
                     '$body_bytes_sent';
    {temp_lines}
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {_q(certs["cert"])};
        ssl_certificate_key {_q(certs["key"])};
        ssl_protocols TLSv1.3;
        access_log {_q(prefix / "access.log")} bench;
        client_max_body_size 0;
        client_body_buffer_size {body_buffer};
        client_body_timeout 300s;
        {files}
        location / {{
            root {_q(prefix / "empty")};
            mirror /_read_body;
            mirror_request_body on;
            error_page 404 405 =200 @stored;
        }}
        location = /_read_body {{ internal; return 204; }}
        location @stored {{
            add_header ETag "\\"$arg_etag\\"" always;
            return 200;
        }}
    }}
}}
"""


class NginxSink:
    """``with NginxSink(prefix, certs, part_size) as sink: sink.origin, sink.stats()``.

    ``stats()``: the server's CPU-seconds so far, the PUTs answered 200 with the sum of
    their ``Content-Length`` (from its access log, written once a body has been read), the
    GETs answered 200/206 with the body bytes sent, and the connections that carried them
    (keep-alive: one per client connection, not per part or range).
    """

    def __init__(
        self, prefix: Path, certs: dict[str, Path], part_size: int, static: Path | None = None
    ) -> None:
        nginx = nginx_path()
        if nginx is None:
            raise RuntimeError("nginx is not installed")
        self._nginx = nginx
        self._prefix = prefix
        self._certs = certs
        self._body_buffer = part_size + 1024 * 1024
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_pos = 0
        self._puts = 0
        self._body_bytes = 0
        self._static = static
        self._gets = 0
        self._sent_bytes = 0
        self._other = 0
        self._connections = 0
        self.port = 0
        self.origin = ""

    def __enter__(self) -> NginxSink:
        for sub in ("temp", "empty"):
            (self._prefix / sub).mkdir(parents=True, exist_ok=True)
        (self._prefix / "access.log").unlink(missing_ok=True)
        self.port = _free_port()
        conf = self._prefix / "nginx.conf"
        conf.write_text(
            config_text(
                self._prefix,
                self.port,
                self._certs,
                self._body_buffer,
                self._nginx,
                self._static,
            )
        )
        error_log = self._prefix / "error.log"
        argv = [self._nginx, "-p", str(self._prefix), "-e", str(error_log), "-c", str(conf)]
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            self._wait_listening(error_log)
        except BaseException:
            self._kill()
            raise
        self.origin = f"https://127.0.0.1:{self.port}"
        return self

    def _wait_listening(self, error_log: Path) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:  # bounded by START_TIMEOUT
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                log = error_log.read_text(errors="replace") if error_log.exists() else ""
                raise RuntimeError(f"nginx exited {self._proc.returncode}: {(err + log)[-1500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start listening in time")

    def _cpu_seconds(self) -> float:
        assert self._proc is not None
        with open(f"/proc/{self._proc.pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _read_log(self) -> None:
        path = self._prefix / "access.log"
        if not path.exists():
            return
        with open(path, "rb") as fh:
            fh.seek(self._log_pos)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
        self._log_pos += end
        for line in data[:end].splitlines():
            method, status, length, nth, sent = line.decode().split()
            self._connections += nth == "1"  # the first request on its connection
            if method == "PUT" and status == "200" and length.isdigit():
                self._puts += 1
                self._body_bytes += int(length)
            elif method == "GET" and status in ("200", "206"):
                self._gets += 1
                self._sent_bytes += int(sent)
            else:
                self._other += 1

    def stats(
        self, expect_puts: int | None = None, expect_sent: int | None = None
    ) -> dict[str, Any]:
        """Counters; with ``expect_puts`` (``expect_sent``), waits briefly until that many
        PUTs (GET body bytes) are logged."""
        deadline = time.monotonic() + LOG_SETTLE
        self._read_log()

        def short() -> bool:
            puts = expect_puts is not None and self._puts < expect_puts
            return puts or (expect_sent is not None and self._sent_bytes < expect_sent)

        while short():  # bounded by LOG_SETTLE
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
            self._read_log()
        return {
            "puts": self._puts,
            "body_bytes": self._body_bytes,
            "gets": self._gets,
            "sent_bytes": self._sent_bytes,
            "other_requests": self._other,
            "connections": self._connections,
            "server_cpu_s": self._cpu_seconds(),
        }

    def _kill(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(STOP_TIMEOUT)
        if self._proc.stderr is not None:
            self._proc.stderr.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._kill()
