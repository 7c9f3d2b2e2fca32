"""The transfer engine behind ``files.upload``, ``files.upload_many`` and ``files.download``.

Private modules, one job each:

* ``_sources``   normalize what the caller passed (size, name, content type, positional reads)
* ``_plan``      the part plan of an upload ticket
* ``_buffers``   pooled read buffers and the worker-thread read helper
* ``_body``      streaming request payloads (memory slices, sendfile, pooled preadv buffers)
* ``_storage``   one presigned PUT/GET with per-part retries and S3 error parsing
* ``_scheduler`` the shared pool of part slots (bounded concurrency)
* ``_checksum``  SHA-256 off the event loop
* ``_progress``  throttled progress reporting
* ``_upload``    one file: initiate -> parts -> complete -> verify
* ``_bulk``      many files through one shared scheduler
* ``_ratelimit`` the client-side limiter of the documented per-key caps
* ``_download``  presigned GETs to a path or file object, ranged and parallel
"""
