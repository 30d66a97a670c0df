"""mbox-ids: what a backup holds, or which message records it does not hold yet."""

import os
import sys

from .. import cli, diagnostics, errors
from ..mbox import sidecar
from ..mbox.archive import folder_path, mbox_files
from ..mbox.reader import Holdings
from ..records import Checkpoint, message_key, read_records, withdraw, write_record

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
            write_record(stdout, {"folder": checkpoint.folder, "delimiter": checkpoint.delimiter,
                                  "uidvalidity": checkpoint.uidvalidity,
                                  "uidnext": checkpoint.uidnext, "file": path})
    return status


def _missing(options, stdin, stdout):
    holdings = {}
    gmail = None  # the gm_msgid of each message DIR holds, or passed on (see _gmail_held)
    for lineno, record in read_records(stdin):
        checkpoint = Checkpoint.of(record, lineno)
        if checkpoint is not None:
            path = _path(options, checkpoint.folder, record)
            if path in holdings and not isinstance(holdings[path], Holdings):
                withdraw(record)  # its folder's records were held back
            write_record(stdout, record)
            continue
        folder, _uid = message_key(record, lineno)
        gm_msgid = record.get("gm_msgid") if options.directory else None
        copy = False
        if gm_msgid is not None:
            gmail = _gmail_held(options.directory) if gmail is None else gmail
            if gm_msgid in gmail and not options.copies:
                continue
            copy = gm_msgid in gmail
        path = _path(options, folder, record)
        if path not in holdings:
            try:
                holdings[path] = Holdings(path)
            except (errors.DataError, OSError) as exc:
                reason = errors.describe(exc)[0]
                diagnostics.warn(PROG, f"{reason}; its folder's records are held back")
                holdings[path] = exc
            else:
                for line in holdings[path].unmatched_reports():
                    diagnostics.warn(PROG, line)
        held = holdings[path]
        if isinstance(held, Holdings) and not held.holds_record(record):
            if held.matched_by_content(record):
                record["not_held_in"] = path
            if copy:
                record["copy_of"] = gm_msgid
            write_record(stdout, record)
            if gm_msgid is not None:
                gmail.add(gm_msgid)
    failures = [h for h in holdings.values() if not isinstance(h, Holdings)]
    return errors.DATAERR if any(isinstance(h, errors.DataError) for h in failures) \
        else errors.PARTIAL if failures else errors.OK


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
    {"folder", "file", "server", "backup", "missing", "only_in_backup"}.  A message is
    in the backup as --missing finds it; only_in_backup is what the file holds beyond
    the server's messages it matched (deleted on the server, or a folder gone)."""
    folders = {}  # folder: [file, Holdings, server, missing]
    gmail = None  # see _gmail_held
    for lineno, record in read_records(stdin):
        if Checkpoint.of(record, lineno) is not None:
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
        backup = sum(1 for _ in held.records())
        write_record(stdout, {"folder": folder, "file": path, "server": server,
                              "backup": backup, "missing": absent,
                              "only_in_backup": backup - (server - absent)})
        missing += absent
    return errors.PARTIAL if missing else errors.OK


def _path(options, folder, record):
    if options.directory:
        return folder_path(options.directory, folder, record.get("delimiter"))
    return options.files[0]


def run():
    cli.entry_point(main)
