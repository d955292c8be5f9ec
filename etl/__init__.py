"""File-drop order sync for Mirakl Connect; ``etl.check``, ``etl.sync``... are its Python API.

Importing the package changes nothing in the process (DESIGN.md section 10), and loads nothing
heavy: the API (``etl/api.py``, with pyarrow and the pipeline) is imported on first use, so
``etl --help`` and ``import etl`` stay quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from etl.core.version import __version__

__all__ = [
    "CheckResult",
    "EtlError",
    "ProblemsFound",
    "Settings",
    "SyncResult",
    "UnreadableFile",
    "UsageError",
    "__version__",
    "check",
    "run_inbox",
    "send",
    "sync",
]

if TYPE_CHECKING:
    from etl.api import (
        CheckResult,
        EtlError,
        ProblemsFound,
        Settings,
        SyncResult,
        UnreadableFile,
        UsageError,
        check,
        run_inbox,
        send,
        sync,
    )


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from etl import api

        return getattr(api, name)
    raise AttributeError(f"module 'etl' has no attribute {name!r}")
