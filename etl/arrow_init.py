"""pyarrow, told once per process that no pandas objects will come its way.

The first time pyarrow builds an array from Python values it imports pandas, only to ask whether
the values are a pandas object: 0.3 s of every `etl` command and of every worker process. The tool
never hands pyarrow pandas objects, so the command-line entry point and the workers let pyarrow
find pandas missing, once; pandas stays importable for anyone else. (A process that already
imported pandas is left alone: nothing to save there.)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

import pyarrow as pa


class _NoPandas(MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == "pandas":
            raise ModuleNotFoundError("pandas is not needed here", name=fullname)
        return None


def skip_pandas_probe() -> None:
    if "pandas" in sys.modules:
        return
    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        # Both of pyarrow's probes (its Python shim and its sequence converter) try once and
        # remember the answer.
        pa.array(["probe"])
    finally:
        sys.meta_path.remove(finder)
