"""Property-based tests (hypothesis) of what callers and servers can hand the SDK.

* Every public method checks its arguments before any request: a bad value raises
  ``TypeError`` (wrong type) or ``ValueError`` (right type, bad value) and the transport is
  never reached; good values always get through.
* Client settings: bad keys, origins, timeouts, retry counts and pool sizes fail at
  construction with ``ConfigurationError``, never later inside aiohttp.
* ``Retry-After`` parsing never raises and never yields a negative or NaN wait; backoff
  stays within its documented bounds for any attempt number.
* Response decoding: any bytes, any JSON, any error body turns into a value or a typed
  error (the same contract as ``test_server_bad_input.py``, without sockets, so hypothesis
  can try thousands of shapes quickly).
"""

from __future__ import annotations

import datetime
import email.utils
import json
import math
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from yarl import URL

from fluidcloud_async import (
    ApiConnectionError,
    ApiError,
    AsyncFluidCloud,
    ConfigurationError,
    ConflictError,
    File,
    Folder,
    Link,
    Preview,
    ProtocolError,
    Quota,
    RateLimitError,
    ServerError,
    Share,
    Space,
    UploadTicket,
)
from fluidcloud_async._pagination import _split_page
from fluidcloud_async._retry import (
    BACKOFF_INITIAL,
    BACKOFF_MAX,
    MAX_RETRY_AFTER,
    ConnectFailed,
    Kind,
    backoff,
    is_retryable,
    parse_retry_after,
    retry_wait,
)
from fluidcloud_async._transport import _decode_success, _error_from
from fluidcloud_async._validation import validate_response

KEY = "fck_test_props0123456789"
PROFILE = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# -- a transport stand-in: reaching it means validation let the call through -------------


class Reached(Exception):
    """Raised by the fake transport: the call got past argument validation."""


class FakeTransport:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.calls.append((method, path))
        raise Reached(method, path)

    @property
    def sessions(self) -> Any:  # the transfer engine's storage: reached as well
        self.calls.append(("SESSION", ""))
        raise Reached("session")


def client() -> tuple[AsyncFluidCloud, FakeTransport]:
    fc = AsyncFluidCloud(KEY, base_url="http://127.0.0.1:9")
    fake = FakeTransport()
    fake.settings = fc._transport.settings  # type: ignore[attr-defined]
    for resource in (fc.spaces, fc.folders, fc.files, fc.shares, fc.quota, fc.uploads):
        resource._transport = fake  # type: ignore[assignment]
    return fc, fake


def drive(result: Any) -> None:
    """Run a method's result up to its first request, without an event loop.

    ``list`` methods validate when called and return a paginator; async methods validate
    when first resumed. The fake transport raises before any real suspension point, so a
    single ``send(None)`` is enough to learn whether validation passed.
    """
    if isinstance(result, Coroutine):
        try:
            result.send(None)
        finally:
            result.close()
        raise AssertionError("the coroutine suspended before reaching the transport")
    # A paginator: start iterating it.
    agen = result.__aiter__()
    step = agen.__anext__()
    try:
        step.send(None)
    finally:
        step.close()


# -- argument kinds: valid and invalid values, and which error an invalid one must raise ---

_ID_CHARS = st.sampled_from("abcdefABCDEF0123456789-_~.")
VALID_ID = st.uuids().map(str) | st.text(_ID_CHARS, min_size=1, max_size=40).filter(
    lambda s: s not in {".", ".."}
)
VALID_TEXT = st.text(min_size=1, max_size=60).filter(lambda s: bool(s.strip()))
#: Text that is not valid UTF-8: what os.fsdecode makes of a latin-1 file name.
NOT_UTF8 = st.sampled_from(["caf\udce9.txt", "\ud800", "a\udcff"])
#: A media type for a Content-Type header: printable ASCII.
VALID_MEDIA = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1).filter(
    lambda s: bool(s.strip())
)
NON_STR = st.one_of(
    st.integers(),
    st.floats(allow_nan=True),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.booleans(),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
NON_INT = st.one_of(
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=2),
)

Invalid = tuple[Any, type[Exception]]


def _bad_id_strings() -> st.SearchStrategy[str]:
    padded = VALID_ID.flatmap(
        lambda v: st.sampled_from([" ", "\t", "\n", "\u00a0", "\u3000"]).map(
            lambda ws: st.sampled_from([ws + v, v + ws])
        )
    ).flatmap(lambda s: s)
    with_sep = st.tuples(VALID_ID, st.sampled_from("/?#"), VALID_ID).map("".join)
    return st.one_of(st.just(""), st.just("."), st.just(".."), padded, with_sep)


KINDS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Invalid]]] = {
    "id": (
        VALID_ID,
        st.one_of(
            NON_STR.map(lambda v: (v, TypeError)),
            _bad_id_strings().map(lambda v: (v, ValueError)),
        ),
    ),
    "opt_id": (
        st.none() | VALID_ID,
        st.one_of(
            NON_STR.map(lambda v: (v, TypeError)),
            _bad_id_strings().map(lambda v: (v, ValueError)),
        ),
    ),
    "text": (
        VALID_TEXT,
        st.one_of(
            NON_STR.map(lambda v: (v, TypeError)),
            st.text(" \t\n\r\u00a0", max_size=4).map(lambda v: (v, ValueError)),
            NOT_UTF8.map(lambda v: (v, ValueError)),
        ),
    ),
    "opt_text": (
        st.none() | VALID_TEXT,
        st.one_of(
            NON_STR.map(lambda v: (v, TypeError)),
            st.text(" \t\n\r\u00a0", max_size=4).map(lambda v: (v, ValueError)),
            NOT_UTF8.map(lambda v: (v, ValueError)),
        ),
    ),
    "opt_media": (
        st.none() | VALID_MEDIA,
        st.one_of(
            NON_STR.map(lambda v: (v, TypeError)),
            st.text(" \t\n\r\u00a0", max_size=4).map(lambda v: (v, ValueError)),
            st.tuples(VALID_MEDIA, st.sampled_from("\r\n\x00\x1b\x7f\x85é")).map(
                lambda t: (t[0] + t[1], ValueError)
            ),
        ),
    ),
    "size": (
        st.integers(min_value=0, max_value=2**63),
        st.one_of(
            NON_INT.map(lambda v: (v, TypeError)),
            st.integers(max_value=-1).map(lambda v: (v, ValueError)),
        ),
    ),
    "days": (
        st.integers(1, 365),
        st.one_of(
            NON_INT.map(lambda v: (v, TypeError)),
            (st.integers(max_value=0) | st.integers(min_value=366)).map(lambda v: (v, ValueError)),
        ),
    ),
    "opt_days": (
        st.none() | st.integers(1, 365),
        st.one_of(
            NON_INT.map(lambda v: (v, TypeError)),
            (st.integers(max_value=0) | st.integers(min_value=366)).map(lambda v: (v, ValueError)),
        ),
    ),
    "permission": (
        st.sampled_from(["view", "download"]),
        st.one_of(
            st.text(max_size=10).filter(lambda s: s not in {"view", "download"}),
            st.sampled_from(["VIEW", " view", "edit", "download\n"]),
            st.integers(),
            st.none(),
        ).map(lambda v: (v, ValueError)),
    ),
    "limit": (
        st.none() | st.integers(1, 10**9),
        st.one_of(
            NON_INT.map(lambda v: (v, TypeError)),
            st.integers(max_value=0).map(lambda v: (v, ValueError)),
        ),
    ),
    "url": (
        st.sampled_from(["http://", "https://", "HTTPS://"]).flatmap(
            lambda p: st.from_regex(r"[a-z0-9.-]{1,20}(/[a-z0-9._-]{0,20})?", fullmatch=True).map(
                lambda rest: p + rest
            )
        ),
        st.one_of(
            NON_STR.map(lambda v: (v, TypeError)),
            st.sampled_from(
                ["ftp://h/x", "file:///etc/passwd", "javascript:alert(1)", "//h/x", "h/x", " "]
            ).map(lambda v: (v, ValueError)),
        ),
    ),
}


@dataclass(frozen=True)
class Method:
    name: str
    call: Callable[..., Any]
    params: dict[str, str]  # parameter name -> kind


def _m(name: str, params: dict[str, str]) -> Method:
    namespace, method = name.split(".")

    def call(fc: AsyncFluidCloud, **kwargs: Any) -> Any:
        return getattr(getattr(fc, namespace), method)(**kwargs)

    return Method(name, call, params)


METHODS = [
    _m("spaces.list", {"limit": "limit"}),
    _m("spaces.create", {"name": "text"}),
    _m("folders.list", {"space_id": "id", "parent_id": "opt_id", "limit": "limit"}),
    _m("folders.create", {"name": "text", "space_id": "id", "parent_id": "opt_id"}),
    _m("folders.rename", {"folder_id": "id", "name": "text"}),
    _m("folders.move", {"folder_id": "id", "parent_id": "opt_id"}),
    _m("folders.delete", {"folder_id": "id"}),
    _m("folders.restore", {"folder_id": "id"}),
    _m("files.list", {"space_id": "id", "folder_id": "opt_id", "limit": "limit"}),
    _m("files.get", {"file_id": "id"}),
    _m("files.resolve", {"client_key": "text"}),
    _m("files.rename", {"file_id": "id", "name": "text"}),
    _m("files.move", {"file_id": "id", "folder_id": "opt_id"}),
    _m("files.update", {"file_id": "id", "original_name": "text"}),
    _m("files.delete", {"file_id": "id"}),
    _m("files.restore", {"file_id": "id"}),
    _m("files.download_url", {"file_id": "id"}),
    _m("files.preview", {"file_id": "id"}),
    _m("files.public_url", {"file_id": "id"}),
    _m(
        "files.signed_url",
        {"file_id": "id", "expires_in_days": "days", "permission": "permission"},
    ),
    _m("files.wait_until_clean", {"file_id": "id"}),
    _m("shares.list", {"file_id": "opt_id", "limit": "limit"}),
    _m(
        "shares.create",
        {
            "file_id": "id",
            "permission": "permission",
            "expires_in_days": "opt_days",
            "max_downloads": "limit",
        },
    ),
    _m("shares.revoke", {"share_id": "id"}),
    _m(
        "uploads.initiate",
        {
            "original_name": "text",
            "size": "size",
            "space_id": "id",
            "content_type": "opt_media",
            "folder_id": "opt_id",
        },
    ),
    _m(
        "uploads.complete",
        {
            "file_id": "id",
            "key": "text",
            "original_name": "text",
            "size": "size",
            "space_id": "id",
            "folder_id": "opt_id",
            "client_key": "opt_text",
        },
    ),
    _m("uploads.import_url", {"url": "url", "space_id": "id", "folder_id": "opt_id"}),
]
# Optional parameters that accept None: None is valid there, so it is not an invalid value.
NONE_OK = {"opt_id", "opt_text", "opt_media", "opt_days", "limit"}


@st.composite
def valid_args(draw: st.DrawFn, method: Method) -> dict[str, Any]:
    return {p: draw(KINDS[kind][0]) for p, kind in method.params.items()}


@PROFILE
@given(data=st.data())
def test_valid_arguments_reach_the_transport(data: st.DataObject) -> None:
    method = data.draw(st.sampled_from(METHODS), label="method")
    args = data.draw(valid_args(method), label="args")
    fc, fake = client()
    with pytest.raises(Reached):
        drive(method.call(fc, **args))
    assert len(fake.calls) == 1


@PROFILE
@given(data=st.data())
def test_invalid_argument_fails_before_any_request(data: st.DataObject) -> None:
    method = data.draw(st.sampled_from(METHODS), label="method")
    args = data.draw(valid_args(method), label="valid args")
    param = data.draw(st.sampled_from(sorted(method.params)), label="param")
    kind = method.params[param]
    value, expected = data.draw(KINDS[kind][1], label="bad value")
    if value is None and kind in NONE_OK:
        assume(False)
    args[param] = value
    fc, fake = client()
    with pytest.raises((TypeError, ValueError)) as info:
        drive(method.call(fc, **args))
    assert fake.calls == [], f"{method.name}({param}={value!r}) reached the transport"
    assert isinstance(info.value, expected), (method.name, param, value, info.value)


@pytest.mark.parametrize(
    "method", [m for m in METHODS if "id" in m.params.values()], ids=lambda m: m.name
)
@pytest.mark.parametrize("dots", [".", ".."])
def test_dot_segment_ids_cannot_retarget_the_request(method: Method, dots: str) -> None:
    # yarl normalizes dot segments: files.get("..") used to GET /api/v1/ and
    # folders.restore("..") to POST /api/v1/restore.
    param = next(p for p, kind in method.params.items() if kind == "id")
    fc, fake = client()
    args = {p: _first_valid(k) for p, k in method.params.items()}
    args[param] = dots
    with pytest.raises(ValueError, match="not a valid id"):
        drive(method.call(fc, **args))
    assert fake.calls == []


def _first_valid(kind: str) -> Any:
    return {
        "id": "abc",
        "opt_id": None,
        "text": "t",
        "opt_text": None,
        "opt_media": None,
        "size": 1,
        "days": 7,
        "opt_days": None,
        "permission": "view",
        "limit": None,
        "url": "https://h/x",
    }[kind]


def test_update_and_list_need_their_key_arguments() -> None:
    fc, fake = client()
    with pytest.raises(ValueError, match="original_name and/or folder_id"):
        drive(fc.files.update("abc"))
    with pytest.raises(ValueError, match="space_id is required"):
        drive(fc.files.list())
    with pytest.raises(ValueError, match="parts"):
        drive(
            fc.uploads.complete(
                file_id="f", key="k", original_name="n", size=1, space_id="s", upload_id="u"
            )
        )
    with pytest.raises(ValueError, match="without upload_id"):
        drive(
            fc.uploads.complete(
                file_id="f",
                key="k",
                original_name="n",
                size=1,
                space_id="s",
                parts=[{"PartNumber": 1, "ETag": "e"}],
            )
        )
    assert fake.calls == []


@pytest.mark.parametrize(
    "bad",
    [
        {"poll_interval": 0},
        {"poll_interval": -1.0},
        {"poll_interval": math.nan},
        {"timeout": -5.0},
        {"max_poll_interval": 0},
    ],
)
def test_wait_until_clean_checks_its_polling_arguments(bad: dict[str, float]) -> None:
    fc, fake = client()
    with pytest.raises(ValueError, match=r"timeout|interval"):
        drive(fc.files.wait_until_clean("abc", **bad))
    assert fake.calls == []


# -- client settings -------------------------------------------------------------------------


@PROFILE
@given(
    timeout=st.one_of(
        st.floats(max_value=0.0),
        st.sampled_from([math.inf, -math.inf, math.nan, True, False, "5", None]),
    )
)
def test_bad_timeouts_are_refused_at_construction(timeout: Any) -> None:
    with pytest.raises(ConfigurationError):
        AsyncFluidCloud(KEY, base_url="http://127.0.0.1:9", timeout=timeout)
    fc = AsyncFluidCloud(KEY, base_url="http://127.0.0.1:9")
    if timeout is not None:  # None means "unchanged" in with_options
        with pytest.raises(ConfigurationError):
            fc.with_options(timeout=timeout)


@PROFILE
@given(
    value=st.one_of(
        st.integers(max_value=-1),
        st.floats(allow_nan=True),
        st.sampled_from([True, False, "3", b"3", [3]]),
    )
)
def test_bad_retry_counts_and_pool_sizes_are_refused(value: Any) -> None:
    with pytest.raises(ConfigurationError):
        AsyncFluidCloud(KEY, base_url="http://127.0.0.1:9", max_retries=value)
    with pytest.raises(ConfigurationError):
        AsyncFluidCloud(KEY, base_url="http://127.0.0.1:9").with_options(max_retries=value)
    with pytest.raises(ConfigurationError):
        AsyncFluidCloud(KEY, base_url="http://127.0.0.1:9", connection_limit=value)


@PROFILE
@given(
    timeout=st.floats(min_value=1e-3, max_value=1e6),
    retries=st.integers(0, 10_000),
    limit=st.integers(0, 10_000),
)
def test_good_settings_are_kept(timeout: float, retries: int, limit: int) -> None:
    fc = AsyncFluidCloud(
        KEY,
        base_url="http://127.0.0.1:9",
        timeout=timeout,
        max_retries=retries,
        connection_limit=limit,
    )
    assert fc.timeout == timeout and fc.max_retries == retries
    copy = fc.with_options(timeout=timeout * 2, max_retries=retries + 1)
    assert copy.timeout == timeout * 2 and copy.max_retries == retries + 1


@PROFILE
@given(
    key=st.one_of(
        st.just(""),
        st.tuples(
            st.text(max_size=8), st.sampled_from(" \t\n\r\x00\x07\x1b\u2028"), st.text(max_size=8)
        ).map("".join),
    )
)
def test_keys_with_whitespace_or_control_characters_are_refused(key: str) -> None:
    with pytest.raises(ConfigurationError):
        AsyncFluidCloud(key, base_url="http://127.0.0.1:9")


@pytest.mark.parametrize(
    "base_url",
    [
        "ftp://api.test",
        "api.test",
        "http://",
        "http://user:pw@api.test",
        "http://api.test?x=1",
        "http://api.test#frag",
        "file:///etc",
        "javascript:alert(1)",
    ],
)
def test_bad_origins_are_refused(base_url: str) -> None:
    with pytest.raises(ConfigurationError):
        AsyncFluidCloud(KEY, base_url=base_url)


# -- Retry-After and backoff -----------------------------------------------------------------

HEADER_TEXT = st.text(st.characters(codec="latin-1", exclude_categories=["Cs"]), max_size=40)


def _check_wait(value: float | None) -> None:
    assert value is None or (isinstance(value, float) and value >= 0 and not math.isnan(value))


@settings(max_examples=400, deadline=None)
@given(
    retry_after=st.none()
    | HEADER_TEXT
    | st.floats(allow_nan=True).map(str)
    | st.integers().map(str),
    retry_after_ms=st.none() | HEADER_TEXT | st.floats(allow_nan=True).map(str),
    now=st.floats(min_value=0, max_value=4e9),
)
@example(retry_after="nan", retry_after_ms=None, now=0)
@example(retry_after="-inf", retry_after_ms="nan", now=0)
@example(retry_after="Fri, 31 Dec 9999 23:59:59 GMT", retry_after_ms=None, now=0)
@example(retry_after="Mon, 01 Jan 0001 00:00:00 GMT", retry_after_ms=None, now=0)
@example(retry_after="Thu, 01 Jan 1970 00:00:00 +9999", retry_after_ms=None, now=0)
@example(retry_after="1_000", retry_after_ms=None, now=0)
def test_retry_after_never_raises_nor_goes_negative(
    retry_after: str | None, retry_after_ms: str | None, now: float
) -> None:
    headers: CIMultiDict[str] = CIMultiDict()
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms
    _check_wait(parse_retry_after(headers, now=lambda: now))


@settings(max_examples=200, deadline=None)
@given(
    when=st.datetimes(
        min_value=datetime.datetime(1971, 1, 1), max_value=datetime.datetime(2200, 1, 1)
    ),
    now=st.floats(min_value=0, max_value=7e9),
)
def test_retry_after_http_dates(when: datetime.datetime, now: float) -> None:
    aware = when.replace(tzinfo=datetime.timezone.utc, microsecond=0)
    headers = {"Retry-After": email.utils.format_datetime(aware, usegmt=True)}
    got = parse_retry_after(headers, now=lambda: now)
    assert got is not None
    assert got == pytest.approx(max(0.0, aware.timestamp() - now), abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(seconds=st.floats(min_value=0, max_value=1e12) | st.integers(0, 10**12))
def test_retry_after_delta_seconds_round_trip(seconds: float) -> None:
    assert parse_retry_after({"Retry-After": str(seconds)}) == float(seconds)
    assert parse_retry_after({"retry-after-ms": str(seconds)}) == pytest.approx(seconds / 1000)


@settings(max_examples=300, deadline=None)
@given(attempt=st.integers(min_value=1, max_value=10**6), seed=st.integers(0, 2**32))
@example(attempt=1025, seed=0)  # 2.0 ** 1024 overflowed before the exponent was capped
def test_backoff_bounds(attempt: int, seed: int) -> None:
    ceiling = min(BACKOFF_MAX, BACKOFF_INITIAL * 2.0 ** min(attempt - 1, 64))
    wait = backoff(attempt, rng=random.Random(seed))
    assert ceiling / 2 <= wait <= ceiling <= BACKOFF_MAX


@settings(max_examples=200, deadline=None)
@given(
    status=st.integers(400, 599),
    idempotent=st.booleans(),
    retry_after=st.none() | st.floats(min_value=0, max_value=10 * MAX_RETRY_AFTER),
    attempt=st.integers(1, 50),
)
def test_retry_rule_and_wait(
    status: int, idempotent: bool, retry_after: float | None, attempt: int
) -> None:
    kind = Kind.API if idempotent else Kind.API_ONCE
    if status == 429:
        exc: ApiError = RateLimitError("x", retry_after=retry_after, status=429)
        assert is_retryable(exc, kind) == (retry_after is None or retry_after <= MAX_RETRY_AFTER)
    else:
        cls = ConflictError if status == 409 else ServerError if status >= 500 else ApiError
        exc = cls("x", status=status)
        expected = idempotent and status in {408, 500, 502, 503, 504}
        assert is_retryable(exc, kind) == expected
    wait = retry_wait(exc, attempt)
    assert wait >= 0
    if status == 429 and retry_after is not None:
        assert wait == retry_after  # the server's hint, never earlier
    else:
        assert wait <= BACKOFF_MAX
    assert is_retryable(ConnectFailed("x"), kind)
    assert is_retryable(ApiConnectionError("x"), kind) == idempotent
    assert not is_retryable(ValueError("x"), kind)


# -- decoding whatever the server sends ------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
MODELS = [Space, Folder, File, Link, Share, Quota, Preview, UploadTicket]
URL_ = URL("http://api.test/api/v1/x")


def _typed_or_value(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (ApiError, ProtocolError) as exc:
        return exc


@settings(max_examples=400, deadline=None)
@given(
    body=st.binary(max_size=200) | JSON.map(lambda v: repr(v).encode()),
    status=st.sampled_from([200, 201, 204]),
)
def test_any_success_body_decodes_or_is_a_typed_error(body: bytes, status: int) -> None:
    result = _typed_or_value(lambda: _decode_success(status, body, "GET", URL_, {}))
    assert not isinstance(result, ApiError) or isinstance(result, ProtocolError)


@settings(max_examples=400, deadline=None)
@given(data=JSON, model=st.sampled_from(MODELS))
def test_any_json_validates_or_is_a_typed_error(data: Any, model: type[Any]) -> None:
    result = _typed_or_value(lambda: validate_response(model, data))
    assert isinstance(result, (model, ProtocolError))
    try:
        pages = _split_page(data)
    except ProtocolError:
        return
    assert isinstance(pages[0], list) and (pages[1] is None or isinstance(pages[1], str))


@settings(max_examples=400, deadline=None)
@given(
    status=st.integers(400, 599),
    body=st.one_of(
        st.binary(max_size=100),
        JSON.map(lambda v: json.dumps({"detail": v}).encode()),
        JSON.map(lambda v: json.dumps(v).encode()),
    ),
    retry_after=st.none() | HEADER_TEXT,
)
@example(status=422, body=b'{"detail": [{"loc": 5, "msg": "m"}]}', retry_after=None)
@example(status=400, body=b"[" * 50_000, retry_after=None)
def test_any_error_body_maps_to_a_typed_error(
    status: int, body: bytes, retry_after: str | None
) -> None:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    exc = _error_from(status, body, "POST", URL_, headers)
    assert isinstance(exc, ApiError) and exc.status == status
    assert isinstance(str(exc), str) and isinstance(exc.message, str)
    if status == 429:
        assert isinstance(exc, RateLimitError)
        _check_wait(exc.retry_after)
    elif status >= 500:
        assert isinstance(exc, ServerError)


# -- the transfer engine: part slicing, naming, argument checks ------------------------------

from fluidcloud_async._transfer._sources import describe  # noqa: E402
from fluidcloud_async._transfer._upload import part_count, plan  # noqa: E402


def _ticket(size: int, part_size: int, changes: dict[str, Any] | None = None) -> UploadTicket:
    count = part_count(size, part_size)
    fields: dict[str, Any] = {
        "file_id": "f",
        "key": "k",
        "mode": "multipart",
        "upload_id": "u",
        "part_size": part_size,
        "part_urls": [{"part_number": n, "url": f"http://s/p{n}"} for n in range(1, count + 1)],
    }
    fields.update(changes or {})
    return UploadTicket.model_validate(fields)


@st.composite
def sizes_and_parts(draw: st.DrawFn) -> tuple[int, int]:
    part_size = draw(st.integers(1, 64 * 1024 * 1024))
    # The edges the issue names: 0, 1, part_size - 1, part_size, exact multiples, +/- 1,
    # and huge sizes (S3's 5 TiB cap with 10,000 parts), besides arbitrary sizes.
    k = draw(st.integers(1, 10_000))
    size = draw(
        st.sampled_from([0, 1, max(0, part_size - 1), part_size, k * part_size])
        | st.integers(0, 5 * 1024**4)
        | st.just(k * part_size + 1)
        | st.just(max(0, k * part_size - 1))
    )
    assume(part_count(size, part_size) <= 10_000)
    return size, part_size


@settings(max_examples=300, deadline=None)
@given(sp=sizes_and_parts())
@example(sp=(0, 5))
@example(sp=(1, 1))
@example(sp=(5 * 1024**4, 5 * 1024**4 // 10_000 + 1))
def test_part_slicing_covers_the_file_exactly(sp: tuple[int, int]) -> None:
    size, part_size = sp
    parts = plan(_ticket(size, part_size), size)
    assert [p.number for p in parts] == list(range(1, len(parts) + 1))
    assert len(parts) == max(1, -(-size // part_size))
    offset = 0
    for part in parts:
        assert part.offset == offset
        assert part.length == (part_size if part is not parts[-1] else size - offset)
        assert part.length >= 0 and (part.length > 0 or size == 0)
        assert part.url == f"http://s/p{part.number}"
        offset += part.length
    assert offset == size
    assert "http://" not in repr(parts[0])  # part URLs are credentials


@settings(max_examples=150, deadline=None)
@given(sp=sizes_and_parts(), data=st.data())
def test_self_contradicting_tickets_are_typed_errors(
    sp: tuple[int, int], data: st.DataObject
) -> None:
    size, part_size = sp
    count = part_count(size, part_size)
    broken = data.draw(
        st.sampled_from(
            [
                {"upload_id": None},
                {"part_size": 0},
                {"part_size": -part_size},
                {"part_urls": []},
                {"part_urls": [{"part_number": n + 1, "url": "u"} for n in range(1, count + 1)]},
                {"part_urls": [{"part_number": 1, "url": "u"}] * (count + 1)},
                {"mode": "single", "upload_url": None},
            ]
        )
    )
    ticket = _ticket(size, part_size, broken)
    with pytest.raises(ProtocolError):
        plan(ticket, size)


@settings(max_examples=200, deadline=None)
@given(
    # Lone surrogates (Cs) are refused names: test_hostile_input covers them.
    stem=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
        min_size=1,
        max_size=30,
    ).filter(lambda s: s.strip() and s not in {".", ".."}),
    ext=st.sampled_from(["", ".txt", ".png", ".PDF", ".tar.gz", ".json", ".unknownext"]),
    data=st.binary(max_size=64),
)
def test_name_and_content_type_inference(
    stem: str, ext: str, data: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import mimetypes

    name = stem + ext
    spec = describe(data, name=name)
    assert spec.name == name and spec.size == len(data)
    assert spec.content_type == mimetypes.guess_type(name, strict=False)[0]
    explicit = describe(data, name=name, content_type="application/x-custom")
    assert explicit.content_type == "application/x-custom"
    unnamed = describe(data)
    assert unnamed.name == "upload.bin" and unnamed.content_type == "application/octet-stream"
    folder = tmp_path_factory.mktemp("names")
    path = folder / ("f" + ext)
    path.write_bytes(data)
    from_path = describe(path)
    assert from_path.name == path.name and from_path.size == len(data)


@settings(max_examples=150, deadline=None)
@given(
    bad=st.one_of(
        st.tuples(st.just("name"), NON_STR.map(lambda v: (v, TypeError))),
        st.tuples(st.just("name"), st.sampled_from(["", " ", "\t"]).map(lambda v: (v, ValueError))),
        st.tuples(st.just("content_type"), NON_STR.map(lambda v: (v, TypeError))),
        st.tuples(st.just("size"), NON_INT.map(lambda v: (v, TypeError))),
        st.tuples(st.just("size"), st.integers(max_value=-1).map(lambda v: (v, ValueError))),
        st.tuples(st.just("size"), st.integers(min_value=4).map(lambda v: (v, ValueError))),
        st.tuples(st.just("max_concurrency"), NON_INT.map(lambda v: (v, TypeError))),
        st.tuples(
            st.just("max_concurrency"), st.integers(max_value=0).map(lambda v: (v, ValueError))
        ),
        st.tuples(st.just("space_id"), _bad_id_strings().map(lambda v: (v, ValueError))),
        st.tuples(st.just("folder_id"), _bad_id_strings().map(lambda v: (v, ValueError))),
        st.tuples(
            st.just("checksum"),
            st.sampled_from([0, 1, "false", None]).map(lambda v: (v, TypeError)),
        ),
        st.tuples(
            st.just("file"),
            st.sampled_from([None, 3, 1.5, True, object()]).map(lambda v: (v, TypeError)),
        ),
    )
)
def test_upload_arguments_fail_before_any_request(bad: tuple[str, Invalid]) -> None:
    param, (value, expected) = bad
    if param == "size" and expected is TypeError and value is None:
        assume(False)  # size=None means "unknown"
    args: dict[str, Any] = {"file": b"abc", "space_id": "space-1"}
    args[param] = value
    fc, fake = client()
    with pytest.raises((TypeError, ValueError)) as info:
        drive(fc.files.upload(**args))
    assert fake.calls == []
    assert isinstance(info.value, expected), (param, value, info.value)
