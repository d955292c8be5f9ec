"""Scripted faults: which API request gets a 429, a 5xx, a delay or a dropped connection."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

DEFAULT_PATH_PREFIX = "/api/"


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour. ``delay`` comes first, then ``drop`` or ``status``."""

    status: int | None = None
    retry_after: str | None = None  # sent verbatim: seconds or an HTTP-date
    delay: float = 0.0
    drop: bool = False

    def to_json(self) -> dict[str, Any]:
        """The fault as given, for the request log."""
        out: dict[str, Any] = {}
        if self.status is not None:
            out["status"] = self.status
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        if self.delay:
            out["delay"] = self.delay
        if self.drop:
            out["drop"] = True
        return out


def parse_fault(spec: Any) -> Fault:
    """A Fault from ``{"status": 429, "retry_after": "2"}``, ``{"delay": 1.5}``, ``{"drop": true}``.

    Raises ValueError saying what is wrong.
    """
    if not isinstance(spec, dict):
        raise ValueError("each fault must be an object")
    unknown = set(spec) - {"status", "retry_after", "delay", "drop"}
    if unknown:
        raise ValueError(f"unknown fault keys: {sorted(unknown)}")
    status = spec.get("status")
    if status is not None and (
        isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599
    ):
        raise ValueError("status must be an HTTP error status (400-599)")
    retry_after = spec.get("retry_after")
    if retry_after is not None:
        if isinstance(retry_after, bool) or not isinstance(retry_after, str | int | float):
            raise ValueError("retry_after must be seconds or an HTTP-date string")
        retry_after = str(retry_after)
        if status is None:
            raise ValueError("retry_after needs a status")
    delay = spec.get("delay", 0.0)
    if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
        raise ValueError("delay must be a non-negative number of seconds")
    drop = spec.get("drop", False)
    if not isinstance(drop, bool):
        raise ValueError("drop must be true or false")
    if drop and status is not None:
        raise ValueError("a dropped connection has no status")
    if status is None and not drop and not delay:
        raise ValueError("a fault needs a status, a delay or drop")
    return Fault(status=status, retry_after=retry_after, delay=float(delay), drop=drop)


@dataclass
class FaultPlan:
    """Faults for requests under ``path_prefix``: the next N in turn, a seeded rate, or all."""

    faults: tuple[Fault, ...]
    path_prefix: str = DEFAULT_PATH_PREFIX
    remaining: int | None = None  # "next" mode: requests still to fault
    rate: float | None = None  # "rate" mode: probability per request
    seed: int | None = None
    cursor: int = 0
    rng: random.Random | None = None

    def to_json(self) -> dict[str, Any]:
        """The plan as the admin route shows it."""
        mode = "next" if self.remaining is not None else "rate" if self.rate is not None else "all"
        return {
            "faults": [f.to_json() for f in self.faults],
            "path_prefix": self.path_prefix,
            "mode": mode,
            "remaining": self.remaining,
            "rate": self.rate,
            "seed": self.seed,
        }


def parse_plan(spec: Any) -> FaultPlan:
    """A FaultPlan from the ``POST /_sandbox/faults`` body; ValueError saying what is wrong."""
    if not isinstance(spec, dict):
        raise ValueError("the body must be a JSON object")
    unknown = set(spec) - {"faults", "next", "rate", "seed", "path_prefix"}
    if unknown:
        raise ValueError(f"unknown keys: {sorted(unknown)}")
    raw = spec.get("faults")
    if not isinstance(raw, list) or not raw:
        raise ValueError("faults must be a non-empty list")
    faults = tuple(parse_fault(item) for item in raw)
    path_prefix = spec.get("path_prefix", DEFAULT_PATH_PREFIX)
    if not isinstance(path_prefix, str) or not path_prefix.startswith("/"):
        raise ValueError("path_prefix must be a path starting with /")
    count, rate, seed = spec.get("next"), spec.get("rate"), spec.get("seed")
    if count is not None and rate is not None:
        raise ValueError("give either next or rate, not both")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError("next must be a positive integer")
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1
    ):
        raise ValueError("rate must be a number between 0 and 1")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError("seed must be an integer")
    return FaultPlan(
        faults=faults,
        path_prefix=path_prefix,
        remaining=count,
        rate=None if rate is None else float(rate),
        seed=seed,
        rng=None if rate is None else random.Random(seed),
    )


class FaultInjector:
    """Holds the current plan and picks the fault, if any, for each request; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plan: FaultPlan | None = None

    def set(self, plan: FaultPlan) -> None:
        """Replace the current plan."""
        with self._lock:
            self._plan = plan

    def clear(self) -> None:
        """No more faults."""
        with self._lock:
            self._plan = None

    def describe(self) -> dict[str, Any] | None:
        """The current plan as JSON, or None."""
        with self._lock:
            return None if self._plan is None else self._plan.to_json()

    def pick(self, path: str) -> Fault | None:
        """The fault for a request to ``path``; consumes one step of the plan."""
        with self._lock:
            plan = self._plan
            if plan is None or not path.startswith(plan.path_prefix):
                return None
            if plan.rng is not None:
                assert plan.rate is not None
                # Two draws per request whatever the outcome, so a seed fixes the whole sequence.
                hit = plan.rng.random() < plan.rate
                fault = plan.rng.choice(plan.faults)
                return fault if hit else None
            fault = plan.faults[plan.cursor % len(plan.faults)]
            plan.cursor += 1
            if plan.remaining is not None:
                plan.remaining -= 1
                if plan.remaining == 0:
                    self._plan = None
            return fault
