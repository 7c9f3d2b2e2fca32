"""Per-invocation settings and the one-event-loop-per-command runner."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import click

from .._client import AsyncFluidCloud
from .._redact import mask_key

T = TypeVar("T")


@dataclass
class Settings:
    """The global options, shared by every command through ``ctx.obj``."""

    api_key: str | None = None
    base_url: str | None = None
    json: bool = False
    debug: bool = False
    timeout: float | None = None
    max_retries: int | None = None

    def resolved_key(self) -> str:
        """The key from ``--api-key`` or the environment; a usage error when there is none."""
        key = self.api_key or os.environ.get("FLUIDCLOUD_API_KEY")
        if not key:
            raise click.UsageError(
                "no API key: pass --api-key or set FLUIDCLOUD_API_KEY "
                "(for a local emulator: `fluidcloud emulator`)"
            )
        return key

    def secrets(self) -> list[str]:
        """Strings that must never reach the terminal."""
        key = self.api_key or os.environ.get("FLUIDCLOUD_API_KEY")
        return [key] if key else []

    def client(self) -> AsyncFluidCloud:
        """A new client; the caller enters it inside the command's event loop."""
        kwargs: dict[str, Any] = {}
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        if self.max_retries is not None:
            kwargs["max_retries"] = self.max_retries
        return AsyncFluidCloud(self.resolved_key(), base_url=self.base_url, **kwargs)

    def describe(self) -> str:
        """A debug line about the configuration, with the key masked."""
        key = self.api_key or os.environ.get("FLUIDCLOUD_API_KEY")
        base = self.base_url or os.environ.get("FLUIDCLOUD_BASE_URL") or "(default)"
        shown = mask_key(key) if key else "(none)"
        return f"base_url={base} api_key={shown} timeout={self.timeout or 'default'}"


def get_settings(ctx: click.Context | None = None) -> Settings:
    """The settings of the running invocation (defaults when run outside the root group)."""
    ctx = ctx or click.get_current_context()
    return ctx.ensure_object(Settings)


def run_client(body: Callable[[AsyncFluidCloud], Awaitable[T]]) -> T:
    """Run ``body`` with a fresh client in one event loop and return its result.

    Ctrl-C cancels the running task (so uploads stop cleanly) and then surfaces as
    ``KeyboardInterrupt``, which the root group turns into exit status 130.
    """
    client = get_settings().client()

    async def main() -> T:
        async with client as fc:
            return await body(fc)

    return anyio.run(main)
