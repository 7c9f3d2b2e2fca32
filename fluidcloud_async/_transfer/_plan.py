"""The part plan of an upload ticket: which byte range goes to which presigned URL."""

from __future__ import annotations

from dataclasses import dataclass

from .._exceptions import ProtocolError
from .._models import UploadTicket


@dataclass(frozen=True, slots=True)
class Part:
    """One PUT: bytes ``[offset, offset + length)`` of the source to ``url``.

    ``number`` is the S3 part number (1-based); a single-PUT upload has one part numbered 0.
    """

    number: int
    offset: int
    length: int
    url: str

    def __repr__(self) -> str:  # the URL is a write credential
        return f"Part(number={self.number}, offset={self.offset}, length={self.length})"


def part_count(size: int, part_size: int) -> int:
    """Parts of exactly ``part_size`` bytes (the last one smaller); an empty file has one."""
    return max(1, -(-size // part_size))


def plan(ticket: UploadTicket, size: int) -> list[Part]:
    """The parts to PUT for ``ticket``; raises :class:`ProtocolError` on a ticket that
    contradicts itself (missing URLs, wrong part count or numbering)."""
    if not ticket.is_multipart:
        if not ticket.upload_url:
            raise _bad("a single-mode upload ticket without upload_url")
        return [Part(0, 0, size, ticket.upload_url)]
    if not ticket.upload_id or not ticket.part_size or ticket.part_size <= 0:
        raise _bad("a multipart upload ticket without upload_id or part_size")
    urls = sorted(ticket.part_urls or [], key=lambda p: p.part_number)
    expected = part_count(size, ticket.part_size)
    if len(urls) != expected:
        raise _bad(
            f"the ticket has {len(urls)} part URLs but {size} bytes at part_size "
            f"{ticket.part_size} need {expected}"
        )
    parts: list[Part] = []
    for index, entry in enumerate(urls, start=1):
        if entry.part_number != index:
            raise _bad(f"the ticket's part numbers are not 1..{expected}")
        offset = (index - 1) * ticket.part_size
        parts.append(Part(index, offset, min(ticket.part_size, size - offset), entry.url))
    return parts


def _bad(message: str) -> ProtocolError:
    return ProtocolError(message, method="POST", url="/uploads/initiate")
