"""Presigned storage URLs with S3's query parameter names and an HMAC of our own.

Using ``X-Amz-Date``/``X-Amz-Expires``/``X-Amz-Signature`` lets clients treat emulator
and real S3 URLs the same way (for example to detect expiry before a PUT).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote, urlencode

from ._clock import Clock, amz_date, parse_amz_date

ALGORITHM = "FC-HMAC-SHA256"
_AUTH_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)


class SignatureProblem(Exception):
    """Why a presigned request is refused, as an S3 error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Signer:
    """Signs and verifies presigned URLs with a server secret."""

    def __init__(self, secret: bytes, clock: Clock) -> None:
        self._secret = secret
        self._clock = clock

    def _digest(
        self, method: str, path: str, params: Mapping[str, str], content_type: str | None
    ) -> str:
        canonical_query = "&".join(
            f"{quote(k, safe='')}={quote(v, safe='')}"
            for k, v in sorted(params.items())
            if k != "X-Amz-Signature"
        )
        to_sign = "\n".join([ALGORITHM, method, path, canonical_query, content_type or ""])
        return hmac.new(self._secret, to_sign.encode(), hashlib.sha256).hexdigest()

    def presign(
        self,
        origin: str,
        method: str,
        path: str,
        *,
        ttl: int,
        content_type: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> str:
        """URL for ``method`` on ``path`` (decoded, starting with ``/``)."""
        params = {
            "X-Amz-Algorithm": ALGORITHM,
            "X-Amz-Date": amz_date(self._clock.now()),
            "X-Amz-Expires": str(int(ttl)),
            "X-Amz-SignedHeaders": "content-type;host" if content_type is not None else "host",
        }
        params.update(extra or {})
        params["X-Amz-Signature"] = self._digest(method, path, params, content_type)
        return f"{origin}{quote(path)}?{urlencode(params, quote_via=quote)}"

    def verify(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        content_type: str | None,
    ) -> None:
        """Raise :class:`SignatureProblem` unless the request matches its signature."""
        if any(name not in params for name in _AUTH_PARAMS):
            raise SignatureProblem(
                403,
                "AccessDenied",
                "Query-string authentication requires the X-Amz-Algorithm, X-Amz-Date, "
                "X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature parameters.",
            )
        if params["X-Amz-Algorithm"] != ALGORITHM:
            raise SignatureProblem(
                400, "AuthorizationQueryParametersError", "Unsupported X-Amz-Algorithm."
            )
        signed = params["X-Amz-SignedHeaders"].split(";")
        if "content-type" in signed:
            signed_type = content_type
        else:
            if content_type is not None:
                raise SignatureProblem(
                    403,
                    "SignatureDoesNotMatch",
                    "Content-Type was not signed for this URL: send no Content-Type header.",
                )
            signed_type = None
        expected = self._digest(method, path, dict(params), signed_type)
        if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
            raise SignatureProblem(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you "
                "provided (Content-Type must equal the signed content type).",
            )
        try:
            issued = parse_amz_date(params["X-Amz-Date"])
            ttl = int(params["X-Amz-Expires"])
        except ValueError:
            raise SignatureProblem(
                400, "AuthorizationQueryParametersError", "Malformed X-Amz-Date/X-Amz-Expires."
            ) from None
        if self._clock.now() > issued + ttl:
            raise SignatureProblem(403, "AccessDenied", "Request has expired")
