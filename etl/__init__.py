"""File-drop order sync for Mirakl Connect; ``etl.check``, ``etl.sync``... are its Python API.

Importing the package changes nothing in the process (DESIGN.md section 10), and loads nothing
heavy: the API (``etl/api.py``, with pyarrow and the pipeline) is imported on first use, so
``etl --help`` and ``import etl`` stay quick.
"""

from __future__ import annotations

import importlib
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


class _Send:
    """``etl.send``: the API's function (``etl.api.send``), standing where the import system
    binds the stage of the same name (``etl/send/``) when it loads it. Called, it sends; its
    attributes are the stage's (``etl.send.client``), so that every way of importing the stage
    (``import etl.send.client as client`` too) still works."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from etl.api import send

        return send(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name == "__wrapped__":  # inspect.signature and help() show the function's
            from etl.api import send

            return send
        return getattr(importlib.import_module("etl.send"), name)

    def __repr__(self) -> str:
        return "<function etl.send(result, settings, *, force=False, create=False)>"


class _Package(ModuleType):
    """The ``etl`` package, whose ``send`` attribute stays the API's (``_Send``)."""

    @property
    def send(self) -> Any:
        return _SEND

    @send.setter
    def send(self, value: Any) -> None:
        """The import system binding the subpackage: reached through ``_SEND`` instead."""


_SEND = _Send()
sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from etl import api

        return getattr(api, name)
    raise AttributeError(f"module 'etl' has no attribute {name!r}")
