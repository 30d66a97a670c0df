"""Body FETCHes in flight (issue 13): each batch's UID FETCH of BODY.PEEK[] sent without
waiting for the answers before it, the EXAMINE of the next folder right behind the last
FETCH of this one (inflight.py).  What is in flight is the caller's to bound; one answer
is in memory at a time.  After each dropped connection what is sent again asks for fewer
messages per FETCH (halved at each drop), so that a link that keeps failing still makes
progress."""

from typing import NamedTuple

from .. import errors
from . import pipeline
from .inflight import Entry, InFlight


class Answer(NamedTuple):
    """The answer for some of a folder's UIDs, in the order asked.  uidvalidity: the
    folder's as its EXAMINE said, None where the server refused the EXAMINE; error: the
    server's refusal, given once per folder for a refused EXAMINE, else of the FETCH;
    fetched: {uid: store.Fetched} of the messages the server sent."""

    folder: str
    uids: list
    uidvalidity: int | None
    fetched: dict
    error: errors.ServerError | None


class BodyQueue:
    def __init__(self, session, items, fetched):
        """items: the FETCH items; fetched(uid, items) makes a store.Fetched."""
        self.items, self.fetched = items, fetched
        self.queue = InFlight(session, self._split)
        self.limit = None  # messages per FETCH, once a drop has halved it

    def __len__(self):
        return len(self.queue)

    def request(self, folder, uids):
        """Send a FETCH of uids in folder."""
        self.queue.add(self._entry(folder, list(uids)))
        self.queue.send()

    def answer(self):
        """The Answer to the oldest FETCH requested and not yet answered."""
        def shrink():
            uids = self.queue.entries[0].uids
            self.limit = max(1, min(self.limit or len(uids), len(uids)) // 2)

        reply = self.queue.answer(shrink)
        entry = reply.entry
        if reply.said is None or reply.error:
            return Answer(entry.folder, entry.uids, reply.uidvalidity, {}, reply.error)
        response = pipeline.fetched(reply.said, entry.key, True)
        return Answer(entry.folder, entry.uids, reply.uidvalidity,
                      {uid: self.fetched(uid, item) for uid, item in response.items()}, None)

    def _entry(self, folder, uids):
        entry = Entry(folder, pipeline.fetch_command(uids, self.items, True), set(uids))
        entry.uids = uids  # in the order asked
        return entry

    def _split(self, entries):
        """Entries of at most limit UIDs each."""
        step = self.limit
        return [self._entry(e.folder, e.uids[i:i + step]) if step else e
                for e in entries for i in range(0, len(e.uids), step or len(e.uids) or 1)]
