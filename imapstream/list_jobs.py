"""imap-list's work per folder: a folder's Job (since.py) listed, its message records,
update records and folder checkpoint written."""

from . import diagnostics, errors
from .imap import changes
from .mbox import sidecar
from .mbox.present import gone
from .mbox.reader import same_message
from .message import message_id
from .records import Checkpoint, positive_int, write_record

PROG = "imap-list"
# Yahoo and AOL show at most this many messages of a folder over IMAP, however many it
# holds; a folder that shows exactly this many is likely cut off there.
SHOWN_AT_MOST = 10_000


def _write_changes(found, name, delimiter, uidvalidity, mbox, stdout):
    """An update record per message found changed (changes.since's or Listing.changes's
    (changed, vanished)), and per one of those vanished the backup's file mbox holds."""
    changed, vanished = found
    head = {"folder": name, "delimiter": delimiter, "uidvalidity": uidvalidity}
    for item in changed:
        for what in item.left_out:
            diagnostics.warn(PROG, f"{name}: UID {item.uid}: left out {what}")
        write_record(stdout, {**head, "uid": item.uid, "flags": item.flags,
                              "modseq": item.modseq, "update": "flags"})
    index = sidecar.load(mbox) if mbox and vanished else None
    if index is None:
        return
    from datetime import UTC, datetime

    now = datetime.now(UTC).isoformat(timespec="seconds")
    for uid in index.held.within((name, uidvalidity), vanished):
        write_record(stdout, {**head, "uid": uid, "missing_since": now, "update": "vanished"})


def list_job(session, job, listing, where, stdout):
    """List a folder's messages as its Job says, from the listing of its plan where the
    folder is still as planned, else alone; under --since, then its folder checkpoint.
    where: (name, delimiter, its label on Gmail).  Returns (how many, the UID they were
    listed from or None for all)."""
    _name, delimiter, _own_label = where
    name, known, since = job.name, job.known, job.since
    if job.plan is None:
        if isinstance(job.status, errors.ServerError):
            raise errors.ServerError(f"{name}: {job.status}")
        uidvalidity, uidnext = job.status.uidvalidity, job.status.uidnext
        write_record(stdout, Checkpoint(name, delimiter, uidvalidity, uidnext,
                                        job.status.messages, since=uidnext).record())
        return 0, uidnext
    if listing.error:
        raise listing.error
    selected, reconnects = listing.selected, listing.reconnects
    if since is not None and (selected.uidvalidity != known.uidvalidity
                              or not positive_int(selected.uidnext)):
        since = None  # changed since STATUS, or a server that does not say
    if since is not None and job.held and _restored(name, known, job.held, listing.checked):
        since = None
    if since is not None and selected.highestmodseq and not known.highestmodseq:
        since = None  # no HIGHESTMODSEQ to ask changes from: listed whole, compared
    found = None  # the changes, where the plan asked for them
    if since == listing.plan.since and (since or selected.exists == listing.plan.messages):
        count = _write_messages(name, delimiter, selected, listing.messages(), stdout)
        if listing.error:
            raise listing.error
        if since is not None and selected.highestmodseq and listing.plan.changed_since:
            found = listing.changes()
    else:
        listing.abandon()
        selected = session.examine(name)
        if since is not None and (selected.uidvalidity != known.uidvalidity
                                  or not positive_int(selected.uidnext)):
            since = None
        count = _list_messages(session, where, stdout, selected, since)
    if since is not None and selected.highestmodseq and found is None:
        listing.abandon()  # the changes are asked alone; the folders after, sent again
        session.examine(name)
        found = changes.since(session, known.uidnext - 1, known.highestmodseq,
                              session.qresync)
    if since is not None and job.present and selected.exists < job.present.count + count:
        listing.abandon()  # the UIDs are listed alone; the folders after, sent again
        uids = session.uids(session.examine(name))
        found = (found[0] if found else [],
                 sorted([*(found[1] if found else []), *gone(job.present, uids)]))
    if found:
        _write_changes(found, name, delimiter, selected.uidvalidity, job.mbox, stdout)
    if job.since_mode:
        vouches = positive_int(selected.uidnext) and session.reconnects == reconnects
        write_record(stdout, Checkpoint(name, delimiter, selected.uidvalidity,
                                        selected.uidnext, selected.exists, since,
                                        selected.highestmodseq, vouches).record())
    return count, since


def _restored(name, known, held, item):
    """Whether the server was restored from a backup, as far as one FETCH can tell: the
    message held, which the backup holds with the highest UID below known's uidnext
    (under its UIDVALIDITY), is on the server (item), but another message
    (imapstream(7))."""
    if item is None or same_message(message_record(name, None, known.uidvalidity, item), held):
        return False
    diagnostics.warn(PROG, f"{name}: UID {held['uid']} is another message than the backup "
                           f"holds: the server was restored from a backup; listing it whole")
    return True


def _list_messages(session, where, stdout, selected, since=None):
    """Write the message records of the folder examined last (selected), where names
    (name, delimiter, its label on Gmail), in UID order, only those from UID since on if
    given (see Store.listing)."""
    name, delimiter, own_label = where
    return _write_messages(name, delimiter, selected,
                           session.listing(selected, since, own_label), stdout)


def _write_messages(name, delimiter, selected, items, stdout):
    if selected.exists == SHOWN_AT_MOST:
        diagnostics.warn(PROG, f"{name}: the server shows exactly {SHOWN_AT_MOST} messages, "
                               f"as many as Yahoo and AOL show of a folder over IMAP: it may "
                               f"hold more; move some to another folder to back them up")
    count = 0
    for item in items:
        write_record(stdout, message_record(name, delimiter, selected.uidvalidity, item))
        count += 1
    return count


def message_record(folder, delimiter, uidvalidity, item):
    """The record of a store.Fetched; what it leaves out is said on stderr."""
    for what in item.left_out:
        diagnostics.warn(PROG, f"{folder}: UID {item.uid}: left out {what}")
    return {**_record(folder, delimiter, uidvalidity, item), **(item.gmail or {})}


def _record(folder, delimiter, uidvalidity, item):
    return {
        "folder": folder,
        "delimiter": delimiter,
        "uidvalidity": uidvalidity,
        "uid": item.uid,
        "message_id": message_id(item.header or b""),
        "size": item.size,
        "flags": item.flags,
        "internaldate": item.internaldate,
        **({} if item.modseq is None else {"modseq": item.modseq}),
    }
