"""imap-fetch: message records in, the message stream (or mboxrd) out."""

import sys

from .. import cli, diagnostics, errors
from ..imap import store
from ..mbox.mboxrd import format_pieces
from ..message import header_section, message_id, to_lf
from ..progress import Progress
from ..records import Checkpoint, message_key, read_records, withdraw, write_record
from ..stream import write_message

PROG = "imap-fetch"
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
    store.add_options(p)
    p.set_defaults(bulk=True)  # messages cross the link: COMPRESS pays (--link-compression)
    p.environment.append(("TERM", "dumb turns the progress line off"))
    return p


def main(argv, stdin=None, stdout=None):
    return cli.guarded(PROG, _main, argv, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)


def _main(argv, stdin, stdout):
    options = parser().parse_args(argv)
    progress = Progress("FETCH", False if options.no_progress else None)
    if progress.enabled:
        options.on_data = progress.arrived
    server = store.Store(options, PROG, lazy=True)
    fetcher = Fetcher(server, stdout, options.mbox, progress)
    try:
        try:
            for lineno, record in read_records(stdin, idle=fetcher.flush):
                if Checkpoint.of(record, lineno) is not None:
                    fetcher.checkpoint(record)
                    continue
                message_key(record, lineno)
                if "copy_of" in record and not options.mbox:
                    fetcher.pass_on(record)
                    continue
                fetcher.add(record)
        except errors.DataError:
            fetcher.flush()  # the records before a malformed line are still fetched
            raise
        fetcher.flush()
    finally:
        progress.close()
        server.close()
    return errors.PARTIAL if fetcher.failed else errors.OK


class Fetcher:
    """Fetches message records in batches: one folder per batch, bounded by the sizes
    the records give, and sent off early whenever the input pauses."""

    def __init__(self, server, out, mbox, progress):
        self.server, self.out, self.mbox, self.progress = server, out, mbox, progress
        self.selected = self.uidvalidity = None
        self.failed = 0
        self.failed_folders = set()  # folders with a message not fetched in this run
        self.marked_seen = set()  # folders where the server set \Seen despite BODY.PEEK
        self.batch, self.batch_bytes = [], 0

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
            withdraw(record)
        if not self.mbox:
            write_record(self.out, record)

    def pass_on(self, record):
        """A record with copy_of goes on unfetched (its bytes are in the backup), after
        the messages before it."""
        self.flush()
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
                self.uidvalidity = self.server.examine(folder).uidvalidity
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
                asked, response = self.server.bodies([r["uid"] for r in current])
            except errors.ServerError as exc:
                self.selected = None
                self.fail(str(exc), len(current))
                return
            done, current = current[:asked], current[asked:]
            for record in done:
                item = response.get(record["uid"])
                if item is None or item.body is None:
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

    def emit(self, record, item):
        data = item.body
        for what in item.left_out:
            self.warn(f"{record['folder']}: UID {record['uid']}: left out {what}")
        self.check_peek(record, item.flags)
        record = dict(record, uidvalidity=self.uidvalidity, flags=item.flags)
        # A size or date the server did not send, or sent as no record can carry it,
        # stays as the listing gave it.
        for key in ("size", "internaldate"):
            if getattr(item, key) is not None:
                record[key] = getattr(item, key)
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
