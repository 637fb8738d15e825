"""Ids for tickets and messages: 24 hex digits, ObjectId-compatible and time-ordered.

Layout as MongoDB's ObjectId: 4 bytes of seconds since the epoch, 5 random bytes chosen
once per process, 3 bytes of a counter. Clients written for the earlier MongoDB server
keep working, and sorting ids sorts by creation time.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time

_ID_PATTERN = re.compile(r"^[0-9a-f]{24}$")
_process_random = os.urandom(5)
_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
_lock = threading.Lock()


def new_id() -> str:
    with _lock:
        count = next(_counter) & 0xFFFFFF
    seconds = int(time.time()) & 0xFFFFFFFF
    return (seconds.to_bytes(4, "big") + _process_random + count.to_bytes(3, "big")).hex()


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and _ID_PATTERN.match(value) is not None
