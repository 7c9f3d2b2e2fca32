"""Small single-PUT sources: the whole body and its SHA-256 in at most one thread hop.

For a file of a few dozen KiB the streaming machinery costs more than the bytes: a
``digest_of`` pass in a worker thread, then ``loop.sendfile`` (transport flush, reading
paused, a separate headers write) or pooled preadv buffers. Below :data:`SMALL_BODY` the
body is read once into memory (one ``pread`` + hash in one worker call for descriptors;
nothing to read and an inline hash for in-memory sources) and sent as a memory body whose
bytes every retry re-sends. It is loaded inside the part's slot, so memory stays bounded
by ``slots x SMALL_BODY``.
"""

from __future__ import annotations

import hashlib

from ._buffers import call_in_thread, pread_into
from ._checksum import INLINE_HASH
from ._sources import Reader

#: Largest single-PUT body loaded whole into memory. Equal to the inline-hash limit: an
#: in-memory source this small is hashed on the loop (~0.15 ms at 256 KiB, OpenSSL
#: ~1.6 GiB/s), cheaper than a thread hop and well below the 1 MiB read chunk, so one
#: read covers it. The copy sendfile avoids costs ~0.1 ms here; the per-file fixed costs
#: it replaces (a hashing thread hop, the sendfile handshake) cost more. The in-flight
#: memory (slots x 256 KiB) stays below the pooled path's 3 x 1 MiB buffers per slot.
SMALL_BODY = INLINE_HASH


def _shrank(n: int, size: int) -> ValueError:
    return ValueError(f"the file shrank while uploading ({n} of {size} bytes)")


def _read_fd(fd: int, base: int, size: int, hash_it: bool) -> tuple[bytearray, str | None]:
    buf = bytearray(size)
    n = pread_into(fd, memoryview(buf), base)
    if n < size:
        raise _shrank(n, size)
    return buf, hashlib.sha256(buf).hexdigest() if hash_it else None


async def load_small(reader: Reader, *, hash_it: bool) -> tuple[memoryview, str | None]:
    """The whole content of a positional ``reader`` (<= :data:`SMALL_BODY` bytes) and its
    SHA-256 hex digest (None unless ``hash_it``); raises ValueError when it is short."""
    size = reader.size
    known = reader.sha256
    if reader.view is not None:
        view = reader.view[:size]
        sha = known or (hashlib.sha256(view).hexdigest() if hash_it else None)
        return view, sha
    if reader.fd is not None:
        # A cancellation waits for the (short) call, so the descriptor outlives it.
        buf, sha = await call_in_thread(
            _read_fd, reader.fd, reader.base, size, hash_it and not known
        )
        return memoryview(buf), known or sha
    out = memoryview(bytearray(size))
    n = await reader.readinto(0, out) if size else 0
    if n < size:
        raise _shrank(n, size)
    return out, known or (hashlib.sha256(out).hexdigest() if hash_it else None)
