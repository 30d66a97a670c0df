"""The messages of a folder that a backup file holds and has not seen go missing: the
sidecar's held UIDs of the folder's UIDVALIDITY below a checkpoint's uidnext
(sidecar.py), less those the flag journal marks with missing_since (flagjournal.py).
Without QRESYNC, imap-list compares their count with the server's to find deletions,
and the UIDs the server lists with them to name those deleted (imapstream(7), "Update
record")."""

import bisect
from typing import NamedTuple

from . import flagjournal, sidecar


class Present(NamedTuple):
    ranges: list  # [(first, last)] of the UIDs held, ascending and disjoint
    missing: list  # the UIDs within them marked missing, ascending
    count: int  # the UIDs within ranges, less those missing


def held_present(mbox, folder, uidvalidity, below):
    """The Present of folder under uidvalidity below UID below in mbox, or None where
    mbox has no sidecar worth trusting."""
    index = sidecar.load(mbox)
    if index is None:
        return None
    own = (folder, uidvalidity)
    firsts, lasts = index.held.ranges.get(own, ((), ()))
    ranges = [(first, min(last, below - 1))
              for first, last in zip(firsts, lasts, strict=True) if first < below]
    missing = sorted(uid for (name, validity, uid), entry
                     in flagjournal.read(mbox).entries.items()
                     if (name, validity) == own and uid < below and "missing_since" in entry
                     and (own, uid) in index.held)
    return Present(ranges, missing, sum(b - a + 1 for a, b in ranges) - len(missing))


def gone(present, uids):
    """Yield the (first, last) ranges of present's UIDs, those missing left out, that
    are not among uids (the server's, ascending)."""
    server = iter(uids)
    on_server = next(server, None)
    for first, last in present.ranges:
        uid = first
        while uid <= last:
            while on_server is not None and on_server < uid:
                on_server = next(server, None)
            if on_server == uid:
                uid += 1
                continue
            end = last if on_server is None or on_server > last else on_server - 1
            yield from _less(uid, end, present.missing)
            uid = end + 1


def _less(first, last, missing):
    """The ranges of first to last without the UIDs of missing."""
    at = bisect.bisect_left(missing, first)
    while at < len(missing) and missing[at] <= last:
        if missing[at] > first:
            yield first, missing[at] - 1
        first = missing[at] + 1
        at += 1
    if first <= last:
        yield first, last
