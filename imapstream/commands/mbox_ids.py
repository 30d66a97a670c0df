"""mbox-ids: what a backup holds, or which message records it does not hold yet."""

import os
import sys

from .. import cli, diagnostics, errors
from ..mbox import sidecar
from ..mbox.archive import folder_path, mbox_files
from ..mbox.reader import Holdings
from ..mbox.uidranges import Held
from ..records import (
    Checkpoint,
    is_announce,
    is_update,
    message_key,
    read_records,
    withdraw,
    write_record,
)

PROG = "mbox-ids"


def parser():
    p = cli.ArgumentParser(prog=PROG, description="Write one NDJSON record per message held "
                           "in the mbox FILEs or the backup directory DIR; with --missing, "
                           "pass on only the message records from stdin not held yet.")
    p.add_argument("files", nargs="*", metavar="FILE", help="mbox files (.gz, .bz2, .xz too)")
    p.add_argument("-d", "--directory", metavar="DIR", help="a backup directory, one file "
                   "per folder (see imapstream(7) for the names)")
    p.add_argument("--missing", action="store_true", help="filter message records on stdin: "
                   "pass on those that the one FILE or DIR does not hold")
    p.add_argument("--copies", action="store_true", help="with --missing -d DIR: pass on "
                   "a record from Gmail that DIR holds in another file, with \"copy_of\", so "
                   "that its folder's file gets a copy of the bytes held (one file per label)")
    p.add_argument("--folders", action="store_true", help="write instead the folder "
                   "checkpoints the files' sidecars hold, the FILE imap-list wants")
    p.add_argument("--check", action="store_true", help="compare the message records of "
                   "a whole listing on stdin (imap-list of every folder) with the backup "
                   "directory DIR: one record per folder with the messages on the server, in the "
                   "backup, missing from it and held only in it; exit 1 if any is missing")
    return p


def main(argv, stdin=None, stdout=None):
    return cli.guarded(PROG, _main, argv, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)


def _main(argv, stdin, stdout):
    options = parser().parse_args(argv)
    if options.missing + options.folders + options.check > 1:
        raise errors.UsageError("give one of --missing, --folders and --check")
    if options.copies and not (options.missing and options.directory):
        raise errors.UsageError("--copies goes with --missing -d DIR")
    if options.check:
        if not options.directory or options.files:
            raise errors.UsageError("--check takes -d DIR and no FILE")
        return _check(options.directory, stdin, stdout)
    if options.missing:
        if bool(options.directory) == bool(options.files) or len(options.files) > 1:
            raise errors.UsageError("--missing takes exactly one FILE or -d DIR")
        return _missing(options, stdin, stdout)
    if not options.files and not options.directory:
        raise errors.UsageError("give FILE... or -d DIR")
    files = list(options.files)
    if options.directory:
        files += mbox_files(options.directory)
    if options.folders:
        return _folders(files, stdout)
    status = errors.OK
    for path in files:
        try:
            os.stat(path)  # a missing FILE is an error here, not an empty one
            holdings = Holdings(path)
        except OSError as exc:
            diagnostics.warn(PROG, errors.describe(exc)[0])
            status = max(status, errors.PARTIAL)
            continue
        for line in holdings.unmatched_reports():
            diagnostics.warn(PROG, line)
        for offset, record in holdings.records():
            write_record(stdout, dict(record, file=path, offset=offset))
        if holdings.torn_at is not None:
            diagnostics.warn(PROG, f"{path}: the last message (at byte {holdings.torn_at}) is cut "
                           f"short; the next mbox-merge repairs it")
            status = errors.DATAERR
        if holdings.trailer is not None:
            diagnostics.warn(PROG, f"{path}: the last gzip member lacks its trailer; the next "
                           f"mbox-merge completes it")
            status = errors.DATAERR
        if holdings.cut_stream is not None:
            diagnostics.warn(PROG, f"{path}: the last compressed stream is cut short; the next "
                           f"mbox-merge repairs it")
            status = errors.DATAERR
    return status


def _folders(files, stdout):
    """One record per folder checkpoint (see sidecar.py), in file order."""
    status = errors.OK
    for path in files:
        try:
            os.stat(path)
        except OSError as exc:
            diagnostics.warn(PROG, errors.describe(exc)[0])
            status = errors.PARTIAL
            continue
        for checkpoint in sidecar.checkpoints(path).values():
            modseq = checkpoint.highestmodseq
            write_record(stdout, {"folder": checkpoint.folder, "delimiter": checkpoint.delimiter,
                                  "uidvalidity": checkpoint.uidvalidity,
                                  "uidnext": checkpoint.uidnext,
                                  **({} if modseq is None else {"highestmodseq": modseq}),
                                  "file": path})
    return status


def _missing(options, stdin, stdout):
    holdings = {}
    listed = {}  # folder: Held of the UIDs listed, for _write_vanished
    gmail = None  # the gm_msgid of each message DIR holds, or passed on (see _gmail_held)
    for lineno, record in read_records(stdin):
        if is_announce(record):  # for imap-fetch, at once
            write_record(stdout, record)
            continue
        checkpoint = Checkpoint.of(record, lineno)
        if checkpoint is not None:
            path = _path(options, checkpoint.folder, record)
            whole = checkpoint.since is None and checkpoint.vouches
            if whole and path not in holdings and os.path.isfile(path):
                _holdings(holdings, path)  # a folder now empty: all it held vanished
            if path in holdings and not isinstance(holdings[path], Holdings):
                withdraw(record)  # its folder's records were held back
            elif path in holdings and whole:
                _write_vanished(holdings[path], checkpoint, listed.get(checkpoint.folder),
                                stdout)
            listed.pop(checkpoint.folder, None)
            write_record(stdout, record)
            continue
        folder, _uid = message_key(record, lineno)
        if not is_update(record):
            listed.setdefault(folder, Held()).add(record)
        gm_msgid = record.get("gm_msgid") if options.directory else None
        copy = False
        if gm_msgid is not None:
            gmail = _gmail_held(options.directory) if gmail is None else gmail
            if gm_msgid in gmail and not options.copies:
                continue
            copy = gm_msgid in gmail
        path = _path(options, folder, record)
        if path not in holdings:
            _holdings(holdings, path)
        held = holdings[path]
        if not isinstance(held, Holdings):
            continue
        if is_update(record):
            if held.note_update(record):  # news to the file
                write_record(stdout, record)
            continue
        if not held.holds_record(record):
            if held.matched_by_content(record):
                record["not_held_in"] = path
            if copy:
                record["copy_of"] = gm_msgid
            write_record(stdout, record)
            if gm_msgid is not None:
                gmail.add(gm_msgid)
        elif isinstance(record.get("flags"), list):
            update = {key: record.get(key) for key in ("folder", "delimiter", "uidvalidity",
                                                       "uid", "flags", "modseq")}
            update = {k: v for k, v in update.items() if v is not None}
            if held.note_update(dict(update, update="flags")):
                write_record(stdout, dict(update, update="flags"))
    failures = [h for h in holdings.values() if not isinstance(h, Holdings)]
    return errors.DATAERR if any(isinstance(h, errors.DataError) for h in failures) \
        else errors.PARTIAL if failures else errors.OK


def _holdings(holdings, path):
    """holdings[path]: the Holdings of path, or the exception that kept it from being
    read."""
    try:
        holdings[path] = Holdings(path)
    except (errors.DataError, OSError) as exc:
        reason = errors.describe(exc)[0]
        diagnostics.warn(PROG, f"{reason}; its folder's records are held back")
        holdings[path] = exc
    else:
        for line in holdings[path].unmatched_reports():
            diagnostics.warn(PROG, line)


def _write_vanished(held, checkpoint, listed, stdout):
    """After a whole listing of a folder (its checkpoint vouching, since null): an
    update record per message the file holds by a UID of the folder's UIDVALIDITY below
    its uidnext that the listing did not have, unless already known missing."""
    from datetime import UTC, datetime

    own = (checkpoint.folder, checkpoint.uidvalidity)
    listed = listed or Held()
    now = datetime.now(UTC).isoformat(timespec="seconds")
    firsts, lasts = held.index.held.ranges.get(own, ((), ()))
    for first, last in zip(list(firsts), list(lasts), strict=True):
        for uid in range(first, min(last, checkpoint.uidnext - 1) + 1):
            if (own, uid) in listed:
                continue
            record = {"folder": checkpoint.folder, "delimiter": checkpoint.delimiter,
                      "uidvalidity": checkpoint.uidvalidity, "uid": uid,
                      "missing_since": now, "update": "vanished"}
            if held.note_update(record):
                write_record(stdout, record)
def _gmail_held(directory):
    """The gm_msgid of every message the files of directory hold: a message from Gmail
    is held whatever folder (label) lists it, and passed on once per run.  A file that
    cannot be read adds none (its own folder's records report it)."""
    held = set()
    for path in mbox_files(directory) if os.path.isdir(directory) else ():
        try:
            held.update(r["gm_msgid"] for _o, r in Holdings(path).records() if "gm_msgid" in r)
        except (errors.DataError, OSError):
            continue
    return held


def _check(directory, stdin, stdout):
    """Per folder of the listing, then per file of the backup no folder of it maps to:
    {"folder", "file", "server", "backup", "missing", "deleted", "only_in_backup"}.  A
    message is in the backup as --missing finds it; deleted counts those the flag
    journal knows were deleted on the server; only_in_backup what the file holds
    beyond those and the server's messages it matched (deleted unseen, or a folder
    gone)."""
    folders = {}  # folder: [file, Holdings, server, missing]
    gmail = None  # see _gmail_held
    for lineno, record in read_records(stdin):
        if is_announce(record) or Checkpoint.of(record, lineno) is not None or \
                is_update(record):
            continue
        folder, _uid = message_key(record, lineno)
        if folder not in folders:
            path = folder_path(directory, folder, record.get("delimiter"))
            folders[folder] = [path, Holdings(path), 0, 0]
        entry = folders[folder]
        entry[2] += 1
        if entry[1].holds_record(record):
            continue
        if record.get("gm_msgid") is not None:
            gmail = _gmail_held(directory) if gmail is None else gmail
            entry[3] += record["gm_msgid"] not in gmail
        else:
            entry[3] += 1
    visited = {entry[0] for entry in folders.values()}
    for path in mbox_files(directory):
        if path not in visited:
            held = Holdings(path)
            names = {record.get("folder") for _offset, record in held.records()}
            name = names.pop() if len(names) == 1 else os.path.basename(path)
            folders[name] = [path, held, 0, 0]
    missing = 0
    for folder, (path, held, server, absent) in folders.items():
        backup = deleted = 0
        for _offset, record in held.records():
            backup += 1
            deleted += "missing_since" in record
        write_record(stdout, {"folder": folder, "file": path, "server": server,
                              "backup": backup, "missing": absent, "deleted": deleted,
                              "only_in_backup": max(0, backup - (server - absent) - deleted)})
        missing += absent
    return errors.PARTIAL if missing else errors.OK


def _path(options, folder, record):
    if options.directory:
        return folder_path(options.directory, folder, record.get("delimiter"))
    return options.files[0]


def run():
    cli.entry_point(main)
