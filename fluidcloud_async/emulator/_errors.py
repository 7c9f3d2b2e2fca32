"""API error type and FastAPI-shaped request validation."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

JSON = dict[str, Any]


class ApiError(Exception):
    """Raised by handlers; rendered as ``{"detail": detail}`` with ``status``."""

    def __init__(self, status: int, detail: object, headers: Mapping[str, str] | None = None):
        super().__init__(status, detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


def not_found(what: str = "not found") -> ApiError:
    return ApiError(404, what)


def bad_request(msg: str) -> ApiError:
    return ApiError(400, msg)


def conflict_not_ready() -> ApiError:
    return ApiError(409, "file is not ready: scan_status must be clean")


def quota_exceeded() -> ApiError:
    return ApiError(402, "quota_exceeded")


def validation_error(errors: list[JSON]) -> ApiError:
    return ApiError(422, errors)


def json_response(data: object, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


@dataclass(frozen=True)
class F:
    """One body field: type, requiredness, nullability and bounds."""

    name: str
    kind: type
    required: bool = False
    nullable: bool = True
    min_length: int | None = None
    max_length: int | None = None
    ge: int | None = None
    le: int | None = None


_TYPE_NAMES = {
    str: ("string_type", "Input should be a valid string"),
    int: ("int_type", "Input should be a valid integer"),
    bool: ("bool_type", "Input should be a valid boolean"),
    list: ("list_type", "Input should be a valid list"),
    dict: ("dict_type", "Input should be a valid dictionary"),
}


def _err(loc: list[str | int], typ: str, msg: str, value: object = None) -> JSON:
    return {"loc": loc, "msg": msg, "type": typ, "input": value}


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_value(loc: list[str | int], spec: F, value: object) -> JSON | None:
    """Validation error for one value, or None when it is acceptable."""
    if value is None:
        if spec.nullable:
            return None
        typ, msg = _TYPE_NAMES[spec.kind]
        return _err(loc, typ, msg, value)
    ok = isinstance(value, spec.kind) and not (spec.kind is int and isinstance(value, bool))
    if not ok:
        typ, msg = _TYPE_NAMES[spec.kind]
        return _err(loc, typ, msg, value)
    if isinstance(value, str) and not _is_unicode(value):
        # JSON's "\udce9" escapes decode to lone surrogates, which no UTF-8 column, file
        # name or header can hold: a validation error, not a 500 at the database.
        shown = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return _err(loc, "string_unicode", "Input should be a valid string", shown)
    if isinstance(value, str | list):
        if spec.min_length is not None and len(value) < spec.min_length:
            return _err(
                loc,
                "string_too_short",
                f"String should have at least {spec.min_length} character",
                value,
            )
        if spec.max_length is not None and len(value) > spec.max_length:
            return _err(
                loc,
                "string_too_long",
                f"String should have at most {spec.max_length} characters",
                value,
            )
    if isinstance(value, int):
        if spec.ge is not None and value < spec.ge:
            return _err(
                loc, "greater_than_equal", f"Input should be greater than or equal to {spec.ge}"
            )
        if spec.le is not None and value > spec.le:
            return _err(loc, "less_than_equal", f"Input should be less than or equal to {spec.le}")
    return None


def validate(body: object, fields: Sequence[F]) -> JSON:
    """Check a JSON body; returns only the fields present (absent != null)."""
    if not isinstance(body, dict):
        raise validation_error(
            [
                _err(
                    ["body"],
                    "model_attributes_type",
                    "Input should be a valid dictionary or object to extract fields from",
                    body,
                )
            ]
        )
    errors: list[JSON] = []
    out: JSON = {}
    for spec in fields:
        if spec.name not in body:
            if spec.required:
                errors.append(_err(["body", spec.name], "missing", "Field required"))
            continue
        value = body[spec.name]
        error = check_value(["body", spec.name], spec, value)
        if error is not None:
            errors.append(error)
        else:
            out[spec.name] = value
    if errors:
        raise validation_error(errors)
    return out


async def read_json(request: web.Request) -> object:
    try:
        return await request.json(loads=_loads)
    except ValueError as exc:
        raise validation_error(
            [_err(["body", 0], "json_invalid", f"JSON decode error: {exc}")]
        ) from None


def _loads(text: str) -> object:
    if not text.strip():
        raise ValueError("empty body")
    return json.loads(text)


def parse_uuid(value: str, what: str) -> str:
    """Canonical UUID string, or 400 for a malformed id (as the docs say)."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise bad_request(f"malformed {what}: must be a UUID") from None


def opt_uuid(value: object, what: str) -> str | None:
    return None if value is None else parse_uuid(str(value), what)


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    low = raw.lower()
    if low in {"true", "1", "yes", "on"}:
        return True
    if low in {"false", "0", "no", "off"}:
        return False
    raise validation_error(
        [_err(["query", name], "bool_parsing", "Input should be a valid boolean", raw)]
    )


def query_int(request: web.Request, name: str, *, ge: int, le: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise validation_error(
            [_err(["query", name], "int_parsing", "Input should be a valid integer", raw)]
        ) from None
    error = check_value(["query", name], F(name, int, ge=ge, le=le), value)
    if error is not None:
        raise validation_error([error])
    return value


def require_query(request: web.Request, name: str) -> str:
    raw = request.query.get(name)
    if raw is None:
        raise validation_error([_err(["query", name], "missing", "Field required")])
    return raw
