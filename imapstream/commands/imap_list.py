"""imap-list: the folders of an account, or the messages of some folders, as NDJSON.

The IMAP stack (imapclient, imaplib, ssl), the listing and the records (with datetime
and typing) are imported once the connection to the server is on its way
(connection.dial_early): over a link far away its round trips travel while they load."""

import re
import sys

from .. import cli, diagnostics, errors
from ..imap import connection

PROG = "imap-list"
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
    p.add_argument("--announce", action="store_true", help="with --since: before the "
                   "messages of a folder with new messages, write {\"folder\": NAME, "
                   "\"announce\": true} as soon as its status shows them, on which "
                   "imap-fetch logs in while the listing is on its way")
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
    connection.add_options(p)
    return p


def main(argv, stdin=None, stdout=None):
    return cli.guarded(PROG, _main, argv, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)


def _main(argv, stdin, stdout):
    options = parser().parse_args(argv)
    if options.login_source:
        from ..records import write_record

        write_record(stdout, connection.login_source(options))
        return errors.OK
    if options.all and options.folders:
        raise errors.UsageError("give FOLDER... or --all, not both")
    if options.announce and not options.since:
        raise errors.UsageError("--announce needs --since")
    try:
        include = [re.compile(r) for r in options.include]
        exclude = [re.compile(r) for r in options.exclude]
    except re.error as exc:
        raise errors.UsageError(f"bad regular expression: {exc}") from None
    connection.dial_early(options)
    from .. import list_jobs
    from ..imap import gmail, listing_ahead, store
    from ..since import announces, job_for, read_since

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
    options.after_login = listing_ahead.sender(options.qresync)  # _folders's LIST-STATUS
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
        if options.announce:
            _announce([job for job in jobs if announces(job)], delimiters, stdout)
        for job in jobs:
            name = job.name
            try:
                listing = next(listings) if job.plan else None
                delimiter = delimiters.get(name, default_delimiter)
                where = (name, delimiter, own_labels.get(name, name))
                count, listed_from = list_jobs.list_job(session, job, listing, where, stdout)
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
    from ..records import write_record

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


def _announce(jobs, delimiters, stdout):
    """--announce: a record per folder whose listing brings new messages, written while
    the listings are on their way."""
    from ..records import write_record

    for job in jobs:
        write_record(stdout, {"folder": job.name, "delimiter": delimiters.get(job.name),
                              "announce": True})


def _folders_from(stdin):
    """FOLDER arguments from stdin: a name per line, or a record with a "folder" string."""
    from ..records import parse_record, read_lines

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


def run():
    cli.entry_point(main)
