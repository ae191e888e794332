"""Run ids: short, unique, time-sortable (Crockford base32: 8 chars of ms clock + 4 random)."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case, no i l o u


def _b32(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_run_id(now: float | None = None) -> str:
    """12 characters; ids made later sort after ids made earlier (ms resolution).

    8 base32 chars hold 40 bits of *centiseconds* since 2024-01-01, enough for ~348 years.
    """
    global _last
    t = time.time() if now is None else now
    centis = int((t - 1_704_067_200) * 100)
    if _last is not None and _last[0] == centis and _last[1] < 0xFFFFF:
        rand = _last[1] + 1  # same centisecond in this process: stay unique and ordered
    else:
        rand = int.from_bytes(os.urandom(3), "big") & 0x7FFFF  # leave room to count up
    _last = (centis, rand)
    return _b32(centis, 8) + _b32(rand, 4)


_last: tuple[int, int] | None = None
