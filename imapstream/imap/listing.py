"""Listings of many folders in flight (issue 13): each folder's EXAMINE and listing
FETCHes sent behind the last FETCH of the folder before, up to WINDOW messages ahead of
the one being read (inflight.py), so that a run costs round trips per account, not per
folder.

A Plan says what to send before any answer is known:
- a whole folder: FETCH by sequence number, CHUNK messages at a time, of the messages
  STATUS counted (the EXAMINE must then count as many, or the listing is abandoned);
- from UID since on: UID FETCH since:*, whatever the server's UIDNEXT says (a UID set
  is never out of range), for at most CHUNK new messages by STATUS;
- check: a UID whose message is fetched first (imap-list's restored-server check);
- changed_since: a HIGHESTMODSEQ, with since: after the listing, the UID FETCH CHANGEDSINCE
  of the messages below since (changes.py), the check's UID left out: its own FETCH
  tells of it, and a server running both FETCHes at once could mix their answers.
A folder with nothing to fetch gets a NOOP, so that its EXAMINE is answered like any.

The caller may abandon a folder's listing once it has seen its EXAMINE (or check): the
answers in flight are read and dropped, the caller lists that folder itself, and the
folders after it are sent again."""

from typing import NamedTuple

from . import changes
from .inflight import Entry, InFlight
from .pipeline import fetch_command, fetched

WINDOW = 8000  # messages asked for and not yet read, at most (past one folder's)
PLANS = 256  # folders in flight, at most: the commands' bytes stay within what the
# sockets buffer, as they are written while the server's answers wait to be read


class Plan(NamedTuple):
    name: str
    messages: int  # as STATUS counted them (whole), or at most (from since on)
    since: int | None = None
    check: int | None = None
    changed_since: int | None = None


class Listing:
    """One folder's listing: its EXAMINE answer (selected, a dict as IMAPClient gives
    it, or error), the checked message (Fetched or None), then its messages."""

    def __init__(self, queue, plan, entries, make, reconnects, qresync=False):
        """make: (make_selected(dict), fetched_in(plan)), the second giving this
        folder's make_fetched(uid, items); qresync: VANISHED asked with CHANGEDSINCE."""
        self.queue, self.plan, self.qresync = queue, plan, qresync
        make_selected, fetched_in = make
        self.fetched = fetched_in(plan)
        self.left = entries  # replies of this folder not yet read
        self.changes_left = int(_changes_set(plan) is not None)  # the last of them
        self.reconnects = reconnects  # the session's count before its first reply
        self.abandoned = False
        self.checked = None
        reply = self._reply()
        self.error = reply.error
        self.selected = make_selected(reply.selected) if reply.selected else None
        if self.error is None and plan.check is not None:
            item = self._items(reply).get(plan.check)
            self.checked = None if item is None else self.fetched(plan.check, item)
            reply = None
        self.first = reply

    def messages(self):
        """Yield a Fetched (with header) per message, in UID order, only those from UID
        since on if planned so; within each FETCH a response without a UID answers none
        of ours (flags of a message whose own response never came)."""
        last_uid = (self.plan.since or 1) - 1
        reply, self.first = self.first, None
        while not self.error:
            if reply is None:
                if self.left <= self.changes_left:
                    return
                reply = self._reply()
                if reply.error or reply.said is None:
                    self.error = reply.error
                    return
            if reply.entry.command[0] != "NOOP":
                response = self._items(reply)
                for uid in sorted(response):
                    if uid > last_uid:
                        last_uid = uid
                        yield self.fetched(uid, response[uid])
            reply = None

    def changes(self):
        """([changes.Changed], [(first, last)] vanished) after plan.changed_since of the
        messages below plan.since, read after messages(): the CHANGEDSINCE's, and the
        checked message's own (changed if its MODSEQ is higher, vanished if it is gone
        where VANISHED was asked for)."""
        changed, vanished = [], []
        if self.changes_left:
            self.changes_left = 0
            reply = self._reply()
            if reply.error or reply.said is None:
                raise reply.error
            said = reply.said.untagged
            changed, vanished = changes.found(said.get("FETCH", []), said.get("VANISHED", []),
                                              self.plan.since - 1)
        check, item = self.plan.check, self.checked
        if check is not None and item is None and self.qresync:
            vanished = sorted([*vanished, (check, check)])
        elif check is not None and item and (item.modseq or 0) > self.plan.changed_since:
            changed = sorted([*changed, changes.Changed(check, item.flags, item.modseq,
                                                        item.left_out)])
        return changed, vanished

    def abandon(self):
        """Drop the rest of this listing and whatever is in flight behind it."""
        self.abandoned = True
        self.queue.clear()
        self.left = 0

    def _reply(self):
        self.left -= 1
        return self.queue.answer()

    def _items(self, reply):
        """{uid: items} of a FETCH reply (by sequence number, those with a UID)."""
        by_uid = reply.entry.command[0] == "UID"
        found = fetched(reply.said, reply.entry.key, by_uid)
        if by_uid:
            return found
        return {items.pop(b"UID"): items for items in found.values() if b"UID" in items}

    def finish(self):
        while self.left and not self.abandoned:
            self._reply()


def listings(session, plans, items, make, chunk, qresync=False):
    """Yield a Listing per plan, in order; the one before is read to its end first.
    make: (make_selected, make_fetched), see Listing; qresync: VANISHED is asked with
    CHANGEDSINCE."""
    queue = InFlight(session)
    added, asked = 0, 0  # plans whose entries are added; messages they ask for
    counts = []
    for index, plan in enumerate(plans):
        while added < len(plans) and (added == index or asked < WINDOW
                                      and added - index < PLANS):
            entries = _entries(plans[added], items, chunk, qresync)
            for entry in entries:
                queue.add(entry)
            counts.append(len(entries))
            asked += plans[added].messages
            added += 1
        queue.send()
        listing = Listing(queue, plan, counts[index], make, session.reconnects, qresync)
        yield listing
        listing.finish()
        asked -= plan.messages
        if listing.abandoned:
            del counts[index + 1:]
            added, asked = index + 1, 0


def _changes_set(plan):
    """The UID set of a plan's CHANGEDSINCE: below since, but the check; None for none."""
    if plan.changed_since is None or plan.since is None:
        return None
    check = plan.check or plan.since
    runs = [(1, check - 1), (check + 1, plan.since - 1)]
    found = ",".join(f"{a}:{b}" if a != b else f"{a}" for a, b in runs if a <= b)
    return found or None


def _entries(plan, items, chunk, qresync=False):
    """The plan's commands, each keyed by the numbers it asks for (a range)."""
    entries = []
    if plan.check is not None:
        entries.append(Entry(plan.name, fetch_command([plan.check], items, True),
                             range(plan.check, plan.check + 1)))
    if plan.since is not None:
        entries.append(Entry(plan.name, ("UID", "FETCH", f"{plan.since}:*",
                                         "(" + " ".join(items) + ")"), range(plan.since, 1 << 32)))
    else:
        for first in range(1, plan.messages + 1, chunk):
            numbers = range(first, min(first + chunk - 1, plan.messages) + 1)
            entries.append(Entry(plan.name, fetch_command(numbers, items, False), numbers))
    uid_set = _changes_set(plan)
    if uid_set:
        entries.append(Entry(plan.name, changes.command(uid_set, plan.changed_since, qresync),
                             range(1, plan.since)))
    entries = entries or [Entry(plan.name, ("NOOP",))]
    entries[0].examine = True  # also after a plan of the same folder
    return entries
