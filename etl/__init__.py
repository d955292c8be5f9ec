"""File-drop order sync for Mirakl Connect; ``etl.check``, ``etl.sync``... are its Python API.

Importing the package changes nothing in the process (DESIGN.md section 10), and loads nothing
heavy: the API (``etl/api.py``, with pyarrow and the pipeline) is imported on first use, so
``etl --help`` and ``import etl`` stay quick.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

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


class _Package(ModuleType):
    """``etl.send`` is the API's function, though ``etl/send/`` is also the name of the stage
    that talks to Connect: the import system binds a subpackage to its parent's attribute of
    the same name when it first loads it, which would turn ``etl.send(...)`` into a module.
    The stage is always imported by its full name (``from etl.send.client import ...``),
    which goes through ``sys.modules``, never through this attribute."""

    @property
    def send(self) -> Any:
        from etl.api import send

        return send

    @send.setter
    def send(self, value: Any) -> None:
        """The import system binding the subpackage: its name is the function's."""


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from etl import api

        return getattr(api, name)
    raise AttributeError(f"module 'etl' has no attribute {name!r}")
