"""imap-list --since: what the backup knows of each folder (the folder checkpoints of
its files, or of a file of folder records), and from that and the folder's STATUS, what
to ask of the folder (a Job, its store.Plan sent ahead of the listing)."""

import os
from typing import NamedTuple

from . import errors
from .imap import store
from .mbox import heldrecord, sidecar
from .mbox.archive import mbox_files
from .mbox.present import Present, held_present
from .records import Checkpoint, positive_int, read_records


class Job(NamedTuple):
    """What to do with a folder whose messages are listed: since_mode under --since,
    with known (a Checkpoint) and mbox (its backup's file) where a checkpoint is known;
    status (a store.Status, or the ServerError of a folder the server refused it for);
    since: the UID to list from, None for all; plan: the store.Plan sent ahead, None
    where nothing need be asked; held: the record of the message the backup holds with
    the highest UID below since, to check that the server holds it too; present: the
    messages the backup holds below since (a Present) where, without QRESYNC,
    the server's count of messages tells whether some were deleted."""

    name: str
    since_mode: bool
    known: Checkpoint | None
    mbox: str | None
    status: object
    since: int | None
    plan: store.Plan | None
    held: dict | None
    present: Present | None = None


def read_since(path):
    """{folder: (Checkpoint, its mbox file or None)} from the folder records in the
    file at path, or from the folder checkpoints of the backup directory at path;
    nothing is known of a path that does not exist yet (a first run)."""
    known = {}
    if not os.path.exists(path):
        return known
    if os.path.isdir(path):
        for mbox in mbox_files(path):
            for folder, checkpoint in sidecar.checkpoints(mbox).items():
                known[folder] = (checkpoint, mbox)
        return known
    try:
        with open(path, "rb") as f:
            for lineno, record in read_records(f):
                folder, uidvalidity, uidnext = (record.get(k) for k in
                                                ("folder", "uidvalidity", "uidnext"))
                if not isinstance(folder, str):
                    raise errors.DataError(f"line {lineno}: record without a \"folder\" string")
                if positive_int(uidvalidity) and positive_int(uidnext):
                    known[folder] = (Checkpoint(folder, record.get("delimiter"),
                                                uidvalidity, uidnext, highestmodseq=record.get(
                                                    "highestmodseq")), None)
    except errors.DataError as exc:
        raise errors.DataError(f"{path}: {exc}") from None
    return known


def job_for(name, since, status, refresh=False, counted=False):
    """The Job for a folder (see imapstream(7) for --since): one whose status shows the
    checkpoint's UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ needs nothing asked; one with a
    higher UIDNEXT or HIGHESTMODSEQ is listed from the checkpoint's UIDNEXT on (a plan
    of UID FETCH for up to store.CHUNK new messages and of its changes, else one that
    will not fit and is listed alone, its changes asked then: imap-list's
    _write_changes); any other in whole, as is every folder to refresh flags or whose
    checkpoint has no HIGHESTMODSEQ to ask changes from while the server has one.  counted (a server
    without QRESYNC): one whose STATUS counts fewer messages than the backup holds below
    the checkpoint's UIDNEXT (and has not seen go missing) is listed from there on too,
    its deletions found then (imap-list's _list_job)."""
    known, mbox = since.get(name, (None, None)) if since is not None else (None, None)
    job = Job(name, since is not None, known, mbox, status, None, None, None)
    failed = isinstance(status, errors.ServerError)
    if known and failed:
        return job
    whole = refresh or (known and status.highestmodseq and not known.highestmodseq)
    grown = known and not whole and status.uidvalidity == known.uidvalidity and isinstance(
        status.uidnext, int) and status.uidnext >= known.uidnext
    held_now = (held_present(mbox, name, known.uidvalidity, known.uidnext)
                if grown and counted and mbox else None)
    deleted = held_now and isinstance(status.messages, int) and status.messages < held_now.count
    if known and not whole and not deleted and (
            status.uidvalidity, status.uidnext, status.highestmodseq) == (
            known.uidvalidity, known.uidnext, known.highestmodseq):
        return job
    if grown:
        since = known.uidnext
        held = heldrecord.held_record(mbox, name, known.delimiter,
                                            known.uidvalidity, since) if mbox else None
        check = held and held["uid"]
        modseq = known.highestmodseq if status.highestmodseq else None
        plan = (store.Plan(name, status.uidnext - since, since, check, modseq)
                if status.uidnext - since <= store.CHUNK else store.Plan(name, 0, None, check))
        return job._replace(since=since, plan=plan, held=held, present=held_now)
    messages = 0 if failed or not isinstance(status.messages, int) else status.messages
    return job._replace(plan=store.Plan(name, messages))


def announces(job):
    """Whether the job lists messages its backup lacks: UIDs from its checkpoint's
    UIDNEXT on where the folder's is higher, or any, of a folder the backup does not
    know (where the listing is whole to refresh flags, most are held)."""
    status = job.status
    if job.plan is None or isinstance(status, errors.ServerError):
        return False
    if job.since is not None:
        return isinstance(status.uidnext, int) and status.uidnext > job.since
    return job.known is None and bool(status.messages)
