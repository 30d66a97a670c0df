"""mbox-ids: what a backup holds, or which message records it does not hold yet."""

import sys

from . import cli
from .archive import folder_path, mbox_files
from .mboxfile import Holdings, TornTail, scan
from .records import message_key, read_records, write_record

PROG = "mbox-ids"
HELD_KEYS = ("folder", "delimiter", "uidvalidity", "uid", "message_id", "size", "flags",
             "internaldate")


def parser():
    p = cli.ArgumentParser(prog=PROG, description="Write one NDJSON record per message held "
                           "in the mbox FILEs or the backup directory DIR; with --missing, "
                           "pass on only the message records from stdin not held yet.")
    p.add_argument("files", nargs="*", metavar="FILE", help="mbox files (.gz, .bz2, .xz too)")
    p.add_argument("-d", "--directory", metavar="DIR", help="a backup directory, one file "
                   "per folder (see imapstream(7) for the names)")
    p.add_argument("--missing", action="store_true", help="filter message records on stdin: "
                   "pass on those that the one FILE or DIR does not hold")
    return p


def main(argv, stdin=None, stdout=None):
    return cli.guarded(PROG, _main, argv, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)


def _main(argv, stdin, stdout):
    options = parser().parse_args(argv)
    if options.missing:
        if bool(options.directory) == bool(options.files) or len(options.files) > 1:
            raise cli.UsageError("--missing takes exactly one FILE or -d DIR")
        return _missing(options, stdin, stdout)
    if not options.files and not options.directory:
        raise cli.UsageError("give FILE... or -d DIR")
    files = list(options.files)
    if options.directory:
        files += mbox_files(options.directory)
    status = cli.OK
    for path in files:
        try:
            for offset, record, _data in scan(path):
                held = {k: record.get(k) for k in HELD_KEYS}
                write_record(stdout, dict(held, file=path, offset=offset))
        except TornTail as exc:
            cli.warn(PROG, f"{exc}; the next mbox-merge repairs it")
            status = cli.DATAERR
    return status


def _missing(options, stdin, stdout):
    holdings = {}
    for lineno, record in read_records(stdin):
        folder, _uid = message_key(record, lineno)
        if options.directory:
            path = folder_path(options.directory, folder, record.get("delimiter"))
        else:
            path = options.files[0]
        if path not in holdings:
            holdings[path] = Holdings(path)
        if not holdings[path].holds_record(record):
            write_record(stdout, record)
    return cli.OK


def run():
    cli.entry_point(main)
