"""Small shared types."""

from __future__ import annotations

from typing import Final, Literal


class NotGiven:
    """Marks an argument the caller left out (distinct from an explicit ``None``)."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()
"""The default of an argument you may leave out where `None` means something else: in
[`files.update`][fluidcloud_async.resources.Files.update], `folder_id=None` moves the file to
the space root, while leaving it out (`NOT_GIVEN`) keeps the folder. It is falsy."""

Permission = Literal["view", "download"]
