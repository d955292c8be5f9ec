"""The outbox remembers which ledger its runs used, so a ledger that vanished or went back in
time is noticed before every order is sent again as if new.

The ledger is what makes "duplicate" and "unchanged" true. Deleted (a clean-up script, a
volume not mounted), it is created anew and empty; restored from an old copy, it forgets what
was delivered since. Either way the next run would resend everything without a word. The
outbox keeps, per ledger path, the ledger's id and the generation (runs counted) it last saw.
"""

from __future__ import annotations

import json
from pathlib import Path

from etl.core.errors import UsageError
from etl.core.files import write_json
from etl.state.ledger import Ledger

WITNESS_NAME = ".ledger-witness.json"
FRESH_FLAG = "--fresh-ledger"


def _read(path: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def check_and_count(ledger: Ledger, outbox: Path, fresh: bool = False) -> None:
    """Refuse a ledger that is not the one this outbox's runs used, or that went back in time
    (unless ``fresh``: then adopt it); then count this run in both."""
    witness = outbox / WITNESS_NAME
    known = _read(witness)
    key = ledger.where
    ledger_id, generation = ledger.identity()
    seen = known.get(key)
    if seen is not None and not fresh:
        afresh = (
            f"If that is what you want (a new account, a reset), run once with {FRESH_FLAG}: "
            "every order is then sent once more, as never delivered"
        )
        if seen.get("ledger_id") != ledger_id:
            raise UsageError(
                f"the ledger {ledger.where} is not the one this outbox's runs used: it was "
                "deleted and created anew, or replaced. Without it, every order delivered "
                "before would be sent again as new. Put the ledger back (from a backup). " + afresh
            )
        if int(str(seen.get("generation", 0))) > generation:
            raise UsageError(
                f"the ledger {ledger.where} went back in time (it has counted {generation} runs; "
                f"this outbox saw it at {seen.get('generation')}): a restored older copy "
                "forgets what was delivered since. Put the newest copy back. " + afresh
            )
    known[key] = {"ledger_id": ledger_id, "generation": ledger.next_generation()}
    write_json(witness, known)
