"""``python -m fluidcloud_async``: the ``fluidcloud`` command line."""

from .cli import main

if __name__ == "__main__":
    main()
