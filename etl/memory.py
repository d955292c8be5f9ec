"""How the memory allocators under the tool give memory back: less eagerly than by default.

A worker process builds a chunk of orders, sends its JSON and frees it, two hundred times per
million lines, and the main process does the same with each chunk it reads. By default glibc maps
and unmaps every block over 128 KB, and Arrow's allocator (mimalloc) returns freed pages after
10 ms, so each chunk faulted its memory in again, page by page, zeroed by the kernel: 1.2 s of a
worker's 6.5 s. Keeping freed memory for a while (at most 64 MB of glibc heap, a second for
Arrow) costs no measurable peak memory (bench/README.md).

Settings already in the environment win. glibc and mimalloc read theirs when a process starts (or
when pyarrow is loaded), so this runs when the ``etl`` package is imported, before pyarrow; the
worker processes inherit the environment, and the running process gets glibc's through mallopt.
"""

from __future__ import annotations

import ctypes
import os
import sys

MMAP_THRESHOLD = 16 << 20  # blocks this big or bigger are still mapped on their own
TRIM_THRESHOLD = 64 << 20  # free heap kept before glibc gives any back
ENVIRONMENT = {
    "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
    "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD),
    "MIMALLOC_PURGE_DELAY": "1000",  # milliseconds
}
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> None:
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to tune
        return
    mallopt(_M_MMAP_THRESHOLD, int(os.environ["MALLOC_MMAP_THRESHOLD_"]))
    mallopt(_M_TRIM_THRESHOLD, int(os.environ["MALLOC_TRIM_THRESHOLD_"]))
