"""imap-list: the folders of an account, or the messages of some folders, as NDJSON."""

import os
import re
import sys

from .. import cli, diagnostics, errors
from ..imap import gmail, store
from ..mbox import sidecar
from ..mbox.archive import mbox_files
from ..mbox.reader import same_message
from ..message import message_id
from ..records import Checkpoint, parse_record, positive_int, read_lines, read_records, write_record

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

    since = _read_since(options.since) if options.since else None
    named = [f for f in options.folders if f != "-"]
    if "-" in options.folders:
        named += _folders_from(stdin)
    failed = 0
    for name in filter(_SURROGATE.search, named):
        diagnostics.warn(PROG, f"{_shown(name)}: not a folder name: it is not valid UTF-8; skipped")
        failed += 1
    named = [name for name in named if not _SURROGATE.search(name)]
    session = store.Store(options, PROG)
    try:
        every, unreadable = _folders(session)
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
            failed += _write_folders(session, folders, stdout)
            return errors.PARTIAL if failed else errors.OK
        if options.all:
            wanted = [f["folder"] for f in folders if not f["noselect"]]
        else:
            wanted = [name for name in named if selected(name)]
        delimiters = {f["folder"]: f["delimiter"] for f in every}
        default_delimiter = every[0]["delimiter"] if every else None
        for name in wanted:
            try:
                delimiter = delimiters.get(name, default_delimiter)
                where = (name, delimiter, own_labels.get(name, name))
                new = ""
                if since is None:
                    count = _list_messages(session, where, stdout)
                else:
                    count, listed_from = _list_since(session, where, since.get(name), stdout)
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


def _write_folders(session, folders, stdout):
    """Write the folder records; returns how many folders failed."""
    failed = 0
    for folder in folders:
        try:
            record = _with_status(session, folder)
        except errors.ServerError as exc:
            diagnostics.warn(PROG, f"{folder['folder']}: {exc}")
            failed += 1
            continue
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
    carry: see Store.folders)."""
    listed, unreadable = session.folders()
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
    return folders, unreadable


def _shown(name):
    """A name that is not valid Unicode, its undecodable bytes as \\xNN."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _with_status(session, folder):
    record = dict(folder, messages=None, uidvalidity=None, uidnext=None)
    if not folder["noselect"]:
        record.update(session.status(folder["folder"])._asdict())
    return record


def _read_since(path):
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
                                                uidvalidity, uidnext), None)
    except errors.DataError as exc:
        raise errors.DataError(f"{path}: {exc}") from None
    return known


def _list_since(session, where, known, stdout):
    """--since: the messages from the uidnext of known's checkpoint on (all of them
    without known, or once UIDVALIDITY changed), then the folder checkpoint (see
    imapstream(7)).  Returns (how many, the UID they were listed from or None for all)."""
    name, delimiter, _own_label = where
    known, mbox = known or (None, None)
    since = None
    if known:
        status = session.status(name)
        uidvalidity, uidnext = status.uidvalidity, status.uidnext
        if (uidvalidity, uidnext) == (known.uidvalidity, known.uidnext):
            write_record(stdout, Checkpoint(name, delimiter, uidvalidity, uidnext,
                                            status.messages, since=uidnext).record())
            return 0, uidnext
        if (uidvalidity == known.uidvalidity and isinstance(uidnext, int)
                and uidnext > known.uidnext):
            since = known.uidnext
    reconnects = session.reconnects
    selected = session.examine(name)
    if since is not None and (selected.uidvalidity != known.uidvalidity
                              or not positive_int(selected.uidnext)):
        since = None  # changed since STATUS, or a server that does not say
    if since is not None and mbox and _restored(session, name, known, mbox):
        since = None
    count = _list_messages(session, where, stdout, selected, since)
    vouches = positive_int(selected.uidnext) and session.reconnects == reconnects
    write_record(stdout, Checkpoint(name, delimiter, selected.uidvalidity, selected.uidnext,
                                    selected.exists, since, vouches).record())
    return count, since


def _restored(session, name, known, mbox):
    """Whether the server was restored from a backup, as far as one FETCH can tell: the
    message the backup's file mbox holds with the highest UID below known's uidnext
    (under its UIDVALIDITY) is on the server, but another message (imapstream(7))."""
    uidvalidity, uidnext = known.uidvalidity, known.uidnext
    index = sidecar.load(mbox)
    held = max((r for r in map(sidecar.record, index.rows if index else ())
                if r["folder"] == name and r["uidvalidity"] == uidvalidity
                and isinstance(r["uid"], int) and r["uid"] < uidnext),
               key=lambda r: r["uid"], default=None)
    if held is None:
        return False
    item = session.message(held["uid"])
    if item is None or same_message(message_record(name, None, uidvalidity, item), held):
        return False
    diagnostics.warn(PROG, f"{name}: UID {held['uid']} is another message than the backup "
                           f"holds: the server was restored from a backup; listing it whole")
    return True


def _list_messages(session, where, stdout, selected=None, since=None):
    """Write the message records of the folder where names (name, delimiter, its label
    on Gmail) in UID order, only those from UID since on if given (see Store.listing)."""
    name, delimiter, own_label = where
    selected = selected or session.examine(name)
    count = 0
    for item in session.listing(selected, since, own_label):
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
    }


def run():
    cli.entry_point(main)
