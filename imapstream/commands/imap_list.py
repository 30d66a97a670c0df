"""imap-list: the folders of an account, or the messages of some folders, as NDJSON."""

import re
import sys

from .. import cli, diagnostics, errors
from ..imap import changes, gmail, store
from ..mbox import sidecar
from ..mbox.present import gone
from ..mbox.reader import same_message
from ..message import message_id
from ..records import Checkpoint, parse_record, positive_int, read_lines, write_record
from ..since import job_for, read_since

PROG = "imap-list"
# Yahoo and AOL show at most this many messages of a folder over IMAP, however many it
# holds; a folder that shows exactly this many is likely cut off there.
SHOWN_AT_MOST = 10_000
SPECIAL_USE = {"\\all", "\\archive", "\\drafts", "\\flagged", "\\junk", "\\sent", "\\trash"}
_SURROGATE = re.compile("[\ud800-\udfff]")  # in a name from undecodable bytes


def parser():
    p = cli.ArgumentParser(prog=PROG, description="Without FOLDER: one NDJSON record per "
                           "folder.  With FOLDER, --all or '-' (folder names or folder "
                           "records on stdin): one record per message, in UID order.")
    p.add_argument("folders", nargs="*", metavar="FOLDER",
                   help="folders whose messages to list; '-' reads them from stdin")
    p.add_argument("-a", "--all", action="store_true", help="list the messages of every folder")
    p.add_argument("--include", metavar="REGEX", action="append", default=[],
                   help="only folders whose name matches REGEX (repeatable)")
    p.add_argument("--exclude", metavar="REGEX", action="append", default=[],
                   help="skip folders whose name matches REGEX (repeatable)")
    p.add_argument("--since", metavar="FILE|DIR", help="folder records in FILE (imap-list's, "
                   "or the checkpoints of a backup from mbox-ids), or the checkpoints of "
                   "the backup directory DIR: list only the messages with a UID from the "
                   "record's uidnext on, while the folder's UIDVALIDITY is the record's; "
                   "after each folder write its folder checkpoint")
    p.add_argument("--refresh-flags", action="store_true", help="with --since: list "
                   "every folder whole, so that mbox-ids compares the flags of the "
                   "messages held and finds those deleted (for servers without "
                   "CONDSTORE, whose changes --since cannot ask for)")
    p.add_argument("--exclude-folder", metavar="NAME", action="append", default=[],
                   help="skip the folder named NAME exactly (INBOX in any case; "
                        "repeatable); a NAME the server does not list is reported with the "
                        "closest names it does")
    p.add_argument("--once", action="store_true", help="on Gmail (X-GM-EXT-1), only the "
                   "folders that hold every message once: those whose special use is \\All, "
                   "\\Junk or \\Trash; on other servers, every folder")
    p.add_argument("-v", "--verbose", action="count", default=0, help="say on stderr how "
                   "many messages each listed folder has (\"IMAP: Found N messages in "
                   "FOLDER\"); twice, also the server's own words when it refuses a folder")
    p.add_argument("--login-source", action="store_true", help="connect to nothing: write "
                   "one record with the login name and where the password would come from")
    store.add_options(p)
    return p


def main(argv, stdin=None, stdout=None):
    return cli.guarded(PROG, _main, argv, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)


def _main(argv, stdin, stdout):
    options = parser().parse_args(argv)
    if options.login_source:
        write_record(stdout, store.login_source(options))
        return errors.OK
    if options.all and options.folders:
        raise errors.UsageError("give FOLDER... or --all, not both")
    try:
        include = [re.compile(r) for r in options.include]
        exclude = [re.compile(r) for r in options.exclude]
    except re.error as exc:
        raise errors.UsageError(f"bad regular expression: {exc}") from None

    excluded = set()

    def selected(name):
        return ((not include or any(r.search(name) for r in include))
                and not any(r.search(name) for r in exclude) and name not in excluded)

    named = [f for f in options.folders if f != "-"]
    if "-" in options.folders:
        named += _folders_from(stdin)
    failed = 0
    for name in filter(_SURROGATE.search, named):
        diagnostics.warn(PROG, f"{_shown(name)}: not a folder name: it is not valid UTF-8; skipped")
        failed += 1
    named = [name for name in named if not _SURROGATE.search(name)]
    options.qresync = True  # VANISHED with CHANGEDSINCE (changes.py)
    try:
        session = store.Store(options, PROG)
    except BaseException:
        if options.since:
            read_since(options.since)  # a --since that cannot be read is said first
        raise
    # The backup's checkpoints (a file per folder) are read while the folders' statuses
    # are on their way: on a link far away, that waiting hides the reading.
    read = _in_background(read_since, options.since) if options.since else lambda: None
    try:
        every, unreadable, statuses = _folders(session)
        since = read()
        listed = [f["folder"] for f in every]
        for name in options.exclude_folder:
            excluded.add(_server_name(name, listed))
            if _server_name(name, listed) not in listed:
                diagnostics.warn(PROG, f"--exclude-folder {name}: no such folder on the "
                                       f"server{_closest(name, listed)}")
        named = [_server_name(name, listed) for name in named]
        folders = [f for f in every if selected(f["folder"])]
        if options.once and session.gmail:
            folders = [f for f in folders if (f["special_use"] or "").lower() in gmail.ONCE]
        own_labels = {f["folder"]: gmail.folder_label(f["folder"], f["flags"]) for f in every}
        if options.all or not options.folders:
            # A name the server sends that is not valid modified UTF-7 cannot be written
            # as JSON nor named in EXAMINE: its folder is skipped, and the others listed.
            for shown, why in unreadable:
                if selected(shown):
                    diagnostics.warn(PROG, f"{shown}: {why}; skipped")
                    failed += 1
        if not (options.all or options.folders):
            statuses.update(session.statuses([f["folder"] for f in folders if not
                                              f["noselect"] and f["folder"] not in statuses]))
            failed += _write_folders(folders, statuses, stdout)
            return errors.PARTIAL if failed else errors.OK
        if options.all:
            wanted = [f["folder"] for f in folders if not f["noselect"]]
        else:
            wanted = [name for name in named if selected(name)]
        statuses.update(session.statuses([name for name in dict.fromkeys(wanted)
                                          if name not in statuses]))
        delimiters = {f["folder"]: f["delimiter"] for f in every}
        default_delimiter = every[0]["delimiter"] if every else None
        # Deletions found by counting (_job) where no VANISHED says them; not on Gmail,
        # where a message leaves a folder (a label) that keeps it in another.
        counted = not session.qresync and not session.gmail
        jobs = [job_for(name, since, statuses[name], options.refresh_flags, counted)
                for name in wanted]
        listings = session.listings([job.plan for job in jobs if job.plan], own_labels)
        for job in jobs:
            name = job.name
            try:
                listing = next(listings) if job.plan else None
                delimiter = delimiters.get(name, default_delimiter)
                where = (name, delimiter, own_labels.get(name, name))
                count, listed_from = _list_job(session, job, listing, where, stdout)
                new = "new " if listed_from else ""
            except errors.ServerError as exc:
                if name in delimiters:
                    diagnostics.warn(PROG, str(exc))
                else:  # named, and not among the folders the server lists
                    said = f" (the server: {exc})" if options.verbose > 1 else ""
                    diagnostics.warn(PROG, f"{name}: no such folder on the server"
                                           f"{_closest(name, listed)}{said}")
                failed += 1
                continue
            if options.verbose:
                found = diagnostics.count(count, f"{new}message")
                diagnostics.inform(f"IMAP: Found {found} in {name}")
        return errors.PARTIAL if failed else errors.OK
    finally:
        session.close()


def _in_background(function, *args):
    """Start function(*args) in a thread; a callable that waits for it and gives its
    result, or raises what it raised."""
    import threading

    outcome = {}

    def run():
        try:
            outcome["result"] = function(*args)
        except BaseException as exc:  # raised again in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=function.__name__, daemon=True)
    thread.start()

    def result():
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]
    return result


def _server_name(name, listed):
    """The server's name for a folder named name: INBOX is INBOX in any case (RFC 3501,
    5.1), and so is the INBOX at the head of a name the server lists under it."""
    if name in listed:
        return name
    head, rest = name[:5], name[5:]
    if head.upper() == "INBOX" and (rest == "" or f"INBOX{rest}" in listed):
        return f"INBOX{rest}"
    return name


def _closest(name, listed):
    """ "; the closest: A, B" from the names listed most like name, or ""."""
    import difflib

    close = difflib.get_close_matches(name, listed, n=3, cutoff=0.6)
    return f"; the closest: {', '.join(close)}" if close else ""


def _write_folders(folders, statuses, stdout):
    """Write the folder records, with their statuses ({name: store.Status or the
    ServerError of a folder refused}); returns how many folders failed."""
    failed = 0
    for folder in folders:
        record = dict(folder, messages=None, uidvalidity=None, uidnext=None)
        if not folder["noselect"]:
            status = statuses[folder["folder"]]
            if isinstance(status, errors.ServerError):
                diagnostics.warn(PROG, f"{folder['folder']}: {status}")
                failed += 1
                continue
            record.update(status._asdict())
        write_record(stdout, record)
    return failed


def _folders_from(stdin):
    """FOLDER arguments from stdin: a name per line, or a record with a "folder" string."""
    names = []
    for lineno, line in read_lines(stdin):
        if line.lstrip().startswith(b"{"):
            name = parse_record(line, lineno).get("folder")
            if not isinstance(name, str):
                raise errors.DataError(f"line {lineno}: record without a \"folder\" string")
            names.append(name)
        else:
            names.append(line.decode("utf-8", "surrogateescape").rstrip("\r\n"))
    return names


def _folders(session):
    """(folder records without STATUS, [(name, why)] for the folders no record can
    carry: see Store.folders, {name: store.Status} of the folders whose status came with
    the list, where the server can say it then)."""
    listed, unreadable, statuses = session.folders_and_statuses()
    folders = []
    for name, delimiter, flags in listed:
        lowered = {f.lower() for f in flags}
        special = [f for f in flags if f.lower() in SPECIAL_USE]
        folders.append({
            "folder": name,
            "delimiter": delimiter,
            "flags": flags,
            "special_use": special[0] if special else None,
            "noselect": "\\noselect" in lowered or "\\nonexistent" in lowered,
        })
    return folders, unreadable, statuses


def _shown(name):
    """A name that is not valid Unicode, its undecodable bytes as \\xNN."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


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


def _list_job(session, job, listing, where, stdout):
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


def run():
    cli.entry_point(main)
