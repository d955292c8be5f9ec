"""How every `etl` process sets up the libraries under it, before any work.

Memory: a worker process builds a chunk of orders, sends its JSON and frees it, two hundred
times per million lines, and the main process does the same with each chunk it reads. By default
glibc maps and unmaps every block over 128 KB, and Arrow's allocator (mimalloc) returns freed
pages after 10 ms (the tool also asked it to, after each chunk), so each chunk faulted its memory
in again, page by page, zeroed by the kernel: 1.2 s of a worker's 6.5 s. Freed memory is now
kept a while (up to 64 MB of glibc heap; a second for Arrow), for no measurable rise in peak
memory (bench/README.md).

Settings already in the environment win. glibc, mimalloc and OpenBLAS read theirs when a process
starts (or when pyarrow and numpy load), so ``own_process`` runs when the command line's package
(``etl.cli``) is imported, before either, and in each worker process the tool starts; worker
processes inherit the environment, and the running process gets glibc's through ``mallopt``.

A process that imports ``etl`` as a library (a notebook, Airflow) is its user's: importing the
package and calling the Python API change neither its environment nor its allocator, its garbage
collector or its switch interval (DESIGN.md section 10). Only a process that called
``own_process`` lets the pipeline pause the collector and shorten the switch interval.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

MMAP_THRESHOLD = 16 << 20  # blocks this big or bigger are still mapped on their own
TRIM_THRESHOLD = 64 << 20  # free heap kept before glibc gives any back
ENVIRONMENT = {
    "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
    "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD),
    "MIMALLOC_PURGE_DELAY": "1000",  # milliseconds
    # The tool does no linear algebra, yet OpenBLAS's idle threads spun for 0.1 s.
    "OPENBLAS_NUM_THREADS": "1",
}
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


_owned = False


def own_process() -> None:
    """This process is the tool's (the command line, a worker): tune the libraries for it, and
    let the pipeline change process-wide settings while it works (``owns_process``)."""
    global _owned
    _owned = True
    tune_libraries()


def owns_process() -> bool:
    """True in the command line's process and in workers; False where ``etl`` is a library."""
    return _owned


def tune_libraries() -> None:
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to tune
        return
    for option, name in (
        (_M_MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_"),
        (_M_TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_"),
    ):
        value = os.environ[name]
        if value.isdigit():  # else glibc ignores it too
            mallopt(option, int(value))


class _NoPandas(MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == "pandas":
            raise ModuleNotFoundError("pandas is not needed here", name=fullname)
        return None


def skip_pandas_probe() -> None:
    """The first time pyarrow builds an array from Python values it imports pandas, only to ask
    whether the values are a pandas object: 0.3 s of every command and of every worker process.
    The tool never hands pyarrow pandas objects, so the command-line entry point and the workers
    let pyarrow find pandas missing, once; pandas itself stays importable. A process that
    already imported pandas is left alone: nothing to save there."""
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        # Both of pyarrow's probes (its Python shim and its sequence converter) try once and
        # remember the answer.
        pa.array(["probe"])
    finally:
        sys.meta_path.remove(finder)
