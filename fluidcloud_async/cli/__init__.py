"""``fluidcloud``: the command line of the SDK (``fluidcloud <resource> <method>``).

It needs the ``cli`` extra (click and rich); without them it says how to install it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

INSTALL_HINT = "pip install 'fluidcloud-async[cli]'"

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and exit with its status."""
    try:
        import click  # noqa: F401
        import rich  # noqa: F401
    except ImportError as exc:
        print(
            f"fluidcloud: the command line needs click and rich ({exc.name} is missing): "
            f"{INSTALL_HINT}",
            file=sys.stderr,
        )
        sys.exit(1)
    from ._app import cli

    cli.main(args=list(argv) if argv is not None else None, prog_name="fluidcloud")
