"""``python -m fluidcloud_async.emulator``: run the emulator until Ctrl-C/SIGTERM.

With ``--port N`` the storage and raw-link servers take N+1 and N+2 unless their ports
are given. ``main`` and ``serve`` are reusable by other CLIs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence

from ._config import EmulatorConfig, S3Storage, server_ssl_context
from ._emulator import Emulator
from ._faults import Faults

DEFAULT_PORT = 8787


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fluidcloud_async.emulator",
        description="Local emulator of the FluidCloud Partner API.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="API port; storage and raw links use PORT+1 and PORT+2 (0: free ports)",
    )
    p.add_argument("--storage-port", type=int, default=None)
    p.add_argument("--raw-port", type=int, default=None)
    p.add_argument("--data-dir", default=None, help="persist state, bytes and keys here")
    p.add_argument("--api-key", default=None, help="key of the default tenant (fck_test_...)")
    p.add_argument("--scan-delay", type=float, default=0.2, help="seconds until pending -> clean")
    p.add_argument("--part-size", type=int, default=None, help="multipart part size in bytes")
    p.add_argument("--multipart-threshold", type=int, default=None)
    p.add_argument("--max-object-size", type=int, default=None)
    p.add_argument("--url-ttl", type=int, default=None, help="presigned URL lifetime (s)")
    p.add_argument("--rate-limits", action="store_true", help="enforce the documented limits")
    p.add_argument(
        "--no-verify-sha256",
        dest="verify_sha256",
        action="store_false",
        help="store the client's sha256 unverified, as the API docs describe the real server",
    )
    p.add_argument("--rate-limit-time-scale", type=float, default=1.0)
    p.add_argument("--list-style", choices=("paged", "array"), default="paged")
    p.add_argument("--list-page-size", type=int, default=None)
    p.add_argument("--bytes-limit", type=int, default=-1, help="default tenant (-1: none)")
    p.add_argument("--links-limit", type=int, default=-1, help="default tenant (-1: none)")
    tls = p.add_argument_group("TLS (all three servers speak https)")
    tls.add_argument("--certfile", default=None, help="PEM certificate chain")
    tls.add_argument("--keyfile", default=None, help="PEM private key (default: in --certfile)")
    s3 = p.add_argument_group("S3 mode (needs boto3)")
    s3.add_argument("--s3-bucket", default=None, help="use this S3 bucket for the bytes")
    s3.add_argument("--s3-endpoint", default=None)
    s3.add_argument("--s3-region", default="us-east-1")
    faults = p.add_argument_group("faults")
    faults.add_argument("--seed", type=int, default=0)
    faults.add_argument("--latency", type=float, default=0.0)
    faults.add_argument("--api-error-rate", type=float, default=0.0)
    faults.add_argument("--api-429-rate", type=float, default=0.0)
    faults.add_argument("--storage-error-rate", type=float, default=0.0)
    faults.add_argument("--storage-drop-rate", type=float, default=0.0)
    faults.add_argument("--storage-bandwidth", type=float, default=None, help="bytes/s")
    return p


def config_from_args(ns: argparse.Namespace) -> EmulatorConfig:
    """EmulatorConfig from parsed arguments (unset options keep the defaults)."""
    port: int = ns.port

    def derived(offset: int) -> int:
        return 0 if port == 0 else port + offset

    config = EmulatorConfig(
        host=ns.host,
        api_port=port,
        storage_port=ns.storage_port if ns.storage_port is not None else derived(1),
        raw_port=ns.raw_port if ns.raw_port is not None else derived(2),
        data_dir=ns.data_dir,
        api_key=ns.api_key,
        scan_delay=ns.scan_delay,
        rate_limits=ns.rate_limits,
        verify_sha256=ns.verify_sha256,
        rate_limit_time_scale=ns.rate_limit_time_scale,
        list_style=ns.list_style,
        default_bytes_limit=ns.bytes_limit,
        default_links_limit=ns.links_limit,
        faults=Faults(
            seed=ns.seed,
            latency=ns.latency,
            api_error_rate=ns.api_error_rate,
            api_429_rate=ns.api_429_rate,
            storage_error_rate=ns.storage_error_rate,
            storage_drop_rate=ns.storage_drop_rate,
            storage_bandwidth=ns.storage_bandwidth,
        ),
    )
    for name in ("part_size", "multipart_threshold", "max_object_size", "url_ttl"):
        if getattr(ns, name) is not None:
            setattr(config, name, getattr(ns, name))
    if ns.list_page_size is not None:
        config.list_page_size = ns.list_page_size
    if ns.certfile:
        config.ssl_context = server_ssl_context(ns.certfile, ns.keyfile)
    elif ns.keyfile:
        raise SystemExit("--keyfile needs --certfile")
    if ns.s3_bucket:
        config.storage_backend = S3Storage(
            endpoint_url=ns.s3_endpoint,
            bucket=ns.s3_bucket,
            region=ns.s3_region,
            access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
            secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
        )
    return config


async def serve(
    config: EmulatorConfig,
    *,
    on_ready: Callable[[Emulator], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run an emulator until ``stop`` is set or SIGINT/SIGTERM arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        async with Emulator(config) as emulator:
            if on_ready is not None:
                on_ready(emulator)
            await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def print_banner(emulator: Emulator) -> None:
    """The two lines a shell can ``eval`` or a test can parse, then the other origins."""
    print(f"FLUIDCLOUD_BASE_URL={emulator.base_url}")
    print(f"FLUIDCLOUD_API_KEY={emulator.api_key}")
    print(f"# storage: {emulator.storage_url}  raw links: {emulator.raw_url}", file=sys.stderr)
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run until interrupted, return the exit status."""
    ns = build_parser().parse_args(argv)
    try:
        asyncio.run(serve(config_from_args(ns), on_ready=print_banner))
    except OSError as exc:
        print(f"fluidcloud emulator: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover - signal handlers normally catch it
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
