"""Named places where the crash tests can kill the process (``ETL_FAILPOINTS=name=N,...``).

Unset (always, outside the crash campaign) every ``reach`` is one dictionary lookup. Set, the
N-th time the process reaches ``name`` it sends itself SIGKILL: no cleanup, no flush, exactly
what a power cut or an OOM kill leaves behind.
"""

from __future__ import annotations

import os
import signal

_COUNTDOWN: dict[str, int] = {}
for _entry in filter(None, os.environ.get("ETL_FAILPOINTS", "").split(",")):
    _name, _, _count = _entry.partition("=")
    _COUNTDOWN[_name.strip()] = int(_count or "1")


def reach(name: str) -> None:
    """Die here if the crash campaign asked for it."""
    if name not in _COUNTDOWN:
        return
    _COUNTDOWN[name] -= 1
    if _COUNTDOWN[name] == 0:
        os.kill(os.getpid(), signal.SIGKILL)
