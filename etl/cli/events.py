"""`etl events`: read the order action events waiting on the queue into pending files."""

from __future__ import annotations

import sys

from etl.core.errors import UsageError
from etl.settings.config import Settings

EXIT_UNREACHABLE = 3


def events_command(settings: Settings, wait_seconds: int | None, quiet: bool) -> int:
    """Exit 0 read (or nothing waiting); 1 some messages held no event (kept, explained);
    2 no or wrong [events]; 3 the queue cannot be reached (nothing deleted: try later)."""
    from etl.operations.queues import QueueUnavailable, SqsQueue
    from etl.run.events import consume_events

    if settings.events is None:
        raise UsageError(
            "no [events] section in the config file: set [events] queue_url (README, "
            "etl events) to read Connect's order action events"
        )
    wait = settings.events.wait_seconds if wait_seconds is None else wait_seconds
    if not 0 <= wait <= 20:
        raise UsageError(f"--wait must be a whole number of seconds from 0 to 20 (got {wait})")
    queue = SqsQueue(settings.events)
    try:
        consumed = consume_events(settings, queue, wait_seconds=wait)
    except QueueUnavailable as error:
        print(f"etl events: {error}; nothing was deleted from it: try again later", file=sys.stderr)
        return EXIT_UNREACHABLE
    finally:
        queue.close()
    if not quiet or consumed.unreadable:
        print(
            f"events: {consumed.received} message(s) from {queue.name}: {consumed.new} new "
            f"action(s), {consumed.duplicates} already received or answered, "
            f"{consumed.unreadable} "
            "unreadable"
            + (
                f"; {consumed.recovered} row(s) an interrupted pass left"
                if consumed.recovered
                else ""
            )
        )
    for path in consumed.files:
        if not quiet:
            print(f"pending: {path}")
    for path in consumed.unreadable_files:
        print(
            f"unreadable: {path} (messages that are no order action event, each with why)",
            file=sys.stderr,
        )
    return 1 if consumed.unreadable else 0
