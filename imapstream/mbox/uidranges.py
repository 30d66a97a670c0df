"""The UIDs a backup file holds, per generation (a folder under one UIDVALIDITY), as
ascending disjoint ranges: the sidecar's "held" (sidecar.py)."""

import bisect
import itertools

from ..records import positive_int


def generation(record):
    """A folder's UIDs under one UIDVALIDITY; None for a message that has none."""
    uv = record.get("uidvalidity")
    return None if uv is None else (record.get("folder"), uv)


class Held:
    """The UIDs held, {generation: (firsts, lasts)}: ascending disjoint ranges."""

    def __init__(self, ranges=None):
        self.ranges = ranges or {}

    def copy(self):
        return Held({g: (list(f), list(la)) for g, (f, la) in self.ranges.items()})

    def generations(self):
        return self.ranges.keys()

    def __contains__(self, key):
        own, uid = key
        firsts, lasts = self.ranges.get(own, ((), ()))
        i = bisect.bisect_right(firsts, uid) - 1 if isinstance(uid, int) else -1
        return i >= 0 and lasts[i] >= uid

    def add(self, record):
        own = generation(record)
        firsts, lasts = self.ranges.setdefault(own, ([], []))
        uid = record.get("uid")
        if own is None or not positive_int(uid) or (own, uid) in self:
            return
        i = bisect.bisect_right(firsts, uid) - 1
        if i >= 0 and lasts[i] == uid - 1:
            lasts[i] = uid
        else:
            i += 1
            firsts.insert(i, uid)
            lasts.insert(i, uid)
        if i + 1 < len(firsts) and firsts[i + 1] == lasts[i] + 1:
            lasts[i] = lasts.pop(i + 1)
            del firsts[i + 1]

    def within(self, own, ranges):
        """Yield the UIDs of generation own held within the (first, last) ranges."""
        firsts, lasts = self.ranges.get(own, ((), ()))
        for low, high in ranges:
            i = max(0, bisect.bisect_right(firsts, low) - 1)
            while i < len(firsts) and firsts[i] <= high:
                yield from range(max(low, firsts[i]), min(high, lasts[i]) + 1)
                i += 1

    def to_json(self):
        return [[*(own or (None, None)), *(u for pair in zip(f, la, strict=True) for u in pair)]
                for own, (f, la) in self.ranges.items()]

    @classmethod
    def from_json(cls, entries):
        held = cls()
        for entry in entries:
            folder, uidvalidity, *uids = entry
            if not (isinstance(folder, str | None) and (uidvalidity is None and not uids
                                                        or positive_int(uidvalidity))
                    and len(uids) % 2 == 0 and all(map(positive_int, uids))
                    and all(a < b if i % 2 else a <= b
                            for i, (a, b) in enumerate(itertools.pairwise(uids)))):
                raise ValueError("bad held UIDs")
            own = None if uidvalidity is None else (folder, uidvalidity)
            held.ranges[own] = (uids[0::2], uids[1::2])
        return held
