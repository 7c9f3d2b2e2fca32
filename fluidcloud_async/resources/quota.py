"""``fc.quota``: the tenant's usage and limits."""

from __future__ import annotations

from .._models import Quota
from .._validation import validate_response
from ._base import Resource


class QuotaResource(Resource):
    """Read storage and share-link usage (scope ``quota:read``)."""

    async def usage(self) -> Quota:
        """Current usage against the plan's limits (``-1`` = unlimited)."""
        data = await self._transport.request("GET", "/quota")
        return validate_response(Quota, data)
