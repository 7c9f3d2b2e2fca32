"""Turning response JSON into models, with contract breaks raised as typed errors."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ._exceptions import ProtocolError

M = TypeVar("M", bound=BaseModel)


def validate_response(model: type[M], data: Any) -> M:
    """Validate ``data`` as ``model``; a mismatch raises :class:`ProtocolError`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        raise ProtocolError(
            f"the API returned a {model.__name__} that does not match the documented shape "
            f"({problems})"
        ) from None
