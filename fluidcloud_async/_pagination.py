"""List results that can be awaited whole or iterated page by page.

``await fc.files.list(...)`` returns every item as a list; ``async for f in
fc.files.list(...)`` streams items while following ``next_cursor``. A server may answer a
bare JSON array (one page) or ``{"items": [...], "next_cursor": ...}``; both are accepted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from ._exceptions import ProtocolError
from ._validation import validate_response

T = TypeVar("T", bound=BaseModel)

FetchPage = Callable[[Mapping[str, Any]], Awaitable[Any]]


class AsyncPaginator(Generic[T]):
    """A lazily fetched list, returned by the `list` methods: `await` it for all the items,
    or `async for` over it to stream them while the next pages are fetched.

    Examples:
        ```python
        everything = await fc.files.list(space.id)
        async for item in fc.files.list(space.id, limit=100):
            print(item.original_name)
        async for page in fc.files.list(space.id, limit=100).pages():
            print(len(page))
        ```
    """

    def __init__(self, fetch: FetchPage, params: Mapping[str, Any], model: type[T]) -> None:
        self._fetch = fetch
        self._params = dict(params)
        self._model = model

    def __await__(self) -> Generator[Any, None, list[T]]:
        return self._collect().__await__()

    async def _collect(self) -> list[T]:
        return [item async for item in self]

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page:
                yield item

    async def pages(self) -> AsyncIterator[list[T]]:
        """Yield one list of items per response page."""
        params = dict(self._params)
        seen: set[str] = set()
        while True:
            payload = await self._fetch(params)
            items, cursor = _split_page(payload)
            yield [validate_response(self._model, item) for item in items]
            if not cursor:
                return
            if cursor in seen:
                raise ProtocolError(
                    "the API returned a cursor it had already returned (pagination loop)"
                )
            seen.add(cursor)
            params["cursor"] = cursor


def _split_page(payload: Any) -> tuple[list[Any], str | None]:
    if payload is None:
        return [], None
    if isinstance(payload, list):
        return payload, None
    if isinstance(payload, dict) and isinstance(payload.get("items"), list):
        cursor = payload.get("next_cursor")
        return payload["items"], str(cursor) if cursor else None
    raise ProtocolError(f"expected a list or {{'items': [...]}} page, got {type(payload).__name__}")
