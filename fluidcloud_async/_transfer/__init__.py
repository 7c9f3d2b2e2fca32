"""The transfer engine behind ``files.upload``, ``files.upload_many`` and ``files.download``.

Private modules, one job each:

* ``_args``      argument checks (bad input fails before any request)
* ``_sources``   what the caller passed -> size, name, content type, an opened reader
* ``_readers``   positional reads: memoryview, descriptor (preadv/sendfile), locked seek+read
* ``_spool``     sources of unknown size -> memory (<= 8 MiB) or a temporary file, hashed
* ``_plan``      the part plan of an upload ticket
* ``_buffers``   pooled read buffers and cancellation-safe worker-thread calls
* ``_body``      streaming request payloads (sendfile, pooled preadv, memory slices)
* ``_small``     small single PUTs: whole body + SHA-256 in one step, sent from memory
* ``_storage``   the storage transport interface (send one PUT), its aiohttp implementation,
                 the one per-part retry loop, S3 error parsing, expiry
* ``_threaded``  the storage transport of https URLs: part PUTs in worker threads over a
                 keep-alive ``http.client`` pool (``FLUIDCLOUD_STORAGE_TRANSPORT``)
* ``_scheduler`` the shared pool of part slots (bounded concurrency across files)
* ``_checksum``  SHA-256 off the event loop
* ``_progress``  throttled progress reporting
* ``_upload``    one file: initiate -> parts -> complete -> verify -> clean/link
* ``_items``     ``upload_many`` items -> validated jobs (directories, client keys)
* ``_tree``      directory walks: symlinks not followed (or only inside the root), every
                 skipped entry with its reason, walked files opened with ``O_NOFOLLOW``
* ``_bulk``      many files through one scheduler, results through a memory stream
* ``_existing``  ``skip_existing``: the destination listed once, local SHA-256s (and their
                 SQLite cache) compared with the records under the batch's client keys
* ``_ratelimit`` the client-side limiter of the documented per-key caps
* ``_download``  presigned GETs to a path or file object, ranged and parallel

Design decisions, measured with ``benchmarks/bench_multipart.py`` (1 GiB in 16 MiB parts
to a discarding loopback sink in its own process, medians of 5) and
``benchmarks/bench_read_path.py`` on the 2-core development machine:

* **Body writer.** A file we own goes out with ``loop.sendfile`` (kernel copy from the page
  cache, no Python buffers): 0.3 CPU-s/GiB, RSS +1.5 MiB, 0.94-1.17x ``curl --parallel``
  at concurrency 8 in the same run (2.2x the one-part-at-a-time baseline). The pooled
  preadv path reaches about the same MiB/s at 0.7 CPU-s/GiB and RSS +32 MiB; TLS
  connections (and loops without native sendfile) fall back to it automatically.
* **Read path.** ``os.preadv`` into reusable 1 MiB buffers (three per in-flight part), the
  next chunk read in a worker thread while the current one is written. Against aiofiles
  (``seek`` + ``read`` returning fresh ``bytes``): raw reads +6 % MiB/s and -7 % CPU; whole
  uploads the same MiB/s at -17 % CPU (0.72 vs 0.87 s/GiB) and lower RSS (32 vs 34-48 MiB),
  with no allocation per chunk and no seek state shared between parts.
* **Checksum.** One sequential SHA-256 pass over the source in a worker thread, running
  concurrently with the parallel parts (hashlib releases the GIL): the parts need no
  ordering and sendfile stays usable. Feeding the hash in order from the parts would save
  only the pass's own read (~0.1 CPU-s/GiB) and would force the preadv path (+0.4). The
  digest costs ~0.7 CPU-s/GiB of one core (OpenSSL SHA-256 runs ~1.6 GiB/s here), so with
  ``checksum=True`` uploads run at ~0.5x curl on this 2-core box, where the sink takes the
  other core; ``checksum=False`` removes that cost (the size is still verified).
* **Small files.** A single PUT of at most ``SMALL_BODY`` (256 KiB) is read whole and
  hashed in one worker-thread call (inline for in-memory sources), inside its part slot,
  and sent as a memory body that retries re-send: no separate hashing hop, no sendfile
  handshake, no pooled buffers. Bulk ingest of 2000 x 64 KiB files (``benchmarks.run
  --only bulk``) spent ~2x the naive gather's client CPU on those fixed per-file costs.
  Memory stays bounded by slots x 256 KiB.
* **Source identity, not a second read.** The parts (sendfile included) and the hash pass
  read the same descriptor at different times, so neither sees what the other read. What
  ties them to one version of the file is its ``fstat`` identity (size, mtime_ns,
  ctime_ns, inode, device) taken at open and compared again after the last part and the
  hash pass, before ``/complete`` (``SourceChangedError``). Re-reading to compare would
  double the read cost and still race a writer; the identity check costs two syscalls.
* **Uploads over TLS: worker threads, not the loop** (2026-11-30, ``benchmarks.run --only
  tls --reps 3``: 1 GiB, 16 MiB parts, 8 in flight, nginx TLS 1.3 sink on loopback, both
  transports in the same runs, other engineers' tests loading the 2 cores). asyncio's SSL
  transport encrypts every record on the caller's loop thread through memory BIOs
  (profile: EVP_EncryptUpdate, BIO_read, BUF_MEM_grow_clean under StreamWriter.write), so
  one core did all TLS and the caller's loop lagged. ``_threaded`` sends each part from an
  anyio worker thread over a blocking socket (SSL_write releases the GIL), reading it with
  preadv into one pooled 1 MiB buffer. Medians of 3 of the 21:15 run (load 0.95 -> 2.84;
  in brackets the 21:04 run, load 1.5 -> 2.5); MiB/s, x the same-run reference (curl
  --parallel for checksum off, curl || openssl sha256 for the default), client
  CPU-s/GiB, caller's loop-lag p99::

                          aiohttp TLS (before)            threads (now: the https default)
    checksum off          772 0.81x [0.68] 1.46 27 ms     742 1.00x [0.85] 0.87 11 [14] ms
    checksum on (dflt)    493 0.70x [0.76] 2.57 38 ms     543 0.74x [0.97] 2.11 23 [13] ms
    references            curl 806 MiB/s 0.84 CPU-s/GiB; curl || sha256 712, 1.81

  CPU-s/GiB by thread (threads, checksum on): workers (TLS + preadv) 0.73, hashing
  (asyncio executor) 1.14, event loop 0.12; checksum off: workers 0.66, loop 0.13. The
  aiohttp path: loop 1.13-1.16, executor 0.26 (preadv) or 1.40 (+ hashing). The loop's
  CPU fell ~9x and peak RSS growth from ~42 to 11-15 MiB; TLS costs ~0.7 CPU-s/GiB spread
  over any number of cores, where curl --parallel spends 0.84 on one. Measured on the
  way: with a socket timeout OpenSSL returns WANT_WRITE at every full send buffer and the
  thread re-takes the GIL for a poll() (default 0.74x -> 0.97x c||sha in successive runs
  once sockets block while the body is sent; the stall clock moved to the loop's
  watcher); 4 MiB chunks were no better than 1 MiB. Missed here: default >= 1.0x curl ||
  sha256 (0.74-0.97): on 2 cores the upload is CPU-bound, and our hash thread costs 1.14
  CPU-s/GiB (SHA256_Update plus the preadv copy) against openssl dgst's ~1.0; loop lag
  p99 <= 5 ms (11-23 ms): an *idle separate process's* 5 ms timer measured p99 3.3-12 ms
  during the same uploads (the CPU is oversubscribed by nginx and 8 encrypting threads),
  and in-process the loop also waits for the GIL between the workers' chunks (renicing
  the workers did not help); GC was ruled out (gc callbacks: 5 gen-0 collections per GiB
  after warm-up). Plain http keeps aiohttp + sendfile. ``http.client`` rather than
  urllib3: the stdlib has what is needed (CONNECT tunnel with headers, the raw socket for
  sendall, no re-quoting of the signed target) without a new dependency; urllib3 was not
  measured. Downloads (ranged GETs) still go through aiohttp. Plain http is unchanged:
  same sink, interleaved, 5 each, code before vs after this change: 2388 vs 2375 MiB/s,
  0.13 vs 0.14 CPU-s/GiB (``--only throughput`` at 21:18, load 1.0: c=8 checksum off
  0.84x a curl that now runs 2.5-2.9 GiB/s here, against 1.7 GiB/s on 2026-11-23).
* **Not adopted.** ``send()`` from an ``mmap`` of the file beat sendfile on this kernel's
  loopback in a raw test, but a file truncated during the upload would kill the process
  with SIGBUS; sendfile and preadv report a short read instead.
"""
