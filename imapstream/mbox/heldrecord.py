"""The record of the message a restored-server check asks for (imap-list): the one
with the highest UID the backup holds below a folder checkpoint's uidnext, read from
the end of the sidecar (sidecar.py) back."""

import bisect
import hashlib
import os

from ..records import orjson
from . import rowspans, sidecar
from .uidranges import Held


def held_record(mbox, folder, delimiter, uidvalidity, below):
    """The record of the message with the highest UID below `below` that the sidecar of
    mbox holds for folder (whose delimiter is that) under uidvalidity, or None.  The UID
    comes from the last state line's held ranges, its row from the segments read from
    the last one back, by its bytes (rowspans.py): one search in one segment when the
    last append brought it, whatever the folder's size."""
    try:
        with open(sidecar.path_for(mbox), "rb") as f:
            found = sidecar.last_state(f.fileno())
            if found is None:
                return None
            state = found[0]
            firsts, lasts = Held.from_json(state["held"]).ranges.get((folder, uidvalidity),
                                                                       ((), ()))
            i = bisect.bisect_left(firsts, below) - 1
            if i < 0:
                return None
            uid = min(lasts[i], below - 1)
            while True:
                f.seek(state["at"])
                line = f.readline().rstrip(b"\n")
                if state["sha1"] != hashlib.sha1(line, usedforsecurity=False).hexdigest():
                    return None
                key = (folder, uidvalidity, uid)
                found = rowspans.find(line, key, delimiter)
                row = found[2] if found is not None else next(  # another delimiter
                    (each for each in reversed(orjson().loads(line))
                     if sidecar.row_key(each) == key), None)
                if row is not None and len(row) in sidecar.ROW_LENGTHS:
                    return sidecar.record(row)
                if state["at"] == 0:
                    return None
                state = orjson().loads(line_before(f.fileno(), state["at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def line_before(fd, end):
    """The line that ends (its LF included) at offset end."""
    block = sidecar.BLOCK
    while True:
        start = max(0, end - block)
        data = os.pread(fd, end - 1 - start, start)
        at = data.rfind(b"\n")
        if at >= 0 or start == 0:
            return data[at + 1:]
        block *= 4
