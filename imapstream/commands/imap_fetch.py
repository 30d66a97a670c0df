"""imap-fetch: message records in, the message stream (or mboxrd) out."""

import sys

from .. import cli, diagnostics, errors
from ..imap import connection
from ..imap.fetchparse import record_fields
from ..imap.session import Session
from ..mbox.mboxrd import format_pieces
from ..message import header_section, message_id, to_lf
from ..progress import Progress
from ..records import checkpoint_key, message_key, read_records, write_record
from ..stream import write_message

PROG = "imap-fetch"
FETCH_ITEMS = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODY.PEEK[]"]
BATCH_BYTES = 8 << 20  # a batch ends once its messages' sizes reach this
BATCH_MESSAGES = 1000


def parser():
    p = cli.ArgumentParser(prog=PROG, description="Read message records (imap-list's) on "
                           "stdin and write the message stream (see imapstream(7)) on "
                           "stdout, fetching with BODY.PEEK[] under EXAMINE over one "
                           "connection at a time (a new one after a drop).")
    p.add_argument("--mbox", action="store_true", help="write plain mboxrd instead")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress line, even when stderr is a terminal")
    connection.add_options(p)
    p.environment.append(("TERM", "dumb turns the progress line off"))
    return p


def main(argv, stdin=None, stdout=None):
    return cli.guarded(PROG, _main, argv, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)


def _main(argv, stdin, stdout):
    options = parser().parse_args(argv)
    progress = Progress("FETCH", False if options.no_progress else None)
    if progress.enabled:
        options.on_data = progress.arrived
    session = Session(options, PROG, lazy=True)
    fetcher = Fetcher(session, stdout, options.mbox, progress)
    try:
        try:
            for lineno, record in read_records(stdin, idle=fetcher.flush):
                if checkpoint_key(record, lineno) is not None:
                    fetcher.checkpoint(record)
                    continue
                message_key(record, lineno)
                fetcher.add(record)
        except errors.DataError:
            fetcher.flush()  # the records before a malformed line are still fetched
            raise
        fetcher.flush()
    finally:
        progress.close()
        session.close()
    return errors.PARTIAL if fetcher.failed else errors.OK


class Fetcher:
    """Fetches message records in batches: one folder per batch, bounded by the sizes
    the records give, and sent off early whenever the input pauses."""

    def __init__(self, session, out, mbox, progress):
        self.session, self.out, self.mbox, self.progress = session, out, mbox, progress
        self.selected = self.uidvalidity = None
        self.failed = 0
        self.failed_folders = set()  # folders with a message not fetched in this run
        self.marked_seen = set()  # folders where the server set \Seen despite BODY.PEEK
        self.batch, self.batch_bytes = [], 0
        self.limit = BATCH_MESSAGES

    def add(self, record):
        if self.batch and (record["folder"] != self.batch[0]["folder"]
                           or len(self.batch) >= BATCH_MESSAGES
                           or self.batch_bytes >= BATCH_BYTES):
            self.flush()
        self.batch.append(record)
        self.batch_bytes += record.get("size") or 0
        self.progress.expect(record.get("size") or 0)

    def flush(self):
        if self.batch:
            batch, self.batch, self.batch_bytes = self.batch, [], 0
            failed = self.failed
            self.fetch(batch)
            if self.failed != failed:
                self.failed_folders.add(batch[0]["folder"])

    def checkpoint(self, record):
        """A folder checkpoint goes on after its folder's messages; it no longer vouches
        for the folder once one of them could not be fetched.  mboxrd has no place for
        it."""
        self.flush()
        if record["folder"] in self.failed_folders:
            record["checkpoint"] = False
        if not self.mbox:
            write_record(self.out, record)

    def warn(self, message):
        self.progress.clear()
        diagnostics.warn(PROG, message)

    def fail(self, message, count=1):
        self.warn(message)
        self.failed += count

    def fetch(self, batch):
        folder = batch[0]["folder"]
        self.progress.folder = folder
        if folder != self.selected:
            self.selected = folder
            try:
                self.uidvalidity = self.session.examine(folder)[b"UIDVALIDITY"]
            except errors.ServerError as exc:
                self.uidvalidity = None
                self.fail(str(exc), 0)
        if self.uidvalidity is None:
            self.failed += len(batch)
            return
        current = []
        for record in batch:
            if record.get("uidvalidity", self.uidvalidity) != self.uidvalidity:
                self.fail(f"{folder}: UID {record['uid']}: UIDVALIDITY is now "
                          f"{self.uidvalidity}, not {record['uidvalidity']}; list it again")
            else:
                current.append(record)
        while current:
            try:
                response = self.session.call(
                    lambda client, records=current: client.fetch(
                        [r["uid"] for r in records[:self.limit]], FETCH_ITEMS),
                    on_retry=lambda records=current: self.shrink(len(records)))
            except errors.ServerError as exc:
                self.selected = None
                self.fail(str(exc), len(current))
                return
            done, current = current[:self.limit], current[self.limit:]
            for record in done:
                item = response.get(record["uid"])
                if item is None or b"BODY[]" not in item:
                    self.fail(f"{folder}: UID {record['uid']} is no longer on the server")
                    continue
                self.emit(record, item)

    def check_peek(self, record, flags):
        """Some servers set \\Seen when they send a body, PEEK or not: warn once per folder
        when a message whose record has flags without \\Seen comes back with it.  The
        message keeps the flags FETCH gave, the server's as they now are."""
        given = record.get("flags")
        if (record["folder"] not in self.marked_seen and isinstance(given, list)
                and _seen(flags) and not _seen(given)):
            self.marked_seen.add(record["folder"])
            self.warn(f"{record['folder']}: the server marked messages \\Seen despite "
                      f"BODY.PEEK")

    def shrink(self, pending):
        """After a dropped connection, ask for fewer messages per FETCH, so that a link
        that keeps failing still makes progress."""
        self.limit = max(1, min(self.limit, pending) // 2)

    def emit(self, record, item):
        data = item[b"BODY[]"]
        fields, left_out = record_fields(item)
        for what in left_out:
            self.warn(f"{record['folder']}: UID {record['uid']}: left out {what}")
        self.check_peek(record, fields["flags"])
        record = dict(record, uidvalidity=self.uidvalidity, flags=fields["flags"])
        for key, name in (("size", b"RFC822.SIZE"), ("internaldate", b"INTERNALDATE")):
            if name in item:
                record[key] = fields[key]
        record.pop("length", None)
        if "message_id" not in record:
            record["message_id"] = message_id(header_section(data))
        if self.mbox:
            self.out.writelines(format_pieces(to_lf(data), record))
            self.out.flush()
        else:
            write_message(self.out, record, data)
        self.progress.add(len(data))


def _seen(flags):
    return any(isinstance(f, str) and f.lower() == "\\seen" for f in flags)


def run():
    cli.entry_point(main)
