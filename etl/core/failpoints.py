"""Named places where the crash tests can kill the process (``ETL_FAILPOINTS=name=N,...``).

Unset (always, outside the crash campaign) every ``reach`` is one dictionary lookup. Set, the
N-th time the process reaches ``name`` it sends itself SIGKILL: no cleanup, no flush, exactly
what a power cut or an OOM kill leaves behind. ``name=raise:N`` raises ``FailpointError``
there instead: a bug in the middle of one file, for the tests that check one file's failure
never stops the others.
"""

from __future__ import annotations

import os
import signal

_COUNTDOWN: dict[str, int] = {}
_RAISING: set[str] = set()


class FailpointError(RuntimeError):
    """Raised where a test asked for it: stands for any bug in the pipeline."""


def arm(name: str, count: int = 1, action: str = "kill") -> None:
    """Make the ``count``-th ``reach(name)`` from now kill the process or raise."""
    _COUNTDOWN[name] = count
    if action == "raise":
        _RAISING.add(name)
    else:
        _RAISING.discard(name)


def disarm() -> None:
    _COUNTDOWN.clear()
    _RAISING.clear()


for _entry in filter(None, os.environ.get("ETL_FAILPOINTS", "").split(",")):
    _name, _, _value = _entry.partition("=")  # name=N, name=raise or name=raise:N
    _action, _, _count = _value.partition(":") if _value.startswith("raise") else ("", "", _value)
    arm(_name.strip(), int(_count or "1"), _action or "kill")


def reach(name: str) -> None:
    """Die (or raise) here if a test asked for it."""
    if name not in _COUNTDOWN:
        return
    _COUNTDOWN[name] -= 1
    if _COUNTDOWN[name] != 0:
        return
    del _COUNTDOWN[name]
    if name in _RAISING:
        raise FailpointError(f"failpoint {name}")
    os.kill(os.getpid(), signal.SIGKILL)
