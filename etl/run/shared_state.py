"""What a worker needs when many share one state database: its clients paced by the shared
budget of their credential. Without a state URL, each client paces itself, as before."""

from __future__ import annotations

from collections.abc import Callable

from etl.deliver.client import ClientMeter, ConnectClient, Pacing
from etl.settings.config import Settings
from etl.state.budget import SharedBudget


class ClientFactory:
    """Makes the run's clients; with a shared state, all of them (and every other worker's
    for the same tenant) take turns from one budget in the database."""

    def __init__(self, settings: Settings, meter: ClientMeter | None = None) -> None:
        self.settings = settings
        self.meter = meter
        self._budget: SharedBudget | None = None

    def __call__(self) -> ConnectClient:
        if not self.settings.shared_state:
            return ConnectClient(self.settings, meter=self.meter)
        if self._budget is None:
            self._budget = SharedBudget(self.settings.state_url.reveal(), self.settings.state_key)
        budget = self._budget

        def pacing(operation: str, rate: float, sleep: Callable[[float], None]) -> Pacing:
            return budget.pacer(operation, rate, sleep)

        return ConnectClient(self.settings, meter=self.meter, pacing=pacing)

    def close(self) -> None:
        if self._budget is not None:
            self._budget.close()
            self._budget = None
