"""Serving every tenant at once: one thread per seller, so that one seller's bad file, refused
credentials or unreachable API never blocks or delays another's (each has its own client, rate
budget, inbox lock, ledger target and outbox)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from etl.settings.tenants import Tenant

T = TypeVar("T")


@dataclass(frozen=True)
class TenantResult(Generic[T]):
    """What ``work`` returned for one tenant, or the exception that ended it (never both)."""

    tenant: Tenant
    value: T | None = None
    error: BaseException | None = None


def for_each_tenant(
    tenants: Sequence[Tenant], work: Callable[[Tenant], T]
) -> list[TenantResult[T]]:
    """``work(tenant)`` for every tenant, all at once; the results in the tenants' order.

    An exception ends its own tenant only: it is returned for the caller to report."""
    results: list[TenantResult[T] | None] = [None] * len(tenants)

    def serve(index: int, tenant: Tenant) -> None:
        try:
            results[index] = TenantResult(tenant, value=work(tenant))
        except BaseException as error:  # reported by the caller, for this tenant alone
            results[index] = TenantResult(tenant, error=error)

    threads = [
        threading.Thread(
            target=serve, args=(index, tenant), name=f"tenant-{tenant.name}", daemon=True
        )
        for index, tenant in enumerate(tenants)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [result for result in results if result is not None]
