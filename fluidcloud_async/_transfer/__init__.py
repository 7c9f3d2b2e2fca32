"""The transfer engine behind ``files.upload``, ``files.upload_many`` and ``files.download``.

The engine never sees the client: ``Files`` hands it an ``Engine`` (``_engine``) holding
the API calls it makes and the storage routes, and then orchestrates what follows an
upload itself (wait for the scan, mint the link). Private modules, by responsibility:

* ``_engine``    what the engine is handed: ``ApiCalls`` (initiate, complete, get,
                 download URL, listing pages), ``StorageRoutes`` (threads for https,
                 aiohttp for http) and the storage retry policy
* ``_sources``   what the caller passed -> a source class (path, memory, file object,
                 aiofiles file, stream) -> an opened reader: memoryview, descriptor
                 (preadv/sendfile), locked seek+read or one sequential pass; sources of
                 unknown size spooled to memory (<= 8 MiB) or a temporary file, hashed
* ``_io``        how bytes move: pooled buffers and worker-thread reads, request bodies
                 (sendfile, pooled preadv, memory slices), the SHA-256 pass, progress
* ``_upload``    one file: the part plan, the shared pool of part slots, small single
                 PUTs, initiate -> parts -> complete -> verify
* ``_storage``   the storage transport interface (one PUT, one GET attempt into a sink),
                 its aiohttp implementation, S3 error parsing, expiry; retries: ``_retry``
* ``_threaded``  the storage transport of https URLs: part PUTs and ranged GETs in worker
                 threads (``FLUIDCLOUD_STORAGE_TRANSPORT``), over ``_connpool``: the
                 keep-alive ``http.client`` pool (connect on the loop, TLS in the thread)
* ``_bulk``      ``upload_many``: items -> checked jobs, directory walks (symlinks not
                 followed, or only inside the root; walked files opened ``O_NOFOLLOW``),
                 many files through one slot pool, results through a memory stream
* ``_existing``  ``skip_existing``: the destination listed once, local SHA-256s (and their
                 SQLite cache) compared with the records under the batch's client keys
* ``_journal``   resumable uploads: the atomic 0600 journal of a multipart upload
* ``_download``  presigned GETs to a path or file object, ranged and parallel: the retry
                 loop, resume, URL refresh and every check of the body (``_Range``)

Outside the engine: argument checks in ``_validate_args``, the retry policy in ``_retry``,
the per-key rate limiter (a hook around every API attempt) in ``_ratelimit``.

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
  transports in the same runs). asyncio's SSL transport encrypts every record on the
  caller's loop thread through memory BIOs (profile: EVP_EncryptUpdate, BIO_read,
  BUF_MEM_grow_clean under StreamWriter.write), so one core did all TLS and the caller's
  loop lagged. ``_threaded`` sends each part from an anyio worker thread over a blocking
  socket (SSL_write releases the GIL), reading it with preadv into one pooled 1 MiB
  buffer. Medians of 3 of the 21:30 run (load 0.48 -> 2.32, the quietest); in brackets
  the 21:04 and 21:15 runs (load 1.5-2.8, other engineers' tests running). MiB/s, x the
  same-run reference (curl --parallel for checksum off, curl || openssl sha256 for the
  default), client CPU-s/GiB, caller's loop-lag p99::

                        aiohttp TLS (before)               threads (now: the https default)
    checksum off        1056 0.79x [0.68 0.81] 1.16 15 ms  1322 1.01x [0.85 1.00] 0.70 6.4 ms
    checksum on (dflt)   651 0.82x [0.76 0.70] 2.12 23 ms   779 0.93x [0.97 0.74] 1.71 6.3 ms
    references          curl 1307 MiB/s 0.75 CPU-s/GiB; curl || sha256 823, 1.73

  CPU-s/GiB by thread (threads, checksum on): workers (TLS + preadv) 0.57, hashing
  (asyncio executor) 1.01, event loop 0.07; checksum off: workers 0.57, loop 0.06. The
  aiohttp path: loop 0.86-0.91, executor 0.20 (preadv) or 1.22 (+ hashing). The loop's CPU
  fell ~14x, peak RSS growth from 39-47 to 11-15 MiB; TLS costs 0.57 CPU-s/GiB spread over
  any number of cores, where curl --parallel spends 0.75 on one (an 8-core box should run
  8 parts' TLS in parallel: not measurable here). Measured on the way: with a socket
  timeout OpenSSL returns WANT_WRITE at every full send buffer and the thread re-takes the
  GIL for a poll() (default 0.74x -> 0.97x c||sha in successive runs once sockets block
  while the body is sent; the stall clock moved to the loop's watcher); 4 MiB chunks were
  no better than 1 MiB. Missed: default >= 1.0x curl || sha256 (0.93; 0.74-0.97 under
  load): on 2 cores the upload is CPU-bound and our hash thread costs 1.01-1.14
  CPU-s/GiB (profile: SHA256_Update 83 %, preadv 9 %), as openssl dgst does (1.0 alone;
  hashlib at 128 KiB-4 MiB reads is the same 1.0), plus the loop and nginx; loop lag p99
  <= 5 ms (6.3-6.4 quiet, 11-23 loaded): an *idle separate process's* 5 ms timer measured
  p99 3.3-12 ms during loaded uploads (the CPU is oversubscribed by nginx and 8
  encrypting threads), and in-process the loop also waits for the GIL between the
  workers' chunks (pthread_cond_timedwait in its profile; renicing the workers did not
  help); GC was ruled out (gc callbacks: 5 gen-0 collections per GiB after warm-up).
  Plain http keeps aiohttp + sendfile (threads there, 2026-12-01 02:40, 5 interleaved:
  1836 vs 2532 MiB/s checksum off, 781 vs 863 on: the loopback sink is the limit and
  ``write()`` streams cost the client 0.49 CPU-s/GiB against sendfile's 0.17).
  ``http.client`` rather than urllib3: the stdlib has what is needed (CONNECT tunnel with
  headers, the raw socket for sendall, no re-quoting of the signed target) without a new
  dependency; urllib3 was not measured. Downloads: see the next bullet. Plain http is unchanged:
  same sink, interleaved, 5 each, code before vs after this change: 2388 vs 2375 MiB/s,
  0.13 vs 0.14 CPU-s/GiB (``--only throughput`` at 21:18, load 1.0: c=8 checksum off
  0.84x a curl that now runs 2.5-2.9 GiB/s here, against 1.7 GiB/s on 2026-11-23).
* **Downloads over TLS: worker threads too** (2026-12-01 00:28, ``FLUIDCLOUD_BENCH_TLS_ROWS
  =download python -m benchmarks.run --only tls --reps 5``: nginx serving the 1 GiB file
  from a static location over TLS 1.3 on loopback, 16 MiB ranges, 4 in flight, written to
  /dev/shm, both transports in the same run, load 0.58 -> 1.09; in brackets the 00:22 run
  of both halves, load 0.25 -> 2.13). ``ThreadedStorage.get`` reads each range in an anyio
  worker thread from a pooled ``http.client`` connection (``SSL_read`` releases the GIL)
  and writes it with ``os.pwritev`` from that thread; the aiohttp path decrypts on the
  caller's loop. Medians of 5: MiB/s, x curl ``--parallel`` of the same ranges, client
  CPU-s/GiB, caller's loop-lag p99, RSS growth::

                        aiohttp TLS (before)               threads (now: the https default)
    verify off           705 0.66x [0.60] 1.66 5.2 ms 13 MiB  1111 1.02x [0.95] 1.07 7.4 ms 5.5 MiB
    verify on (default)  415 0.39x [0.35] 2.69 4.0 ms 13 MiB   505 0.47x [0.44] 2.14 5.0 ms 9.5 MiB
    references          curl --parallel ranges 1064 MiB/s 0.94 CPU-s/GiB; one curl GET 1184

  Threads won on throughput (1.58x [1.56x]) and CPU (-36 % [-37 %]; the loop's own share
  fell from 1.29 to 0.05 CPU-s/GiB, the workers spend 0.98) and lost on loop lag p99
  (+2.2 ms [+4.0]): on 2 cores nginx and four decrypting threads oversubscribe the CPU and
  the loop waits to be scheduled and for the GIL, which each worker takes back once per
  16 KiB TLS record (``SSL_read`` returns one record); the aiohttp loop is never off the
  CPU. GC was ruled out (gc callbacks: no gen-2 collection, gen-1 <= 1 ms), and so was the
  GIL's switch interval (raw test: 1 ms instead of 5, the same lag). Bodies with a
  Content-Length are read with ``recv_into`` straight from the socket, not through
  http.client's reader (raw 4-thread test: -10 % CPU, p99 5.6 vs 6.7 ms); a chunked body
  keeps http.client's reader. urllib3 was not measured (as for PUTs: the stdlib has
  what is needed, without a new dependency). Missed: loop lag p99 <= 5 ms with threads
  (4.8-8.6 per run). A drop loses the unwritten partial MiB on both paths (resume from
  the last whole chunk written), and a file object still gets its chunks on the loop.
* **A verified download hashes while it runs** (2026-12-01 02:27, interleaved A/B of the
  code before (eb190c2, a worktree) and after, ``FLUIDCLOUD_BENCH_TLS_ROWS=download
  --only tls --reps 2`` twice each, n = 4, medians of same-run ratios). The SHA-256 pass
  used to start after the last byte (1.06 CPU-s/GiB on one thread, the transfer idle).
  ``_download._PrefixDigest`` follows the ranges instead: each range is written from its
  start, so every byte before the first unfinished range is final; that prefix is read
  back from the page cache and hashed in a worker thread as it grows (4 MiB at least per
  pass). MiB/s (x curl ``--parallel`` ranges), CPU-s/GiB::

                        hash after the last byte    hash the growing prefix
    threads, verify on   487 (0.43x) 2.25            561 (0.53x) 2.39
    aiohttp, verify on   378 (0.34x) 2.94            467 (0.44x) 3.01

  (603-616 MiB/s in the 02:31 runs). The CPU is the same (no second read of the disk:
  the page cache; ~0.1 CPU-s/GiB of copy back), so on 2 cores the overlap is capped by
  the CPU: 2.2 client CPU-s/GiB plus nginx's encryption fill both cores at ~650 MiB/s.
  Hashing in the range threads from their own buffers would save the copy but tie the
  ranges' order to the hash; not done.
* **Scheduling the workers as SCHED_BATCH did not lower the loop lag** (02:31, interleaved,
  the same code with and without ``sched_setscheduler(0, SCHED_BATCH)`` around each
  worker's job, ``--only tls --reps 2`` twice each): loop lag p99 with threads, checksum
  off 7.9 -> 9.2 ms, default 9.2 -> 10.2, download 9.3 -> 8.7 (MiB/s within 6 %), as
  renicing did not before: not adopted. Nor a longer EEVDF slice for the workers
  (``sched_setattr`` runtime 20 or 100 ms, raw test: 8 threads hashing beside a loop
  timing a 5 ms sleep, interleaved x 3): the loop's p99 went from 3.9-4.1 ms to 5.0-20 ms.
* **Not adopted.** ``send()`` from an ``mmap`` of the file beat sendfile on this kernel's
  loopback in a raw test, but a file truncated during the upload would kill the process
  with SIGBUS; sendfile and preadv report a short read instead.
"""
