"""The transfer engine behind ``files.upload``, ``files.upload_many`` and ``files.download``.

Private modules, one job each:

* ``_args``      argument checks (bad input fails before any request)
* ``_sources``   what the caller passed -> size, name, content type, an opened reader
* ``_readers``   positional reads: memoryview, descriptor (preadv/sendfile), locked seek+read
* ``_spool``     sources of unknown size -> memory (<= 8 MiB) or a temporary file, hashed
* ``_plan``      the part plan of an upload ticket
* ``_buffers``   pooled read buffers and cancellation-safe worker-thread calls
* ``_body``      streaming request payloads (sendfile, pooled preadv, memory slices)
* ``_storage``   one presigned PUT with per-part retries, S3 error parsing, expiry
* ``_scheduler`` the shared pool of part slots (bounded concurrency across files)
* ``_checksum``  SHA-256 off the event loop
* ``_progress``  throttled progress reporting
* ``_upload``    one file: initiate -> parts -> complete -> verify -> clean/link
* ``_items``     ``upload_many`` items -> validated jobs (directories, client keys)
* ``_bulk``      many files through one scheduler, results through a memory stream
* ``_ratelimit`` the client-side limiter of the documented per-key caps
* ``_download``  presigned GETs to a path or file object, ranged and parallel

Design decisions (figures from ``benchmarks/bench_multipart.py`` and
``benchmarks/bench_read_path.py`` on the 2-core development machine, 1 GiB in 16 MiB parts
to a discarding loopback sink; see the README's Benchmarks section for current numbers):

* **Body writer.** A file we own goes out with ``loop.sendfile`` (kernel copy from the page
  cache, no Python buffers): ~0.3 CPU-s/GiB and ~1.1x ``curl --parallel`` at concurrency 8,
  versus ~0.7 CPU-s/GiB for the pooled-preadv path at similar throughput. TLS connections
  (and loops without native sendfile) fall back to pooled preadv automatically.
* **Read path.** ``os.preadv`` into three reusable 1 MiB buffers per in-flight part, the
  next chunk read in a worker thread while the current one is written. Against aiofiles
  (``seek``+``read`` returning fresh ``bytes``) the raw read speed is the same within noise
  (both are one thread hop and one copy per chunk); preadv wins on memory: no allocation
  per chunk, RSS flat at in-flight parts x 3 MiB, and no seek state to share between parts.
* **Checksum.** One sequential SHA-256 pass over the source in a worker thread, running
  concurrently with the parallel parts (hashlib releases the GIL): the parts need no
  ordering and sendfile stays usable. Feeding the hash in order from the parts would save
  only the pass's own read (~0.1 CPU-s/GiB) and would force the preadv path (+0.4). The
  digest costs ~0.6-0.8 CPU-s/GiB of one core, so with ``checksum=True`` a fast link is
  bounded by SHA-256 speed (~1.1-1.6 GiB/s here); ``checksum=False`` removes that cost.
"""
