"""Plain-language next steps for problem codes: what a person should change in the file.

Specific when the problem says enough ("status 'SHIPPING' is not a Connect status; use SHIPPED"),
otherwise one sentence per code. Messages and values given here are already masked.
"""

from __future__ import annotations

import difflib
import re

from etl.core.codes import Problem

CODE_HINTS: dict[str, str] = {
    Problem.REQUIRED_FIELD_MISSING: "Connect requires this field: fill the column, or map your "
    "export's column to it in a mapping file.",
    Problem.MISSING_COLUMN: "The file lacks a column every order (every row, for the other kinds) "
    "needs: add it to the export (`etl template KIND --required` lists them all), rename one of "
    "your columns to it in a mapping file, or set it there as a constant. Until then nothing in "
    "the file is sent.",
    Problem.NOT_ALLOWED_VALUE: "Use one of the values Connect accepts; the message lists them.",
    Problem.NEGATIVE_AMOUNT: "Amounts must be zero or positive.",
    Problem.NOT_AN_INTEGER: "Write a whole number: 2, not 2.5 or 2.0.",
    Problem.NOT_A_NUMBER: "Write a number with a dot for decimals (19.99); for exports that write "
    "19,99 set decimal_comma = true.",
    Problem.NOT_A_BOOLEAN: "Write true or false (1/0 and yes/no work too).",
    Problem.NOT_A_LIST: 'Write the list as JSON text: ["a","b"].',
    Problem.TOO_MANY_DIGITS: "At most 15 significant digits can be sent exactly: look for a typo "
    "or "
    "a spreadsheet formula result.",
    Problem.NOT_A_DATE_TIME: "Write a date and time with its offset: 2026-11-01T10:00:00+01:00.",
    Problem.NAIVE_DATE_TIME: "Add the timezone offset (+01:00, or Z for UTC), or set "
    "assume_timezone "
    "to the zone your export writes times in.",
    Problem.NONEXISTENT_LOCAL_TIME: "The clocks skipped this time when daylight-saving time began: "
    "export times with their offset (+02:00), or check the hour.",
    Problem.AMBIGUOUS_LOCAL_TIME: "The clocks showed this time twice when daylight-saving time "
    "ended: "
    "export times with their offset (+02:00 or +01:00) so that it names one moment.",
    Problem.INVALID_DATE_TIME: "Not a real date or time (a 31st of November, an hour 25): check "
    "it.",
    Problem.INVALID_EMAIL: "Not an email address: look for a missing @ or domain, or leave it "
    "empty.",
    Problem.INVALID_URI: "Not a web address: it must start with https:// (or http://).",
    Problem.CONTROL_CHARACTER: "Remove the invisible character the message names (it is usually "
    "left "
    "by a broken export, or a copy from another program); it shows as \\u0000 in errors.csv.",
    Problem.ROWS_DISAGREE: "Order-level columns repeat on every line of an order and must be "
    "identical: make the rows named in the message agree.",
    Problem.DUPLICATE_LINE_ID: "Every order line needs its own channel_order_line_id across the "
    "whole "
    "channel: two rows share one.",
    Problem.MISSING_ID: "The row has no channel_order_id.",
    Problem.MISSING_ORIGIN: "Fill origin.channel_id and origin.channel_store_id, or give a default "
    "with --channel-id/--store-id or in the configuration.",
    Problem.TOO_LONG: "The text or list is longer than Connect allows: shorten it.",
    Problem.TOO_SHORT: "The text or list is shorter than Connect allows.",
    Problem.TOO_MANY_ITEMS: "The list has more entries than Connect allows.",
    Problem.TOO_FEW_ITEMS: "The list needs more entries: an order needs at least one line.",
    Problem.BELOW_MINIMUM: "The number is below the smallest value Connect allows.",
    Problem.ABOVE_MAXIMUM: "The number is above the largest value Connect allows.",
    Problem.INVALID_ID: "'.' and '..' cannot be ids: in a URL they mean another path. Use the id "
    "Connect gave.",
    Problem.STALE: "A newer version of this order was already accepted and Connect ignores older "
    "ones: nothing to do unless channel_updated_at is wrong.",
    Problem.WRONG_TYPE: "The value is not of the kind Connect takes here (text, number, list or "
    "object): the message says which one it expects.",
    Problem.UNREADABLE_FILE: "The file could not be read as a whole: the message says why (its "
    "encoding, its delimiter, a broken line); fix the export and drop it again.",
    Problem.DOCUMENT_PATH_REFUSED: "Name a document by its path inside the inbox, without '..' "
    "and without symbolic links: copy the file into the inbox.",
    Problem.DOCUMENT_TYPE_REFUSED: "Send the document as one of the file types the message "
    "lists (a PDF, an image): convert it, or name the right file.",
    Problem.ANONYMIZE_DATE_IN_PAST: "Connect only anonymizes at a future date, and it cannot be "
    "undone: check the date, then write one after now.",
    Problem.DOCUMENT_MISSING: "Put the document in the inbox under the path the row names (or fix "
    "the path), then drop the file again.",
    Problem.DOCUMENT_TOO_LARGE: "Connect takes documents of at most 10 MB: compress or split it.",
    Problem.INVALID_FORMAT: "The value is not written the way Connect expects here: the message "
    "says which format.",
    Problem.NUMBER_TOO_LARGE: "The number is too large to be sent exactly (over 2^63): look for a "
    "typo or a value from another column.",
    Problem.OUTCOME_UNKNOWN: "Connect may or may not have acted on this call, and it is not sent "
    "twice: check the order in Connect before sending it again.",
    Problem.SCHEMA_VIOLATION: "The value breaks one of Connect's rules for this field: the message "
    "says which.",
    Problem.TOO_LARGE: "The order alone is larger than Connect accepts in one request: shorten "
    "its longest texts or split its lines.",
    Problem.NOT_SENT: "Connect could not be reached: the next run sends these orders by itself.",
    Problem.RATE_LOOKS_LIKE_PERCENT: "A warning, not an error: the order was sent (or is valid) "
    "with "
    "this rate. Connect's tax rate is a decimal, 0.20 for 20%: if your export writes "
    "percentages, divide them by 100.",
    Problem.ACTION_NOT_RECEIVED: "A warning, not an error: the answer was sent. No order action "
    "event "
    "named this action id: compare it with outbox/actions/pending-*.csv (a typo is rejected by "
    "Connect as unknown).",
    Problem.ACTION_ALREADY_ANSWERED: "A warning, not an error: this action was answered before, "
    "and "
    "Connect keeps the first answer. Remove the row if it was sent twice by mistake.",
    Problem.MERGED_CELLS: "A warning, not an error: the file was read. Only the first cell of "
    "merged "
    "cells holds the value; if the others were meant to repeat it, unmerge them and fill each.",
    Problem.HIDDEN_SHEET: "A warning, not an error: check that the sheet read is the one holding "
    "the "
    'rows; name another with sheet = "..." under [read] in a mapping file.',
    Problem.INVALID_JSON: "Each line must hold one whole JSON object, on one line: check the "
    "quotes, "
    "commas and braces at the column named (a JSON validator shows where it breaks).",
}
ALLOWED = re.compile(r"is not one of (?P<allowed>[A-Z0-9_]+(?:, [A-Z0-9_]+)*)\s*$")
DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")
TYPED_VALUE_CODES = {
    Problem.NOT_A_NUMBER,
    Problem.NOT_A_BOOLEAN,
    Problem.NOT_A_LIST,
    Problem.NOT_A_DATE_TIME,
}
GENERIC_LEAVES = {"type", "value", "code", "id", "amount", "currency"}


def hint_for(code: str, field_path: str, value: str, message: str) -> str:
    """A plain-language next step for one problem: specific when we can tell, else by code."""
    leaf = _field_noun(field_path)
    if code == Problem.NOT_ALLOWED_VALUE and value:
        match = ALLOWED.search(message)
        if match:
            allowed = match.group("allowed").split(", ")
            if value.upper() in allowed:
                return f"write {value.upper()} in capitals: Connect's values are case-sensitive"
            close = difflib.get_close_matches(value.upper(), allowed, n=1, cutoff=0.5)
            if close:
                return f"{leaf} '{value}' is not a Connect {leaf}; use {close[0]}"
    if "custom_attributes" in field_path and code in TYPED_VALUE_CODES:
        return (
            f"'{value}' does not match its attribute's type: a custom attribute's value is read "
            "by the type column beside it (STRING, NUMERIC, BOOLEAN, DATE, LIST); fix one or "
            "the other"
        )
    if code == Problem.NOT_A_NUMBER and DECIMAL_COMMA.match(value):
        return (
            f"'{value}' uses a decimal comma: write {value.replace(',', '.')}, or set "
            "decimal_comma = true in [read] (or in the file's mapping)"
        )
    if code == Problem.NAIVE_DATE_TIME and value:
        return (
            f"'{value}' has no offset: write it as {value.replace(' ', 'T')}+01:00 (with your "
            "own offset), or set assume_timezone to the zone your export writes times in"
        )
    return CODE_HINTS.get(code, "")


def _field_noun(field_path: str) -> str:
    """'$.order_lines[0].status' -> 'status'; '$.fulfillment.type' -> 'fulfillment type'."""
    parts = [re.sub(r"\[\d+\]", "", p) for p in field_path.removeprefix("$").split(".") if p]
    if not parts:
        return "value"
    if parts[-1] in GENERIC_LEAVES and len(parts) > 1:
        return f"{parts[-2]} {parts[-1]}".replace("_", " ")
    return parts[-1].replace("_", " ")
