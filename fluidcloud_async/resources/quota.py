"""``fc.quota``: the tenant's usage and limits."""

from __future__ import annotations

from .._models import Quota
from .._validation import validate_response
from ._base import Resource


class QuotaResource(Resource):
    """Read storage and share-link usage (scope ``quota:read``)."""

    async def usage(self) -> Quota:
        """Current usage against the plan's limits.

        Returns:
            Bytes and share links used and allowed; a limit of `-1` means unlimited
                (see [`Quota.bytes_remaining`][fluidcloud_async.Quota.bytes_remaining]).
        """
        data = await self._transport.request("GET", "/quota")
        return validate_response(Quota, data)
