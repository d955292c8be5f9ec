"""Which keys a file has shown before, in bounded memory: sorted arrays of 64-bit hashes.

A streamed file is checked chunk by chunk (is this order's key new? was this line id used
before?), so the keys of every earlier chunk must be remembered. Python sets of strings would cost
hundreds of bytes a key; these cost 16: a 64-bit hash, 32 bits of a second, independent one (a
false match needs both to collide: about 2^-96 for a pair) and a 32-bit payload (a row). Levels
are merged like a log-structured merge tree (n keys cost O(n log n)), without sorting again.
"""

from __future__ import annotations

from itertools import repeat

import numpy as np

MERGE_LIMIT = 1 << 20


class SeenKeys:
    """Hashes of the keys seen so far, with one payload (an int) each."""

    def __init__(self) -> None:
        self._levels: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return sum(len(level[0]) for level in self._levels)

    def find(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The payload of each key seen before, -1 for new keys (hashes as uint64 arrays)."""
        found = np.full(len(first), -1, dtype=np.int64)
        if not self._levels or not len(first):
            return found
        if _is_sorted(first):  # e.g. the distinct keys of distinct_pairs
            return self._find_sorted(first, second)
        order = np.argsort(first)  # sorted queries make the searches below cache-friendly
        found_sorted = self._find_sorted(first[order], second[order])
        found[order] = found_sorted
        return found

    def _find_sorted(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        found = np.full(len(first), -1, dtype=np.int64)
        for keys, checks, payloads in self._levels:
            where = np.searchsorted(keys, first)
            inside = where < len(keys)
            hit = np.zeros(len(first), dtype=bool)
            hit[inside] = keys[where[inside]] == first[inside]
            # Several keys may share the first hash: look at each of them for the second.
            for position in np.flatnonzero(hit & (found < 0)).tolist():
                index = int(where[position])
                while index < len(keys) and keys[index] == first[position]:
                    if checks[index] == np.uint32(second[position] & np.uint64(0xFFFFFFFF)):
                        found[position] = payloads[index]
                        break
                    index += 1
        return found

    def add(self, first: np.ndarray, second: np.ndarray, payload: np.ndarray) -> None:
        """Remember new keys (never seen before: ``find`` said -1 for each); payloads < 2^31."""
        if not len(first):
            return
        if _is_sorted(first):  # copies all the same: the caller's arrays stay the caller's
            level = (first.copy(), second.astype(np.uint32), payload.astype(np.int32))
        else:
            order = np.argsort(first, kind="stable")
            level = (
                first[order],
                second[order].astype(np.uint32),
                payload[order].astype(np.int32),
            )
        self._levels.append(level)
        # Levels stop growing at MERGE_LIMIT keys: merging two huge ones would need twice their
        # memory at once, for little gain (a lookup searches each level: a few more is cheap).
        while (
            len(self._levels) > 1
            and len(self._levels[-2][0]) <= 2 * len(self._levels[-1][0])
            and len(self._levels[-2][0]) + len(self._levels[-1][0]) <= MERGE_LIMIT
        ):
            upper = self._levels.pop()
            lower = self._levels.pop()
            self._levels.append(_merge(lower, upper))


def _merge(
    lower: tuple[np.ndarray, np.ndarray, np.ndarray],
    upper: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two sorted levels as one, each array placed once (no sort, few temporaries)."""
    size = len(lower[0]) + len(upper[0])
    at = np.searchsorted(lower[0], upper[0], side="right") + np.arange(len(upper[0]))
    rest = np.ones(size, dtype=bool)
    rest[at] = False
    merged = []
    for low, up in zip(lower, upper, strict=True):
        out = np.empty(size, dtype=low.dtype)
        out[at] = up
        out[rest] = low
        merged.append(out)
    return merged[0], merged[1], merged[2]


MIX = np.uint64(0x9E3779B97F4A7C15)


def text_hashes(texts: list[str], scope: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of each text (SipHash of the text, and of the text with a
    character added; stable within one process only), each mixed with the text's ``scope`` (a
    64-bit value per text, e.g. the hash of its channel) so equal texts of two scopes differ."""
    first = np.fromiter(map(hash, texts), dtype=np.int64, count=len(texts)).view(np.uint64)
    marked = map(str.__add__, texts, repeat("\x1f"))
    second = np.fromiter(map(hash, marked), dtype=np.int64, count=len(texts)).view(np.uint64)
    if scope is not None:
        with np.errstate(over="ignore"):
            first = first ^ (scope * MIX)
            second = second ^ ((scope + np.uint64(1)) * MIX)
    return first, second


def scope_hashes(texts: list[str]) -> np.ndarray:
    """A 64-bit value per scope text, for ``text_hashes``."""
    return np.fromiter(map(hash, texts), dtype=np.int64, count=len(texts)).view(np.uint64)


def distinct_pairs(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each distinct (first, second) pair, the index of its first occurrence; and for each
    element, the index of its pair among the distinct ones. The distinct pairs come in the order
    of their first hash (SeenKeys then needs no sort) unless two texts share a first hash."""
    _, where, inverse = np.unique(first, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    if np.array_equal(second[where][inverse], second):
        return where, inverse
    # Two different texts with one first hash (a chance in 2^64 a pair): tell pairs apart whole.
    pairs = np.ascontiguousarray(np.stack([first, second], axis=1)).view("V16").reshape(-1)
    _, where, inverse = np.unique(pairs, return_index=True, return_inverse=True)
    return where, inverse.reshape(-1)


def _is_sorted(values: np.ndarray) -> bool:
    return bool(len(values) < 2 or (values[1:] >= values[:-1]).all())
